"""Peers benchmark: the default model against the libraries a user would pick instead, in one run.

    make benchmark-peers                                   # every peer, every protocol; 58 min on 2 cores (2026-12-02)
    .venv/bin/python benchmarks/peers.py --quick           # 2 trials / 20 s of search per peer, to check it runs
    .venv/bin/python benchmarks/peers.py --models collabnn,implicit_als --protocols ml100k_random

Peers (`benchmarks/peer_models.py`, installed from `benchmarks/requirements-peers.txt`, never a runtime
dependency): implicit's ALS and BPR, cornac's BiVAE and BPR, RecBole's NeuMF, MultiVAE, RecVAE and EASE;
beside them this repository's default (`collabnn`) and its EASE. The protocols and test data are those of
`benchmarks/accuracy.py` (seed split, sampled; ml-100k random 80:20, full ranking and sampled; ml-100k
temporal, full ranking), and every model is scored by the same evaluation code on the same rows.

Selection, on the validation part carved out of train (`validation_split(train, rule, seed=0)`, the part the
default's early stopping uses) and nothing else: each peer gets an Optuna TPE search (seeded) of at most
`--trials` trials (8, the budget `ease_tuned` has in the accuracy benchmark) and `--search-seconds` of
search (a trial that has started always ends); its first trial is its reference configuration (the
library's defaults; for BiVAE microsoft/recommenders' ml-100k settings). Trials are scored by validation
NDCG@10 of full ranking (`ValidationNDCG`, the figure the default's early stopping follows); RecBole's
models also early-stop on that part inside each trial (RecBole's Trainer), the others search their
iteration count. The best configuration is then trained once on all of train ("train s": what a user who
knows the configuration pays) and scored on test once. The default is run as it ships: its settings were
chosen on ml-100k validation parts in earlier work; its "train s" is the whole `fit` (its own validation
carve, early stopping and refit), so it carries its selection cost, which the peers' "train s" does not.

Each (protocol, model) runs in a child process, so peak resident memory is its own ("peak GB": the child's
peak, Python + torch + the library included; "model GB": the peak minus the resident size before the fit).
Intervals: scipy's bootstrap over users (`helpers.evaluation.bootstrap_ci`); paired differences default
minus peer on the same rows (`helpers.evaluation.paired_comparison`). Ratios are to the default of the
same run. Every result records its provenance (commit, clean tree, date, machine, threads, load average).

Writes reports/benchmarks.json (key "peers", other keys kept), benchmarks/PEERS.md (generated) and
reports/figures/peers_pareto.png.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import torch  # noqa: E402
from accuracy import SEED_SPLIT, fit_selected, protocol_data, test_figures  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402
from readme_tables import peer_library_versions, protocol_provenance, rows_in_order, verdicts  # noqa: E402

from helpers.data import sampled_candidates, validation_split  # noqa: E402
from helpers.evaluation import bootstrap_ci, paired_comparison  # noqa: E402
from helpers.files import atomic_path, write_text  # noqa: E402
from helpers.models import DEFAULT_MODEL  # noqa: E402
from helpers.notebooks.landing import run_record  # noqa: E402
from helpers.training.device import library_versions  # noqa: E402
from helpers.training.validation import ValidationNDCG  # noqa: E402

try:
    from peer_models import LIBRARY_VERSIONS, PEERS, RecBoleModel  # noqa: E402
except ModuleNotFoundError as missing:
    raise SystemExit(f"benchmarks/peers.py: the peer library {missing.name!r} is not installed; run `make setup-peers` "
                     "(pip install -c requirements.txt -r benchmarks/requirements-peers.txt)") from None

OUT = ROOT / "reports" / "benchmarks.json"
TABLE = ROOT / "benchmarks" / "PEERS.md"
FIGURE = ROOT / "reports" / "figures" / "peers_pareto.png"
OURS = [DEFAULT_MODEL, "ease"]
PEER_NAMES = ["implicit_als", "implicit_bpr", "cornac_bivae", "cornac_bpr", "recbole_neumf", "recbole_multivae",
              "recbole_recvae", "recbole_ease"]
PROTOCOLS = ["seed_split", "ml100k_random", "ml100k_temporal"]
TITLES = {"seed_split": "Original notebook's split (ml-latest-small), one held-out item per user",
          "ml100k_random": "ml-100k, random 80:20 per user (seed 0)",
          "ml100k_temporal": "ml-100k, temporal (the latest 20% of time is test)"}
FIGURE_LABELS = {"sampled ndcg@10": "sampled NDCG@10 (99 negatives)", "full ndcg@10": "full-ranking NDCG@10"}


def resident_gb() -> float:
    """This process's resident memory now, in GB (Linux /proc; 0.0 elsewhere)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def searched_peer(name: str, train, rule: str, seed: int, threads: int, trials: int, search_seconds: float):
    """(peer fitted on all of train with the best configuration, its validation figure, train seconds, notes)."""
    cls = PEERS[name]
    fit_part, held = validation_split(train, rule, seed=seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({k: v for k, v in cls.reference.items() if k != "epochs"})

    def objective(trial):
        config = cls.space(trial)
        model = cls(seed=seed, threads=threads, **config)
        start = time.perf_counter()
        model = model.fit_early_stopped(fit_part, held) if isinstance(model, RecBoleModel) else model.fit(fit_part)
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
        trial.set_user_attr("config", config)
        if isinstance(model, RecBoleModel):
            trial.set_user_attr("best_epochs", model.best_epochs)
        return float(ValidationNDCG.of_frame(model, held, seed=seed).value)

    start = time.perf_counter()
    study.optimize(objective, n_trials=trials, timeout=search_seconds, gc_after_trial=True)
    search = time.perf_counter() - start
    best = study.best_trial
    model = cls(seed=seed, threads=threads, **best.user_attrs["config"])
    if isinstance(model, RecBoleModel):
        model.best_epochs = best.user_attrs["best_epochs"]
    start = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - start
    log = [{"trial": t.number, "validation": t.value, "seconds": t.user_attrs.get("seconds"),
            "best_epochs": t.user_attrs.get("best_epochs"), **t.params} for t in study.trials if t.value is not None]
    return model, float(best.value), seconds, {
        "config": best.user_attrs["config"], "best_epochs": best.user_attrs.get("best_epochs"),
        "search_seconds": round(search, 2), "trials": len(log), "reference_validation": log[0]["validation"],
        "tuning_log": log}


def child(protocol: str, name: str, result: Path, seed: int, threads: int, trials: int, search_seconds: float,
          seed_split: Path) -> int:
    """One (protocol, model): select on validation, train on train, score on test; JSON + per-user npz."""
    torch.set_num_threads(threads)
    train, test, rule, protocols = protocol_data(protocol, seed_split)
    cand = sampled_candidates(train, test, 99, seed=0) if "sampled" in protocols else None
    before = resident_gb()
    if name in OURS:
        model, valid, seconds, notes = fit_selected(name, train, rule, "implicit", seed, "cpu")
        notes = {**notes, "search_seconds": 0.0, "trials": 0}
        library = "this repository"
    else:
        model, valid, seconds, notes = searched_peer(name, train, rule, seed, threads, trials, search_seconds)
        library = model.library
    values, per_user = test_figures(model, train, test, protocols, cand)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
    with atomic_path(result.with_suffix(".npz")) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{f"{key}|values": v for key, (v, _) in per_user.items()},
                 **{f"{key}|users": u.astype(str) for key, (_, u) in per_user.items()})
    write_text(result, json.dumps({"model": name, "library": library, "validation": valid, "train_seconds": round(seconds, 2),
                                   "peak_gb": round(peak, 3), "model_gb": round(max(peak - before, 0.0), 3),
                                   "test": values, **notes}, indent=1, default=str))
    return 0


def run_child(protocol: str, name: str, args, folder: Path) -> tuple[dict, dict]:
    """Run one child process; (its JSON, {figure: (values, users)})."""
    result = folder / f"{protocol}-{name}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", protocol, name, "--result", str(result),
               "--seed", str(args.seed), "--threads", str(args.threads), "--trials", str(args.trials),
               "--search-seconds", str(args.search_seconds), "--seed-split", args.seed_split]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OPENBLAS_NUM_THREADS": "1"}  # implicit asks for a 1-thread BLAS
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)  # cwd: RecBole writes logs there
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{protocol}, {name}: the child process failed (exit {done.returncode}):\n{tail}")
    row = json.loads(result.read_text())
    row["wall_seconds"] = round(time.perf_counter() - start, 1)
    with np.load(result.with_suffix(".npz")) as data:
        keys = sorted({k.split("|")[0] for k in data.files})
        per_user = {k: (data[f"{k}|values"], data[f"{k}|users"]) for k in keys}
    return row, per_user


def summarise(rows: dict, users: dict, default: str, n_boot: int = 2000) -> dict:
    """Intervals, paired differences (default - model) and ratios to the default, per test figure."""
    for key, (base, groups) in users[default].items():
        for name, row in rows.items():
            values, their_groups = users[name][key]
            point, low, high = bootstrap_ci(values, groups=their_groups, n_boot=n_boot, seed=0)
            entry = {"value": float(point), "ci_low": float(low), "ci_high": float(high),
                     "ratio_to_default": float(point / rows[default]["figures"][key]["value"])
                     if name != default else 1.0}
            if name != default:
                if not np.array_equal(groups, their_groups):
                    raise RuntimeError(f"{key}: the test rows of {default} and {name} differ; cannot pair them")
                entry["paired"] = paired_comparison(base, values, groups, n_boot=n_boot, seed=0)
            row.setdefault("figures", {})[key] = entry  # the default comes first: its entry is the ratios' denominator
    for row in rows.values():
        row["train_seconds_ratio"] = row["train_seconds"] / rows[default]["train_seconds"]
        row["peak_gb_ratio"] = row["peak_gb"] / rows[default]["peak_gb"]
    return rows


def run_protocol(protocol: str, names: list[str], args, folder: Path) -> dict | None:
    data = protocol_data(protocol, Path(args.seed_split))
    if data is None:
        print(f"SKIPPED {protocol}: {args.seed_split} is absent (it ships only with the project's shared folder)", flush=True)
        return None
    train, test, rule, protocols = data
    provenance = run_record(ROOT)
    rows, users = {}, {}
    for name in names:
        rows[name], users[name] = run_child(protocol, name, args, folder)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in rows[name]["test"].items())
        row = rows[name]
        print(f"  {protocol}, {name}: validation {row['validation']:.4f}  {shown}  train {row['train_seconds']:.1f} s"
              f"  search {row['search_seconds']:.1f} s ({row['trials']} trials)  peak {row['peak_gb']:.2f} GB", flush=True)
    default = names[0]
    ordered = {default: rows[default], **{n: r for n, r in rows.items() if n != default}}
    return {"train_rows": int(len(train)), "test_rows": int(len(test)), "validation_rule": rule,
            "test_protocols": protocols, "default": default, "provenance": provenance,
            "load_average_end": [round(x, 2) for x in os.getloadavg()], "command": args.command,
            "models": summarise(ordered, users, default)}


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower seconds, higher quality), by seconds."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -np.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def pareto_figure(section: dict, path: Path) -> Path:
    """One panel per (protocol, test figure): NDCG@10 with its 95% interval against train seconds (log)."""
    panels = [(p, key) for p in PROTOCOLS if section["protocols"].get(p)
              for key in sorted(section["protocols"][p]["models"][section["protocols"][p]["default"]]["figures"])]
    cols = min(len(panels), 2)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 4.8 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (protocol, key) in zip(axes.flat, panels):
        part = section["protocols"][protocol]
        names = list(part["models"])
        xs = [part["models"][n]["train_seconds"] for n in names]
        ys = [part["models"][n]["figures"][key]["value"] for n in names]
        lows = [part["models"][n]["figures"][key]["ci_low"] for n in names]
        highs = [part["models"][n]["figures"][key]["ci_high"] for n in names]
        for n, x, y, lo, hi in zip(names, xs, ys, lows, highs):
            ours = part["models"][n]["library"] == "this repository"
            ax.errorbar([x], [y], yerr=[[y - lo], [hi - y]], fmt="o" if ours else "s", ms=7 if n == part["default"] else 5,
                        color="C3" if n == part["default"] else ("C0" if ours else "C7"), capsize=2)
            ax.annotate(n, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7)
        front = pareto_front(list(zip(xs, ys)))
        ax.plot([xs[i] for i in front], [ys[i] for i in front], "--", color="C2", lw=1, drawstyle="steps-post",
                label="Pareto front")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("train seconds (log scale; 2-core CPU)")
        ax.set_ylabel(f"test {FIGURE_LABELS.get(key, key)}")
        ax.set_title(f"{TITLES[protocol].split(' (')[0]}\n{FIGURE_LABELS.get(key, key)}", fontsize=9)
        ax.legend(loc="lower right", fontsize=7)
        ax.grid(alpha=0.3)
    runs = sorted({(part["provenance"]["date"], part["provenance"]["commit"]) for part in section["protocols"].values()
                   if part and part.get("provenance")})
    fig.suptitle("Quality against training time; each protocol's models from one run ("
                 + "; ".join(f"{date}, commit {commit}" for date, commit in runs)
                 + ")\nred: this repository's default, blue: its EASE, grey: peers; bars: 95% bootstrap intervals", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def _interval(entry: dict) -> str:
    return f"{entry['value']:.3f} [{entry['ci_low']:.3f}, {entry['ci_high']:.3f}]"


def markdown(section: dict) -> str:
    """benchmarks/PEERS.md from the run's numbers."""
    prov = section["provenance"]
    lines = ["# Peers benchmark: the default against the libraries a user would pick instead", "",
             "Generated by `benchmarks/peers.py` (do not edit by hand); the numbers are in `reports/benchmarks.json` "
             "under `peers`, the plot is `reports/figures/peers_pareto.png`.", "",
             f"Command: `{section['command']}`. Run of {prov['date']} at commit {prov['commit']} "
             f"({'clean tree' if prov['clean'] else 'uncommitted changes'}), {prov['machine']}, {section['threads']} "
             f"thread(s), load average {prov['load_average']} at the start and {section['load_average_end']} at the end. "
             f"Libraries: {peer_library_versions(section)}.", "",
             f"Selection on the validation part only: each peer's Optuna search had at most {section['trials']} trials and "
             f"{section['search_seconds']:.0f} s (its first trial its reference configuration); the default runs as it ships, "
             "with its own early stopping. Test figures are computed once, after. \"train s\" is the fit of the chosen "
             "configuration on all of train (for the default: its whole `fit`, selection included); \"peak GB\" is the "
             "child process's peak resident memory (Python, torch and the library included). Paired: default minus model "
             "over the same users, 95% bootstrap interval; above zero means the default is ahead. Sampled (99 negatives) "
             "and full-ranking figures are not comparable with each other.", ""]
    for protocol in [p for p in PROTOCOLS if p in section["protocols"]]:
        part = section["protocols"][protocol]
        if part is None:
            lines += [f"## {TITLES[protocol]}", "", "Skipped: the data is absent on this machine.", ""]
            continue
        default = part["default"]
        keys = sorted(part["models"][default]["figures"])
        lines += [f"## {TITLES[protocol]}", "",
                  f"{part['train_rows']:,} training rows (validation rule: {part['validation_rule']}), {part['test_rows']:,} "
                  f"test rows; test: {', '.join(FIGURE_LABELS[k] for k in keys)}. {protocol_provenance(part)}", ""]
        header = ["model", "library", "validation NDCG@10"]
        for key in keys:
            label = FIGURE_LABELS[key].split(" NDCG")[0]
            header += [f"test {label} NDCG@10 [95%]", "x default", f"default - model ({label})"]
        header += ["HR@10", "train s", "x default", "search s (trials)", "peak GB", "x default"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name, row in rows_in_order(part, keys[0]):
            cells = [f"**{name}** (default)" if name == default else name, row["library"], f"{row['validation']:.4f}"]
            for key in keys:
                entry = row["figures"][key]
                paired = entry.get("paired")
                cells += [_interval(entry), f"{entry['ratio_to_default']:.3f}",
                          f"{paired['diff']:+.3f} [{paired['ci_low']:+.3f}, {paired['ci_high']:+.3f}]" if paired else ""]
            hr_key = keys[0].replace("ndcg", "hr")
            cells += [f"{row['test'][hr_key]:.3f}", f"{row['train_seconds']:.1f}", f"{row['train_seconds_ratio']:.2f}",
                      f"{row['search_seconds']:.0f} ({row['trials']})" if row["trials"] else "in train s",
                      f"{row['peak_gb']:.2f}", f"{row['peak_gb_ratio']:.2f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", *verdicts(part), ""]
    return "\n".join(lines) + "\n"


def write_results(section: dict, path: Path = OUT) -> None:
    """Replace the "peers" key of benchmarks.json (other keys kept), atomically."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data["peers"] = section
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(OURS + PEER_NAMES),
                   help=f"comma-separated, the first is the reference of the ratios (default {','.join(OURS + PEER_NAMES)})")
    p.add_argument("--protocols", default=",".join(PROTOCOLS), help=f"subset of {','.join(PROTOCOLS)}")
    p.add_argument("--trials", type=int, default=8, help="most Optuna trials per peer and protocol (default 8)")
    p.add_argument("--search-seconds", type=float, default=120.0,
                   help="most seconds of search per peer and protocol; a started trial ends (default 120)")
    p.add_argument("--quick", action="store_true", help="2 trials and 20 s of search per peer, to check that it runs")
    p.add_argument("--threads", type=int, default=2, help="torch / library threads (default 2)")
    p.add_argument("--seed", type=int, default=0, help="training and search seed (default 0)")
    p.add_argument("--seed-split", default=str(SEED_SPLIT), help="folder of the original notebook's split")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--table", default=str(TABLE), help="the markdown table to regenerate")
    p.add_argument("--figure", default=str(FIGURE), help="the Pareto plot to write")
    p.add_argument("--render", action="store_true",
                   help="only regenerate the table and the plot from the results in --out (no run)")
    p.add_argument("--child", nargs=2, metavar=("PROTOCOL", "MODEL"), help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.trials, args.search_seconds = 2, 20.0
    if args.child:
        return child(*args.child, Path(args.result), args.seed, args.threads, args.trials, args.search_seconds,
                     Path(args.seed_split))
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in OURS + PEER_NAMES]
    if unknown:
        p.error(f"unknown models {unknown}; choose from {','.join(OURS + PEER_NAMES)}")
    protocols = [q for q in args.protocols.split(",") if q]
    if [q for q in protocols if q not in PROTOCOLS]:
        p.error(f"unknown protocols {[q for q in protocols if q not in PROTOCOLS]}; choose from {','.join(PROTOCOLS)}")
    args.command = "benchmarks/peers.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.render:
        return render(json.loads(Path(args.out).read_text())["peers"], args)
    section = {"command": args.command, "provenance": run_record(ROOT), "threads": args.threads, "trials": args.trials,
               "search_seconds": args.search_seconds, "seed": args.seed, "versions": library_versions(),
               "peer_versions": LIBRARY_VERSIONS, "protocols": {}}
    out = Path(args.out)
    earlier = (json.loads(out.read_text()) if out.exists() else {}).get("peers", {}).get("protocols", {})
    with tempfile.TemporaryDirectory(prefix="peers_") as folder:
        for protocol in protocols:
            print(f"{protocol}:", flush=True)
            section["protocols"][protocol] = run_protocol(protocol, names, args, Path(folder))
            # written as each protocol ends (with its own provenance): a run stopped later keeps the protocols it
            # finished (on this 2-core machine one protocol took 40 min and the whole run did not fit a session)
            section["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
            write_results({**section, "protocols": merged_protocols(earlier, section["protocols"])}, out)
    section["protocols"] = merged_protocols(earlier, section["protocols"])
    return render(section, args)


def merged_protocols(earlier: dict, new: dict) -> dict:
    """The protocols of this run, and those of an earlier run that this one did not repeat (each keeps its own
    provenance), in `PROTOCOLS` order."""
    kept = {k: v for k, v in earlier.items() if k in PROTOCOLS and k not in new and v}
    if kept:
        print(f"kept the earlier results of {', '.join(kept)} (their own commit and date are in each table)", flush=True)
    both = {**kept, **new}
    return {k: both[k] for k in PROTOCOLS if k in both}


def render(section: dict, args) -> int:
    """PEERS.md and the Pareto plot from a peers section."""
    if any(section["protocols"].values()):
        pareto_figure(section, Path(args.figure))
    text = markdown(section)
    write_text(Path(args.table), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
