"""molpred: molecular property prediction with graph neural networks.

Python API (the CLI and the web app call the same functions)::

    import molpred
    model, metrics = molpred.train("data/delaney.csv", "smiles", ["logS"])
    model.save("esol.pt")
    molpred.predict(molpred.load_model("esol.pt"), ["CCO", "c1ccccc1"])  # -> pandas.DataFrame

The names below load on first use, so ``molpred --help`` starts without importing torch.
"""

import os
import sys
import types
from importlib import import_module

from molpred._version import __version__

# OpenMP threads that spin while idle steal the cores from featurization worker processes:
# sleeping instead scores 10% more molecules/s in `predict --workers 2` and trains equally fast
# (measured on 2 cores). Set before torch loads libgomp; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_HOMES = {
    "train": "molpred.train",
    "TrainConfig": "molpred.fitting",
    "predict": "molpred.predict",
    "predict_file": "molpred.predict",
    "Predictor": "molpred.predictor",
    "load_model": "molpred.artifact",
    "MolpredModel": "molpred.artifact",
    "ModelFileError": "molpred.artifact",
    "ModelConfig": "molpred.models",
    "standardize": "molpred.chem",
    "InvalidMoleculeError": "molpred.chem",
    "DataError": "molpred.io",
}

__all__ = ["__version__", *_HOMES]


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'molpred' has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


class _Package(types.ModuleType):
    """``molpred.train`` and ``molpred.predict`` name both a function of the API and the module
    that holds it. Importing such a module would set the package attribute to the module (so
    ``molpred.predict(model, smiles)`` failed once anything had imported
    ``molpred.predict``); the function keeps the name."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _HOMES.get(name) == f"{__name__}.{name}":
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
