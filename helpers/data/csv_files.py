"""Reading interaction CSVs: a user's own file (`load_csv`, strict, one-line errors naming the file and
column) and the split files the project writes (`read_interactions_csv`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def load_csv(path: Path, user_col, item_col, rating_col, timestamp_col, sep) -> pd.DataFrame:
    if not path.exists():
        raise ValueError(f"{path}: file not found; pass csv:PATH with an existing CSV file")
    try:
        raw = pd.read_csv(path, sep=sep, dtype={user_col: str, item_col: str})
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: file is empty; expected a header with {user_col},{item_col}[,{rating_col}]"
                         f"[,{timestamp_col}] and at least one row") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    for col in (user_col, item_col):
        if col not in raw.columns:
            raise ValueError(f"{path}: missing column '{col}'; found {list(raw.columns)}; "
                             f"name the column with load(..., {'user_col' if col == user_col else 'item_col'}=...)")
    if len(raw) == 0:
        raise ValueError(f"{path}: file has a header but no rows; add at least one interaction")
    for col in (user_col, item_col):
        bad = raw[col].isna()
        if bad.any():
            raise ValueError(f"{path}: column '{col}' has {int(bad.sum())} empty/NaN id(s), first at data row "
                             f"{int(np.flatnonzero(bad.to_numpy())[0]) + 1}; every row needs a {col}")
    if rating_col in raw.columns:
        rating = pd.to_numeric(raw[rating_col], errors="coerce")
        bad = rating.isna()
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(f"{path}: column '{rating_col}' has non-numeric value {raw[rating_col].iloc[first]!r} "
                             f"at data row {first + 1}; ratings must be numbers")
    else:
        rating = pd.Series(np.ones(len(raw)))
    if timestamp_col in raw.columns:
        ts = pd.to_numeric(raw[timestamp_col], errors="coerce")
        if ts.isna().any():
            parsed = pd.to_datetime(raw[timestamp_col], errors="coerce")
            if parsed.isna().any():
                first = int(np.flatnonzero(parsed.isna().to_numpy())[0])
                raise ValueError(f"{path}: column '{timestamp_col}' has unreadable value "
                                 f"{raw[timestamp_col].iloc[first]!r} at data row {first + 1}; "
                                 "use unix seconds or an ISO date")
            ts = (parsed - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
        timestamp = pd.array(ts.astype(np.int64), dtype="Int64")
    else:
        timestamp = pd.array([pd.NA] * len(raw), dtype="Int64")
    df = pd.DataFrame({"user_id": raw[user_col].astype(str).str.strip(),
                       "item_id": raw[item_col].astype(str).str.strip(),
                       "rating": rating.astype(np.float32).to_numpy(),
                       "timestamp": timestamp})
    extra = [c for c in raw.columns if c not in (user_col, item_col, rating_col, timestamp_col)]
    return pd.concat([df, raw[extra].reset_index(drop=True)], axis=1)


ID_ALIASES = {"userId": "user_id", "movieId": "item_id", "itemId": "item_id", "genres": "item_category"}


def read_interactions_csv(path) -> pd.DataFrame:
    """A split file (data/train.csv, ...) as written by this project or the original notebook: ids read
    as strings, MovieLens headers (userId, movieId, itemId, genres) renamed to the canonical names."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run training.ipynb or `make run` to write the split")
    frame = pd.read_csv(path, dtype={c: str for c in ("user_id", "item_id", *ID_ALIASES)})
    return frame.rename(columns={k: v for k, v in ID_ALIASES.items() if k in frame.columns and v not in frame.columns})
