"""Cost growth in the catalogue: the default model's training time, epoch time and peak memory, and EASE's fit
time and peak memory, as the catalogue grows from 1,000 to 50,000 items at fixed interactions (synthetic data
of the Electronics shape, `helpers.data.synthetic.electronics_like`). Growth in interactions is the scale
benchmark's (benchmarks/scale.py, reports/figures/scale_growth.png).

    .venv/bin/python benchmarks/budget.py        # `make benchmark-budget`: about 10 min on 2 cores
    .venv/bin/python benchmarks/budget.py --items 500 1000 --ratings 4000 --users 400   # a quick run (the test's)
    .venv/bin/python benchmarks/budget.py --render   # the plot again from the JSON

Each (catalogue, model) is fitted in a child process of its own, so its peak resident memory (ru_maxrss: the
interpreter, torch and the data included) is its own. The default's time is the whole `fit`: validation carve,
early stopping, refit and the item-item solves. Writes reports/benchmarks.json under "budget" (with the run's
commit, clean or not, date, machine, threads and load average) and reports/figures/budget_growth.png; the
README's block is regenerated from the JSON by benchmarks/readme_tables.py.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.ticker import LogFormatter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from helpers.data.synthetic import electronics_like  # noqa: E402
from helpers.files import atomic_path, write_text  # noqa: E402
from helpers.models import DEFAULT_MODEL, MODEL_CLASSES, is_neural, make_model  # noqa: E402
from helpers.notebooks.landing import run_record  # noqa: E402
from helpers.training import CATALOGUE_BUDGET, fit  # noqa: E402

OUT = ROOT / "reports" / "benchmarks.json"
FIGURE = ROOT / "reports" / "figures" / "budget_growth.png"
ITEMS = [1_000, 2_000, 5_000, 10_000, 17_600, 30_000, 50_000]
RATINGS, USERS = 92_000, 9_000          # fixed while the catalogue grows (about 10 interactions per user)
# EASE's weights are a dense items x items float32 matrix; above this many items (10 GB at 50,000) it is not run.
EASE_MAX_ITEMS = 30_000
TARGETS = {"items": 17_600, "default_fit_seconds": 60, "ease_fit_seconds": 30}   # issue 15


def child(model: str, n_items: int, ratings: int, users: int, threads: int) -> dict:
    """Fit `model` on the synthetic catalogue of `n_items` items in this process; its times and peak memory."""
    torch.set_num_threads(threads)
    df = electronics_like(n_ratings=ratings, n_users=users, n_items=n_items, seed=0)
    start = time.perf_counter()
    fitted = fit(make_model(model, seed=0) if is_neural(MODEL_CLASSES[model]) else MODEL_CLASSES[model](), df)  # EASE: its default lambda
    seconds = time.perf_counter() - start
    meta = fitted.metadata
    sel = meta.get("selection", {})
    row = {"model": model, "rows": int(len(df)), "users": int(df["user_id"].nunique()), "items": int(df["item_id"].nunique()),
           "fit_seconds": round(seconds, 2), "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3)}
    if "seconds_per_epoch" in meta:
        row.update(loss=fitted.config.get("loss"), catalogue_samples=meta.get("catalogue_samples"),
                   seconds_per_epoch=meta["seconds_per_epoch"],
                   item_item_seconds=meta.get("prepare_seconds"), epochs_chosen=sel.get("best_epoch"),
                   epochs_run=sel.get("epochs_run"), selection_seconds=sel.get("selection_seconds"),
                   refit_seconds=meta.get("refit_seconds"))
    return row


def run_child(model: str, n_items: int, args) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", model, str(n_items), "--ratings", str(args.ratings),
               "--users", str(args.users), "--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{model} at {n_items:,} items: the child process failed (exit {done.returncode}):\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def growth_figure(section: dict, path: Path = FIGURE) -> Path:
    """Fit seconds and peak GB against catalogue size (log-log), the default and EASE; epoch seconds beside."""
    rows = section["rows"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for name, key, style in ((section["model"], "default", "o-"), ("ease", "ease", "s--")):
        pts = [(r["items"], r[key]) for r in rows if r.get(key)]
        if not pts:
            continue
        xs = [p[0] for p in pts]
        axes[0].plot(xs, [p[1]["fit_seconds"] for p in pts], style, label=name)
        axes[2].plot(xs, [p[1]["peak_gb"] for p in pts], style, label=name)
        if key == "default":
            for loss in sorted({p[1]["loss"] for p in pts}):
                sub = [p for p in pts if p[1]["loss"] == loss]
                axes[1].plot([p[0] for p in sub], [p[1]["seconds_per_epoch"] for p in sub], style, label=f"{name}, {loss}")
    axes[0].axhline(TARGETS["default_fit_seconds"], color="C3", lw=0.8, ls=":", label="60 s (default's target)")
    axes[0].axhline(TARGETS["ease_fit_seconds"], color="C1", lw=0.8, ls=":", label="30 s (EASE's target)")
    axes[0].axvline(TARGETS["items"], color="grey", lw=0.8, ls=":")
    for ax, title in zip(axes, ("whole fit (s)", "one epoch (s)", "peak resident memory (GB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        # plain numbers on the log axes (the default writes a panel within one decade as 2x10^0, 3x10^0, ...)
        ax.yaxis.set_major_formatter(LogFormatter(10))
        ax.yaxis.set_minor_formatter(LogFormatter(10, labelOnlyBase=False))
        ax.set_xlabel("catalogue size (items, log scale)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    prov = section["provenance"]
    fig.suptitle(f"Cost as the catalogue grows at {section['ratings']:,} interactions from {section['users']:,} users "
                 f"(synthetic Electronics shape); run of {prov['date']}, commit {prov['commit']}, {section['threads']} threads",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--items", type=int, nargs="+", default=ITEMS, help="catalogue sizes (default 1,000 ... 50,000)")
    p.add_argument("--ratings", type=int, default=RATINGS)
    p.add_argument("--users", type=int, default=USERS)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--figure", default=str(FIGURE))
    p.add_argument("--render", action="store_true", help="only draw the figure again from the JSON")
    p.add_argument("--child", nargs=2, metavar=("MODEL", "ITEMS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.ratings, args.users, args.threads)), flush=True)
        return 0
    out = Path(args.out)
    data = json.loads(out.read_text()) if out.exists() else {}
    if args.render:
        if "budget" not in data:
            raise SystemExit(f"{out} has no 'budget' result; run benchmarks/budget.py first")
        print(growth_figure(data["budget"], Path(args.figure)))
        return 0
    provenance = run_record(ROOT)
    rows = []
    for n_items in sorted(args.items):
        row = {"items": n_items, "default": run_child(args.model, n_items, args)}
        if n_items <= EASE_MAX_ITEMS:
            row["ease"] = run_child("ease", n_items, args)
        else:
            row["ease_skipped"] = (f"not run: its dense {n_items:,} x {n_items:,} float32 weights alone are "
                                   f"{n_items ** 2 * 4 / 1e9:.3g} GB")
        print(json.dumps(row), flush=True)
        rows.append(row)
    section = {"command": "benchmarks/budget.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "provenance": provenance, "load_average_end": [round(x, 2) for x in os.getloadavg()],
               "threads": args.threads, "model": args.model, "ratings": args.ratings, "users": args.users,
               "catalogue_budget": CATALOGUE_BUDGET, "targets": TARGETS, "rows": rows}
    data = json.loads(out.read_text()) if out.exists() else {}   # read again: another benchmark may have written meanwhile
    data["budget"] = section
    write_text(out, json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(growth_figure(section, Path(args.figure)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
