"""Side features of users and items as tokens, for models that embed them (CollabNN) and for segment baselines.

    table = feature_table(train, "user", USER_FEATURES)   # one row of tokens per user of `train`
    codes = table.codes(["u1", "u2"])                     # CSR of token codes, what an EmbeddingBag reads

A feature value becomes a token "column=value" (`user_gender=F`, `item_category=Headphones`). Columns that
hold several values joined by "|" (ml-100k's genres) give one token per value; numeric columns are bucketed
first (`user_age` into the MovieLens age groups, `year` into 5-year spans), so an unseen age or year still
lands in a known bucket. A missing value gives no token: a user of unknown gender has no gender token. Tokens
seen in training form the vocabulary; a new user or item (cold start) is encoded against it and tokens it
does not know are left out. Each entity's tokens are its first non-missing values in file order.

Which columns: the dataset's own (`USER_FEATURES`, `ITEM_FEATURES`), those of them a frame has. ml-100k:
gender, age, occupation; genres, year. Electronics: gender (known for a minority); category, brand, the
product image's gender (`model_attr`), year.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from helpers.data.interactions import encode_ids

USER_FEATURES = ("user_gender", "user_age", "user_occupation")
ITEM_FEATURES = ("item_category", "brand", "model_attr", "year")
KEYS = {"user": "user_id", "item": "item_id"}

# MovieLens-1M's age groups (lower bounds); ml-100k gives exact ages, bucketed the same way
AGE_EDGES = (18, 25, 35, 45, 50, 56)
YEAR_SPAN = 5
MULTI_VALUE_SEPARATOR = "|"


def available_features(frame: pd.DataFrame, kind: str) -> list[str]:
    """The feature columns of `kind` ("user" | "item") that `frame` has with at least one value."""
    columns = {"user": USER_FEATURES, "item": ITEM_FEATURES}.get(kind)
    if columns is None:
        raise ValueError(f"kind must be 'user' or 'item', got {kind!r}")
    return [c for c in columns if c in frame.columns and frame[c].notna().any()]


def _bucketed(column: str, values: pd.Series) -> pd.Series:
    """Values as strings, numeric columns bucketed (ages into AGE_EDGES groups, years into YEAR_SPAN spans)."""
    if column in ("user_age", "year"):
        num = pd.to_numeric(values, errors="coerce")
        if column == "user_age":
            lower = np.asarray((0,) + AGE_EDGES)[np.searchsorted(AGE_EDGES, num.fillna(0), side="right")]
        else:
            lower = (num.fillna(0) // YEAR_SPAN * YEAR_SPAN).astype(np.int64).to_numpy()
        return pd.Series(np.where(num.notna(), pd.Series(lower).astype(str).to_numpy(), None), index=values.index,
                         dtype=object)
    return values.astype("string").str.strip().replace("", pd.NA).astype(object).where(values.notna(), None)


def entity_tokens(frame: pd.DataFrame, kind: str, columns=None) -> pd.Series:
    """Token lists per entity (index: the ids of `frame`'s user_id / item_id, first occurrence order):
    ["user_gender=F", "user_age=25", ...], the first non-missing value of each column."""
    key = KEYS.get(kind)
    if key is None:
        raise ValueError(f"kind must be 'user' or 'item', got {kind!r}")
    if key not in frame.columns:
        raise ValueError(f"no '{key}' column to read {kind} features from; found {list(frame.columns)}")
    columns = available_features(frame, kind) if columns is None else list(columns)
    ids = frame[key].astype(str)
    first = pd.DataFrame({c: _bucketed(c, frame[c]) for c in columns if c in frame.columns})
    first = first.groupby(ids.to_numpy(), sort=False).first() if len(first.columns) else \
        pd.DataFrame(index=pd.unique(ids.to_numpy()))
    tokens = [[] for _ in range(len(first))]
    for c in first.columns:
        for row, value in enumerate(first[c].to_numpy()):
            if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
                continue
            parts = str(value).split(MULTI_VALUE_SEPARATOR) if c == "item_category" else [str(value)]
            tokens[row].extend(f"{c}={p}" for p in parts if p)
    return pd.Series(tokens, index=first.index.astype(str), dtype=object)


@dataclass(frozen=True)
class FeatureTable:
    """Tokens of a set of entities: `vocabulary` (sorted token strings), `columns` (the feature columns) and,
    for `ids` (sorted), a CSR (`indptr`, `indices`) of token codes. Immutable; `codes` encodes other ids."""
    kind: str
    columns: tuple
    vocabulary: np.ndarray
    ids: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray

    @property
    def n_tokens(self) -> int:
        return len(self.vocabulary)

    def rows(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """CSR (indptr, indices) of the token codes of `ids` (entities of this table; unknown ids get none)."""
        pos = encode_ids(np.asarray(ids, dtype=str), self.ids)
        lens = np.where(pos >= 0, np.diff(self.indptr)[np.maximum(pos, 0)], 0)
        indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        starts = self.indptr[np.maximum(pos, 0)]
        take = np.repeat(starts - indptr[:-1], lens) + np.arange(indptr[-1])
        return indptr, self.indices[take].astype(np.int64)

    def encode(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, indptr, indices) of the entities of `frame` (new ones included) against this vocabulary:
        tokens it does not know are left out."""
        tokens = entity_tokens(frame, self.kind, [c for c in self.columns if c in frame.columns])
        return tokens.index.to_numpy(dtype=str), *_csr(tokens, self.vocabulary)

    def state(self) -> dict:
        return {"kind": self.kind, "columns": list(self.columns), "vocabulary": self.vocabulary.tolist(),
                "ids": self.ids.tolist(), "indptr": self.indptr.tolist(), "indices": self.indices.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> FeatureTable:
        return cls(state["kind"], tuple(state["columns"]), np.asarray(state["vocabulary"], dtype=str),
                   np.asarray(state["ids"], dtype=str), np.asarray(state["indptr"], dtype=np.int64),
                   np.asarray(state["indices"], dtype=np.int64))


def _csr(tokens: pd.Series, vocabulary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lens = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
    flat = np.asarray([tok for t in tokens for tok in t], dtype=str)
    codes = encode_ids(flat, vocabulary) if len(flat) else np.zeros(0, dtype=np.int64)
    keep = codes >= 0
    row = np.repeat(np.arange(len(tokens)), lens)[keep]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=len(tokens)))]).astype(np.int64)
    return indptr, codes[keep].astype(np.int64)


def feature_table(frame: pd.DataFrame, kind: str, columns=None) -> FeatureTable | None:
    """The `FeatureTable` of the users or items of `frame` (`kind` "user" | "item") over `columns` (default:
    `available_features`); None when the frame has none of them."""
    columns = available_features(frame, kind) if columns is None else [c for c in columns if c in frame.columns]
    if not columns:
        return None
    tokens = entity_tokens(frame, kind, columns)
    vocabulary = np.unique(np.asarray([tok for t in tokens for tok in t], dtype=str))
    if len(vocabulary) == 0:
        return None
    order = np.argsort(tokens.index.to_numpy(dtype=str), kind="stable")
    tokens = tokens.iloc[order]
    indptr, indices = _csr(tokens, vocabulary)
    return FeatureTable(kind, tuple(columns), vocabulary, tokens.index.to_numpy(dtype=str), indptr, indices)
