"""Matrix factorisation with user and item biases (fastai's DotProductBias), registered as "mf".
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from helpers.models.layers import Bias, Embedding, History, output_activation
from helpers.models.layers import rescore_seen as rescore_history_items
from helpers.models.neural import NeuralRecommender
from helpers.models.registry import register


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
        return output_activation(y, self.y_range)

    def catalogue_logits(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (before any y_range) of every item, or of `items` only (a sampled softmax's candidates), for
        `users` -> [B, n_items] (or [B, len(items)]), with gradients (the multinomial objective); history
        dropped out with `history_dropout` in training mode."""
        uv = self.user_emb(users)
        if self.history is not None:
            uv = uv + self.history.user_vectors(users)
        if items is None:
            return uv @ self.item_emb.weight.T + self.user_bias(users)[:, None] + self.item_bias.weight[:, 0]
        return uv @ self.item_emb(items).T + self.user_bias(users)[:, None] + self.item_bias(items)

    @torch.no_grad()
    def history_decomposition(self, user: int, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """As `CollabNNModule.history_decomposition`: the score split over the user's history items (implicit
        task, items outside the history); None for the rating task (the squash is not linear)."""
        if self.y_range is not None:
            return None
        u = torch.tensor([int(user)], device=self.item_emb.weight.device)
        vectors = self.item_emb.weight[items]
        rest = vectors @ self.user_emb(u)[0] + self.user_bias(u)[0] + self.item_bias.weight[items, 0]
        if self.history is None:
            return items.new_zeros(0), vectors.new_zeros(len(items), 0), rest
        _, hist = self.history.seen_pairs(u)
        scale = max(len(hist), 1) ** -self.history.alpha
        return hist, scale * (vectors @ self.history.emb.weight[hist].T), rest

    @torch.no_grad()
    def score_all(self, users: torch.Tensor, rescore_seen: bool = True) -> torch.Tensor:
        scores = output_activation(self.catalogue_logits(users), self.y_range)
        return rescore_history_items(self, users, scores) if rescore_seen else scores


@register
class DotProductBias(NeuralRecommender):
    """Matrix factorisation with user and item biases (fastai's DotProductBias)."""
    name = "mf"
    module_keys = ("emb_size", "init_std", "history", "history_alpha", "history_dropout")
    defaults = {
        "implicit": dict(emb_size=64, init_std=None, history=False, history_dropout=None, loss="bce", epochs=None,
                         lr=None, wd=None, batch_size=None, neg_ratio=4, seed=0, device="auto", sparse=True,
                         progress=False),
        "rating": dict(emb_size=50, init_std=0.01, history=False, epochs=12, lr=5e-3, wd=0.1, batch_size=1024, neg_ratio=4,
                       seed=0, device="auto", sparse=True, progress=False),
    }
    loss_defaults = {
        "multinomial": dict(init_std=0.01, history_dropout=0.7, epochs=50, lr=0.01, wd=0.1, batch_size=128),
        "bce": dict(init_std=0.1, history_dropout=0.0, epochs=8, lr=0.02, wd=0.1, batch_size=4096),
    }

    def history_contributions(self, user, items):
        """Exact with the history term on (`history=True`, implicit task); None otherwise (the user vector is a
        free id vector, nothing in it is the history's)."""
        self.module.eval()
        if self.module.history is None:
            return None
        items = np.asarray(items, dtype=np.int64)
        parts = self.module.history_decomposition(int(user), torch.from_numpy(items).to(self._device()))
        if parts is None:
            return None
        _, contributions, rest = (p.cpu().numpy().astype(np.float32) for p in parts)
        return self.seen[int(user)].indices.astype(np.int64), contributions, rest

    def build_module(self) -> nn.Module:
        cfg = self.module_config()
        cfg["history"] = (self.seen.indptr, self.seen.indices) if cfg.get("history") else None
        return DotProductBiasModule(self.n_users, self.n_items, **cfg)

