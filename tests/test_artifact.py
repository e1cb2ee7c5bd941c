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


def _resealed(payload: dict, meta: dict) -> dict:
    """``payload`` with ``meta`` and checksums recomputed over whatever it now holds: what a
    damaged file whose damage the checksums cannot see looks like."""
    import hashlib

    from molpred.artifact import weights_digest

    meta["weights_sha256"] = weights_digest([*payload["members"], payload["extras"]])
    payload["metadata"] = json.dumps(meta)
    payload["metadata_sha256"] = hashlib.sha256(payload["metadata"].encode()).hexdigest()
    return payload


def test_damage_the_checksums_cannot_see_is_a_clear_error(trained, tmp_path):
    """A flipped bit in a key name, the zip's last header or a booster, or a file from a
    molpred with another config field, raised KeyError, BadZipFile, zlib.error or TypeError
    tracebacks (the page's sidebar and the CLI catch only the file error)."""
    path = trained.save(tmp_path / "m.pt")
    data = bytearray(path.read_bytes())
    locator = data.rindex(b"PK\x06\x07")  # torch's archives end with a zip64 locator
    data[locator + 16] = 2  # "one of 2 disks": zipfile raises instead of answering
    (tmp_path / "split.pt").write_bytes(bytes(data))
    damaged = {"split.pt": "not a readable"}

    def variant(name: str, change) -> None:
        payload = torch.load(path, weights_only=True)
        meta = json.loads(payload["metadata"])
        change(payload, meta)
        torch.save(_resealed(payload, meta), tmp_path / name)
        damaged[name] = "damaged or was not written by a compatible molpred"

    variant("config.pt", lambda _, meta: meta["model_config"].update(future_option=1))
    variant("tasks.pt", lambda _, meta: meta.pop("task_names"))
    key = next(k for k in torch.load(path, weights_only=True)["extras"] if "_booster" in k)
    variant("booster.pt", lambda payload, _: payload["extras"].update({key: torch.ones(9).byte()}))
    payload = torch.load(path, weights_only=True)
    payload["metadata_"] = payload.pop("metadata")
    torch.save(payload, tmp_path / "key.pt")
    damaged["key.pt"] = "damaged or was not written by a compatible molpred"
    for name, reason in damaged.items():
        with pytest.raises(ModelFileError, match=reason):
            load_model(tmp_path / name)


def test_a_lower_version_number_does_not_skip_the_checks(trained, tmp_path):
    """Version 2 files have no metadata checksum: one byte turning a file with trees into
    "version 2" let an edited task name load silently."""
    payload = torch.load(trained.save(tmp_path / "m.pt"), weights_only=True)
    meta = json.loads(payload["metadata"])
    meta["task_names"] = ["edited"]
    payload["metadata"], payload["format_version"] = json.dumps(meta), 2
    torch.save(payload, tmp_path / "downgraded.pt")
    with pytest.raises(ModelFileError, match="version 2 but holds parts of version 4"):
        load_model(tmp_path / "downgraded.pt")
    # version 1 had no extras and its digest skips them: a domain there is refused too
    payload = torch.load(trained.save(tmp_path / "m.pt"), weights_only=True)
    meta = json.loads(payload["metadata"])
    meta.pop("trees")
    payload["extras"] = {k: v for k, v in payload["extras"].items() if "_booster" not in k}
    payload["metadata"], payload["format_version"] = json.dumps(meta), 1
    torch.save(payload, tmp_path / "v1.pt")
    with pytest.raises(ModelFileError, match="version 1 but holds parts of later versions"):
        load_model(tmp_path / "v1.pt")


def test_a_directory_and_bytes_like_content(trained, tmp_path):
    with pytest.raises(ModelFileError, match="is a directory"):
        load_model(tmp_path)
    content = trained.save(tmp_path / "m.pt").read_bytes()
    for data in (bytearray(content), memoryview(content)):
        assert load_model(data).task_names == trained.task_names


def test_a_booster_that_inflates_without_bound_is_refused(trained, tmp_path, monkeypatch):
    """A few MB uploaded to the page could inflate to gigabytes: a cap holds it (here lowered
    to below this model's own trees, as a file far larger than any real booster)."""
    import molpred.trees

    path = trained.save(tmp_path / "m.pt")
    monkeypatch.setattr(molpred.trees, "MAX_BOOSTER_BYTES", 1000)
    with pytest.raises(ModelFileError, match="inflates beyond"):
        load_model(path)
