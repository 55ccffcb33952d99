"""When early stopping may stop (`EarlyStoppingAfterWarmup`): validation figures only.

Early stopping never stops within the one-cycle warm-up (the first 25% of the epochs, while the learning rate
still rises). Two ways to count the patience, compared here:

- "after the warm-up": the epochs without a better figure are counted from the end of the warm-up only, so a
  fit whose best epoch falls inside the warm-up always runs warm-up + patience epochs (13 + 5 = 18 of 50);
- "since the best": they are counted from the best epoch, also inside the warm-up, and the fit stops at the
  first epoch after the warm-up that is `patience` epochs past the best one.

The two differ only in when the fit ends: the chosen epoch is the best one seen before the end, and the fit up
to it is the same (the schedule is that of all `epochs`). So each (protocol, model, seed) is fitted once without
stopping (patience = epochs) on its training part less `fit`'s own validation part, and both rules are replayed
on the whole validation curve (NDCG@10 of full ranking of the part being trained, what early stopping follows):
the epoch each rule stops at, the epoch it chooses and that epoch's figure. No test part is read. Writes
benchmarks/logs/warmup_patience.md.

    .venv/bin/python benchmarks/warmup_patience.py      # about 15 min on 2 cores
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
from accuracy import SEED_SPLIT, protocol_data  # noqa: E402

from helpers.data import resolve_split, validation_split  # noqa: E402
from helpers.data.synthetic import electronics_like  # noqa: E402
from helpers.files import write_text  # noqa: E402
from helpers.models import make_model  # noqa: E402
from helpers.models.neural import DEFAULT_PATIENCE  # noqa: E402
from helpers.notebooks.landing import run_record  # noqa: E402
from helpers.training import fit  # noqa: E402
from helpers.training.validation import WARMUP_SHARE  # noqa: E402

OUT = ROOT / "benchmarks" / "logs" / "warmup_patience.md"
# (protocol, model, seeds): the implicit defaults whose schedule has a warm-up longer than one epoch
RUNS = [("seed_split", "collabnn", (0, 1, 2)), ("ml100k_random", "collabnn", (0, 1, 2)),
        ("ml100k_temporal", "collabnn", (0, 1, 2)), ("seed_split", "mf", (0,)), ("ml100k_random", "mf", (0,)),
        ("ml100k_temporal", "mf", (0,)), ("synthetic_1000", "collabnn", (0,)), ("synthetic_5000", "collabnn", (0,)),
        ("synthetic_17600", "collabnn", (0,))]


def training_part(protocol: str, folder: Path):
    """(training part, validation rule) of a protocol, None when its data is absent; the test part is dropped."""
    if protocol.startswith("synthetic_"):
        return electronics_like(n_ratings=92_000, n_users=9_000, n_items=int(protocol.split("_")[1]), seed=0), "auto"
    data = protocol_data(protocol, folder)
    return None if data is None else (data[0], data[2])


def replayed(curve: list[float], warmup: int, patience: int, since_best: bool) -> tuple[int, int]:
    """(epoch the fit stops at, epoch it chooses), 1-based, for a higher-is-better curve: a new best is strictly
    higher (fastai's trackers); no stop within the first `warmup` epochs; the epochs without a better figure
    counted from the end of the warm-up (since_best=False) or from the best epoch (True)."""
    best, best_epoch, wait = -math.inf, 0, 0
    for epoch, value in enumerate(curve, start=1):
        if value > best:
            best, best_epoch, wait = value, epoch, 0
        elif since_best or epoch > warmup:
            wait += 1
        if epoch > warmup and wait >= patience:
            return epoch, best_epoch
    return len(curve), best_epoch


def run(protocol: str, name: str, seed: int, folder: Path) -> dict | None:
    part = training_part(protocol, folder)
    if part is None:
        print(f"{protocol}: skipped, its data is absent ({folder})", flush=True)
        return None
    train, rule = part
    rule = resolve_split(train, rule)
    rest, held = validation_split(train, rule, seed=seed)
    model = make_model(name, seed=seed, validation=rule)
    start = time.perf_counter()
    model.config["patience"] = 10_000          # no stopping: the whole curve
    model = fit(model, rest, held)
    seconds = time.perf_counter() - start
    curve = model.metadata["selection"]["curve"]
    epochs, patience = len(curve), DEFAULT_PATIENCE
    warmup = int(math.ceil(WARMUP_SHARE * epochs))
    row = {"protocol": protocol, "model": name, "seed": seed, "epochs": epochs, "warmup": warmup, "patience": patience,
           "seconds_per_epoch": round(seconds / epochs, 3)}
    for key, since in (("after_warmup", False), ("since_best", True)):
        stop, chosen = replayed(curve, warmup, patience, since)
        row[key] = {"stops_at": stop, "chooses": chosen, "value": round(curve[chosen - 1], 6)}
    row["curve"] = [round(v, 5) for v in curve]
    print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
    return row


def table(rows: list[dict], provenance: dict, command: str) -> str:
    lines = ["# Early stopping's patience inside the warm-up (validation figures only)", "",
             f"`{command}` at commit `{provenance['commit']}` ({'clean' if provenance.get('clean') else 'dirty'} tree), "
             f"{provenance['date']}, {provenance.get('machine', '')}, load average {provenance.get('load_average')}.", "",
             "Each row: one fit without stopping on the protocol's training part less `fit`'s validation part, both "
             "rules replayed on its validation curve (NDCG@10 of the part being trained, full ranking). Epochs saved: "
             "those the probe fit no longer runs; the refit is the chosen epoch's and changes only where the choice does.",
             "", "| protocol | model | seed | warm-up / epochs | after the warm-up: stops, chooses (value) "
             "| since the best: stops, chooses (value) | epochs saved | one epoch |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["after_warmup"], r["since_best"]
        lines.append(f"| {r['protocol']} | {r['model']} | {r['seed']} | {r['warmup']} / {r['epochs']} | {a['stops_at']}, "
                     f"{a['chooses']} ({a['value']:.4f}) | {b['stops_at']}, {b['chooses']} ({b['value']:.4f}) | "
                     f"{a['stops_at'] - b['stops_at']} | {r['seconds_per_epoch']:.2f} s |")
    return "\n".join(lines) + "\n\n```json\n" + json.dumps(rows, indent=1) + "\n```\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--protocols", nargs="+", default=None, help="only these protocols")
    p.add_argument("--seed-split", default=str(SEED_SPLIT))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    provenance = run_record(ROOT)
    rows = []
    for protocol, name, seeds in RUNS:
        if args.protocols and protocol not in args.protocols:
            continue
        for seed in seeds:
            row = run(protocol, name, seed, Path(args.seed_split))
            if row is not None:
                rows.append(row)
    command = "benchmarks/warmup_patience.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_text(Path(args.out), table(rows, provenance, command.strip()))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
