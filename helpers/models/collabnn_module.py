"""The torch module of CollabNN (`helpers.models.collabnn`): GMF + history + biases + side features, and the
optional concat-MLP branch; scores of pairs, of the whole catalogue, and of users and items unknown to training.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from helpers.models.layers import Bias, Embedding, FeatureBag, History, output_activation
from helpers.models.layers import rescore_seen as rescore_history_items


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
                 history_dropout: float = 0.0, user_rows=None, user_features=None, item_features=None,
                 user_id_dropout: float = 0.0):
        super().__init__()
        layers = [int(w) for w in (layers or [])]
        if (user_features is not None or item_features is not None) and (layers or not gmf_size):
            raise ValueError("side features join the GMF branch: use them with layers=[] and gmf_size > 0 "
                             "(the implicit default), or turn them off with features=False")
        # users -> rows of the user tables (shared row 0 for users too rare for a row of their own); None: one each
        if user_rows is not None:
            self.register_buffer("user_rows", torch.as_tensor(np.asarray(user_rows, dtype=np.int64)), persistent=False)
            n_user_rows = int(self.user_rows.max()) + 1 if len(self.user_rows) else 1
        else:
            self.user_rows, n_user_rows = None, n_users
        self.user_id_dropout = float(user_id_dropout)
        n_users = n_user_rows
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
        self.user_features = FeatureBag(*user_features, self.gmf_size, init_std) if user_features is not None else None
        self.item_features = FeatureBag(*item_features, self.gmf_size, init_std) if item_features is not None else None

    def rows(self, users: torch.Tensor) -> torch.Tensor:
        """Rows of the user tables: the user's own, or the shared row 0; in training, `user_id_dropout` of the
        users of a batch are given the shared row, so that the feature and history terms learn to stand alone."""
        rows = users if self.user_rows is None else self.user_rows[users]
        if self.training and self.user_id_dropout > 0 and self.user_rows is not None:
            rows = torch.where(torch.rand(len(rows), device=rows.device) < self.user_id_dropout,
                               torch.zeros_like(rows), rows)
        return rows

    def user_vector(self, users: torch.Tensor, hist=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(GMF user vector [B, g], user bias [B]) of known users: id row + history + side features."""
        rows = self.rows(users)
        ug = self.user_gmf(rows)
        if hist is not None:
            ug = ug + hist
        bias = self.user_bias(rows) if self.bias else ug.new_zeros(len(users))
        if self.user_features is not None:
            vec, b = self.user_features(users)
            ug, bias = ug + vec, bias + b
        return ug, bias

    def item_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(GMF item vectors [n_items, g], item biases [n_items]) of the catalogue: id row + side features."""
        items = self.item_gmf.weight
        bias = self.item_bias.weight[:, 0] if self.bias else items.new_zeros(len(items))
        if self.item_features is not None:
            vec, b = self.item_features.all()
            items, bias = items + vec, bias + b
        return items, bias

    def item_vector(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        vec = self.item_gmf(items)
        bias = self.item_bias(items) if self.bias else vec.new_zeros(len(items))
        if self.item_features is not None:
            v, b = self.item_features(items)
            vec, bias = vec + v, bias + b
        return vec, bias

    def new_user_vectors(self, indptr, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """(vector, bias) of users unknown to training, from the shared row and their feature tokens (CSR)."""
        n = len(indptr) - 1
        shared = torch.zeros(n, dtype=torch.long, device=self.item_gmf.weight.device)
        ug = self.user_gmf(shared) if self.user_rows is not None else self.item_gmf.weight.new_zeros(n, self.gmf_size)
        bias = self.user_bias(shared) if (self.bias and self.user_rows is not None) else ug.new_zeros(n)
        if self.user_features is not None:
            vec, b = self.user_features.of_csr(indptr, indices)
            ug, bias = ug + vec, bias + b
        return ug, bias

    @torch.no_grad()
    def new_user_logits(self, indptr, indices) -> torch.Tensor:
        """Scores of every item for users unknown to training, given their feature tokens -> [n, n_items]."""
        ug, ub = self.new_user_vectors(indptr, indices)
        items, ib = self.item_table()
        return (ug * self.out.weight[0]) @ items.T + self.out.bias[0] + ub[:, None] + ib

    @torch.no_grad()
    def new_item_logits(self, users: torch.Tensor, indptr, indices) -> torch.Tensor:
        """Scores of items unknown to training, from their feature tokens alone, for known `users` ->
        [len(users), n_new] (zeros plus the user's terms when the model has no item features)."""
        n = len(indptr) - 1
        if self.item_features is not None:
            iv, ib = self.item_features.of_csr(indptr, indices)
        else:
            iv, ib = self.item_gmf.weight.new_zeros(n, self.gmf_size), self.item_gmf.weight.new_zeros(n)
        hist = self.history.sums(users)[0] if self.history is not None else None
        ug, ub = self.user_vector(users, hist)
        return (ug * self.out.weight[0]) @ iv.T + self.out.bias[0] + ub[:, None] + ib

    @torch.no_grad()
    def history_decomposition(self, user: int, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """The dot-product score of `items` for one known `user`, split over the user's history (eval mode):
        (history items [h], contributions [len(items), h], rest [len(items)]), score = contributions.sum(1) + rest
        for items outside the history. The history term |N(u)|^-alpha sum_j y_j enters the user vector linearly,
        so item j adds |N(u)|^-alpha (y_j * w) . v_i; the rest is the bias terms and the user's own id and
        feature vectors. None with an MLP branch (not linear in the history), a y_range (the rating squash) or
        no dot-product branch."""
        if self.has_mlp or self.y_range is not None or not self.gmf_size:
            return None
        u = torch.tensor([int(user)], device=self.item_gmf.weight.device)
        own, user_bias = self.user_vector(u, None)
        vectors, item_bias = self.item_table()
        weighted = vectors[items] * self.out.weight[0]                     # [len(items), g]
        rest = weighted @ own[0] + user_bias[0] + item_bias[items] + self.out.bias[0]
        if self.history is None:
            return items.new_zeros(0), weighted.new_zeros(len(items), 0), rest
        _, hist = self.history.seen_pairs(u)
        scale = max(len(hist), 1) ** -self.history.alpha
        return hist, scale * (weighted @ self.history.emb.weight[hist].T), rest

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
            ue = self.user_emb(self.rows(u))
            if hist is not None and not self.gmf_size:
                ue = ue + hist
            h = self.mlp(self.user_proj(ue) + self.item_proj(self.item_emb(i)))
            y = y + h @ self.out.weight[0, :n_mlp]
        if self.gmf_size:
            ug, ub = self.user_vector(u, hist)
            ig, ib = self.item_vector(i)
            y = y + (ug * ig) @ self.out.weight[0, n_mlp:] + ub + ib
        elif self.bias:
            y = y + self.user_bias(self.rows(u)) + self.item_bias(i)
        return output_activation(y, self.y_range)

    def catalogue_logits(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (before any y_range) of every item, or of `items` only, for `users` -> [B, n_items] (or
        [B, len(items)]), with gradients: what the multinomial objective trains (helpers.training; `items`:
        a sampled softmax's candidates, looked up through the embeddings so that their gradients stay sparse).
        In training mode the user's history is dropped out with `history_dropout`; a user's own items are not
        left out of their history (the dropout is the denoising). Needs the dot-product form: no MLP branch
        (`layers=[]`)."""
        if self.has_mlp:
            raise ValueError("the multinomial objective needs a CollabNN without the MLP branch (layers=[]): "
                             "an MLP over every (user, item) pair of the catalogue is too costly; use loss='bce'")
        hist = self.history.user_vectors(users) if self.history is not None else None
        ug, ub = self.user_vector(users, hist)
        table, ib = self.item_table() if items is None else self.item_vector(items)
        return (ug * self.out.weight[0]) @ table.T + self.out.bias[0] + ub[:, None] + ib

    @torch.no_grad()
    def score_all(self, users: torch.Tensor, pair_budget: int = 1 << 24, rescore_seen: bool = True) -> torch.Tensor:
        """Scores of every item for `users` (LongTensor [B]) -> [B, n_items]; eval mode expected.

        The user and item halves of the first layer are computed once each and broadcast; users
        are processed in blocks so that a block holds at most `pair_budget` hidden activations.
        """
        rescore = rescore_history_items if rescore_seen else (lambda module, ub, scores: scores)
        if not self.has_mlp:
            return rescore(self, users, output_activation(self.catalogue_logits(users), self.y_range))
        hist = self.history.user_vectors(users) if self.history is not None else None
        ue = self.user_emb(self.rows(users))
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
                ug = self.user_gmf(self.rows(ub)) if hist is None else self.user_gmf(self.rows(ub)) + hist[start:start + block]
                y = y + ug @ item_gmf_w.T
            if self.bias:
                y = y + self.user_bias(self.rows(ub))[:, None] + item_const
            rows.append(rescore(self, ub, output_activation(y, self.y_range)))
        return torch.cat(rows) if rows else users_first.new_zeros(0, n_items)
