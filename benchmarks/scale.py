"""Scale benchmark: the default neural model (CollabNN, implicit task) on Electronics-shaped synthetic data.

One command (the full run; about 10 minutes on a quiet 2-core CPU):

    .venv/bin/python benchmarks/scale.py                      # sizes 0.1, 0.3, 1.0 of Electronics
    .venv/bin/python benchmarks/scale.py --sizes 0.02 --naive-steps 5 --users 1000   # a smoke run, ~1 min

For every size (a share of Electronics' 1,292,954 ratings and 1,157,633 users; catalogue 9,560 items,
data from `helpers.data.synthetic.electronics_like`) two child processes run, so that their memory
peaks are separate:

- "fast": the model as this project trains it at scale (sparse embedding gradients + LazyAdam):
  seconds per epoch (every positive + 4 negatives), samples per second, peak resident memory;
  exact top-10 over the whole catalogue for `--users` held-out users (`recommend`, split first
  layer), its HR@10 on a leave-one-out split; the naive full scoring (every (user, item) pair
  through the forward pass) on `--naive-users` users, extrapolated to 10,000, with the share of
  identical top-10 lists; the two-stage path (a cheap retriever's top `--candidates`, re-scored by
  the model; `--retriever popular,dot`: the most popular unseen items, and the model's own GMF dot
  product + item bias) with its time, HR@10 and overlap with the exact top-10;
- "naive": the same model with dense gradients and fastai's Adam over the full embedding tables,
  `--naive-steps` batches timed and extrapolated to one epoch, and its peak memory.

Results are merged into reports/benchmarks.json under "scale" (other keys are kept), with the
machine described; a growth plot goes to reports/figures/scale_growth.png and a table to
reports/scale.md. Targets at full size on the 2-core CPU: epoch <= 60 s, peak memory <= 4 GB,
exact top-10 for 10,000 users <= 30 s. Timings on a shared machine are noisy: the load average
at the start and end is recorded with the results.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from helpers.files import atomic_path, write_text  # noqa: E402  (the repository on the path first, for a run without `make setup`)
from helpers.notebooks.landing import run_record  # noqa: E402

# Defaults (typed, one place); every one is a command-line option of the same name.
DEFAULTS = {
    "sizes": "0.1,0.3,1.0",     # shares of Electronics' ratings and users, comma-separated
    "epochs": 1,                # training epochs of the fast path (seconds per epoch = total / epochs)
    "batch_size": 4096,         # training batch size (the model's default)
    "users": 10_000,            # held-out users ranked by the exact and two-stage paths
    "candidates": 200,          # two-stage: retriever's candidates per user
    "retriever": "popular,dot",  # two-stage first stages, comma-separated: popular | dot | itemknn (make_retriever);
                                 # the first one is the headline
    "naive_users": 500,         # naive full scoring: users timed, extrapolated to 10,000
    "naive_steps": 20,          # naive dense training: batches timed, extrapolated to an epoch
    "layers": "",               # CollabNN's MLP widths, comma-separated (e.g. 64); empty: the default (no MLP branch)
    "seed": 0,                  # data, split, model and user sample
    "device": "auto",           # auto | cpu | cuda
    "threads": 0,               # torch threads; 0 = the cores this process may use
    "out": "reports/benchmarks.json",
    "figure": "reports/figures/scale_growth.png",
    "table": "reports/scale.md",
    "worker_timeout": 3600,     # seconds per child process
}
TARGETS = {"epoch_s": 60.0, "peak_rss_gb": 4.0, "rank_s_per_10k_users": 30.0}
# Environment of the child processes (a value already set in the environment wins); recorded in the results.
WORKER_ENV = {
    # passive OpenMP waiting: on a shared CPU, spinning threads slowed training steps 5-8x in our runs
    "OMP_WAIT_POLICY": "PASSIVE",
}
# No malloc tuning here any more: the ~1 MB buffers that sparse steps allocate and free every batch used
# to fragment glibc's heap (resident size +1.6 MB per batch, 3.7-5.8 GB peak at full size, MALLOC_ARENA_MAX=2
# only sometimes helping); helpers.training.callbacks.release_freed_memory (malloc_trim every 20 batches, in every
# CPU training) keeps it flat, and every fit keeps large freed buffers for reuse itself (helpers.heap), so the
# benchmark measures what a user's plain process gets.
NEG_RATIO = 4  # negatives per positive in the implicit task (the model's default; the "4 negatives")


# --------------------------------------------------------------------------- machine and memory
def machine() -> dict:
    """CPU model, cores, memory, library versions, device; the load average says how shared it was."""
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1e6, 1)
    except OSError:
        pass
    from helpers.training.device import library_versions

    return {
        "cpu": cpu, "logical_cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gb": mem_gb, "platform": platform.platform(), "python": platform.python_version(),
        "versions": library_versions(), "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "git_commit": _git("rev-parse", "HEAD"),
        "uncommitted_helpers": _git("status", "--porcelain", "--", "helpers").splitlines(),
    }


def _git(*args) -> str:
    """Output of a git command in the repository ('' when git is not available)."""
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


class PeakMemory:
    """Peak resident memory of this process, resettable per phase (Linux /proc/self/clear_refs)."""

    def __init__(self):
        self.resettable = self._write_clear_refs()

    @staticmethod
    def _write_clear_refs() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # 5 = reset the peak RSS (VmHWM)
            return True
        except OSError:
            return False

    def reset(self) -> None:
        if self.resettable:
            self._write_clear_refs()

    def peak_gb(self) -> float:
        """Peak RSS since the last reset (whole process life when not resettable), in GB (1e9 bytes)."""
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) * 1024 / 1e9, 3)
        except OSError:
            pass
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 3)

    @staticmethod
    def process_peak_gb() -> float:
        """Peak RSS over the whole life of this process (not affected by resets), in GB."""
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 3)


# --------------------------------------------------------------------------- shared steps
def _data(size: float, seed: int):
    """(train, evaluation): synthetic Electronics at `size`, leave-one-out (latest) for users with >= 2."""
    from helpers.data.split import leave_one_out
    from helpers.data.synthetic import electronics_like

    df = electronics_like(scale=size, seed=seed)
    train, evaluation = leave_one_out(df, by="timestamp", seed=seed)
    return train, evaluation


def _model_config(opts: dict, sparse: bool, epochs: int) -> dict:
    # loss "bce": the epoch (every positive + 4 negatives); it is also what the default loss "auto"
    # picks at Electronics' size (users x items far above helpers.training.losses.CATALOGUE_BUDGET)
    # early_stopping off: an epoch is one pass over the training rows (with it, fit would also carve a validation
    # part, train and score it, solve the item-item branch a second time and refit: the old table's "epoch")
    config = {"epochs": epochs, "batch_size": opts["batch_size"], "seed": opts["seed"], "device": opts["device"],
              "sparse": sparse, "neg_ratio": NEG_RATIO, "loss": "bce", "early_stopping": False}
    if opts.get("layers"):
        config["layers"] = [int(w) for w in str(opts["layers"]).split(",") if w.strip()]
    return config


def _auto_loss(model) -> str:
    """What the model's default loss "auto" resolves to on this data (users x items vs the budget)."""
    from helpers.training.losses import resolve_loss

    return resolve_loss(model, model.n_users, model.n_items, loss="auto")


def _set_threads(opts: dict) -> int:
    import torch

    n = opts["threads"] or len(os.sched_getaffinity(0))
    torch.set_num_threads(n)
    return n


def _hits(top: "np.ndarray", truth: "np.ndarray") -> "np.ndarray":
    """Per user 1.0 if the held-out item is in the row of `top` ([U, k] item indices), else 0.0."""
    return (top == truth[:, None]).any(axis=1).astype(float)


RETRIEVERS = ["dot", "itemknn", "popular"]


def make_retriever(name: str, model, train):
    """A function (user indices, c) -> (candidates [U, c] item indices, valid [U, c] bool), seen items excluded.

    "dot": the model's own dot-product part (GMF branch, with its history term, weighted by its output
    weights, + item bias),
    one [U, d] x [d, n_items] product, the classic two-tower retrieval; "itemknn": the ItemKNN
    baseline (k=100 neighbours, cosine), fitted here; "popular": the most popular unseen items.
    """
    import numpy as np
    import torch

    if name == "dot":
        mod = model.module
        if not getattr(mod, "gmf_size", 0):
            raise ValueError("retriever 'dot' needs the model's GMF branch (gmf_size > 0); use --retriever itemknn")
        mod.eval()

        def scores(users):  # the factor branch over the catalogue (id row or shared row, history, biases)
            with torch.no_grad():
                return mod.catalogue_logits(torch.as_tensor(users))
        exclude = model.seen
    elif name == "itemknn":
        from helpers.models import ItemKNN

        knn = ItemKNN(k=100).fit(train)
        exclude = knn.seen

        def scores(users):
            return knn.score_users(users)
    elif name == "popular":
        pop = torch.from_numpy(model.item_popularity.astype(np.float32))
        exclude = model.seen

        def scores(users):
            return pop.expand(len(users), -1).clone()
    else:
        raise ValueError(f"unknown retriever {name!r}; choose one of {RETRIEVERS}")

    def retrieve(users, c, block: int = 1024):
        users = np.asarray(users, dtype=np.int64)
        cand = np.empty((len(users), c), dtype=np.int64)
        valid = np.empty((len(users), c), dtype=bool)
        for s in range(0, len(users), block):
            b = users[s:s + block]
            sc = scores(b).float()
            sub = exclude[b]
            rows = np.repeat(np.arange(len(b)), np.diff(sub.indptr))
            sc[torch.from_numpy(rows), torch.from_numpy(sub.indices.astype(np.int64))] = -torch.inf
            top = torch.topk(sc, c, dim=1)
            cand[s:s + block] = top.indices.numpy()
            # itemknn: items with no similarity to the user's items are not candidates
            valid[s:s + block] = torch.isfinite(top.values).numpy() & ((top.values > 0).numpy() if name == "itemknn" else True)
        return cand, valid

    return retrieve


# --------------------------------------------------------------------------- workers (child processes)
def worker_fast(size: float, opts: dict) -> dict:
    """Train with sparse updates, rank exactly, naive-score a few users, run the two-stage path."""
    import numpy as np
    import torch

    from helpers.models import make_model
    from helpers.training import fit

    mem = PeakMemory()
    out = {"threads": _set_threads(opts)}
    t0 = time.perf_counter()
    train, evaluation = _data(size, opts["seed"])
    out["data_s"] = round(time.perf_counter() - t0, 2)
    out["data_peak_rss_gb"] = mem.peak_gb()

    # ---- training (fastai Learner, fit_one_cycle; sparse embedding gradients + LazyAdam)
    mem.reset()
    model = make_model("collabnn", task="implicit", **_model_config(opts, sparse=True, epochs=opts["epochs"]))
    t0 = time.perf_counter()
    fit(model, train)
    fit_s = time.perf_counter() - t0
    # train_seconds includes the closed-form item-item branch solved before the epochs (prepare_seconds): an
    # epoch is the gradient training alone, the branch is reported beside it
    item_item_s = float(model.metadata.get("prepare_seconds") or 0.0)
    train_s = float(model.metadata["train_seconds"]) - item_item_s
    samples = len(model.learn.dls.train) * opts["batch_size"]  # per epoch: positives * (1 + 4), full batches
    out.update({
        "train_rows": int(len(train)), "users": model.n_users, "items": model.n_items,
        "samples_per_epoch": int(samples), "fit_total_s": round(fit_s, 2), "item_item_s": round(item_item_s, 2),
        "setup_s": round(fit_s - train_s - item_item_s, 2),
        "epoch_s": round(train_s / opts["epochs"], 2), "samples_per_s": round(samples * opts["epochs"] / train_s),
        "parameters": int(model.n_parameters), "train_peak_rss_gb": mem.peak_gb(),
        "device": model.metadata.get("device"), "loss": model.config["loss"],
        "auto_loss_would_be": _auto_loss(model),
    })
    if torch.cuda.is_available() and str(model.metadata.get("device", "")).startswith("cuda"):
        out["cuda_peak_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 3)
        out["cuda_device"] = torch.cuda.get_device_name(0)

    # ---- exact top-10 over the whole catalogue for held-out users
    rng = np.random.default_rng(opts["seed"])
    ev = evaluation.iloc[rng.permutation(len(evaluation))[: opts["users"]]]
    users = model.user_index(ev["user_id"].to_numpy())
    truth = model.item_index(ev["item_id"].to_numpy())
    keep = (users >= 0) & (truth >= 0)
    users, truth, ev = users[keep], truth[keep], ev[keep]
    n = len(users)
    per_10k = 10_000 / max(n, 1)
    mem.reset()
    t0 = time.perf_counter()
    recs = model.recommend(ev["user_id"].to_numpy(), k=10)
    rec_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    top, _ = model.top_k_indices(users, 10, exclude=model.seen)
    topk_s = time.perf_counter() - t0
    out.update({
        "ranked_users": int(n), "rank_s": round(rec_s, 2), "rank_s_per_10k_users": round(rec_s * per_10k, 2),
        "top_k_indices_s_per_10k_users": round(topk_s * per_10k, 2),
        "hr10_exact": round(float(_hits(top, truth).mean()), 4), "rank_peak_rss_gb": mem.peak_gb(),
        "recommend_rows": int(len(recs)),
    })

    # ---- naive full scoring: every (user, item) pair through the forward pass (first layer per pair)
    n_naive = min(opts["naive_users"], n)
    sub = users[:n_naive]
    t0 = time.perf_counter()
    pair_scores = model.score_pairs(np.repeat(sub, model.n_items), np.tile(np.arange(model.n_items), n_naive))
    scores = torch.from_numpy(pair_scores.reshape(n_naive, model.n_items))
    seen = model.seen[sub]
    rows = np.repeat(np.arange(n_naive), np.diff(seen.indptr))
    scores[torch.from_numpy(rows), torch.from_numpy(seen.indices.astype(np.int64))] = -torch.inf
    naive_top = torch.topk(scores, 10, dim=1).indices.numpy()
    naive_s = time.perf_counter() - t0
    same = np.mean([set(a) == set(b) for a, b in zip(naive_top, top[:n_naive])]) if n_naive else float("nan")
    out.update({
        "naive_rank_users": int(n_naive), "naive_rank_s_per_10k_users": round(naive_s * 10_000 / max(n_naive, 1), 2),
        "naive_vs_exact_same_top10": round(float(same), 4),
    })

    # ---- two-stage: a cheap retriever's top candidates, re-scored by the neural model
    out["two_stage"] = {}
    for name in [r.strip() for r in opts["retriever"].split(",") if r.strip()]:
        mem.reset()
        t0 = time.perf_counter()
        retrieve = make_retriever(name, model, train)
        fit_retriever_s = time.perf_counter() - t0
        c = min(opts["candidates"], model.n_items)
        t0 = time.perf_counter()
        cand, valid = retrieve(users, c)
        t1 = time.perf_counter()
        s2 = model.score_pairs(np.repeat(users, c), cand.ravel()).reshape(n, c)
        s2 = np.where(valid, s2, -np.inf)
        pick = np.argsort(-s2, axis=1, kind="stable")[:, :10]
        two_top = np.where(np.take_along_axis(valid, pick, 1), np.take_along_axis(cand, pick, 1), -1)
        t2 = time.perf_counter()
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(two_top, top)]) if n else float("nan")
        out["two_stage"][name] = {
            "candidates": int(c), "retriever_fit_s": round(fit_retriever_s, 2),
            "retrieve_s_per_10k_users": round((t1 - t0) * per_10k, 2),
            "rescore_s_per_10k_users": round((t2 - t1) * per_10k, 2),
            "s_per_10k_users": round((t2 - t0) * per_10k, 2),
            "hr10": round(float(_hits(two_top, truth).mean()), 4),
            "hr10_retriever_alone": round(float(_hits(np.where(valid[:, :10], cand[:, :10], -1), truth).mean()), 4),
            "overlap_with_exact_top10": round(float(overlap), 4),
            "hr10_cost_vs_exact": round(float(_hits(top, truth).mean() - _hits(two_top, truth).mean()), 4),
            "peak_rss_gb": mem.peak_gb(),
        }
    first = next(iter(out["two_stage"].values()), None)
    if first is not None:  # the headline two-stage figures: the first retriever of --retriever
        out.update({"two_stage_retriever": next(iter(out["two_stage"])), "two_stage_s_per_10k_users": first["s_per_10k_users"],
                    "hr10_two_stage": first["hr10"], "two_stage_overlap_with_exact_top10": first["overlap_with_exact_top10"]})
    out["process_peak_rss_gb"] = PeakMemory.process_peak_gb()
    # the headline peak: everything a user of the model holds (data, model, optimiser, ranking),
    # not the ItemKNN retriever of the two-stage comparison
    out["peak_rss_gb"] = max(out["data_peak_rss_gb"], out["train_peak_rss_gb"], out["rank_peak_rss_gb"])
    return out


def worker_naive(size: float, opts: dict) -> dict:
    """Dense gradients + fastai's Adam over the full embedding tables: time `naive_steps` batches."""
    from fastai.callback.core import Callback, CancelFitException

    from helpers.models import make_model
    from helpers.training import fit

    mem = PeakMemory()
    out = {"threads": _set_threads(opts)}
    train, _ = _data(size, opts["seed"])
    model = make_model("collabnn", task="implicit", **_model_config(opts, sparse=False, epochs=0))
    fit(model, train)  # epochs=0: id maps, module and Learner built, nothing trained
    learn = model.learn
    warmup, steps = 3, int(opts["naive_steps"])

    class StepTimer(Callback):
        order = 100

        def before_fit(self):
            self.n, self.start, self.t_epoch = 0, None, time.perf_counter()

        def before_batch(self):
            if self.n == 0:
                self.tensors_s = time.perf_counter() - self.t_epoch  # the epoch's negatives + shuffle
            if self.n == warmup:
                self.start = time.perf_counter()

        def after_batch(self):
            self.n += 1
            if self.n == warmup + steps:
                self.step_s = (time.perf_counter() - self.start) / steps
                raise CancelFitException

    timer = StepTimer()
    mem.reset()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(1, float(model.config["lr"]), wd=float(model.config["wd"]), cbs=[timer])
    n_batches = len(learn.dls.train)
    out.update({
        "naive_timed_steps": steps, "naive_step_s": round(timer.step_s, 4),
        "naive_epoch_s": round(timer.step_s * n_batches + timer.tensors_s, 1),
        "naive_samples_per_s": round(opts["batch_size"] / timer.step_s),
        "naive_train_peak_rss_gb": mem.peak_gb(), "naive_process_peak_rss_gb": PeakMemory.process_peak_gb(),
    })
    return out


WORKERS = {"fast": worker_fast, "naive": worker_naive}


def run_worker(kind: str, size: float, opts: dict) -> dict:
    """Run one worker in a fresh Python process (separate memory peak); its dict back."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--size", repr(size),
               "--worker-opts", json.dumps(opts), "--worker-out", str(result)]
        env = {**os.environ, **{k: os.environ.get(k, v) for k, v in WORKER_ENV.items()}}
        proc = subprocess.run(cmd, cwd=ROOT, timeout=opts["worker_timeout"], env=env)
        if proc.returncode != 0 or not result.exists():
            raise RuntimeError(f"benchmark worker '{kind}' at size {size} failed (exit {proc.returncode}); "
                               f"rerun it alone: {' '.join(cmd[:6])} ...")
        return json.loads(result.read_text())


# --------------------------------------------------------------------------- results
def merge_json(path: Path, key: str, value) -> None:
    """Set `key` in the JSON object at `path`, keeping the other keys; atomic write."""
    data = json.loads(path.read_text()) if path.exists() and path.stat().st_size else {}
    data[key] = value
    write_text(path, json.dumps(data, indent=2) + "\n")


def plot_growth(rows: list[dict], path: Path) -> None:
    """Time and memory against training rows, fast and naive paths (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["train_rows"] for r in rows]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax_t.plot(x, [r["epoch_s"] for r in rows], "o-", label="epoch, sparse + LazyAdam")
    ax_t.plot(x, [r["naive_epoch_s"] for r in rows], "o--", label="epoch, dense Adam (naive, extrapolated)")
    ax_t.plot(x, [r["rank_s_per_10k_users"] for r in rows], "s-", label="exact top-10 / 10k users")
    ax_t.plot(x, [r["naive_rank_s_per_10k_users"] for r in rows], "s--",
              label="naive pair scoring / 10k users (extrapolated)")
    ax_t.plot(x, [r["two_stage_s_per_10k_users"] for r in rows], "^-",
              label=f"two-stage ({rows[0].get('two_stage_retriever')} top {rows[0]['two_stage'][rows[0]['two_stage_retriever']]['candidates']}) / 10k users")
    ax_t.axhline(TARGETS["epoch_s"], color="grey", lw=0.8, ls=":")
    ax_t.axhline(TARGETS["rank_s_per_10k_users"], color="grey", lw=0.8, ls=":")
    ax_t.set(xscale="log", yscale="log", xlabel="training rows", ylabel="seconds", title="Time")
    ax_t.legend(fontsize=7)
    ax_m.plot(x, [r["peak_rss_gb"] for r in rows], "o-", label="sparse + LazyAdam (train + rank)")
    ax_m.plot(x, [r["naive_process_peak_rss_gb"] for r in rows], "o--", label="dense Adam (naive)")
    ax_m.axhline(TARGETS["peak_rss_gb"], color="grey", lw=0.8, ls=":", label="target")
    ax_m.set(xscale="log", xlabel="training rows", ylabel="peak resident memory (GB)", title="Memory")
    ax_m.legend(fontsize=7)
    shares = ", ".join(f"{r['size']:.0%}" for r in rows)
    fig.suptitle(f"CollabNN, implicit task, synthetic Electronics shape ({shares} of 1.29M ratings); "
                 "dotted: targets (epoch 60 s, top-10 30 s, 4 GB)", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def markdown_table(result: dict) -> str:
    """The growth table and the full-size verdict, as Markdown (written to reports/scale.md)."""
    m = result["machine"]
    lines = [
        "# Scale benchmark (generated by `benchmarks/scale.py`; do not edit)", "",
        f"Machine: {m['cpu']}, {m['usable_cores']} usable cores, torch {m['versions'].get('torch')}, "
        f"device {result['rows'][0].get('device') if result['rows'] else '?'}; load average "
        f"{m['loadavg_start']} at start, {result['loadavg_end']} at end (1, 5, 15 min; above {m['usable_cores']} the "
        f"CPU was shared and times are inflated). Command: `{result['command']}`; worker environment "
        f"{result.get('worker_env')}.", "",
        "| size | train rows | users | epoch s | samples/s | naive epoch s | speed-up | peak GB | naive peak GB "
        "| top-10 s /10k | naive s /10k | speed-up | two-stage s /10k | HR@10 exact | HR@10 two-stage | overlap |",
        "|" + "---|" * 16,
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['size']:g} | {r['train_rows']:,} | {r['users']:,} | {r['epoch_s']} | {r['samples_per_s']:,} "
            f"| {r['naive_epoch_s']} | {r['train_speedup']}x | {r['peak_rss_gb']} | {r['naive_process_peak_rss_gb']} "
            f"| {r['rank_s_per_10k_users']} | {r['naive_rank_s_per_10k_users']} | {r['rank_speedup']}x "
            f"| {r['two_stage_s_per_10k_users']} | {r['hr10_exact']} | {r['hr10_two_stage']} "
            f"| {r['two_stage_overlap_with_exact_top10']} |")
    lines += ["", "Two-stage paths (retriever's top candidates re-scored by the model; HR@10 on the same users):", "",
              "| size | retriever | candidates | s /10k users | HR@10 | HR@10 cost vs exact | overlap with exact top-10 "
              "| retriever alone HR@10 |", "|" + "---|" * 8]
    for r in result["rows"]:
        for name, t in r.get("two_stage", {}).items():
            lines.append(f"| {r['size']:g} | {name} | {t['candidates']} | {t['s_per_10k_users']} | {t['hr10']} "
                         f"| {t['hr10_cost_vs_exact']} | {t['overlap_with_exact_top10']} | {t['hr10_retriever_alone']} |")
    lines += ["", "Time outside the epochs (id maps, embedding initialisation, Learner; not in `epoch s`): " + ", ".join(
        f"{r['size']:g}: {r['setup_s']} s" for r in result["rows"]) + ".",
        "Peak memory by phase (GB; data / training / ranking): " + ", ".join(
        f"{r['size']:g}: {r['data_peak_rss_gb']} / {r['train_peak_rss_gb']} / {r['rank_peak_rss_gb']}"
        for r in result["rows"]) + "."]
    if result.get("targets_met") is not None:
        lines += ["", f"Targets at full size ({TARGETS}): " + ", ".join(
            f"{k} {'met' if v else 'MISSED'}" for k, v in result["targets_met"].items())]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for key, value in DEFAULTS.items():
        parser.add_argument("--" + key.replace("_", "-"), type=type(value), default=value)
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--worker-opts", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        res = WORKERS[args.worker](args.size, json.loads(args.worker_opts))
        write_text(Path(args.worker_out), json.dumps(res))
        return res

    opts = {k: getattr(args, k) for k in DEFAULTS}
    sizes = [float(s) for s in opts["sizes"].split(",") if s.strip()]
    if not sizes or any(not 0 < s <= 10 for s in sizes):
        raise SystemExit(f"--sizes must be shares of Electronics in (0, 10], got {opts['sizes']!r}")
    result = {"machine": machine(), "provenance": run_record(ROOT), "options": opts, "targets": TARGETS, "rows": [],
              "worker_env": {k: os.environ.get(k, v) for k, v in WORKER_ENV.items()},
              "command": " ".join([".venv/bin/python", "benchmarks/scale.py", *(argv if argv is not None else sys.argv[1:])])}
    for size in sizes:
        print(f"[scale] size {size:g}: fast path ...", flush=True)
        row = {"size": size, **run_worker("fast", size, opts)}
        print(f"[scale] size {size:g}: naive dense path ...", flush=True)
        row.update(run_worker("naive", size, opts))
        row["train_speedup"] = round(row["naive_epoch_s"] / row["epoch_s"], 1)
        row["rank_speedup"] = round(row["naive_rank_s_per_10k_users"] / row["rank_s_per_10k_users"], 1)
        print(json.dumps(row), flush=True)
        result["rows"].append(row)
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    full = [r for r in result["rows"] if r["size"] == 1.0]
    result["targets_met"] = ({k: bool(full[0][k] <= v) for k, v in TARGETS.items()} if full else None)
    merge_json(ROOT / opts["out"], "scale", result)
    if len(result["rows"]) >= 1:
        plot_growth(result["rows"], ROOT / opts["figure"])
    write_text(ROOT / opts["table"], markdown_table(result))
    print(markdown_table(result))
    return result


if __name__ == "__main__":
    main()
