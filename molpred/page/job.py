"""A training run in a background thread, as the page starts it: progress to read while it
runs, a cancel that takes effect at the end of the current epoch, and the saved model file at
the end. No Streamlit here: the page only reads what this holds.
"""

from __future__ import annotations

import shlex
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from molpred.artifact import MolpredModel
from molpred.fitting import TrainConfig
from molpred.train import TrainProgress, train

__all__ = ["TrainingRequest", "TrainingJob", "Cancelled"]

# one training at a time in this process (a second session's run waits for the first)
_ONE_AT_A_TIME = threading.Lock()


class Cancelled(Exception):
    """Raised inside training when the user cancels it."""


@dataclass(frozen=True)
class TrainingRequest:
    """What the page asks for; :meth:`command` is the same run as a ``molpred train`` line."""

    smiles_column: str
    target_columns: tuple[str, ...]
    task: str | None  # regression | classification | None: each column's guessed from its values
    split: str = "random"
    epochs: int = TrainConfig.epochs
    seed: int = 0
    init: str = "auto"  # as molpred train --init: auto, none or a bundled model's name

    def command(self, data: str, output: str) -> str:
        parts = [
            "molpred train",
            _quoted(data),
            _option("--smiles-column", [self.smiles_column]),
            _option("--target-columns", self.target_columns),
            *([f"--task {self.task}"] if self.task else []),
            f"--split {self.split}",
            f"--epochs {self.epochs}",
            f"--seed {self.seed}",
        ]
        if self.init != "auto":
            parts.append(f"--init {_quoted(self.init)}")
        return " ".join([*parts, f"--output {_quoted(output)}"])


def _quoted(text: str) -> str:
    return shlex.quote(str(text))


def _option(flag: str, values: tuple[str, ...] | list[str]) -> str:
    """``flag`` with its values, quoted for the shell. Where a value starts with ``-``
    (``-logIC50``), argparse would read it as an option: each value is then attached as
    ``flag=value``, the flag repeated."""
    if any(str(v).startswith("-") for v in values):
        return " ".join(_quoted(f"{flag}={v}") for v in values)
    return " ".join([flag, *map(_quoted, values)])


@dataclass
class TrainingJob:
    """One run: ``start()`` it, read ``progress``/``state`` while it runs, ``cancel()`` it."""

    table: pd.DataFrame
    request: TrainingRequest
    output: Path
    state: str = "waiting"  # waiting, running, done, cancelled, failed
    queued: bool = True  # behind another session's training
    progress: TrainProgress | None = None
    error: str = ""
    model: MolpredModel | None = None
    model_file: bytes = b""  # the file as this run saved it (what its download hands out)
    metrics: dict = field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> TrainingJob:
        self.state, self.started = "running", time.monotonic()
        self._thread = threading.Thread(target=self._run, name="molpred-train", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (tests); True if it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state not in ("waiting", "running")

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started if self.started else 0.0

    def seconds_left(self) -> float | None:
        """An upper bound (early stopping may end sooner): the time per epoch so far times
        the epochs still allowed."""
        p = self.progress
        if p is None or self.state != "running":
            return None
        done = p.member * p.epochs + p.epoch
        total = p.members * p.epochs
        return self.seconds / max(done, 1) * (total - done)

    def _on_epoch(self, progress: TrainProgress) -> None:
        self.progress = progress
        if self._cancel.is_set():
            raise Cancelled

    def _run(self) -> None:
        # torch's seeds and determinism switches are process-wide: one run at a time; a
        # run waiting for another can still be cancelled
        while not _ONE_AT_A_TIME.acquire(timeout=0.2):
            if self._cancel.is_set():
                self._end("cancelled")
                return
        try:
            self.queued, self.started = False, time.monotonic()
            self._train()
        finally:
            _ONE_AT_A_TIME.release()

    def _train(self) -> None:
        r = self.request
        try:
            if self._cancel.is_set():
                raise Cancelled
            model, metrics = train(
                self.table,
                r.smiles_column,
                list(r.target_columns),
                task_types=r.task,
                split=r.split,
                train_config=TrainConfig(epochs=r.epochs, seed=r.seed),
                progress=False,
                cache_dir=None,
                workers=1,  # no fork from a thread of the server
                init=None if r.init == "none" else r.init,
                on_epoch=self._on_epoch,
            )
            model.save(self.output)
            # kept: another session may save a model of the same name after this one
            self.model_file = self.output.read_bytes()
            self.model, self.metrics = model, metrics
            self._end("done")
        except Cancelled:
            self._end("cancelled")
        except Exception as exc:  # noqa: BLE001 - shown on the page, never lost in a thread
            self.error = f"{type(exc).__name__}: {exc}"
            self._end("failed")

    def _end(self, state: str) -> None:
        self.finished = time.monotonic()
        self.state = state
