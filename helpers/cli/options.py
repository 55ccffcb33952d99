"""The command line's option types and checks: one-line usage errors, range-checked numbers, a writable --out,
id files read as `train` reads them, and whether (and where) training draws progress bars."""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import warnings
from pathlib import Path

import pandas as pd

from helpers.data.csv_files import read_csv_file
from helpers.models.neural import OPTION_RANGES


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
