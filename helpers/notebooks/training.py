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
                     f"{sel['best_epoch']} (validation {sel['monitor']} {sel['best_value']:.4f} on "
                     f"{sel['validation_rows']:,} rows carved by the {sel['rule']} rule{whole}).")
    parts.append(f"The saved {model.name} trained {m['epochs']} epochs on all {m['train_rows']:,} training rows in "
                 f"{m['train_seconds']:.1f} s ({m['seconds_per_epoch']} s per epoch) on {m['device']}.")
    if model.task == "rating":
        parts.append(f"On the evaluation part it has RMSE {held_out['rmse']:.4f} ({held_out['evaluation_rows']:,} rows).")
    elif held_out.get("hr@10") is not None:
        parts.append(f"On the evaluation part (sampled protocol, {held_out['n_negatives']} negatives) it has HR@10 "
                     f"{held_out['hr@10']:.4f} and NDCG@10 {held_out['ndcg@10']:.4f}.")
    return " ".join(parts)
