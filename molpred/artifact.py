"""One self-contained model file: save and load without executing code.

The file is written with ``torch.save`` and holds only tensors, strings and numbers::

    {"format": "molpred-model", "format_version": 4,
     "metadata": "<JSON: configs, task names/types, featurizer spec, metrics, calibration, ...>",
     "metadata_sha256": "<hex>",
     "members": [state_dict, ...],
     "extras": {"domain_fingerprints": uint8 tensor, "domain_embeddings": float16 tensor,
                "trees<member>_booster<task>": uint8 tensor (compressed LightGBM text), ...}}

It is read with ``torch.load(weights_only=True)``, which refuses pickled code. A SHA-256 of all
tensors is stored in the metadata, and a SHA-256 of the metadata beside it; both are verified on
load, so a truncated or edited file (a weight, a task name, a calibration threshold) fails loudly.

Older files are upgraded on load rather than refused: version 1 (no variance head, temperatures
or applicability domain) loads with those parts absent, and predicts exactly as before; version 2
has no metadata checksum; version 3 has no trees (:mod:`molpred.trees`). A file with trees is
version 4, so a molpred that would ignore them refuses it instead of predicting differently; a
model without trees is still written as version 3.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from molpred._version import __version__
from molpred.featurize import (
    ATOM_FIELDS,
    BOND_FIELDS,
    DESCRIPTOR_NAMES,
    FEATURIZER_VERSION,
)
from molpred.io import atomic_path
from molpred.models import ModelConfig, MolModel, build_model
from molpred.trees import TreeBlend
from molpred.trust.domain import Domain
from molpred.trust.error_model import TaskErrorModel

__all__ = ["MolpredModel", "ModelInfo", "ModelFileError", "load_model", "FORMAT_VERSION"]

FORMAT = "molpred-model"
FORMAT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)


class ModelFileError(ValueError):
    """A model file cannot be used: not a molpred model, corrupted, or an incompatible version."""


def featurizer_spec() -> dict[str, Any]:
    """What a model's inputs mean; a loaded model must match the installed featurizer."""
    return {
        "version": FEATURIZER_VERSION,
        "atom_fields": [[f.name, len(f)] for f in ATOM_FIELDS],
        "bond_fields": [[f.name, len(f)] for f in BOND_FIELDS],
        "descriptors": list(DESCRIPTOR_NAMES),
    }


def weights_digest(members: Sequence[dict[str, torch.Tensor]]) -> str:
    h = hashlib.sha256()
    for state in members:
        for name in sorted(state):
            t = state[name].detach().cpu().contiguous()
            h.update(name.encode())
            h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def data_fingerprint(smiles: Sequence[str], targets: np.ndarray) -> str:
    """SHA-256 of the training molecules and labels (order-independent)."""
    h = hashlib.sha256()
    for smi, row in sorted(
        zip(smiles, np.round(targets.astype(float), 6).tolist(), strict=True), key=lambda p: p[0]
    ):
        h.update(f"{smi}\t{row}\n".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about its model: read in one place (:meth:`from_dict`, which
    also fills in what older files lack) and written back in the same JSON form."""

    task_names: tuple[str, ...]
    task_types: tuple[str, ...]
    # How input structures are prepared (see :func:`molpred.chem.standardize`); files from
    # before the choice existed were all trained on parent structures.
    standardization: str = "parent"
    model_config: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    split: str | None = None
    n_train_molecules: int | None = None
    data_fingerprint: str = ""
    created: str = ""
    molpred_version: str = __version__
    provenance: dict[str, Any] = field(default_factory=dict)
    # sorted held-out nonconformity scores per task; empty where a task is not calibrated
    conformal_scores: tuple[tuple[float, ...], ...] = ()
    n_calibration: tuple[int, ...] = ()
    domain_threshold: dict[str, Any] | None = None
    # per task, the fitted expected-error model (see molpred.trust.error_model); None in
    # files from before it, whose spread is the ensemble's own
    error_model: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, meta: dict[str, Any]) -> ModelInfo:
        calibration = meta.get("calibration") or {}
        scores = calibration.get("conformal_scores") or []
        return cls(
            task_names=tuple(meta["task_names"]),
            task_types=tuple(meta["task_types"]),
            standardization=meta.get("standardization", "parent"),
            model_config=dict(meta.get("model_config", {})),
            train_config=dict(meta.get("train_config", {})),
            metrics=meta.get("metrics", {}),
            split=meta.get("split"),
            n_train_molecules=meta.get("n_train_molecules"),
            data_fingerprint=meta.get("data_fingerprint", ""),
            created=meta.get("created", ""),
            molpred_version=meta.get("molpred_version", "?"),
            provenance=meta.get("provenance") or {},
            conformal_scores=tuple(tuple(s or ()) for s in scores),
            n_calibration=tuple(calibration.get("n_calibration") or ()),
            domain_threshold=calibration.get("domain_threshold"),
            error_model=calibration.get("error_model"),
        )

    def to_dict(self) -> dict[str, Any]:
        calibration: dict[str, Any] = {}
        if self.conformal_scores:
            calibration = {
                "conformal_scores": [list(s) for s in self.conformal_scores],
                "n_calibration": list(self.n_calibration),
            }
        if self.domain_threshold is not None:
            calibration["domain_threshold"] = self.domain_threshold
        if self.error_model is not None:
            calibration["error_model"] = self.error_model
        return {
            "task_names": list(self.task_names),
            "task_types": list(self.task_types),
            "standardization": self.standardization,
            "model_config": self.model_config,
            "train_config": self.train_config,
            "metrics": self.metrics,
            "split": self.split,
            "n_train_molecules": self.n_train_molecules,
            "data_fingerprint": self.data_fingerprint,
            "created": self.created,
            "molpred_version": self.molpred_version,
            "provenance": self.provenance,
            "calibration": calibration,
        }

    @property
    def card(self) -> str | None:
        """The bundled model card this model was built for (None for a user's model)."""
        return self.provenance.get("card")


@dataclass
class MolpredModel:
    """A trained model: one or more members (ensemble) plus everything needed to use them."""

    members: list[MolModel]
    info: ModelInfo
    problems: pd.DataFrame | None = None  # rows training could not use; not saved
    domain: Domain | None = None  # applicability domain (None for old files)

    @property
    def task_names(self) -> list[str]:
        return list(self.info.task_names)

    @property
    def task_types(self) -> list[str]:
        return list(self.info.task_types)

    @property
    def standardization(self) -> str:
        return self.info.standardization

    def conformal_scores(self, task: int) -> list[float] | None:
        """Sorted held-out nonconformity scores of task ``task`` (None if not calibrated)."""
        scores = self.info.conformal_scores
        return list(scores[task]) if task < len(scores) and scores[task] else None

    def error_model(self, task: int) -> TaskErrorModel | None:
        """Task ``task``'s expected-error model (None: the spread is the ensemble's own)."""
        stored = self.info.error_model
        if stored is None or stored["tasks"][task] is None:
            return None
        return TaskErrorModel.from_dict(stored["tasks"][task])

    def error_median(self, task: int) -> float:
        """The median expected error of task ``task`` on validation molecules."""
        return float(self.info.error_model["medians"][task])

    @property
    def config(self) -> ModelConfig:
        return self.members[0].config

    @classmethod
    def from_training(
        cls,
        members,
        dataset,
        *,
        model_config,
        train_config,
        metrics,
        split,
        provenance=None,
        calibration=None,
        domain=None,
        standardization="none",
    ) -> MolpredModel:
        calibration = calibration or {}
        info = ModelInfo(
            task_names=tuple(dataset.task_names),
            task_types=tuple(dataset.task_types),
            standardization=standardization,
            model_config=model_config,
            train_config=train_config,
            metrics=metrics,
            split=split,
            n_train_molecules=len(dataset),
            data_fingerprint=data_fingerprint(dataset.smiles, dataset.targets),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            provenance=provenance or {},
            conformal_scores=tuple(tuple(s) for s in calibration.get("conformal_scores", [])),
            n_calibration=tuple(calibration.get("n_calibration", [])),
            domain_threshold=calibration.get("domain_threshold"),
            error_model=calibration.get("error_model"),
        )
        return cls(list(members), info, problems=dataset.problems, domain=domain)

    def _tensors(self) -> tuple[list[dict[str, torch.Tensor]], dict[str, torch.Tensor], list]:
        """What the file stores as tensors: each member's state, the extras (domain, trees),
        and each member's trees metadata (None: no trees)."""
        states = [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in self.members]
        extras = self.domain.tensors() if self.domain is not None else {}
        trees = []
        for j, m in enumerate(self.members):
            tree_meta, tensors = m.trees.to_state() if m.trees is not None else (None, {})
            trees.append(tree_meta)
            extras.update({f"trees{j}_{k}": v for k, v in tensors.items()})
        return states, extras, trees

    def weights_sha256(self) -> str:
        """SHA-256 of every tensor the file stores (weights, domain, trees): two models with
        the same digest predict the same."""
        states, extras, _ = self._tensors()
        return weights_digest([*states, extras])

    def save(self, path: str | Path) -> Path:
        """Write the model file atomically; returns its path."""
        states, extras, trees = self._tensors()
        meta = replace(self.info, molpred_version=__version__).to_dict()
        if self.domain is not None:
            meta["domain"] = self.domain.meta()
        has_trees = any(t is not None for t in trees)
        if has_trees:
            meta["trees"] = trees
        meta.update(
            torch_version=torch.__version__.split("+")[0],
            model_config=_config_dict(self.config),
            featurizer=featurizer_spec(),
            n_members=len(states),
            weights_sha256=weights_digest([*states, extras]),
        )
        metadata = json.dumps(meta, default=_json_default)
        payload = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION if has_trees else 3,  # v3 readers read the rest
            "metadata": metadata,
            # covers tasks, calibration, conformal scores and thresholds, and through
            # weights_sha256 every tensor
            "metadata_sha256": hashlib.sha256(metadata.encode()).hexdigest(),
            "members": states,
            "extras": extras,
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return Path(path)


def _config_dict(config: ModelConfig) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(config)
    d["task_types"] = list(d["task_types"])
    return d


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def load_model(
    path: str | Path | bytes, device: str = "cpu", *, name: str | None = None
) -> MolpredModel:
    """Load a model file written by :meth:`MolpredModel.save` (never unpickles code).

    ``path`` may also be the file's content as ``bytes`` (an upload); ``name`` is then what
    errors call it.

    Raises
    ------
    ModelFileError
        For a missing, corrupted, foreign, tampered or incompatible file, with the reason.
    """
    if isinstance(path, bytes | bytearray | memoryview):
        p, source = Path(name or "uploaded model file"), io.BytesIO(bytes(path))
    else:
        p = source = Path(path)
        if p.is_dir():
            raise ModelFileError(f"{p} is a directory, not a model file")
        if not p.is_file():
            raise ModelFileError(f"model file not found: {p}")
    try:  # torch.save writes a zip archive; anything else is not ours
        archive = zipfile.is_zipfile(source)
    except (zipfile.BadZipFile, OSError, ValueError):  # a damaged end of the archive
        archive = False
    if not archive:
        raise ModelFileError(
            f"{p.name} is not a readable molpred model file (not a PyTorch archive)"
        )
    if isinstance(source, io.BytesIO):
        source.seek(0)
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{p.name} is not a readable molpred model file: {first}") from None
    except Exception as exc:  # weights_only refusing a pickled object lands here too
        raise ModelFileError(
            f"{p.name} was refused: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{p.name} is not a molpred model file")
    version = payload.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ModelFileError(
            f"{p.name} has model-file format version {version}; this molpred "
            f"({__version__}) reads versions {READABLE_VERSIONS}. Upgrade "
            "molpred or retrain the model."
        )
    try:
        model = _from_payload(payload, version, p)
    except ModelFileError:
        raise
    except Exception as exc:  # a damaged file whose checksums could not tell, or a foreign one
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ModelFileError(
            f"{p.name} is damaged or was not written by a compatible molpred "
            f"({type(exc).__name__}{': ' + first if first else ''})"
        ) from exc
    for member in model.members:  # a missing or full device is not the file's fault
        member.to(device)
    return model


def _from_payload(payload: dict, version: int, p: Path) -> MolpredModel:
    """The model (on the CPU) of a loaded file's payload, its checksums verified (see
    :func:`load_model`)."""
    if (
        version >= 3
        and payload.get("metadata_sha256")
        != hashlib.sha256(payload["metadata"].encode()).hexdigest()
    ):
        raise ModelFileError(
            f"{p.name} failed its checksum: the metadata (tasks, calibration, "
            "thresholds) were altered or damaged"
        )
    meta = json.loads(payload["metadata"])
    if version < 4 and (
        meta.get("trees") or any("_booster" in k for k in payload.get("extras", {}))
    ):
        # trees came with version 4, and the metadata checksum with 3: a lower version number
        # on a newer file would skip the checks, so it is refused
        raise ModelFileError(
            f"{p.name} says format version {version} but holds parts of version 4 (trees): "
            "altered or damaged"
        )
    if version == 1 and payload.get("extras"):  # version 1 had no extras, nor their digest
        raise ModelFileError(
            f"{p.name} says format version 1 but holds parts of later versions: altered or damaged"
        )
    states = payload["members"]
    extras = payload.get("extras", {})
    digest = weights_digest(states if version == 1 else [*states, extras])
    if digest != meta.get("weights_sha256"):
        raise ModelFileError(f"{p.name} failed its checksum: the weights were altered or damaged")
    if meta["featurizer"] != featurizer_spec():
        trained_with = meta["featurizer"]["version"]
        raise ModelFileError(
            f"{p.name} was trained with featurizer version {trained_with}, "
            "incompatible with this molpred"
        )
    if version == 1:  # no variance head or temperatures yet
        meta["model_config"] = {"variance_head": False, **meta["model_config"]}
        for state in states:
            state.setdefault("temperature", torch.ones(len(meta["task_names"])))
    config = ModelConfig(**meta["model_config"])
    members = []
    for j, state in enumerate(states):
        model = build_model(config)
        model.load_state_dict(state, strict=True)
        stored = meta.get("trees", [None] * len(states))[j]
        if stored is not None:  # LightGBM's text format: parsed, never executed
            prefix = f"trees{j}_"
            tensors = {k[len(prefix) :]: v for k, v in extras.items() if k.startswith(prefix)}
            model.trees = TreeBlend.from_state(stored, tensors)
        members.append(model.eval())
    domain = None
    if "domain_fingerprints" in extras and "domain" in meta:
        d = meta["domain"]
        domain = Domain(
            extras["domain_fingerprints"],
            extras["domain_embeddings"],
            d["latent_scale"],
            d["threshold"],
            d.get("rule", ""),
            d.get("smiles"),
            extras.get("domain_targets"),
            error_threshold=d.get("error_threshold"),
        )
    return MolpredModel(members, ModelInfo.from_dict(meta), domain=domain)
