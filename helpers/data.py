"""Datasets, loaded into one canonical schema.

`load(name)` returns a new DataFrame with the columns

    user_id (str), item_id (str), rating (float32), timestamp (Int64, unix seconds; <NA> if unknown)

plus the side information the dataset has, under fixed names: `user_gender` ("M"/"F"/<NA>),
`item_category` (one or several categories joined by "|"), `year` (Int64), and dataset-specific
columns (`user_age`, `user_occupation`, `item_title` for ml-100k; `brand`, `model_attr`,
`original_split` for Electronics).

Datasets (expected sizes are checked by the tests):
- "ml-100k" (default, offline): MovieLens 100K, read from the files shipped in the recbole 1.2.1
  wheel (installed with --no-deps; recbole is never imported). 100,000 ratings, 943 users,
  1,682 items, ratings 1..5, 1997-09 .. 1998-04. Falls back to the GroupLens archive (md5-checked)
  cached under data/raw/ when the wheel is absent.
- "electronics": Amazon Electronics from the marketing-bias study (Wan et al., WSDM 2020),
  downloaded on first use into data/raw/ and verified by git blob hash. 1,292,954 ratings,
  1,157,633 users, 9,560 items.
- "csv:PATH": any CSV with user_id,item_id[,rating][,timestamp] (names configurable).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RAW_DIR = ROOT / "data" / "raw"
CANONICAL = ["user_id", "item_id", "rating", "timestamp"]
DATASETS = ["ml-100k", "electronics", "csv:PATH"]

ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
ML100K_MD5 = "0e33842e24a9c977be4e0107933c0723"
ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western"]
ELECTRONICS_URL = ("https://raw.githubusercontent.com/MengtingWan/marketBias/master/data/"
                   "df_electronics.csv")
ELECTRONICS_BLOB = "21f1831db84e11faaf7d7469b075c91c0c53c003"
ELECTRONICS_FILE = "df_electronics.csv"


class DownloadError(RuntimeError):
    """A download failed or did not verify; the message says where to put the file by hand."""


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
    elif name.startswith("csv:") and len(name) > 4:
        df = _load_csv(Path(name[4:]), user_col, item_col, rating_col, timestamp_col, sep)
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


# --------------------------------------------------------------------------- ml-100k
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
        os.replace(tmp, folder)
    return folder


# --------------------------------------------------------------------------- Electronics
def _load_electronics(raw_dir: Path) -> pd.DataFrame:
    path = download(ELECTRONICS_URL, Path(raw_dir) / ELECTRONICS_FILE, git_blob=ELECTRONICS_BLOB)
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


# --------------------------------------------------------------------------- CSV
def _load_csv(path: Path, user_col, item_col, rating_col, timestamp_col, sep) -> pd.DataFrame:
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


# --------------------------------------------------------------------------- downloads
def git_blob_sha1(path: Path) -> str:
    """`git hash-object` of a file: sha1 over b"blob <size>\\0" + content."""
    h = hashlib.sha1(f"blob {Path(path).stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: Path, *, git_blob: str | None = None, md5: str | None = None,
             timeout: float = 30, progress: bool = True) -> Path:
    """`dest`, downloaded from `url` if absent, verified, written atomically (temp file then rename).

    A cached file is used as it is. On a network error or a checksum mismatch nothing is left
    under dest's folder and a one-line DownloadError says where to put the file by hand.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    if dest.exists():
        return dest
    hand = f"download {url} by hand and save it as {dest}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    total = int(resp.headers.get("Content-Length") or 0) or None
                    with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                        for chunk in iter(lambda: resp.read(1 << 16), b""):
                            out.write(chunk)
                            bar.update(len(chunk))
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                raise DownloadError(f"could not download {url} ({reason}); offline? {hand}") from None
        if git_blob is not None and (got := git_blob_sha1(Path(tmp))) != git_blob:
            raise DownloadError(f"{url}: git blob hash {got} != expected {git_blob} (corrupted or changed "
                                f"download, removed); {hand}")
        if md5 is not None and (got := md5sum(Path(tmp))) != md5:
            raise DownloadError(f"{url}: md5 {got} != expected {md5} (corrupted download, removed); {hand}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


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


def read_interactions_csv(path, what: str = "interactions") -> pd.DataFrame:
    """A split file written by this project (data/train.csv, ...), ids read as strings."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run training.ipynb or `make run` to write the split")
    return pd.read_csv(path, dtype={"user_id": str, "item_id": str})

