import copy
import json
import pickle

import pytest
import torch

from molpred.artifact import FORMAT_VERSION, ModelFileError, load_model
from molpred.predict import predict

from .conftest import ESOL_TARGET, FAST, train_small


@pytest.fixture(scope="module")
def trained(esol):
    model = train_small(esol.head(80))
    return model


def test_round_trip_gives_identical_predictions(trained, tmp_path):
    path = trained.save(tmp_path / "m.pt")
    loaded = load_model(path)
    smiles = ["CCO", "c1ccccc1O", "bad", "CC(=O)Nc1ccc(O)cc1"]
    a, b = predict(trained, smiles), predict(loaded, smiles)
    assert a.equals(b)
    meta = loaded.info
    assert meta.task_names == (ESOL_TARGET,) and meta.molpred_version
    assert meta.data_fingerprint == trained.info.data_fingerprint
    assert meta.train_config["epochs"] == FAST.epochs and "test" in meta.metrics


def test_file_holds_only_plain_types(trained, tmp_path):
    path = trained.save(tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)  # would raise on any pickled object
    assert payload["format_version"] == FORMAT_VERSION
    json.loads(payload["metadata"])


class _Evil:
    def __reduce__(self):
        return (exec, ("open('/tmp/molpred_pwned', 'w').write('x')",))


def test_pickle_payload_is_refused_without_running(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save(
        {"format": "molpred-model", "format_version": 1, "x": _Evil()}, path, pickle_protocol=2
    )
    with pytest.raises(ModelFileError, match="refused|not a readable"):
        load_model(path)
    import os

    assert not os.path.exists("/tmp/molpred_pwned")
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ModelFileError):
        load_model(raw)


def test_truncated_and_tampered_files_fail_clearly(trained, tmp_path):
    path = trained.save(tmp_path / "m.pt")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError):
        load_model(tmp_path / "cut.pt")
    payload = torch.load(path, weights_only=True)
    first = next(iter(payload["members"][0]))
    payload["members"][0][first] = payload["members"][0][first] + 1
    torch.save(payload, tmp_path / "tampered.pt")
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(tmp_path / "tampered.pt")


def test_incompatible_format_version(trained, tmp_path):
    payload = torch.load(trained.save(tmp_path / "m.pt"), weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(ModelFileError, match="format version"):
        load_model(tmp_path / "future.pt")
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "missing.pt")


def test_version_1_files_are_upgraded_not_refused(trained, tmp_path):
    """A file from molpred's first model format (no variance head, temperatures or domain)
    still loads and predicts the same values."""
    from molpred.artifact import weights_digest

    payload = torch.load(trained.save(tmp_path / "m.pt"), weights_only=True)
    meta = json.loads(payload["metadata"])
    states = [
        {k: v for k, v in s.items() if not k.startswith("variance_head") and k != "temperature"}
        for s in payload["members"]
    ]
    meta["model_config"].pop("variance_head")
    meta.pop("domain")
    meta.pop("trees")  # nor trees: the version-1 file is this model's network alone
    meta["weights_sha256"] = weights_digest(states)
    old = {
        "format": "molpred-model",
        "format_version": 1,
        "metadata": json.dumps(meta),
        "members": states,
    }
    torch.save(old, tmp_path / "v1.pt")
    loaded = load_model(tmp_path / "v1.pt")
    assert loaded.domain is None and loaded.members[0].variance_head is None
    smiles = ["CCO", "c1ccccc1O"]
    network = copy.deepcopy(trained)
    for member in network.members:
        member.trees = None
    new, upgraded = predict(network, smiles), predict(loaded, smiles)
    assert (new[ESOL_TARGET] == upgraded[ESOL_TARGET]).all()
    assert "domain_similarity" not in upgraded and f"{ESOL_TARGET}_lower" in upgraded


def test_domain_tensors_are_covered_by_the_checksum(trained, tmp_path):
    payload = torch.load(trained.save(tmp_path / "m.pt"), weights_only=True)
    payload["extras"]["domain_fingerprints"][0, 0] ^= 1
    torch.save(payload, tmp_path / "tampered.pt")
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(tmp_path / "tampered.pt")


def test_metadata_is_covered_by_the_checksum(trained, tmp_path):
    """Editing the JSON (a task name, a conformal threshold) is caught, not silently used."""
    payload = torch.load(trained.save(tmp_path / "m.pt"), weights_only=True)
    meta = json.loads(payload["metadata"])
    meta["task_names"] = ["something else"]
    payload["metadata"] = json.dumps(meta)
    torch.save(payload, tmp_path / "edited.pt")
    with pytest.raises(ModelFileError, match="metadata"):
        load_model(tmp_path / "edited.pt")
