"""The closed-form item-item model (EASE^R, Steck 2019) as a component: the weights of the "ease" baseline
and the item-item branch of CollabNN.

    B = argmin ||X - XB||^2 + lambda ||B||^2  s.t. diag(B) = 0:   P = (X'X + lambda I)^-1,  B = -P / diag(P)

Solved exactly in float32 by an in-place LAPACK Cholesky inverse (`spotrf` + `spotri` through scipy), over
items (m^3) or, when fewer users have a kept item, over users through the Woodbury identity (users^3); see
`ease_weights`. Measured on this project's 2-core CPU (synthetic Electronics-like data, 92k interactions,
lambda 100): 610 users x 9,700 items 2.3 s / 1.3 GB peak; 9,000 x 17,600 (dual) 11.1 s / 2.7 GB;
20,000 x 17,600 (primal) 21.5 s / 3.1 GB, against 6.3 s, 27.8 s and 27.6 s (up to 5.5 GB) for the previous
torch `cholesky` + `cholesky_inverse` and 171 s for the first float64 `inv` at 17,600 items. Weights equal the
float64 solve to about 1e-6 (tests/unit/test_item_item.py). The primal cost grows as n_items^3, so the branch
of CollabNN keeps the `max_items` most popular items (10,000 by default).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg.lapack
import scipy.sparse as sp
import torch

# The item-item branch of CollabNN: the most popular items it covers (the rest get the factor score only).
MAX_ITEMS = 10_000
# lambda = LAMBDA_PER_INTERACTION x the mean number of training interactions per (kept) item, when not
# given: EASE's L2 strength in the units of X'X's diagonal. Chosen on validation NDCG@10 on ml-100k
# (random 80:20; best lambda 500 at 39.5 interactions per item) and on the original notebook's split
# (best 100 at 10.3 per item), i.e. 12.7x and 9.7x; benchmarks/logs/hybrid_design.md.
LAMBDA_PER_INTERACTION = 10.0


def default_lambda(seen: sp.csr_matrix, items: np.ndarray | None = None) -> float:
    """LAMBDA_PER_INTERACTION x the mean number of interactions per item (of `items`; all when None)."""
    counts = np.asarray((seen != 0).sum(axis=0)).ravel()
    counts = counts if items is None else counts[items]
    return float(LAMBDA_PER_INTERACTION * max(counts.mean(), 1.0)) if len(counts) else LAMBDA_PER_INTERACTION


def ease_weights(seen: sp.csr_matrix, lambda_: float, items: np.ndarray | None = None) -> torch.Tensor:
    """EASE weights [m, m] (float32, zero diagonal) over the columns `items` of the binary user x item
    matrix `seen` (all columns when None), by whichever of the two exact solves costs less:

    - primal, when the users with an item are at least as many as the items: P = (X'X + lambda I)^-1 by an
      in-place float32 Cholesky (`spotrf` + `spotri`), cost m^3, memory one m x m buffer;
    - dual (Woodbury), when they are fewer: X'X + lambda I = lambda (I - X'(lambda I + XX')^-1 X)^-1 up to a
      scale that B's column normalisation cancels, so B = S / (1 - diag S) with S = X'(lambda I + XX')^-1 X:
      one users x users inverse (cost users^3) and two sparse gathers (cost interactions x (users + m)).

    Weights agree with a float64 inverse to about 1e-6 on either path (tests/unit/test_item_item.py)."""
    if float(lambda_) <= 0:
        raise ValueError(f"EASE needs lambda_ > 0 (the L2 strength), got {lambda_}")
    x = (seen if items is None else seen[:, items]).astype(np.float32)
    x.data[:] = 1.0
    x = sp.csr_matrix(x[np.diff(x.indptr) > 0])                     # users without a kept item add nothing
    if x.shape[0] >= x.shape[1]:
        weights = _precision(x.T @ x, float(lambda_))                   # P, weights follow in place
        weights /= -np.diag(weights)[None, :]
    else:
        kinv = _precision(x @ x.T, float(lambda_))                      # K^-1 = (lambda I + XX')^-1, users x users
        xt = sp.csr_matrix(x.T)
        # scipy's sparse @ dense for the two products, one call each (history_row_sums is for many small calls);
        # at 8,648 users x 10,000 items (the default's branch at 17,600 items of benchmarks/budget.py's data) 0.29 s
        # and 0.66 s against 1.06 s and 2.42 s for history_row_sums, the same float32 sums, timed in one session
        gathered = xt @ kinv                                            # X' K^-1, items x users
        del kinv
        gathered = np.ascontiguousarray(gathered.T)                     # K^-1 X (K symmetric), users x items
        weights = xt @ gathered                                         # S = X' K^-1 X, items x items
        del gathered
        weights /= (1.0 - np.diag(weights))[None, :]
    np.fill_diagonal(weights, 0.0)
    return torch.from_numpy(weights)


# Rows of the precision matrix made symmetric at once (the temporary is this many rows of it).
SYMMETRISE_ROWS = 1_024


def _precision(gram: sp.spmatrix, lambda_: float) -> np.ndarray:
    """(gram + lambda_ I)^-1 as a new float32 C-ordered array, the factorisation and inverse done in place in it
    (LAPACK spotrf + spotri through scipy: on this project's 2-core CPU 0.7 s for 6,000 items against 1.4 s for
    torch's cholesky + cholesky_inverse, and one n x n buffer instead of three)."""
    a = np.asarray(gram.toarray(), dtype=np.float32, order="C")
    a[np.diag_indices_from(a)] += np.float32(lambda_)
    f = a.T                                                             # Fortran order, the same (symmetric) matrix
    f, info = scipy.linalg.lapack.spotrf(f, lower=0, clean=0, overwrite_a=1)
    if info == 0:
        f, info = scipy.linalg.lapack.spotri(f, lower=0, overwrite_c=1)
    if info != 0:
        raise ValueError(f"EASE's matrix is not positive definite (LAPACK info {info}); use a larger lambda_")
    if not np.shares_memory(f, a):                                      # LAPACK copied after all: take its result
        a = np.ascontiguousarray(f.T)
    n = a.shape[0]                                   # the upper triangle of f is the lower triangle of a
    for start in range(0, n, SYMMETRISE_ROWS):
        stop = min(start + SYMMETRISE_ROWS, n)
        block = a[start:stop, start:stop]
        a[start:stop, start:stop] = np.tril(block) + np.tril(block, -1).T
        a[start:stop, stop:] = a[stop:, start:stop].T
    return a


# Most floats one gather of `history_row_sums` holds (128 MB): one gather for a whole block of 1,024 users of
# ml-latest-small (169,000 history items x 9,724 columns) was 6.6 GB and took EASE's process to a 5.1 GB peak;
# sub-blocks of users keep it near this size, with the same sums (each user's items stay in one sub-block).
GATHER_FLOATS = 1 << 25


def history_row_sums(rows: sp.spmatrix, weights: torch.Tensor) -> torch.Tensor:
    """rows @ weights as float32 [len(rows), weights.shape[1]]: for each user, the weight rows of their history
    items, times the rows' values, summed (gathered and added: cost history items x columns), in sub-blocks of
    users of at most `GATHER_FLOATS` gathered values. Why not scipy's sparse @ dense: it copied the whole dense
    matrix at every call (Electronics, 9,560 items, the 34,574 warm evaluation users in batches of 1,024: 24 s,
    against 4 s here)."""
    x = sp.csr_matrix(rows)
    out = torch.zeros(x.shape[0], weights.shape[1], dtype=weights.dtype)
    per_block = max(GATHER_FLOATS // max(weights.shape[1], 1), 1)   # history items gathered at once
    start = 0
    while start < x.shape[0]:
        stop = int(np.searchsorted(x.indptr, x.indptr[start] + per_block, side="right")) - 1
        stop = min(max(stop, start + 1), x.shape[0])                # at least one user per sub-block
        sub = x[start:stop]
        user_of = torch.from_numpy(np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr)))
        gathered = weights.index_select(0, torch.from_numpy(sub.indices.astype(np.int64)))
        if not np.all(sub.data == 1):
            gathered = gathered * torch.from_numpy(sub.data.astype(np.float32))[:, None]
        out[start:stop].index_add_(0, user_of, gathered)
        start = stop
    return out


def history_pair_scores(seen: sp.csr_matrix, users, items, weights: torch.Tensor, positions: np.ndarray | None = None,
                        chunk: int = 50_000) -> np.ndarray:
    """Per (user, item) pair, the sum of W[j, item] over the user's training items j (`seen` rows): the
    item-item score without scoring whole rows, in chunks of pairs so memory follows the chunk.
    `positions`: item index -> row/column of `weights`, -1 for items it does not cover (they add 0)."""
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    w = weights.numpy()
    out = np.empty(len(users), dtype=np.float32)
    for start in range(0, len(users), chunk):
        rows = seen[users[start:start + chunk]]
        rep = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
        src, dst = rows.indices.astype(np.int64), items[start:start + chunk][rep]
        if positions is not None:
            src, dst = positions[src], positions[dst]
            covered = (src >= 0) & (dst >= 0)
            rep, src, dst = rep[covered], src[covered], dst[covered]
        out[start:start + chunk] = np.bincount(rep, weights=w[src, dst], minlength=rows.shape[0])
    return out


class ItemItemBranch:
    """A frozen EASE term over the `max_items` most popular items, on the logit scale of a softmax over the
    catalogue: score(u, i) = scale * x_u . B[:, i] for kept items i, 0 for the others.

    `scale` is fitted by a line search on the training data: the value of SCALES minimising the multinomial
    negative log-likelihood of each user's training items under softmax(scale * x_u B) (the objective the
    factor branch trains with, so the two branches add on one scale).
    """
    SCALES = (1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200)

    def __init__(self, items: np.ndarray, weights: torch.Tensor, scale: float, lambda_: float, n_items: int):
        self.items = np.asarray(items, dtype=np.int64)
        self.weights = weights
        self.scale, self.lambda_, self.n_items = float(scale), float(lambda_), int(n_items)
        self._position = np.full(self.n_items, -1, dtype=np.int64)
        self._position[self.items] = np.arange(len(self.items))

    @classmethod
    def fitted(cls, seen: sp.csr_matrix, lambda_: float | None = None, max_items: int = MAX_ITEMS,
               max_scale_users: int = 2_000, seed: int = 0) -> ItemItemBranch:
        """The branch for the interactions `seen` (users x items CSR): the `max_items` most popular items, EASE
        weights with `lambda_` (None: `default_lambda`), scale by line search over <= max_scale_users users."""
        counts = np.asarray((seen != 0).sum(axis=0)).ravel()
        items = np.sort(np.argsort(-counts, kind="stable")[:int(max_items)])
        lam = default_lambda(seen, items) if lambda_ is None else float(lambda_)
        branch = cls(items, ease_weights(seen, lam, items), 1.0, lam, seen.shape[1])
        users = np.flatnonzero(np.diff(seen.indptr) > 0)
        if len(users) > max_scale_users:
            users = np.sort(np.random.default_rng(seed).choice(users, max_scale_users, replace=False))
        rows = seen[users]
        raw = branch.user_scores(rows)
        # the NLL of the users' items under softmax(s * raw): (sum_u n_u logsumexp(s * raw_u) - s * sum of their raw
        # scores) / their count, with no users x items log-softmax per scale
        mine = (rows != 0).tocoo()
        per_user = torch.from_numpy(np.bincount(mine.row, minlength=rows.shape[0]).astype(np.float32))
        own = float(raw[torch.from_numpy(mine.row.astype(np.int64)), torch.from_numpy(mine.col.astype(np.int64))].sum())
        losses = [(float((torch.logsumexp(s * raw, 1) * per_user).sum()) - s * own) / max(float(per_user.sum()), 1.0)
                  for s in cls.SCALES]
        branch.scale = float(cls.SCALES[int(np.argmin(losses))])
        return branch

    def user_scores(self, rows: sp.csr_matrix) -> torch.Tensor:
        """[len(rows), n_items] float32 scores of the users whose training rows are `rows` (scaled)."""
        out = torch.zeros(rows.shape[0], self.n_items)
        out[:, torch.from_numpy(self.items)] = history_row_sums(rows[:, self.items], self.weights)
        return out * self.scale

    def pair_scores(self, seen: sp.csr_matrix, users, items) -> np.ndarray:
        """Scores of (user, item) index pairs, the users' training rows in `seen` (scaled)."""
        return history_pair_scores(seen, users, items, self.weights, self._position) * np.float32(self.scale)

    def state(self) -> dict:
        return {"items": torch.from_numpy(self.items), "weights": self.weights,
                "scale": torch.tensor(self.scale), "lambda": torch.tensor(self.lambda_)}

    @classmethod
    def from_state(cls, state: dict, n_items: int) -> ItemItemBranch:
        return cls(state["items"].numpy(), state["weights"].float(), float(state["scale"]), float(state["lambda"]),
                   n_items)
