"""Training the neural models through fastai's `Learner`: `fit(model, train, valid)`, `train_model`,
`find_lr` (fastai's lr_find) and `resolved_config` (what a fit will use).

    model = make_model("collabnn", task="implicit")          # helpers.models; unknown keys rejected
    fit(model, train_df)                                     # validation carved from train, early stopping, refit
    fit(model, fit_df, valid=valid_df)                       # early stopping on your own validation part
    model = train_model(train_df, "collabnn", task="implicit", seed=0)   # make + fit in one call

Model selection (`early_stopping=True`, the default of every neural model): `epochs` is the most epochs a
fit may take. Without `valid`, `fit` carves a validation part out of `train` by the model's `validation`
rule (`helpers.data.validation_split`: "auto" by default, i.e. "global" when most users have one interaction,
else "random" per user; "leave_one_out", "temporal"), trains
on the rest with fastai's `EarlyStoppingCallback` / `SaveModelCallback` on validation NDCG@10 (RMSE for
ratings; `helpers.training.validation`), then trains again on the whole of `train` on the same one-cycle
schedule, stopped at the epoch the validation chose (`StopAfterEpochs`), so no interaction is lost to
the final model. `refit=False` skips that second training: the chosen epoch's weights are carried over onto
all of `train` (its users, items, histories and item-item branch; `carried_over`), cheaper by the refit's
epochs, the validation part then reaching the model only through those. With `valid`, it trains on `train`
and keeps the best epoch's weights. The evaluation part never enters: what it scores is chosen on validation
only. `model.metadata["selection"]` records the rule, the sizes, the chosen epoch and the validation curve.

Tasks and losses: `helpers.training.losses`; batches: `helpers.training.loaders`; the optimiser (a lazy
Adam for sparse embedding gradients): `helpers.training.optim`. Device: "auto" takes CUDA when present
(then pinned host memory and bf16/fp16 mixed precision through fastai's `MixedPrecision`), else the
CPU; chosen once per fit. Seeds: Python's random, numpy and torch, from the config's `seed`.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
import time
import uuid
from pathlib import Path

import fastai.callback.progress  # noqa: F401  (Learner.no_bar, progress bars)
import fastai.callback.schedule  # noqa: F401  (Learner.fit_one_cycle, Learner.lr_find)
import numpy as np
import pandas as pd
import torch
from fastai.callback.fp16 import MixedPrecision
from fastai.learner import Learner
from fastai.metrics import rmse
from fastai.optimizer import Adam

from helpers.data.split import resolve_split, validation_split
from helpers.heap import large_buffers_reused
from helpers.models import MODELS, NeuralRecommender, Recommender, make_model
from helpers.models.neural import DEFAULT_PATIENCE
from helpers.training.callbacks import StopOnNonFiniteLoss, TrainingDiverged, release_freed_memory
from helpers.training.device import library_versions, resolve_device, seed_everything
from helpers.training.loaders import build_dataloaders
from helpers.training.losses import CatalogueScores, implicit_loss, mse, resolve_catalogue_samples, resolve_loss
from helpers.training.optim import lazy_adam
from helpers.training.validation import StopAfterEpochs, ValidationNDCG, monitored, selection_callbacks


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
    samples = resolve_catalogue_samples(cfg.get("catalogue_samples"), model.n_users, model.n_items) if multinomial else None
    dls = build_dataloaders(users, items, ratings, model.n_items, model.task, int(cfg["batch_size"]),
                            neg_ratio, int(cfg["seed"]), device, valid, grouped=loss in ("softmax", "bpr"),
                            multinomial=multinomial, samples=samples)
    sparse = bool(cfg.get("sparse", False))
    history = getattr(model.module, "history", None)
    if sparse and samples is not None and history is not None:
        # a sampled catalogue: the item table's gradient is the batch's rows, so the history table's is too (dense,
        # its update was a third of each step at 17,600 items: benchmarks/logs/sampled_softmax.md)
        history.sparse_gradient(True)
    net = CatalogueScores(model.module) if multinomial else model.module
    metrics = []
    if valid is not None and model.task == "rating":
        metrics = [rmse]
    elif valid is not None and selects(model):
        metrics = [ValidationNDCG(model, valid[0], valid[1], seed=int(cfg["seed"]), from_batches=multinomial)]
    learn = Learner(dls, net.to(device),
                    loss_func=loss_func,
                    opt_func=lazy_adam if sparse else Adam, wd=float(cfg["wd"]), lr=float(cfg["lr"]),
                    metrics=metrics,
                    path=tempfile.gettempdir(), model_dir="ncf_recsys_lr_find")
    if device.type == "cpu":
        learn.add_cb(release_freed_memory())
    if device.type == "cuda":
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        learn.add_cb(MixedPrecision(amp_mode=amp))
    return learn


def selects(model) -> bool:
    """Whether fits of `model` choose their epoch on validation (`early_stopping`, on by default)."""
    return bool(model.config.get("early_stopping", True))


def fit(model: Recommender, train: pd.DataFrame, valid: pd.DataFrame | None = None, cbs=()) -> Recommender:
    """Fit `model` on `train` (columns user_id, item_id[, rating][, timestamp]) and return it (fitted in
    place, as `Recommender.fit` does; `train` and `valid` are not modified).

    Neural models (`NeuralRecommender`) train here through fastai: a Learner with the model's loss and
    data loaders, `fit_one_cycle(epochs, lr, wd)`. With `early_stopping` (the default), the epoch is chosen
    on validation NDCG@10 (RMSE for ratings): on `valid` when given (the best epoch's weights kept), else on
    a part carved out of `train`, followed by a refit on all of `train` (see the module docstring).
    Without it, `valid` only gives the per-epoch validation loss. Pretraining stages (NeuMF with
    `pretrain=True`) are trained first and the model starts from their weights. With `epochs=0` the
    module and Learner are built but not trained (what `find_lr` uses). `cbs`: more fastai callbacks for
    the fit that scores validation (e.g. Optuna's pruning callback). Closed-form models (the baselines)
    fit themselves: `model.fit(train)`.
    """
    with large_buffers_reused():  # large freed buffers kept for reuse, not unmapped and faulted in again (helpers.heap)
        if not isinstance(model, NeuralRecommender):
            return model.fit(train)
        if selects(model) and valid is None and model.config.get("epochs") != 0:
            return _fit_selected_on_carved_validation(model, train, cbs)
        return _fit_stages(model, train, valid, cbs=cbs)


def refit(model: NeuralRecommender, train: pd.DataFrame, epochs_run: int) -> NeuralRecommender:
    """Train `model` on all of `train` on its one-cycle schedule of `epochs` epochs, stopped after
    `epochs_run` (the epoch a validation chose); returns it."""
    epochs = resolved_config(model, train)["epochs"]
    if not 1 <= int(epochs_run) <= int(epochs):
        raise ValueError(f"epochs_run must be in [1, epochs={epochs}], got {epochs_run}")
    with large_buffers_reused():
        return _fit_stages(model, train, None, stop_after=int(epochs_run))


def _fit_stages(model: NeuralRecommender, train: pd.DataFrame, valid: pd.DataFrame | None,
                stop_after: int | None = None, cbs=()) -> NeuralRecommender:
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
        fit_indexed(model, users, items, ratings, valid, stop_after=stop_after, cbs=cbs)
    finally:
        model.init_from = None
    return model


def _fit_selected_on_carved_validation(model: NeuralRecommender, train: pd.DataFrame, cbs=()) -> NeuralRecommender:
    """Choose the epoch on a validation part carved out of `train`, then refit on all of `train` for it (or, with
    `refit=False`, carry the chosen epoch's weights over onto all of `train`: `carried_over`)."""
    cfg = model.config
    rule = resolve_split(train, cfg.get("validation") or "auto")  # "auto" resolved on this training part
    fit_part, held = validation_split(train, rule, seed=int(cfg["seed"]))
    probe = MODELS[model.name](**cfg)
    start = time.perf_counter()
    _fit_stages(probe, fit_part, held, cbs=cbs)
    if "selection" not in probe.metadata:
        raise ValueError(f"no validation part could be carved out of these {len(train):,} training rows by the "
                         f"{rule!r} rule ({len(held):,} held-out rows, none with a user and item also in the rest); "
                         "give more data, or train a fixed number of epochs without early stopping "
                         "(--no-early-stopping / early_stopping=False)")
    selection = {**probe.metadata["selection"], "losses": probe.metadata["losses"], "rule": rule, "fit_rows": int(len(fit_part)),
                 "validation_rows": int(len(held)), "selection_seconds": round(time.perf_counter() - start, 2)}
    model.config["loss"] = probe.config.get("loss", model.config.get("loss"))
    selection["refit"] = bool(cfg.get("refit", True))
    if selection["refit"]:
        refit(model, train, selection["best_epoch"])
    else:
        carried_over(model, probe, train)
    # the time a user waits: choosing the epoch and the refit (train_seconds alone would hide the first)
    model.metadata.update(selection=selection, refit_seconds=model.metadata["train_seconds"],
                          train_seconds=round(selection["selection_seconds"] + model.metadata["train_seconds"], 2))
    return model


def carried_over(model: NeuralRecommender, probe: NeuralRecommender, train: pd.DataFrame) -> NeuralRecommender:
    """`refit=False`: `model` on all of `train` without a second gradient training. Its id maps, histories and
    closed-form parts (`prepare`: CollabNN's item-item branch) come from all of `train`; its weights are the
    probe's at the epoch the validation chose (`NeuralRecommender.adopt_weights`: matched by id; users and items
    only in the validation part keep their initialisation, their history and item-item terms still score
    them). The probe's loss curve and Learner stand for the fit's. Returns `model`."""
    start = time.perf_counter()
    users, items, ratings = model.index_training_data(train)
    if model.task == "rating":  # the output squash the probe was trained under
        model.config["y_range"] = probe.config.get("y_range")
    model.set_rating_range(ratings)
    _resolve_training_config(model, model.n_users, model.n_items)
    started = time.perf_counter()
    prepared = model.prepare()
    prepare_seconds = time.perf_counter() - started
    seed_everything(int(model.config["seed"]))
    model.module = model.build_module().to(probe._device())
    model.adopt_weights(probe)
    model.module.eval()
    model.learn, model.losses = probe.learn, probe.losses
    kept = {k: v for k, v in probe.metadata.items() if k not in ("selection", "item_item", "prepare_seconds")}
    model.metadata.update({**kept, **prepared, "train_rows": int(len(users)),
                           "epochs": int(probe.metadata["selection"]["best_epoch"]),
                           "train_seconds": round(time.perf_counter() - start, 2),
                           "prepare_seconds": round(prepare_seconds, 2)})
    return model


def fit_indexed(model: NeuralRecommender, users, items, ratings, valid: pd.DataFrame | None = None,
                stop_after: int | None = None, cbs=()) -> None:
    """Build the Learner on index arrays (id maps already set) and run `fit_one_cycle(epochs, lr, wd)`, with
    the selection callbacks when `valid` is given and the model selects (`early_stopping`), ended after
    `stop_after` epochs when given; fills model.module, .learn, .losses and .metadata."""
    cfg = model.config
    valid_idx = _encode_valid(model, valid)
    start = time.perf_counter()
    prepared = model.prepare()  # closed-form parts (CollabNN's item-item branch), part of the training time
    prepare_seconds = time.perf_counter() - start
    learn = build_learner(model, users, items, ratings, valid_idx)
    model.learn = learn
    epochs = int(cfg["epochs"])
    selecting = valid_idx is not None and selects(model) and epochs > 0
    cbs, best_file = list(cbs), None
    if selecting:  # fastai's trackers keep the best epoch in a file: one per fit, removed when it ends
        fname = _best_epoch_file_name()
        best_file = Path(learn.path) / learn.model_dir / f"{fname}.pth"
        cbs += selection_callbacks(model.task, int(cfg.get("patience") or DEFAULT_PATIENCE), fname, epochs)
    if stop_after is not None:
        cbs.append(StopAfterEpochs(stop_after))
    cbs.append(StopOnNonFiniteLoss(_divergence_hint(model, ratings)))
    start = time.perf_counter()
    try:
        if epochs > 0 and cfg.get("progress"):
            learn.fit_one_cycle(epochs, lr_max=float(cfg["lr"]), wd=float(cfg["wd"]), cbs=cbs)
        elif epochs > 0:  # fastai's trackers print each better epoch: quiet unless progress is asked for
            with learn.no_bar(), learn.no_logging(), contextlib.redirect_stdout(io.StringIO()):
                learn.fit_one_cycle(epochs, lr_max=float(cfg["lr"]), wd=float(cfg["wd"]), cbs=cbs)
    except TrainingDiverged as exc:
        raise TrainingDiverged(exc.reason) from None
    finally:
        if best_file is not None:
            _remove_best_epoch_file(best_file)
    seconds = time.perf_counter() - start + prepare_seconds
    model.module.eval()
    model.losses = loss_history(learn) if epochs > 0 else pd.DataFrame(columns=["epoch", "train_loss", "valid_loss"])
    trained = int(len(model.losses))
    model.metadata.update({
        "task": model.task, "model": model.name, "epochs": trained, "max_epochs": epochs, "seed": int(cfg["seed"]),
        "train_rows": int(len(users)), "train_seconds": round(seconds, 2),
        "seconds_per_epoch": round(seconds / trained, 3) if trained else None,
        "device": str(resolve_device(cfg.get("device", "auto"))),
        "losses": {c: [float(v) for v in model.losses[c]] for c in model.losses.columns}, "versions": library_versions(),
        **prepared, "prepare_seconds": round(prepare_seconds, 2),
    })
    if cfg.get("loss") == "multinomial":  # items sampled per batch by the softmax (None: the whole catalogue)
        model.metadata["catalogue_samples"] = getattr(learn.dls.train, "samples", None)
    if selecting and trained:
        column, comp = monitored(model.task)
        curve = model.losses[column].to_numpy(dtype=float)
        best = int(np.argmax(curve) if comp is np.greater else np.argmin(curve))
        model.metadata["selection"] = {"monitor": column, "best_epoch": best + 1, "best_value": float(curve[best]),
                                       "epochs_run": trained, "curve": [float(v) for v in curve]}
        if model.task == "implicit":  # the whole model at the chosen epoch (CollabNN: factor + item-item branch)
            whole = ValidationNDCG(model, valid_idx[0], valid_idx[1], seed=int(cfg["seed"]), monitored=False).value
            model.metadata["selection"]["model_value"] = float(whole)


def _divergence_hint(model, ratings) -> str:
    """The likely causes of a diverged fit, for `StopOnNonFiniteLoss`'s message."""
    lr = f"lower the learning rate (lr {float(model.config['lr']):g})"
    if model.task == "rating" and len(ratings):
        return (f"the ratings span [{float(np.min(ratings)):g}, {float(np.max(ratings)):g}]: rescale extreme "
                f"ratings, or {lr}")
    return lr


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _best_epoch_file_name() -> str:
    """A fresh file name for SaveModelCallback, the same on every rank of a process group: fastai saves on
    rank 0 only and, after a barrier, every rank loads that file (`Learner.save` / `Learner.load`)."""
    name = [f"best-{uuid.uuid4().hex}"]
    if _distributed():
        torch.distributed.broadcast_object_list(name, src=0)
    return name[0]


def _remove_best_epoch_file(path: Path) -> None:
    """Remove the best-epoch file once every rank has loaded it (rank 0 removes it)."""
    if _distributed():
        torch.distributed.barrier()
        if torch.distributed.get_rank() != 0:
            return
    path.unlink(missing_ok=True)


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

