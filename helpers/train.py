"""Training the neural models through fastai: data from tensors, negatives, device, seeds, optimiser.

Entry points (see also `helpers.models`):

    model = make_model("collabnn", task="implicit", epochs=12)   # validated config, unknown keys rejected
    model.fit(train_df, valid=evaluation_df)                     # fastai Learner + fit_one_cycle
    model = train_model(train_df, model="collabnn", task="implicit", seed=0)   # the same in one call
    suggestion = find_lr(make_model(...), train_df)              # fastai lr_find on a throwaway copy

Tasks:
- "rating": mean squared error on the ratings, output squashed into y_range (fastai collab style);
- "implicit", `loss` (see `IMPLICIT_LOSSES`):
  * "multinomial": batches of users; each user's training items are the targets of one softmax over
    the whole catalogue (the multinomial likelihood of Mult-DAE / Mult-VAE, Liang et al. 2018), the
    user's history going into the user vector with `history_dropout` of its items hidden at each
    pass (the denoising). Needs a score that is a dot product over the catalogue (`CollabNN` with
    `layers=[]`, `mf`) and costs users x items per epoch (`UserBatches`, `multinomial_nll`).
  * "bce": every observed (user, item) against `neg_ratio` negatives per positive, re-drawn every
    epoch, vectorised, never an item of that user; binary cross-entropy, each row on its own;
  * "softmax" sampled softmax (listwise cross-entropy of the positive within its group of
    1 positive + `neg_ratio` negatives, no logQ correction since negatives are uniform); "bpr" mean
    -log sigmoid(s_pos - s_neg) over the group. These two need batches of whole groups:
    `TensorBatches(..., grouped=True)`;
  * "auto" (the default of collabnn): "multinomial" when the model allows it and users x items
    <= `CATALOGUE_BUDGET`, else "bce". Keys left unset (None) in a model's defaults (epochs, lr,
    wd, batch size, ...) are then filled from the model's `loss_defaults` for the chosen loss.

Device: "auto" takes CUDA when present (then pinned host memory and bf16/fp16 mixed precision),
else the CPU; chosen once per fit. Seeds: Python's random, numpy and torch, from `seed`.
"""
from __future__ import annotations

import random
import tempfile
import time
from importlib import metadata as importlib_metadata

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

TASKS = {"implicit": "multinomial softmax over the catalogue, or binary cross-entropy (softmax / bpr) vs sampled "
                     "negatives (score = logit)",
         "rating": "mean squared error on ratings (score = predicted rating in y_range)"}
DEVICES = ["auto", "cpu", "cuda"]
IMPLICIT_LOSSES = {"auto": "multinomial when the model allows it and users x items <= CATALOGUE_BUDGET, else bce",
                   "multinomial": "per user, softmax over the whole catalogue of the user's items (Mult-DAE)",
                   "bce": "binary cross-entropy per row (pointwise)",
                   "softmax": "sampled softmax: cross-entropy of the positive among its 1 + neg_ratio group",
                   "bpr": "BPR: mean -log sigmoid(positive - negative) over the group"}
# "auto" takes the multinomial objective up to this many (user, item) scores per epoch: about 8 GFLOP
# per 10^6 pairs at 128 factors, i.e. well under a minute per epoch on a laptop CPU; beyond it, the
# sampled negatives of "bce" cost (1 + neg_ratio) scores per interaction instead.
CATALOGUE_BUDGET = 2 * 10**8


# --------------------------------------------------------------------------- config, device, seeds
def check_config(config: dict, allowed, what: str = "config") -> None:
    """Raise a one-line ValueError naming unknown keys and the allowed ones."""
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {what} key(s) {unknown}; allowed: {sorted(allowed)}")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> CUDA when available, else CPU; "cpu" / "cuda" / "cuda:N" as given (CUDA must exist)."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"unknown device {device!r}; choose one of {DEVICES}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA GPU is available; use device='auto' or 'cpu'")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python's random, numpy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def library_versions() -> dict:
    """Versions of the libraries a saved model depends on (for its metadata)."""
    out = {}
    for pkg in ("torch", "fastai", "numpy", "pandas"):
        try:
            out[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            out[pkg] = None
    return out


# --------------------------------------------------------------------------- negatives
class NegativeSampler:
    """Draws `ratio` negatives per positive, uniformly over items the user has not interacted with.

    Vectorised: all draws at once, collisions with the user's positives found by a binary search
    in the sorted (user * n_items + item) codes and re-drawn until none is left.
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, n_items: int, ratio: int = 4):
        if ratio < 1:
            raise ValueError(f"neg_ratio must be >= 1 for the implicit task, got {ratio}")
        self.users = np.asarray(users, dtype=np.int64)
        self.n_items, self.ratio = int(n_items), int(ratio)
        self.codes = np.unique(self.users * self.n_items + np.asarray(items, dtype=np.int64))
        per_user = np.bincount(self.codes // self.n_items)
        if len(per_user) and per_user.max() >= self.n_items:
            raise ValueError("a user has interacted with every item, so no negative can be drawn for them; "
                             "drop such users or use task='rating'")

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        q = users * self.n_items + items
        pos = np.minimum(np.searchsorted(self.codes, q), len(self.codes) - 1)
        return self.codes[pos] == q

    def draw(self, rng: np.random.Generator, users: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(users, items) of `ratio` negatives for each positive of `users` (default: the training positives)."""
        users = np.repeat(self.users if users is None else np.asarray(users, dtype=np.int64), self.ratio)
        items = rng.integers(0, self.n_items, size=len(users))
        bad = np.flatnonzero(self.is_positive(users, items))
        while len(bad):
            items[bad] = rng.integers(0, self.n_items, size=len(bad))
            bad = bad[self.is_positive(users[bad], items[bad])]
        return users, items


# --------------------------------------------------------------------------- data loading
def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The seeded generator of one pass's shuffle (the same for every loader and process)."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def _to_device(device: torch.device, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The tensors on `device`: through pinned memory and an asynchronous copy on CUDA, as they are otherwise."""
    if device.type != "cuda":
        return tensors
    return tuple(t.pin_memory().to(device, non_blocking=True) for t in tensors)


class TensorBatches:
    """Mini-batches `(x [B, 2] long, y [B] float)` sliced from tensors; what fastai's Learner iterates.

    Each pass (epoch) builds the epoch's tensors once (for the implicit task: positives plus freshly
    drawn negatives), shuffles them with a seeded permutation, moves them to the device in one
    transfer (from pinned memory on CUDA), and yields slices: no per-row Python.

    `grouped=True` (with a sampler; for the ranking losses): rows come in groups of `group` =
    1 + ratio, the positive first and then its own negatives; groups are shuffled as wholes and the
    batch size is rounded down to a multiple of `group`, so every batch holds whole groups.
    """

    n_inp = 1

    def __init__(self, users, items, targets, batch_size: int, shuffle: bool = False, sampler=None,
                 seed: int = 0, device="cpu", drop_last: bool = False, grouped: bool = False):
        self.users = torch.tensor(np.asarray(users, dtype=np.int64))
        self.items = torch.tensor(np.asarray(items, dtype=np.int64))
        self.targets = torch.tensor(np.asarray(targets, dtype=np.float32))
        if grouped and sampler is None:
            raise ValueError("grouped=True needs a NegativeSampler (groups are 1 positive + its negatives)")
        self.grouped = bool(grouped)
        self.group = 1 + sampler.ratio if self.grouped else 1
        batch_size = max(self.group, int(batch_size) // self.group * self.group)
        self.bs, self.shuffle, self.sampler, self.seed = int(batch_size), shuffle, sampler, seed
        self.drop_last = drop_last
        self.device = torch.device(device)
        self.epoch = 0

    @property
    def n(self) -> int:
        """Samples per pass."""
        return len(self.users) * (1 + (self.sampler.ratio if self.sampler is not None else 0))

    def __len__(self) -> int:
        n = self.n
        if self.drop_last and n > self.bs:
            return n // self.bs
        return (n + self.bs - 1) // self.bs

    def to(self, device) -> "TensorBatches":
        self.device = torch.device(device)
        return self

    def epoch_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (x, y) of one pass, shuffled when `shuffle`; negatives re-drawn when a sampler is set."""
        u, i, y = self.users, self.items, self.targets
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.grouped:  # [P, g, 2] / [P, g]: each positive followed by its own negatives, shuffled as a whole
            _, ni = self.sampler.draw(rng, users=u.numpy())  # ratio negatives per positive, in order
            g = self.group
            items = torch.cat([i[:, None], torch.from_numpy(ni).view(-1, g - 1)], 1)
            x = torch.stack([u[:, None].expand(-1, g), items], 2)
            y = torch.cat([y[:, None], torch.zeros(len(u), g - 1)], 1)
        else:
            if self.sampler is not None:
                nu, ni = self.sampler.draw(rng)
                u = torch.cat([u, torch.from_numpy(nu)])
                i = torch.cat([i, torch.from_numpy(ni)])
                y = torch.cat([y, torch.zeros(len(nu))])
            x = torch.stack([u, i], 1)
        if self.shuffle:
            perm = torch.randperm(len(x), generator=_epoch_generator(self.seed, self.epoch))
            x, y = x[perm], y[perm]
        self.epoch += 1
        return _to_device(self.device, x.reshape(-1, 2), y.reshape(-1))

    def __iter__(self):
        x, y = self.epoch_tensors()
        for b in range(len(self)):
            yield x[b * self.bs:(b + 1) * self.bs], y[b * self.bs:(b + 1) * self.bs]


class UserBatches:
    """Mini-batches of users for the multinomial objective: `(users [B] long, targets [B, n_items] float)`.

    `targets` is the multi-hot row of each user's items (their training items; for validation, their
    held-out items), built per batch from a CSR (`indptr`, `indices`), so memory follows the batch.
    `exclude` (another CSR, for validation: the training items) marks items with -1: `multinomial_nll`
    leaves them out of the softmax, as ranking leaves a user's known items out.
    Users are shuffled every pass with a seeded permutation; users without targets are skipped.
    """

    n_inp = 1

    def __init__(self, indptr, indices, n_items: int, batch_size: int, shuffle: bool = False, seed: int = 0,
                 device="cpu", exclude=None):
        self.indptr = torch.as_tensor(np.asarray(indptr, dtype=np.int64))
        self.indices = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        self.exclude = (None if exclude is None else
                        tuple(torch.as_tensor(np.asarray(a, dtype=np.int64)) for a in exclude))
        self.n_items = int(n_items)
        self.users = torch.nonzero(self.indptr[1:] > self.indptr[:-1]).view(-1)
        self.bs, self.shuffle, self.seed = max(1, int(batch_size)), shuffle, seed
        self.device = torch.device(device)
        self.epoch = 0

    @property
    def n(self) -> int:
        """Users per pass."""
        return len(self.users)

    def __len__(self) -> int:
        return (self.n + self.bs - 1) // self.bs

    def to(self, device) -> "UserBatches":
        self.device = torch.device(device)
        return self

    def targets(self, users: torch.Tensor) -> torch.Tensor:
        from helpers.models import csr_pairs

        y = torch.zeros(len(users), self.n_items)
        if self.exclude is not None:
            y[csr_pairs(*self.exclude, users)] = -1.0
        y[csr_pairs(self.indptr, self.indices, users)] = 1.0
        return y

    def __iter__(self):
        users = self.users
        if self.shuffle:
            users = users[torch.randperm(len(users), generator=_epoch_generator(self.seed, self.epoch))]
        self.epoch += 1
        for b in range(len(self)):
            ub = users[b * self.bs:(b + 1) * self.bs]
            yield _to_device(self.device, ub, self.targets(ub))


def multinomial_nll(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multinomial negative log-likelihood: -sum(target * log_softmax(scores over the catalogue)) / sum(target),
    i.e. the mean over a batch's (user, item) targets of -log p(item | user). Items whose target is -1
    (validation: the user's training items) are left out of the softmax."""
    pred = pred.float()
    if (target < 0).any():
        pred = pred.masked_fill(target < 0, float("-inf"))
        target = target.clamp(min=0)
    logp = torch.log_softmax(pred, dim=1)
    return -(logp.masked_fill(target == 0, 0.0) * target).sum() / target.sum().clamp(min=1)


class CatalogueScores(torch.nn.Module):
    """What the fastai Learner trains under the multinomial objective: users [B] -> scores [B, n_items]
    (`module.catalogue_logits`); the parameters are the wrapped module's own."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module

    def forward(self, users: torch.Tensor) -> torch.Tensor:
        return self.module.catalogue_logits(users)


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


def build_dataloaders(users, items, ratings, n_items: int, task: str, batch_size: int, neg_ratio: int = 4,
                      seed: int = 0, device="cpu", valid=None, grouped: bool = False, multinomial: bool = False):
    """fastai DataLoaders: the training batches and (optional) validation batches.

    multinomial: batches of users (`UserBatches`), targets = each user's items; validation batches
    hold the users of `valid` with their held-out items as targets, the training items left out of
    the softmax (the held-out items compete with the items a recommendation could show).

    grouped: batches of whole (1 positive + neg_ratio negatives) groups, training and validation
    alike (implicit task, for the ranking losses).

    valid: (users, items, ratings) index arrays of held-out interactions (unknown ids removed), or None.
    For the implicit task, validation negatives (same ratio, never a train or validation positive of
    the user) are drawn once with `seed`, so the validation loss is comparable across epochs.
    """
    from fastai.data.core import DataLoaders

    if multinomial:
        from helpers.recommender import interaction_matrix

        n_users = int(max(users.max(initial=-1), valid[0].max(initial=-1) if valid is not None else -1)) + 1
        seen = interaction_matrix(users, items, n_users, n_items)
        train_dl = UserBatches(seen.indptr, seen.indices, n_items, batch_size, shuffle=True, seed=seed, device=device)
        if valid is None or len(valid[0]) == 0:
            valid_dl = TensorBatches([], [], [], batch_size, device=device)
        else:
            held = interaction_matrix(valid[0], valid[1], n_users, n_items)
            valid_dl = UserBatches(held.indptr, held.indices, n_items, batch_size, device=device,
                                   exclude=(seen.indptr, seen.indices))
        return DataLoaders(train_dl, valid_dl, device=device)
    if task == "implicit":
        sampler = NegativeSampler(users, items, n_items, neg_ratio)
        train_dl = TensorBatches(users, items, np.ones(len(users), np.float32), batch_size, shuffle=True,
                                 sampler=sampler, seed=seed, device=device, drop_last=True, grouped=grouped)
    else:
        train_dl = TensorBatches(users, items, ratings, batch_size, shuffle=True, seed=seed, device=device,
                                 drop_last=True)
    if valid is None or len(valid[0]) == 0:
        valid_dl = TensorBatches([], [], [], batch_size, device=device)
    elif task == "implicit":
        vu, vi, _ = valid
        both = NegativeSampler(np.concatenate([users, vu]), np.concatenate([items, vi]), n_items, neg_ratio)
        nu, ni = both.draw(np.random.default_rng([seed, 10**6]), users=vu)
        if grouped:  # draw() keeps each positive's negatives together: lay them out as groups
            g = 1 + neg_ratio
            gi = np.concatenate([vi[:, None], ni.reshape(-1, neg_ratio)], 1).reshape(-1)
            gy = np.concatenate([np.ones((len(vu), 1)), np.zeros((len(vu), neg_ratio))], 1).reshape(-1)
            valid_dl = TensorBatches(np.repeat(vu, g), gi, gy, batch_size * 4 // g * g, device=device)
            valid_dl.group = g
            return DataLoaders(train_dl, valid_dl, device=device)
        valid_dl = TensorBatches(np.concatenate([vu, nu]), np.concatenate([vi, ni]),
                                 np.r_[np.ones(len(vu)), np.zeros(len(nu))], batch_size * 4, device=device)
    else:
        vu, vi, vr = valid
        valid_dl = TensorBatches(vu, vi, vr, batch_size * 4, device=device)
    return DataLoaders(train_dl, valid_dl, device=device)


# --------------------------------------------------------------------------- optimiser
class LazyAdam(torch.optim.Optimizer):
    """Adam with decoupled weight decay (AdamW) that accepts sparse gradients.

    For a sparse gradient (an `Embedding(sparse=True)`) only the rows in the batch are updated:
    their moments, their weight decay and their values ("lazy" Adam, as TensorFlow's LazyAdam);
    the cost of a step is proportional to the batch, not to the table. Dense gradients get AdamW.
    Used through fastai's `OptimWrapper`, so fit_one_cycle schedules lr and beta1 as usual.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.99), eps: float = 1e-5, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                bc1, bc2 = 1 - b1 ** state["step"], 1 - b2 ** state["step"]
                m, v, g = state["exp_avg"], state["exp_avg_sq"], p.grad
                if g.is_sparse:
                    g = g.coalesce()
                    rows, vals = g.indices()[0], g.values()
                    # index_select / index_copy_ rather than fancy indexing: same values, ~20% faster steps
                    m_rows = m.index_select(0, rows).mul_(b1).add_(vals, alpha=1 - b1)
                    v_rows = v.index_select(0, rows).mul_(b2).addcmul_(vals, vals, value=1 - b2)
                    m.index_copy_(0, rows, m_rows)
                    v.index_copy_(0, rows, v_rows)
                    p_rows = p.index_select(0, rows)
                    if wd:
                        p_rows.mul_(1 - lr * wd)
                    p_rows.addcdiv_(m_rows, (v_rows / bc2).sqrt_().add_(eps), value=-lr / bc1)
                    p.index_copy_(0, rows, p_rows)
                else:
                    if wd:
                        p.mul_(1 - lr * wd)
                    m.mul_(b1).add_(g, alpha=1 - b1)
                    v.mul_(b2).addcmul_(g, g, value=1 - b2)
                    p.addcdiv_(m, (v / bc2).sqrt_().add_(eps), value=-lr / bc1)
        return loss


def lazy_adam(params, lr: float = 1e-3, **kwargs):
    """fastai `opt_func` for LazyAdam (through the public `OptimWrapper`)."""
    from fastai.optimizer import OptimWrapper

    return OptimWrapper(params, opt=LazyAdam, lr=lr, **kwargs)


# --------------------------------------------------------------------------- memory
def _glibc_malloc_trim():
    """glibc's `malloc_trim`, or None where the C library is not glibc (macOS, musl, Windows)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory(every: int = 20):
    """A fastai callback that returns freed heap memory to the OS every `every` training batches (CPU).

    Sparse embedding steps allocate and free buffers of about a megabyte every batch; glibc keeps the
    freed pages, fragmented, and the resident size grew by about 1 MB per batch at Electronics' size
    (3.2-3.9 GB peak for one epoch). `malloc_trim(0)` every 20 batches kept it flat (2.5 GB peak) with
    no slower epochs (benchmarks/scale.py). Does nothing where the C library is not glibc.
    """
    from fastai.callback.core import Callback

    trim = _glibc_malloc_trim()

    class ReleaseFreedMemory(Callback):
        order = 90

        def before_fit(self):
            self.n = 0

        def after_batch(self):
            self.n += 1
            if trim is not None and self.training and self.n % every == 0:
                trim(0)

        def after_fit(self):
            if trim is not None:
                trim(0)

    return ReleaseFreedMemory()


# --------------------------------------------------------------------------- learner and fit
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
    import fastai.callback.progress  # noqa: F401  (Learner.no_bar, progress bars)
    import fastai.callback.schedule  # noqa: F401  (Learner.fit_one_cycle, Learner.lr_find)
    from fastai.learner import Learner
    from fastai.metrics import rmse
    from fastai.optimizer import Adam

    cfg = model.config
    _resolve_training_config(model, model.n_users, model.n_items)
    device = resolve_device(cfg.get("device", "auto"))
    seed_everything(int(cfg["seed"]))
    model.module = model.build_module()
    if getattr(model, "_freeze_mlp", False):  # NeuMF pretraining: a GMF alone
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
        from fastai.callback.fp16 import MixedPrecision

        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        learn.add_cb(MixedPrecision(amp_mode=amp))
    return learn


def fit_recommender(model, users, items, ratings, valid: pd.DataFrame | None = None) -> None:
    """Build the Learner and run `fit_one_cycle(epochs, lr, wd)`; fills model.learn, .losses, .metadata."""
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


# --------------------------------------------------------------------------- factories
def make_model(name: str | None = None, task: str = "implicit", **config):
    """A new, unfitted neural model by name ("collabnn" default, "mf", "neumf"); config keys validated.

    None values are ignored (the model's default is used), so callers can pass optional arguments through.
    """
    from helpers.models import DEFAULT_MODEL, MODELS

    name = name or DEFAULT_MODEL
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](task=task, **config)


def train_model(train: pd.DataFrame, model: str | None = None, task: str = "implicit",
                valid: pd.DataFrame | None = None, **config):
    """Make and fit a model on `train` (columns user_id, item_id[, rating]); returns the fitted model.

    Example: `train_model(train_df, "collabnn", task="implicit", epochs=12, seed=0)`.
    """
    return make_model(model, task=task, **config).fit(train, valid=valid)


def resolved_config(model, train: pd.DataFrame) -> dict:
    """The configuration `model.fit(train)` will use: loss "auto" resolved for this data's users x items and the
    keys left None filled from the model's `loss_defaults`. Neither `model` nor `train` is changed."""
    from helpers.models import MODELS

    probe = MODELS[model.name](**model.config)
    _resolve_training_config(probe, train["user_id"].nunique(), train["item_id"].nunique())
    return dict(probe.config)


def find_lr(model, train: pd.DataFrame, valid: pd.DataFrame | None = None, show_plot: bool = True,
            num_it: int = 100) -> float:
    """fastai's `lr_find` on an untrained copy of `model` (its weights are not touched); the valley suggestion."""
    from helpers.models import MODELS

    probe = MODELS[model.name](**{**model.config, "epochs": 0})
    probe.fit(train, valid=valid)
    with probe.learn.no_bar():
        found = probe.learn.lr_find(num_it=num_it, show_plot=show_plot)
    return float(found.valley)


# --------------------------------------------------------------------------- notebook support
NOTEBOOK_PARAMETERS = {
    "DATASET": "ml-100k | electronics | csv:PATH",
    "SPLIT": "random | leave_one_out | temporal",
    "MODEL": "collabnn | collabnn_mlp | mf | neumf",
    "TASK": "implicit | rating",
    "DEVICE": "auto | cpu | cuda",
}


def check_parameters(dataset: str, split: str, model: str, task: str, device: str, epochs=None, lr=None,
                     wd=None, emb_size=None, layers=None, seed: int = 0, sample: int = 0, loss=None) -> dict:
    """Validate training.ipynb's parameters (one-line ValueError naming the allowed values); returns
    the model keyword arguments (None values dropped, so the model's defaults apply)."""
    from helpers.data import DATASETS
    from helpers.models import MODELS
    from helpers.split import SPLITS

    if not isinstance(dataset, str) or not (dataset in DATASETS[:-1] or (dataset.startswith("csv:") and len(dataset) > 4)):
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
    kwargs = dict(epochs=epochs, lr=lr, wd=wd, emb_size=emb_size, layers=layers, seed=seed, device=device, loss=loss)
    if layers is not None and "layers" not in MODELS[model].module_keys:
        raise ValueError(f"MODEL {model!r} has no hidden layers; set LAYERS = None")
    effective_layers = layers if layers is not None else MODELS[model].defaults[task].get("layers")
    if emb_size is not None and "gmf_size" in MODELS[model].module_keys and not effective_layers:
        kwargs["gmf_size"] = kwargs.pop("emb_size")  # no MLP: the width is the GMF branch's
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    make_model(model, task=task, **kwargs)  # rejects anything the model does not accept
    return kwargs


def evaluation_summary(model, train: pd.DataFrame, evaluation: pd.DataFrame, k: int = 10,
                       n_negatives: int = 99, seed: int = 0) -> dict:
    """Quick held-out figures for the notebook. Implicit: HR@k and NDCG@k (each evaluation item vs
    `n_negatives` sampled unseen items, fewer on a small catalogue), both in [0, 1]. Rating: RMSE."""
    from helpers.evaluate import hit_rate_from_ranks, ndcg_from_ranks, sampled_candidates, sampled_ranks

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
    ranks = sampled_ranks(model, cand)
    return {f"hr@{k}": float(hit_rate_from_ranks(ranks, k).mean()), f"ndcg@{k}": float(ndcg_from_ranks(ranks, k).mean()),
            "n_negatives": n_neg, "evaluation_rows": int(len(cand))}
