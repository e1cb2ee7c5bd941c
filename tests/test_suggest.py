"""Next-batch suggestion: strategies on synthetic objectives whose right answer is known, the
diversity limits, exclusion of measured molecules, and the command line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from molpred.cli import main
from molpred.measured import measured_molecules
from molpred.predictor import Predictor
from molpred.ranking import Objective
from molpred.space import clusters
from molpred.suggest import BatchOptions, objective_draws, suggest
from tests.conftest import ESOL_TARGET, train_small

ALCOHOLS = ["C" * k + "O" for k in range(1, 41)]  # 40 distinct acyclic molecules
UP = [Objective("y", "higher")]


def _table(smiles, y, sd=0.0, error=None) -> pd.DataFrame:
    n = len(smiles)
    return pd.DataFrame(
        {
            "smiles": smiles,
            "y": np.asarray(y, dtype=float),
            "y_std": np.broadcast_to(np.asarray(sd, dtype=float), (n,)).copy(),
            "y_lower": 0.0,  # a regression task's interval: its sd is sampled
            "error": error if error is not None else [""] * n,
        }
    )


def _free(strategy="greedy", n=5, **kw) -> BatchOptions:
    return BatchOptions(n=n, strategy=strategy, max_per_scaffold=None, **kw)


def test_greedy_takes_the_best_in_order():
    y = np.random.default_rng(0).permutation(np.arange(40.0))
    batch = suggest(_table(ALCOHOLS, y), UP, _free())
    assert batch["y"].tolist() == [39.0, 38.0, 37.0, 36.0, 35.0]
    assert batch["pick"].tolist() == [1, 2, 3, 4, 5]
    assert batch.index.tolist() == [int(np.flatnonzero(y == v)[0]) for v in batch["y"]]
    low = suggest(_table(ALCOHOLS, y), [Objective("y", "lower")], _free(n=2))
    assert low["y"].tolist() == [0.0, 1.0]


def test_the_candidates_own_columns_named_like_the_batchs_are_kept():
    y = np.arange(40.0)
    table = _table(ALCOHOLS, y).assign(scaffold="series A", pick="yes")  # a chemist's notes
    batch = suggest(table, UP, _free(n=3))
    assert batch["pick"].tolist() == [1, 2, 3] and (batch["input_pick"] == "yes").all()
    assert (batch["input_scaffold"] == "series A").all() and (batch["scaffold"] == "").all()


def test_ucb_prefers_the_uncertain_and_beta_zero_is_greedy():
    y = np.linspace(0, 1, 40)
    sd = np.where(np.arange(40) < 5, 2.0, 0.01)  # the five worst are very uncertain
    table = _table(ALCOHOLS, y, sd)
    explore = suggest(table, UP, _free("ucb", beta=3.0))
    assert set(explore.index) == set(range(5))
    exploit = suggest(table, UP, _free("ucb", beta=0.0))
    assert exploit.index.tolist() == suggest(table, UP, _free()).index.tolist()


def test_expected_improvement_over_the_best_measured():
    y = np.r_[np.full(5, 0.5), np.linspace(0.0, 0.45, 35)]
    sd = np.r_[np.full(5, 0.001), np.full(35, 0.3)]
    table = _table(ALCOHOLS, y, sd)
    measured = pd.DataFrame({"smiles": ["CC(C)O"], "y": [0.9]})  # better than every mean
    picks = suggest(table, UP, _free("ei"), measured=measured)
    # the confident ones cannot beat 0.9; the uncertain ones, best means first, can
    assert not set(picks.index) & set(range(5))
    assert picks.index.tolist() == [39, 38, 37, 36, 35]
    assert "over best measured" in picks["why"].iloc[0]


def test_explore_spends_part_of_the_batch_on_the_largest_expected_error():
    y = np.linspace(0, 1, 40)  # the best last
    sd = np.full(40, 0.1)
    sd[[3, 7, 11]] = [3.0, 2.0, 1.0]  # poor but very uncertain
    batch = suggest(_table(ALCOHOLS, y, sd), UP, _free("greedy", n=5, explore=0.4))
    assert batch.index.tolist() == [39, 38, 37, 3, 7]  # 3 to exploit, then 2 to learn from
    assert [w.startswith("explores") for w in batch["why"]] == [False] * 3 + [True] * 2
    assert "30x the median" in batch["why"].iloc[3]


def _rings(lengths, ends=("O", "N", "Cl")) -> list[str]:
    return [
        f"{ring}{'C' * k}{end}"
        for ring in ("c1ccc(cc1)", "C1CCC(CC1)")
        for k in lengths
        for end in ends
    ]


def test_cover_keeps_the_measured_set_like_the_pool():
    rings = _rings(range(1, 6))
    smiles = ALCOHOLS + rings  # the alcohols are the best; the ring series are elsewhere
    y = np.r_[np.linspace(10, 20, len(ALCOHOLS)), np.random.default_rng(0).random(len(rings))]
    table = _table(smiles, y)
    batch = suggest(table, UP, _free("greedy", n=6, cover=0.5))
    assert batch.index[:3].tolist() == [39, 38, 37]  # the best three first, as greedy alone
    cover = batch.index[3:].tolist()
    assert [("covers chemical space" in w) for w in batch["why"]] == [False] * 3 + [True] * 3
    groups, _ = clusters(smiles, np.ones(len(smiles), bool), 6)  # as suggest: k = n, seed 0
    for i in cover:  # each the best of its cluster that was not picked before it
        earlier = batch.index[: batch.index.get_loc(i)]
        rest = np.setdiff1d(np.flatnonzero(groups == groups[i]), earlier)
        assert y[i] == y[rest].max()
    assert set(cover) - set(range(len(ALCOHOLS)))  # the ring series are short of picks
    plain = suggest(table, UP, _free("greedy", n=6))
    assert set(plain.index) <= set(range(len(ALCOHOLS)))  # without cover: alcohols only

    # with the ring series already well measured, the cover goes to the alcohols instead
    measured = pd.DataFrame({"smiles": _rings(range(6, 30), ("O", "N", "Cl", "F", "Br"))})
    _, counts = clusters(smiles, np.ones(len(smiles), bool), 6, measured["smiles"].tolist())
    assert counts.sum() == pytest.approx(len(measured))
    informed = suggest(table, UP, _free("greedy", n=6, cover=0.5), measured=measured)
    assert set(informed.index[3:]) <= set(range(len(ALCOHOLS)))
    with pytest.raises(ValueError, match="cover"):
        BatchOptions(explore=0.6, cover=0.5)
    BatchOptions(explore=0.8, cover=0.2)  # 1.0 - 0.8 is 0.19999999999999996 in floats


def test_the_batchs_shares_round_half_up_and_add_up_to_the_batch():
    """n=5 at 0.3 explore and 0.7 cover: 1.5 and 3.5 rounded to even gave 2 and 4, six picks
    asked of a batch of five; a half rounds up, and the cover takes what explore leaves."""
    rings = _rings(range(1, 6))
    smiles = ALCOHOLS + rings
    y = np.r_[np.linspace(10, 20, len(ALCOHOLS)), np.random.default_rng(0).random(len(rings))]
    sd = np.full(len(smiles), 0.1)
    sd[[3, 7, 11]] = [3.0, 2.0, 1.0]

    def reasons(**shares):
        batch = suggest(_table(smiles, y, sd), UP, _free("greedy", n=5, **shares))
        return [
            "explore" if w.startswith("explores") else "cover" if "covers chemical" in w else "best"
            for w in batch["why"]
        ]

    assert sorted(reasons(explore=0.3, cover=0.7)) == ["cover"] * 3 + ["explore"] * 2
    assert reasons(explore=0.5).count("explore") == 3  # 2.5 rounds up, not to even


def test_range_objective_is_uncertain_only_near_its_edges():
    table = _table(["CO", "CCO"], [2.0, 3.0], [0.1, 0.1])
    draws = objective_draws(table, [Objective("y", "range", 1.0, 1.0, 3.0)], samples=2000)
    assert draws[0].std() < 1e-6 and draws[1].std() > 0.01


def test_failed_missing_and_duplicate_rows_are_never_picked():
    smiles = ["CCO", "OCC", "C1CC", "CCCO", "CCCCO"]  # OCC is CCO again; C1CC is broken
    error = ["", "", "cannot parse", "", ""]
    table = _table(smiles, [5.0, 4.0, 9.0, np.nan, 1.0], error=error)
    batch = suggest(table, UP, _free(n=5))
    assert batch["smiles"].tolist() == ["CCO", "CCCCO"]


def test_measured_molecules_are_excluded_as_parents():
    smiles = ["C[NH3+]", "CCN", "CCCN"]
    measured = pd.DataFrame({"smiles": ["CN.Cl"]})  # the hydrochloride of the best one
    batch = suggest(_table(smiles, [3.0, 2.0, 1.0]), UP, _free(n=2), measured=measured)
    assert batch["smiles"].tolist() == ["CCN", "CCCN"]
    assert batch.attrs["passed_over_as_measured"] == 1  # what the command line reports
    also = suggest(_table(smiles, [3.0, 2.0, 1.0]), UP, _free(n=1), exclude=["NCC"])
    assert also["smiles"].tolist() == ["C[NH3+]"]


def test_at_most_k_per_scaffold_then_filled_with_a_reason():
    benzenes = ["c1ccccc1" + s for s in ("C", "CC", "CCC", "O", "N")]
    pyridines = ["c1ccncc1" + s for s in ("C", "CC")]
    table = _table(benzenes + pyridines, [10, 9, 8, 7, 6, 2, 1])
    batch = suggest(table, UP, BatchOptions(n=4, strategy="greedy", max_per_scaffold=2))
    assert batch["scaffold"].tolist() == ["c1ccccc1", "c1ccccc1", "c1ccncc1", "c1ccncc1"]
    assert batch["y"].tolist() == [10, 9, 2, 1]
    more = suggest(table, UP, BatchOptions(n=6, strategy="greedy", max_per_scaffold=2))
    assert more["y"].tolist() == [10, 9, 2, 1, 8, 7]
    assert ["ran out" in w for w in more["why"]] == [False] * 4 + [True] * 2


def test_no_two_picks_more_similar_than_the_limit():
    rng = np.random.default_rng(1)
    smiles = [f"c1ccc(cc1){'C' * k}{end}" for k in range(1, 9) for end in ("O", "N", "Cl")]
    table = _table(smiles, rng.random(len(smiles)))
    batch = suggest(table, UP, _free(n=6, max_similarity=0.5))
    fps = [Chem.RDKFingerprint(Chem.MolFromSmiles(s)) for s in batch["smiles"]]  # parse check
    assert len(fps) == 6
    assert (batch["nearest_pick_similarity"][:-1] <= 0.5 + 1e-9).all() or any(
        "ran out" in w for w in batch["why"]
    )
    unconstrained = suggest(table, UP, _free(n=6))
    assert unconstrained["nearest_pick_similarity"].max() > 0.5  # the limit did something


def test_random_is_seeded():
    table = _table(ALCOHOLS, np.arange(40.0))
    a = suggest(table, UP, _free("random", seed=3)).index.tolist()
    assert a == suggest(table, UP, _free("random", seed=3)).index.tolist()
    assert a != suggest(table, UP, _free("random", seed=4)).index.tolist()


def test_options_are_checked():
    with pytest.raises(ValueError, match="strategy"):
        BatchOptions(strategy="thompson")
    with pytest.raises(ValueError):
        BatchOptions(max_similarity=0.0)
    with pytest.raises(KeyError):
        suggest(_table(["CCO"], [1.0]), [Objective("nope")])


@pytest.fixture(scope="module")
def esol_model(esol):
    return train_small(esol.iloc[:120])


def test_measured_molecules_read_files_training_sets_and_fill_gaps(esol_model, esol):
    predictor = Predictor({"sol": esol_model})
    objective = [Objective(ESOL_TARGET, "higher")]
    mine = pd.DataFrame({"SMILES": ["CCO", "CCCO"], ESOL_TARGET: [0.5, np.nan]})
    out = measured_molecules(predictor, [mine], objective, training=True)
    n_train = len(esol_model.domain.smiles)
    assert len(out) == 2 + n_train and out["smiles"].iloc[0] == "CCO"
    assert out[ESOL_TARGET].iloc[0] == 0.5  # measured
    assert np.isfinite(out[ESOL_TARGET]).all()  # CCCO's gap filled by the prediction
    trained = {
        Chem.CanonSmiles(s): v for s, v in zip(esol["smiles"], esol[ESOL_TARGET], strict=True)
    }
    first = Chem.CanonSmiles(esol_model.domain.smiles[0])
    assert out[ESOL_TARGET].iloc[2] == pytest.approx(trained[first], abs=1e-3)
    # an ELN export names its structures otherwise: found by what the column holds, as the
    # page's candidates and training data are (it was refused: "no SMILES column found")
    eln = pd.DataFrame({"Compound ID": ["A-1", "A-2"], "Structure": ["CCO", "CCCO"]})
    assert measured_molecules(predictor, [eln])["smiles"].tolist() == ["CCO", "CCCO"]


def test_cli_suggest_end_to_end(esol_model, esol, tmp_path, capsys):
    model = tmp_path / "sol.pt"
    esol_model.save(model)
    pool = esol.iloc[200:320][["smiles"]].assign(name=[f"c{i}" for i in range(120)])
    pool = pd.concat([pool, pd.DataFrame({"smiles": ["C1CC"], "name": ["broken"]})])
    pool.to_csv(tmp_path / "pool.csv", index=False)
    measured = pool.iloc[:10][["smiles"]]
    measured.to_csv(tmp_path / "measured.csv", index=False)
    out = tmp_path / "batch.csv"
    args = ["suggest", str(model), str(tmp_path / "pool.csv"), "--n", "12", "--output", str(out)]
    code = main(
        [
            *args,
            "--objective",
            f"{ESOL_TARGET}=higher",
            "--exclude",
            str(measured_path := tmp_path / "measured.csv"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    batch = pd.read_csv(out, keep_default_na=False)  # an acyclic molecule's scaffold is ""
    assert len(batch) == 12 and batch["pick"].tolist() == list(range(1, 13))
    assert not set(batch["name"]) & {*pool["name"].iloc[:10], "broken"}
    assert batch["why"].str.contains("UCB").all() and batch["why"].str.contains("scaffold").all()
    assert "12 picked from 121 candidates" in capsys.readouterr().err
    sdf = tmp_path / "batch.sdf"
    assert (
        main(
            [
                *args[:-1],
                str(sdf),
                "--objective",
                "measured log solubility in mols per litre=-3..-1",
                "--exclude",
                str(measured_path),
            ]
        )
        == 0
    )
    records = [m for m in Chem.SDMolSupplier(str(sdf)) if m is not None]
    assert len(records) == 12 and records[0].HasProp("why")
    assert main(args) == 2  # a user's model has no preferred direction: say what is good
    assert "--objective" in capsys.readouterr().err


def test_cli_defaults_are_the_library_defaults():
    """The parser keeps literal defaults (no torch for --help); they must be BatchOptions'."""
    from molpred.cli import build_parser

    args = build_parser().parse_args(["suggest", "m.pt", "c.csv", "-o", "b.csv"])
    lib = BatchOptions()
    assert (args.n, args.strategy, args.beta, args.explore, args.cover) == (
        lib.n,
        lib.strategy,
        lib.beta,
        lib.explore,
        lib.cover,
    )
    assert (args.max_per_scaffold, args.max_similarity) == (lib.max_per_scaffold, None)


def test_explore_without_an_expected_error_falls_back_to_the_objective():
    table = _table(ALCOHOLS, np.arange(40.0)).drop(columns="y_lower")  # no regression spread
    batch = suggest(table, UP, _free("greedy", n=6, explore=0.5))
    assert batch["y"].tolist() == [39.0, 38.0, 37.0, 36.0, 35.0, 34.0]
    assert not batch["why"].str.contains("explores|ran out").any()
    with pytest.raises(ValueError, match="finite"):
        Objective("y", "higher", float("nan"))


def test_cli_suggest_with_a_SMILES_column_ei_and_the_training_set(esol_model, esol, tmp_path):
    model = tmp_path / "sol.pt"
    esol_model.save(model)
    trained = esol_model.domain.smiles[:5]
    pool = pd.DataFrame({"SMILES": [*trained, *esol["smiles"].iloc[300:330]]})
    pool.to_csv(tmp_path / "pool.csv", index=False)
    out = tmp_path / "batch.csv"
    code = main(
        ["suggest", str(model), str(tmp_path / "pool.csv"), "--n", "8", "--strategy", "ei"]
        + ["--objective", f"{ESOL_TARGET}=higher", "--exclude-training", "-o", str(out)]
    )
    assert code == 0
    batch = pd.read_csv(out)
    assert len(batch) == 8 and not set(batch["SMILES"]) & set(trained)
    assert batch["why"].str.contains("over best measured").all()


def test_training_keys_are_computed_once_per_model_and_match_parent_keys(esol):
    from molpred.chem import parent_key
    from molpred.measured import parent_keys, training_keys

    salts = ["CCN(CC)CC.Cl", "CC(=O)[O-].[Na+]", "CCCC(=O)O[K]", "Oc1ccccc1.O", "CCCCN.Cl"]
    extra = pd.DataFrame({"smiles": salts, ESOL_TARGET: [0.0] * len(salts)})
    model = train_small(pd.concat([esol.head(60), extra], ignore_index=True))
    keys = training_keys(model.domain)
    assert keys == [parent_key(s) for s in model.domain.smiles]
    drawn_as_salts = [k for s, k in zip(model.domain.smiles, keys, strict=True) if "." in s]
    assert drawn_as_salts and not any("." in k for k in drawn_as_salts)  # matched on parents
    assert training_keys(model.domain) is keys  # cached for the loaded model
    many = list(esol["smiles"]) * 2  # long enough for the worker pool
    assert parent_keys(many) == [parent_key(s) for s in many]


def test_chemical_space_is_the_principal_components_of_the_fingerprints(esol):
    from sklearn.decomposition import PCA

    from molpred.featurize import fingerprint
    from molpred.space import chemical_space

    packed = np.vstack([fingerprint(Chem.MolFromSmiles(s)) for s in esol["smiles"]])
    xy = chemical_space(packed)
    dense = np.unpackbits(packed, axis=1).astype(np.float32)
    expected = PCA(n_components=2, svd_solver="full").fit_transform(dense)
    assert xy.shape == (len(esol), 2)
    for k in range(2):  # the same axes, up to their sign
        assert abs(np.corrcoef(xy[:, k], expected[:, k])[0, 1]) > 0.999


def test_a_bundled_models_training_set_is_left_out_but_is_no_incumbent(monkeypatch):
    """The panel's training molecules are public data: left out of a batch, but their best
    value is not a project's incumbent (every ``ei`` gain was 0), and they are not predicted
    to fill their gaps (the whole panel's 59,072 took minutes)."""
    import molpred
    import molpred.measured
    from molpred.pretrained import model_path

    def no_scoring(*args, **kwargs):
        raise AssertionError("the public training molecules were scored")

    monkeypatch.setattr(molpred.measured, "score_table", no_scoring)
    bbb = molpred.load_model(model_path("bbb"))
    predictor = Predictor({"bbb": bbb})
    out = measured_molecules(predictor, [], [Objective("p_np", "higher")], training=True)
    assert len(out) == len(bbb.domain.smiles) and out["p_np"].isna().all()
    assert out["parent_key"].notna().mean() > 0.99  # still matched, so still left out


def test_cli_suggest_keeps_identifiers_and_reads_the_exclude_files_smiles_column(
    esol_model, esol, tmp_path, capsys
):
    """Registry numbers come out as written (0000016 became 16), and --exclude files are read
    with the candidates' SMILES column name (--smiles-column), else named in the error."""
    model = tmp_path / "sol.pt"
    esol_model.save(model)
    pool = pd.DataFrame(
        {"structure": esol["smiles"].iloc[300:330], "reg": [f"{i:07d}" for i in range(30)]}
    )
    pool.to_csv(tmp_path / "pool.csv", index=False)
    pool.iloc[:5][["structure"]].to_csv(tmp_path / "measured.csv", index=False)
    out = tmp_path / "batch.csv"
    args = ["suggest", str(model), str(tmp_path / "pool.csv"), "--smiles-column", "structure"]
    objective = ["--objective", f"{ESOL_TARGET}=higher", "--n", "6", "--output", str(out)]
    assert main([*args, *objective, "--exclude", str(tmp_path / "measured.csv")]) == 0
    batch = pd.read_csv(out, dtype=str)
    assert len(batch) == 6 and batch["reg"].str.fullmatch(r"\d{7}").all()
    assert not set(batch["reg"]) & {f"{i:07d}" for i in range(5)}  # the measured five left out
    pd.DataFrame({"compound": ["CCO"]}).to_csv(tmp_path / "nameless.csv", index=False)
    assert main([*args, *objective, "--exclude", str(tmp_path / "nameless.csv")]) == 2
    assert "--exclude" in (err := capsys.readouterr().err) and "nameless.csv" in err


def test_measured_values_are_read_under_the_pages_display_names():
    """A file of measured molecules made from the page's download (display names such as
    "logD7.4 (...)") gave no values, so ei fell back to the best prediction without a word."""
    import molpred
    from molpred.page.labels import value_labels
    from molpred.pretrained import model_path

    predictor = Predictor({"lipophilicity": molpred.load_model(model_path("lipophilicity"))})
    label = value_labels(predictor)["exp"]
    assert label != "exp"
    mine = pd.DataFrame({"SMILES": ["CCO", "c1ccccc1O"], label: [1.5, 2.5]})
    objective = [Objective("exp", "higher")]
    out = measured_molecules(predictor, [mine], objective, fill=False, aliases={"exp": label})
    assert out["exp"].tolist() == [1.5, 2.5]
    assert "exp" not in measured_molecules(predictor, [mine], objective, fill=False)
    # the page's own download, or a last round's batch: predictions beside their spread are
    # no measurement (the molecules still count as made)
    short = label.rsplit(" (", 1)[0]
    downloaded = mine.assign(**{f"{short} sd": [0.4, 0.5], f"{short} lower": [1.0, 2.0]})
    out = measured_molecules(predictor, [downloaded], objective, fill=False, aliases={"exp": label})
    assert len(out) == 2 and ("exp" not in out or out["exp"].isna().all())
    batch = pd.DataFrame({"smiles": ["CCO"], "exp": [1.0], "exp_std": [0.3], "exp_lower": [0.5]})
    out = measured_molecules(predictor, [batch], objective, fill=False)
    assert len(out) == 1 and ("exp" not in out or out["exp"].isna().all())
    lab = batch.drop(columns="exp_lower")  # a lab's replicate spread: still measured
    assert measured_molecules(predictor, [lab], objective, fill=False)["exp"].tolist() == [1.0]


def test_the_ei_incumbent_is_a_measured_value_and_says_what_it_is(esol_model):
    """A list of made molecules without values is no incumbent (its worst prediction once
    inflated every improvement 30-fold, called 'best measured'); a computed property in the
    ranking (the page's default QED) no longer drops the measured values; a qualified
    value ('>4.5') is its number, not a prediction."""
    from molpred.predict import score_table

    predictor = Predictor({"sol": esol_model})
    table = score_table(predictor, pd.DataFrame({"smiles": ALCOHOLS}), "smiles")
    goal = [Objective(ESOL_TARGET, "higher")]
    made = measured_molecules(predictor, [pd.DataFrame({"smiles": ["CCCCCC"]})], goal)
    picks = suggest(table, goal, _free("ei", n=2), measured=made)
    assert "over best predicted (no measured value given)" in picks["why"].iloc[0]

    values = pd.DataFrame({"smiles": ["CCCCCC", "CCOCC"], ESOL_TARGET: [">4.5", "-1.2"]})
    with_qed = [*goal, Objective("QED", "higher")]
    table["QED"] = np.linspace(0.2, 0.6, len(table))
    made = measured_molecules(predictor, [values], with_qed)
    assert made[ESOL_TARGET].tolist()[:2] == [4.5, -1.2] and made["QED"].notna().all()
    picks = suggest(table, with_qed, _free("ei", n=2), measured=made)
    assert "over best measured (its other values predicted or computed)" in picks["why"].iloc[0]


def test_a_target_value_ranks_by_distance_and_an_open_range_is_explained():
    from molpred.ranking import desirability, parse_objective

    point = parse_objective("y=2..2")
    d = desirability(np.array([2.0, 2.5, 3.0, 10.0]), point, np.linspace(0, 10, 50))
    assert d[0] == 1.0 and 1.0 > d[1] > d[2] > d[3] == 0.0  # once every value scored 0
    with pytest.raises(ValueError, match="both ends of the range"):
        parse_objective("y=..3")
