"""Where studies live: the RDB storage (a SQLite file or a server URL), and the question each
study answers, stored with it so that no run adds trials that cannot be compared."""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

from molpred.metrics import HIGHER_IS_BETTER

__all__ = [
    "StudyError",
    "redact",
    "storage_url",
    "with_driver",
    "open_storage",
    "load_study",
    "claim",
]


class StudyError(ValueError):
    """The study cannot go on as asked: a name taken by another question, or failing trials."""


def redact(url: str) -> str:
    """A storage URL without its password (safe to print and to store in model files)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: leave as is
        return url


def storage_url(storage: str | None, study_name: str) -> str:
    """The study's RDB URL: ``storage`` as given, a plain file path as a SQLite file, or by
    default ``<study name>.db`` here (characters a file name cannot hold become ``_``)."""
    if storage is None:
        return f"sqlite:///{re.sub(r'[^A-Za-z0-9._+-]+', '_', study_name)}.db"
    if "://" not in storage:
        return f"sqlite:///{Path(storage).expanduser()}"
    return storage


def with_driver(url: str) -> str:
    """A ``postgresql://`` URL names no driver, and SQLAlchemy 2.1 then takes psycopg 3; with
    only psycopg2 installed (molpred's ``postgres`` extra) that URL uses psycopg2 instead."""
    import importlib.util

    scheme, sep, rest = url.partition("://")
    if scheme != "postgresql" or not sep:
        return url
    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
        return f"postgresql+psycopg2://{rest}"
    return url


def open_storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """RDB storage with heartbeats: a trial silent for 30 s (its worker died) is failed and
    re-queued once by whichever worker notices.

    Workers started together on an empty database race to create Optuna's tables (on
    PostgreSQL the loser fails on ``CREATE TYPE``); a failed attempt is retried, and the retry
    finds the tables the winner made."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    url = with_driver(url)
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    heartbeat_interval=10,
                    grace_period=30,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry=1
                    ),
                    engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None,
                )
        except (ArgumentError, ValueError) as exc:  # not a URL it can use: no retry helps
            raise StudyError(f"cannot use --storage {redact(url)}: {exc}") from None
        except ImportError as exc:  # the URL's database driver is not installed
            raise StudyError(
                f"cannot use --storage {redact(url)}: its database driver is not installed "
                f"({exc}); for PostgreSQL: pip install 'molpred[postgres]'"
            ) from None
        except RuntimeError as exc:  # e.g. tables made by another Optuna version
            raise StudyError(f"cannot open study storage {redact(url)}: {exc}") from None
        except SQLAlchemyError as exc:
            if attempt == attempts - 1:
                raise StudyError(f"cannot open study storage {redact(url)}: {exc}") from None
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def load_study(storage: str, study_name: str) -> optuna.Study:
    """An existing study (KeyError without one). A SQLite file that does not exist is
    reported, not created empty (a mistyped name left an empty database behind)."""
    url = storage_url(storage, study_name)
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :].split("?", 1)[0])
        if str(path) != ":memory:" and not path.is_file():
            raise FileNotFoundError(f"no study database {path}")
    return optuna.load_study(study_name=study_name, storage=open_storage(url))


def claim(study: optuna.Study, question: dict[str, Any], settings: str) -> None:
    """Store the question (and the run's ``settings``, JSON, for the export) with a new study;
    refuse to add trials to one that asks another."""
    stored = study.user_attrs.get("question")
    if stored is None and study.user_attrs.get("metric") not in (None, question["metric"]):
        stored = {"metric": study.user_attrs["metric"]}  # a study from before questions
    expected = "maximize" if HIGHER_IS_BETTER[question["metric"]] else "minimize"
    if stored is None and study.direction.name.lower() != expected:
        stored = {"metric": f"a metric to {study.direction.name.lower()}"}
    if stored is not None:
        differ = [
            f"{key} {stored[key]} (now {question.get(key)})"
            for key in stored
            if stored[key] != question.get(key)
        ]
        if differ:
            raise StudyError(
                f"study {study.study_name!r} was started for another question: "
                + "; ".join(differ)
                + ". Its trials' values cannot be compared with this run's: rerun with the "
                "same data and settings, or choose another --study-name"
            )
        return
    study.set_user_attr("question", question)
    study.set_user_attr("metric", question["metric"])
    study.set_user_attr("settings", settings)
