"""CollabNN, the project's neural model ("collabnn", and "collabnn_mlp" with the original notebook's concat-MLP
branch).

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
  repository's earlier implicit default).
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
import pandas as pd
import torch
from torch import nn

from helpers.data.features import FeatureTable, feature_table
from helpers.models.collabnn_module import CollabNNModule
from helpers.models.item_item import MAX_ITEMS, ItemItemBranch
from helpers.models.neural import NeuralRecommender
from helpers.models.registry import register


@register
class CollabNN(NeuralRecommender):
    """The project's default neural model (see the module docstring for the structure).

    Implicit task, defaults: the GMF branch with the user's item history and biases (`layers=[]`),
    trained with `loss="auto"`: the multinomial objective over the whole catalogue when users x items
    fits `helpers.training.CATALOGUE_BUDGET` (128 factors, at most 50 epochs of user batches, 70% history
    dropout; a sampled softmax on large catalogues, `catalogue_samples`, see
    `helpers.training.losses.resolve_catalogue_samples`), else binary cross-entropy against 4 sampled
    negatives (64 factors, 6 epochs); plus a frozen
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
                   "history_alpha", "history_dropout", "user_id_dropout")
    extra_keys = ("item_item", "item_item_lambda", "item_item_weight", "item_item_max_items", "features",
                  "min_user_interactions")
    defaults = {
        "implicit": dict(emb_size=64, layers=[], dropout=0.0, batchnorm=False, gmf_size=None, bias=True,
                         init_std=None, history=True, history_dropout=None, loss="auto", epochs=None, lr=None,
                         wd=None, batch_size=None, neg_ratio=4, seed=0, device="auto", sparse=True, progress=False,
                         item_item=True, item_item_lambda=None, item_item_weight=0.4, item_item_max_items=MAX_ITEMS,
                         features=False, min_user_interactions=2, user_id_dropout=0.0),
        "rating": dict(emb_size=64, layers=[64], dropout=0.0, batchnorm=False, gmf_size=64, bias=True,
                       init_std=0.01, history=False, epochs=6, lr=5e-3, wd=1.0, batch_size=1024, neg_ratio=4, seed=0,
                       device="auto", sparse=True, progress=False, item_item=False, features=False,
                       min_user_interactions=1, user_id_dropout=0.0),
    }
    item_item: ItemItemBranch | None = None
    side: dict | None = None   # "user" / "item" -> FeatureTable of the training data (features=True)
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
        cfg["user_rows"] = self.user_rows()
        side = self.side or {}
        for kind, ids in (("user", self.user_ids), ("item", self.item_ids)):
            table = side.get(kind)
            cfg[f"{kind}_features"] = (*table.rows(ids), table.n_tokens) if table is not None else None
        return CollabNNModule(self.n_users, self.n_items, **cfg)

    # ---------------------------------------------------------------- side features, rare and cold users
    def user_rows(self) -> np.ndarray | None:
        """Row of each user in the user tables: users with fewer than `min_user_interactions` training
        interactions share row 0 (on Electronics, 92% of the users rated once: one shared vector instead of a
        million, their history and features carry what is known of them). None when every user has a row and
        `user_id_dropout` is 0; otherwise row 0 is also the id vector of users unknown to training."""
        least = int(self.config.get("min_user_interactions") or 1)
        own = np.diff(self.seen.indptr) >= least
        if own.all() and not self.config.get("user_id_dropout"):
            return None  # every user has a row and none is dropped: the identity, no shared row
        return np.where(own, np.cumsum(own), 0).astype(np.int64)

    def index_training_data(self, train):
        out = super().index_training_data(train)
        self.side = ({kind: feature_table(train, kind) for kind in ("user", "item")}
                     if self.config.get("features") else None)
        return out

    def user_feature_codes(self, users: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(user ids, CSR indptr, indices) of the feature tokens of the users in `users` (user_id + feature columns;
        one row per user or per interaction), against the training vocabulary (no table: no tokens)."""
        table = (self.side or {}).get("user")
        if table is None:
            ids = pd.unique(users["user_id"].astype(str).to_numpy())
            return np.asarray(ids, dtype=str), np.zeros(len(ids) + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return table.encode(users)

    def scores_cold_users(self) -> bool:
        """Whether users unknown to training get scores of their own (side features or the shared row of rare
        users) rather than the popularity fallback."""
        if self.module is None or self.module.has_mlp:  # the concat-MLP has no shared-row path: popularity
            return False
        return self.module.user_features is not None or self.module.user_rows is not None

    def score_new_users(self, users: pd.DataFrame) -> torch.Tensor:
        if not self.scores_cold_users():
            return super().score_new_users(users)
        ids, indptr, indices = self.user_feature_codes(users)
        self.module.eval()
        # users with the same tokens get the same scores: score each distinct token set once (Electronics' cold
        # users: three, female, male and unknown)
        keys = [tuple(indices[a:b]) for a, b in zip(indptr[:-1], indptr[1:])]
        distinct, inverse = np.unique(np.array([",".join(map(str, k)) for k in keys], dtype=object), return_inverse=True)
        first = np.unique(inverse, return_index=True)[1]
        lens = np.diff(indptr)[first]
        sub_indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        sub_indices = np.concatenate([indices[indptr[i]:indptr[i + 1]] for i in first]).astype(np.int64) \
            if lens.sum() else np.zeros(0, dtype=np.int64)
        factor = self.module.new_user_logits(sub_indptr, sub_indices).float().cpu()[torch.from_numpy(inverse)]
        if self.item_item is None:
            return factor
        return float(self.config["item_item_weight"]) * factor  # no history: the item-item branch adds nothing

    def score_new_items(self, users, items: pd.DataFrame) -> torch.Tensor | None:
        table = (self.side or {}).get("item")
        if table is None or self.module is None:
            return super().score_new_items(users, items)
        _, indptr, indices = table.encode(items)
        self.module.eval()
        u = torch.as_tensor(np.asarray(users, dtype=np.int64), device=self._device())
        factor = self.module.new_item_logits(u, indptr, indices).float().cpu()
        return float(self.config["item_item_weight"]) * factor if self.item_item is not None else factor

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

    def history_contributions(self, user, items):
        """Exact for the implicit default: the factor branch's history term (`history_decomposition`) weighted by
        `item_item_weight`, plus the item-item branch's scale * W[j, i] for history items j; None with the MLP
        branch or for the rating task (see `Recommender.history_contributions`)."""
        self.module.eval()
        items = np.asarray(items, dtype=np.int64)
        parts = self.module.history_decomposition(int(user), torch.from_numpy(items).to(self._device()))
        if parts is None or (self.module.history is None and self.item_item is None):
            return None
        hist = self.seen[int(user)].indices.astype(np.int64)
        factor_hist, factor, rest = (p.cpu().numpy() for p in parts)
        contributions = np.zeros((len(items), len(hist)), dtype=np.float32)
        if len(factor_hist):  # the History buffers are the model's `seen`: the same items in the same order
            contributions += factor
        if self.item_item is None:
            return hist, contributions, rest.astype(np.float32)
        weight = float(self.config["item_item_weight"])
        contributions *= weight
        position = self.item_item._position
        src, dst = position[hist], position[items]
        rows, cols = np.flatnonzero(dst >= 0), np.flatnonzero(src >= 0)
        block = self.item_item.weights.numpy()[np.ix_(src[cols], dst[rows])].T * np.float32(self.item_item.scale)
        contributions[np.ix_(rows, cols)] += block
        return hist, contributions, (weight * rest).astype(np.float32)

    def _state(self) -> dict:
        state = super()._state()
        if self.item_item is not None:
            state.update({f"item_item.{k}": v for k, v in self.item_item.state().items()})
        for kind, table in (self.side or {}).items():
            if table is not None:
                state[f"side.{kind}"] = table.state()
        return state

    def _from_state(self, state: dict) -> None:
        branch = {k.removeprefix("item_item."): v for k, v in state.items() if k.startswith("item_item.")}
        self.side = ({kind: FeatureTable.from_state(state[f"side.{kind}"]) if f"side.{kind}" in state else None
                      for kind in ("user", "item")} if self.config.get("features") else None)
        super()._from_state({k: v for k, v in state.items() if not k.startswith(("item_item.", "side."))})
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
    """CollabNN with the original notebook's concat-MLP branch (widths [64]) fused with the GMF branch, the history term and
    the biases, trained with binary cross-entropy against 4 sampled negatives: the implicit default of the
    repository's first version, kept by name so the structure the original notebook describes is one word away and its cost shows
    beside the default in evaluation.ipynb (on the seed split: HR@10 0.871, NDCG@10 0.641, 31 s)."""
    name = "collabnn_mlp"
    defaults = {"implicit": {**CollabNN.defaults["implicit"], "layers": [64], "loss": "bce", "item_item": False},
                "rating": CollabNN.defaults["rating"]}



@register
class CollabNNFeatures(CollabNN):
    """The default CollabNN with its side features on (`features=True`): user gender / age group / occupation and
    item genres or category / brand / product-image segment / year as embeddings of their own, so cold users and
    cold items are scored from their features (benchmarks/logs/cold_start.md); evaluated beside the default."""
    name = "collabnn_features"
    defaults = {"implicit": {**CollabNN.defaults["implicit"], "features": True},
                "rating": CollabNN.defaults["rating"]}
