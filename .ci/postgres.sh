#!/usr/bin/env bash
# Install (Debian package) and start a PostgreSQL server on loopback for the multi-worker tuning
# tests; prints the URL to use. Idempotent: safe to run on a machine where it already runs.
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
VERSION=$(ls /usr/lib/postgresql | sort -V | tail -1)
pg_lsclusters -h | grep -q "^$VERSION main" || $SUDO pg_createcluster "$VERSION" main >/dev/null
$SUDO pg_ctlcluster "$VERSION" main start >/dev/null 2>&1 || true  # already running is fine
PORT=$(pg_lsclusters -h | awk -v v="$VERSION" '$1==v && $2=="main" {print $3}')
as_pg() { $SUDO runuser -u postgres -- "$@"; }
for _ in $(seq 1 30); do as_pg pg_isready -q -h 127.0.0.1 -p "$PORT" && break; sleep 1; done
as_pg psql -q -p "$PORT" -tc "SELECT 1 FROM pg_roles WHERE rolname='molpred'" | grep -q 1 \
    || as_pg psql -q -p "$PORT" -c "CREATE ROLE molpred LOGIN PASSWORD 'molpred' CREATEDB"
as_pg psql -q -p "$PORT" -tc "SELECT 1 FROM pg_database WHERE datname='molpred_test'" | grep -q 1 \
    || as_pg createdb -p "$PORT" -O molpred molpred_test
echo "postgresql+psycopg2://molpred:molpred@127.0.0.1:$PORT/molpred_test"
