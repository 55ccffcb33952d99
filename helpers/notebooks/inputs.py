"""What the notebooks read: the split (one reader for all of them) and the side tables of users and items."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers.data import load, make_split, read_split, sample_users


def notebook_split(data_dir, dataset: str = "ml-100k", split: str = "random", seed: int = 0,
                   sample: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(train, evaluation, where they came from): DATA_DIR/train.csv + evaluation.csv when both exist
    (written by the pipeline or training.ipynb from the same DATASET, SPLIT, SEED and SAMPLE, so they are
    used as they are: the saved models were fitted on them), else a new `make_split` of the dataset,
    `sample` > 0 keeping whole users, about `sample` interactions (seeded; nothing is written)."""
    files = read_split(data_dir)
    if files is not None:
        train, evaluation = files
        return train, evaluation, f"read {Path(data_dir) / 'train.csv'} and {Path(data_dir) / 'evaluation.csv'}"
    df = sample_users(load(dataset, verbose=False), sample, seed=seed)
    train, evaluation = make_split(df, split=split, seed=seed)
    return train, evaluation, (f"{split} split of {dataset} made here (seed {seed}"
                               f"{f', sample {sample:,}' if sample else ''}; {Path(data_dir) / 'train.csv'} absent)")


def _attribute(frames, column: str, key: str) -> pd.Series | None:
    parts = [f[[key, column]] for f in frames if column in f.columns and key in f.columns]
    if not parts:
        return None
    values = pd.concat(parts).dropna().drop_duplicates(key).set_index(key)[column]
    return values if len(values) else None


def item_categories(*frames) -> pd.Series | None:
    """Category string per item id ("Comedy|Drama") from any frame with item_category (or genres)."""
    return _attribute(frames, "item_category", "item_id")


def user_genders(*frames) -> pd.Series | None:
    """Gender per user id ("M"/"F") from any frame with a user_gender column; None when there is none."""
    genders = _attribute(frames, "user_gender", "user_id")
    return None if genders is None else genders.astype(str)


def side_tables(dataset: str, train: pd.DataFrame, evaluation: pd.DataFrame,
                columns=("item_category", "item_title", "model_attr", "user_gender")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, users): item side information (item_id, item_category[, item_title][, model_attr]) and
    user groups (user_id, user_gender), from the split files when they carry them, else from the dataset."""
    both = pd.concat([train, evaluation], ignore_index=True)
    if "item_category" not in both.columns or "user_gender" not in both.columns:
        full = load(dataset, verbose=False)
        keep = both[["user_id", "item_id"]].astype(str)
        both = keep.merge(full.drop(columns=[c for c in ("rating", "timestamp") if c in full.columns]),
                          on=["user_id", "item_id"], how="left")
    item_cols = ["item_id"] + [c for c in columns if c in both.columns and c != "user_gender"]
    items = both[item_cols].drop_duplicates("item_id").reset_index(drop=True)
    users = both[["user_id", "user_gender"]].drop_duplicates("user_id").reset_index(drop=True)
    return items, users

