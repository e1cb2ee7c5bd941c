"""How big the installable package is with every bundled model (issue #18: at most 40 MB).

Builds the wheel (``pip wheel . --no-deps``, the project's own build backend, offline) into a
temporary folder and reports its size and the largest files inside it, compressed.

Usage::

    python benchmarks/wheel_size.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from report import save_result  # benchmarks/report.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
LIMIT_MB = 40.0


def build_wheel(out: Path) -> Path:
    """The project's wheel, built into ``out`` from a copy of what it packages (setuptools
    leaves a ``build/`` folder beside the sources it builds)."""
    source = out / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "molpred", source / "molpred", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return next(out.glob("molpred-*.whl"))


def wheel_report(wheel: Path, largest: int = 10) -> dict:
    with zipfile.ZipFile(wheel) as z:
        files = sorted(z.infolist(), key=lambda i: i.compress_size, reverse=True)
        models = [i for i in files if i.filename.endswith(".pt")]
        return {
            "date": time.strftime("%Y-%m-%d"),
            "wheel": wheel.name,
            "megabytes": round(wheel.stat().st_size / 1e6, 2),
            "limit_megabytes": LIMIT_MB,
            "files": len(files),
            "model_files": sorted(Path(i.filename).name for i in models),
            "model_megabytes_compressed": round(sum(i.compress_size for i in models) / 1e6, 2),
            "model_megabytes_uncompressed": round(sum(i.file_size for i in models) / 1e6, 2),
            "largest_compressed": {
                i.filename: round(i.compress_size / 1e6, 2) for i in files[:largest]
            },
        }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = wheel_report(build_wheel(Path(tmp)))
    save_result(result, ROOT / "benchmarks" / "results" / "wheel_size.json")


if __name__ == "__main__":
    main()
