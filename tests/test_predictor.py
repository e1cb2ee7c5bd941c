"""The one scoring path: Predictor, its output schema and the chunk executor."""

import copy
import dataclasses
import pickle
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch

import molpred.chunks as chunk_module
import molpred.parallel as parallel
from molpred.parallel import WorkerDied, map_ordered, torch_section, worker_pool
from molpred.predict import predict
from molpred.predictor import Predictor
from molpred.schema import OutputSchema, input_names
from molpred.screen import MedchemHook

from .conftest import ESOL_TARGET, train_small


@pytest.fixture(scope="module")
def model(esol):
    return train_small(esol.head(100))


def test_schema_keys_columns_by_model_and_task():
    tasks = [
        [("y", "regression", True)],
        [("y", "classification", True), ("z", "classification", False)],
        [("w", "regression", False)],
    ]
    schema = OutputSchema.build(["a", "b", "a"], tasks, [True, False, True])
    assert [m.name for m in schema.models] == ["a1", "b", "a2"]
    assert schema.task("b", "y").value == "b.y" and schema.task("a1", "y").value == "a1.y"
    assert schema.task("b", "y").set == "b.y_set" and schema.task("b", "z").set is None
    # one clash prefixes every task of the panel, so a column's name never depends on others
    assert schema.find("z").key == ("b", "z") and schema.find("a1.y").key == ("a1", "y")
    with pytest.raises(KeyError):
        schema.find("y")  # two models have it: the user must say which
    assert schema.columns() == [
        "a1.y",
        "a1.y_std",
        "a1.y_lower",
        "a1.y_upper",
        "a1.domain_similarity",
        "a1.latent_distance",
        "a1.in_domain",
        "b.y",
        "b.y_std",
        "b.y_set",
        "b.z",
        "b.z_std",
        "a2.w",
        "a2.w_std",
        "a2.w_lower",
        "a2.w_upper",
        "a2.domain_similarity",
        "a2.latent_distance",
        "a2.in_domain",
        "error",
    ]
    assert "a1.y_lower" in schema.detail_columns and "a1.in_domain" not in schema.detail_columns


def test_a_task_named_like_another_output_column_is_prefixed():
    """``error`` is every output's, ``reserved`` the caller's (the page's score, TPSA...)."""
    tasks = [[("error", "regression", False), ("y", "regression", False)]]
    assert OutputSchema.build(["m"], tasks, [False]).value_columns == ["m.error", "m.y"]
    tasks = [[("TPSA", "regression", False)]]
    assert OutputSchema.build(["m"], tasks, [False]).value_columns == ["TPSA"]
    schema = OutputSchema.build(["m"], tasks, [False], reserved=("score", "TPSA"))
    assert schema.value_columns == ["m.TPSA"] and schema.columns().count("error") == 1


def test_input_columns_that_clash_are_renamed_one_way_everywhere():
    assert input_names(["smiles", "error", "pick", "id"], ["error", "pick"]) == {
        "error": "input_error",
        "pick": "input_pick",
    }
    # an input already holding the new name keeps it; the clashing one is numbered
    assert input_names(["error", "input_error", "input_error_2"], ["error"]) == {
        "error": "input_error_3"
    }


def test_predict_output_follows_the_schema(model):
    predictor = Predictor({"x": model, "y": model})
    out = predict(predictor, ["CCO", "C1CC"])
    assert list(out.columns) == ["smiles", *predictor.schema.columns()]
    assert out[f"x.{ESOL_TARGET}"].equals(out[f"y.{ESOL_TARGET}"])


def test_stream_is_the_same_in_a_pool_and_skips_finished_chunks(model, esol):
    predictor = Predictor(model)
    frame = esol[["smiles"]].head(90).reset_index(drop=True)
    frame.loc[7, "smiles"] = "not a smiles"
    chunks = [frame.iloc[i : i + 20] for i in range(0, 90, 20)]
    local = list(predictor.stream(iter(chunks), "smiles", workers=1))
    pooled = list(predictor.stream(iter(chunks), "smiles", workers=2, skip=lambda i: i == 1))
    assert [i for i, _, _ in pooled] == [0, 1, 2, 3, 4] and pooled[1][2] is None
    for (_, _, a), (i, _, b) in zip(local, pooled, strict=True):
        if i != 1:
            pd.testing.assert_frame_equal(a, b)
    assert "unparseable" in local[0][2].loc[7, "error"]


@pytest.mark.skipif(not chunk_module.FORK, reason="needs fork")
def test_workers_score_with_the_panel_they_inherit_and_let_go_of_it(model, esol):
    """With fork, the workers score too; the panel is looked up there, never pickled, and the
    lookup is dropped when the stream ends, even when it is left early."""
    predictor = Predictor(model)
    chunks = [esol[["smiles"]].iloc[i : i + 10] for i in range(0, 60, 10)]
    stream = predictor.stream(iter(chunks), "smiles", workers=2)
    _, _, first = next(stream)
    (key,) = chunk_module.FORKED
    assert chunk_module.FORKED[key] is predictor
    task = chunk_module.ChunkScorer(key, predictor.featurizer())
    assert len(pickle.dumps(task)) < 2_000  # what each chunk's task carries: no model
    stream.close()
    assert chunk_module.FORKED == {}
    pd.testing.assert_frame_equal(first, predictor.score_frame(chunks[0], "smiles"))


@pytest.mark.skipif(not chunk_module.FORK, reason="needs fork")
def test_where_a_gpu_scores_the_workers_run_the_trees_and_the_scores_are_the_same(
    model, esol, monkeypatch
):
    """On a GPU this process runs the networks and the workers featurize and run the trees
    (their share is chosen from the device: a GPU is emulated here by forcing it on the CPU).
    Same columns as scoring in one process; no tree runs in this process."""
    assert model.members[0].trees is not None  # the default: trees blended in
    cuda = Predictor(model, device="cpu")
    assert cuda._workers_share(2) == "score" and cuda._workers_share(1) == "featurize"
    cuda.device = "cuda"  # only asked, not used
    assert cuda._workers_share(2) == "trees"
    frame = esol[["smiles"]].head(70).reset_index(drop=True)
    frame.loc[5, "smiles"] = "not a smiles"
    chunks = [frame.iloc[i : i + 20] for i in range(0, 70, 20)]
    here = Predictor(model)
    local = [s for _, _, s in here.stream(iter(chunks), "smiles", workers=1)]
    gpu_like = Predictor(model)
    monkeypatch.setattr(Predictor, "_workers_share", lambda self, workers: "trees")
    calls = []
    raw = type(model.members[0].trees).raw
    monkeypatch.setattr(
        type(model.members[0].trees), "raw", lambda self, x: calls.append(len(x)) or raw(self, x)
    )
    split = [s for _, _, s in gpu_like.stream(iter(chunks), "smiles", workers=2)]
    assert calls == []  # appended in the workers only: this process ran no tree
    assert chunk_module.FORKED == {}
    for a, b in zip(local, split, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert "unparseable" in split[0].loc[5, "error"]


@pytest.mark.skipif(not chunk_module.FORK, reason="needs fork")
def test_workers_forked_while_other_threads_run_torch_still_score(model, esol):
    """The page forks its pools from a session's thread while another thread may be training
    (multi-threaded torch) or scoring: the forked workers run torch too and must not hang."""
    predictor = Predictor(model)
    chunks = [esol[["smiles"]].iloc[i : i + 30] for i in range(0, 240, 30)]
    expected = [predictor.score_frame(c, "smiles") for c in chunks]
    stop = threading.Event()

    def busy() -> None:  # matrix products on every torch thread, until told to stop
        a = torch.randn(400, 400)
        while not stop.is_set():
            a = torch.tanh(a @ a)

    others = [threading.Thread(target=busy, daemon=True) for _ in range(2)]
    for t in others:
        t.start()
    results: dict[int, list] = {}

    def score(k: int) -> None:  # two sessions scoring at once, each with its own pool
        results[k] = [s for _, _, s in predictor.stream(iter(chunks), "smiles", workers=2)]

    sessions = [threading.Thread(target=score, args=(k,), daemon=True) for k in range(2)]
    for t in sessions:
        t.start()
    for t in sessions:
        t.join(timeout=180)
    stop.set()
    assert not any(t.is_alive() for t in sessions), "a forked worker hung"
    for k in range(2):
        for got, want in zip(results[k], expected, strict=True):
            pd.testing.assert_frame_equal(got, want)
    assert chunk_module.FORKED == {}


def test_the_page_hook_travels_to_workers_and_keeps_rows_aligned(model):
    featurizer = Predictor(model).featurizer(hook=MedchemHook(depict=True))
    again = pickle.loads(pickle.dumps(featurizer))
    prepared = again(["CCO", "C1CC", "c1ccccc1O"])
    assert prepared.errors()[1] and not prepared.errors()[0]
    assert prepared.notes["structure"].isna().tolist() == [False, True, False]
    assert np.isnan(prepared.notes.loc[1, "MW"]) and prepared.notes.loc[0, "MW"] > 40


def test_the_page_hook_sees_parent_structures_where_a_model_uses_them(model):
    """Properties and alerts of a salt are its parent's (the medicinal chemist's MW, logP and
    rule counts), whatever the order of the panel's models."""
    parent = copy.copy(model)
    parent.info = dataclasses.replace(model.info, standardization="parent")
    salt, base = "CCN(CC)CC.Cl", "CCN(CC)CC"
    for panel in ([model, parent], [parent, model]):
        prepared = Predictor(panel).featurizer(hook=MedchemHook())([salt, base])
        assert prepared.notes.loc[0, "MW"] == prepared.notes.loc[1, "MW"]
    alone = Predictor(model).featurizer(hook=MedchemHook())([salt, base])
    assert alone.notes.loc[0, "MW"] > alone.notes.loc[1, "MW"]  # as drawn: HCl included


def test_intervals_follow_a_new_confidence_without_rescoring(model):
    predictor = Predictor(model, confidence=0.9)
    table = predict(predictor, ["CCO", "c1ccccc1N", "bad"])
    narrow = predictor.reinterval(table, 0.5)
    direct = predict(Predictor(model, confidence=0.5), ["CCO", "c1ccccc1N", "bad"])
    pd.testing.assert_frame_equal(narrow, direct)


def test_prediction_sets_follow_a_new_confidence_too():
    """The page's confidence slider after scoring a classification panel: the prediction sets
    are text columns (it crashed the page's results on pandas' string dtype)."""
    import molpred
    from molpred.pretrained import model_path
    from molpred.screen import screen

    bbb = {"bbb": molpred.load_model(model_path("bbb"))}
    smiles, names = ["CCO", "c1ccccc1O", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "bad("], list("abcd")
    table = screen(Predictor(bbb, confidence=0.9, percentiles=True), smiles, names)
    sets = [c for c in table.columns if c.endswith("_set")]
    assert sets
    for confidence in (0.5, 0.99):
        moved = Predictor(bbb, confidence=0.9, percentiles=True).reinterval(table, confidence)
        direct = screen(Predictor(bbb, confidence=confidence, percentiles=True), smiles, names)
        pd.testing.assert_frame_equal(moved[direct.columns], direct)


def _sigterm_handler(_) -> str:
    return str(signal.getsignal(signal.SIGTERM))


def test_pool_workers_die_on_sigterm_whatever_their_parent_handles():
    """The page server handles SIGTERM in Python; its forked workers must not inherit that, or a
    stuck worker ignores the pool's terminate and the server never exits."""
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        out = list(map_ordered(_sigterm_handler, [0, 1, 2, 3], workers=2))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert {r for _, _, r in out} == {str(signal.SIG_DFL)}


def _dies_on_three(item: int) -> int:
    import os

    if item == 3:
        os._exit(1)  # stands in for the kernel killing a worker for memory, or a segfault
    return item


def test_a_worker_that_dies_stops_the_run_with_a_reason():
    """The pool replaces a dead worker silently and its task never finishes: a library run
    sat forever after an out-of-memory kill. Now it stops, saying what happened."""
    started = time.monotonic()
    seen = []
    with pytest.raises(WorkerDied, match="worker process died"):
        for _, _, result in map_ordered(_dies_on_three, range(8), workers=2):
            seen.append(result)
    assert time.monotonic() - started < 20
    assert seen == [0, 1, 2]  # in order, up to the lost item


def _pid(_) -> int:
    import os

    return os.getpid()


def test_no_pool_forks_while_another_thread_is_inside_torch():
    """A child forked while another thread is inside torch can hang on its half-changed
    state (seen in the page: one session trained while another scored). While a section is
    open elsewhere, the pool waits, then works here instead; the results are the same."""
    import os

    inside, leave = threading.Event(), threading.Event()

    def training() -> None:
        with torch_section():
            inside.set()
            leave.wait(30)

    other = threading.Thread(target=training, daemon=True)
    other.start()
    inside.wait(10)
    assert worker_pool(2, wait=0.1) is None
    parallel_wait, parallel.FORK_WAIT = parallel.FORK_WAIT, 0.1
    try:
        out = list(map_ordered(_pid, [0, 1, 2, 3], workers=2))
    finally:
        parallel.FORK_WAIT = parallel_wait
    assert {r for _, _, r in out} == {os.getpid()}  # scored here, in order
    assert [i for i, _, _ in out] == [0, 1, 2, 3]
    leave.set()
    other.join(10)
    out = list(map_ordered(_pid, [0, 1, 2, 3], workers=2))  # the section closed: a pool
    assert os.getpid() not in {r for _, _, r in out}


def test_a_fork_holds_new_torch_work_back_and_children_start_free():
    """While a pool forks, a thread that enters torch waits for the fork to finish; a forked
    child opens its own sections (it does not inherit the parent's pending fork)."""
    entered = threading.Event()
    with parallel._FORKING, parallel._GUARD.forking(wait=1.0) as free:
        assert free

        def enter() -> None:
            with torch_section():
                entered.set()

        t = threading.Thread(target=enter, daemon=True)
        t.start()
        assert not entered.wait(0.3)  # held back while the fork is pending
    assert entered.wait(5)
    t.join(5)
    out = list(map_ordered(_in_section, [0, 1], workers=2))
    assert [r for _, _, r in out] == [1, 2]


def _in_section(x: int) -> int:
    with torch_section(), torch_section():  # nested sections in one thread do not wait
        return x + 1


def test_a_thread_inside_torch_never_waits_for_its_own_fork():
    import time

    start = time.monotonic()
    with torch_section(), parallel._GUARD.forking(wait=5.0) as free:
        assert not free
    assert time.monotonic() - start < 1.0  # at once, not after the 5 s wait


def test_map_ordered_keeps_order_with_a_pool():
    out = list(map_ordered(abs, [-3, 1, -2, 5, -8], workers=2, skip=lambda i: i == 3))
    assert [(i, r) for i, _, r in out] == [(0, 3), (1, 1), (2, 2), (3, None), (4, 8)]


def test_a_panel_of_two_standardizations_featurizes_again_only_what_they_change(monkeypatch):
    """Bundled models prepare structures differently (parents; AqSolDB's salts as drawn): the
    second standardization featurizes only the rows it can change, and gives what featurizing
    every row under it would."""
    import molpred.features as features

    items = [
        "CCO",
        "CC(=O)[O-].[Na+]",
        "C1CC",  # unparseable under both
        "CC(C)Cc1ccc(C(C)C(=O)O[Na])cc1",  # covalently drawn salt
        "c1ccccc1O",
        "CCN(CC)CC.Cl",
        "CN(=O)=O",  # drawn neutral, charge-separated once sanitized: the same either way
    ]
    redone = []
    featurize = features.featurize_chunk

    def counting(chunk, **kwargs):
        redone.append(list(chunk))
        return featurize(chunk, **kwargs)

    monkeypatch.setattr(features, "featurize_chunk", counting)
    prepared = chunk_module.ChunkFeaturizer(("parent", "none"))(items)
    assert redone == [[items[1], items[3], items[5]]]
    for mode in ("parent", "none"):
        got, want = prepared.feats[mode], featurize(items, standardization=mode)
        assert got.errors == want.errors and got.canonical == want.canonical
        np.testing.assert_array_equal(got.descriptors, want.descriptors)
        np.testing.assert_array_equal(got.fingerprints, want.fingerprints)
        for g, w in zip(got.graphs, want.graphs, strict=True):
            assert (g is None) == (w is None)
            if g is not None:
                np.testing.assert_array_equal(g.x, w.x)
                np.testing.assert_array_equal(g.edge_index, w.edge_index)
    # the salts are different molecules as drawn and as parents
    assert prepared.feats["parent"].graphs[1].num_atoms == 4  # acetic acid
    assert prepared.feats["none"].graphs[1].num_atoms == 5  # acetate and sodium


def test_repeated_model_names_become_distinct_whatever_the_other_names():
    """``--model a/esol.pt --model b/esol.pt --model esol1.pt`` named two models esol1: the
    third model's columns overwrote the first's."""
    from molpred.schema import unique_names

    assert unique_names(["esol", "esol", "esol1"]) == ["esol2", "esol3", "esol1"]
    assert unique_names(["a", "b", "a"]) == ["a1", "b", "a2"]
    assert unique_names(["x", "y"]) == ["x", "y"]


def test_task_names_that_would_overwrite_other_columns_are_prefixed_or_refused():
    from molpred.schema import OutputSchema

    def columns(*models, names=None):
        names = names or [f"m{i}" for i in range(len(models))]
        tasks = [[(t, "regression", True) for t in m] for m in models]
        schema = OutputSchema.build(names, tasks, [True] * len(models))
        return schema.columns()

    # a task called like the domain column: its value is named by the model instead
    out = columns(["in_domain"], names=["assay"])
    assert out.count("in_domain") == 1 and "assay.in_domain" in out
    # a task called like another task's spread: no name can keep both
    with pytest.raises(ValueError, match="logD_std"):
        columns(["logD", "logD_std"])
