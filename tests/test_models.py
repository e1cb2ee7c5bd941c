import numpy as np
import pytest
import torch

from molpred.features import collate, featurize_smiles
from molpred.models import ModelConfig, build_model


def _batch(smiles):
    feats = featurize_smiles(smiles)
    return collate(feats.graphs, feats.descriptors)


@pytest.mark.parametrize("encoder", ["dmpnn", "gine"])
@pytest.mark.parametrize("pooling", ["mean", "sum", "attention"])
def test_output_shape(encoder, pooling):
    cfg = ModelConfig(
        encoder=encoder,
        pooling=pooling,
        hidden_size=16,
        head_hidden_size=16,
        task_types=("regression", "classification", "regression"),
    )
    out = build_model(cfg)(_batch(["CCO", "c1ccccc1", "C"]))
    assert out.shape == (3, 3) and torch.isfinite(out).all()


@pytest.mark.parametrize("encoder", ["dmpnn", "gine"])
def test_invariant_to_atom_order_and_batch_composition(encoder, monkeypatch):
    monkeypatch.setenv("MOLPRED_PRECISION", "float32")  # bfloat16 sums in another order differ
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder=encoder, hidden_size=16, head_hidden_size=16)).eval()
    a = model(_batch(["OCC(=O)Nc1ccccc1"]))
    b = model(_batch(["c1ccc(NC(=O)CO)cc1"]))  # same molecule, other atom order
    c = model(_batch(["CCCC", "OCC(=O)Nc1ccccc1", "N"]))[1:2]  # inside a larger batch
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-5)


def test_message_passing_runs_in_bfloat16_at_inference_where_the_cpu_has_it(monkeypatch):
    from molpred import models

    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden_size=64, head_hidden_size=64))
    batch = _batch(["OCC(=O)Nc1ccccc1", "CCN(CC)CC", "c1ccc2[nH]ccc2c1"])
    monkeypatch.setattr(models, "_native_bf16", lambda: True)  # emulated where it is not native
    model.train()
    training = model.encoder(batch)  # training: float32 always (gradients, optimizer)
    model.eval()
    low = model.encoder(batch)
    monkeypatch.setenv("MOLPRED_PRECISION", "float32")
    exact = model.encoder(batch)
    torch.testing.assert_close(training, exact)  # no dropout at 0: the same float32 numbers
    assert low.dtype == torch.float32 and not torch.equal(low, exact)
    assert (low - exact).abs().max() <= 0.02 * exact.abs().max()  # bfloat16: 8-bit mantissa
    assert models.message_dtype(torch.device("cpu")) == torch.float32
    monkeypatch.delenv("MOLPRED_PRECISION")
    assert models.message_dtype(torch.device("cpu")) == torch.bfloat16
    assert models.message_dtype(torch.device("meta")) == torch.float32  # CPUs only
    monkeypatch.setattr(models, "_native_bf16", lambda: False)
    assert models.message_dtype(torch.device("cpu")) == torch.float32


def test_predict_unscales_regression_and_squashes_classification():
    model = build_model(
        ModelConfig(hidden_size=8, head_hidden_size=8, task_types=("regression", "classification"))
    ).eval()
    model.y_mean[0], model.y_scale[0] = 100.0, 10.0
    batch = _batch(["CCO", "CCN"])
    raw, pred = model(batch), model.predict(batch)
    torch.testing.assert_close(pred[:, 0], raw[:, 0] * 10 + 100)
    assert ((pred[:, 1] > 0) & (pred[:, 1] < 1)).all()


@pytest.mark.parametrize(
    "bad", [dict(encoder="gcn"), dict(pooling="max"), dict(depth=0), dict(dropout=1.5)]
)
def test_config_rejects_unknown_values(bad):
    with pytest.raises(ValueError):
        ModelConfig(**bad)


def test_descriptor_toggle_changes_head_input():
    with_d = build_model(ModelConfig(hidden_size=8, descriptors=True))
    without = build_model(ModelConfig(hidden_size=8, descriptors=False))
    batch = _batch(["CCO"])
    assert with_d.embed(batch).shape[1] > without.embed(batch).shape[1] == 8
    assert np.isfinite(with_d.embed(batch).detach().numpy()).all()


def test_training_is_float32_whatever_the_inference_precision(esol, monkeypatch):
    """Validation passes, calibration and the trees' blend weight see float32 messages: the
    same data and seed give the same model on a machine with bfloat16 and one without."""
    from molpred import models

    from .conftest import train_small

    monkeypatch.setattr(models, "_native_bf16", lambda: True)
    default = train_small(esol.head(80))
    monkeypatch.setenv("MOLPRED_PRECISION", "float32")
    exact = train_small(esol.head(80))
    assert default.weights_sha256() == exact.weights_sha256()
    assert default.info.metrics["test"] == exact.info.metrics["test"]
    monkeypatch.delenv("MOLPRED_PRECISION")
    with models.float32_messages():
        assert models.message_dtype(torch.device("cpu")) == torch.float32
    assert models.message_dtype(torch.device("cpu")) == torch.bfloat16
    monkeypatch.setenv("MOLPRED_PRECISION", "fp32")
    with pytest.raises(ValueError, match="MOLPRED_PRECISION"):
        models.message_dtype(torch.device("cpu"))


def test_bfloat16_products_have_few_distinct_row_counts(monkeypatch):
    """oneDNN keeps a kernel per row count of a bfloat16 product: unpadded, a library run's
    workers grew by a gigabyte. Padded rows are zeros and change nothing."""
    from molpred import models

    monkeypatch.setattr(models, "_native_bf16", lambda: True)
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden_size=32, head_hidden_size=32)).eval()
    batch = _batch(["OCC(=O)Nc1ccccc1", "CCN(CC)CC", "c1ccc2[nH]ccc2c1", "C"])
    rows, addmm = [], torch.addmm

    def recording(*args, **kwargs):
        rows.append(args[1].size(0))
        return addmm(*args, **kwargs)

    monkeypatch.setattr(torch, "addmm", recording)
    with torch.no_grad():
        padded = model.encoder(batch)
    assert rows and all(r % models.PAD_ROWS == 0 for r in rows)
    rows.clear()
    with torch.enable_grad():  # gradients: not padded (explanations run float32 anyway)
        plain = model.encoder(batch).detach()
    assert models.PAD_ROWS not in rows and padded.shape == plain.shape == (batch.x.size(0), 32)
    torch.testing.assert_close(padded, plain)
