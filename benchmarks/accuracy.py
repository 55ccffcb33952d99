"""Accuracy benchmark of the default neural model: the figures the README reports.

    .venv/bin/python benchmarks/accuracy.py            # 3 training seeds, ~5-10 min on a 2-core CPU
    .venv/bin/python benchmarks/accuracy.py --quick    # 1 seed, to check that it runs
    .venv/bin/python benchmarks/accuracy.py --compare mf,neumf,popular,ease   # extra rows for comparison

1. Implicit task on the original notebook's exact split (../shared/data/ml-latest-small-seed-split,
   610 users, one held-out item each): each held-out item ranked against 99 sampled items the user
   never interacted with (`helpers.data.sampled_candidates(train, test, 99, seed=0)`, the same
   candidates for every model and seed), HR@10 and NDCG@10 in [0, 1], mean over training seeds,
   with the training wall time. Targets: HR@10 >= 0.87, NDCG@10 >= 0.66, training <= 60 s.
2. Rating task on ml-100k (`helpers.data.random_split`, seed 0, 80:20 per user): RMSE in stars
   on the 20%. Target: RMSE <= 0.90.

Results go to reports/benchmarks.json under "accuracy" (other keys of that file are kept) and a table
is printed. When ../shared is absent, part 1 is skipped with a message (part 2 still runs).
Training runs with `--threads` torch threads (default 1: on a small shared machine one thread is
faster and steadier than two fighting over two cores).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from helpers.files import write_text  # noqa: E402  (the repository on the path first, for a run without `make setup`)
SEED_SPLIT = ROOT.parent / "shared" / "data" / "ml-latest-small-seed-split"
OUT = ROOT / "reports" / "benchmarks.json"
TARGETS = {"hr@10": 0.87, "ndcg@10": 0.66, "train_seconds": 60.0, "rmse": 0.90}


def read_seed_split(folder: Path):
    """(train, test) of the original notebook's split in the canonical columns (ids as strings)."""
    import pandas as pd

    def read(name):
        frame = pd.read_csv(folder / name, dtype={"userId": str, "movieId": str})
        return frame.rename(columns={"userId": "user_id", "movieId": "item_id"})[["user_id", "item_id"]]

    return read("train.csv"), read("test.csv")  # 100,226 and 610 rows


def fit_timed(name: str, train, task: str, seed: int, device: str = "auto"):
    """(fitted model, training seconds). Neural models with their defaults; baselines by registry name."""
    from helpers.training import fit
    from helpers.models import MODEL_CLASSES, MODELS
    from helpers.training.learner import train_model

    start = time.perf_counter()
    if name in MODELS:
        model = train_model(train, name, task=task, seed=seed, device=device)
    elif name in MODEL_CLASSES:
        model = fit(MODEL_CLASSES[name](), train)
    else:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(set(MODELS) | set(MODEL_CLASSES))}")
    return model, time.perf_counter() - start


def seed_split_benchmark(names, seeds, folder: Path = SEED_SPLIT, device: str = "auto") -> dict:
    import numpy as np

    from helpers.data.sampling import sampled_candidates
    from helpers.models import MODELS
    from helpers.evaluation import sampled_ranking

    train, test = read_seed_split(folder)
    cand = sampled_candidates(train, test, 99, seed=0)
    rows = {}
    for name in names:
        per_seed = []
        for seed in (seeds if name in MODELS else seeds[:1]):  # baselines are deterministic
            model, seconds = fit_timed(name, train, "implicit", seed, device)
            ranking = sampled_ranking(model, cand, unknown="drop")
            per_seed.append({"seed": seed, "hr@10": ranking.mean("hr", 10),
                             "ndcg@10": ranking.mean("ndcg", 10), "train_seconds": round(seconds, 1)})
            print(f"  seed split, {name}, seed {seed}: HR@10 {per_seed[-1]['hr@10']:.4f}  "
                  f"NDCG@10 {per_seed[-1]['ndcg@10']:.4f}  {seconds:.1f} s", flush=True)
        rows[name] = {
            "config": {k: v for k, v in getattr(model, "config", {}).items() if k != "progress"},
            "per_seed": per_seed,
            **{k: float(np.mean([r[k] for r in per_seed])) for k in ("hr@10", "ndcg@10", "train_seconds")},
        }
    try:
        data = str(Path(folder).resolve().relative_to(ROOT.parent))
    except ValueError:
        data = str(folder)
    return {"data": data, "train_rows": int(len(train)),
            "evaluation_rows": int(len(cand)),
            "protocol": "each held-out item vs 99 sampled unseen items (sampled_candidates seed 0); mean over seeds",
            "models": rows}


def ml100k_benchmark(names, seed: int = 0, device: str = "auto") -> dict:
    import numpy as np

    from helpers.data.datasets import load
    from helpers.data.split import random_split

    train, test = random_split(load("ml-100k", verbose=False), seed=0)  # 80,000 / 20,000 rows
    rows = {}
    for name in names:
        model, seconds = fit_timed(name, train, "rating", seed, device)
        with warnings.catch_warnings():  # test items never rated in train get NaN; counted in scored_rows
            warnings.simplefilter("ignore", UserWarning)
            pred = model.score(test[["user_id", "item_id"]])
        ok = np.isfinite(pred)
        rmse = float(np.sqrt(np.mean((pred[ok] - test["rating"].to_numpy(dtype=np.float64)[ok]) ** 2)))
        rows[name] = {"rmse": rmse, "train_seconds": round(seconds, 1), "seed": seed, "scored_rows": int(ok.sum()),
                      "unscored_rows": int((~ok).sum()),
                      "config": {k: v for k, v in model.config.items() if k != "progress"}}
        print(f"  ml-100k rating, {name}: RMSE {rmse:.4f}  {seconds:.1f} s", flush=True)
    return {"data": "ml-100k, helpers.data.random_split seed 0 (80,000 / 20,000)", "models": rows}


def write_results(section: dict, path: Path = OUT) -> None:
    """Replace the "accuracy" key of benchmarks.json (other keys kept), atomically."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data["accuracy"] = section
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="one training seed instead of three")
    p.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1 (default 3)")
    p.add_argument("--model", default="collabnn", help="the neural model measured against the targets")
    p.add_argument("--compare", default="", help="comma-separated extra rows: mf, neumf, popular, ease, ...")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--seed-split", default=str(SEED_SPLIT),
                   help="folder of the original notebook's split (default: ../shared/data/ml-latest-small-seed-split)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (neural models)")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    seeds = [0] if args.quick else list(range(args.seeds))
    names = [args.model] + [n for n in args.compare.split(",") if n and n != args.model]
    section = {
        "command": "benchmarks/accuracy.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": args.threads, "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(), "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "note": "shared machine: other jobs may have been running; times are wall clock"},
        "targets": TARGETS, "model": args.model, "seeds": seeds,
    }
    from helpers.training.device import library_versions

    section["versions"] = library_versions()
    folder = Path(args.seed_split)
    if (folder / "train.csv").exists():
        print(f"seed split ({folder}), implicit task, seeds {seeds}:", flush=True)
        section["seed_split"] = seed_split_benchmark(names, seeds, folder, args.device)
    else:
        print(f"SKIPPED the seed-split benchmark: {folder} is absent (it ships only with the project's "
              "shared folder, next to this repository)", flush=True)
        section["seed_split"] = None
    rating_names = [n for n in names if n in ("collabnn", "mf", "neumf")]
    print("ml-100k, rating task:", flush=True)
    section["ml100k_rating"] = ml100k_benchmark(rating_names, device=args.device)
    write_results(section, Path(args.out))

    print(f"\n{'benchmark':34} {'model':10} {'HR@10':>7} {'NDCG@10':>8} {'RMSE':>7} {'train s':>8}")
    if section["seed_split"]:
        for name, r in section["seed_split"]["models"].items():
            print(f"{'seed split, implicit (mean ' + str(len(r['per_seed'])) + ' seeds)':34} {name:10} "
                  f"{r['hr@10']:7.4f} {r['ndcg@10']:8.4f} {'':>7} {r['train_seconds']:8.1f}")
    for name, r in section["ml100k_rating"]["models"].items():
        print(f"{'ml-100k, rating':34} {name:10} {'':>7} {'':>8} {r['rmse']:7.4f} {r['train_seconds']:8.1f}")
    print(f"targets: HR@10 >= {TARGETS['hr@10']}, NDCG@10 >= {TARGETS['ndcg@10']}, training <= "
          f"{TARGETS['train_seconds']:.0f} s, RMSE <= {TARGETS['rmse']}; written to {args.out} (key 'accuracy')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
