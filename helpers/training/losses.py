"""Training objectives of the implicit task, the rating task's MSE, and the rule `loss="auto"` follows.

- "multinomial": per user, a softmax over the whole catalogue whose targets are the user's items (the
  multinomial likelihood of Mult-DAE / Mult-VAE, Liang et al. 2018); needs a dot-product score. On large
  catalogues (`catalogue_samples`, see `resolve_catalogue_samples`) a sampled softmax: the batch's items plus
  uniformly drawn ones with the logQ correction.
- "bce": binary cross-entropy per (user, item) row against `neg_ratio` sampled negatives.
- "softmax" / "bpr": over groups of 1 positive + `neg_ratio` negatives.
- "auto": "multinomial" when the model allows it and users x items <= CATALOGUE_BUDGET, else "bce".
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

IMPLICIT_LOSSES = {"auto": "multinomial when the model allows it and users x items <= CATALOGUE_BUDGET, else bce",
                   "multinomial": "per user, softmax over the catalogue of the user's items (Mult-DAE); sampled on large ones",
                   "bce": "binary cross-entropy per row (pointwise)",
                   "softmax": "sampled softmax: cross-entropy of the positive among its 1 + neg_ratio group",
                   "bpr": "BPR: mean -log sigmoid(positive - negative) over the group"}


# "auto" takes the multinomial objective up to this many (user, item) scores per epoch: about 8 GFLOP
# per 10^6 pairs at 128 factors, i.e. well under a minute per epoch on a laptop CPU; beyond it, the
# sampled negatives of "bce" cost (1 + neg_ratio) scores per interaction instead.
CATALOGUE_BUDGET = 2 * 10**8


# The multinomial objective's softmax over the whole catalogue costs users x items scores (and a dense update of
# the item table) per epoch. Above SAMPLED_SOFTMAX_BUDGET of them, `catalogue_samples=None` ("auto") trains it as
# a sampled softmax instead: each batch of users scores their own items plus CATALOGUE_SAMPLES uniformly drawn
# items with the logQ correction (`helpers.training.loaders.UserBatches`), when the catalogue has at least
# 4 x CATALOGUE_SAMPLES items (below, sampling saves little). Chosen by measurement on validation:
# benchmarks/logs/sampled_softmax.md.
SAMPLED_SOFTMAX_BUDGET = 5 * 10**7
CATALOGUE_SAMPLES = 2_048


def resolve_catalogue_samples(value: int | None, n_users: int, n_items: int) -> int | None:
    """Items sampled per batch by the multinomial objective on n_users x n_items, None for the whole catalogue:
    `value` None ("auto": see SAMPLED_SOFTMAX_BUDGET), 0 (always the whole catalogue) or a number of items."""
    if value is None:
        large = int(n_users) * int(n_items) > SAMPLED_SOFTMAX_BUDGET and int(n_items) >= 4 * CATALOGUE_SAMPLES
        return CATALOGUE_SAMPLES if large else None
    if int(value) < 0:
        raise ValueError(f"catalogue_samples must be None (auto), 0 (the whole catalogue) or a positive count, got {value!r}")
    return int(value) or None


def multinomial_nll(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multinomial negative log-likelihood: -sum(target * log_softmax(scores over the catalogue)) / sum(target),
    i.e. the mean over a batch's (user, item) targets of -log p(item | user). Items whose target is -1
    (validation: the user's training items) are left out of the softmax."""
    pred = pred.float()
    # training batches (targets 0 / 1) are told from validation ones by their smallest target: one reduction, where
    # a `(target < 0).any()` mask cost 0.6 ms of a 2.2 ms loss step on [128, 1,682] (same session, ml-100k's shape)
    if target.numel() and target.min() < 0:
        # validation: the same value as log_softmax over the items left in, in fewer passes over users x catalogue:
        # -sum_i t_i log p_i = n_u logsumexp(excluded left out) - sum_i t_i s_i; per [128, 17,600] batch 20 ms, not 32
        excluded = target < 0
        lse = torch.logsumexp(pred.masked_fill(excluded, float("-inf")), dim=1)
        target = target.clamp(min=0)
        n = target.sum(1)
        return (torch.where(n > 0, lse * n, 0.0).sum() - (target * pred).sum()) / n.sum().clamp(min=1)
    # log_softmax of finite scores is finite, so the zero targets need no mask: the same value and gradient, bit for
    # bit, as masking them first (a non-finite score makes the loss non-finite either way, and stops the fit)
    logp = torch.log_softmax(pred, dim=1)
    return -(logp * target).sum() / target.sum().clamp(min=1)


class CatalogueScores(torch.nn.Module):
    """What the fastai Learner trains under the multinomial objective: users [B] -> scores [B, n_items]
    (`module.catalogue_logits`), or, for a sampled-softmax batch (`UserBatches(samples=...)`), users,
    candidates [C] and their log weights -> scores [B, C] of the candidates plus their log weights (empty
    candidates: the whole catalogue, `UserBatches(whole_candidates=True)`); the parameters are the wrapped
    module's own."""
    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module

    def forward(self, users: torch.Tensor, candidates: torch.Tensor | None = None,
                log_weights: torch.Tensor | None = None) -> torch.Tensor:
        if candidates is None or len(candidates) == 0:   # no candidates given: the whole catalogue
            return self.module.catalogue_logits(users)
        return self.module.catalogue_logits(users, candidates) + log_weights[None, :]


def resolve_loss(model, n_users: int, n_items: int, loss: str | None = None) -> str:
    """The implicit-task loss `model` trains with on n_users x n_items: `loss` (default: the model's `loss`
    key), "auto" resolved (see IMPLICIT_LOSSES)."""
    loss = loss or model.config.get("loss") or "auto"
    if loss not in IMPLICIT_LOSSES:
        raise ValueError(f"unknown loss {loss!r} for the implicit task; choose one of {list(IMPLICIT_LOSSES)}")
    if loss != "auto":
        return loss
    fits = int(n_users) * int(n_items) <= CATALOGUE_BUDGET
    return "multinomial" if fits and model.supports_catalogue_loss() else "bce"


def bce_with_logits(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits (implicit task)."""
    return F.binary_cross_entropy_with_logits(pred.float().view(-1), target.float().view(-1))


class GroupRankingLoss:
    """Ranking loss over batches of whole groups (1 positive + k negatives, `TensorBatches(grouped=True)`).

    "softmax": mean over groups of -log softmax(scores)[positive] (sampled softmax / listwise
    cross-entropy; uniform negatives, so no logQ correction); "bpr": mean over groups and negatives of
    -log sigmoid(s_pos - s_neg). The positive is the row with target 1 (the first of its group).
    """
    def __init__(self, kind: str, group: int):
        if kind not in ("softmax", "bpr"):
            raise ValueError(f"unknown ranking loss {kind!r}; choose 'softmax' or 'bpr'")
        if group < 2:
            raise ValueError(f"a group needs a positive and at least one negative, got group size {group}")
        self.kind, self.group = kind, int(group)
        self.__name__ = f"{kind}_loss"

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        s = pred.float().view(-1, self.group)
        t = target.float().view(-1, self.group)
        if self.kind == "softmax":
            return -(torch.log_softmax(s, 1) * t).sum(1).mean()
        pos = (s * t).sum(1, keepdim=True)
        return -(F.logsigmoid(pos - s) * (1 - t)).sum(1).div((1 - t).sum(1).clamp(min=1)).mean()

    def __repr__(self) -> str:
        return f"GroupRankingLoss({self.kind!r}, group={self.group})"


def implicit_loss(kind: str = "bce", neg_ratio: int = 4):
    """The loss function for the implicit task (see `IMPLICIT_LOSSES`; "auto" must be resolved first)."""
    if kind not in IMPLICIT_LOSSES or kind == "auto":
        raise ValueError(f"unknown loss {kind!r} for the implicit task; choose one of "
                         f"{[k for k in IMPLICIT_LOSSES if k != 'auto']} (resolve 'auto' with resolve_loss)")
    if kind == "multinomial":
        return multinomial_nll
    return bce_with_logits if kind == "bce" else GroupRankingLoss(kind, 1 + int(neg_ratio))


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error (rating task)."""
    return F.mse_loss(pred.float().view(-1), target.float().view(-1))

