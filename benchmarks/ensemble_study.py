"""Raw material for choosing the default ensemble: member outputs on validation and test rows.

For each data set and replicate of the shared scaffold splits, members are trained on the train
rows with the validation rows for early stopping, exactly as ``molpred train`` trains one
member. For each member the script stores, on the validation and the test rows: values,
variances (variance head), raw outputs (standardized values / logits), and the latent k-NN
distance to the training molecules in that member's own representation; per job it stores the
maximum Tanimoto similarity of each validation and test molecule to the training molecules, the
targets, and each member's training time.

Nothing is chosen here. ``ensemble_choice.py`` reads the archive, chooses the design on
validation rows only, and only then reports test-row metrics of that choice.

Usage::

    python benchmarks/ensemble_study.py --out benchmarks/results/ensemble_study.zip
    python benchmarks/ensemble_study.py --datasets esol --replicates 0 --members 200:0 --epochs 3
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPLITS = ROOT.parent / "shared" / "splits"
DATASETS = ["esol", "freesolv", "lipo", "bbbp", "bace", "clintox", "tox21", "sider"]


def run_job(args: tuple) -> tuple[str, bytes, dict]:
    name, rep, members, splits_dir, device, epochs, threads, deadline = args
    import pandas as pd
    import torch

    torch.set_num_threads(threads)
    from molpred.data import prepare_dataset
    from molpred.fitting import TrainConfig, fit
    from molpred.models import ModelConfig, build_model, member_outputs
    from molpred.splits import splits_from_file
    from molpred.trust.domain import knn_distance, max_similarity

    splits_dir = Path(splits_dir)
    manifest = json.loads((splits_dir / "manifest.json").read_text())[name]
    df = pd.read_csv(splits_dir / "clean" / f"{name}.csv")
    split = json.loads((splits_dir / f"{name}.json").read_text())[rep]
    tmp = Path(f"/tmp/ensemble_study_{name}_{rep}.json")
    tmp.write_text(json.dumps([split]))
    ds = prepare_dataset(
        df, "smiles", manifest["targets"], manifest["task"], cache_dir=None, workers=1
    )
    sp = splits_from_file(tmp, ds.source_rows)[0]
    train, val, test = ds.subset(sp.train), ds.subset(sp.val), ds.subset(sp.test)
    rng = np.random.default_rng(0)
    sample = rng.choice(len(train), size=min(2000, len(train)), replace=False)
    arrays: dict[str, np.ndarray] = {
        "val_y": val.targets,
        "test_y": test.targets,
        "val_sim": max_similarity(val.fingerprints, train.fingerprints),
        "test_sim": max_similarity(test.fingerprints, train.fingerprints),
    }
    info = {
        "dataset": name,
        "replicate": rep,
        "task_types": list(ds.task_types),
        "n": [len(sp.train), len(sp.val), len(sp.test)],
        "device": device,
        "members": [],
    }
    for hidden, seed in members:
        if time.time() > deadline:
            info["stopped_early"] = True
            break
        torch.manual_seed(seed)
        cfg = ModelConfig(hidden_size=hidden, task_types=tuple(ds.task_types))
        model = build_model(cfg)
        tc = TrainConfig(seed=seed, device=device, **({"epochs": epochs} if epochs else {}))
        result = fit(model, train, val, tc, progress=False)
        key = f"h{hidden}_s{seed}"
        _, _, ref_emb, _ = member_outputs(
            [model], train.subset(sample).featurized(), device=device, embeddings=True
        )
        ref = torch.from_numpy(ref_emb)
        for part, sub in (("val", val), ("test", test)):
            values, variances, emb, raw = member_outputs(
                [model], sub.featurized(), device=device, embeddings=True
            )
            arrays[f"{part}_{key}_value"] = values[..., 0]
            arrays[f"{part}_{key}_var"] = variances[..., 0]
            arrays[f"{part}_{key}_raw"] = raw[..., 0]
            arrays[f"{part}_{key}_latent"] = knn_distance(torch.from_numpy(emb), ref)
        info["members"].append(
            {
                "key": key,
                "hidden": hidden,
                "seed": seed,
                "best_epoch": result.best_epoch,
                "epochs_run": len(result.history),
                "seconds": result.seconds,
                "seconds_to_best": result.seconds_to_best,
            }
        )
        model.cpu()
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return f"{name}_{rep}", buf.getvalue(), info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=DATASETS)
    ap.add_argument("--replicates", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument(
        "--members",
        nargs="+",
        default=[f"{h}:{s}" for h in (200, 128) for s in range(4)],
        help="HIDDEN:SEED of each member to train",
    )
    ap.add_argument("--splits", default=str(DEFAULT_SPLITS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--jobs", type=int, default=1, help="(data set, replicate) jobs at once")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per job")
    ap.add_argument("--epochs", type=int, help="override the epochs (smoke test)")
    ap.add_argument("--budget-s", type=float, default=1e9, help="stop starting members after")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ensemble_study.zip"))
    args = ap.parse_args()
    members = [tuple(int(x) for x in m.split(":")) for m in args.members]
    deadline = time.time() + args.budget_s
    # largest first, so the long jobs do not start last
    order = ["tox21", "lipo", "sider", "bace", "bbbp", "clintox", "esol", "freesolv"]
    jobs = [
        (d, r, members, args.splits, args.device, args.epochs, args.threads, deadline)
        for d in sorted(args.datasets, key=lambda d: order.index(d) if d in order else 99)
        for r in args.replicates
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.jobs) as pool:
        for key, blob, info in pool.imap_unordered(run_job, jobs):
            info["wall_s"] = round(time.perf_counter() - start, 1)
            with zipfile.ZipFile(out, "a") as z:  # one file, complete after every job
                z.writestr(f"{key}.npz", blob)
                z.writestr(f"{key}.json", json.dumps(info))
            print(key, f"{info['wall_s']} s", len(info["members"]), "members", flush=True)
    print(f"done in {time.perf_counter() - start:.0f} s on {args.device}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
