"""Neural collaborative-filtering models, trained through fastai (see helpers.train).

Four registered `Recommender`s (helpers.recommender) share one training path:

- "collabnn" (`CollabNN`, the project's default): user and item embeddings from our own
  `Embedding` module; a GMF (dot-product) branch whose user vector adds the user's item history
  (`History`, FISM / SVD++ style), user/item biases, and optionally the concat-MLP branch (widths
  `layers`, dropout, optional batch norm) fused NeuMF-style. Implicit default: no MLP branch, trained
  with the multinomial objective over the catalogue (`helpers.train`, `loss="auto"`); rating default:
  the MLP[64] branch with GMF and biases. `gmf_size=0, bias=False, history=False, layers=[...]` is the
  plain concat-MLP of the original notebooks.
- "collabnn_mlp" (`CollabNNMLP`): CollabNN with the concat-MLP[64] branch, trained with BCE (the
  first version's implicit default).
- "mf" (`DotProductBias`): matrix factorisation with user and item biases (fastai's DotProductBias).
- "neumf" (`NeuMF`): GMF + MLP as in the NCF paper (He et al. 2017), optionally initialised from a
  GMF and an MLP trained first (`pretrain=True`).

Outputs: task "rating" -> `sigmoid_range(x, *y_range)`; task "implicit" -> a logit (higher = more
likely), trained with the multinomial likelihood over the catalogue or with binary cross-entropy
against negatives re-drawn every epoch (see helpers.train).

Fast full ranking: the first MLP layer on concat(u, i) is W [u; i] + b = W_u u + (W_i i + b), so it
is computed once per user and once per item (`user_proj`, `item_proj`), never per (user, item) pair
in Python; `score_users` broadcasts the two parts over blocks of users x all items.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from helpers.recommender import Recommender, register

# --------------------------------------------------------------------------- building blocks


class Embedding(nn.Module):
    """Lookup table `[num, dim]` with our initialisation (truncated normal, std `init_std`).

    `sparse=True` makes the backward pass produce a sparse gradient (only the rows a batch used), so
    an optimiser such as `helpers.train.LazyAdam` touches only those rows: the cost of a step does
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


def csr_pairs(indptr: torch.Tensor, indices: torch.Tensor, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row in `users`, column) of every entry of the CSR rows `users` (`indptr`, `indices` as tensors),
    vectorised: no loop over users. Rows in the order of `users`, columns in CSR order within a row."""
    start, stop = indptr[users], indptr[users + 1]
    lens = stop - start
    offsets = torch.cumsum(lens, 0) - lens
    flat = torch.arange(int(lens.sum()), device=users.device) - torch.repeat_interleave(offsets - start, lens)
    return torch.repeat_interleave(torch.arange(len(users), device=users.device), lens), indices[flat]


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
        self.emb = Embedding(n_items, dim, init_std, sparse=False)  # dense: item-sized, see `sums`

    def sums(self, users: torch.Tensor, drop: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalised sum of history embeddings [len(users), d], history length [len(users)]).

        One sparse [len(users), n_items] x dense [n_items, d] product: its backward is the transposed
        product, a dense gradient for the (item-sized) history table, cheap for any number of users.
        `drop` > 0 hides each history item with that probability (torch's RNG) and normalises by
        the number kept: the denoising input of the multinomial objective (see `helpers.train`).
        """
        rows, cols = csr_pairs(self.indptr, self.indices, users)
        if drop > 0:
            keep = torch.rand(len(rows), device=users.device) >= drop
            rows, cols = rows[keep], cols[keep]
        lens = torch.bincount(rows, minlength=len(users))
        scale = lens.clamp(min=1).float().pow(-self.alpha)
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


def _rescore_seen(module: nn.Module, users: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """With a History term, a user's own items are scored with themselves left out of the history (as
    in training and in `forward`); `score_all` computed them with the full history, so redo those few."""
    if module.history is None:
        return scores
    rows, items = module.history.seen_pairs(users)
    if len(rows):
        scores[rows, items] = module(torch.stack([users[rows], items], 1)).to(scores.dtype)
    return scores


def _output(x: torch.Tensor, y_range) -> torch.Tensor:
    """Rating task: squash into y_range (fastai's sigmoid_range); implicit task: the raw logit."""
    if y_range is None:
        return x
    low, high = y_range
    return torch.sigmoid(x) * (high - low) + low


class CollabNNModule(nn.Module):
    """concat(user, item) embeddings -> MLP, optionally fused with a GMF branch and biases.

    score(u, i) = out(MLP([e_u; e_i]) ++ (g_u * g_i)) + b_u + b_i   (then sigmoid_range for ratings)

    `layers`: widths of the hidden layers; the first Linear on the concatenation is held as
    `user_proj` (with its bias) + `item_proj` (bias-free): identical maths, and full ranking computes
    each part once. `layers=[]` (with `gmf_size` > 0) leaves the MLP branch out: the GMF branch with
    the user's history and the biases, a score that is a dot product over the catalogue, which the
    multinomial objective needs (`catalogue_logits`).

    `history_dropout`: the share of a user's history items hidden in each training pass of the
    multinomial objective (the denoising of Mult-DAE, Liang et al. 2018); unused otherwise.
    """

    def __init__(self, n_users: int, n_items: int, emb_size: int = 64, layers=(128, 64), dropout: float = 0.0,
                 batchnorm: bool = False, gmf_size: int = 64, bias: bool = True, y_range=None,
                 init_std: float = 0.01, sparse: bool = False, history=None, history_alpha: float = 0.5,
                 history_dropout: float = 0.0):
        super().__init__()
        layers = [int(w) for w in (layers or [])]
        if not layers and not gmf_size:
            raise ValueError("CollabNN needs hidden layers or a GMF branch (gmf_size > 0); "
                             "set layers, e.g. [64], or gmf_size, e.g. 64")
        self.y_range = tuple(y_range) if y_range is not None else None
        self.has_mlp = bool(layers)
        if self.has_mlp:  # (creation order kept: the same seed gives the same initial weights as before)
            self._build_mlp(n_users, n_items, emb_size, layers, dropout, batchnorm, init_std, sparse)
        self.gmf_size = int(gmf_size)
        if self.gmf_size:
            self.user_gmf = Embedding(n_users, self.gmf_size, init_std, sparse)
            self.item_gmf = Embedding(n_items, self.gmf_size, init_std, sparse)
        n_mlp = layers[-1] if layers else 0
        self.out = nn.Linear(n_mlp + self.gmf_size, 1)
        if self.gmf_size:  # fused: start as the plain dot product (GMF weights 1), the MLP adds what it learns
            with torch.no_grad():
                self.out.weight[0, :n_mlp] = 0.0
                self.out.weight[0, n_mlp:] = 1.0
        self.bias = bool(bias)
        if self.bias:
            self.user_bias = Bias(n_users, sparse)
            self.item_bias = Bias(n_items, sparse)
        # the user's items join the GMF user vector (or, without GMF, the MLP user embedding)
        hist_dim = self.gmf_size or emb_size
        self.history = (History(*history, n_items, hist_dim, init_std, sparse, alpha=history_alpha,
                                dropout=history_dropout) if history is not None else None)

    def _build_mlp(self, n_users, n_items, emb_size, layers, dropout, batchnorm, init_std, sparse) -> None:
        self.user_emb = Embedding(n_users, emb_size, init_std, sparse)
        self.item_emb = Embedding(n_items, emb_size, init_std, sparse)
        self.user_proj = nn.Linear(emb_size, layers[0])
        self.item_proj = nn.Linear(emb_size, layers[0], bias=False)
        head = []
        if batchnorm:
            head.append(nn.BatchNorm1d(layers[0]))
        head += [nn.ReLU()]
        if dropout:
            head.append(nn.Dropout(dropout))
        for w_in, w_out in zip(layers[:-1], layers[1:]):
            head.append(nn.Linear(w_in, w_out))
            if batchnorm:
                head.append(nn.BatchNorm1d(w_out))
            head.append(nn.ReLU())
            if dropout:
                head.append(nn.Dropout(dropout))
        self.mlp = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: LongTensor [B, 2] of (user, item) indices -> [B] scores."""
        u, i = x[:, 0], x[:, 1]
        hist = self.history(u, i) if self.history is not None else None
        n_mlp = self.out.in_features - self.gmf_size
        y = self.out.bias[0].expand(len(u))
        if self.has_mlp:
            ue = self.user_emb(u)
            if hist is not None and not self.gmf_size:
                ue = ue + hist
            h = self.mlp(self.user_proj(ue) + self.item_proj(self.item_emb(i)))
            y = y + h @ self.out.weight[0, :n_mlp]
        if self.gmf_size:
            ug = self.user_gmf(u) if hist is None else self.user_gmf(u) + hist
            y = y + (ug * self.item_gmf(i)) @ self.out.weight[0, n_mlp:]
        if self.bias:
            y = y + self.user_bias(u) + self.item_bias(i)
        return _output(y, self.y_range)

    def catalogue_logits(self, users: torch.Tensor) -> torch.Tensor:
        """Scores (before any y_range) of every item for `users` -> [B, n_items], with gradients: what the
        multinomial objective trains (helpers.train). In training mode the user's history is dropped
        out with `history_dropout`; a user's own items are not left out of their history (the
        dropout is the denoising). Needs the dot-product form: no MLP branch (`layers=[]`)."""
        if self.has_mlp:
            raise ValueError("the multinomial objective needs a CollabNN without the MLP branch (layers=[]): "
                             "an MLP over every (user, item) pair of the catalogue is too costly; use loss='bce'")
        ug = self.user_gmf(users)
        if self.history is not None:
            ug = ug + self.history.user_vectors(users)
        y = (ug * self.out.weight[0]) @ self.item_gmf.weight.T + self.out.bias[0]
        if self.bias:
            y = y + self.user_bias(users)[:, None] + self.item_bias.weight[:, 0]
        return y

    @torch.no_grad()
    def score_all(self, users: torch.Tensor, pair_budget: int = 1 << 24) -> torch.Tensor:
        """Scores of every item for `users` (LongTensor [B]) -> [B, n_items]; eval mode expected.

        The user and item halves of the first layer are computed once each and broadcast; users
        are processed in blocks so that a block holds at most `pair_budget` hidden activations.
        """
        if not self.has_mlp:
            return _rescore_seen(self, users, _output(self.catalogue_logits(users), self.y_range))
        hist = self.history.user_vectors(users) if self.history is not None else None
        ue = self.user_emb(users)
        if hist is not None and not self.gmf_size:
            ue = ue + hist
        items_first = self.item_proj(self.item_emb.weight)                   # [n_items, h0]
        users_first = self.user_proj(ue)                                     # [B, h0]
        n_items, h0 = items_first.shape
        w_mlp = self.out.weight[0, :self.out.in_features - self.gmf_size]
        if self.gmf_size:
            item_gmf_w = self.item_gmf.weight * self.out.weight[0, -self.gmf_size:]   # [n_items, g]
        item_const = self.item_bias.weight[:, 0] if self.bias else 0.0
        block = max(1, pair_budget // max(1, n_items * h0))
        rows = []
        for start in range(0, len(users), block):
            ub = users[start:start + block]
            h = (users_first[start:start + block, None, :] + items_first[None]).reshape(-1, h0)
            y = (self.mlp(h) @ w_mlp).reshape(len(ub), n_items) + self.out.bias[0]
            if self.gmf_size:
                ug = self.user_gmf(ub) if hist is None else self.user_gmf(ub) + hist[start:start + block]
                y = y + ug @ item_gmf_w.T
            if self.bias:
                y = y + self.user_bias(ub)[:, None] + item_const
            rows.append(_rescore_seen(self, ub, _output(y, self.y_range)))
        return torch.cat(rows) if rows else users_first.new_zeros(0, n_items)


class DotProductBiasModule(nn.Module):
    """score(u, i) = e_u . e_i + b_u + b_i (then sigmoid_range for ratings)."""

    def __init__(self, n_users: int, n_items: int, emb_size: int = 64, y_range=None, init_std: float = 0.01,
                 sparse: bool = False, history=None, history_alpha: float = 0.5, history_dropout: float = 0.0):
        super().__init__()
        self.y_range = tuple(y_range) if y_range is not None else None
        self.user_emb = Embedding(n_users, emb_size, init_std, sparse)
        self.item_emb = Embedding(n_items, emb_size, init_std, sparse)
        self.user_bias = Bias(n_users, sparse)
        self.item_bias = Bias(n_items, sparse)
        self.history = (History(*history, n_items, emb_size, init_std, sparse, alpha=history_alpha,
                                dropout=history_dropout) if history is not None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, i = x[:, 0], x[:, 1]
        uv = self.user_emb(u)
        if self.history is not None:
            uv = uv + self.history(u, i)
        y = (uv * self.item_emb(i)).sum(1) + self.user_bias(u) + self.item_bias(i)
        return _output(y, self.y_range)

    def catalogue_logits(self, users: torch.Tensor) -> torch.Tensor:
        """Scores (before any y_range) of every item for `users` -> [B, n_items], with gradients (the
        multinomial objective); history dropped out with `history_dropout` in training mode."""
        uv = self.user_emb(users)
        if self.history is not None:
            uv = uv + self.history.user_vectors(users)
        return uv @ self.item_emb.weight.T + self.user_bias(users)[:, None] + self.item_bias.weight[:, 0]

    @torch.no_grad()
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return _rescore_seen(self, users, _output(self.catalogue_logits(users), self.y_range))


# --------------------------------------------------------------------------- recommenders

# Defaults per task, chosen by benchmarks/accuracy.py (see benchmarks/ACCURACY.md); a user gets these
# without tuning. Training keys are read by helpers.train; the rest build the module.
TRAIN_KEYS = ("epochs", "lr", "wd", "batch_size", "neg_ratio", "loss", "seed", "device", "sparse", "progress")


class NeuralRecommender(Recommender):
    """Common fit / score / save logic for the torch models; subclasses define `build_module` and defaults."""

    name = "neural"
    defaults: dict = {}        # task -> {key: value}; per-model; None = filled from loss_defaults at fit time
    loss_defaults: dict = {}   # implicit loss -> {key: value} for keys left None ("bce" also serves softmax / bpr)
    module_keys: tuple = ()    # config keys passed to build_module
    extra_keys: tuple = ()     # other config keys a subclass understands

    def __init__(self, task: str = "implicit", **config):
        from helpers.train import TASKS, check_config

        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {list(TASKS)}")
        allowed = set(self.module_keys) | set(TRAIN_KEYS) | {"y_range"} | set(self.extra_keys)
        full = {**self.defaults[task], **{k: v for k, v in config.items() if v is not None}}
        check_config(full, allowed, what=f"model '{self.name}'")
        if task == "rating" and full.get("y_range") is None:
            full["y_range"] = None  # filled from the data's rating range at fit time
        super().__init__(task=task, **full)
        self.task = task
        self.module: nn.Module | None = None
        self.learn = None          # the fastai Learner of the last fit (not saved)
        self.losses = None         # DataFrame epoch, train_loss, valid_loss (filled by fit)
        self._valid = None

    def supports_catalogue_loss(self) -> bool:
        """Whether this configuration can train with the multinomial objective (a dot-product score)."""
        return True

    def fill_loss_defaults(self) -> None:
        """Fill the config keys left None with `loss_defaults` of the (resolved) loss; called before training."""
        if self.task != "implicit":
            return
        loss = self.config.get("loss") or "bce"
        table = self.loss_defaults.get(loss) or self.loss_defaults.get("bce", {})
        for key, value in table.items():
            if self.config.get(key) is None:
                self.config[key] = value
        missing = [k for k in ("epochs", "lr", "wd", "batch_size") if self.config.get(k) is None]
        if missing:
            raise ValueError(f"model '{self.name}' has no value for {missing} with loss {loss!r}; pass them explicitly")

    # ---------------------------------------------------------------- module
    def module_config(self) -> dict:
        cfg = {k: self.config[k] for k in self.module_keys if k in self.config}
        cfg["y_range"] = self.config.get("y_range") if self.task == "rating" else None
        cfg["sparse"] = bool(self.config.get("sparse", False))
        return cfg

    def build_module(self) -> nn.Module:
        raise NotImplementedError

    # ---------------------------------------------------------------- fitting
    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None) -> "NeuralRecommender":
        """Train on `train` (user_id, item_id[, rating]); `valid` (same columns) gives the per-epoch
        validation loss. With `epochs=0` the module and fastai Learner are built but not trained
        (what `helpers.train.find_lr` uses)."""
        self._valid = valid
        try:
            return super().fit(train)
        finally:
            self._valid = None

    def _fit(self, users, items, ratings):
        from helpers.train import fit_recommender

        if self.task == "rating" and self.config.get("y_range") is None:
            lo, hi = float(ratings.min()), float(ratings.max())
            self.config["y_range"] = [lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)]  # fastai's (0, 5.5) idea
        fit_recommender(self, users, items, ratings, self._valid)

    # ---------------------------------------------------------------- scoring
    def _device(self) -> torch.device:
        return next(self.module.parameters()).device

    def score_users(self, users) -> torch.Tensor:
        self.module.eval()
        u = torch.as_tensor(np.asarray(users, dtype=np.int64), device=self._device())
        return self.module.score_all(u).float().cpu()

    @torch.no_grad()
    def score_pairs(self, users, items, batch_size: int = 1 << 16) -> np.ndarray:
        self.module.eval()
        x = torch.from_numpy(np.stack([np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)], 1))
        out = [self.module(x[s:s + batch_size].to(self._device())).float().cpu()
               for s in range(0, len(x), batch_size)]
        return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)

    def to(self, device) -> "NeuralRecommender":
        """Move the module (e.g. `model.to("cuda")` to score on a GPU after `load_model`)."""
        self.module.to(device)
        return self

    # ---------------------------------------------------------------- persistence
    def _state(self) -> dict:
        return {k: v.detach().cpu() for k, v in self.module.state_dict().items()}

    def _from_state(self, state: dict) -> None:
        self.module = self.build_module()
        self.module.load_state_dict(state)  # RuntimeError on a shape/key mismatch -> clear ValueError in load_model
        self.module.eval()

    def summary(self) -> str:
        """The module's layers and its number of parameters."""
        n = sum(p.numel() for p in self.module.parameters())
        return f"{self.module}\n{self.name}: {n:,} parameters"

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())


@register
class CollabNN(NeuralRecommender):
    """The project's default neural model (see the module docstring for the structure).

    Implicit task, defaults: the GMF branch with the user's item history and biases (`layers=[]`),
    trained with `loss="auto"`: the multinomial objective over the whole catalogue when users x items
    fits `helpers.train.CATALOGUE_BUDGET` (128 factors, 50 epochs of user batches, 70% history dropout),
    else binary cross-entropy against 4 sampled negatives (64 factors, 6 epochs). Measured in
    benchmarks/ACCURACY.md: on the original notebook's split this beats the concat-MLP variants by
    0.02-0.03 NDCG@10 and trains in seconds; the MLP branch (`layers=[64]`) did not pay off there.

    The concat-MLP of the original notebooks: `CollabNN(gmf_size=0, bias=False, history=False, layers=[...])`
    (binary cross-entropy; an MLP over every (user, item) pair is too costly for the catalogue softmax).
    """

    name = "collabnn"
    module_keys = ("emb_size", "layers", "dropout", "batchnorm", "gmf_size", "bias", "init_std", "history",
                   "history_alpha", "history_dropout")
    defaults = {
        "implicit": dict(emb_size=64, layers=[], dropout=0.0, batchnorm=False, gmf_size=None, bias=True,
                         init_std=None, history=True, history_dropout=None, loss="auto", epochs=None, lr=None,
                         wd=None, batch_size=None, neg_ratio=4, seed=0, device="auto", sparse=True, progress=False),
        "rating": dict(emb_size=64, layers=[64], dropout=0.0, batchnorm=False, gmf_size=64, bias=True,
                       init_std=0.01, history=False, epochs=6, lr=5e-3, wd=1.0, batch_size=1024, neg_ratio=4, seed=0,
                       device="auto", sparse=True, progress=False),
    }
    loss_defaults = {
        "multinomial": dict(gmf_size=128, init_std=0.01, history_dropout=0.7, epochs=50, lr=0.01, wd=0.1,
                            batch_size=128),
        "bce": dict(gmf_size=64, init_std=0.1, history_dropout=0.0, epochs=6, lr=0.02, wd=0.6, batch_size=4096),
    }

    def supports_catalogue_loss(self) -> bool:
        return not self.config.get("layers") and self.config.get("gmf_size") != 0

    def build_module(self) -> nn.Module:
        cfg = self.module_config()
        cfg["history"] = (self.seen.indptr, self.seen.indices) if cfg.get("history") else None
        return CollabNNModule(self.n_users, self.n_items, **cfg)


@register
class CollabNNMLP(CollabNN):
    """CollabNN with the seeds' concat-MLP branch (widths [64]) fused with the GMF branch, the history term and
    the biases, trained with binary cross-entropy against 4 sampled negatives: the implicit default of the
    first version, kept by name so the structure the seeds describe is one word away and its cost shows
    beside the default in evaluation.ipynb (on the seed split: HR@10 0.871, NDCG@10 0.641, 31 s)."""

    name = "collabnn_mlp"
    defaults = {"implicit": {**CollabNN.defaults["implicit"], "layers": [64], "loss": "bce"},
                "rating": CollabNN.defaults["rating"]}


@register
class DotProductBias(NeuralRecommender):
    """Matrix factorisation with user and item biases (fastai's DotProductBias)."""

    name = "mf"
    module_keys = ("emb_size", "init_std", "history", "history_alpha", "history_dropout")
    defaults = {
        "implicit": dict(emb_size=64, init_std=None, history=False, history_dropout=None, loss="bce", epochs=None,
                         lr=None, wd=None, batch_size=None, neg_ratio=4, seed=0, device="auto", sparse=True,
                         progress=False),
        "rating": dict(emb_size=50, init_std=0.01, history=False, epochs=5, lr=5e-3, wd=0.1, batch_size=1024, neg_ratio=4,
                       seed=0, device="auto", sparse=True, progress=False),
    }
    loss_defaults = {
        "multinomial": dict(init_std=0.01, history_dropout=0.7, epochs=50, lr=0.01, wd=0.1, batch_size=128),
        "bce": dict(init_std=0.1, history_dropout=0.0, epochs=8, lr=0.02, wd=0.1, batch_size=4096),
    }

    def build_module(self) -> nn.Module:
        cfg = self.module_config()
        cfg["history"] = (self.seen.indptr, self.seen.indices) if cfg.get("history") else None
        return DotProductBiasModule(self.n_users, self.n_items, **cfg)


@register
class NeuMF(CollabNN):
    """NeuMF (He et al. 2017): GMF + MLP fused in one output layer, no biases.

    `pretrain=True` first trains a GMF alone (the MLP branch's output weight frozen at zero) and a
    plain MLP, `pretrain_epochs` each, then starts NeuMF from their weights, its output layer being
    the two output layers weighted 0.5 / 0.5 as in the paper.
    """

    name = "neumf"
    extra_keys = ("pretrain", "pretrain_epochs")
    defaults = {
        task: {**cfg, "layers": [128, 64, 32], "emb_size": 32, "gmf_size": 32, "bias": False, "history": False,
               "pretrain": False, "pretrain_epochs": None, **({"loss": "bce"} if task == "implicit" else {})}
        for task, cfg in CollabNN.defaults.items()
    }
    loss_defaults = {"bce": {**CollabNN.loss_defaults["bce"], "gmf_size": 32}}

    def fill_loss_defaults(self) -> None:
        super().fill_loss_defaults()
        if self.config.get("pretrain_epochs") is None:
            self.config["pretrain_epochs"] = self.config["epochs"]

    def _fit(self, users, items, ratings):
        if not self.config.get("pretrain"):
            return super()._fit(users, items, ratings)
        self.fill_loss_defaults()
        from helpers.train import fit_recommender

        if self.task == "rating" and self.config.get("y_range") is None:
            lo, hi = float(ratings.min()), float(ratings.max())
            self.config["y_range"] = [lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)]
        parts = {}
        for part, overrides in (("gmf", {}), ("mlp", {"gmf_size": 0})):
            cfg = {k: v for k, v in self.config.items() if k not in ("pretrain", "pretrain_epochs")}
            sub = CollabNN(**{**cfg, "bias": False, "epochs": self.config["pretrain_epochs"], **overrides})
            sub.user_ids, sub.item_ids, sub.seen = self.user_ids, self.item_ids, self.seen
            if part == "gmf":
                # a GMF alone: the MLP branch exists but its output weight is frozen at zero
                sub._freeze_mlp = True
            fit_recommender(sub, users, items, ratings, self._valid)
            parts[part] = sub.module
        self._init_from = parts
        fit_recommender(self, users, items, ratings, self._valid)
        self._init_from = None

    def build_module(self) -> nn.Module:
        module = super().build_module()
        init = getattr(self, "_init_from", None)
        if init:
            gmf, mlp = init["gmf"], init["mlp"]
            with torch.no_grad():
                module.user_gmf.weight.copy_(gmf.user_gmf.weight)
                module.item_gmf.weight.copy_(gmf.item_gmf.weight)
                mlp_state = {k: v for k, v in mlp.state_dict().items() if not k.startswith("out.")}
                module.load_state_dict(mlp_state, strict=False)
                n_mlp = mlp.out.in_features
                module.out.weight[0, :n_mlp] = 0.5 * mlp.out.weight[0]
                module.out.weight[0, n_mlp:] = 0.5 * gmf.out.weight[0, -module.gmf_size:]
                module.out.bias[0] = 0.5 * (mlp.out.bias[0] + gmf.out.bias[0])
        return module


MODELS = {cls.name: cls for cls in (CollabNN, CollabNNMLP, DotProductBias, NeuMF)}
DEFAULT_MODEL = "collabnn"


def n_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of a torch module."""
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


__all__ = ["Embedding", "Bias", "CollabNNModule", "DotProductBiasModule", "NeuralRecommender", "CollabNN", "CollabNNMLP",
           "DotProductBias", "NeuMF", "MODELS", "DEFAULT_MODEL", "n_parameters"]
