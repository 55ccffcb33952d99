"""Model selection during training: the validation figure as a fastai metric, and the callbacks that stop
training when it stops improving and keep the best epoch's weights.

- Implicit task: `ValidationNDCG`, NDCG@10 of full ranking of the validation users' held-out items (each
  user's training items excluded), what the evaluation notebook reports on the evaluation part.
- Rating task: fastai's `rmse` on the validation rows.

`selection_callbacks` returns fastai's `EarlyStoppingCallback` and `SaveModelCallback` on that figure;
`StopAfterEpochs` ends a fit after a chosen number of epochs (the refit on the whole training part, for the
number of epochs the validation chose). The evaluation part never comes here: callers pass a validation
part carved out of train (`helpers.data.validation_split`).
"""
from __future__ import annotations

import numpy as np
import torch
from fastai.callback.core import Callback, CancelFitException
from fastai.callback.tracker import EarlyStoppingCallback, SaveModelCallback, TrackerCallback
from fastai.learner import Metric

from helpers.data.interactions import interaction_matrix
from helpers.metrics import ndcg_at_k, positions_from_scores, relevant_positions
from helpers.models import NeuralRecommender

# Validation users scored per epoch at most (seeded sample above it): 5,000 users x 20,000 items is 10^8
# scores, about a second on 2 cores, against an epoch of the multinomial objective of several seconds.
MAX_VALIDATION_USERS = 5_000
# Users scored at once (at most 1,024): a block holds at most this many scores, 64 MB in float32, whatever the
# catalogue (1,024 users x 50,000 items was 205 MB a block, and each ranking step copied it).
BLOCK_SCORES = 1 << 24


class ValidationNDCG(Metric):
    """NDCG@k of full ranking on a validation part, from the model's own scores after each validation pass.

    `model`: the Recommender being trained (its module is read when the value is asked for, so the
    figure is that of the weights at the end of the epoch; `monitored`: score with `monitored_scores`, the
    part being trained, rather than the whole model); `users`, `items`: index arrays of the held-out
    interactions (ids known to the model). The user's training items (`model.seen`) are excluded from the
    ranking; ties go against the held-out item (`helpers.metrics`). Users beyond `max_users` are
    subsampled once, seeded, so each epoch scores the same users. `block`: users scored at once (None: as
    many as keep a block within BLOCK_SCORES scores; in one session the default fit at 50,000 items peaked at
    4.1 GB with it against 6.8 GB with blocks of 1,024 users, benchmarks/budget.py --child).

    `from_batches=True` (the multinomial objective, whose validation batches are users with their scores over the
    whole catalogue and targets marking the held-out items 1 and the training items -1: `UserBatches` with
    `exclude`): the figure is accumulated from those batches' predictions instead of scoring the users again,
    the same scores and so the same value (they are the monitored scores: the module's catalogue logits in
    eval mode). Measured on the default's fit of 9,000 users and 17,600 items (benchmarks/budget.py, 3,323
    validation users, 18 epochs): each epoch's validation, loss pass and figure, took 1.02 s instead of 1.56 s
    (0.55 s of it the figure scoring the users again). It falls back to scoring the users
    when a batch's scores are not float32 (mixed precision) or the batches did not cover every sampled user.
    """
    def __init__(self, model, users, items, k: int = 10, max_users: int = MAX_VALIDATION_USERS, seed: int = 0,
                 block: int | None = None, monitored: bool = True, from_batches: bool = False):
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if len(users) == 0:
            raise ValueError("the validation part has no interaction of a known user and item; carve a larger one "
                             "(helpers.data.validation_split) or turn early stopping off (early_stopping=False)")
        uniq = np.unique(users)
        if len(uniq) > max_users:
            uniq = np.sort(np.random.default_rng(seed).choice(uniq, max_users, replace=False))
        block = max(1, min(1024, BLOCK_SCORES // max(int(model.n_items), 1))) if block is None else int(block)
        self.model, self.k, self.block, self.monitored = model, int(k), block, bool(monitored)
        self.users = uniq
        self.held = interaction_matrix(users, items, model.n_users, model.n_items)
        self.from_batches = bool(from_batches) and self.monitored
        self._scored = np.zeros(max(model.n_users, int(uniq.max()) + 1), dtype=bool)
        self._scored[uniq] = True
        self.reset()

    @classmethod
    def of_frame(cls, model, frame, **kwargs) -> ValidationNDCG:
        """The metric on the rows of a (user_id, item_id) frame whose user and item the model knows."""
        users = model.user_index(frame["user_id"].to_numpy())
        items = model.item_index(frame["item_id"].to_numpy())
        keep = (users >= 0) & (items >= 0)
        return cls(model, users[keep], items[keep], **kwargs)

    @property
    def name(self) -> str:
        return f"ndcg_at_{self.k}"

    def reset(self):
        self._value = np.nan
        self._total, self._count, self._usable = 0.0, 0, self.from_batches

    def accumulate(self, learn):
        """With `from_batches`: add the batch's users (those sampled) to the sum; otherwise nothing (the users
        are scored once per validation pass, from the module, in `value`)."""
        if not self._usable:
            return
        scores, target = learn.pred, learn.yb[0]
        if scores.dtype != torch.float32 or scores.shape != target.shape:
            self._usable = False
            return
        keep = torch.from_numpy(self._scored[learn.xb[0].cpu().numpy()]).to(scores.device)
        if not bool(keep.any()):
            return
        if not bool(keep.all()):
            scores, target = scores[keep], target[keep]
        # the held-out items' scores gathered into [users, most held out] (-inf padding), not a masked copy of the
        # batch's scores: per [128, 17,600] batch 13 ms instead of 19 ms
        rows, cols = (target > 0).nonzero(as_tuple=True)
        n_relevant = torch.bincount(rows, minlength=len(scores))
        first = torch.cumsum(n_relevant, 0) - n_relevant
        mine = torch.full((len(scores), max(int(n_relevant.max()), 1)), -torch.inf, device=scores.device)
        mine[rows, torch.arange(len(rows), device=rows.device) - first[rows]] = scores[rows, cols]
        n_relevant = n_relevant.cpu()
        positions = positions_from_scores(scores.masked_fill(target != 0, -torch.inf), mine, n_relevant, within=self.k)
        self._total += float(ndcg_at_k(positions, self.k, n_relevant=n_relevant.numpy()).sum())
        self._count += int(keep.sum())

    @property
    def value(self) -> float:
        if np.isnan(self._value):
            whole = self._usable and self._count == len(self.users)
            self._value = self._total / self._count if whole else self.mean_over_users()
        return self._value

    @torch.no_grad()
    def mean_over_users(self) -> float:
        """Mean NDCG@k over the validation users with the model's current weights."""
        module = getattr(self.model, "module", None)  # closed-form models (the baselines) have none
        was_training = module is not None and module.training
        if module is not None:
            module.eval()
        total = 0.0
        try:
            for start in range(0, len(self.users), self.block):
                users = self.users[start:start + self.block]
                scores = self._scores(users)
                relevant = self.held[users].toarray() > 0
                seen = self.model.seen[users].toarray() > 0
                positions = relevant_positions(scores, relevant, seen & ~relevant, within=self.k)
                total += float(ndcg_at_k(positions, self.k, n_relevant=relevant.sum(1)).sum())
        finally:
            if module is not None:
                module.train(was_training)
        return total / len(self.users)


    def _scores(self, users) -> torch.Tensor:
        """monitored=True: what early stopping follows (`NeuralRecommender.monitored_scores`); False: the model's
        full score. The training items are excluded from the ranking, so they are not rescored."""
        if not isinstance(self.model, NeuralRecommender):
            return self.model.score_users(users)
        return self.model.monitored_scores(users) if self.monitored else self.model.score_users(users, rescore_seen=False)


class StopAfterEpochs(Callback):
    """End the fit after `n` epochs (the schedule stays that of the full `fit_one_cycle`, so a refit for the
    epoch count early stopping chose follows the validated trajectory, on more data)."""
    order = 70

    def __init__(self, n: int):
        self.n = int(n)

    def after_epoch(self):
        if self.epoch + 1 >= self.n:
            raise CancelFitException()


def monitored(task: str, k: int = 10) -> tuple[str, np.ufunc]:
    """(name, comparison) of the figure model selection follows: NDCG@k (higher is better) for the implicit
    task, validation RMSE (lower is better) for ratings; the name of its column in `loss_history`."""
    return (f"ndcg_at_{k}", np.greater) if task == "implicit" else ("rmse", np.less)


def recorder_name(monitor: str) -> str:
    """The name fastai's Recorder gives the figure (fastai's `rmse` metric is recorded as "_rmse")."""
    return "_rmse" if monitor == "rmse" else monitor


# fastai's fit_one_cycle raises the learning rate over its first 25% of epochs (pct_start): no stopping then
WARMUP_SHARE = 0.25


class EarlyStoppingAfterWarmup(EarlyStoppingCallback):
    """fastai's `EarlyStoppingCallback` that does not stop during the first `min_epochs` epochs (the one-cycle
    warm-up, while the learning rate still rises). It still tracks the best epoch there. Why our own subclass:
    with `patience` 5 the plain callback stopped a CollabNN after 6 of 50 epochs, on the noisy plateau of
    the first epochs (610 validation users, one item each: validation NDCG@10 0.047 and test 0.478, where
    the other seeds reach 0.10-0.13 and 0.65; benchmarks/logs/hybrid_design.md); the patience
    is counted from the end of the warm-up, not from the best epoch: counted from the best one, the default on
    ml-100k temporal (seed 1) stopped at epoch 14 keeping epoch 5, validation NDCG@10 0.137 against 0.196 at
    epoch 31 (benchmarks/logs/warmup_patience.md)."""
    def __init__(self, min_epochs: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.min_epochs = int(min_epochs)

    def after_epoch(self):
        if self.epoch + 1 > self.min_epochs:
            super().after_epoch()
            return
        TrackerCallback.after_epoch(self)  # best value kept, no stopping yet
        if self.new_best:
            self.wait = 0


def selection_callbacks(task: str, patience: int, fname: str, epochs: int = 0) -> list[Callback]:
    """Early stopping (stop after `patience` epochs without a better validation figure, never within the
    warm-up: `EarlyStoppingAfterWarmup`) and fastai's `SaveModelCallback` (save each better epoch to `fname`,
    load the best one when the fit ends)."""
    name, comp = monitored(task)
    monitor = recorder_name(name)
    warmup = int(np.ceil(WARMUP_SHARE * int(epochs)))
    return [EarlyStoppingAfterWarmup(min_epochs=warmup, monitor=monitor, comp=comp, patience=int(patience)),
            SaveModelCallback(monitor=monitor, comp=comp, fname=fname, with_opt=False)]
