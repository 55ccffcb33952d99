"""Baselines with the same fit / score / recommend interface as the neural models.

- "popular" (`MostPopular`): every user gets the items with the most training interactions.
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
import scipy.sparse as sp
import torch

from helpers.models.base import Recommender
from helpers.models.item_item import ease_weights, history_pair_scores
from helpers.models.registry import register

BASELINES = ["popular", "itemknn", "ease", "bias"]


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

    def _fit(self, users, items, ratings):
        x = self.seen.astype(np.float32).tocsc()
        co = (x.T @ x).toarray()  # [n_items, n_items] co-occurrence counts
        norms = np.sqrt(np.diag(co)).astype(np.float32)
        sim = co / (np.outer(norms, norms) + self.config["shrink"] + 1e-12)
        np.fill_diagonal(sim, 0.0)
        self._set_similarity(self._top_k_columns(sim, self.config["k"]))

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
        return torch.from_numpy(np.asarray(_user_rows(self, users) @ self._weights.numpy(), dtype=np.float32))

    def score_pairs(self, users, items):
        """Scores of (user, item) pairs. Few pairs per user (the sampled protocol on a large catalogue):
        sum W[j, item] over the user's items j (`history_pair_scores`); many pairs per user: score whole rows."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if len(users) * 20 > len(np.unique(users)) * self.n_items:
            return super().score_pairs(users, items)
        return history_pair_scores(self.seen, users, items, self._weights)

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

