"""Electronics at full size: `make run DATASET=electronics` timed, with the peak memory of the whole job.

    .venv/bin/python benchmarks/full_size.py                       # the stand-in at data/raw/df_electronics.csv
    .venv/bin/python benchmarks/full_size.py --data PATH           # any file in the df_electronics.csv format

Without --data, the full-size stand-in (`helpers.data.synthetic`: the marketing-bias file's columns and shape,
1,292,954 ratings, 1,157,633 users, 9,560 items) is written to data/raw/df_electronics.csv when that file is
missing; an existing file (the real download included) is used as it is. The pipeline runs exactly as
`make run DATASET=electronics` does (`python -m helpers.pipeline --dataset electronics[:PATH]`), into
--out-dir (its reports/, data/ and model/ there, so the committed reports stay as they are), while the
resident memory of the pipeline and of every process under it (the notebook kernels) is sampled twice a
second. Three peaks are recorded: the proportional set size summed over that process tree (PSS: a page shared
by several processes, such as torch's libraries mapped by the pipeline and by each kernel, counted once, split
between them; the memory the job takes from the machine, and the headline), the resident set size summed
over the tree (an upper bound: shared pages count once per process) and the largest single process's RSS
(what `/usr/bin/time` reports as its maximum resident set size). Per-notebook seconds are the pipeline's own record (metrics.json "pipeline"); the model files' sizes
are listed. Results, with provenance (commit, clean tree or not, date, machine, load average), go to
reports/benchmarks.json under "full_size" and to benchmarks/logs/full_size.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scale import machine  # noqa: E402  (benchmarks/scale.py: one home for the provenance record)

from helpers.data.datasets import ELECTRONICS_BLOB, standin_record  # noqa: E402
from helpers.data.download import git_blob_sha1  # noqa: E402
from helpers.files import write_text  # noqa: E402
from helpers.notebooks.landing import run_record  # noqa: E402

OUT = ROOT / "reports" / "benchmarks.json"
LOG = ROOT / "benchmarks" / "logs" / "full_size.md"
STANDIN = ROOT / "data" / "raw" / "df_electronics.csv"
TARGETS = {"wall_s": 20 * 60, "peak_gb": 6.0}  # the bounds on 2 cores and 24 GB


class TreeMemory(threading.Thread):
    """Samples the memory of a process and all its descendants every `interval` seconds: (seconds, PSS sum, RSS
    sum, largest RSS), in GB (1e9 bytes)."""

    def __init__(self, pid: int, interval: float = 0.5):
        super().__init__(daemon=True)
        self.root, self.interval, self.samples, self.done = psutil.Process(pid), interval, [], threading.Event()

    def run(self):
        start = time.time()
        while not self.done.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                break
            pss, rss = 0, []
            for proc in procs:
                try:
                    info = proc.memory_full_info()  # /proc/PID/smaps_rollup
                    pss, rss = pss + info.pss, rss + [info.rss]
                except psutil.Error:
                    pass
            self.samples.append((round(time.time() - start, 1), round(pss / 1e9, 3), round(sum(rss) / 1e9, 3),
                                 round(max(rss, default=0) / 1e9, 3)))
            self.done.wait(self.interval)

    def peak(self, column: int) -> tuple[float, float]:
        """(peak GB of a column: 1 PSS sum, 2 RSS sum, 3 largest RSS; seconds after the start when reached)."""
        best = max(self.samples, key=lambda s: s[column]) if self.samples else (0.0, 0.0, 0.0, 0.0)
        return best[column], best[0]


def run(data: Path, out_dir: Path) -> dict:
    dataset = "electronics" if data.resolve() == STANDIN.resolve() else f"electronics:{data}"
    cmd = [sys.executable, "-m", "helpers.pipeline", "--dataset", dataset, "--output-dir", str(out_dir / "reports"),
           "--data-dir", str(out_dir / "data"), "--model-dir", str(out_dir / "model")]
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    watch = TreeMemory(proc.pid)
    watch.start()
    rc = proc.wait()
    watch.done.set()
    watch.join()
    wall = round(time.time() - start, 1)
    metrics_path = out_dir / "reports" / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    peak_gb, peak_at = watch.peak(1)
    peak_rss_sum, _ = watch.peak(2)
    peak_process, _ = watch.peak(3)
    models = sorted((out_dir / "model").glob("*.pth"))
    return {"command": " ".join(["python", *cmd[1:]]), "data": str(data), "returncode": rc, "wall_s": wall,
            "peak_gb": peak_gb, "peak_at_s": peak_at, "peak_rss_sum_gb": peak_rss_sum,
            "peak_process_rss_gb": peak_process, "targets": TARGETS,
            "within_targets": rc == 0 and wall < TARGETS["wall_s"] and peak_gb < TARGETS["peak_gb"],
            "notebooks": metrics.get("pipeline", {}).get("notebooks", []), "split": metrics.get("split", {}),
            "model_files_mb": {p.name: round(p.stat().st_size / 1e6, 1) for p in models},
            "memory_timeline": watch.samples[::10]}  # (s, PSS, RSS sum, largest RSS)


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = ["# Electronics at full size (benchmarks/full_size.py)", "",
             f"Commit {m['git_commit'][:10]}{' (helpers/ had uncommitted changes)' if m['uncommitted_helpers'] else ''}, "
             f"{r['date']}, {m['cpu']}, {m['usable_cores']} cores, {m['memory_gb']} GB; load average at the start "
             f"{m['loadavg_start']}.", "", f"`{r['command']}` on {r['data']}:", "",
             f"- exit status {r['returncode']}; wall time **{r['wall_s'] / 60:.1f} min** (target < "
             f"{r['targets']['wall_s'] / 60:.0f}); peak memory of the process tree **{r['peak_gb']:.2f} GB** "
             f"(PSS; target < {r['targets']['peak_gb']:.0f}), {r['peak_at_s']:.0f} s after the start; summed RSS "
             f"{r['peak_rss_sum_gb']:.2f} GB (shared pages once per process), largest process "
             f"{r['peak_process_rss_gb']:.2f} GB",
             f"- split: {r['split'].get('split', '?')}, {r['split'].get('evaluation_share', float('nan')):.1%} of the rows in "
             f"evaluation, {r['split'].get('evaluation_users_cold', 0):,} of {r['split'].get('evaluation_users', 0):,} "
             "evaluation users unknown to training", "", "| notebook | seconds |", "|---|---|"]
    lines += [f"| {nb['notebook']} | {nb.get('seconds', nb['status'])} |" for nb in r["notebooks"]]
    lines += ["", "| model file | MB |", "|---|---|"] + [f"| {k} | {v:,.1f} |" for k, v in r["model_files_mb"].items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=STANDIN, help="a df_electronics.csv-format file (default: the stand-in)")
    p.add_argument("--out-dir", type=Path, default=ROOT / "scratch" / "full_size")
    p.add_argument("--seed", type=int, default=0, help="seed of the stand-in when it has to be written")
    args = p.parse_args(argv)
    default = args.data.resolve() == STANDIN.resolve()
    if not args.data.exists() and not default:
        print(f"{args.data} does not exist; give a df_electronics.csv-format file, or no --data for the stand-in",
              file=sys.stderr)
        return 2
    if default and not (args.data.exists() and (standin_record(STANDIN) or git_blob_sha1(STANDIN) == ELECTRONICS_BLOB)):
        # missing, or a stand-in without its record (load("electronics") reads only a recorded one): (re)written
        subprocess.run([sys.executable, "-m", "helpers.data.synthetic", "--out", str(STANDIN), "--scale", "1.0",
                        "--seed", str(args.seed)], cwd=ROOT, check=True)
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "provenance": run_record(ROOT),
              **run(args.data, args.out_dir)}
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    data["full_size"] = result
    write_text(OUT, json.dumps(data, indent=2) + "\n")
    write_text(LOG, markdown(result) + "\n")
    print(markdown(result))
    return 0 if result["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
