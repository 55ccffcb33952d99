"""CollabNN, the project's neural model ("collabnn", and "collabnn_mlp" with the seeds' concat-MLP branch).

The four neural `Recommender`s (this module, `helpers.models.mf`, `helpers.models.neumf`) share one
training path, `helpers.training.fit` (fastai's Learner):

- "collabnn" (`CollabNN`, the project's default): user and item embeddings from our own
  `Embedding` module; a GMF (dot-product) branch whose user vector adds the user's item history
  (`History`, FISM / SVD++ style), user/item biases, and optionally the concat-MLP branch (widths
  `layers`, dropout, optional batch norm) fused NeuMF-style. Implicit default: no MLP branch, trained
  with the multinomial objective over the catalogue (`helpers.training`, `loss="auto"`); rating default:
  the MLP[64] branch with GMF and biases. `gmf_size=0, bias=False, history=False, layers=[...]` is the
  plain concat-MLP of the original notebooks.
- "collabnn_mlp" (`CollabNNMLP`): CollabNN with the concat-MLP[64] branch, trained with BCE (the
  first version's implicit default).
- "mf" (`DotProductBias`): matrix factorisation with user and item biases (fastai's DotProductBias).
- "neumf" (`NeuMF`): GMF + MLP as in the NCF paper (He et al. 2017), optionally initialised from a
  GMF and an MLP trained first (`pretrain=True`).

Outputs: task "rating" -> `sigmoid_range(x, *y_range)`; task "implicit" -> a logit (higher = more
likely), trained with the multinomial likelihood over the catalogue or with binary cross-entropy
against negatives re-drawn every epoch (see helpers.training).

Fast full ranking: the first MLP layer on concat(u, i) is W [u; i] + b = W_u u + (W_i i + b), so it
is computed once per user and once per item (`user_proj`, `item_proj`), never per (user, item) pair
in Python; `score_users` broadcasts the two parts over blocks of users x all items.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from helpers.models.item_item import MAX_ITEMS, ItemItemBranch
from helpers.models.layers import Bias, Embedding, History, output_activation
from helpers.models.layers import rescore_seen as rescore_history_items
from helpers.models.neural import NeuralRecommender
from helpers.models.registry import register


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
        return output_activation(y, self.y_range)

    def catalogue_logits(self, users: torch.Tensor) -> torch.Tensor:
        """Scores (before any y_range) of every item for `users` -> [B, n_items], with gradients: what the
        multinomial objective trains (helpers.training). In training mode the user's history is dropped
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
    def score_all(self, users: torch.Tensor, pair_budget: int = 1 << 24, rescore_seen: bool = True) -> torch.Tensor:
        """Scores of every item for `users` (LongTensor [B]) -> [B, n_items]; eval mode expected.

        The user and item halves of the first layer are computed once each and broadcast; users
        are processed in blocks so that a block holds at most `pair_budget` hidden activations.
        """
        rescore = rescore_history_items if rescore_seen else (lambda module, ub, scores: scores)
        if not self.has_mlp:
            return rescore(self, users, output_activation(self.catalogue_logits(users), self.y_range))
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
            rows.append(rescore(self, ub, output_activation(y, self.y_range)))
        return torch.cat(rows) if rows else users_first.new_zeros(0, n_items)


@register
class CollabNN(NeuralRecommender):
    """The project's default neural model (see the module docstring for the structure).

    Implicit task, defaults: the GMF branch with the user's item history and biases (`layers=[]`),
    trained with `loss="auto"`: the multinomial objective over the whole catalogue when users x items
    fits `helpers.training.CATALOGUE_BUDGET` (128 factors, at most 50 epochs of user batches, 70% history
    dropout), else binary cross-entropy against 4 sampled negatives (64 factors, 6 epochs); plus a frozen
    item-item branch (`item_item=True`, `helpers.models.item_item.ItemItemBranch`: EASE weights over the
    10,000 most popular items, solved in closed form before the gradient training, on the logit scale of
    the catalogue softmax). The two branches are added when scoring, the factor logits weighted by
    `item_item_weight` (0.4), as NeuMF adds its GMF and MLP branches; the factor branch trains on its own
    objective, and early stopping follows the validation NDCG@10 of the sum. Chosen on validation
    (benchmarks/logs/hybrid_design.md): training the two jointly, or fine-tuning the EASE weights, fell
    below EASE alone; added after separate training they beat a tuned EASE on both protocols tried.
    `item_item=False` ("collabnn_factor") is the factor branch alone.

    The concat-MLP of the original notebooks: `CollabNN(gmf_size=0, bias=False, history=False, layers=[...])`
    (binary cross-entropy; an MLP over every (user, item) pair is too costly for the catalogue softmax).
    """
    name = "collabnn"
    module_keys = ("emb_size", "layers", "dropout", "batchnorm", "gmf_size", "bias", "init_std", "history",
                   "history_alpha", "history_dropout")
    extra_keys = ("item_item", "item_item_lambda", "item_item_weight", "item_item_max_items")
    defaults = {
        "implicit": dict(emb_size=64, layers=[], dropout=0.0, batchnorm=False, gmf_size=None, bias=True,
                         init_std=None, history=True, history_dropout=None, loss="auto", epochs=None, lr=None,
                         wd=None, batch_size=None, neg_ratio=4, seed=0, device="auto", sparse=True, progress=False,
                         item_item=True, item_item_lambda=None, item_item_weight=0.4, item_item_max_items=MAX_ITEMS),
        "rating": dict(emb_size=64, layers=[64], dropout=0.0, batchnorm=False, gmf_size=64, bias=True,
                       init_std=0.01, history=False, epochs=6, lr=5e-3, wd=1.0, batch_size=1024, neg_ratio=4, seed=0,
                       device="auto", sparse=True, progress=False, item_item=False),
    }
    item_item: ItemItemBranch | None = None
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

    # ---------------------------------------------------------------- the item-item branch
    def uses_item_item(self) -> bool:
        return self.task == "implicit" and bool(self.config.get("item_item"))

    def prepare(self) -> dict:
        """Fit the item-item branch on the training interactions (`seen`) before the gradient training."""
        if not self.uses_item_item():
            self.item_item = None
            return {}
        cfg = self.config
        self.item_item = ItemItemBranch.fitted(self.seen, cfg.get("item_item_lambda"),
                                               int(cfg.get("item_item_max_items") or MAX_ITEMS), seed=int(cfg["seed"]))
        return {"item_item": {"lambda": self.item_item.lambda_, "scale": self.item_item.scale,
                              "items": int(len(self.item_item.items)), "weight": float(cfg["item_item_weight"])}}

    def monitored_scores(self, users) -> torch.Tensor:
        """Early stopping follows the factor branch, the part being trained: the validation NDCG@10 of the sum
        dips for a dozen epochs or more while the factor branch is still poor (stopping there would keep
        EASE alone), and the epoch chosen on the factor branch is also a good one for the sum
        (benchmarks/logs/hybrid_design.md)."""
        return super().score_users(users, rescore_seen=False)

    def score_users(self, users, rescore_seen: bool = True) -> torch.Tensor:
        factor = super().score_users(users, rescore_seen=rescore_seen)
        if self.item_item is None:
            return factor
        rows = self.seen[np.asarray(users, dtype=np.int64)]
        return float(self.config["item_item_weight"]) * factor + self.item_item.user_scores(rows)

    def score_pairs(self, users, items, batch_size: int = 1 << 16) -> np.ndarray:
        factor = super().score_pairs(users, items, batch_size)
        if self.item_item is None:
            return factor
        return float(self.config["item_item_weight"]) * factor + self.item_item.pair_scores(self.seen, users, items)

    def _state(self) -> dict:
        state = super()._state()
        if self.item_item is not None:
            state.update({f"item_item.{k}": v for k, v in self.item_item.state().items()})
        return state

    def _from_state(self, state: dict) -> None:
        branch = {k.removeprefix("item_item."): v for k, v in state.items() if k.startswith("item_item.")}
        super()._from_state({k: v for k, v in state.items() if not k.startswith("item_item.")})
        if self.uses_item_item() and not branch:
            raise KeyError("item_item branch missing")
        self.item_item = ItemItemBranch.from_state(branch, self.n_items) if branch else None


@register
class CollabNNFactor(CollabNN):
    """CollabNN without the item-item branch: the factor branch alone (GMF + history + biases, multinomial),
    the implicit default before the branch was added; evaluated beside the default."""
    name = "collabnn_factor"
    defaults = {"implicit": {**CollabNN.defaults["implicit"], "item_item": False},
                "rating": CollabNN.defaults["rating"]}


@register
class CollabNNMLP(CollabNN):
    """CollabNN with the seeds' concat-MLP branch (widths [64]) fused with the GMF branch, the history term and
    the biases, trained with binary cross-entropy against 4 sampled negatives: the implicit default of the
    first version, kept by name so the structure the seeds describe is one word away and its cost shows
    beside the default in evaluation.ipynb (on the seed split: HR@10 0.871, NDCG@10 0.641, 31 s)."""
    name = "collabnn_mlp"
    defaults = {"implicit": {**CollabNN.defaults["implicit"], "layers": [64], "loss": "bce", "item_item": False},
                "rating": CollabNN.defaults["rating"]}

