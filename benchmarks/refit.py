"""Refit or carry over (`refit`): the default model fitted with its usual refit on all of train (`refit=True`)
and with the chosen epoch's weights carried over instead (`refit=False`), compared on validation only. Each
protocol's training part (the accuracy benchmark's: seed split, ml-100k random 80:20, ml-100k temporal, and
a synthetic 17,600-item catalogue of the Electronics shape) is split once more by its validation rule: both
variants are fitted on the rest (each carving its own inner validation part, as `fit` does) and scored on
that outer validation part, full ranking, NDCG@10, paired over users (95% bootstrap). No test part is read.

    .venv/bin/python benchmarks/refit.py      # about 10 min on 2 cores; writes benchmarks/logs/refit.md
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
from accuracy import SEED_SPLIT, protocol_data  # noqa: E402

from helpers.data import validation_split  # noqa: E402
from helpers.data.synthetic import electronics_like  # noqa: E402
from helpers.evaluation import evaluate_models, paired_comparisons  # noqa: E402
from helpers.files import write_text  # noqa: E402
from helpers.models import DEFAULT_MODEL, make_model  # noqa: E402
from helpers.notebooks.landing import run_record  # noqa: E402
from helpers.training import fit  # noqa: E402

OUT = ROOT / "benchmarks" / "logs" / "refit.md"
PROTOCOLS = ["seed_split", "ml100k_random", "ml100k_temporal", "synthetic_17600"]


def training_part(protocol: str, folder: Path):
    """(training part, validation rule) of a protocol, None when its data is absent; the test part is dropped."""
    if protocol == "synthetic_17600":
        return electronics_like(n_ratings=92_000, n_users=9_000, n_items=17_600, seed=0), "auto"
    data = protocol_data(protocol, folder)
    return None if data is None else (data[0], data[2])


def compared(protocol: str, folder: Path, seed: int) -> dict | None:
    part = training_part(protocol, folder)
    if part is None:
        print(f"{protocol}: skipped, its data is absent ({folder})", flush=True)
        return None
    train, rule = part
    rest, outer = validation_split(train, rule, seed=seed)
    models, seconds = {}, {}
    for refit in (True, False):
        name = "refit" if refit else "carried over"
        start = time.perf_counter()
        models[name] = fit(make_model(DEFAULT_MODEL, seed=seed, validation=rule, refit=refit), rest)
        seconds[name] = round(time.perf_counter() - start, 1)
    result = evaluate_models(models, rest, outer, protocols=("full",), unknown="miss", seed=seed, verbose=False)
    pair = paired_comparisons(result, metrics=("ndcg",), n_permutations=2_000).iloc[0]
    row = {"protocol": protocol, "rule": rule, "fit_rows": len(rest), "validation_rows": len(outer),
           "validation_users": int(pair["n_users"]), "ndcg10_refit": round(float(pair["mean_a"]), 4),
           "ndcg10_carried_over": round(float(pair["mean_b"]), 4), "diff": round(float(pair["diff"]), 4),
           "ci": [round(float(pair["ci_low"]), 4), round(float(pair["ci_high"]), 4)],
           "p_value": round(float(pair["p_value"]), 4), "epoch": models["refit"].metadata["selection"]["best_epoch"],
           "seconds_refit": seconds["refit"], "seconds_carried_over": seconds["carried over"],
           "time_ratio": round(seconds["carried over"] / seconds["refit"], 2)}
    print(json.dumps(row), flush=True)
    return row


def markdown(rows: list[dict], prov: dict, argv: list[str], threads: int) -> str:
    lines = ["# Refit or carry over (`refit`): validation figures only", "",
             f"`benchmarks/refit.py {' '.join(argv)}` at commit `{prov['commit']}` "
             f"({'clean tree' if prov['clean'] else 'uncommitted changes'}), {prov['date']}, {prov['machine']}, "
             f"{threads} torch threads, load average {prov['load_average']} at the start.",
             "Default model, seed 0. Each protocol's training part split once more by its validation rule; both "
             "variants fitted on the rest (each choosing its epoch on its own inner validation part) and scored on "
             "that outer part: full ranking, NDCG@10, the rest's items excluded, unknown users and items counted as "
             "misses. Paired: refit minus carried over over the same users, 95% bootstrap interval, permutation "
             "p-value. Seconds: the whole `fit` of each, in the same run.", "",
             "| protocol | rule | fit rows | validation users | NDCG@10 refit | NDCG@10 carried over "
             "| refit - carried over [95%] | p | epoch | fit s refit | fit s carried over | time ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['protocol']} | {r['rule']} | {r['fit_rows']:,} | {r['validation_users']:,} | "
                     f"{r['ndcg10_refit']:.4f} | {r['ndcg10_carried_over']:.4f} | {r['diff']:+.4f} "
                     f"[{r['ci'][0]:+.4f}, {r['ci'][1]:+.4f}] | {r['p_value']:.3f} | {r['epoch']} | "
                     f"{r['seconds_refit']:.1f} | {r['seconds_carried_over']:.1f} | {r['time_ratio']:.2f} |")
    return "\n".join(lines) + "\n\n```json\n" + json.dumps(rows, indent=1) + "\n```\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--protocols", default=",".join(PROTOCOLS), help=f"subset of {','.join(PROTOCOLS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed-split", default=str(SEED_SPLIT), help="folder of the original notebook's split")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    protocols = [q for q in args.protocols.split(",") if q]
    if [q for q in protocols if q not in PROTOCOLS]:
        p.error(f"unknown protocols {[q for q in protocols if q not in PROTOCOLS]}; choose from {','.join(PROTOCOLS)}")
    torch.set_num_threads(args.threads)
    prov = run_record(ROOT)
    rows = [r for q in protocols if (r := compared(q, Path(args.seed_split), args.seed)) is not None]
    write_text(Path(args.out), markdown(rows, prov, argv if argv is not None else sys.argv[1:], args.threads))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
