"""Hyperparameter search on validation only, with Optuna: `tune(train, "collabnn", budget_seconds=600)`.

A validation part is carved out of `train` once (`helpers.data.validation_split`, the model's `validation`
rule); every trial trains on the rest and is scored on it: neural models by the validation NDCG@10 (RMSE for
ratings) of the whole model at the epoch early stopping chose, with Optuna's pruning callback for fastai
(`optuna_integration.FastAIPruningCallback`) ending trials that fall below the median of the earlier ones
at the same epoch (not before half the epochs: one-cycle curves cross late); closed-form models by the
same NDCG@10 after their fit. The sampler is Optuna's TPE, seeded; a neural search's first trial is the
model's defaults, so it never ends below them on validation. The best configuration is then trained on
all of `train` (neural models: for the epoch count its trial chose, `helpers.training.refit`). The
evaluation part is never seen: the tuning log holds validation figures only.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd
from optuna_integration import FastAIPruningCallback

from helpers.data.split import resolve_split, validation_split
from helpers.models import MODEL_CLASSES, NeuralRecommender, make_model
from helpers.training.learner import fit, refit, resolved_config
from helpers.training.validation import ValidationNDCG, monitored, recorder_name


def _collabnn_implicit(trial: optuna.Trial) -> dict:
    return {"lr": trial.suggest_float("lr", 2e-3, 5e-2, log=True),
            "wd": trial.suggest_float("wd", 1e-3, 1.0, log=True),
            "gmf_size": trial.suggest_categorical("gmf_size", [64, 128, 256]),
            "history_dropout": trial.suggest_float("history_dropout", 0.3, 0.9),
            "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256])}


def _collabnn_hybrid(trial: optuna.Trial) -> dict:
    return {**_collabnn_implicit(trial),
            "item_item_weight": trial.suggest_float("item_item_weight", 0.05, 2.0, log=True)}


def _neural_bce(trial: optuna.Trial) -> dict:
    return {"lr": trial.suggest_float("lr", 2e-3, 5e-2, log=True),
            "wd": trial.suggest_float("wd", 1e-3, 1.0, log=True),
            "emb_size": trial.suggest_categorical("emb_size", [32, 64, 128])}


def _rating(trial: optuna.Trial) -> dict:
    return {"lr": trial.suggest_float("lr", 1e-3, 2e-2, log=True),
            "wd": trial.suggest_float("wd", 1e-2, 2.0, log=True),
            "emb_size": trial.suggest_categorical("emb_size", [32, 50, 64, 128])}


# The knobs searched per (model, task): the ones that moved validation NDCG@10 in benchmarks/ACCURACY.md.
SEARCH_SPACES = {
    ("collabnn", "implicit"): _collabnn_hybrid,
    ("collabnn_factor", "implicit"): _collabnn_implicit,
    ("mf", "implicit"): _neural_bce,
    ("collabnn_mlp", "implicit"): _neural_bce,
    ("neumf", "implicit"): _neural_bce,
    ("collabnn", "rating"): _rating,
    ("mf", "rating"): _rating,
    ("ease", "implicit"): lambda t: {"lambda_": t.suggest_float("lambda_", 1.0, 1e4, log=True)},
    ("itemknn", "implicit"): lambda t: {"k": t.suggest_int("k", 5, 1000, log=True),
                                        "shrink": t.suggest_float("shrink", 0.0, 200.0)},
}


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


def parse_budget(text) -> float:
    """A search budget in seconds from "90", "90s", "10m", "1.5h"; a one-line ValueError saying what is accepted
    otherwise, or when it is not > 0."""
    match = DURATION.match(str(text))
    if not match:
        raise ValueError(f"budget {text!r} is not a duration; write seconds or a number with s, m or h, e.g. 90s, 10m, 1h")
    seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"budget {text!r} must be longer than 0 s")
    return seconds


class _ParameterNames:
    """Stands in for an Optuna trial to list the parameters a search space suggests."""
    def __init__(self):
        self.names: list[str] = []

    def _suggest(self, name, first, *args, **kwargs):
        self.names.append(name)
        return first[0] if isinstance(first, (list, tuple)) else first

    suggest_float = suggest_int = suggest_categorical = _suggest


def _default_trial(model: str, task: str, space, train: pd.DataFrame, fixed: dict) -> tuple[dict, int]:
    """(the model's own defaults for the searched parameters, its most epochs): the first trial of a neural
    search, so a search never ends below the defaults on validation."""
    names = _ParameterNames()
    space(names)
    config = resolved_config(make_model(model, task=task, **fixed), train)
    return {k: config[k] for k in names.names if config.get(k) is not None}, int(config["epochs"])


@dataclass
class TuningResult:
    """What `tune` found: the best model trained on all of train, its parameters and validation figure,
    the per-trial log (validation figures only) and the Optuna study."""
    model: object
    best_params: dict
    best_value: float
    monitor: str
    trials: pd.DataFrame
    study: optuna.Study


def _trial_rows(study: optuna.Study, monitor: str) -> pd.DataFrame:
    rows = []
    for t in study.trials:
        rows.append({"trial": t.number, "state": t.state.name, f"validation_{monitor}": t.value,
                     "best_epoch": t.user_attrs.get("best_epoch"), "seconds": t.user_attrs.get("seconds"),
                     **{f"param_{k}": v for k, v in t.params.items()}})
    return pd.DataFrame(rows)


def tune(train: pd.DataFrame, model: str = "collabnn", task: str = "implicit", budget_seconds: float = 600,
         n_trials: int | None = None, seed: int = 0, validation: str = "auto", **fixed) -> TuningResult:
    """Search `model`'s `SEARCH_SPACES` entry on a validation part of `train` for `budget_seconds` (or
    `n_trials`, whichever ends first); returns the best configuration trained on all of `train`.

    `fixed`: configuration kept constant in every trial (e.g. device="cpu", epochs=30). `train` is not
    modified. Example: `tune(train_df, "collabnn", budget_seconds=300).model.save("model/tuned.pth")`.
    """
    space = SEARCH_SPACES.get((model, task))
    if space is None:
        raise ValueError(f"no search space for model {model!r} on the {task} task; choose one of "
                         f"{sorted(m for m, t in SEARCH_SPACES if t == task)}")
    if not budget_seconds or budget_seconds <= 0:
        raise ValueError(f"budget_seconds must be > 0, got {budget_seconds}")
    neural = issubclass(MODEL_CLASSES[model], NeuralRecommender)
    if task == "rating" and not neural:
        raise ValueError(f"model {model!r} has no rating task; tune a neural model for ratings")
    validation = resolve_split(train, validation)  # "auto": global when most users have one interaction, else random
    fit_part, held = validation_split(train, validation, seed=seed)
    monitor, comp = monitored(task)
    if not neural:  # the closed-form models have no device or training keys
        fixed = {k: v for k, v in fixed.items() if k != "device"}

    def objective(trial: optuna.Trial) -> float:
        params = space(trial)
        start = time.perf_counter()
        if neural:
            candidate = make_model(model, task=task, seed=seed, validation=validation, **{**fixed, **params})
            fit(candidate, fit_part, valid=held, cbs=[FastAIPruningCallback(trial, monitor=recorder_name(monitor))])
            selection = candidate.metadata["selection"]
            # the whole model at its chosen epoch (CollabNN: factor + item-item branch), not only what was monitored
            value, best_epoch = selection.get("model_value", selection["best_value"]), selection["best_epoch"]
        else:
            candidate = MODEL_CLASSES[model](**{**fixed, **params}).fit(fit_part)
            value, best_epoch = ValidationNDCG.of_frame(candidate, held, seed=seed).value, None
        trial.set_user_attr("best_epoch", best_epoch)
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
        if not np.isfinite(value):
            raise optuna.TrialPruned(f"validation {monitor} is not finite ({value})")
        return float(value)

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        epochs = 0
        if neural:  # the defaults first; no pruning before half the epochs (one-cycle curves cross late)
            defaults, epochs = _default_trial(model, task, space, fit_part, fixed)
        study = optuna.create_study(direction="maximize" if comp is np.greater else "minimize",
                                    sampler=optuna.samplers.TPESampler(seed=seed),
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=5,
                                                                       n_warmup_steps=max(5, epochs // 2)))
        if neural:
            study.enqueue_trial(defaults)
        study.optimize(objective, n_trials=n_trials, timeout=budget_seconds, gc_after_trial=True)
    finally:
        optuna.logging.set_verbosity(verbosity)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise ValueError(f"no trial finished within {budget_seconds:.0f} s; give a larger budget")
    best = study.best_trial
    trials = _trial_rows(study, monitor)
    if neural:
        final = make_model(model, task=task, seed=seed, validation=validation, **{**fixed, **best.params})
        refit(final, train, best.user_attrs["best_epoch"])
    else:
        final = MODEL_CLASSES[model](**{**fixed, **best.params}).fit(train)
    final.metadata["tuning"] = {
        "monitor": f"validation {monitor}", "validation_rule": validation, "fit_rows": int(len(fit_part)),
        "validation_rows": int(len(held)), "budget_seconds": float(budget_seconds), "n_trials": len(study.trials),
        "n_complete": len(done), "n_pruned": int((trials["state"] == "PRUNED").sum()), "best_trial": best.number,
        "best_value": float(best.value), "best_params": dict(best.params),
        "best_epoch": best.user_attrs.get("best_epoch"), "trials": trials.to_dict(orient="records")}
    return TuningResult(final, dict(best.params), float(best.value), monitor, trials, study)
