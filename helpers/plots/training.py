"""Figures of training.ipynb: how the epoch was chosen on validation, and the trials of a tuning run.
Both show validation figures only (the evaluation part is never scored during training or tuning)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.plots.evaluation import metric_label

LOSS_NAMES = {"multinomial": "multinomial NLL per item", "bce": "binary cross-entropy", "softmax": "sampled softmax",
              "bpr": "BPR loss", None: "mean squared error"}


def plot_selection(selection: dict, loss: str | None = None, title: str = "") -> plt.Figure:
    """Left: training and validation loss per epoch of the fit that chose the epoch; right: the validation
    figure early stopping followed (NDCG@10 or RMSE), the chosen epoch marked. `selection`: a model's
    `metadata["selection"]` (from `helpers.training.fit` without a `valid`)."""
    if not selection or not selection.get("curve"):
        raise ValueError("no selection record: train with early_stopping=True and no `valid` (helpers.training.fit)")
    curve = np.asarray(selection["curve"], dtype=float)
    epochs = np.arange(1, len(curve) + 1)
    best = int(selection["best_epoch"])
    fig, (ax_loss, ax_fig) = plt.subplots(1, 2, figsize=(11, 3.8))
    losses = pd.DataFrame(selection.get("losses") or {})
    for column, style in (("train_loss", "o-"), ("valid_loss", "s-")):
        if column in losses and losses[column].notna().any():
            ax_loss.plot(epochs[:len(losses)], losses[column], style, ms=3, label=column.replace("_", " "))
    ax_loss.axvline(best, color="grey", ls=":", lw=1, label=f"chosen epoch ({best})")
    ax_loss.set(xlabel="epoch", ylabel=LOSS_NAMES.get(loss, loss or "loss"), title="losses (fit part / validation part)")
    ax_loss.legend(frameon=False)
    name = "rmse" if selection["monitor"] == "rmse" else "ndcg"
    label = f"validation {metric_label(name, None if name == 'rmse' else 10)}"
    ax_fig.plot(epochs, curve, "o-", ms=3, color="tab:green")
    ax_fig.plot([best], [curve[best - 1]], "*", ms=14, color="tab:red",
                label=f"chosen: epoch {best} ({curve[best - 1]:.4f})")
    if selection.get("model_value") is not None and abs(selection["model_value"] - curve[best - 1]) > 1e-9:
        # what early stopping followed is the trained part (CollabNN: its factor branch); the whole model too
        ax_fig.plot([best], [selection["model_value"]], "D", ms=8, color="tab:purple",
                    label=f"whole model at epoch {best} ({selection['model_value']:.4f})")
        label += " (monitored part)"
    ax_fig.set(xlabel="epoch", ylabel=label, title=f"early stopping: {len(curve)} epochs run")
    ax_fig.legend(frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_trials(trials: pd.DataFrame, monitor: str = "ndcg_at_10", maximize: bool = True) -> plt.Figure:
    """Each tuning trial's validation figure in the order run (pruned trials hollow), the best so far as a
    step line; `trials` as `helpers.training.tuning.tune(...).trials`."""
    column = f"validation_{monitor}"
    if column not in trials.columns or trials[column].isna().all():
        raise ValueError(f"no {column!r} values in the trials; found columns {list(trials.columns)}")
    fig, ax = plt.subplots(figsize=(7, 3.8))
    done = trials[trials["state"] == "COMPLETE"]
    pruned = trials[trials["state"] == "PRUNED"]
    ax.plot(done["trial"], done[column], "o", color="tab:blue", label="complete")
    if len(pruned):
        ax.plot(pruned["trial"], pruned[column], "o", mfc="none", color="tab:grey", label="pruned (last epoch reported)")
    best = done[column].cummax() if maximize else done[column].cummin()
    ax.step(done["trial"], best, where="post", color="tab:red", label="best so far")
    ax.set(xlabel="trial", ylabel=column.replace("_at_", "@").replace("_", " "),
           title=f"Optuna TPE search: {len(trials)} trials, {len(pruned)} pruned")
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def lr_find_figure(curve: pd.DataFrame, valley: float, used: float | None = None, title: str = "") -> plt.Figure:
    """fastai's learning-rate finder curve (`curve`: columns lr, loss, as `helpers.notebooks.training.lr_find_curve`
    reads it) on a log axis, with its valley suggestion and, when given, the learning rate training uses, each
    marked and labelled with its value."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(curve["lr"], curve["loss"], color="tab:blue", lw=1.5, label="loss while the rate grows")
    log_lr, loss = np.log(curve["lr"].to_numpy(dtype=float)), curve["loss"].to_numpy(dtype=float)
    for lr, color, what, style in ((valley, "tab:orange", "valley", "o"), (used, "tab:red", "rate used", "D")):
        if lr is None:
            continue
        y = float(np.interp(np.log(lr), log_lr, loss))
        ax.axvline(lr, color=color, ls=":", lw=1)
        ax.plot([lr], [y], style, color=color, ms=7, label=f"{what}: {lr:.1e}", zorder=3)
    ax.set_xscale("log")
    ax.set(xlabel="learning rate (log scale)", ylabel="training loss (smoothed)", title=title or "Learning-rate finder")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
