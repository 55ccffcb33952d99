"""How `catalogue_samples` (the multinomial objective's sampled softmax) was chosen: the default model's
validation NDCG@10 and whole-fit seconds with the whole catalogue (0) and with sampled candidates, on
synthetic catalogues of the Electronics shape (92,000 interactions, 9,000 users) and on the original
notebook's training part (ml-latest-small, when ../shared is present). Validation figures only: every fit
carves its validation part out of the training data (`helpers.training.fit`); no test part is read.

    .venv/bin/python benchmarks/sampled_softmax.py      # about 10 min on 2 cores; writes benchmarks/logs/sampled_softmax.md
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from helpers.data.synthetic import electronics_like  # noqa: E402
from helpers.files import write_text  # noqa: E402
from helpers.models import DEFAULT_MODEL, make_model  # noqa: E402
from helpers.notebooks.landing import run_record  # noqa: E402
from helpers.training import fit  # noqa: E402

OUT = ROOT / "benchmarks" / "logs" / "sampled_softmax.md"
SEED_SPLIT = ROOT.parent / "shared" / "data" / "ml-latest-small-seed-split" / "train.csv"
SAMPLES = [0, 2048, 512]


def datasets(items: list[int]) -> dict[str, tuple[pd.DataFrame, str]]:
    out = {f"synthetic, {n:,} items": (electronics_like(n_ratings=92_000, n_users=9_000, n_items=n, seed=0), "auto")
           for n in items}
    if SEED_SPLIT.exists():
        frame = pd.read_csv(SEED_SPLIT, dtype={"userId": str, "movieId": str})
        out["seed split train (ml-latest-small)"] = (frame.rename(columns={"userId": "user_id", "movieId": "item_id"})
                                                     [["user_id", "item_id"]], "leave_one_out")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--items", type=int, nargs="+", default=[5_000, 10_000, 17_600])
    p.add_argument("--samples", type=int, nargs="+", default=SAMPLES)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    prov = run_record(ROOT)
    rows = []
    for label, (df, rule) in datasets(args.items).items():
        for samples in args.samples:
            start = time.perf_counter()
            model = fit(make_model(DEFAULT_MODEL, seed=0, validation=rule, catalogue_samples=samples), df)
            sel = model.metadata["selection"]
            rows.append({"data": label, "users": int(df["user_id"].nunique()), "items": int(df["item_id"].nunique()),
                         "catalogue_samples": samples, "validation_ndcg10": round(sel.get("model_value", sel["best_value"]), 4),
                         "best_epoch": sel["best_epoch"], "epochs_run": sel["epochs_run"],
                         "seconds_per_epoch": model.metadata["seconds_per_epoch"],
                         "fit_seconds": round(time.perf_counter() - start, 1)})
            print(json.dumps(rows[-1]), flush=True)
    lines = ["# The multinomial objective's sampled softmax (`catalogue_samples`): validation figures only", "",
             f"`benchmarks/sampled_softmax.py {' '.join(argv if argv is not None else sys.argv[1:])}` at commit "
             f"`{prov['commit']}` ({'clean tree' if prov['clean'] else 'uncommitted changes'}), {prov['date']}, "
             f"{prov['machine']}, {args.threads} torch threads, load average {prov['load_average']} at the start.",
             "Default model, seed 0; validation NDCG@10 of the whole model at the epoch early stopping chose, on the "
             "part `fit` carves out of the training data (synthetic: the `auto` rule; seed split: one item per user), "
             "ranked against the whole catalogue, training items excluded; fit seconds: the whole `fit` (carve, "
             "early stopping, refit, item-item solves). "
             "`catalogue_samples` 0 is the whole catalogue.", "",
             "| data | users | items | catalogue_samples | validation NDCG@10 | epochs (chosen / run) | one epoch | whole fit |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['data']} | {r['users']:,} | {r['items']:,} | {r['catalogue_samples']} | {r['validation_ndcg10']:.4f} | "
                     f"{r['best_epoch']} / {r['epochs_run']} | {r['seconds_per_epoch']:.2f} s | {r['fit_seconds']:.1f} s |")
    write_text(Path(args.out), "\n".join(lines) + "\n\n```json\n" + json.dumps(rows, indent=1) + "\n```\n")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
