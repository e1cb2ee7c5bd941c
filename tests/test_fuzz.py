"""Property-based tests over the SMILES path, every reader and the label columns (hypothesis).

The properties are in ``tests/fuzzing.py``. CI runs a short campaign (a few hundred generated
inputs per property); ``benchmarks/fuzz_campaign.py`` runs the same properties over more than
100,000 generated inputs and records the outcome in ``benchmarks/results/fuzz_campaign.json``
(see ``docs/TESTING.md``).
"""

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from molpred.predict import predict
from molpred.train import train

from .conftest import ESOL_TARGET, FAST, SMALL, train_small
from .fuzzing import check_file, check_predict, check_train, labels, smiles_inputs, table_files

SHORT = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def model(esol):
    return train_small(esol.head(60))


@pytest.mark.slow
@SHORT
@given(inputs=st.lists(smiles_inputs(), max_size=12))
def test_predict_never_crashes_and_keeps_every_row(model, inputs):
    check_predict(model, inputs)


@pytest.mark.slow
@SHORT
@given(file=table_files())
@example(file=("input.sdf", b"0\r0\n  junk\n\nM  END\n"))  # found by the long campaign:
# a bare CR in an SDF title was written unquoted and split the output row in two
def test_every_reader_keeps_every_row_or_refuses_clearly(model, file):
    with tempfile.TemporaryDirectory() as tmp:
        check_file(model, Path(tmp), *file)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # no overflow anywhere, however large
@settings(
    max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(values=st.lists(labels(), min_size=1, max_size=24))
@example(values=[1e29, -1e29, 3e28, 1.0, 5e29, 2e29, 0.0, 1e20])  # from the long campaign
def test_train_rejects_unusable_labels_in_one_line(values):
    def fit(df):
        model, _ = train(
            df,
            "smiles",
            ["y"],
            model_config=SMALL,
            train_config=FAST.__class__(epochs=1, batch_size=32, patience=5),
            progress=False,
            cache_dir=None,
        )
        return model

    check_train(values, fit)


def test_enormous_and_unusual_molecules(model):
    big = "C" * 600  # 600 heavy atoms
    out = predict(model, [big, "[2H]C([2H])([2H])O", "[Og]", "[13CH4]", "[U+6]"])
    assert len(out) == 5 and out["error"].map(type).eq(str).all()
    assert ESOL_TARGET in out
