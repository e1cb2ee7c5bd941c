"""Hyperparameter studies with Optuna: one search space, pruned trials, persistent storage.

- :mod:`~molpred.tune.study`: :func:`suggest` is the whole search space; :func:`run_study`
  optimizes the validation metric (mean over folds with ``cv``); every epoch is reported and a
  pruner stops weak trials early. A worker whose trials keep failing stops, with the reason.
- :mod:`~molpred.tune.storage`: studies live in an RDB storage, a SQLite file by default
  (rerunning the same command resumes the study) or a PostgreSQL URL that several
  ``molpred tune`` workers on several machines share. Trials send heartbeats; a trial whose
  worker died is marked failed and re-queued once. A study belongs to one question (metric,
  targets, molecules, splits, training budget, stored with it): a run that asks another under
  the same name is refused, since its trials' values could not be compared.
- :mod:`~molpred.tune.results`: :func:`export_best` writes the best configuration for
  ``molpred train --config``; :func:`write_report` writes a self-contained HTML report (no
  network needed to view it).
"""

from molpred.tune.results import export_best, load_config, write_report
from molpred.tune.storage import StudyError, load_study, redact, storage_url
from molpred.tune.study import TuneSettings, run_study, suggest

__all__ = [
    "suggest",
    "TuneSettings",
    "run_study",
    "load_study",
    "export_best",
    "load_config",
    "write_report",
    "redact",
    "storage_url",
    "StudyError",
]
