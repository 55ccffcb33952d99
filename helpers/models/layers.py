"""Torch building blocks of the neural models: embeddings with sparse gradients, biases, the user's item
history (FISM / SVD++ style), the output activation and the re-scoring of seen items.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from helpers.data.interactions import csr_pairs


class Embedding(nn.Module):
    """Lookup table `[num, dim]` with our initialisation (truncated normal, std `init_std`).

    `sparse=True` makes the backward pass produce a sparse gradient (only the rows a batch used), so
    an optimiser such as `helpers.training.LazyAdam` touches only those rows: the cost of a step does
    not grow with the number of users.
    """
    def __init__(self, num: int, dim: int, init_std: float = 0.01, sparse: bool = False):
        super().__init__()
        self.num, self.dim, self.sparse = int(num), int(dim), bool(sparse)
        self.weight = nn.Parameter(torch.empty(self.num, self.dim))
        self.reset_parameters(init_std)

    def reset_parameters(self, init_std: float) -> None:
        with torch.no_grad():
            nn.init.trunc_normal_(self.weight, std=init_std, a=-2 * init_std, b=2 * init_std)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, self.weight, sparse=self.sparse)

    def extra_repr(self) -> str:
        return f"{self.num}, {self.dim}, sparse={self.sparse}"


class Bias(Embedding):
    """One scalar per row (a `[num, 1]` Embedding initialised at zero)."""
    def __init__(self, num: int, sparse: bool = False):
        super().__init__(num, 1, init_std=0.0, sparse=sparse)

    def reset_parameters(self, init_std: float) -> None:
        with torch.no_grad():
            self.weight.zero_()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return super().forward(idx).squeeze(-1)


class History(nn.Module):
    """A user's items as part of the user's vector (FISM / SVD++ style "implicit feedback" term).

    h(u, i) = |N(u) \\ {i}|^-alpha * sum_{j in N(u), j != i} y_j

    N(u) = the user's training items (a CSR held as non-persistent buffers: it is rebuilt from the
    model's id maps and `seen` matrix, not stored twice). The scored item itself is left out, so a
    training positive does not see itself. Per batch the sum is computed once per distinct user
    (one `embedding_bag`), so the cost follows the users in the batch, not the batch size.
    """
    def __init__(self, indptr, indices, n_items: int, dim: int, init_std: float = 0.01, sparse: bool = False,
                 alpha: float = 0.5, dropout: float = 0.0):
        super().__init__()
        self.dropout = float(dropout)  # share of the history hidden by `user_vectors` in training mode
        indptr = torch.as_tensor(np.asarray(indptr, dtype=np.int64))
        indices = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        users = torch.repeat_interleave(torch.arange(len(indptr) - 1), indptr[1:] - indptr[:-1])
        self.n_items, self.alpha = int(n_items), float(alpha)
        self.register_buffer("indptr", indptr, persistent=False)
        self.register_buffer("indices", indices, persistent=False)
        self.register_buffer("codes", torch.sort(users * self.n_items + indices).values, persistent=False)
        self.emb = Embedding(n_items, dim, init_std, sparse=False)  # dense unless `sparse_gradient` (see `sums`)

    def sparse_gradient(self, mode: bool = True) -> History:
        """Give the history table a sparse gradient (`mode`), the rows of the batch's history items only, as
        `Embedding(sparse=True)` gives: what `helpers.training` sets when the catalogue is sampled (the item
        table's gradient is then sparse too, and a dense history update would be the one item-sized cost
        of a step). Returns the module, as `nn.Module.train` does."""
        self.emb.sparse = bool(mode)
        return self

    def sums(self, users: torch.Tensor, drop: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalised sum of history embeddings [len(users), d], history length [len(users)]).

        One sparse [len(users), n_items] x dense [n_items, d] product: its backward is the transposed
        product, a dense gradient for the (item-sized) history table, cheap for any number of users;
        with `sparse_gradient`, one weighted `embedding_bag` per user instead, the same sums with a sparse
        gradient.
        `drop` > 0 hides each history item with that probability (torch's RNG) and normalises by
        the number kept: the denoising input of the multinomial objective (see `helpers.training`).
        """
        rows, cols = csr_pairs(self.indptr, self.indices, users)
        if drop > 0:
            keep = torch.rand(len(rows), device=users.device) >= drop
            rows, cols = rows[keep], cols[keep]
        lens = torch.bincount(rows, minlength=len(users))
        scale = lens.clamp(min=1).float().pow(-self.alpha)
        if self.emb.sparse:  # one bag per user (csr_pairs gives the rows in order)
            return F.embedding_bag(cols, self.emb.weight, torch.cumsum(lens, 0) - lens, mode="sum", sparse=True,
                                   per_sample_weights=scale[rows]), lens
        mat = torch.sparse_coo_tensor(torch.stack([rows, cols]), scale[rows],
                                      (len(users), self.n_items), is_coalesced=True,
                                      check_invariants=False)
        with torch.autocast(device_type=users.device.type, enabled=False):  # sparse x dense stays float32
            return torch.sparse.mm(mat, self.emb.weight.float()), lens

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        q = users * self.n_items + items
        if len(self.codes) == 0:
            return torch.zeros_like(q, dtype=torch.bool)
        pos = torch.searchsorted(self.codes, q).clamp(max=len(self.codes) - 1)
        return self.codes[pos] == q

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        uniq, inv = torch.unique(users, return_inverse=True)
        total, lens = self.sums(uniq)                      # already scaled by |N(u)|^-alpha
        own = self.contains(users, items)
        n = lens[inv].float()
        # remove the scored item from its own user's history: rescale to |N(u)| - 1
        own_vec = self.emb.weight.index_select(0, items) * own[:, None]
        full = total[inv] * n.clamp(min=1).pow(self.alpha)[:, None]
        return (full - own_vec) * (n - own.float()).clamp(min=1).pow(-self.alpha)[:, None]

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """The history term per user: the full history for ranking unseen items; in training mode,
        `dropout` of it hidden (see `sums`; the multinomial objective's denoising)."""
        return self.sums(users, self.dropout if self.training else 0.0)[0]

    def seen_pairs(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(row in `users`, item) of every history item of `users`."""
        return csr_pairs(self.indptr, self.indices, users)


class FeatureBag(nn.Module):
    """Side features as embeddings of their own (LightFM style): an entity's vector is the mean of its tokens'
    embeddings, its bias the mean of their biases (`helpers.data.features`: "user_gender=F", "year=1995", ...).

    The entities' tokens are a CSR (`indptr`, `indices`, non-persistent buffers rebuilt from the model file's
    feature tables); `of_csr` encodes entities outside it (cold users or items, scored from features alone).
    An entity without tokens gets zeros. The table is token-sized, so its gradient is dense.
    """
    def __init__(self, indptr, indices, n_tokens: int, dim: int, init_std: float = 0.01):
        super().__init__()
        self.n_tokens = int(n_tokens)
        self.register_buffer("indptr", torch.as_tensor(np.asarray(indptr, dtype=np.int64)), persistent=False)
        self.register_buffer("indices", torch.as_tensor(np.asarray(indices, dtype=np.int64)), persistent=False)
        self.emb = Embedding(self.n_tokens, dim, init_std, sparse=False)
        self.bias = Bias(self.n_tokens, sparse=False)

    def _pooled(self, rows: torch.Tensor, cols: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        lens = torch.bincount(rows, minlength=n).clamp(min=1).float()
        mat = torch.sparse_coo_tensor(torch.stack([rows, cols]), 1.0 / lens[rows], (n, self.n_tokens),
                                      check_invariants=False)
        table = torch.cat([self.emb.weight, self.bias.weight], 1).float()
        with torch.autocast(device_type=rows.device.type, enabled=False):
            out = torch.sparse.mm(mat, table)
        return out[:, :-1], out[:, -1]

    def forward(self, entities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean token embedding [len(entities), dim], mean token bias [len(entities)]) of the table's entities."""
        rows, cols = csr_pairs(self.indptr, self.indices, entities)
        return self._pooled(rows, cols, len(entities))

    def of_csr(self, indptr, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """The same for entities given by their own CSR of token codes (new users or items)."""
        device = self.emb.weight.device
        indptr = torch.as_tensor(np.asarray(indptr, dtype=np.int64), device=device)
        indices = torch.as_tensor(np.asarray(indices, dtype=np.int64), device=device)
        n = len(indptr) - 1
        rows = torch.repeat_interleave(torch.arange(n, device=device), indptr[1:] - indptr[:-1])
        return self._pooled(rows, indices, n)

    def all(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Vectors and biases of every entity of the table (e.g. all items, for the catalogue softmax)."""
        return self(torch.arange(len(self.indptr) - 1, device=self.indptr.device))


def rescore_seen(module: nn.Module, users: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """With a History term, a user's own items are scored with themselves left out of the history (as
    in training and in `forward`); `score_all` computed them with the full history, so redo those few."""
    if module.history is None:
        return scores
    rows, items = module.history.seen_pairs(users)
    if len(rows):
        scores[rows, items] = module(torch.stack([users[rows], items], 1)).to(scores.dtype)
    return scores


def output_activation(x: torch.Tensor, y_range) -> torch.Tensor:
    """Rating task: squash into y_range (fastai's sigmoid_range); implicit task: the raw logit."""
    if y_range is None:
        return x
    low, high = y_range
    return torch.sigmoid(x) * (high - low) + low


def n_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of a torch module."""
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))

