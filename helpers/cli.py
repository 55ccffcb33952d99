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
user; --no-early-stopping trains the fixed --epochs) and then refits on all of it. `tune` searches the
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
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import warnings
from pathlib import Path

import pandas as pd

from helpers.data import ID_ALIASES, DownloadError, load
from helpers.data.csv_files import read_csv_file
from helpers.files import atomic_path
from helpers.models import DEFAULT_MODEL, MODELS, load_model
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


def shows_progress(choice: bool | None, stream) -> bool:
    """Whether training draws fastai's progress bars: `choice` (--progress / --no-progress) when given, else
    whether `stream` (stderr, where the bars go) is a terminal, so that a piped or redirected log holds no
    `\r`-drawn bars."""
    if choice is not None:
        return bool(choice)
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


@contextlib.contextmanager
def progress_on_stderr(progress: bool):
    """A context in which fastai's bars and epoch table (printed to stdout) go to stderr, leaving stdout to the
    command's one result line; a context that changes nothing when `progress` is off."""
    if not progress:
        yield
        return
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        # the refit on all of TRAIN.csv has no validation part, and fastprogress warns on its empty loader
        warnings.filterwarnings("ignore", message="Your generator is empty", category=UserWarning)
        yield


AUTO_TITLES = "auto"  # `--titles` without a value: the titles of the dataset recorded in the model's metadata


DATASET_SOURCES = ("ml-100k", "electronics")  # and electronics:PATH: helpers.data.load's datasets


ITEM_COLUMNS = ("item_title", "item_category")  # what --titles adds to the recommendations, those a source has


TITLE_ALIASES = {**ID_ALIASES, "title": "item_title", "movie_title": "item_title", "category": "item_category"}


TITLE_SOURCES_HINT = ("titles come from --titles ml-100k, --titles electronics or --titles TITLES.csv "
                      "(columns item_id,item_title[,item_category])")


def titles_source(requested: str, model_path, metadata: dict) -> str:
    """The source `--titles` reads: `requested`, or for `auto` the dataset recorded in the model's metadata."""
    if requested != AUTO_TITLES:
        return requested
    dataset = metadata.get("dataset") if isinstance(metadata, dict) else None
    if not isinstance(dataset, str) or not dataset:
        raise ValueError(f"--titles: model file {model_path} records no dataset to take titles from; "
                         f"{TITLE_SOURCES_HINT}")
    return dataset


def item_titles(source: str) -> pd.DataFrame:
    """One row per item of `source` ("ml-100k", "electronics", "electronics:PATH", "csv:PATH" or a CSV path): item_id
    and the columns of ITEM_COLUMNS it has (at least one; MovieLens names such as movieId,title,genres are renamed).
    A dataset's item keeps its first row's values; a CSV must give each item one title. One-line ValueErrors."""
    if source in DATASET_SOURCES or (source.startswith("electronics:") and len(source) > 12):
        items = load(source, verbose=False)
        columns = [c for c in ITEM_COLUMNS if c in items.columns]
        table = items.drop_duplicates("item_id")[["item_id", *columns]]
    else:
        path = Path(source[4:] if source.startswith("csv:") else source)
        frame = read_csv_file(path, "titles", id_columns=("item_id", "movieId", "itemId"))
        frame = frame.rename(columns={k: v for k, v in TITLE_ALIASES.items()
                                      if k in frame.columns and v not in frame.columns})
        if "item_id" not in frame.columns:
            raise ValueError(f"titles file {path} has no item_id column; found {list(frame.columns)}")
        columns = [c for c in ITEM_COLUMNS if c in frame.columns]
        table = distinct_items(frame[["item_id", *columns]], path)
    if not columns:
        raise ValueError(f"{source} has no item titles or categories (no column {' or '.join(ITEM_COLUMNS)})")
    return table.reset_index(drop=True)


def distinct_items(frame: pd.DataFrame, path) -> pd.DataFrame:
    """`frame`'s distinct rows, checked to give each item_id one set of values (a one-line ValueError otherwise)."""
    table = frame.drop_duplicates()
    repeated = table["item_id"].duplicated(keep=False)
    if repeated.any():
        first = table.loc[repeated, "item_id"].iloc[0]
        n = int((table["item_id"] == first).sum())
        raise ValueError(f"titles file {path} gives item {first!r} {n} different titles or categories; "
                         "list each item once")
    return table


def with_titles(recs: pd.DataFrame, titles: pd.DataFrame) -> pd.DataFrame:
    """`recs` (same rows, same order) plus item_title and, when `titles` has it, item_category; NaN (an empty
    cell in the CSV) for an item `titles` lacks, and an empty item_title when `titles` has no titles at all."""
    out = recs.merge(titles, on="item_id", how="left", validate="many_to_one")
    if "item_title" not in out.columns:
        out.insert(len(recs.columns), "item_title", "")
    return out[[*recs.columns, *[c for c in ITEM_COLUMNS if c in out.columns]]]


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
    t.add_argument("--no-early-stopping", action="store_true",
                   help="train exactly --epochs on all of TRAIN.csv, no validation part (default: early stopping)")
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

