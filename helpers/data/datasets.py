"""Datasets in the project's schema: `load("ml-100k" | "electronics" | "csv:PATH")`.

Every loader returns one row per (user, item) interaction with the canonical columns `user_id`,
`item_id` (strings), `rating` (float32), `timestamp` (Int64 unix seconds, <NA> when unknown) and the
side information the source has (user gender, item category, year, ...). Duplicated (user, item)
pairs keep the latest.

- ml-100k (offline default): the files shipped in the recbole==1.2.1 wheel (installed --no-deps,
  never imported); without it, GroupLens's zip, md5-checked, into data/raw/.
  ml-100k: 100,000 ratings, 943 users, 1,682 items.
- electronics: the marketing-bias study's Amazon Electronics (Wan et al., WSDM 2020), downloaded on
  first use into data/raw/ and checked by its git blob hash; offline, a one-line error says where to
  put the file. 1,292,954 ratings, 1,157,633 users, 9,560 items.
- electronics:PATH: a file in the df_electronics.csv format at PATH (e.g. a stand-in written by
  `python -m helpers.data.synthetic`), read as "electronics" is.
- csv:PATH: any CSV with user_id,item_id[,rating][,timestamp] (column names configurable).
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.data.csv_files import load_csv
from helpers.data.download import download, git_blob_sha1
from helpers.files import ROOT, current_umask

RAW_DIR = ROOT / "data" / "raw"


CANONICAL = ["user_id", "item_id", "rating", "timestamp"]


DATASETS = ["ml-100k", "electronics", "electronics:PATH", "csv:PATH"]


ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"


ML100K_MD5 = "0e33842e24a9c977be4e0107933c0723"


ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western"]


ELECTRONICS_URL = ("https://raw.githubusercontent.com/MengtingWan/marketBias/master/data/"
                   "df_electronics.csv")


ELECTRONICS_BLOB = "21f1831db84e11faaf7d7469b075c91c0c53c003"


ELECTRONICS_FILE = "df_electronics.csv"


def load(name: str = "ml-100k", *, raw_dir: str | Path | None = None, user_col: str = "user_id",
         item_col: str = "item_id", rating_col: str = "rating", timestamp_col: str = "timestamp",
         sep: str = ",", verbose: bool = True) -> pd.DataFrame:
    """Load a dataset by name ("ml-100k", "electronics", "csv:PATH") in the canonical schema.

    Duplicated (user, item) pairs keep the latest interaction; the number dropped is in
    `df.attrs["duplicates_dropped"]` (and printed when verbose). `df.attrs["dataset"]` holds `name`.
    The column-name keywords apply to "csv:PATH" only.
    """
    raw_dir = Path(raw_dir) if raw_dir is not None else RAW_DIR
    if not isinstance(name, str):
        raise ValueError(f"dataset name must be a string, one of {DATASETS}; got {name!r}")
    if name == "ml-100k":
        df = _load_ml100k(raw_dir)
    elif name == "electronics":
        df = _load_electronics(raw_dir)
    elif name.startswith("electronics:") and len(name) > 12:
        path = Path(name[12:])
        if not path.is_file():
            raise ValueError(f"{path}: no such file; electronics:PATH reads a file in the df_electronics.csv format "
                             "(write a stand-in with `python -m helpers.data.synthetic --out PATH`)")
        df = electronics_canonical(pd.read_csv(path, dtype={"item_id": str, "user_id": str}), path)
    elif name.startswith("csv:") and len(name) > 4:
        df = load_csv(Path(name[4:]), user_col, item_col, rating_col, timestamp_col, sep)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    df, dropped = drop_duplicate_pairs(df)
    df.attrs.update(dataset=name, duplicates_dropped=dropped)
    if verbose and dropped:
        print(f"{name}: dropped {dropped:,} duplicated (user, item) rows, kept the latest of each")
    return df


def drop_duplicate_pairs(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """A copy of `df` with one row per (user_id, item_id), the latest by timestamp (then file order)."""
    order = np.lexsort((np.arange(len(df)), df["timestamp"].fillna(-1).to_numpy(dtype=np.int64)))
    ordered = df.iloc[order]
    keep = ~ordered.duplicated(["user_id", "item_id"], keep="last")
    out = ordered[keep].sort_index().reset_index(drop=True)
    return out, int(len(df) - len(out))


def recbole_ml100k_dir() -> Path | None:
    """Folder of the ml-100k atomic files inside an installed recbole wheel (found without importing it)."""
    try:
        dist = metadata.distribution("recbole")
    except metadata.PackageNotFoundError:
        return None
    folder = Path(dist.locate_file("recbole/dataset_example/ml-100k"))
    return folder if (folder / "ml-100k.inter").exists() else None


def _load_ml100k(raw_dir: Path) -> pd.DataFrame:
    folder = recbole_ml100k_dir()
    if folder is not None:
        return _ml100k_from_atomic(folder)
    return _ml100k_from_grouplens(fetch_ml100k(raw_dir))


def _ml100k_from_atomic(folder: Path) -> pd.DataFrame:
    """Read recbole's atomic files (tab-separated, typed headers) into the canonical schema."""
    def read(suffix):
        f = folder / f"ml-100k.{suffix}"
        t = pd.read_csv(f, sep="\t", dtype=str, keep_default_na=False)
        t.columns = [c.split(":")[0] for c in t.columns]
        return t

    inter, users, items = read("inter"), read("user"), read("item")
    users = users.rename(columns={"gender": "user_gender", "age": "user_age", "occupation": "user_occupation"})
    items = pd.DataFrame({
        "item_id": items["item_id"],
        "item_title": items["movie_title"],
        # genres are space-separated tokens in recbole's file, e.g. "Animation Children's Comedy"
        "item_category": items["class"].str.split().str.join("|"),
        "year": pd.to_numeric(items["release_year"], errors="coerce").astype("Int64"),
    })
    return _ml100k_assemble(inter["user_id"], inter["item_id"], inter["rating"], inter["timestamp"], users, items)


def _ml100k_from_grouplens(folder: Path) -> pd.DataFrame:
    """Read the GroupLens u.data / u.user / u.item files into the canonical schema."""
    inter = pd.read_csv(folder / "u.data", sep="\t", header=None, dtype=str,
                        names=["user_id", "item_id", "rating", "timestamp"])
    users = pd.read_csv(folder / "u.user", sep="|", header=None, dtype=str,
                        names=["user_id", "user_age", "user_gender", "user_occupation", "zip_code"])
    raw = pd.read_csv(folder / "u.item", sep="|", header=None, dtype=str, encoding="latin-1",
                      names=["item_id", "title", "release", "video", "url"] + ML100K_GENRES)
    flags = raw[ML100K_GENRES].astype(int).to_numpy().astype(bool)
    genres = ["|".join(g for g, f in zip(ML100K_GENRES, row) if f) for row in flags]
    items = pd.DataFrame({
        "item_id": raw["item_id"],
        "item_title": raw["title"].str.replace(r"\s*\(\d{4}\)\s*$", "", regex=True),
        "item_category": genres,
        "year": pd.to_datetime(raw["release"], format="%d-%b-%Y", errors="coerce").dt.year.astype("Int64"),
    })
    return _ml100k_assemble(inter["user_id"], inter["item_id"], inter["rating"], inter["timestamp"], users, items)


def _ml100k_assemble(user, item, rating, timestamp, users, items) -> pd.DataFrame:
    df = pd.DataFrame({
        "user_id": user.astype(str).to_numpy(),
        "item_id": item.astype(str).to_numpy(),
        "rating": rating.astype(np.float32).to_numpy(),
        "timestamp": pd.array(timestamp.astype(float).astype(np.int64), dtype="Int64"),
    })
    users = users[["user_id", "user_gender", "user_age", "user_occupation"]].assign(
        user_age=lambda t: t["user_age"].astype(int))
    df = df.merge(users, on="user_id", how="left").merge(items, on="item_id", how="left")
    return df[CANONICAL + ["user_gender", "item_category", "year", "user_age", "user_occupation", "item_title"]]


def fetch_ml100k(raw_dir: Path, url: str | None = None, md5: str | None = None) -> Path:
    """The folder with u.data/u.user/u.item, downloaded from GroupLens and md5-checked if not cached."""
    url, md5 = url or ML100K_URL, md5 or ML100K_MD5
    folder = Path(raw_dir) / "ml-100k"
    if all((folder / f).exists() for f in ("u.data", "u.user", "u.item")):
        return folder
    archive = download(url, Path(raw_dir) / "ml-100k.zip", md5=md5)
    with zipfile.ZipFile(archive) as z:
        tmp = Path(tempfile.mkdtemp(dir=raw_dir))
        for f in ("u.data", "u.user", "u.item"):
            (tmp / f).write_bytes(z.read(f"ml-100k/{f}"))
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp's folder is private (0700); a plain mkdir's permissions instead
        os.replace(tmp, folder)
    return folder


STANDIN_RECORD = ".standin.json"  # beside a stand-in df_electronics.csv: what wrote it and the file's git blob hash


def standin_record(path) -> dict | None:
    """The record `helpers.data.electronics_file.write_electronics_file` left beside the stand-in at `path`
    (scale, seed, git blob hash), when the file still has the hash recorded; else None."""
    side = Path(str(path) + STANDIN_RECORD)
    if not (side.is_file() and Path(path).is_file()):
        return None
    try:
        record = json.loads(side.read_text())
    except (ValueError, OSError):
        return None
    return record if isinstance(record, dict) and record.get("git_blob") == git_blob_sha1(path) else None


def _load_electronics(raw_dir: Path) -> pd.DataFrame:
    """The marketing-bias file: downloaded once, verified (also when cached) unless it is a recorded stand-in."""
    path = Path(raw_dir) / ELECTRONICS_FILE
    if standin_record(path) is None:
        path = download(ELECTRONICS_URL, path, git_blob=ELECTRONICS_BLOB,
                        cached_hint="a stand-in is read only with the record `make electronics-standin` writes "
                                    "beside it: write it again with that command")
    raw = pd.read_csv(path, dtype={"item_id": str, "user_id": str})
    return electronics_canonical(raw, path)


def electronics_canonical(raw: pd.DataFrame, source="df_electronics.csv") -> pd.DataFrame:
    """Marketing-bias columns -> canonical schema (user_attr -> user_gender, category -> item_category)."""
    missing = [c for c in ("item_id", "user_id", "rating", "timestamp", "model_attr", "category", "brand",
                           "year", "user_attr", "split") if c not in raw.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; expected the marketing-bias df_electronics.csv")
    ts = pd.to_datetime(raw["timestamp"], errors="coerce")
    return pd.DataFrame({
        "user_id": raw["user_id"].astype(str),
        "item_id": raw["item_id"].astype(str),
        "rating": raw["rating"].astype(np.float32),
        "timestamp": pd.array((ts - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1), dtype="Int64"),
        "user_gender": raw["user_attr"].map({"Female": "F", "Male": "M"}).astype("string"),
        "item_category": raw["category"].astype("string"),
        "year": pd.to_numeric(raw["year"], errors="coerce").astype("Int64"),
        "brand": raw["brand"].astype("string"),
        "model_attr": raw["model_attr"].astype("string"),
        "original_split": raw["split"],
    })


def explode_categories(df: pd.DataFrame, column: str = "item_category") -> pd.DataFrame:
    """A copy with one row per (interaction, category): a movie in 3 genres counts in each of them."""
    if column not in df.columns:
        raise ValueError(f"dataset has no '{column}' column; found {list(df.columns)}")
    out = df.assign(**{column: df[column].astype("string").str.split("|")}).explode(column)
    return out[out[column].notna() & (out[column] != "")].reset_index(drop=True)


def sample_users(df: pd.DataFrame, n_rows: int | None, seed: int = 0) -> pd.DataFrame:
    """Whole histories of randomly chosen users, about `n_rows` interactions (None or 0 = everything)."""
    if not n_rows or n_rows >= len(df):
        return df
    users = df["user_id"].unique()
    rng = np.random.default_rng(seed)
    counts = df.groupby("user_id", sort=False).size().reindex(users).to_numpy()
    order = rng.permutation(len(users))
    n_users = int(np.searchsorted(np.cumsum(counts[order]), n_rows) + 1)
    chosen = set(users[order[:n_users]])
    return df[df["user_id"].isin(chosen)].reset_index(drop=True)

