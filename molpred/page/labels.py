"""What a person reads for each output column on the page and in its downloads: display names
with units from the bundled model cards, and what the trust columns mean. No Streamlit here."""

from __future__ import annotations

from collections import Counter

from molpred.artifact import MolpredModel
from molpred.medchem import PROPERTY_UNITS
from molpred.predictor import Predictor
from molpred.pretrained import CARDS, Card

__all__ = ["card_of", "value_labels", "column_names", "preferred", "TRUST_HELP"]


def card_of(name: str, model: MolpredModel) -> Card | None:
    """The bundled model card of ``model`` (None for a user's model, even one that shares a
    bundled model's name)."""
    card = CARDS.get(name)
    return card if card is not None and model.info.card == name else None


def value_labels(predictor: Predictor) -> dict[str, str]:
    """Prediction value column -> display label with units, for every (model, task) of the
    panel (a label two models share names its model), then the computed properties."""
    found = {}
    for model, columns in zip(predictor.models, predictor.schema.models, strict=True):
        card = card_of(columns.name, model)
        for task in columns.tasks:
            label = card.display(task.task) if card else task.task
            unit = f" ({card.unit(task.task)})" if card and card.unit(task.task) else ""
            found[task.value] = (columns.name, label, unit)
    labels = [label for _, label, _ in found.values()]
    out = {
        col: (f"{label} · {name}" if labels.count(label) > 1 else label) + unit
        for col, (name, label, unit) in found.items()
    }
    for prop, unit in PROPERTY_UNITS.items():
        out[prop] = f"{prop} ({unit})" if unit else prop
    return out


TRUST_HELP = {
    "_std": "Expected error of this prediction (same units), learned from held-out molecules: "
    "it grows with distance from the training set and the model's own doubt. Larger means "
    "less certain; rank by it to find the risky predictions.",
    "_spread": "Spread of the predicted probability: sqrt(p(1-p)) for one model, the members' "
    "disagreement for an ensemble. It follows the probability, not the distance from the "
    "training set: the prediction set says how sure the model is.",
    "_pct_approved": "Percentile of this prediction among FDA-approved drugs (ClinTox), each "
    "predicted by a model that did not train on it: 90 means higher than 90% of approved drugs.",
    "_lower": "Lower end of the conformal interval at the sidebar's confidence.",
    "_upper": "Upper end of the conformal interval at the sidebar's confidence.",
    "_set": "Conformal prediction set: the classes (0, 1) still plausible at the sidebar's "
    "confidence; '0,1' means the model cannot tell, empty means neither is plausible.",
    "domain_similarity": "Highest Tanimoto similarity (Morgan, radius 2) to the model's "
    "training molecules: below ~0.3 the molecule is unlike what it learned.",
    "latent_distance": "Distance to the nearest training molecules in the model's own "
    "representation, relative to typical new molecules: ~1 is usual, above 2 "
    "is far from anything it learned.",
    "in_domain": "Whether the model's validation error holds here: false when the expected "
    "error is higher than for most validation molecules (unlike the training set, or in a "
    "region where the model is unsure).",
}


def column_names(predictor: Predictor, columns: dict[str, str]) -> dict[str, str]:
    """Every output column -> the name a person reads (labels of the value columns, with what
    each trust column is)."""
    names = dict(columns)
    shorts = _without_units(
        {t.value: columns.get(t.value, t.value) for t in predictor.schema.tasks}
    )
    for task in predictor.schema.tasks:
        short = shorts[task.value]
        names[task.std] = f"{short} sd"
        if task.pct:
            names[task.pct] = f"{short} percentile (approved drugs)"
        if task.kind == "regression":
            names[task.lower], names[task.upper] = f"{short} lower", f"{short} upper"
        elif task.set:
            names[task.set] = f"{short} set"
    for model in predictor.schema.models:
        where = f" ({model.name})" if model.prefix else ""
        if model.domain:
            names[model.similarity] = f"similarity to training set{where}"
            names[model.latent] = f"latent distance{where}"
            names[model.in_domain] = f"in domain{where}"
    return names


def _without_units(labels: dict[str, str]) -> dict[str, str]:
    """Each label without its trailing ``(unit)``, unless that makes two labels the same
    ("logS (ESOL) (log mol/L)" and "logS (AqSolDB) (log mol/L)" stay apart: names repeated in
    a download overwrite each other in an SDF)."""
    short = {
        col: label.rsplit(" (", 1)[0] if label.endswith(")") else label
        for col, label in labels.items()
    }
    counts = Counter(short.values())
    return {col: s if counts[s] == 1 else labels[col] for col, s in short.items()}


def preferred(predictor: Predictor) -> dict[str, str]:
    """Value column -> ranking hint of its bundled model card."""
    return {
        task.value: card.preference(task.task)
        for model, columns in zip(predictor.models, predictor.schema.models, strict=True)
        if (card := card_of(columns.name, model))
        for task in columns.tasks
        if card.preference(task.task)
    }
