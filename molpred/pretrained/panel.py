"""The ADMET panel's models: which endpoints (:mod:`molpred.pretrained.endpoints`) share one
bundled model file.

A :class:`PanelModel` is one model file: the endpoints that share its encoder. Which endpoints
share one (multitask) and which stand alone was decided by scaffold cross-validation
(``python -m molpred.pretrained.build --compare``; table in ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from molpred.pretrained.endpoints import CYP_INHIBITION, ENDPOINTS, TOX21

__all__ = ["PanelModel", "PANEL"]


@dataclass(frozen=True)
class PanelModel:
    """One bundled model file of the panel and the endpoints its heads predict."""

    name: str
    title: str
    endpoints: tuple[str, ...]
    shown: tuple[str, ...] = ()  # what the page's table shows at first (default: the first)
    # How structures are prepared, for training and scoring (molpred.chem.standardize): the
    # parent (largest organic fragment, neutralized) where the property is the parent's, so a
    # salt scores as its parent; "none" where the data measure the salt form itself.
    standardization: str = "parent"

    def __post_init__(self) -> None:
        unknown = set(self.shown) - set(self.endpoints)
        if unknown:
            raise ValueError(f"{self.name}: shown endpoints it does not predict: {unknown}")

    @property
    def headline(self) -> tuple[str, ...]:
        """The endpoints the page's table shows before the user picks columns."""
        return self.shown or self.endpoints[:1]

    @property
    def task(self) -> str:
        kinds = {ENDPOINTS[e].task for e in self.endpoints}
        if len(kinds) > 1:
            raise ValueError(f"{self.name}: mixes regression and classification endpoints")
        return kinds.pop()


# Chosen by scaffold cross-validation, multitask against single-task per endpoint
# (``python -m molpred.pretrained.build --compare GROUP``; RESULTS.md "The ADMET panel").
PANEL: dict[str, PanelModel] = {
    m.name: m
    for m in (
        # the MoleculeNet sets, each one model as published (Tox21 and ClinTox multitask)
        PanelModel(
            "solubility",
            "Aqueous solubility (ESOL)",
            ("measured log solubility in mols per litre",),
        ),
        PanelModel("lipophilicity", "Lipophilicity (logD 7.4)", ("exp",)),
        PanelModel("hydration", "Hydration free energy (FreeSolv)", ("expt",)),
        PanelModel("bbb", "Blood-brain barrier penetration (BBBP)", ("p_np",)),
        PanelModel("tox21", "Tox21 (12 assays)", tuple(TOX21), shown=("SR-p53",)),
        PanelModel(
            "clintox", "Clinical toxicity (ClinTox)", ("FDA_APPROVED", "CT_TOX"), shown=("CT_TOX",)
        ),
        PanelModel(
            "absorption",
            "Absorption: P-gp, oral bioavailability",
            ("Pgp_inhibitor", "oral_bioavailability"),
        ),
        PanelModel("ppb", "Plasma protein binding", ("log10_fu",)),
        PanelModel(
            "cyp_inhibition",
            "CYP inhibition: 1A2, 2C19, 2C9, 2D6, 3A4",
            CYP_INHIBITION,
            shown=("CYP3A4_inhibitor", "CYP2D6_inhibitor"),  # the isoforms most drugs meet
        ),
        *(
            PanelModel(f"cyp{c.lower()}_substrate", f"CYP{c} substrate", (f"CYP{c}_substrate",))
            for c in ("2C9", "2D6", "3A4")
        ),
        PanelModel(
            "cyp_ic50",
            "CYP inhibition potency: 2C9, 2D6, 3A4 IC50",
            ("CYP2C9_IC50", "CYP2D6_IC50", "CYP3A4_IC50"),
        ),
        PanelModel(
            "clearance",
            "Microsomal clearance: human, mouse, rat",
            ("CLint_human", "CLint_mouse", "CLint_rat"),
        ),
        # AqSolDB measures salts as such (sodium ibuprofen dissolves far better than ibuprofen)
        PanelModel(
            "aqueous_solubility",
            "Aqueous solubility (AqSolDB)",
            ("logS_AqSolDB",),
            standardization="none",
        ),
        PanelModel("ames", "Ames mutagenicity", ("Ames",)),
        PanelModel(
            "carcinogen_skin",
            "Carcinogenicity and skin reaction",
            ("carcinogen", "skin_sensitizer"),
        ),
    )
}
