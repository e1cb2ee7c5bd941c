"""Gradient-boosted trees beside the network: a member's second opinion, blended into its output.

A fingerprint forest is the baseline a modeller tries first, and on small and classification
sets it often beats a graph network; the two err differently, so their blend beats both
(``benchmarks/blend_study.py``). Each member of a model may carry a :class:`TreeBlend`: one
LightGBM model per task on the features every molecule already has (the 2,048-bit Morgan
fingerprint of the domain columns and the network's RDKit descriptors), fitted on the member's
training rows with early stopping on its validation rows. The trees predict in the network's raw
output space (standardized values, logits), and the member's output becomes
``weight * network + (1 - weight) * trees`` there. One weight serves every member of a model,
chosen on all their validation rows at once (:func:`choose_weight`; a cross-validation
ensemble's members together hold out every molecule); so everything downstream of the raw
output (units, temperatures, conformal scores, error model) sees the blend.

Stored in the model file as LightGBM's own text format (compressed), which is parsed, never
executed, on load.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import torch

from molpred.features import Featurized
from molpred.featurize import FP_BITS
from molpred.parallel import default_workers

__all__ = [
    "TreeBlend",
    "tree_features",
    "tree_outputs",
    "fit_trees",
    "choose_weight",
    "WEIGHTS",
    "PRIOR_ROWS",
]

# the network's share, chosen on validation rows: never 0 (the network always has a say, and
# its explanations mean something); 1 is the network alone (no trees kept)
_STEP = 0.05
WEIGHTS = np.round(np.arange(_STEP, 1.0001, _STEP), 2)
# validation rows' worth of belief that the network alone is best, added to what the rows show
# (:func:`choose_weight`)
PRIOR_ROWS = 10
_ROUNDS, _PATIENCE = 2000, 100
_PARAMS = {
    "learning_rate": 0.03,
    "num_leaves": 31,
    "min_data_in_leaf": 5,
    "feature_fraction": 0.3,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "deterministic": True,  # the same data and seed give the same trees (the page = the CLI)
    "force_row_wise": True,
    "verbosity": -1,
}


def tree_features(fingerprints: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
    """Packed Morgan bits ``[N, 256]`` and descriptors ``[N, D]`` -> ``[N, 2048 + D]`` float32."""
    bits = np.unpackbits(np.asarray(fingerprints, dtype=np.uint8), axis=1, count=FP_BITS)
    return np.hstack([bits.astype(np.float32), np.asarray(descriptors, dtype=np.float32)])


def tree_outputs(members: Sequence, feats: Featurized) -> list[np.ndarray | None]:
    """Each member's trees' raw outputs ``[N, T]`` (NaN for failed rows; None for a member
    without trees): the CPU half of :func:`molpred.models.member_outputs`, run by a worker
    that feeds a GPU."""
    ok = np.flatnonzero([g is not None for g in feats.graphs])
    x = tree_features(feats.fingerprints[ok], feats.descriptors[ok]) if len(ok) else None
    outputs: list[np.ndarray | None] = []
    for m in members:
        if m.trees is None:
            outputs.append(None)
            continue
        out = np.full((len(feats.graphs), len(m.trees.boosters)), np.nan, dtype=np.float32)
        if x is not None:
            out[ok] = m.trees.raw(x)
        outputs.append(out)
    return outputs


@dataclass
class TreeBlend:
    """One booster per task (None: that task is the network's alone) and the network's share."""

    boosters: list[lgb.Booster | None]
    weight: float

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The trees' raw outputs ``[N, T]`` (NaN for a task without a booster).

        On as many threads as torch has in this process: one in a scoring worker (it sets its
        share of the cores), every core where one process scores alone (``workers=1``), the
        cores the featurizing workers leave where they feed a GPU
        (:func:`molpred.parallel.scoring_threads`). A row's prediction does not depend on the
        thread count."""
        out = np.full((len(x), len(self.boosters)), np.nan, dtype=np.float32)
        threads = torch.get_num_threads()
        for t, booster in enumerate(self.boosters):
            if booster is not None and len(x):
                out[:, t] = booster.predict(x, raw_score=True, num_threads=threads)
        return out

    def blend(self, network: torch.Tensor, x: np.ndarray) -> torch.Tensor:
        """The member's raw output ``[N, T]``: the network's blended with the trees'."""
        return self.mix(network, torch.from_numpy(self.raw(x)).to(network))

    def mix(
        self, network: torch.Tensor, trees: torch.Tensor, weight: float | None = None
    ) -> torch.Tensor:
        """:meth:`blend` from the trees' raw outputs (at ``weight``, default the chosen one)."""
        weight = self.weight if weight is None else weight
        mixed = weight * network + (1.0 - weight) * trees
        return torch.where(torch.isnan(trees), network, mixed)

    def disagreement(self, network: torch.Tensor, trees: torch.Tensor) -> torch.Tensor:
        """The variance between the two opinions, ``w (1 - w) (network - trees)^2`` (that of a
        two-point mixture with the blend's weights), in raw units; 0 where a task has no trees.
        Added to the network's own variance: where network and trees disagree, the member is
        less sure."""
        between = self.weight * (1.0 - self.weight) * (network - trees) ** 2
        return torch.nan_to_num(between, nan=0.0)

    def to_state(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """JSON metadata and tensors (each booster's compressed text, without what only
        training reads: :func:`_for_prediction`) for the model file."""
        tensors = {
            f"booster{t}": torch.frombuffer(
                bytearray(zlib.compress(_for_prediction(b.model_to_string()).encode(), 9)),
                dtype=torch.uint8,
            )
            for t, b in enumerate(self.boosters)
            if b is not None
        }
        return {"weight": self.weight, "tasks": len(self.boosters)}, tensors

    @classmethod
    def from_state(cls, meta: dict, tensors: dict[str, torch.Tensor]) -> TreeBlend:
        boosters = []
        for t in range(meta["tasks"]):
            stored = tensors.get(f"booster{t}")
            text = None if stored is None else _inflate(stored.numpy().tobytes()).decode()
            boosters.append(None if text is None else lgb.Booster(model_str=text))
        return cls(boosters, float(meta["weight"]))


# a booster's text is a few MB (the panel's largest under 4): a file claiming far more is refused
# before it fills the memory of the page that was handed it
MAX_BOOSTER_BYTES = 256 << 20


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    text = inflater.decompress(data, MAX_BOOSTER_BYTES)
    if inflater.unconsumed_tail:
        raise ValueError(f"a stored booster inflates beyond {MAX_BOOSTER_BYTES >> 20} MB")
    return text


# lines of LightGBM's text format that prediction never reads (split gains, counts and weights
# of the training rows per node) and the byte offsets of the trees that removing them breaks;
# without them a booster loads and predicts the same, in about half the space
_TRAINING_ONLY = (
    "tree_sizes=",
    "split_gain=",
    "leaf_weight=",
    "leaf_count=",
    "internal_value=",
    "internal_weight=",
    "internal_count=",
)


_IMPORTANCES = re.compile(r"^feature_importances:\n(?:[^\n]*=[^\n]*\n)*", re.MULTILINE)


def _for_prediction(text: str) -> str:
    """The booster's text without what prediction never reads (and without the feature
    importances, which are counted from the split gains)."""
    text = _IMPORTANCES.sub("feature_importances:\n", text)
    return "\n".join(line for line in text.split("\n") if not line.startswith(_TRAINING_ONLY))


def fit_trees(
    train_x: np.ndarray,
    train_raw: np.ndarray,
    val_x: np.ndarray,
    val_raw: np.ndarray,
    task_types: Sequence[str],
    seed: int = 0,
) -> TreeBlend | None:
    """Trees on the training rows (targets in raw space: standardized values, 0/1 labels),
    early-stopped on the validation rows; their share is the caller's to choose
    (:func:`choose_weight`), 1.0 (the network alone) until then. None when no task has the rows
    to fit and stop on."""
    if len(val_x) == 0:
        return None
    boosters: list[lgb.Booster | None] = []
    for t, kind in enumerate(task_types):
        tr, va = ~np.isnan(train_raw[:, t]), ~np.isnan(val_raw[:, t])
        classes = len(np.unique(train_raw[tr, t])), len(np.unique(val_raw[va, t]))
        if tr.sum() < 10 or va.sum() < 2 or (kind == "classification" and min(classes) < 2):
            boosters.append(None)  # too little to fit or to stop on: the network alone
            continue
        params = {
            **_PARAMS,
            "objective": "binary" if kind == "classification" else "regression",
            "seed": seed,
            "num_threads": default_workers(),  # not torch's setting: scoring changes that
        }
        train_set = lgb.Dataset(train_x[tr], train_raw[tr, t], free_raw_data=True)
        val_set = lgb.Dataset(val_x[va], val_raw[va, t], reference=train_set)
        boosters.append(
            lgb.train(
                params,
                train_set,
                _ROUNDS,
                valid_sets=[val_set],
                callbacks=[lgb.early_stopping(_PATIENCE, verbose=False)],
            )
        )
    if all(b is None for b in boosters):
        return None
    return TreeBlend(boosters, 1.0)


def choose_weight(
    score: Callable[[float], float], n_rows: int, prior_rows: float = PRIOR_ROWS
) -> float:
    """The network's share of the blend (1.0: the network alone), from ``score(weight)``, the
    validation metric of the blend at that share (higher is better) on ``n_rows`` molecules.

    The weight that scores best, pulled toward the network as if ``prior_rows`` more rows had
    found the network alone best: ``(n_rows * best + prior_rows) / (n_rows + prior_rows)``, on
    the grid of :data:`WEIGHTS`. On a handful of rows the best score is mostly chance (on small
    FreeSolv subsets, trees much worse than the network won on five validation rows and made the
    model worse); on hundreds of rows the best weight stands. ``benchmarks/blend_weight_rule.py``
    chose this rule and :data:`PRIOR_ROWS` on held-out rows.
    """
    weights = WEIGHTS[::-1]  # from the network's side: a tie keeps the larger share
    scores = np.array([score(float(w)) for w in weights], dtype=float)
    if not np.isfinite(scores).any():
        return 1.0
    best = float(weights[int(np.nanargmax(scores))])  # the first maximum: the largest share
    shrunk = (n_rows * best + prior_rows) / (n_rows + prior_rows)
    return float(round(round(shrunk / _STEP) * _STEP, 2))
