"""Models for a notebook: loaded from MODEL_DIR when a fitting one is there, else trained here (not saved);
their item embeddings for the explorer and the re-rankers."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.models import Recommender, is_neural, load_model, model_class, model_file_name
from helpers.models.interpretation import item_embeddings  # noqa: F401  (re-exported: the notebooks' import)
from helpers.training import fit


def check_model_fits(model: Recommender, train: pd.DataFrame, evaluation: pd.DataFrame | None = None,
                     path="the model") -> None:
    """Raise ValueError when a saved model cannot be evaluated fairly on this split: it has seen evaluation
    interactions in training (leakage), or it was not trained on this split's training interactions."""
    if evaluation is not None and len(evaluation):
        leaked = model.exclusion_matrix(evaluation[["user_id", "item_id"]]).multiply(model.seen).nnz
        if leaked:
            raise ValueError(f"{path} was trained on {leaked:,} of the evaluation interactions (another split); "
                             "retrain it with training.ipynb on this DATA_DIR, or point MODEL_DIR at an empty "
                             "folder so the missing models are trained here")
    u = model.user_index(train["user_id"].to_numpy())
    i = model.item_index(train["item_id"].to_numpy())
    known = (u >= 0) & (i >= 0)
    missing = int((~known).sum())
    if not missing:
        missing = int((np.asarray(model.seen[u, i]).ravel() == 0).sum())
    if missing:
        raise ValueError(f"{path} was trained on other data than this train split ({missing:,} of its {len(train):,} "
                         "rows were not in the model's training data); retrain it with training.ipynb on the same "
                         "DATA_DIR, or point MODEL_DIR at a folder without it so it is trained here")


def load_or_train(entries, train: pd.DataFrame, evaluation: pd.DataFrame | None = None, model_dir="model",
                  seed: int = 0, epochs: int | None = None, log=print, save: bool = False,
                  metadata: dict | None = None, validation: str | None = None) -> tuple[dict, pd.DataFrame]:
    """({entry: fitted model}, table of where each came from: model, class, task, source, seconds, config).

    An entry is a registered name ("popular", "ease", "collabnn", ...) optionally with a task suffix
    ("mf_rating"). MODEL_DIR/<name>_<task>.pth (`model_file_name`: "collabnn" -> collabnn_implicit.pth) is loaded
    with `load_model` when present, refused when it holds another task, and checked with `check_model_fits`;
    otherwise the model is trained here on `train` with its defaults (neural models:
    the entry's task, default implicit, `seed`, and `epochs` when given) and not saved. `save=True` (what
    training.ipynb does, the owner of MODEL_DIR) trains every entry on `train` whatever is on disk and saves it
    as MODEL_DIR/<name>_<task>.pth with `metadata`, so the other notebooks load each model instead of training it
    again. `validation`: the neural models' validation rule (default: the model's, "auto"); training.ipynb
    passes its SPLIT. `log` gets one line per model (None: quiet)."""
    models, rows = {}, []
    for entry in [entries] if isinstance(entries, str) else entries:
        cls, task = model_class(entry)
        path = Path(model_dir) / model_file_name(entry)
        task = task or cls.task
        start = time.perf_counter()
        if path.exists() and not save:
            model = load_model(path, task=task)
            check_model_fits(model, train, evaluation, path)
            source = f"loaded {path}"
        else:
            model = (cls(task=task, seed=seed, epochs=epochs, validation=validation) if is_neural(cls)
                     else cls())
            model = fit(model, train)
            source = "trained here"
            if save:
                model.save(path, metadata=metadata)
                source = f"trained here, saved {path}"
        seconds = time.perf_counter() - start
        models[entry] = model
        rows.append({"model": entry, "class": cls.name, "task": model.task, "source": source,
                     "seconds": round(seconds, 2), "config": {k: v for k, v in model.config.items()
                                                              if k not in ("progress", "device")}})
        if log is not None:
            log(f"{entry}: {source} ({seconds:.1f} s)")
    return models, pd.DataFrame(rows)
