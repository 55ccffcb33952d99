"""Reading CSVs: one guarded reader (`read_csv_file`: one-line errors naming the file for a missing, empty,
non-UTF-8 or unparseable file, ids normalised by `helpers.data.ids`), a user's interaction file (`load_csv`,
strict: missing columns, ids, non-numeric or non-finite ratings named by column and row) and the split files
the project writes (`read_interactions_csv`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers.data.ids import MISSING_ID_MARKERS, normalise_ids


def read_csv_file(path, what: str = "CSV", id_columns=(), required=(), sep: str = ",") -> pd.DataFrame:
    """`path` as a DataFrame: `id_columns` (those present) read as text and normalised (`normalise_ids`: spaces
    stripped, missing ids rejected), the other columns with pandas' usual missing-value markers. Raises a
    one-line ValueError naming the file (and the `what` it should be) when it is missing, a folder, empty,
    not UTF-8, unparseable or lacks a `required` column."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{what} file {path} not found")
    if path.is_dir():
        raise ValueError(f"{what} file {path} is a folder; give the CSV file inside it")
    try:
        header = pd.read_csv(path, sep=sep, nrows=0).columns
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{what} file {path} has no column(s) {missing}; found {list(header)}")
        ids = [c for c in id_columns if c in header]
        frame = pd.read_csv(path, sep=sep, dtype={c: str for c in ids}, keep_default_na=False,
                            na_values={c: sorted(MISSING_ID_MARKERS) for c in header if c not in ids})
    except pd.errors.EmptyDataError:
        raise ValueError(f"{what} file {path} is empty; expected a header line "
                         f"({','.join(required or id_columns) or 'column names'}) and rows") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} file {path} is not UTF-8 text (it has byte 0x{exc.object[exc.start]:02x}, "
                         f"invalid in UTF-8); save it as UTF-8") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{what} file {path} is not a readable CSV ({str(exc).splitlines()[0]})") from None
    for c in ids:
        frame[c] = normalise_ids(frame[c], c, f"{what} file {path}")
    return frame


def load_csv(path: Path, user_col, item_col, rating_col, timestamp_col, sep) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: file not found; pass csv:PATH with an existing CSV file")
    raw = read_csv_file(path, "interactions", id_columns=(user_col, item_col), sep=sep)
    for col in (user_col, item_col):
        if col not in raw.columns:
            raise ValueError(f"{path}: missing column '{col}'; found {list(raw.columns)}; "
                             f"name the column with load(..., {'user_col' if col == user_col else 'item_col'}=...)")
    if len(raw) == 0:
        raise ValueError(f"{path}: file has a header but no rows; add at least one interaction")
    if rating_col in raw.columns:
        rating = _numbers(raw[rating_col])
        with np.errstate(over="ignore"):  # beyond float32 (|x| > 3.4e38) becomes inf, refused below
            bad = ~np.isfinite(rating.to_numpy(dtype=np.float64).astype(np.float32))
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            value = raw[rating_col].iloc[first]
            raise ValueError(f"{path}: column '{rating_col}' has {int(bad.sum()):,} missing, non-numeric or "
                             f"non-finite value(s), the first {'' if pd.isna(value) else str(value)[:40]!r} at data row "
                             f"{first + 1}; ratings must be finite numbers within float32's range (|x| < 3.4e38)")
    else:
        rating = pd.Series(np.ones(len(raw)))
    if timestamp_col in raw.columns:
        text = raw[timestamp_col]
        ts = _numbers(text)
        if ts.isna().any():  # not all numbers: all ISO dates (times with a zone are converted to UTC)
            try:
                parsed = pd.to_datetime(text.astype("string"), errors="coerce", format="ISO8601", utc=True)
            except (ValueError, OverflowError):  # pandas raises OutOfBoundsDatetime for some values despite coerce
                parsed = pd.Series([_iso_date(v) for v in text], index=text.index, dtype="datetime64[s, UTC]")
            bad = parsed.isna().to_numpy()
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                value = "" if pd.isna(text.iloc[first]) else str(text.iloc[first])
                raise ValueError(f"{path}: column '{timestamp_col}' has unreadable value {value!r} at data row "
                                 f"{first + 1}; use unix seconds or an ISO date (e.g. 2014-02-01) in every row")
            ts = pd.Series(parsed.dt.tz_convert(None).astype("datetime64[s]").astype(np.int64), index=text.index)
        out_of_range = ~(np.abs(ts.to_numpy(dtype=np.float64)) < 2.0 ** 62)
        if out_of_range.any():
            first = int(np.flatnonzero(out_of_range)[0])
            raise ValueError(f"{path}: column '{timestamp_col}' has value {str(text.iloc[first])!r} at data row "
                             f"{first + 1}, not a unix time in seconds (finite, within +-4.6e18)")
        timestamp = pd.array(ts.astype(np.int64), dtype="Int64")
    else:
        timestamp = pd.array([pd.NA] * len(raw), dtype="Int64")
    df = pd.DataFrame({"user_id": raw[user_col].to_numpy(dtype=object),
                       "item_id": raw[item_col].to_numpy(dtype=object),
                       "rating": rating.astype(np.float32).to_numpy(),
                       "timestamp": timestamp})
    extra = [c for c in raw.columns if c not in (user_col, item_col, rating_col, timestamp_col)]
    return pd.concat([df, raw[extra].reset_index(drop=True)], axis=1)


def _numbers(values: pd.Series) -> pd.Series:
    """`pd.to_numeric(values, errors="coerce")`, except that an integer beyond float64 (which makes pandas raise
    OverflowError) becomes +-inf, to be refused with the row named, like any other non-finite value."""
    try:
        return pd.to_numeric(values, errors="coerce")
    except OverflowError:
        return pd.to_numeric(values.map(_float_or_nan), errors="coerce")


def _float_or_nan(value) -> float:
    try:
        return float(value)
    except OverflowError:  # a Python int beyond float64
        return float(np.sign(value)) * np.inf
    except (TypeError, ValueError):
        return np.nan


def _iso_date(value):
    """One ISO date as a UTC Timestamp, NaT when it is not one (or out of pandas' range)."""
    try:
        return pd.to_datetime(value, format="ISO8601", utc=True).as_unit("s")
    except (ValueError, OverflowError, TypeError):
        return pd.NaT


ID_ALIASES = {"userId": "user_id", "movieId": "item_id", "itemId": "item_id", "genres": "item_category"}


def read_interactions_csv(path) -> pd.DataFrame:
    """A split file (data/train.csv, ...) as written by this project or the original notebook: ids read
    as strings, MovieLens headers (userId, movieId, itemId, genres) renamed to the canonical names."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run training.ipynb or `make run` to write the split")
    frame = read_csv_file(path, "split", id_columns=("user_id", "item_id", "userId", "movieId", "itemId"))
    return frame.rename(columns={k: v for k, v in ID_ALIASES.items() if k in frame.columns and v not in frame.columns})
