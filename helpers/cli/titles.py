"""`recommend --titles`: the item titles (and categories) of a dataset or a CSV, added as columns to the
recommendations. Model files carry id maps and the name of their dataset, not titles."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from helpers.data import ID_ALIASES, load
from helpers.data.csv_files import read_csv_file

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
