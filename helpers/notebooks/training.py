"""What training.ipynb needs: its parameters checked, the model trained (epoch chosen on validation) or
tuned (Optuna, on validation), the selection in a table, and a quick held-out summary of the trained model."""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.data import DATASETS, SPLITS, sampled_candidates
from helpers.evaluation import sampled_ranking
from helpers.models import MODELS, TASKS, make_model
from helpers.training import DEVICES, IMPLICIT_LOSSES, fit
from helpers.training.tuning import SEARCH_SPACES, parse_budget, tune

NOTEBOOK_PARAMETERS = {
    "DATASET": "ml-100k | electronics | csv:PATH",
    "SPLIT": "random | leave_one_out | temporal",
    "MODEL": "collabnn | collabnn_factor | collabnn_mlp | mf | neumf",
    "TASK": "implicit | rating",
    "DEVICE": "auto | cpu | cuda",
}


def check_parameters(dataset: str, split: str, model: str, task: str, device: str, epochs=None, lr=None,
                     wd=None, emb_size=None, layers=None, seed: int = 0, sample: int = 0, loss=None, patience=None,
                     tune_budget=None) -> dict:
    """Validate training.ipynb's parameters (one-line ValueError naming the allowed values); returns
    the model keyword arguments (None values dropped, so the model's defaults apply)."""
    if tune_budget is not None:
        parse_budget(tune_budget)
        if (model, task) not in SEARCH_SPACES:
            raise ValueError(f"TUNE has no search space for MODEL {model!r} on TASK {task!r}; set TUNE = None")
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ValueError(f"PATIENCE must be a positive integer or None, got {patience!r}")
    if not isinstance(dataset, str) or not (dataset in ("ml-100k", "electronics") or (
            dataset.startswith(("csv:", "electronics:")) and len(dataset.split(":", 1)[1]) > 0)):
        raise ValueError(f"unknown DATASET {dataset!r}; choose one of {DATASETS}")
    if split not in SPLITS:
        raise ValueError(f"unknown SPLIT {split!r}; choose one of {SPLITS}")
    if model not in MODELS:
        raise ValueError(f"unknown MODEL {model!r}; choose one of {sorted(MODELS)}")
    if task not in TASKS:
        raise ValueError(f"unknown TASK {task!r}; choose one of {list(TASKS)}")
    if device not in DEVICES:
        raise ValueError(f"unknown DEVICE {device!r}; choose one of {DEVICES}")
    for key, value in (("EPOCHS", epochs), ("EMB_SIZE", emb_size), ("SAMPLE", sample), ("SEED", seed)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValueError(f"{key} must be a non-negative integer or None, got {value!r}")
    for key, value in (("LR", lr), ("WD", wd)):
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise ValueError(f"{key} must be a non-negative number or None, got {value!r}")
    if layers is not None and (not isinstance(layers, (list, tuple)) or not all(isinstance(w, int) and w > 0 for w in layers)):
        raise ValueError(f"LAYERS must be a list of positive integers or None, got {layers!r}")
    if loss is not None and (task != "implicit" or loss not in IMPLICIT_LOSSES):
        raise ValueError(f"LOSS {loss!r} is not an implicit-task loss; choose one of {list(IMPLICIT_LOSSES)} "
                         "with TASK 'implicit', or None")
    if epochs == 0:
        raise ValueError("EPOCHS must be >= 1 (the most epochs early stopping may run) or None")
    kwargs = dict(epochs=epochs, lr=lr, wd=wd, emb_size=emb_size, layers=layers, seed=seed, device=device, loss=loss,
                  patience=patience, validation=split)
    if layers is not None and "layers" not in MODELS[model].module_keys:
        raise ValueError(f"MODEL {model!r} has no hidden layers; set LAYERS = None")
    effective_layers = layers if layers is not None else MODELS[model].defaults[task].get("layers")
    if emb_size is not None and "gmf_size" in MODELS[model].module_keys and not effective_layers:
        kwargs["gmf_size"] = kwargs.pop("emb_size")  # no MLP: the width is the GMF branch's
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    make_model(model, task=task, **kwargs)  # rejects anything the model does not accept
    return kwargs


def trained_model(name: str, task: str, train: pd.DataFrame, tune_budget=None, **config):
    """(model, trials): `name` trained on `train` with its epoch chosen on a validation part carved out of it
    (`helpers.training.fit`), or, with `tune_budget` (e.g. "5m"), the best configuration of an Optuna search
    on that validation part (`helpers.training.tuning.tune`) and the trials (validation figures only; None
    without tuning). `config`: as returned by `check_parameters` (its `validation` rule is the split's)."""
    if tune_budget is None:
        return fit(make_model(name, task=task, **config), train), None
    fixed = {k: v for k, v in config.items() if k not in ("seed", "validation")}
    result = tune(train, name, task=task, budget_seconds=parse_budget(tune_budget), seed=config.get("seed", 0),
                  validation=config.get("validation", "random"), **fixed)
    return result.model, result.trials


def selection_table(model) -> pd.DataFrame:
    """One row per epoch of the fit that chose the epoch: losses and the validation figure, the chosen epoch
    flagged; empty when the model was not selected on validation (early_stopping=False or tuned)."""
    sel = model.metadata.get("selection")
    if not sel:
        return pd.DataFrame()
    table = pd.DataFrame(sel.get("losses") or {"epoch": range(1, len(sel["curve"]) + 1), sel["monitor"]: sel["curve"]})
    table = table.rename(columns={sel["monitor"]: f"validation_{sel['monitor']}"})  # the curve is this column
    if "epoch" in table:
        table = table.assign(epoch=table["epoch"].astype(int))
    return table.assign(chosen=table["epoch"] == sel["best_epoch"])


def evaluation_summary(model, train: pd.DataFrame, evaluation: pd.DataFrame, k: int = 10,
                       n_negatives: int = 99, seed: int = 0) -> dict:
    """Quick held-out figures for the notebook. Implicit: HR@k and NDCG@k (each evaluation item vs
    `n_negatives` sampled unseen items, fewer on a small catalogue), both in [0, 1]. Rating: RMSE."""
    if model.task == "rating":
        known = (model.user_index(evaluation["user_id"]) >= 0) & (model.item_index(evaluation["item_id"]) >= 0)
        pred = model.score(evaluation[known])
        err = pred - evaluation.loc[known, "rating"].to_numpy(dtype=np.float64)
        return {"rmse": float(np.sqrt(np.mean(err ** 2))), "evaluation_rows": int(known.sum())}
    per_user_max = int(pd.concat([train, evaluation]).groupby("user_id").size().max())
    n_neg = int(min(n_negatives, model.n_items - per_user_max - 1))
    if n_neg < k:
        return {f"hr@{k}": None, f"ndcg@{k}": None, "n_negatives": n_neg}
    cand = sampled_candidates(train, evaluation, n_neg, seed=seed)
    ranking = sampled_ranking(model, cand, unknown="drop")
    return {f"hr@{k}": ranking.mean("hr", k), f"ndcg@{k}": ranking.mean("ndcg", k),
            "n_negatives": n_neg, "evaluation_rows": int(len(cand))}



def selection_sentence(model, held_out: dict) -> str:
    """The notebook's closing prose, from the numbers: how the epoch (or configuration) was chosen, on which
    part, and the held-out figure with its protocol."""
    m = model.metadata
    parts = []
    sel, tun = m.get("selection"), m.get("tuning")
    if tun:
        parts.append(f"Optuna ran {tun['n_trials']} trials ({tun['n_pruned']} pruned) on {tun['validation_rows']:,} "
                     f"validation rows; the best, trial {tun['best_trial']}, reached {tun['monitor']} "
                     f"{tun['best_value']:.4f} with {tun['best_params']}.")
    if sel:
        whole = (f"; the whole model, with its item-item branch: {sel['model_value']:.4f}"
                 if m.get("item_item") and "model_value" in sel else "")
        parts.append(f"Early stopping ran {sel['epochs_run']} epochs on {sel['fit_rows']:,} fit rows and chose epoch "
                     f"{sel['best_epoch']} (validation {sel['monitor'].replace('_at_', '@').upper()} {sel['best_value']:.4f} on "
                     f"{sel['validation_rows']:,} rows carved by the {sel['rule']} rule{whole}).")
    if sel and m.get("refit_seconds") is not None and sel.get("selection_seconds") is not None:
        parts.append(f"The saved {model.name} then trained {m['epochs']} epochs on all {m['train_rows']:,} training rows "
                     f"in {m['refit_seconds']:.1f} s ({m['seconds_per_epoch']} s per epoch) on {m['device']}, after "
                     f"{sel['selection_seconds']:.1f} s choosing the epoch ({m['train_seconds']:.1f} s in all).")
    else:
        parts.append(f"The saved {model.name} trained {m['epochs']} epochs on all {m['train_rows']:,} training rows in "
                     f"{m['train_seconds']:.1f} s ({m['seconds_per_epoch']} s per epoch) on {m['device']}.")
    if model.task == "rating":
        parts.append(f"On the evaluation part it has RMSE {held_out['rmse']:.4f} ({held_out['evaluation_rows']:,} rows).")
    elif held_out.get("hr@10") is not None:
        parts.append(f"On the evaluation part (sampled protocol, {held_out['n_negatives']} negatives) it has HR@10 "
                     f"{held_out['hr@10']:.4f} and NDCG@10 {held_out['ndcg@10']:.4f}.")
    return " ".join(parts)


# ------------------------------------------------------------------ prose written from the run's numbers
LOSS_PROSE = {
    "multinomial": "the multinomial likelihood: per user, a softmax over all {n_items:,} items of the catalogue "
                   "whose targets are the user's training items",
    "bce": "binary cross-entropy, each training interaction against {neg_ratio} sampled negatives (items the user "
           "did not interact with, re-drawn every epoch)",
    "softmax": "a sampled softmax: each training interaction against {neg_ratio} sampled negatives",
    "bpr": "the BPR pairwise loss: each training interaction ranked above {neg_ratio} sampled negatives",
    None: "mean squared error on the ratings",
}


def _structure(name: str, cfg: dict) -> str:
    """The trained part of a neural model's score, in words, from its resolved configuration."""
    layers = list(cfg.get("layers") or [])
    gmf = cfg.get("gmf_size")
    branches = []
    if name == "mf":
        branches.append(f"a dot product of {cfg['emb_size']}-dimensional user and item embeddings")
    elif gmf:
        branches.append(f"a GMF branch (a dot product of {gmf} user and item factors)")
    if layers:
        branches.append(f"a concat-MLP branch (user and item embeddings of width {cfg['emb_size']}, concatenated, "
                        f"through hidden layers of {', '.join(map(str, layers))} units)")
    text = " and ".join(branches)
    if cfg.get("history"):
        hidden = cfg.get("history_dropout") or 0
        text += ("; the user vector adds the pooled embeddings of the user's training items"
                 + (f", {hidden:.0%} of them hidden in each training pass" if hidden and cfg.get("loss") == "multinomial"
                    else ""))
    extras = [x for x, on in (("user and item biases", cfg.get("bias") or name == "mf"),  # mf: DotProductBias
                              ("side features (user and item attributes) as embeddings of their own",
                               cfg.get("features"))) if on]
    return text + ("; plus " + " and ".join(extras) if extras else "")


def model_description(name: str, config: dict, n_users: int, n_items: int) -> str:
    """What the model to be trained is, one Markdown paragraph written from its resolved configuration
    (`helpers.training.resolved_config`: loss "auto" resolved, defaults filled) and the data's size, so the
    description cannot drift from the code."""
    task = config.get("task", "implicit")
    loss = config.get("loss") if task == "implicit" else None
    goal = ("scores how likely a user is to interact with an item (implicit task)" if task == "implicit"
            else "predicts the user's rating (rating task)")
    text = [f"**{name}** {goal}, here on {n_users:,} users and {n_items:,} items."]
    if config.get("item_item"):
        kept = min(int(config.get("item_item_max_items") or n_items), n_items)
        lam = config.get("item_item_lambda")
        items = f"all {kept:,} items" if kept == n_items else f"the {kept:,} most popular of the {n_items:,} items"
        text.append(f"Its score adds two branches. The factor branch, the one trained by gradient: {_structure(name, config)}. "
                    f"The item-item branch, frozen: EASE weights over {items}, solved in closed form before the "
                    f"training{'' if lam is None else f' (lambda {lam:g})'}. The score is the item-item branch plus "
                    f"{config['item_item_weight']:g} times the factor branch.")
    else:
        text.append(f"Its score: {_structure(name, config)}.")
    batch_unit = "users" if loss == "multinomial" else "interactions"
    objective = LOSS_PROSE.get(loss, str(loss)).format(n_items=n_items, neg_ratio=config.get("neg_ratio"))
    trained = "The factor branch is" if config.get("item_item") else "It is"
    text.append(f"{trained} trained with {objective}, by fastai's one-cycle schedule peaking at a learning rate of "
                f"{config['lr']:.1e}, with weight decay {config['wd']:g}, in batches of {int(config['batch_size']):,} "
                f"{batch_unit}, for at most {config['epochs']} epochs.")
    return " ".join(text)


def lr_find_curve(fig) -> pd.DataFrame:
    """The (learning rate, loss) points of fastai's `lr_find` plot (the first line of its axes), in order."""
    lrs, losses = fig.axes[0].lines[0].get_data()
    return pd.DataFrame({"lr": np.asarray(lrs, dtype=float), "loss": np.asarray(losses, dtype=float)})


def _loss_at(curve: pd.DataFrame, lr: float) -> float:
    """The finder's loss at `lr`, interpolated on log(lr) (clamped to the range tried)."""
    return float(np.interp(np.log(lr), np.log(curve["lr"].to_numpy()), curve["loss"].to_numpy()))


def learning_rate_sentence(valley: float, used: float, curve: pd.DataFrame, loss: str | None = None,
                           n_items: int | None = None) -> str:
    """Why the `lr_find` valley and the learning rate used differ, with both numbers and the finder's curve
    (`lr_find_curve`): where each sits on the curve and what the two numbers are."""
    start, low = float(curve["loss"].iloc[0]), float(curve["loss"].min())
    lr_low = float(curve["lr"].iloc[int(curve["loss"].to_numpy().argmin())])
    at_valley, at_used = _loss_at(curve, valley), _loss_at(curve, used)
    ratio = used / valley
    compare = (f"{ratio:.0f}x the valley" if ratio >= 1.5 else f"{1 / ratio:.0f}x below the valley" if ratio <= 1 / 1.5
               else "close to the valley")
    parts = [f"The finder's valley is {valley:.1e}; the learning rate used is {used:.1e}, {compare}."]
    fall = start - low
    where_valley = ("where the loss has barely begun to fall" if fall > 0 and (start - at_valley) < 0.1 * fall
                    else "on the falling part of the curve")
    where_used = ("past the lowest point, where the finder's loss has turned up" if used > lr_low and at_used > low + 0.5 * fall
                  else "on the falling part, before the lowest point" if used <= lr_low
                  else "just past the lowest point")
    parts.append(f"On this run's curve the loss starts at {start:.3f}, is {at_valley:.3f} at the valley ({where_valley}), "
                 f"{at_used:.3f} at the rate used ({where_used}) and lowest, {low:.3f}, at {lr_low:.1e}.")
    if where_valley.startswith("where the loss has barely"):
        parts.append("fastai's valley is the point halfway along the longest stretch where the smoothed loss keeps "
                     "falling, however slowly: a long, almost flat plateau counts, which puts it early here.")
    if loss == "multinomial" and n_items:
        parts.append(f"For the multinomial objective the loss of an untrained model is near ln({n_items:,}) = "
                     f"{np.log(n_items):.2f}, the loss of a uniform guess over the catalogue; a rate at which it "
                     "hardly moves in the finder's few batches is a safe rate, not a fast one.")
    parts.append(f"The two numbers answer different questions: the valley is fastai's suggestion from {len(curve)} "
                 "batches of an untrained copy while the rate grows every batch; the rate used is the model's default "
                 "for this objective and the peak of the one-cycle schedule, which warms up from "
                 f"{used / 25:.1e} over the first quarter of the scheduled epochs and then anneals towards zero.")
    return " ".join(parts)


def _epoch_ranges(epochs) -> str:
    """'1-3, 7, 9-10' for a sorted list of epochs."""
    epochs, out, i = list(epochs), [], 0
    while i < len(epochs):
        j = i
        while j + 1 < len(epochs) and epochs[j + 1] == epochs[j] + 1:
            j += 1
        out.append(f"{epochs[i]}" if i == j else f"{epochs[i]}-{epochs[j]}")
        i = j + 1
    return ", ".join(out)


def loss_curves_sentence(selection: dict, config: dict | None = None) -> str:
    """Where the validation loss sits against the training loss, epoch by epoch, written from the selection
    record (`model.metadata["selection"]`), with the chosen epoch; '' without both losses."""
    losses = pd.DataFrame((selection or {}).get("losses") or {})
    if not {"train_loss", "valid_loss"} <= set(losses.columns):
        return ""
    losses = losses.dropna(subset=["train_loss", "valid_loss"])
    if losses.empty:
        return ""
    epochs = losses["epoch"].astype(int).to_numpy() if "epoch" in losses else np.arange(1, len(losses) + 1)
    below = losses["valid_loss"].to_numpy() < losses["train_loss"].to_numpy()
    last_t, last_v = float(losses["train_loss"].iloc[-1]), float(losses["valid_loss"].iloc[-1])
    if below.all():
        where = "The validation loss sits below the training loss in every epoch"
    elif not below.any():
        where = "The validation loss sits above the training loss in every epoch"
    else:
        where = (f"The validation loss sits below the training loss in epochs {_epoch_ranges(epochs[below])} and "
                 f"above it in epochs {_epoch_ranges(epochs[~below])}")
    side = "below" if last_v < last_t else "above"
    parts = [f"{where}; at the last epoch run, {epochs[-1]}, it ends {side} it ({last_v:.3f} against {last_t:.3f})."]
    best_v = int(epochs[int(losses["valid_loss"].to_numpy().argmin())])
    if selection.get("best_epoch") is not None:
        parts.append(f"The validation loss is lowest at epoch {best_v}; the epoch chosen by the validation "
                     f"{selection['monitor'].replace('_at_', '@').upper()} is {selection['best_epoch']}.")
    cfg = config or {}
    if below.any() and cfg.get("loss") == "multinomial" and (cfg.get("history_dropout") or 0) > 0:
        parts.append(f"The two losses are not measured alike: the training loss in training mode, with "
                     f"{cfg['history_dropout']:.0%} of each user's history hidden, the validation loss with the whole "
                     "history, so a validation loss below the training loss is no sign of a leak.")
    return " ".join(parts)
