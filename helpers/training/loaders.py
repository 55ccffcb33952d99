"""Batches for fastai's `DataLoaders`, built from tensors (no per-row Python): (user, item) rows with
negatives re-drawn every epoch (`TensorBatches`), or batches of users whose items are the targets of
one softmax over the catalogue (`UserBatches`, the multinomial objective).
"""
from __future__ import annotations

import numpy as np
import torch
from fastai.data.core import DataLoaders

from helpers.data.interactions import csr_pairs, interaction_matrix
from helpers.data.sampling import NegativeSampler, epoch_generator


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

    def to(self, device) -> TensorBatches:
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
            perm = torch.randperm(len(x), generator=epoch_generator(self.seed, self.epoch))
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

    `samples` (training only): a sampled softmax instead of the whole catalogue. Each batch's candidates are
    the union of its users' items (scored exactly: every target is in the softmax) and `samples` items drawn
    uniformly without replacement from the catalogue, those of them outside the union standing for the whole
    rest of the catalogue: each gets the log weight log((n_items - |union|) / kept), so the softmax's
    denominator is an unbiased estimate of the full one (the logQ correction of sampled softmax, Jean et al.
    2015, Bengio & Senecal 2008, for a uniform proposal). Batches are then `(users [B], candidates [C],
    log_weights [C], targets [B, C])`: the cost per batch follows C instead of n_items. `whole_candidates`
    gives batches of that shape whose candidates and log weights are empty, which `CatalogueScores` reads as the
    whole catalogue (scored from the item table, with no gather of it and no zero weights added: a third of
    a validation batch's time at 17,600 items): a validation loader beside sampled training batches (fastai reads
    the number of inputs from the training loader).
    """
    n_inp = 1

    def __init__(self, indptr, indices, n_items: int, batch_size: int, shuffle: bool = False, seed: int = 0,
                 device="cpu", exclude=None, samples: int | None = None, whole_candidates: bool = False):
        self.indptr = torch.as_tensor(np.asarray(indptr, dtype=np.int64))
        self.indices = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        self.exclude = (None if exclude is None else
                        tuple(torch.as_tensor(np.asarray(a, dtype=np.int64)) for a in exclude))
        self.n_items = int(n_items)
        self.users = torch.nonzero(self.indptr[1:] > self.indptr[:-1]).view(-1)
        self.bs, self.shuffle, self.seed = max(1, int(batch_size)), shuffle, seed
        self.device = torch.device(device)
        self.epoch = 0
        if samples is not None and (int(samples) < 1 or exclude is not None):
            raise ValueError(f"samples must be a positive number of sampled items for training batches, got {samples!r}")
        self.samples = None if samples is None else int(samples)
        self.whole_candidates = bool(whole_candidates) and self.samples is None
        self.n_inp = 3 if (self.samples is not None or self.whole_candidates) else 1

    @property
    def n(self) -> int:
        """Users per pass."""
        return len(self.users)

    def __len__(self) -> int:
        return (self.n + self.bs - 1) // self.bs

    def to(self, device) -> UserBatches:
        self.device = torch.device(device)
        return self

    def targets(self, users: torch.Tensor) -> torch.Tensor:

        y = torch.zeros(len(users), self.n_items)
        if self.exclude is not None:
            y[csr_pairs(*self.exclude, users)] = -1.0
        y[csr_pairs(self.indptr, self.indices, users)] = 1.0
        return y

    def sampled_batch(self, users: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """(users, candidates, log_weights, targets [B, C]) of one sampled-softmax batch (see the class docstring)."""
        rows, items = csr_pairs(self.indptr, self.indices, users)
        union = torch.unique(items)
        drawn = torch.randperm(self.n_items, generator=generator)[:self.samples]
        extra = drawn[~torch.isin(drawn, union)]
        candidates = torch.cat([union, extra])
        log_weights = torch.zeros(len(candidates))
        if len(extra):
            log_weights[len(union):] = float(np.log((self.n_items - len(union)) / len(extra)))
        y = torch.zeros(len(users), len(candidates))
        y[rows, torch.searchsorted(union, items)] = 1.0
        return users, candidates, log_weights, y

    def __iter__(self):
        users = self.users
        if self.shuffle:
            users = users[torch.randperm(len(users), generator=epoch_generator(self.seed, self.epoch))]
        draws = epoch_generator(self.seed + 1, self.epoch) if self.samples is not None else None
        whole, no_weight = torch.zeros(0, dtype=torch.long), torch.zeros(0)   # whole_candidates: the whole catalogue
        self.epoch += 1
        for b in range(len(self)):
            ub = users[b * self.bs:(b + 1) * self.bs]
            if draws is not None:
                yield _to_device(self.device, *self.sampled_batch(ub, draws))
            elif self.whole_candidates:
                yield _to_device(self.device, ub, whole, no_weight, self.targets(ub))
            else:
                yield _to_device(self.device, ub, self.targets(ub))


def build_dataloaders(users, items, ratings, n_items: int, task: str, batch_size: int, neg_ratio: int = 4,
                      seed: int = 0, device="cpu", valid=None, grouped: bool = False, multinomial: bool = False,
                      samples: int | None = None):
    """fastai DataLoaders: the training batches and (optional) validation batches.

    multinomial: batches of users (`UserBatches`), targets = each user's items (training batches as a sampled
    softmax over their items and `samples` drawn items when `samples` is given); validation batches
    hold the users of `valid` with their held-out items as targets, the training items left out of
    the softmax (the held-out items compete with the items a recommendation could show).

    grouped: batches of whole (1 positive + neg_ratio negatives) groups, training and validation
    alike (implicit task, for the ranking losses).

    valid: (users, items, ratings) index arrays of held-out interactions (unknown ids removed), or None.
    For the implicit task, validation negatives (same ratio, never a train or validation positive of
    the user) are drawn once with `seed`, so the validation loss is comparable across epochs.
    """
    if multinomial:

        n_users = int(max(users.max(initial=-1), valid[0].max(initial=-1) if valid is not None else -1)) + 1
        seen = interaction_matrix(users, items, n_users, n_items)
        train_dl = UserBatches(seen.indptr, seen.indices, n_items, batch_size, shuffle=True, seed=seed, device=device,
                               samples=samples)
        if valid is None or len(valid[0]) == 0:
            valid_dl = TensorBatches([], [], [], batch_size, device=device)
        else:
            held = interaction_matrix(valid[0], valid[1], n_users, n_items)
            valid_dl = UserBatches(held.indptr, held.indices, n_items, batch_size, device=device,
                                   exclude=(seen.indptr, seen.indices), whole_candidates=samples is not None)
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

