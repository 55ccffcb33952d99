"""How many items CollabNN's item-item branch should cover (`item_item_max_items`): validation figures only.

The branch is EASE over the most popular items, solved before the gradient training; its cost is that of one
dense solve of size min(users with a kept item, kept items) (`helpers.models.item_item.ease_weights`: primal over
items or dual over users), i.e. cubic in the smaller of the two. For each protocol's training part (the accuracy
benchmark's seed split, ml-100k random 80:20 and temporal, and synthetic catalogues of the Electronics shape),
`fit`'s own validation part is carved out; the default is fitted once on the rest with the epoch chosen on that
part (the factor branch does not depend on the item-item branch: it trains on its own and the branch is added
to its scores), and then the branch is solved again over each number of items and the whole model scored on the
validation part: full ranking, NDCG@10, paired over users against the widest branch (95% bootstrap). No test
part is read. Writes benchmarks/logs/item_item_size.md.

    .venv/bin/python benchmarks/item_item_size.py      # about 10 min on 2 cores
"""
from __future__ import annotations

import argparse
import copy
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

from helpers.data import resolve_split, validation_split  # noqa: E402
from helpers.data.synthetic import electronics_like  # noqa: E402
from helpers.evaluation import evaluate_models, paired_comparisons  # noqa: E402
from helpers.files import write_text  # noqa: E402
from helpers.models import DEFAULT_MODEL, make_model  # noqa: E402
from helpers.models.item_item import ItemItemBranch  # noqa: E402
from helpers.notebooks.landing import run_record  # noqa: E402
from helpers.training import fit  # noqa: E402

OUT = ROOT / "benchmarks" / "logs" / "item_item_size.md"
SIZES = {"seed_split": [9_716, 5_000, 3_000, 2_000, 1_000], "ml100k_random": [1_682, 1_000, 500],
         "ml100k_temporal": [1_682, 1_000, 500], "synthetic_10000": [10_000, 7_500, 5_000, 3_000],
         "synthetic_17600": [10_000, 7_500, 5_000, 3_000, 2_000]}


def training_part(protocol: str, folder: Path):
    """(training part, validation rule) of a protocol, None when its data is absent; the test part is dropped."""
    if protocol.startswith("synthetic_"):
        n_items = int(protocol.split("_")[1])
        return electronics_like(n_ratings=92_000, n_users=9_000, n_items=n_items, seed=0), "auto"
    data = protocol_data(protocol, folder)
    return None if data is None else (data[0], data[2])


def compared(protocol: str, folder: Path, seed: int) -> list[dict] | None:
    part = training_part(protocol, folder)
    if part is None:
        print(f"{protocol}: skipped, its data is absent ({folder})", flush=True)
        return None
    train, rule = part
    rule = resolve_split(train, rule)
    rest, held = validation_split(train, rule, seed=seed)
    model = fit(make_model(DEFAULT_MODEL, seed=seed, validation=rule), rest, held)   # epoch chosen on `held`
    users = int((model.seen.getnnz(axis=1) > 0).sum())
    models, seconds, covered = {}, {}, {}
    for size in SIZES[protocol]:
        start = time.perf_counter()
        branch = ItemItemBranch.fitted(model.seen, None, size, seed=seed)
        seconds[size] = round(time.perf_counter() - start, 2)
        variant = copy.copy(model)
        variant.item_item = branch
        models[f"{size:,} items"] = variant
        counts = model.seen.getnnz(axis=0)
        covered[size] = float(counts[branch.items].sum() / counts.sum())
    result = evaluate_models(models, rest, held, protocols=("full",), unknown="miss", seed=seed, verbose=False)
    widest = next(iter(models))
    pairs = [(name, widest) for name in list(models)[1:]]
    diffs = paired_comparisons(result, pairs=pairs, metrics=("ndcg",), n_permutations=2_000) if pairs else None
    rows = []
    for size, name in zip(SIZES[protocol], models):
        mean = float(result.per_row.query("model == @name and metric == 'ndcg'")["value"].mean())
        row = {"protocol": protocol, "users": users, "items": int(model.n_items), "max_items": size, "ndcg10": round(mean, 4),
               "share_of_interactions": round(covered[size], 3), "solve_seconds": seconds[size]}
        if diffs is not None and name != widest:
            d = diffs[diffs["model_a"] == name].iloc[0]
            row.update(diff=round(float(d["diff"]), 4), ci_low=round(float(d["ci_low"]), 4),
                       ci_high=round(float(d["ci_high"]), 4), p_value=round(float(d["p_value"]), 4))
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def table(rows: list[dict], provenance: dict, command: str) -> str:
    lines = ["# CollabNN's item-item branch: how many items it covers (validation figures only)", "",
             f"`{command}` at commit `{provenance['commit']}` ({'clean' if provenance.get('clean') else 'dirty'} tree), "
             f"{provenance['date']}, {provenance.get('machine', '')}, load average {provenance.get('load_average')}.", "",
             "Default model, seed 0, fitted once per protocol on its training part less `fit`'s validation part (epoch "
             "chosen there); the branch solved again over the most popular `max_items` items; NDCG@10 of the whole "
             "model on that validation part, full ranking, training items excluded; difference against the widest "
             "branch, paired over users (95% bootstrap, permutation p). Solve: the branch's whole fit (EASE weights "
             "and its scale), on the training part less validation.", "",
             "| protocol | users | items | max_items | share of interactions covered | NDCG@10 | vs widest [95%] | solve |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        vs = (f"{r['diff']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}], p {r['p_value']:.3g}" if "diff" in r else "")
        lines.append(f"| {r['protocol']} | {r['users']:,} | {r['items']:,} | {r['max_items']:,} "
                     f"| {r['share_of_interactions']:.3f} | {r['ndcg10']:.4f} | {vs} | {r['solve_seconds']:.2f} s |")
    return "\n".join(lines) + "\n\n```json\n" + json.dumps(rows, indent=1) + "\n```\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--protocols", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--seed-split", default=str(SEED_SPLIT))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    provenance = run_record(ROOT)
    rows = []
    for protocol in args.protocols:
        rows += compared(protocol, Path(args.seed_split), args.seed) or []
    command = "benchmarks/item_item_size.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_text(Path(args.out), table(rows, provenance, command.strip()))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
