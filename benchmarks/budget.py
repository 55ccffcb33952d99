"""Training time of the default model at the size issue 11 bounds: up to 100,000 interactions and 20,000 items
must train in <= 60 s on 2 cores (the whole `fit`: validation carve, early stopping, refit, the item-item
solves). Synthetic data of that shape (`helpers.data.synthetic.electronics_like`) and the original
notebook's split; prints and writes reports/benchmarks.json under "budget".

    .venv/bin/python benchmarks/budget.py            # 2 torch threads, the default model
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from helpers.data.synthetic import electronics_like  # noqa: E402
from helpers.files import write_text  # noqa: E402
from helpers.models import DEFAULT_MODEL, make_model  # noqa: E402
from helpers.training import fit  # noqa: E402

OUT = ROOT / "reports" / "benchmarks.json"
SHAPES = {"100k interactions, 20k items": dict(n_ratings=100_000, n_users=5_000, n_items=20_000),
          "100k interactions, 10k items": dict(n_ratings=100_000, n_users=2_000, n_items=10_000),
          "100k interactions, 2k items": dict(n_ratings=100_000, n_users=1_000, n_items=2_000)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = {}
    for label, shape in SHAPES.items():
        df = electronics_like(**shape, seed=0)
        start = time.perf_counter()
        model = fit(make_model(args.model, seed=0), df)
        seconds = time.perf_counter() - start
        m, sel = model.metadata, model.metadata.get("selection", {})
        rows[label] = {"rows": int(len(df)), "users": int(df["user_id"].nunique()), "items": int(df["item_id"].nunique()),
                       "loss": model.config["loss"], "fit_seconds": round(seconds, 1),
                       "selection_seconds": sel.get("selection_seconds"), "refit_seconds": m.get("refit_seconds"),
                       "item_item_seconds": m.get("prepare_seconds"), "seconds_per_epoch": m["seconds_per_epoch"],
                       "epochs_chosen": sel.get("best_epoch"), "epochs_run": sel.get("epochs_run"),
                       "item_item": m.get("item_item")}
        print(f"{label}: {seconds:.1f} s ({rows[label]})", flush=True)
    data = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    data["budget"] = {"command": "benchmarks/budget.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                      "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "threads": args.threads,
                      "model": args.model, "target_seconds": 60, "shapes": rows}
    write_text(Path(args.out), json.dumps(data, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
