"""Interactions as indices: raw ids to positions (`encode_ids`), the binary user x item CSR matrix, CSR row walks.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch


def encode_ids(values, vocabulary: np.ndarray) -> np.ndarray:
    """Positions of `values` in `vocabulary` (sorted array of str ids); -1 where a value is unknown.

    Memory: `values` are compared at the vocabulary's string width, never at their own longest (a value
    longer than every vocabulary id is unknown without being copied), so one long id among many rows does
    not cost rows x its length."""
    vocabulary = np.asarray(vocabulary)
    if vocabulary.dtype.kind != "U":
        vocabulary = vocabulary.astype(str)
    if isinstance(values, np.ndarray) and values.dtype.kind == "U" and values.dtype.itemsize <= vocabulary.dtype.itemsize:
        fitted, fits = values, None
    else:
        text = pd.Series(values, dtype=object).astype(str)
        fits = (text.str.len() <= vocabulary.dtype.itemsize // 4).to_numpy()
        fitted = text.where(fits, "").to_numpy(dtype=vocabulary.dtype)
    if len(vocabulary) == 0:
        return np.full(len(fitted), -1, dtype=np.int64)
    pos = np.searchsorted(vocabulary, fitted)
    pos = np.clip(pos, 0, len(vocabulary) - 1)
    found = vocabulary[pos] == fitted
    if fits is not None:
        found &= fits
    return np.where(found, pos, -1).astype(np.int64)


def interaction_matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary CSR [n_users, n_items] with a 1 at each (user, item); duplicates collapse to 1."""
    m = sp.csr_matrix((np.ones(len(users), dtype=np.int8), (users, items)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1
    return m


def csr_pairs(indptr: torch.Tensor, indices: torch.Tensor, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row in `users`, column) of every entry of the CSR rows `users` (`indptr`, `indices` as tensors),
    vectorised: no loop over users. Rows in the order of `users`, columns in CSR order within a row."""
    start, stop = indptr[users], indptr[users + 1]
    lens = stop - start
    offsets = torch.cumsum(lens, 0) - lens
    flat = torch.arange(int(lens.sum()), device=users.device) - torch.repeat_interleave(offsets - start, lens)
    return torch.repeat_interleave(torch.arange(len(users), device=users.device), lens), indices[flat]

