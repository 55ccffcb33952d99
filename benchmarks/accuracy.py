"""Accuracy benchmark: every model of the repository on four protocols, selected on validation, reported on test.

    .venv/bin/python benchmarks/accuracy.py --threads 2   # 3 training seeds, every model; about 30 min on 2 cores
    .venv/bin/python benchmarks/accuracy.py --quick    # 1 seed, to check that it runs
    .venv/bin/python benchmarks/accuracy.py --models collabnn,ease --protocols ml100k_random

Protocols (the data, the split, the validation rule and how the test part is scored):

- `seed_split`: the original notebook's split (../shared/data/ml-latest-small-seed-split: train.csv and
  test.csv, one held-out item per user); validation = one random training item per user
  (`validation_split(train, "leave_one_out")`, no timestamps); test: each held-out item ranked against 99
  sampled unseen items (`sampled_candidates(train, test, 99, seed=0)`, the same for every model).
- `ml100k_random`: ml-100k, `random_split` seed 0 (80:20 per user); validation = 20% per user of train;
  test: full ranking (every item the user has not trained on) and the sampled protocol (99 negatives).
- `ml100k_temporal`: ml-100k, `temporal_split` at the 0.8 quantile of time; validation = the last 20% of the
  training period; test: full ranking.
- `ml100k_rating`: ml-100k, `random_split` seed 0; validation = 20% per user of train; test: RMSE in stars.

Selection is on validation only: neural models choose their epoch by early stopping on validation NDCG@10
(RMSE for ratings) and are refitted on all of train (`helpers.training.fit`); `ease_tuned` chooses lambda
by an Optuna search on the same validation part (`helpers.training.tuning.tune`); the other baselines
keep their defaults. The validation column is NDCG@10 of full ranking on the validation part (for the
neural models: of the epoch chosen; for baselines: fitted on the fit part). Test figures are computed
once, after every choice. Mean and spread (min-max) over training seeds 0..N-1; baselines are
deterministic (one fit). Paired comparisons of the default against EASE over users (per-user figures
averaged over seeds) come from `helpers.evaluation.paired_comparison` (scipy's bootstrap and
permutation test).

Writes reports/benchmarks.json (key "accuracy", other keys kept) and regenerates benchmarks/ACCURACY.md.
When ../shared is absent the seed-split protocol is skipped with a message.
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

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from helpers.data import load, random_split, sampled_candidates, temporal_split, validation_split  # noqa: E402
from helpers.evaluation import full_ranking, paired_comparison, sampled_ranking  # noqa: E402
from helpers.files import write_text  # noqa: E402
from helpers.models import DEFAULT_MODEL, MODEL_CLASSES, MODELS, make_model  # noqa: E402
from helpers.notebooks.landing import run_record  # noqa: E402
from helpers.training import fit  # noqa: E402
from helpers.training.device import library_versions  # noqa: E402
from helpers.training.tuning import tune  # noqa: E402
from helpers.training.validation import ValidationNDCG  # noqa: E402

SEED_SPLIT = ROOT.parent / "shared" / "data" / "ml-latest-small-seed-split"
OUT = ROOT / "reports" / "benchmarks.json"
TABLE = ROOT / "benchmarks" / "ACCURACY.md"
IMPLICIT_MODELS = ["popular", "itemknn", "ease", "ease_tuned", "mf", "collabnn_mlp", "neumf", "collabnn_factor", "collabnn"]
RATING_MODELS = ["bias", "mf", "collabnn"]
PROTOCOLS = ["seed_split", "ml100k_random", "ml100k_temporal", "ml100k_rating"]
EASE_TRIALS = 8


def read_seed_split(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) of the original notebook's split in the canonical columns (ids as strings)."""
    def read(name):
        frame = pd.read_csv(folder / name, dtype={"userId": str, "movieId": str})
        return frame.rename(columns={"userId": "user_id", "movieId": "item_id"})[["user_id", "item_id"]]

    return read("train.csv"), read("test.csv")  # 100,226 and 610 rows


def protocol_data(name: str, folder: Path):
    """(train, test, validation rule, test protocols) of a protocol; None when its data is absent."""
    if name == "seed_split":
        if not (folder / "train.csv").exists():
            return None
        train, test = read_seed_split(folder)
        return train, test, "leave_one_out", ["sampled"]
    df = load("ml-100k", verbose=False)
    if name == "ml100k_random":
        return (*random_split(df, seed=0), "random", ["full", "sampled"])
    if name == "ml100k_temporal":
        return (*temporal_split(df, 0.8), "temporal", ["full"])
    if name == "ml100k_rating":
        return (*random_split(df, seed=0), "random", ["rating"])
    raise ValueError(f"unknown protocol {name!r}; choose from {PROTOCOLS}")


def fit_selected(name: str, train: pd.DataFrame, rule: str, task: str, seed: int, device: str):
    """(model fitted on all of train, validation figure, seconds, notes): every choice on validation."""
    start = time.perf_counter()
    if name == "ease_tuned":
        result = tune(train, "ease", budget_seconds=3600, n_trials=EASE_TRIALS, seed=seed, validation=rule)
        return result.model, result.best_value, time.perf_counter() - start, {"lambda_": result.best_params["lambda_"]}
    if name in MODELS:
        model = fit(make_model(name, task=task, seed=seed, device=device, validation=rule), train)
        sel = model.metadata["selection"]
        # the whole model's validation figure at the chosen epoch (CollabNN: factor + item-item branch); the
        # figure early stopping followed is kept beside it
        return model, sel.get("model_value", sel["best_value"]), time.perf_counter() - start, {
            "best_epoch": sel["best_epoch"], "epochs_run": sel["epochs_run"], "monitored_validation": sel["best_value"],
            "seconds_per_epoch": model.metadata["seconds_per_epoch"]}
    model = MODEL_CLASSES[name]().fit(train)
    seconds = time.perf_counter() - start
    fit_part, held = validation_split(train, rule, seed=seed)
    if task == "rating":
        probe = MODEL_CLASSES[name]().fit(fit_part)
        err = probe.score(held) - held["rating"].to_numpy(dtype=np.float64)
        return model, float(np.sqrt(np.nanmean(err ** 2))), seconds, {}
    return model, float(ValidationNDCG.of_frame(MODEL_CLASSES[name]().fit(fit_part), held, seed=seed).value), seconds, {}


def test_figures(model, train, test, protocols, cand) -> tuple[dict, dict]:
    """({figure: value}, {figure: (per-row values, user of each row)}) on the test part, for the protocols asked.
    Rows are in the same order for every model (same test part, same candidates)."""
    values, per_user = {}, {}
    for protocol in protocols:
        if protocol == "rating":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                pred = model.score(test[["user_id", "item_id"]])
            ok = np.isfinite(pred)
            values["rmse"] = float(np.sqrt(np.mean((pred[ok] - test["rating"].to_numpy(dtype=np.float64)[ok]) ** 2)))
            values["rmse_rows"] = int(ok.sum())
            continue
        ranking = (full_ranking(model, test, train, unknown="drop") if protocol == "full"
                   else sampled_ranking(model, cand, unknown="drop"))
        for metric in ("hr", "ndcg"):
            values[f"{protocol} {metric}@10"] = ranking.mean(metric, 10)
        per_user[f"{protocol} ndcg@10"] = (ranking.metric("ndcg", 10), np.asarray(ranking.user_ids))
    return values, per_user


def run_protocol(protocol: str, names, seeds, folder: Path, device: str) -> dict | None:
    data = protocol_data(protocol, folder)
    if data is None:
        print(f"SKIPPED {protocol}: {folder} is absent (it ships only with the project's shared folder)", flush=True)
        return None
    train, test, rule, protocols = data
    task = "rating" if protocol == "ml100k_rating" else "implicit"
    cand = sampled_candidates(train, test, 99, seed=0) if "sampled" in protocols else None
    rows, users = {}, {}
    for name in names:
        runs = []
        for seed in (seeds if name in MODELS else seeds[:1]):
            model, valid, seconds, notes = fit_selected(name, train, rule, task, seed, device)
            values, per_user = test_figures(model, train, test, protocols, cand)
            runs.append({"seed": seed, "validation": valid, "train_seconds": round(seconds, 2), **notes, **values})
            for key, series in per_user.items():
                users.setdefault((name, key), []).append(series)
            shown = "  ".join(f"{k} {v:.4f}" for k, v in values.items() if isinstance(v, float))
            print(f"  {protocol}, {name}, seed {seed}: validation {valid:.4f}  {shown}  {seconds:.1f} s", flush=True)
        keys = [k for k in runs[0] if k != "seed" and isinstance(runs[0][k], (int, float))]
        rows[name] = {"runs": runs, **{k: {"mean": float(np.mean([r[k] for r in runs])),
                                           "min": float(np.min([r[k] for r in runs])),
                                           "max": float(np.max([r[k] for r in runs]))} for k in keys}}
    comparisons = {}
    for other in ("ease", "ease_tuned"):
        for key in [k for (n, k) in users if n == DEFAULT_MODEL]:
            if (other, key) not in users:
                continue
            runs = users[(DEFAULT_MODEL, key)]
            a = np.mean([values for values, _ in runs], axis=0)      # per row, averaged over training seeds
            b, groups = users[(other, key)][0]
            if not np.array_equal(groups, runs[0][1]):
                raise RuntimeError(f"{key}: the test rows of {DEFAULT_MODEL} and {other} differ; cannot pair them")
            res = paired_comparison(a, b, groups, n_boot=2000, seed=0)
            comparisons[f"{DEFAULT_MODEL} - {other}, {key}"] = res
    return {"train_rows": int(len(train)), "test_rows": int(len(test)), "validation_rule": rule,
            "test_protocols": protocols, "models": rows, "paired": comparisons}


def _cell(entry: dict | None, digits: int = 3) -> str:
    if entry is None:
        return ""
    mean, lo, hi = entry["mean"], entry["min"], entry["max"]
    return f"{mean:.{digits}f}" if hi - lo < 10 ** -digits / 2 else f"{mean:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def markdown(section: dict) -> str:
    """benchmarks/ACCURACY.md from the run's numbers."""
    lines = ["# Accuracy benchmark: selected on validation, reported on test", "",
             "Generated by `benchmarks/accuracy.py` (do not edit by hand); the numbers are in "
             "`reports/benchmarks.json` under `accuracy`.", "",
             f"Command: `{section['command']}`. Run of {section['date']}, {section['machine']['cpu_count']} CPU cores, "
             f"{section['machine']['torch_threads']} torch thread(s), device {section['device']}; seeds {section['seeds']}. "
             "Cells: mean over training seeds (min-max when they differ); baselines are deterministic (one fit).", "",
             "Every choice (epochs by early stopping, EASE's lambda for `ease_tuned`) is made on a validation part carved "
             "out of train; the validation column is NDCG@10 of full ranking on that part (RMSE for ratings). The test "
             "columns are computed once, after. Sampled (99 negatives) and full-ranking figures are not comparable "
             "with each other.", ""]
    titles = {"seed_split": "Original notebook's split (ml-latest-small), one held-out item per user; test: sampled, 99 negatives",
              "ml100k_random": "ml-100k, random 80:20 per user (seed 0); test: full ranking and sampled (99 negatives)",
              "ml100k_temporal": "ml-100k, temporal (the latest 20% of time is test); test: full ranking",
              "ml100k_rating": "ml-100k, rating task, random 80:20 per user (seed 0); test: RMSE in stars"}
    for protocol in PROTOCOLS:
        part = section["protocols"].get(protocol)
        if part is None:
            if protocol in section["protocols"]:
                lines += [f"## {titles[protocol]}", "", "Skipped: the data is absent on this machine.", ""]
            continue
        figures = [k for k in next(iter(part["models"].values())) if k not in ("runs", "validation", "train_seconds",
                                                                           "rmse_rows", "seconds_per_epoch")]
        figures = [f for f in figures if f not in ("best_epoch", "epochs_run", "lambda_", "monitored_validation")]
        valid_name = "validation RMSE" if protocol == "ml100k_rating" else "validation NDCG@10 (full)"
        lines += [f"## {titles[protocol]}", "",
                  f"{part['train_rows']:,} training rows (validation rule: {part['validation_rule']}), "
                  f"{part['test_rows']:,} test rows.", "",
                  "| model | " + valid_name + " | " + " | ".join(f"test {f}" for f in figures)
                  + " | epochs chosen | training s |",
                  "|---|" + "---|" * (len(figures) + 3)]
        for name, row in part["models"].items():
            epochs = _cell(row.get("best_epoch"), 0) if "best_epoch" in row else (
                f"lambda {row['lambda_']['mean']:.0f}" if "lambda_" in row else "")
            lines.append(f"| {'**' + name + '**' if name == DEFAULT_MODEL else name} | {_cell(row['validation'], 4)} | "
                         + " | ".join(_cell(row.get(f), 4) for f in figures)
                         + f" | {epochs} | {_cell(row['train_seconds'], 1)} |")
        for label, res in part["paired"].items():
            lines.append("")
            lines.append(f"Paired over {res['n_users']} users, {label}: {res['diff']:+.4f} "
                         f"(95% interval {res['ci_low']:+.4f} to {res['ci_high']:+.4f}, permutation p = {res['p_value']:.4f}).")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_results(section: dict, path: Path = OUT) -> None:
    """Replace the "accuracy" key of benchmarks.json (other keys kept), atomically."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data["accuracy"] = section
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="one training seed instead of three")
    p.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1 (default 3)")
    p.add_argument("--models", default=",".join(IMPLICIT_MODELS),
                   help=f"implicit-task models (default {','.join(IMPLICIT_MODELS)}); the rating task runs "
                        f"{','.join(RATING_MODELS)}")
    p.add_argument("--protocols", default=",".join(PROTOCOLS), help=f"subset of {','.join(PROTOCOLS)}")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--seed-split", default=str(SEED_SPLIT), help="folder of the original notebook's split")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (neural models)")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--table", default=str(TABLE), help="the markdown table to regenerate")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [0] if args.quick else list(range(args.seeds))
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in MODEL_CLASSES and n != "ease_tuned"]
    if unknown:
        p.error(f"unknown models {unknown}; choose from {sorted(MODEL_CLASSES)} or ease_tuned")
    section = {"command": "benchmarks/accuracy.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "device": args.device, "seeds": seeds,
               "machine": {"cpu_count": os.cpu_count(), "torch_threads": args.threads, "platform": platform.platform(),
                           "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
               "versions": library_versions(), "provenance": run_record(ROOT), "protocols": {}}
    for protocol in [q for q in args.protocols.split(",") if q]:
        print(f"{protocol}:", flush=True)
        models = RATING_MODELS if protocol == "ml100k_rating" else names
        section["protocols"][protocol] = run_protocol(protocol, models, seeds, Path(args.seed_split), args.device)
    write_results(section, Path(args.out))
    text = markdown(section)
    write_text(Path(args.table), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
