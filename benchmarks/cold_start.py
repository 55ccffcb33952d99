"""Cold start: does CollabNN with side features beat popularity, global and within the user's segment, on warm
users, cold users and cold items? Selection on validation, the test part once.

    .venv/bin/python benchmarks/cold_start.py                       # ml-100k and a 0.2-scale Electronics stand-in
    .venv/bin/python benchmarks/cold_start.py --datasets ml-100k    # one dataset

For each dataset:
- ml-100k: a random 80:20 split per user, then 10% of the users and 5% of the items held out entirely
  (`helpers.data.cold_start_split`), so the test part has cold users and cold items;
- electronics: the Electronics-format stand-in (`helpers.data.electronics_file`, 0.2 of the full size by default)
  with the global 80:20 split (`auto`): most test users are cold by construction.

Validation: the same cold-start split applied to the training part (the test part is not read), on which
CollabNN with and without side features is compared (`--variants`); the tuning log shows these validation
figures only. Then every model is trained on all of the training part and evaluated once on the test part:
warm users, cold users (full ranking) and cold items (ranked among the test's cold items), with 95% bootstrap
intervals. Results go to reports/benchmarks.json under "cold_start" and to benchmarks/logs/cold_start.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from helpers.data import cold_start_split, load, make_split  # noqa: E402
from helpers.data.electronics_file import write_electronics_file  # noqa: E402
from helpers.evaluation import cold_start_table, evaluate_models  # noqa: E402
from helpers.files import write_text  # noqa: E402
from helpers.notebooks.landing import run_record  # noqa: E402
from helpers.models import MODEL_CLASSES, make_model  # noqa: E402
from helpers.training import fit  # noqa: E402

OUT = ROOT / "reports" / "benchmarks.json"
LOG = ROOT / "benchmarks" / "logs" / "cold_start.md"
VARIANTS = {"collabnn (features off)": dict(features=False), "collabnn (features on)": dict(features=True)}
BASELINES = ["popular", "popular_segment"]


def splits(dataset: str, scale: float, seed: int):
    """(test-time train, test, validation-time fit part, validation part, description)."""
    if dataset == "ml-100k":
        df = load("ml-100k", verbose=False)
        train, test = cold_start_split(df, "random", 0.1, 0.05, seed=seed)
        fit_part, valid = cold_start_split(train, "random", 0.1, 0.05, seed=seed + 1)
        return train, test, fit_part, valid, "ml-100k, random 80:20 per user + 10% of users and 5% of items held out"
    folder = Path(tempfile.mkdtemp())
    write_electronics_file(folder / "df_electronics.csv", scale=scale, seed=seed)
    df = load(f"electronics:{folder / 'df_electronics.csv'}", verbose=False)
    train, test = make_split(df, "auto", seed=seed)
    fit_part, valid = make_split(train, "auto", seed=seed + 1)
    return train, test, fit_part, valid, f"Electronics-format stand-in at scale {scale}, global 80:20 split"


def slice_rows(table, metric="ndcg"):
    t = table[(table["metric"] == metric) & ((table["protocol"] == "full") | (table["slice"] == "cold items"))]
    return {f"{r.slice}/{r.model}": {"value": round(float(r.value), 4), "ci_low": round(float(r.ci_low), 4),
                                     "ci_high": round(float(r.ci_high), 4), "n_users": int(r.n_users)}
            for r in t.itertuples()}


def fitted(name: str, config: dict, train, seed: int, epochs):
    if name in BASELINES:
        return MODEL_CLASSES[name]().fit(train)
    return fit(make_model("collabnn", seed=seed, epochs=epochs, **config), train)


def run(dataset: str, scale: float, seed: int, epochs) -> dict:
    train, test, fit_part, valid, what = splits(dataset, scale, seed)
    validation = {}
    for label, config in {**{b: {} for b in BASELINES}, **VARIANTS}.items():
        start = time.perf_counter()
        model = fitted(label, config, fit_part, seed, epochs)
        models = {label: model}
        table = cold_start_table(evaluate_models(models, fit_part, valid, protocols=["full"], verbose=False,
                                                 n_boot=200, seed=seed), models, fit_part, valid)
        validation[label] = {**slice_rows(table), "seconds": round(time.perf_counter() - start, 1)}
        print(dataset, "validation", label, validation[label], flush=True)
    models = {label: fitted(label, config, train, seed, epochs) for label, config in
              {**{b: {} for b in BASELINES}, **VARIANTS}.items()}
    result = evaluate_models(models, train, test, protocols=["full"], verbose=False, seed=seed)
    test_rows = slice_rows(cold_start_table(result, models, train, test))
    print(dataset, "test", json.dumps(test_rows, indent=1), flush=True)
    return {"data": what, "train_rows": len(train), "test_rows": len(test), "validation": validation, "test": test_rows}


def commit() -> str:
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    return sha + ("+dirty" if dirty else "")


def markdown(results: dict) -> str:
    lines = ["# Cold start: side features against popularity (benchmarks/cold_start.py)", "",
             f"Commit {results['commit']}, {results['date']}, {results['machine']}, {results['threads']} threads. "
             "Full-ranking NDCG@10 with 95% bootstrap intervals; cold items ranked among the test's cold items.", ""]
    for dataset, r in results["datasets"].items():
        lines += [f"## {dataset}: {r['data']}", "", "Validation (carved from train; what the default was chosen on):", "",
                  "| model | " + " | ".join(k.split("/")[0] for k in next(iter(r["validation"].values())) if "/" in k) + " |",
                  "|---|" + "---|" * sum("/" in k for k in next(iter(r["validation"].values())))]
        for label, row in r["validation"].items():
            cells = [f"{v['value']:.4f} [{v['ci_low']:.4f}, {v['ci_high']:.4f}]" for k, v in row.items() if "/" in k]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += ["", "Test (once):", "", "| slice | model | NDCG@10 [95% CI] | users |", "|---|---|---|---|"]
        for key, v in r["test"].items():
            s, m = key.split("/", 1)
            lines.append(f"| {s} | {m} | {v['value']:.4f} [{v['ci_low']:.4f}, {v['ci_high']:.4f}] | {v['n_users']:,} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", default="ml-100k,electronics")
    p.add_argument("--scale", type=float, default=0.2, help="share of the full Electronics size for the stand-in")
    p.add_argument("--epochs", type=int, default=None, help="most epochs of the neural models (default: theirs; "
                                                               "make run DATASET=electronics uses 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {"commit": commit(), "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(),
               "threads": args.threads, "provenance": run_record(ROOT), "datasets": {}}
    for dataset in args.datasets.split(","):
        results["datasets"][dataset] = run(dataset, args.scale, args.seed, args.epochs)
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    earlier = data.get("cold_start", {}).get("datasets", {})  # a run of one dataset keeps the others' results
    results["datasets"] = {**{k: v for k, v in earlier.items() if k not in results["datasets"]}, **results["datasets"]}
    data["cold_start"] = results
    write_text(OUT, json.dumps(data, indent=2) + "\n")
    write_text(LOG, markdown(results) + "\n")
    print(f"wrote {OUT} (cold_start) and {LOG}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
