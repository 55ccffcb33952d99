"""Command line: train a model, score pairs, recommend top-k. CSV ids are read as strings.

    python -m helpers train --train TRAIN.csv --out MODEL.pth [--task implicit|rating] [--model NAME]
                            [--epochs N] [--seed N] [--device auto|cpu|cuda] [--lr X] [--wd X]
                            [--loss auto|multinomial|bce|softmax|bpr] [--progress|--no-progress]
    python -m helpers tune --train TRAIN.csv --budget 10m --out MODEL.pth [--model NAME] [--task implicit|rating]
                           [--trials N] [--validation random|leave_one_out|temporal] [--seed N] [--device ...]
    python -m helpers score --model MODEL.pth --pairs PAIRS.csv --out SCORES.csv
    python -m helpers recommend --model MODEL.pth --k 10 --out RECS.csv [--users USERS.csv] [--exclude TRAIN.csv]
                                [--titles [ml-100k|electronics|TITLES.csv]]

`train` chooses its epoch on a validation part carved out of TRAIN.csv (--validation, default random per
user; --no-early-stopping trains the fixed --epochs) and then refits on all of it (--no-refit: carries the
chosen epoch's weights over onto all of it instead). `tune` searches the
model's knobs with Optuna on that validation part for --budget (e.g. 90s, 10m, 1h), saves the best model
trained on all of TRAIN.csv, and writes the trials (validation figures only) to MODEL.trials.csv.
Progress bars (fastai's, on stderr) show when stderr is a terminal and stay off when it is piped or
redirected; --progress / --no-progress decide instead.
TRAIN.csv: user_id,item_id[,rating][,timestamp]. PAIRS.csv: user_id,item_id (output: the same rows in
the same order plus `score`; NaN for a user or item unknown to the model, counted on stderr).
RECS.csv: user_id,item_id,rank,score[,item_title,item_category]; users unknown to the model get the most
popular training items (counted on stderr). Without --exclude, the items each user had in training are
excluded. --titles alone takes the titles of the dataset recorded in the model (ml-100k's come with the
project; a CSV dataset's from its item_title column); --titles SOURCE names them (TITLES.csv:
item_id,item_title[,item_category]); an item without a title gets an empty cell.
Ids are read as `train` reads them (helpers.data.ids: spaces stripped; empty, NA-like or over-long ids are errors).
Expected failures print one line on stderr and exit with status 2, writing nothing; outputs are written atomically.
The option types and checks live in helpers/cli/options.py, the --titles sources in helpers/cli/titles.py.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

from helpers.cli.options import (
                                 OneLineParser,
                                 at_least,
                                 option_type,
                                 progress_on_stderr,
                                 read_id_file,
                                 shows_progress,
                                 writable_output,
)
from helpers.cli.titles import AUTO_TITLES, ITEM_COLUMNS, TITLE_SOURCES_HINT, item_titles, titles_source, with_titles
from helpers.data import DownloadError, load
from helpers.files import atomic_path
from helpers.models import DEFAULT_MODEL, MODELS, load_model
from helpers.training import train_model
from helpers.training.losses import CATALOGUE_SAMPLES, SAMPLED_SOFTMAX_BUDGET
from helpers.training.tuning import SEARCH_SPACES, parse_budget, tune


def cmd_train(args) -> None:
    writable_output(args.out)
    train = load(f"csv:{args.train}", verbose=False)
    if train.attrs.get("duplicates_dropped"):
        print(f"{args.train}: dropped {train.attrs['duplicates_dropped']:,} duplicated (user_id, item_id) rows, kept "
              "the latest of each", file=sys.stderr)
    if args.task == "rating" and (train["rating"] == 1).all():
        print("warning: every rating is 1 (no rating column?); the rating task will learn a constant",
              file=sys.stderr)
    progress = shows_progress(args.progress, sys.stderr)
    with progress_on_stderr(progress):
        model = train_model(train, args.model or DEFAULT_MODEL, task=args.task, epochs=args.epochs, seed=args.seed,
                            device=args.device, lr=args.lr, wd=args.wd, batch_size=args.batch_size,
                            loss=args.loss, progress=progress, early_stopping=not args.no_early_stopping,
                            patience=args.patience, validation=args.validation,
                            catalogue_samples=args.catalogue_samples, refit=not args.no_refit)
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
    name = args.model or DEFAULT_MODEL
    progress = shows_progress(args.progress, sys.stderr) and name in MODELS  # the closed-form models have no epochs
    with progress_on_stderr(progress):
        result = tune(train, name, task=args.task, budget_seconds=budget, n_trials=args.trials, seed=args.seed,
                      validation=args.validation, device=args.device, **({"progress": True} if progress else {}))
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
    titles, source = None, None
    if args.titles is not None:  # read before any work, so that an unusable source writes nothing
        source = titles_source(args.titles, args.model, model.metadata)
        recorded = " (the dataset recorded in the model)" if args.titles == AUTO_TITLES else ""
        try:
            titles = item_titles(source)
        except ValueError as exc:
            raise ValueError(f"--titles {source}{recorded}: {exc}; {TITLE_SOURCES_HINT}") from None
        if not titles["item_id"].isin(model.item_ids).any():
            raise ValueError(f"--titles {source}{recorded}: none of the model's {model.n_items:,} items is listed there "
                             f"(item ids such as {str(model.item_ids[0])!r}); is it the model's dataset? {TITLE_SOURCES_HINT}")
    users = None
    if args.users:
        listed = read_id_file(args.users, ["user_id"], "users")["user_id"]
        users = pd.unique(listed.to_numpy())
        if len(users) < len(listed):
            print(f"{args.users}: {len(listed) - len(users):,} repeated user id(s) listed once", file=sys.stderr)
    exclude = read_id_file(args.exclude, ["user_id", "item_id"], "exclude") if args.exclude else "train"
    recs = model.recommend(users, k=args.k, exclude=exclude)
    n_cold = int(recs.loc[recs["cold_start"], "user_id"].nunique())
    out = recs[["user_id", "item_id", "rank", "score"]]
    titled = ""
    if titles is not None:
        if "item_title" not in titles.columns:
            print(f"{source} has no item titles: item_title is left empty and item_category is filled; for titles "
                  "give --titles TITLES.csv (item_id,item_title[,item_category])", file=sys.stderr)
        out = with_titles(out, titles)
        untitled = out[[c for c in ITEM_COLUMNS if c in titles.columns]].isna().all(axis=1)
        titled = f"; {'item_title' if 'item_title' in titles.columns else 'item_category'} from {source}" + (
            f" ({int(untitled.sum()):,} of {len(out):,} rows with an item it does not list: empty)" if untitled.any()
            else "")
    with atomic_path(args.out) as tmp:
        out.to_csv(tmp, index=False)
    print(f"top-{args.k} for {recs['user_id'].nunique():,} users -> {args.out}"
          + (f"; {n_cold:,} users unknown to the model got the most popular items" if n_cold else "") + titled,
          file=sys.stderr)


EXAMPLES = {  # each command's --help epilog; tests/integration/test_cli_help.py parses every line and runs one
    None: """examples:
  python -m helpers recommend --model model/collabnn_implicit.pth --k 10 --titles --out recs.csv
  python -m helpers score --model model/collabnn_implicit.pth --pairs recs.csv --out scores.csv
  python -m helpers train --train data/train.csv --out model/mine.pth     # data/train.csv: written by `make run`
  python -m helpers recommend --help                                      # a command's options and examples""",
    "train": """examples:
  python -m helpers.data.synthetic --out toy.csv --scale 0.01   # a small CSV to try (12,930 rows)
  python -m helpers train --train toy.csv --out toy.pth --epochs 5
  python -m helpers train --train data/train.csv --out model/mf.pth --model mf --seed 1
  python -m helpers train --train data/train.csv --out model/stars.pth --task rating --no-progress""",
    "tune": """examples:
  python -m helpers tune --train data/train.csv --out model/tuned.pth --budget 10m
  python -m helpers tune --train data/train.csv --out model/ease.pth --model ease --budget 90s --trials 20""",
    "score": """examples:
  python -m helpers recommend --model model/collabnn_implicit.pth --k 5 --out recs.csv
  python -m helpers score --model model/collabnn_implicit.pth --pairs recs.csv --out scores.csv""",
    "recommend": """examples:
  python -m helpers recommend --model model/collabnn_implicit.pth --k 10 --out recs.csv --titles
  python -m helpers recommend --model model/collabnn_implicit.pth --k 5 --users users.csv --out top5.csv
  python -m helpers recommend --model toy.pth --k 10 --out recs.csv --titles titles.csv   # item_id,item_title""",
}


VALIDATION_RULES = ["auto", "random", "global", "leave_one_out", "temporal"]


VALIDATION_HELP = ("how the validation part is carved out of TRAIN.csv: random (default; 20%% of each user's rows), "
                   "global (20%% of all rows), leave_one_out (each user's latest row), temporal (the last 20%% of the "
                   "training period), auto (global when more than half of the users have one row, else random)")


PROGRESS_HELP = ("draw fastai's progress bars and epoch table on stderr (default: on when stderr is a terminal, off "
                 "when it is piped or redirected, so logs hold no bars)")


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m helpers", description=__doc__.split("\n")[0], epilog=EXAMPLES[None],
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,tune,score,recommend}",
                           help="what to do; `python -m helpers COMMAND --help` for its options and examples")

    def command(name, text):
        return sub.add_parser(name, help=text, description=text, epilog=EXAMPLES[name],
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    t = command("train", "train a model on a CSV and save it")
    t.add_argument("--train", required=True, help="CSV with user_id,item_id[,rating][,timestamp] (required)")
    t.add_argument("--out", required=True, help="model file to write (.pth) (required)")
    t.add_argument("--task", default="implicit", choices=["implicit", "rating"],
                   help="implicit (rank items; default) or rating (predict the rating column)")
    t.add_argument("--model", default=None, choices=sorted(MODELS),
                   help=f"neural model to train: {' | '.join(sorted(MODELS))} (default {DEFAULT_MODEL})")
    t.add_argument("--epochs", type=option_type("epochs", low=1), default=None,
                   help="most epochs (>= 1); default: the model's default")
    t.add_argument("--seed", type=option_type("seed"), default=0,
                   help="random seed (>= 0; default 0); the same seed gives the same model")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto (default: CUDA when present, else the CPU), cpu or cuda")
    t.add_argument("--lr", type=option_type("lr"), default=None, help="peak learning rate (> 0); default: the model's default")
    t.add_argument("--wd", type=option_type("wd"), default=None,
                   help="weight decay (>= 0); default: the model's default")
    t.add_argument("--batch-size", type=option_type("batch_size"), default=None,
                   help="rows per batch (>= 1); default: the model's")
    t.add_argument("--loss", default=None, choices=["auto", "multinomial", "bce", "softmax", "bpr"],
                   help="implicit task; default: the model's (collabnn: auto = multinomial over the catalogue when "
                        "users x items is small enough, else bce with 4 sampled negatives)")
    t.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help=PROGRESS_HELP)
    t.add_argument("--validation", default="random", choices=VALIDATION_RULES, help=VALIDATION_HELP)
    t.add_argument("--patience", type=option_type("patience"), default=None,
                   help="epochs without a better validation figure before stopping (>= 1); default: the model's (5)")
    t.add_argument("--catalogue-samples", type=option_type("catalogue_samples"), default=None,
                   help="multinomial loss: items drawn per batch for a sampled softmax (>= 0; 0 = the whole catalogue); "
                        f"default: auto (sampled, {CATALOGUE_SAMPLES:,} items, when users x items > {SAMPLED_SOFTMAX_BUDGET:,} "
                        f"and the catalogue has >= {4 * CATALOGUE_SAMPLES:,} items)")
    t.add_argument("--no-early-stopping", action="store_true",
                   help="train exactly --epochs on all of TRAIN.csv, no validation part (default: early stopping)")
    t.add_argument("--no-refit", action="store_true",
                   help="keep the chosen epoch's weights, carried over onto all of TRAIN.csv, instead of training again "
                        "on all of it (faster by the refit's epochs; default: refit)")
    t.set_defaults(func=cmd_train)

    u = command("tune", "search a model's hyperparameters on validation (Optuna) and save the best")
    u.add_argument("--train", required=True, help="CSV with user_id,item_id[,rating][,timestamp] (required)")
    u.add_argument("--out", required=True,
                   help="model file to write (.pth) (required); the trials go to the same name .trials.csv")
    u.add_argument("--budget", default="10m", help="search time: seconds or with s, m, h, e.g. 90s, 1h (default 10m)")
    u.add_argument("--trials", type=at_least(1), default=None,
                   help="stop after this many trials (>= 1; default: the budget decides)")
    u.add_argument("--model", default=None, choices=sorted({m for m, _ in SEARCH_SPACES}),
                   help=f"model whose search space to try (default {DEFAULT_MODEL})")
    u.add_argument("--task", default="implicit", choices=["implicit", "rating"],
                   help="implicit (rank items; default) or rating (predict the rating column)")
    u.add_argument("--validation", default="random", choices=VALIDATION_RULES, help=VALIDATION_HELP)
    u.add_argument("--seed", type=option_type("seed"), default=0, help="random seed (>= 0; default 0)")
    u.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto (default: CUDA when present, else the CPU), cpu or cuda")
    u.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help=PROGRESS_HELP.replace("epoch table", "epoch table of each trial (neural models)", 1))
    u.set_defaults(func=cmd_tune)

    s = command("score", "score (user_id, item_id) pairs")
    s.add_argument("--model", required=True, help="model file (.pth) written by train, tune or training.ipynb (required)")
    s.add_argument("--pairs", required=True, help="CSV with user_id,item_id (required)")
    s.add_argument("--out", required=True, help="CSV to write: the pairs' rows in order plus score (required)")
    s.set_defaults(func=cmd_score)

    r = command("recommend", "top-k items per user")
    r.add_argument("--model", required=True, help="model file (.pth) written by train, tune or training.ipynb (required)")
    r.add_argument("--k", type=at_least(1), default=10, help="items per user (>= 1; default 10)")
    r.add_argument("--out", required=True, help="CSV to write: user_id,item_id,rank,score[,item_title,item_category] "
                                                "(required)")
    r.add_argument("--users", default=None, help="CSV with user_id (default: every user of the model)")
    r.add_argument("--exclude", default=None, help="CSV user_id,item_id to exclude (default: each user's training items)")
    r.add_argument("--titles", nargs="?", const=AUTO_TITLES, default=None, metavar="SOURCE",
                   help="add item_title (and item_category where the source has it) columns; SOURCE: ml-100k, "
                        "electronics, electronics:PATH or TITLES.csv (item_id,item_title[,item_category]); "
                        "--titles alone: the dataset recorded in the model (default: no titles)")
    r.set_defaults(func=cmd_recommend)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, OSError, DownloadError) as exc:  # expected failures: bad input, missing or unwritable files,
        # a dataset that cannot be downloaded (--titles electronics offline)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0

