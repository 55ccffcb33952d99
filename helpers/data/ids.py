"""The one way ids are read: `normalise_ids`, used by every reader (training CSVs, split files, the command
line's pairs / users / exclude files) and checked on model id maps (`check_id_map`).

The rule, the same everywhere:
- an id is text; surrounding spaces are stripped (" u1 " is "u1"), inner ones kept;
- an id that is empty after stripping, or one of pandas' missing-value markers ("NA", "null", "nan",
  "None", "#N/A", ...: `MISSING_ID_MARKERS`), is missing, and a missing id is an error naming the row;
- an id has at most `MAX_ID_LENGTH` characters (longer is an error naming the row, before anything is
  allocated for it: numpy's fixed-width strings would cost rows x longest id).

So "u1, i5" in a pairs file finds the model's "u1" and "i5", exactly as `train` read them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

MAX_ID_LENGTH = 256
# pandas' default `na_values` (read_csv's documentation): what `pd.read_csv` would read as NaN
MISSING_ID_MARKERS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                                "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})


def normalise_ids(values, column: str = "id", source: str = "input") -> np.ndarray:
    """`values` as an object array of stripped Python strings; raises a one-line ValueError naming `source`,
    `column` and the (1-based) data row of the first missing or over-long id. `values` is not modified."""
    series = pd.Series(values, dtype=object, copy=True).reset_index(drop=True)
    missing = series.isna().to_numpy().copy()
    stripped = pd.Series(strip_ids(series))
    lengths = stripped.str.len().to_numpy()
    if (lengths > MAX_ID_LENGTH).any():
        first = int(np.flatnonzero(lengths > MAX_ID_LENGTH)[0])
        raise ValueError(f"{source}: column '{column}' has an id of {int(lengths[first]):,} characters at data row "
                         f"{first + 1} (starting {stripped.iloc[first][:20]!r}); ids have at most {MAX_ID_LENGTH} "
                         "characters: is this the right column?")
    missing = missing | stripped.isin(MISSING_ID_MARKERS).to_numpy()
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raw = "" if pd.isna(series.iloc[first]) else str(series.iloc[first])
        raise ValueError(f"{source}: column '{column}' has {int(missing.sum()):,} missing id(s), the first "
                         f"{raw!r} at data row {first + 1}; every row needs a {column} (empty, spaces only and "
                         "markers such as 'NA' or 'null' count as missing)")
    return stripped.to_numpy(dtype=object)


def strip_ids(values) -> np.ndarray:
    """`values` as an object array of text, surrounding spaces stripped; a missing value becomes "" (an id no model
    knows). For the library's lookups by raw id (`Recommender.score`, `recommend`, `exclude`), which answer an unknown
    id with NaN or popularity instead of an error, so " u1" finds "u1" as it does in the files `normalise_ids` reads."""
    series = pd.Series(values, dtype=object)
    return series.where(series.notna(), "").astype(str).str.strip().to_numpy(dtype=object)


def check_id_map(ids: np.ndarray, what: str, source: str) -> None:
    """Raise a one-line ValueError unless `ids` (a model's id map) is sorted, unique, normalised text."""
    ids = np.asarray(ids)
    if len(ids) and ids.dtype.kind != "U":
        raise ValueError(f"{source}: its {what} ids are not text (dtype {ids.dtype}); the file is damaged, retrain it")
    if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
        raise ValueError(f"{source}: its {what} ids are not sorted and unique, as `save` writes them; the file was "
                         "edited or damaged, retrain it")
    if len(ids) and ids.dtype.itemsize // 4 > MAX_ID_LENGTH:
        raise ValueError(f"{source}: it holds a {what} id longer than {MAX_ID_LENGTH} characters; the file was "
                         "edited or damaged, retrain it")
