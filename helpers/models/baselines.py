"""Baselines with the same fit / score / recommend interface as the neural models.

- "popular" (`MostPopular`): every user gets the items with the most training interactions.
- "popular_segment" (`SegmentPopular`): the most popular items within the user's segment (`segment`, default
  user_gender: what women / men interact with), the global popularity for users of unknown segment; cold users
  are placed by the segment column of their rows. Items nobody rated in training are scored by the popularity
  of their category (`item_category`) within the segment: the floor a side-feature model must clear on cold
  users and cold items.
- "itemknn" (`ItemKNN`): item-based k-nearest neighbours, cosine similarity between the items'
  binary user columns, `k` neighbours kept per item; a user's score for item j sums the
  similarities of j to the items the user has.
- "ease" (`EASE`, Steck 2019): closed-form linear item-item model, one L2 parameter `lambda_`:
  P = (X'X + lambda I)^-1, B = I - P diag(1/diag(P)), scores = X B (B has a zero diagonal).
- "bias" (`BiasBaseline`): the rating baseline, global mean + user bias + item bias fitted by
  regularised alternating least squares; what any rating model's RMSE should be compared with.

popular, itemknn and ease treat any training row as an interaction (rating values are ignored):
they are implicit-feedback models (`task = "implicit"`); bias is a rating model (`task = "rating"`).
Matrix factorisation is the project's DotProductBias ("mf" in `helpers.models`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from helpers.data.interactions import encode_ids
from helpers.models.base import Recommender
from helpers.models.item_item import ease_weights, history_pair_scores, history_row_sums
from helpers.models.registry import register

BASELINES = ["popular", "popular_segment", "itemknn", "ease", "bias"]


@register
class MostPopular(Recommender):
    """Scores every item by its number of training interactions, for every user."""
    name = "popular"

    def _fit(self, users, items, ratings):
        self._pop = torch.from_numpy(self.item_popularity.astype(np.float32))

    def score_users(self, users):
        return self._pop.expand(len(users), -1).clone()

    def score_pairs(self, users, items):
        return self.item_popularity[np.asarray(items)].astype(np.float32)

    def _state(self):
        return {}

    def _from_state(self, state):
        self._fit(None, None, None)


@register
class SegmentPopular(Recommender):
    """Popularity within the user's segment: score(u, i) = share of segment s(u)'s training interactions on i,
    plus `global_weight` x the global share (ties and sparse segments fall back on the global order)."""
    name = "popular_segment"

    def __init__(self, segment: str = "user_gender", global_weight: float = 0.1, **config):
        if not 0 <= float(global_weight):
            raise ValueError(f"global_weight must be >= 0, got {global_weight}")
        super().__init__(segment=segment, global_weight=float(global_weight), **config)
        self.segments = np.array([], dtype=str)
        self.user_segment = np.zeros(0, dtype=np.int64)
        self.item_category = np.array([], dtype=str)

    def index_training_data(self, train):
        out = super().index_training_data(train)
        col = self.config["segment"]
        seg = train[col].astype("string") if col in train.columns else pd.Series(pd.NA, index=train.index, dtype="string")
        per_user = seg.groupby(train["user_id"].astype(str).to_numpy()).first().reindex(self.user_ids)
        self.segments = np.unique(per_user.dropna().to_numpy(dtype=str))
        self.user_segment = np.where(per_user.notna().to_numpy(), encode_ids(per_user.fillna("").to_numpy(dtype=str),
                                                                              self.segments), -1).astype(np.int64)
        cats = (train["item_category"].astype("string").str.split("|").str[0] if "item_category" in train.columns
                else pd.Series(pd.NA, index=train.index, dtype="string"))
        self.item_category = cats.groupby(train["item_id"].astype(str).to_numpy()).first().reindex(
            self.item_ids).fillna("").to_numpy(dtype=str)
        return out

    def _fit(self, users, items, ratings):
        n_seg = len(self.segments)
        seg_of_row = self.user_segment[users] if users is not None else np.zeros(0, dtype=np.int64)
        known = seg_of_row >= 0
        counts = np.zeros((n_seg + 1, self.n_items), dtype=np.float64)
        np.add.at(counts, (seg_of_row[known], items[known]), 1.0)
        total = self.item_popularity.astype(np.float64)
        shares = counts[:n_seg] / np.maximum(counts[:n_seg].sum(1, keepdims=True), 1.0)
        global_share = total / max(total.sum(), 1.0)
        table = np.vstack([shares + self.config["global_weight"] * global_share, global_share])  # last: unknown
        self._table = torch.from_numpy(table.astype(np.float32))

    def _rows(self, segments: np.ndarray) -> np.ndarray:
        return np.where(segments >= 0, segments, len(self.segments))

    def score_users(self, users):
        return self._table[torch.from_numpy(self._rows(self.user_segment[np.asarray(users, dtype=np.int64)]))]

    def score_pairs(self, users, items):
        rows = self._rows(self.user_segment[np.asarray(users, dtype=np.int64)])
        return self._table.numpy()[rows, np.asarray(items, dtype=np.int64)]

    def _segments_of(self, frame: pd.DataFrame) -> np.ndarray:
        col = self.config["segment"]
        ids = pd.unique(frame["user_id"].astype(str).to_numpy())
        if col not in frame.columns:
            return np.full(len(ids), -1, dtype=np.int64)
        seg = frame[col].astype("string").groupby(frame["user_id"].astype(str).to_numpy()).first().reindex(ids)
        return np.where(seg.notna().to_numpy(), encode_ids(seg.fillna("").to_numpy(dtype=str), self.segments), -1)

    def score_new_users(self, users: pd.DataFrame) -> torch.Tensor:
        return self._table[torch.from_numpy(self._rows(self._segments_of(users)).astype(np.int64))]

    def score_new_items(self, users, items: pd.DataFrame) -> torch.Tensor | None:
        """A new item gets the mean score of the training items of its category (its first one), per segment."""
        if "item_category" not in items.columns or not len(self.item_category):
            return None
        ids = pd.unique(items["item_id"].astype(str).to_numpy())
        cats = items["item_category"].astype("string").str.split("|").str[0].groupby(
            items["item_id"].astype(str).to_numpy()).first().reindex(ids).fillna("").to_numpy(dtype=str)
        names, codes = np.unique(self.item_category, return_inverse=True)
        means = np.zeros((self._table.shape[0], len(names) + 1), dtype=np.float32)
        sums = np.zeros((self._table.shape[0], len(names)), dtype=np.float64)
        for c in range(len(names)):
            sums[:, c] = self._table.numpy()[:, codes == c].mean(1)
        means[:, :-1] = sums
        col = encode_ids(cats, names)
        col = np.where(col >= 0, col, len(names))
        rows = self._rows(self.user_segment[np.asarray(users, dtype=np.int64)])
        return torch.from_numpy(means[rows][:, col])

    def _state(self):
        return {"segments": self.segments.tolist(), "user_segment": torch.from_numpy(self.user_segment),
                "item_category": self.item_category.tolist()}

    def _from_state(self, state):
        self.segments = np.asarray(state["segments"], dtype=str)
        self.user_segment = state["user_segment"].numpy()
        self.item_category = np.asarray(state["item_category"], dtype=str)
        users = np.repeat(np.arange(self.n_users), np.diff(self.seen.indptr))
        self._fit(users, self.seen.indices.astype(np.int64), None)


def _user_rows(model: Recommender, users) -> sp.csr_matrix:
    """Binary float32 CSR rows of the training interactions of `users` (indices)."""
    return model.seen[np.asarray(users, dtype=np.int64)].astype(np.float32)


@register
class ItemKNN(Recommender):
    """Item-based kNN with cosine similarity on binary interactions; `k` neighbours per item.

    config: k (neighbours kept per item, default 100), shrink (added to the cosine denominator,
    damping similarities built on few common users; default 0 = plain cosine).
    """
    name = "itemknn"

    def __init__(self, k: int = 100, shrink: float = 0.0, **config):
        if int(k) < 1:
            raise ValueError(f"itemknn needs k >= 1 neighbours, got {k}")
        super().__init__(k=int(k), shrink=float(shrink), **config)

    # Up to this many items the similarity is computed dense (ml-100k: 1,682 items, 23 MB); above it, on the
    # non-zero co-occurrences only (Electronics, 9,560 items: a dense float64 matrix alone is 730 MB, the sparse
    # one holds the pairs some user shares).
    DENSE_MAX_ITEMS = 4_000

    def _fit(self, users, items, ratings):
        x = self.seen.astype(np.float32).tocsc()
        if self.n_items > self.DENSE_MAX_ITEMS:
            self._set_similarity(self._sparse_top_k(x, self.config["k"], self.config["shrink"]))
            return
        co = (x.T @ x).toarray()  # [n_items, n_items] co-occurrence counts
        norms = np.sqrt(np.diag(co)).astype(np.float32)
        sim = co / (np.outer(norms, norms) + self.config["shrink"] + 1e-12)
        np.fill_diagonal(sim, 0.0)
        self._set_similarity(self._top_k_columns(sim, self.config["k"]))

    @staticmethod
    def _sparse_top_k(x: sp.csc_matrix, k: int, shrink: float) -> sp.csr_matrix:
        """The same similarity as the dense path, from the sparse co-occurrences: per column its k largest
        entries (ties by row index)."""
        co = (x.T @ x).tocoo()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(0)).ravel())
        off = co.row != co.col
        rows, cols = co.row[off], co.col[off]
        vals = co.data[off] / (norms[rows] * norms[cols] + shrink + 1e-12)
        order = np.lexsort((rows, -vals, cols))
        rows, cols, vals = rows[order], cols[order], vals[order]
        starts = np.searchsorted(cols, np.arange(x.shape[1]))
        rank = np.arange(len(cols)) - starts[cols]
        keep = (rank < min(k, max(x.shape[1] - 1, 0))) & (vals > 0)
        n = x.shape[1]
        return sp.csr_matrix((vals[keep].astype(np.float32), (rows[keep], cols[keep])), shape=(n, n))

    @staticmethod
    def _top_k_columns(sim: np.ndarray, k: int) -> sp.csr_matrix:
        """Keep, for each target item (column), its k most similar source items (rows)."""
        n = sim.shape[0]
        k = min(k, n - 1) if n > 1 else 0
        if k == 0:
            return sp.csr_matrix((n, n), dtype=np.float32)
        top = np.argpartition(-sim, k - 1, axis=0)[:k]  # [k, n] row indices per column
        vals = np.take_along_axis(sim, top, axis=0)
        keep = vals > 0
        cols = np.broadcast_to(np.arange(n), top.shape)
        return sp.csr_matrix((vals[keep].astype(np.float32), (top[keep], cols[keep])), shape=(n, n))

    def _set_similarity(self, sim: sp.csr_matrix):
        self._sim = sim.tocsr()

    def score_users(self, users):
        return torch.from_numpy(np.asarray((_user_rows(self, users) @ self._sim).todense(), dtype=np.float32))

    def history_contributions(self, user, items):
        """Exact: the score of item i is the sum of the similarities sim[j, i] over the user's items j."""
        hist = self.seen[int(user)].indices.astype(np.int64)
        items = np.asarray(items, dtype=np.int64)
        contributions = np.asarray(self._sim[hist][:, items].todense(), dtype=np.float32).T
        return hist, contributions, np.zeros(len(items), dtype=np.float32)

    def _state(self):
        coo = self._sim.tocoo()
        return {"rows": torch.from_numpy(coo.row.astype(np.int64)), "cols": torch.from_numpy(coo.col.astype(np.int64)),
                "values": torch.from_numpy(coo.data.astype(np.float32))}

    def _from_state(self, state):
        n = self.n_items
        self._set_similarity(sp.csr_matrix((state["values"].numpy(), (state["rows"].numpy(), state["cols"].numpy())),
                                           shape=(n, n)))


@register
class EASE(Recommender):
    """EASE^R (Steck, WWW 2019): closed-form item-item weights with L2 strength `lambda_` (default 300).

    The weight matrix is dense [n_items, n_items] float32 (ml-100k: 1,682 items, 11 MB;
    ml-latest-small: 9,724 items, 380 MB), solved by a float32 Cholesky (`helpers.models.item_item`).
    """
    name = "ease"

    def __init__(self, lambda_: float = 300.0, **config):
        if float(lambda_) <= 0:
            raise ValueError(f"ease needs lambda_ > 0 (the L2 strength), got {lambda_}")
        super().__init__(lambda_=float(lambda_), **config)

    def _fit(self, users, items, ratings):
        self._weights = ease_weights(self.seen, self.config["lambda_"])

    def score_users(self, users):
        # sparse user rows @ dense weights: cost nnz(rows) x n_items, not len(users) x n_items^2
        return history_row_sums(_user_rows(self, users), self._weights).float()

    def score_pairs(self, users, items):
        """Scores of (user, item) pairs. Few pairs per user (the sampled protocol on a large catalogue):
        sum W[j, item] over the user's items j (`history_pair_scores`); many pairs per user: score whole rows."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if len(users) * 20 > len(np.unique(users)) * self.n_items:
            return super().score_pairs(users, items)
        return history_pair_scores(self.seen, users, items, self._weights)

    def history_contributions(self, user, items):
        """Exact: the score of item i is the sum of the weights W[j, i] over the user's items j."""
        hist = self.seen[int(user)].indices.astype(np.int64)
        items = torch.from_numpy(np.asarray(items, dtype=np.int64))
        contributions = self._weights.index_select(0, torch.from_numpy(hist))[:, items].T.float().numpy()
        return hist, contributions, np.zeros(len(items), dtype=np.float32)

    def _state(self):
        return {"weights": self._weights}

    def _from_state(self, state):
        self._weights = state["weights"].float()


@register
class BiasBaseline(Recommender):
    """Rating baseline: prediction = mean + b_user + b_item, biases shrunk by `reg` (default 10
    pseudo-ratings), fitted by `iterations` rounds of alternating closed-form updates (Koren 2010).
    ml-100k, random 80:20: RMSE about 0.94."""
    name = "bias"
    task = "rating"

    def __init__(self, reg: float = 10.0, iterations: int = 10, **config):
        if float(reg) < 0:
            raise ValueError(f"bias needs reg >= 0, got {reg}")
        super().__init__(reg=float(reg), iterations=int(iterations), **config)

    def _fit(self, users, items, ratings):
        r = ratings.astype(np.float64)
        mean = r.mean()
        bu, bi = np.zeros(self.n_users), np.zeros(self.n_items)
        n_u = np.bincount(users, minlength=self.n_users) + self.config["reg"]
        n_i = np.bincount(items, minlength=self.n_items) + self.config["reg"]
        for _ in range(self.config["iterations"]):
            bi = np.bincount(items, weights=r - mean - bu[users], minlength=self.n_items) / n_i
            bu = np.bincount(users, weights=r - mean - bi[items], minlength=self.n_users) / n_u
        self._set(torch.tensor(mean, dtype=torch.float32), torch.from_numpy(bu.astype(np.float32)),
                  torch.from_numpy(bi.astype(np.float32)))

    def _set(self, mean, user_bias, item_bias):
        self._mean, self._bu, self._bi = mean, user_bias, item_bias

    def score_users(self, users):
        u = torch.from_numpy(np.asarray(users, dtype=np.int64))
        return self._mean + self._bu[u][:, None] + self._bi[None, :]

    def score_pairs(self, users, items):
        return (self._mean + self._bu[np.asarray(users, dtype=np.int64)]
                + self._bi[np.asarray(items, dtype=np.int64)]).numpy()

    def _state(self):
        return {"mean": self._mean, "user_bias": self._bu, "item_bias": self._bi}

    def _from_state(self, state):
        self._set(state["mean"], state["user_bias"], state["item_bias"])

