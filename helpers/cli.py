"""Command line: train a model, score pairs, recommend top-k. CSV ids are read as strings.

    python -m helpers train --train TRAIN.csv --out MODEL.pth [--task implicit|rating] [--model NAME]
                            [--epochs N] [--seed N] [--device auto|cpu|cuda] [--lr X] [--wd X]
                            [--loss auto|multinomial|bce|softmax|bpr]
    python -m helpers tune --train TRAIN.csv --budget 10m --out MODEL.pth [--model NAME] [--task implicit|rating]
                           [--trials N] [--validation random|leave_one_out|temporal] [--seed N] [--device ...]
    python -m helpers score --model MODEL.pth --pairs PAIRS.csv --out SCORES.csv
    python -m helpers recommend --model MODEL.pth --k 10 --out RECS.csv [--users USERS.csv] [--exclude TRAIN.csv]

`train` chooses its epoch on a validation part carved out of TRAIN.csv (--validation, default random per
user; --no-early-stopping trains the fixed --epochs) and then refits on all of it. `tune` searches the
model's knobs with Optuna on that validation part for --budget (e.g. 90s, 10m, 1h), saves the best model
trained on all of TRAIN.csv, and writes the trials (validation figures only) to MODEL.trials.csv.
TRAIN.csv: user_id,item_id[,rating][,timestamp]. PAIRS.csv: user_id,item_id (output: the same rows in
the same order plus `score`; NaN for a user or item unknown to the model, counted on stderr).
RECS.csv: user_id,item_id,rank,score; users unknown to the model get the most popular training
items (counted on stderr). Without --exclude, the items each user had in training are excluded.
Ids are read as `train` reads them (helpers.data.ids: spaces stripped; empty, NA-like or over-long ids are errors).
Expected failures print one line on stderr and exit with status 2, writing nothing; outputs are written atomically.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from pathlib import Path

import pandas as pd

from helpers.data import load
from helpers.data.csv_files import read_csv_file
from helpers.files import atomic_path
from helpers.models import DEFAULT_MODEL, load_model
from helpers.models.neural import OPTION_RANGES
from helpers.training import train_model
from helpers.training.tuning import SEARCH_SPACES, parse_budget, tune


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr with status 2, as every other expected failure."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def at_least(low: int):
    """An argparse type: an integer >= low."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def number(low: float = 0.0, allow_low: bool = False):
    """An argparse type: a finite number > low (>= low with allow_low)."""
    def parse(text: str) -> float:
        sign = ">=" if allow_low else ">"
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number {sign} {low:g}, got {text!r}") from None
        if not math.isfinite(value) or (value < low if allow_low else value <= low):
            raise argparse.ArgumentTypeError(f"must be a finite number {sign} {low:g}, got {text!r}")
        return value
    parse.__name__ = f"number {'>=' if allow_low else '>'} {low:g}"
    return parse


def option_type(key: str, low: int | None = None):
    """The argparse type of a training option, its range read from `OPTION_RANGES` (the models' one statement of
    it); `low` raises an integer option's bound (the command line trains at least one epoch)."""
    smallest, closed, integer = OPTION_RANGES[key]
    return at_least(smallest if low is None else low) if integer else number(smallest, allow_low=closed)


def writable_output(path, option: str = "--out") -> Path:
    """`path` if a file can be written there (checked before any work: a folder, a file where a folder should be
    and a read-only folder are one-line ValueErrors); nothing is created."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path} is a folder; give a file path, e.g. {path / 'out.csv'}")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{option} {path}: {parent} is a file, not a folder; choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: no permission to write in {parent}")
    return path


def read_id_file(path, columns, what) -> pd.DataFrame:
    """A pairs / users / exclude file: ids normalised as `train` reads them (helpers.data.ids), one-line errors."""
    return read_csv_file(path, what, id_columns=columns, required=columns)


def cmd_train(args) -> None:
    writable_output(args.out)
    train = load(f"csv:{args.train}", verbose=False)
    if train.attrs.get("duplicates_dropped"):
        print(f"{args.train}: dropped {train.attrs['duplicates_dropped']:,} duplicated (user_id, item_id) rows, kept "
              "the latest of each", file=sys.stderr)
    if args.task == "rating" and (train["rating"] == 1).all():
        print("warning: every rating is 1 (no rating column?); the rating task will learn a constant",
              file=sys.stderr)
    model = train_model(train, args.model or DEFAULT_MODEL, task=args.task, epochs=args.epochs, seed=args.seed,
                        device=args.device, lr=args.lr, wd=args.wd, batch_size=args.batch_size,
                        loss=args.loss, progress=args.progress, early_stopping=not args.no_early_stopping,
                        patience=args.patience, validation=args.validation)
    model.metadata.update(dataset=f"csv:{args.train}", split="given")
    model.save(args.out)
    m = model.metadata
    chosen = ""
    if "selection" in m:
        sel = m["selection"]
        chosen = (f" (chosen on {sel['validation_rows']:,} validation rows: best {sel['monitor']} "
                  f"{sel['best_value']:.4f} at epoch {sel['best_epoch']} of {sel['epochs_run']} run)")
    print(f"trained {model.name} ({model.task}) on {m['train_rows']:,} rows, {model.n_users:,} users, "
          f"{model.n_items:,} items, {m['epochs']} epochs{chosen} in {m['train_seconds']:.1f} s on {m['device']}; "
          f"saved {args.out}")


def cmd_tune(args) -> None:
    budget = parse_budget(args.budget)
    writable_output(args.out)
    train = load(f"csv:{args.train}", verbose=False)
    result = tune(train, args.model or DEFAULT_MODEL, task=args.task, budget_seconds=budget, n_trials=args.trials,
                  seed=args.seed, validation=args.validation, device=args.device)
    model = result.model
    model.metadata.update(dataset=f"csv:{args.train}", split="given")
    trials_path = Path(args.out).with_suffix(".trials.csv")
    with atomic_path(trials_path) as tmp:
        result.trials.to_csv(tmp, index=False)
    model.save(args.out)
    t = model.metadata["tuning"]
    print(f"tuned {model.name} ({model.task}): {t['n_trials']} trials ({t['n_pruned']} pruned) in {budget:.0f} s; best "
          f"{t['monitor']} {t['best_value']:.4f} with {t['best_params']}; trained on all {len(train):,} rows; "
          f"saved {args.out} and {trials_path}")


def cmd_score(args) -> None:
    writable_output(args.out)
    model = load_model(args.model)
    pairs = read_id_file(args.pairs, ["user_id", "item_id"], "pairs")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        scores = model.score(pairs)
    out = pairs.assign(score=scores)
    n_unknown = int(out["score"].isna().sum())
    with atomic_path(args.out) as tmp:
        out.to_csv(tmp, index=False)
    print(f"scored {len(out):,} pairs -> {args.out}"
          + (f"; {n_unknown:,} with an unknown user or item have score NaN" if n_unknown else ""),
          file=sys.stderr)


def cmd_recommend(args) -> None:
    writable_output(args.out)
    model = load_model(args.model)
    users = None
    if args.users:
        listed = read_id_file(args.users, ["user_id"], "users")["user_id"]
        users = pd.unique(listed.to_numpy())
        if len(users) < len(listed):
            print(f"{args.users}: {len(listed) - len(users):,} repeated user id(s) listed once", file=sys.stderr)
    exclude = read_id_file(args.exclude, ["user_id", "item_id"], "exclude") if args.exclude else "train"
    recs = model.recommend(users, k=args.k, exclude=exclude)
    n_cold = int(recs.loc[recs["cold_start"], "user_id"].nunique())
    with atomic_path(args.out) as tmp:
        recs[["user_id", "item_id", "rank", "score"]].to_csv(tmp, index=False)
    print(f"top-{args.k} for {recs['user_id'].nunique():,} users -> {args.out}"
          + (f"; {n_cold:,} users unknown to the model got the most popular items" if n_cold else ""),
          file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m helpers", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model on a CSV and save it")
    t.add_argument("--train", required=True, help="CSV with user_id,item_id[,rating]")
    t.add_argument("--out", required=True, help="model file to write (.pth)")
    t.add_argument("--task", default="implicit", choices=["implicit", "rating"])
    t.add_argument("--model", default=None, help="collabnn (default) | collabnn_factor | collabnn_mlp | mf | neumf")
    t.add_argument("--epochs", type=option_type("epochs", low=1), default=None,
                   help="most epochs (>= 1); default: the model's default")
    t.add_argument("--seed", type=option_type("seed"), default=0, help="random seed (>= 0); the same seed gives the same model")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    t.add_argument("--lr", type=option_type("lr"), default=None, help="peak learning rate (> 0); default: the model's default")
    t.add_argument("--wd", type=option_type("wd"), default=None,
                   help="weight decay (>= 0); default: the model's default")
    t.add_argument("--batch-size", type=option_type("batch_size"), default=None,
                   help="rows per batch (>= 1); default: the model's")
    t.add_argument("--loss", default=None, choices=["auto", "multinomial", "bce", "softmax", "bpr"],
                   help="implicit task; default: the model's (collabnn: auto = multinomial over the catalogue when "
                        "users x items is small enough, else bce with 4 sampled negatives)")
    t.add_argument("--progress", action="store_true", help="show fastai's progress bars")
    t.add_argument("--validation", default="random", choices=["auto", "random", "global", "leave_one_out", "temporal"],
                   help="how the validation part is carved out of TRAIN.csv for early stopping (default random per user)")
    t.add_argument("--patience", type=option_type("patience"), default=None,
                   help="epochs without a better validation figure before stopping")
    t.add_argument("--no-early-stopping", action="store_true", help="train exactly --epochs, no validation")
    t.set_defaults(func=cmd_train)
    u = sub.add_parser("tune", help="search a model's hyperparameters on validation (Optuna) and save the best")
    u.add_argument("--train", required=True, help="CSV with user_id,item_id[,rating][,timestamp]")
    u.add_argument("--out", required=True, help="model file to write (.pth); the trials go to the same name .trials.csv")
    u.add_argument("--budget", default="10m", help="search time: seconds or with s, m, h (default 10m)")
    u.add_argument("--trials", type=at_least(1), default=None, help="stop after this many trials (default: the budget decides)")
    u.add_argument("--model", default=None, choices=sorted({m for m, _ in SEARCH_SPACES}), help="default collabnn")
    u.add_argument("--task", default="implicit", choices=["implicit", "rating"])
    u.add_argument("--validation", default="random", choices=["auto", "random", "global", "leave_one_out", "temporal"])
    u.add_argument("--seed", type=option_type("seed"), default=0, help="random seed (>= 0)")
    u.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    u.set_defaults(func=cmd_tune)
    s = sub.add_parser("score", help="score (user_id, item_id) pairs")
    s.add_argument("--model", required=True, help="model file (.pth) written by train, tune or training.ipynb")
    s.add_argument("--pairs", required=True, help="CSV with user_id,item_id")
    s.add_argument("--out", required=True, help="CSV to write: the pairs' rows in order plus score")
    s.set_defaults(func=cmd_score)
    r = sub.add_parser("recommend", help="top-k items per user")
    r.add_argument("--model", required=True, help="model file (.pth) written by train, tune or training.ipynb")
    r.add_argument("--k", type=at_least(1), default=10, help="items per user (>= 1)")
    r.add_argument("--out", required=True, help="CSV to write: user_id,item_id,rank,score")
    r.add_argument("--users", default=None, help="CSV with user_id (default: every user of the model)")
    r.add_argument("--exclude", default=None, help="CSV user_id,item_id to exclude (default: the training items)")
    r.set_defaults(func=cmd_recommend)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, OSError) as exc:  # expected failures: bad input, missing or unwritable files
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0

