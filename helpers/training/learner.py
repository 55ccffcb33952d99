"""Training the neural models through fastai's `Learner`: `fit(model, train, valid)`, `train_model`,
`find_lr` (fastai's lr_find) and `resolved_config` (what a fit will use).

    model = make_model("collabnn", task="implicit", epochs=12)   # helpers.models; unknown keys rejected
    fit(model, train_df, valid=valid_df)                         # fastai Learner + fit_one_cycle
    model = train_model(train_df, "collabnn", task="implicit", seed=0)   # the same in one call

Tasks and losses: `helpers.training.losses`; batches: `helpers.training.loaders`; the optimiser (a lazy
Adam for sparse embedding gradients): `helpers.training.optim`. Device: "auto" takes CUDA when present
(then pinned host memory and bf16/fp16 mixed precision through fastai's `MixedPrecision`), else the
CPU; chosen once per fit. Seeds: Python's random, numpy and torch, from the config's `seed`.
"""
from __future__ import annotations

import tempfile
import time

import fastai.callback.progress  # noqa: F401  (Learner.no_bar, progress bars)
import fastai.callback.schedule  # noqa: F401  (Learner.fit_one_cycle, Learner.lr_find)
import numpy as np
import pandas as pd
import torch
from fastai.callback.fp16 import MixedPrecision
from fastai.learner import Learner
from fastai.metrics import rmse
from fastai.optimizer import Adam

from helpers.models import MODELS, NeuralRecommender, Recommender, make_model
from helpers.training.callbacks import release_freed_memory
from helpers.training.device import library_versions, resolve_device, seed_everything
from helpers.training.loaders import build_dataloaders
from helpers.training.losses import CatalogueScores, implicit_loss, mse, resolve_loss
from helpers.training.optim import lazy_adam


def _resolve_training_config(model, n_users: int, n_items: int) -> None:
    """Set `model`'s config for training on n_users x n_items: loss "auto" resolved (implicit task), the keys
    left None filled from the model's `loss_defaults`."""
    if model.task == "implicit":
        model.config["loss"] = resolve_loss(model, n_users, n_items)
    model.fill_loss_defaults()


def _encode_valid(model, valid: pd.DataFrame | None):
    if valid is None or len(valid) == 0:
        return None
    u = model.user_index(valid["user_id"].to_numpy())
    i = model.item_index(valid["item_id"].to_numpy())
    keep = (u >= 0) & (i >= 0)
    r = (valid["rating"].to_numpy(dtype=np.float32) if "rating" in valid.columns
         else np.ones(len(valid), dtype=np.float32))
    return u[keep], i[keep], r[keep]


def build_learner(model, users, items, ratings, valid=None):
    """A fastai Learner for `model` (a NeuralRecommender whose id maps are set); builds its module."""
    cfg = model.config
    _resolve_training_config(model, model.n_users, model.n_items)
    device = resolve_device(cfg.get("device", "auto"))
    seed_everything(int(cfg["seed"]))
    model.module = model.build_module()
    if model.freeze_mlp:  # NeuMF pretraining: a GMF alone
        out = model.module.out
        mask = torch.zeros_like(out.weight)
        mask[0, -model.module.gmf_size:] = 1
        with torch.no_grad():
            out.weight.mul_(mask)
        out.weight.register_hook(lambda g: g * mask.to(g.device))
    loss = cfg.get("loss") or ("bce" if model.task == "implicit" else "mse")
    if model.task == "rating" and loss != "mse":
        raise ValueError(f"loss {loss!r} is for the implicit task; the rating task uses 'mse' (or leave loss unset)")
    neg_ratio = int(cfg.get("neg_ratio", 4))
    loss_func = implicit_loss(loss, neg_ratio) if model.task == "implicit" else mse
    multinomial = loss == "multinomial"
    dls = build_dataloaders(users, items, ratings, model.n_items, model.task, int(cfg["batch_size"]),
                            neg_ratio, int(cfg["seed"]), device, valid, grouped=loss in ("softmax", "bpr"),
                            multinomial=multinomial)
    sparse = bool(cfg.get("sparse", False))
    net = CatalogueScores(model.module) if multinomial else model.module
    learn = Learner(dls, net.to(device),
                    loss_func=loss_func,
                    opt_func=lazy_adam if sparse else Adam, wd=float(cfg["wd"]), lr=float(cfg["lr"]),
                    metrics=[rmse] if model.task == "rating" and valid is not None else [],
                    path=tempfile.gettempdir(), model_dir="ncf_recsys_lr_find")
    if device.type == "cpu":
        learn.add_cb(release_freed_memory())
    if device.type == "cuda":
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        learn.add_cb(MixedPrecision(amp_mode=amp))
    return learn


def fit(model: Recommender, train: pd.DataFrame, valid: pd.DataFrame | None = None) -> Recommender:
    """Fit `model` on `train` (columns user_id, item_id[, rating]) and return it (fitted in place, as
    `Recommender.fit` does; `train` and `valid` are not modified).

    Neural models (`NeuralRecommender`) are trained here through fastai: a Learner with the model's loss
    and data loaders, `fit_one_cycle(epochs, lr, wd)`; `valid` (same columns) gives the per-epoch
    validation loss. Pretraining stages (NeuMF with `pretrain=True`) are trained first and the model
    starts from their weights. With `epochs=0` the module and Learner are built but not trained (what
    `find_lr` uses). Closed-form models (the baselines) fit themselves: `model.fit(train)`.
    """
    if not isinstance(model, NeuralRecommender):
        return model.fit(train)
    users, items, ratings = model.index_training_data(train)
    model.set_rating_range(ratings)
    stages = model.pretraining_stages()
    if stages:
        parts = {}
        for part, sub in stages:
            fit_indexed(sub, users, items, ratings, valid)
            parts[part] = sub.module
        model.init_from = parts
    try:
        fit_indexed(model, users, items, ratings, valid)
    finally:
        model.init_from = None
    return model


def fit_indexed(model: NeuralRecommender, users, items, ratings, valid: pd.DataFrame | None = None) -> None:
    """Build the Learner on index arrays (id maps already set) and run `fit_one_cycle(epochs, lr, wd)`;
    fills model.module, .learn, .losses and .metadata."""
    cfg = model.config
    valid_idx = _encode_valid(model, valid)
    learn = build_learner(model, users, items, ratings, valid_idx)
    model.learn = learn
    epochs = int(cfg["epochs"])
    start = time.perf_counter()
    if epochs > 0:
        if cfg.get("progress"):
            learn.fit_one_cycle(epochs, lr_max=float(cfg["lr"]), wd=float(cfg["wd"]))
        else:
            with learn.no_bar(), learn.no_logging():
                learn.fit_one_cycle(epochs, lr_max=float(cfg["lr"]), wd=float(cfg["wd"]))
    seconds = time.perf_counter() - start
    model.module.eval()
    model.losses = loss_history(learn) if epochs > 0 else pd.DataFrame(columns=["epoch", "train_loss", "valid_loss"])
    model.metadata.update({
        "task": model.task, "model": model.name, "epochs": epochs, "seed": int(cfg["seed"]),
        "train_rows": int(len(users)), "train_seconds": round(seconds, 2),
        "device": str(resolve_device(cfg.get("device", "auto"))),
        "losses": {c: [float(v) for v in model.losses[c]] for c in model.losses.columns}, "versions": library_versions(),
    })


def loss_history(learn) -> pd.DataFrame:
    """Per-epoch losses from fastai's Recorder: epoch, train_loss, valid_loss (NaN without validation)[, rmse]."""
    names = [n.lstrip("_") for n in learn.recorder.metric_names if n not in ("epoch", "time")]
    rows = [list(v) + [None] * (len(names) - len(v)) for v in learn.recorder.values]
    out = pd.DataFrame(rows, columns=names, dtype=float) if rows else pd.DataFrame(columns=names)
    out.insert(0, "epoch", np.arange(1, len(out) + 1))
    return out


def train_model(train: pd.DataFrame, model: str | None = None, task: str = "implicit",
                valid: pd.DataFrame | None = None, **config):
    """Make and fit a model on `train` (columns user_id, item_id[, rating]); returns the fitted model.

    Example: `train_model(train_df, "collabnn", task="implicit", epochs=12, seed=0)`.
    """
    return fit(make_model(model, task=task, **config), train, valid)


def resolved_config(model, train: pd.DataFrame) -> dict:
    """The configuration `fit(model, train)` will use: loss "auto" resolved for this data's users x items and the
    keys left None filled from the model's `loss_defaults`. Neither `model` nor `train` is changed."""
    probe = MODELS[model.name](**model.config)
    _resolve_training_config(probe, train["user_id"].nunique(), train["item_id"].nunique())
    return dict(probe.config)


def find_lr(model, train: pd.DataFrame, valid: pd.DataFrame | None = None, show_plot: bool = True,
            num_it: int = 100) -> float:
    """fastai's `lr_find` on an untrained copy of `model` (its weights are not touched); the valley suggestion."""
    probe = fit(MODELS[model.name](**{**model.config, "epochs": 0}), train, valid)
    with probe.learn.no_bar():
        found = probe.learn.lr_find(num_it=num_it, show_plot=show_plot)
    return float(found.valley)

