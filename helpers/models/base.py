"""The one interface every model of the project shares: fit / score / recommend / save / load.

A `Recommender` is fitted on a DataFrame with the canonical columns `user_id, item_id[, rating]`
(ids are strings, see `helpers.data`). It keeps its own id maps (position -> raw id), the item
popularity in its training data (for cold-start users) and the set of training interactions (to
exclude seen items when recommending). Subclasses implement, on *integer indices*:

- `_fit(users, items, ratings)`: learn from index arrays (int64) and ratings (float32) (closed-form
  models; the neural models are trained by `helpers.training.fit`, which calls `index_training_data`);
- `score_users(users) -> torch.Tensor [len(users), n_items]`: scores of every item, for full ranking;
- `score_pairs(users, items) -> np.ndarray [n]`: scores of given (user, item) index pairs;
- `_state() -> dict` and `_from_state(state)`: what `save` writes and `load_model` reads back.

Everything id-based (`score`, `recommend`, `save`) is written once, here. This module imports no
implementation: `load_model` finds classes in the registry, which `helpers.models` fills.
"""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from helpers.data.ids import check_id_map, normalise_ids, strip_ids
from helpers.data.interactions import encode_ids, interaction_matrix
from helpers.files import atomic_path
from helpers.models.registry import MODEL_CLASSES

TASKS = {"implicit": "multinomial softmax over the catalogue, or binary cross-entropy (softmax / bpr) vs sampled "
                     "negatives (score = logit)",
         "rating": "mean squared error on ratings (score = predicted rating in y_range)"}


def check_config(config: dict, allowed, what: str = "config") -> None:
    """Raise a one-line ValueError naming unknown keys and the allowed ones."""
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {what} key(s) {unknown}; allowed: {sorted(allowed)}")


FORMAT = "ncf-recsys-model/1"


class Recommender:
    """Base class; see the module docstring for what subclasses implement."""
    name = "base"
    task = "implicit"  # "implicit" (higher score = more likely) or "rating" (score is a predicted rating)

    def __init__(self, **config):
        self.config = dict(config)
        self.user_ids = np.array([], dtype=str)
        self.item_ids = np.array([], dtype=str)
        self.item_popularity = np.zeros(0, dtype=np.int64)
        self.seen = sp.csr_matrix((0, 0), dtype=np.int8)
        self.metadata: dict = {}

    # ------------------------------------------------------------------ sizes
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    # ------------------------------------------------------------------ fitting
    def fit(self, train: pd.DataFrame) -> Recommender:
        """Fit on `train` (columns user_id, item_id[, rating]); returns self. `train` is not modified."""
        self._fit(*self.index_training_data(train))
        return self

    def index_training_data(self, train: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Set the id maps, item popularity and seen interactions from `train`; returns (users, items, ratings):
        int64 index arrays and float32 ratings (1.0 without a rating column), what `_fit` and the trainer use."""
        for col in ("user_id", "item_id"):
            if col not in train.columns:
                raise ValueError(f"training data has no column '{col}'; found {list(train.columns)}")
        if len(train) == 0:
            raise ValueError("training data is empty; pass at least one (user_id, item_id) row")
        users_raw = normalise_ids(train["user_id"], "user_id", "training data")
        items_raw = normalise_ids(train["item_id"], "item_id", "training data")
        ratings = (train["rating"].to_numpy(dtype=np.float32) if "rating" in train.columns
                   else np.ones(len(train), dtype=np.float32))
        if not np.isfinite(ratings).all():
            first = int(np.flatnonzero(~np.isfinite(ratings))[0])
            raise ValueError(f"training data: column 'rating' has {int((~np.isfinite(ratings)).sum()):,} non-finite "
                             f"value(s) (NaN or beyond float32), the first {ratings[first]} at row {first + 1}; "
                             "ratings must be finite numbers")
        self.user_ids = np.unique(pd.unique(users_raw).astype(str))
        self.item_ids = np.unique(pd.unique(items_raw).astype(str))
        users = encode_ids(users_raw, self.user_ids)
        items = encode_ids(items_raw, self.item_ids)
        self.item_popularity = np.bincount(items, minlength=self.n_items).astype(np.int64)
        self.seen = interaction_matrix(users, items, self.n_users, self.n_items)
        return users, items, ratings

    def _fit(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ scoring on indices
    def score_users(self, users: np.ndarray) -> torch.Tensor:
        """Scores of all items for the given user indices: float32 tensor [len(users), n_items] on the CPU."""
        raise NotImplementedError

    def score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of (user, item) index pairs; default gathers from `score_users`, batched per user block."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.empty(len(users), dtype=np.float32)
        order = np.argsort(users, kind="stable")
        uniq, start = np.unique(users[order], return_index=True)
        bounds = np.append(start, len(order))
        block = 512
        for b in range(0, len(uniq), block):
            block_users = uniq[b:b + block]
            scores = self.score_users(block_users).numpy()
            lo, hi = bounds[b], bounds[min(b + block, len(uniq))]
            rows = order[lo:hi]
            row_in_block = np.searchsorted(block_users, users[rows])
            out[rows] = scores[row_in_block, items[rows]]
        return out

    # ------------------------------------------------------------------ cold start
    def score_new_users(self, users: pd.DataFrame) -> torch.Tensor:
        """Scores of every item for users unknown to the model -> float32 [n users, n_items], one row per distinct
        user_id of `users` (first-occurrence order; its other columns may hold side features such as
        user_gender). Here: log(1 + training popularity), the most-popular list `recommend` serves cold users;
        models that embed side features score them from their features. The scores must depend on those side
        columns only, never on the id: the protocols score each distinct profile once
        (`helpers.evaluation.protocols.cold_user_profiles`)."""
        n = len(pd.unique(users["user_id"].astype(str).to_numpy()))
        return torch.from_numpy(np.log1p(self.item_popularity).astype(np.float32))[None].repeat(n, 1)

    def score_new_items(self, users: np.ndarray, items: pd.DataFrame) -> torch.Tensor | None:
        """Scores of items unknown to the model (one per distinct item_id of `items`, with their side features)
        for user indices -> [len(users), n new items]; None when the model cannot score unseen items (here)."""
        return None

    # ------------------------------------------------------------------ explanations
    def history_contributions(self, user: int, items) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Why `user` (an index) gets its scores for `items` (indices the user did not have in training):
        (history item indices [h], contributions [len(items), h], rest [len(items)]) with, exactly,
        score_users([user])[0, items] == contributions.sum(1) + rest. Contribution [a, b] is what history item b
        adds to the score of items[a]; rest is what does not depend on the history (biases, the user's own id
        vector, side features). None (here) when the score does not decompose over the history: an MLP over
        (user, item), a rating squashed into its range, or no history at all."""
        return None

    # ------------------------------------------------------------------ id-based API
    def user_index(self, user_ids) -> np.ndarray:
        """Indices of raw user ids; -1 for users not seen in training."""
        return encode_ids(user_ids, self.user_ids)

    def item_index(self, item_ids) -> np.ndarray:
        """Indices of raw item ids; -1 for items not seen in training."""
        return encode_ids(item_ids, self.item_ids)

    def score(self, pairs: pd.DataFrame) -> np.ndarray:
        """Scores for the rows of `pairs` (user_id, item_id), same order; NaN where user or item is unknown."""
        for col in ("user_id", "item_id"):
            if col not in pairs.columns:
                raise ValueError(f"pairs have no column '{col}'; found {list(pairs.columns)}")
        u = self.user_index(strip_ids(pairs["user_id"]))
        i = self.item_index(strip_ids(pairs["item_id"]))
        known = (u >= 0) & (i >= 0)
        out = np.full(len(pairs), np.nan, dtype=np.float64)
        if known.any():
            out[known] = self.score_pairs(u[known], i[known])
        n_unknown = int((~known).sum())
        if n_unknown:
            warnings.warn(f"{n_unknown} of {len(pairs)} pairs have a user or item unknown to the model; "
                          "their score is NaN", stacklevel=2)
        return out

    def exclusion_matrix(self, exclude) -> sp.csr_matrix:
        """CSR [n_users, n_items] of items not to recommend: `"train"` (the fitted data), None, or a DataFrame."""
        if exclude is None or exclude is False:
            return sp.csr_matrix((self.n_users, self.n_items), dtype=np.int8)
        if isinstance(exclude, str) and exclude == "train":
            return self.seen
        if isinstance(exclude, pd.DataFrame):
            u = self.user_index(strip_ids(exclude["user_id"]))
            i = self.item_index(strip_ids(exclude["item_id"]))
            keep = (u >= 0) & (i >= 0)
            return interaction_matrix(u[keep], i[keep], self.n_users, self.n_items)
        raise ValueError(f"exclude must be 'train', None or a DataFrame of (user_id, item_id); got {type(exclude).__name__}")

    def top_k_indices(self, users: np.ndarray, k: int, exclude: sp.csr_matrix | None = None,
                      batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores for user indices, excluded items masked; batched, no per-user loop."""
        users = np.asarray(users, dtype=np.int64)
        k = int(min(k, self.n_items))
        idx = np.empty((len(users), k), dtype=np.int64)
        val = np.empty((len(users), k), dtype=np.float32)
        for start in range(0, len(users), batch_size):
            batch = users[start:start + batch_size]
            scores = self.score_users(batch).float()
            if exclude is not None and exclude.nnz:
                sub = exclude[batch]
                rows = np.repeat(np.arange(len(batch)), np.diff(sub.indptr))
                scores[torch.from_numpy(rows), torch.from_numpy(sub.indices.astype(np.int64))] = -torch.inf
            top = torch.topk(scores, k, dim=1)
            idx[start:start + len(batch)] = top.indices.numpy()
            val[start:start + len(batch)] = top.values.numpy()
        return idx, val

    def recommend(self, users=None, k: int = 10, exclude="train", batch_size: int = 1024) -> pd.DataFrame:
        """Top-k per user: DataFrame user_id, item_id, rank (1..k), score, cold_start.

        users: raw ids, surrounding spaces ignored, each recommended once (None = every user of the model).
        exclude: "train" (items seen in training), None, or a DataFrame of (user_id, item_id) pairs to exclude.
        Users unknown to the model get the most popular training items (score = training count) and cold_start=True.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        user_list = self.user_ids if users is None else pd.unique(strip_ids(users))  # each user once, in given order
        u = self.user_index(user_list)
        known = u >= 0
        excl = self.exclusion_matrix(exclude)
        frames = []
        if known.any():
            idx, val = self.top_k_indices(u[known], k, excl, batch_size)
            kk = idx.shape[1]
            valid = np.isfinite(val)
            frames.append(pd.DataFrame({
                "user_id": np.repeat(user_list[known], kk)[valid.ravel()],
                "item_id": self.item_ids[idx.ravel()][valid.ravel()],
                "rank": np.tile(np.arange(1, kk + 1), known.sum())[valid.ravel()],
                "score": val.ravel()[valid.ravel()].astype(np.float64),
                "cold_start": False,
            }))
        if (~known).any():
            cold_users = user_list[~known]
            popular = np.argsort(-self.item_popularity, kind="stable")
            excluded_cold = set()
            if isinstance(exclude, pd.DataFrame):
                excluded_cold = set(zip(strip_ids(exclude["user_id"]), strip_ids(exclude["item_id"])))
            rows = []
            for user in cold_users:  # cold users are few; per-user filtering of a short list
                chosen = [j for j in popular[: k + 50] if (user, self.item_ids[j]) not in excluded_cold][:k]
                rows.extend((user, self.item_ids[j], r + 1, float(self.item_popularity[j]), True)
                            for r, j in enumerate(chosen))
            frames.append(pd.DataFrame(rows, columns=["user_id", "item_id", "rank", "score", "cold_start"]))
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["user_id", "item_id", "rank", "score", "cold_start"])
        order = pd.Categorical(out["user_id"], categories=pd.unique(user_list), ordered=True)
        return (out.assign(_o=order).sort_values(["_o", "rank"], kind="stable")
                .drop(columns="_o").reset_index(drop=True))

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict:
        """Tensors (and plain values) that, with `config`, rebuild the fitted model."""
        raise NotImplementedError

    def _from_state(self, state: dict) -> None:
        raise NotImplementedError

    def save(self, path, metadata: dict | None = None) -> Path:
        """Write weights, config, id maps and metadata to `path` atomically; returns the path. Refuses (ValueError,
        nothing written) a model with a non-finite parameter: a diverged fit is never saved."""
        path = Path(path)
        state = self._state()
        bad = sorted(k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point()
                     and not bool(torch.isfinite(v).all()))
        if bad:
            raise ValueError(f"not saving {path}: the {self.name} model has non-finite parameters ({', '.join(bad[:3])}"
                             f"{', ...' if len(bad) > 3 else ''}), its training diverged; rescale extreme ratings or "
                             "lower the learning rate and train again")
        payload = {
            "format": FORMAT,
            "class": self.name,
            "task": self.task,
            "config": self.config,
            "state": state,
            "user_ids": self.user_ids.tolist(),
            "item_ids": self.item_ids.tolist(),
            "item_popularity": torch.from_numpy(self.item_popularity),
            "seen_indptr": torch.from_numpy(self.seen.indptr.astype(np.int64)),
            "seen_indices": torch.from_numpy(self.seen.indices.astype(np.int64)),
            "metadata": {**self.metadata, **(metadata or {})},
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path


PAYLOAD_KEYS = ("class", "task", "config", "state", "user_ids", "item_ids", "item_popularity", "seen_indptr",
                "seen_indices", "metadata")


def _read_payload(path: Path) -> dict:
    """The dict a model file holds (weights_only=True: tensors and plain values, never code), or a one-line
    ValueError naming the file."""
    retrain = "train it again with `python -m helpers train` (or training.ipynb)"
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes), not a model file; a write was interrupted? {retrain}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        text = str(exc)
        if isinstance(exc, pickle.UnpicklingError) and "GLOBAL" in text:  # code or classes, refused by weights_only
            raise ValueError(f"{path} holds objects other than tensors and plain values, refused for safety (this "
                             f"project writes none); {retrain}") from None
        # torch's own text advises weights_only=False, i.e. running the file's code: never repeated here
        first = "" if "weights_only" in text else (text.splitlines() or [""])[0][:120]
        raise ValueError(f"{path} is not a model file this project can read ({type(exc).__name__}"
                         f"{': ' + first if first else ''}); {retrain}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file; {retrain}")
    missing = [k for k in PAYLOAD_KEYS if k not in payload]
    if missing:
        raise ValueError(f"{path} lacks {missing} of a {FORMAT} file (damaged or edited); {retrain}")
    return payload


def load_model(path, task: str | None = None) -> Recommender:
    """Load a model saved with `Recommender.save` (weights_only=True; no retraining). `task` ("implicit" or
    "rating"): the task the caller will use the model for; a model of another task is refused (ValueError).
    Every failure is a one-line ValueError (FileNotFoundError when the file is absent) naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist; train one with `python -m helpers train`")
    if path.is_dir():
        raise ValueError(f"model file {path} is a folder; give the .pth file")
    payload = _read_payload(path)
    cls = MODEL_CLASSES.get(payload["class"])
    if cls is None:
        raise ValueError(f"{path} holds a '{payload['class']}' model, unknown to this code; "
                         f"known: {sorted(MODEL_CLASSES)}")
    if task is not None and payload["task"] != task:
        raise ValueError(f"{path} holds a {payload['task']}-task {payload['class']} model, not the {task} task asked for; "
                         f"use a {task} model file (e.g. {payload['class']}_{task}.pth)")
    try:
        model = cls(**payload["config"])
        model.user_ids = np.asarray(payload["user_ids"], dtype=str)
        model.item_ids = np.asarray(payload["item_ids"], dtype=str)
        check_id_map(model.user_ids, "user", str(path))
        check_id_map(model.item_ids, "item", str(path))
        model.item_popularity = payload["item_popularity"].numpy()
        indptr, indices = payload["seen_indptr"].numpy(), payload["seen_indices"].numpy()
        model.seen = sp.csr_matrix((np.ones(len(indices), dtype=np.int8), indices, indptr),
                                   shape=(model.n_users, model.n_items))
        if len(model.item_popularity) != model.n_items:
            raise ValueError(f"{len(model.item_popularity)} item counts for {model.n_items} item ids")
        model.metadata = payload["metadata"]
        model._from_state(payload["state"])
    except ValueError as exc:
        message = str(exc)
        raise ValueError(message if message.startswith(str(path)) else
                         f"{path} is damaged or edited ({message.splitlines()[0] if message else 'ValueError'}); "
                         "train it again") from None
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} does not match the current '{payload['class']}' code "
                         f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]}); retrain it") from None
    return model
