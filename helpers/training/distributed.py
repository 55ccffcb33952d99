"""Training one model on N processes with PyTorch's DistributedDataParallel (DDP), through fastai.

    .venv/bin/python -m torch.distributed.run --standalone --nproc_per_node 2 \
        -m helpers.distributed --train data/train.csv --out model/collabnn_ddp.pth [--epochs 12 ...]
    make train-ddp NPROC=2 TRAIN=data/train.csv        # the same command

`torch.distributed.run` (torchrun) starts the N processes; each builds the same model (same seed)
and the same fastai Learner (`helpers.training`), and `DistributedTrainer` (a fastai callback) makes
the fit distributed with torch's DDP engine: the module is wrapped in
`torch.nn.parallel.DistributedDataParallel` for the fit (parameters broadcast from rank 0,
gradients averaged across processes by DDP's all-reduce; gloo on CPUs, NCCL on GPUs), and each
process takes an equal, disjoint share of every global batch (every N-th row). One step on N
processes is therefore the step of one process on the same global batch of `batch_size` rows: the
result matches single-process training up to floating-point summation order (checked by
tests/test_distributed.py on a held-out split). Rank 0 writes the model file.

Why not fastai's own `DistributedTrainer` (fastai.distributed)? It needs Hugging Face Accelerate
and fastai's `DataLoader` class (it re-indexes the dataset per rank); this project's training
batches are `helpers.training.TensorBatches`, sliced from tensors, so the sharding is done here and
the rest is torch's DDP unchanged.

On CUDA machines each process takes the GPU `LOCAL_RANK` (NCCL backend); NCCL has no sparse
all-reduce, so train with dense embedding gradients there (`--no-sparse`). On CPUs, gloo reduces
sparse gradients, so `--sparse` (LazyAdam, only the rows of the batch) works.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings

import torch
import torch.distributed as dist
from fastai.callback.core import Callback
from fastai.learner import defaults

from helpers.data import read_interactions_csv
from helpers.models import make_model
from helpers.training.learner import fit


def world() -> tuple[int, int, int]:
    """(rank, world size, local rank) of this process; (0, 1, 0) when not launched by torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def init_process_group(backend: str = "auto") -> str:
    """Join the process group torchrun describes (env://); backend "auto" = nccl with CUDA, else gloo."""
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"unknown backend {backend!r}; choose auto, gloo or nccl")
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise RuntimeError("no RANK/WORLD_SIZE in the environment: start this with "
                           "`python -m torch.distributed.run --standalone --nproc_per_node N -m helpers.distributed ...`")
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend=backend, init_method="env://")
    return backend


class RankShard:
    """This rank's share of a `TensorBatches` loader: rows rank, rank + N, ... of every global batch.

    Every rank draws the same epoch (same seed, same negatives, same shuffle) and keeps its rows,
    so the N shards of a step are disjoint, equal in size (batch_size divisible by N) and together
    the global batch a single process would use. Same number of batches on every rank (no DDP hang).
    With grouped batches (`TensorBatches(grouped=True)`, the ranking losses) whole groups of
    1 positive + its negatives are dealt out instead of rows, so no group is split across ranks; with
    batches of users (`UserBatches`, the multinomial objective) users are dealt out with their targets.
    """
    def __init__(self, base, rank: int, world_size: int):
        self.base, self.rank, self.world_size = base, int(rank), int(world_size)
        self.n_inp = getattr(base, "n_inp", 1)

    def __len__(self) -> int:
        return len(self.base)

    @property
    def device(self):
        return self.base.device

    def to(self, device) -> RankShard:
        self.base.to(device)
        return self

    def __iter__(self):
        if not hasattr(self.base, "epoch_tensors"):  # UserBatches (multinomial objective): deal out users and their
            for users, *shared, y in self.base:       # target rows; a sampled batch's candidates are every rank's
                yield (users[self.rank::self.world_size], *shared, y[self.rank::self.world_size])
            return
        x, y = self.base.epoch_tensors()
        bs, g = self.base.bs, getattr(self.base, "group", 1)
        for b in range(len(self.base)):
            sl = slice(b * bs, (b + 1) * bs)
            if g > 1:
                xb, yb = x[sl].reshape(-1, g, x.shape[1]), y[sl].reshape(-1, g)
                yield (xb[self.rank::self.world_size].reshape(-1, x.shape[1]),
                       yb[self.rank::self.world_size].reshape(-1))
            else:
                yield x[sl][self.rank::self.world_size], y[sl][self.rank::self.world_size]


def _ddp_handles(module: torch.nn.Module) -> bool:
    """True when torch's DDP can reduce every gradient of `module`: DDP expects sparse gradients only
    from `nn.Embedding` / `nn.EmbeddingBag` with sparse=True, not from other modules that make them."""
    for m in module.modules():
        if getattr(m, "sparse", False) and not isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)):
            return False
    return True


class DistributedTrainer(Callback):
    """fastai callback: data-parallel training of the Learner's model on the process group, for one fit.

    Each rank gets a `RankShard` of the training batches. Gradients are averaged across ranks by
    torch's `DistributedDataParallel` wrapped around the model; when the model has sparse-gradient
    embeddings that DDP does not recognise (see `_ddp_handles`), the same average is taken with
    `torch.distributed.all_reduce` after each backward pass (gloo reduces sparse tensors), after
    broadcasting rank 0's parameters (as DDP does). A no-op without a process group of size > 1.
    """
    order = -5  # before TrainEvalCallback (order 0) moves the model to the loader's device

    def before_fit(self):
        self.mode = None
        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return
        rank, size = dist.get_rank(), dist.get_world_size()
        base = self.learn.dls.loaders[0]
        if (getattr(base, "bs", size) // getattr(base, "group", 1)) % size:
            warnings.warn(f"batch_size {base.bs} is not divisible by {size} processes: shards differ by one row and "
                          "the averaged gradient is slightly off the single-process one", stacklevel=2)
        self._train_loader = base
        self.learn.dls.loaders[0] = RankShard(base, rank, size)
        model = self.learn.model
        if _ddp_handles(model):
            device = next(model.parameters()).device
            self.learn.model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
            self.mode = "ddp"
        else:
            with torch.no_grad():
                for t in list(model.parameters()) + list(model.buffers()):
                    dist.broadcast(t.data, src=0)
            self.mode = "all_reduce"

    def after_backward(self):
        if self.mode != "all_reduce":
            return
        size = dist.get_world_size()
        for p in self.learn.model.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)           # sum over ranks (sparse or dense)
                p.grad = p.grad / size            # mean, as DDP

    def after_fit(self):
        if self.mode is None:
            return
        if self.mode == "ddp":
            self.learn.model = self.learn.model.module
        self.learn.dls.loaders[0] = self._train_loader


@contextlib.contextmanager
def distributed_fit():
    """Within this block, every fastai Learner gets a `DistributedTrainer` (via fastai's
    `defaults.callbacks`, restored on exit), so `fit(model, train)` trains on the process group."""
    before = list(defaults.callbacks)
    defaults.callbacks = before + [DistributedTrainer]
    try:
        yield
    finally:
        defaults.callbacks = before


def distributed_model(model: str | None = None, task: str = "implicit", **config):
    """The unfitted model `train_distributed` trains on this process: on a CUDA machine it takes GPU `LOCAL_RANK`
    and dense embedding gradients unless `sparse` is given; a resolved config with sparse gradients on a GPU (NCCL
    has no sparse all-reduce) is refused with a ValueError. The check reads the model's resolved config, not the
    arguments: collabnn defaults to sparse=True, which an unset --sparse would hide."""
    config = dict(config)
    _, _, local = world()
    on_gpu = torch.cuda.is_available() and config.get("device") in (None, "auto", "cuda")
    if on_gpu:
        config["device"] = f"cuda:{local}"
        if config.get("sparse") is None:
            config["sparse"] = False
    recommender = make_model(model, task=task, **config)
    if str(recommender.config.get("device")).startswith("cuda") and recommender.config.get("sparse"):
        raise ValueError("NCCL has no sparse all-reduce: train with sparse=False (--no-sparse) on GPUs")
    return recommender


def train_distributed(train, model: str | None = None, task: str = "implicit", valid=None, **config):
    """Make and fit a model on this process group (call on every rank, after `init_process_group`).

    Same arguments as `helpers.training.train_model`; every rank returns the same fitted model.
    """
    rank, size, local = world()
    recommender = distributed_model(model, task, **config)
    start = time.perf_counter()
    with distributed_fit():
        fit(recommender, train, valid)
    recommender.metadata["distributed"] = {
        "world_size": size, "backend": dist.get_backend() if dist.is_initialized() else None,
        "gradient_average": "ddp" if _ddp_handles(recommender.module) else "all_reduce",
        "wall_seconds": round(time.perf_counter() - start, 2)}
    return recommender


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m torch.distributed.run --standalone --nproc_per_node N -m helpers.distributed",
        description="Train a model on N processes (DDP through fastai); rank 0 writes --out.")
    parser.add_argument("--train", required=True, help="training CSV (user_id,item_id[,rating]), ids read as strings")
    parser.add_argument("--out", required=True, help="model file to write (rank 0)")
    parser.add_argument("--valid", help="optional CSV for the per-epoch validation loss")
    parser.add_argument("--model", default=None, help="collabnn (default) | mf | neumf")
    parser.add_argument("--task", default="implicit", choices=["implicit", "rating"])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--batch-size", type=int, help="global batch size (split across the processes)")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--loss", default=None, help="implicit task: auto (default) | multinomial | bce | softmax | bpr")
    parser.add_argument("--sparse", action=argparse.BooleanOptionalAction, default=None,
                        help="sparse embedding gradients + LazyAdam (CPU/gloo only)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (each process takes GPU LOCAL_RANK)")
    parser.add_argument("--backend", default="auto", help="auto (nccl with CUDA, else gloo) | gloo | nccl")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per process (0: torch's choice)")
    args = parser.parse_args(argv)


    if args.threads:
        torch.set_num_threads(args.threads)
    config = {"epochs": args.epochs, "seed": args.seed, "batch_size": args.batch_size, "lr": args.lr,
              "sparse": args.sparse, "device": args.device, "loss": args.loss}
    try:  # bad options or files: one line and status 2, before any process group (as `python -m helpers`)
        distributed_model(args.model, args.task, **config)
        train = read_interactions_csv(args.train)
        valid = read_interactions_csv(args.valid) if args.valid else None
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    backend = init_process_group(args.backend)
    rank, size, _ = world()
    try:
        model = train_distributed(train, args.model, args.task, valid=valid, **config)
        if rank == 0:
            model.save(args.out, metadata={"train_file": str(args.train)})
            print(json.dumps({"out": str(args.out), "world_size": size, "backend": backend,
                              "train_seconds": model.metadata.get("train_seconds"),
                              "gradient_average": model.metadata["distributed"]["gradient_average"]}), flush=True)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0



if __name__ == "__main__":
    sys.exit(main())
