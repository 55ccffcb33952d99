"""The common part of the torch models: validated per-task config, scoring, save / load.

Training is not here: `helpers.training.fit(model, train, valid)` builds the fastai Learner for a
`NeuralRecommender` and runs it (models never train themselves). The per-task defaults were chosen
by benchmarks/accuracy.py (benchmarks/ACCURACY.md); keys left None are filled at training time from
the model's `loss_defaults` for the loss that `loss="auto"` resolves to.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from helpers.data.interactions import encode_ids
from helpers.models.base import TASKS, Recommender, check_config

# Defaults per task, chosen by benchmarks/accuracy.py (see benchmarks/ACCURACY.md); a user gets these
# without tuning. Training keys are read by helpers.training; the rest build the module.
TRAIN_KEYS = ("epochs", "lr", "wd", "batch_size", "neg_ratio", "loss", "seed", "device", "sparse", "progress",
              "early_stopping", "patience", "validation", "catalogue_samples", "refit")

# Model selection, shared by every neural model (helpers.training): the epoch is chosen on validation NDCG@10
# (RMSE for ratings), stopping after `patience` epochs without a better one (None: the model's loss_defaults,
# else DEFAULT_PATIENCE); `epochs` is then the most a fit takes. `validation`: how the validation part is
# carved out of train when none is given (helpers.data.validation_split: "auto" (global when most users have one
# interaction, else random) | "random" | "global" | "leave_one_out" | "temporal"). `refit`: after the epoch is chosen
# on a carved validation part, train again on all of train (True) or keep the weights of the chosen epoch, carried
# over onto all of train's users, items and histories (False: `NeuralRecommender.adopt_weights`; 0.66-0.84x the
# fit time, tied on three of four protocols' outer validation parts and 0.0046 NDCG@10 below on the seed split's
# leave-one-out: benchmarks/logs/refit.md, so the refit is the default).
SELECTION_DEFAULTS = {"early_stopping": True, "patience": None, "validation": "auto", "refit": True}
DEFAULT_PATIENCE = 5

# The numeric training options and their allowed ranges: (smallest, whether the smallest is allowed, integer).
# epochs 0 builds the module and Learner without training (what find_lr uses); the command line asks for >= 1.
OPTION_RANGES = {"epochs": (0, True, True), "batch_size": (1, True, True), "neg_ratio": (1, True, True),
                 "patience": (1, True, True), "seed": (0, True, True), "lr": (0.0, False, False),
                 "wd": (0.0, True, False), "catalogue_samples": (0, True, True)}


# The tables of the modules indexed by user row, item or side-feature token (state-dict prefix -> index space): what
# `NeuralRecommender.adopt_weights` maps by id; every other parameter is copied as it is.
TABLE_SPACES = {"user_emb": "user", "user_gmf": "user", "user_bias": "user", "item_emb": "item", "item_gmf": "item",
                "item_bias": "item", "history.emb": "item", "user_features.emb": "user_token",
                "user_features.bias": "user_token", "item_features.emb": "item_token", "item_features.bias": "item_token"}


def check_options(config: dict, what: str) -> None:
    """Raise a one-line ValueError for a training option out of its range (`OPTION_RANGES`) or a switch that is
    not a bool, naming it."""
    if "refit" in config and not isinstance(config["refit"], (bool, np.bool_)):
        raise ValueError(f"{what}: refit must be True or False, got {config['refit']!r}")
    for key, (low, closed, integer) in OPTION_RANGES.items():
        value = config.get(key)
        if value is None:
            continue
        kind = "an integer" if integer else "a number"
        ok_type = (isinstance(value, (int, np.integer)) and not isinstance(value, bool)) if integer else (
            isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool))
        if not ok_type or not np.isfinite(float(value)) or (value < low if closed else value <= low):
            raise ValueError(f"{what}: {key} must be {kind} {'>=' if closed else '>'} {low:g}, got {value!r}")


class NeuralRecommender(Recommender):
    """Common fit / score / save logic for the torch models; subclasses define `build_module` and defaults."""
    name = "neural"
    defaults: dict = {}        # task -> {key: value}; per-model; None = filled from loss_defaults at fit time
    loss_defaults: dict = {}   # implicit loss -> {key: value} for keys left None ("bce" also serves softmax / bpr)
    module_keys: tuple = ()    # config keys passed to build_module
    extra_keys: tuple = ()     # other config keys a subclass understands

    def __init__(self, task: str = "implicit", **config):
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {list(TASKS)}")
        allowed = set(self.module_keys) | set(TRAIN_KEYS) | {"y_range"} | set(self.extra_keys)
        full = {**SELECTION_DEFAULTS, **self.defaults[task], **{k: v for k, v in config.items() if v is not None}}
        check_config(full, allowed, what=f"model '{self.name}'")
        check_options(full, f"model '{self.name}'")
        if task == "rating" and full.get("y_range") is None:
            full["y_range"] = None  # filled from the data's rating range at fit time
        super().__init__(task=task, **full)
        self.task = task
        self.module: nn.Module | None = None
        self.learn = None          # the fastai Learner of the last fit (not saved)
        self.losses = None         # DataFrame epoch, train_loss, valid_loss (filled by fit)
        self.init_from: dict | None = None   # pretrained modules by stage name (NeuMF)
        self.freeze_mlp = False    # NeuMF pretraining: a GMF alone, the MLP branch's output weight held at zero

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

    # ---------------------------------------------------------------- fitting (by helpers.training)
    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None) -> NeuralRecommender:
        """Neural models are trained by the trainer, not by themselves: `helpers.training.fit(model, train,
        valid)` (or `helpers.training.train_model(train, name, ...)`)."""
        raise TypeError(f"model '{self.name}' is trained by helpers.training: use "
                        "`from helpers.training import fit; fit(model, train, valid)`")

    def set_rating_range(self, ratings: np.ndarray) -> None:
        """Rating task with no `y_range` given: the data's range widened by 5% on each side (fastai's (0, 5.5))."""
        if self.task == "rating" and self.config.get("y_range") is None:
            lo, hi = float(ratings.min()), float(ratings.max())
            self.config["y_range"] = [lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)]

    def prepare(self) -> dict:
        """Fit the parts solved in closed form, from the training interactions (`seen`), before the gradient
        training; returns what to record in the metadata. None here (CollabNN: its item-item branch)."""
        return {}

    def pretraining_stages(self) -> list[tuple[str, NeuralRecommender]]:
        """Models to train before this one, whose modules `build_module` starts from (`init_from`); none here."""
        return []

    def adopt_weights(self, fitted: NeuralRecommender) -> None:
        """Start this model's module (built by `build_module` for its own training data) from the weights of
        `fitted`, the same model trained on part of that data (the probe of a fit with `refit=False`): each
        user, item and side-feature token that `fitted` knows gets its learned row, matched by id, and every
        other parameter (output layer, MLP) is copied; rows `fitted` never saw keep their initialisation.
        The user tables follow the rows of `user_rows` (a user rare in `fitted` but not here starts from
        `fitted`'s shared row). Raises ValueError for a table it cannot match (`TABLE_SPACES`)."""
        if self.module is None or fitted.module is None:
            raise ValueError("adopt_weights needs both modules built: call build_module() first and pass a fitted model")
        source = {k: v.detach() for k, v in fitted.module.state_dict().items()}
        sources = {"user": _user_row_sources(self, fitted), "item": encode_ids(self.item_ids, fitted.item_ids)}
        mine, theirs = (getattr(m, "side", None) or {} for m in (self, fitted))
        for kind in ("user", "item"):
            if mine.get(kind) is not None and theirs.get(kind) is not None:
                sources[f"{kind}_token"] = encode_ids(mine[kind].vocabulary, theirs[kind].vocabulary)
        rows = {}  # index space -> (rows here, their rows in `fitted`), the rows `fitted` knows
        for space, src in sources.items():
            src = torch.as_tensor(src, dtype=torch.long)
            dst = torch.nonzero(src >= 0).view(-1)
            rows[space] = dst, src[dst]
        with torch.no_grad():
            for key, target in self.module.state_dict().items():
                if key not in source:
                    raise ValueError(f"adopt_weights: {key!r} of model '{self.name}' is not in the fitted model's module; "
                                     "both must be the same model with the same config")
                space = TABLE_SPACES.get(key.rsplit(".", 1)[0])
                same = source[key].shape == target.shape if space is None else source[key].shape[1:] == target.shape[1:]
                if not same:
                    raise ValueError(f"adopt_weights: {key!r} has shape {tuple(source[key].shape)} in the fitted model and "
                                     f"{tuple(target.shape)} here; both must be the same model with the same config")
                if space is None:
                    target.copy_(source[key])
                    continue
                if space not in rows:
                    raise ValueError(f"adopt_weights: no id map for the {space} table {key!r}")
                dst, src = (r.to(target.device) for r in rows[space])
                target.index_copy_(0, dst, source[key].index_select(0, src))

    # ---------------------------------------------------------------- scoring
    def _device(self) -> torch.device:
        return next(self.module.parameters()).device

    def score_users(self, users, rescore_seen: bool = True) -> torch.Tensor:
        """Scores of every item for `users` (indices). rescore_seen=False skips rescoring each user's training
        items with themselves left out of the history (cheaper, for rankings that exclude those items)."""
        self.module.eval()
        u = torch.as_tensor(np.asarray(users, dtype=np.int64), device=self._device())
        return self.module.score_all(u, rescore_seen=rescore_seen).float().cpu()

    def monitored_scores(self, users) -> torch.Tensor:
        """The scores whose validation NDCG@10 early stopping follows (`helpers.training.validation`): the model's
        own, the users' training items not rescored (the ranking excludes them)."""
        return self.score_users(users, rescore_seen=False)

    @torch.no_grad()
    def score_pairs(self, users, items, batch_size: int = 1 << 16) -> np.ndarray:
        self.module.eval()
        x = torch.from_numpy(np.stack([np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)], 1))
        out = [self.module(x[s:s + batch_size].to(self._device())).float().cpu()
               for s in range(0, len(x), batch_size)]
        return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)

    def to(self, device) -> NeuralRecommender:
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
        """The module's layers and its number of parameters (and what `prepare` fitted, if anything)."""
        n = sum(p.numel() for p in self.module.parameters())
        extra = {k: v for k, v in self.metadata.items() if k == "item_item"}
        return f"{self.module}\n{self.name}: {n:,} parameters" + (f"; {extra}" if extra else "")

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.module.parameters())


def _user_rows(model: NeuralRecommender) -> np.ndarray:
    """The row of each of `model`'s users in its module's user tables (identity without `user_rows`)."""
    rows = getattr(model.module, "user_rows", None)
    return np.arange(model.n_users) if rows is None else rows.detach().cpu().numpy()


def _user_row_sources(model: NeuralRecommender, fitted: NeuralRecommender) -> np.ndarray:
    """For each row of `model`'s user tables, the row of `fitted`'s to start it from (-1: none, keep the
    initialisation): a user's own row from that user's row in `fitted`; the shared row 0 from `fitted`'s."""
    mine, theirs = _user_rows(model), _user_rows(fitted)
    shared = getattr(model.module, "user_rows", None) is not None   # row 0 is then the rare users' shared row
    out = np.full(int(mine.max()) + 1 if len(mine) else int(shared), -1, dtype=np.int64)
    known = encode_ids(model.user_ids, fitted.user_ids)
    own = (known >= 0) & ((mine > 0) if shared else True)
    out[mine[own]] = theirs[known[own]]
    if shared and getattr(fitted.module, "user_rows", None) is not None:
        out[0] = 0
    return out
