"""The hostile-user probes of the robustness issue, rerun as a user would (each a fresh `python -m helpers`
process): what each prints, its status, whether a traceback escaped, whether anything was written, and the
process's peak memory. Writes benchmarks/logs/hostile_inputs.md.

    .venv/bin/python benchmarks/hostile_inputs.py
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers.files import ROOT, write_text  # noqa: E402

LOG = ROOT / "benchmarks" / "logs" / "hostile_inputs.md"
CLI = [sys.executable, "-m", "helpers"]
KILL = textwrap.dedent("""
    import os, signal, sys
    import pandas as pd
    from helpers import cli
    original = pd.DataFrame.to_csv
    def killed(self, path, *a, **k):
        with open(path, "w") as f:
            f.write(original(self.head(len(self) // 2), index=False)); f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    pd.DataFrame.to_csv = killed
    cli.main(sys.argv[1:])
""")


def run(args, cwd):
    """(status, last stderr line, traceback?, seconds, peak MB of this child: its own rusage, by os.wait4)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        _, wait_status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(wait_status)
        err.seek(0)
        text = err.read()
    lines = text.strip().splitlines()
    return (proc.returncode, lines[-1] if lines else "", "Traceback" in text, time.perf_counter() - start,
            usage.ru_maxrss / 1024)


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="hostile-"))
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 200, 3000)],
                          "item_id": [f"i{i}" for i in rng.integers(0, 100, 3000)],
                          "rating": rng.integers(1, 6, 3000).astype(float)})
    train.to_csv(folder / "train.csv", index=False)
    model = folder / "m.pth"
    status, line, *_ = run(CLI + ["train", "--train", "train.csv", "--out", str(model), "--epochs", "2"], folder)
    assert status == 0, line
    files = {
        "pairs_ws.csv": "user_id,item_id\nu1, i5\n u1 ,i5\n",
        "pairs_na.csv": "user_id,item_id\nNA,i5\n",
        "pairs_blank.csv": "user_id,item_id\n   ,i5\n",
        "pairs_latin1.csv": "user_id,item_id\nJos\xe9,i5\n".encode("latin-1"),
        "pairs_empty.csv": b"",
        "pairs_long.csv": "user_id,item_id\nu1," + "x" * 100_000 + "\n" + "u2,i1\n" * 100_000,
        "users_twice.csv": "user_id\nu1\nu1\nu2\n",
        "zero.pth": b"",
    }
    for name, content in files.items():
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    payload = torch.load(model, weights_only=True)
    for name, change in {"nokey.pth": lambda p: p.pop("state"),
                         "unsorted.pth": lambda p: p.update(user_ids=p["user_ids"][::-1]),
                         "evil.pth": lambda p: p.update(metadata=os.system)}.items():
        p = dict(payload)
        change(p)
        torch.save(p, folder / name)
    for value, name in (("inf", "inf"), ("1e30", "big"), ("-3", "negative")):
        t = train.drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)
        t["rating"] = t["rating"].astype(str)
        t.loc[5, "rating"] = value
        t.to_csv(folder / f"train_{name}.csv", index=False)
    (folder / "outdir").mkdir()
    probes = [
        ("score: ids with spaces", ["score", "--model", "m.pth", "--pairs", "pairs_ws.csv", "--out", "s_ws.csv"], "s_ws.csv"),
        ("score: NA id", ["score", "--model", "m.pth", "--pairs", "pairs_na.csv", "--out", "o1.csv"], "o1.csv"),
        ("score: whitespace-only id", ["score", "--model", "m.pth", "--pairs", "pairs_blank.csv", "--out", "o2.csv"], "o2.csv"),
        ("score: non-UTF-8 pairs", ["score", "--model", "m.pth", "--pairs", "pairs_latin1.csv", "--out", "o3.csv"], "o3.csv"),
        ("score: empty pairs file", ["score", "--model", "m.pth", "--pairs", "pairs_empty.csv", "--out", "o4.csv"], "o4.csv"),
        ("score: 100,000-char id, 100,000 rows", ["score", "--model", "m.pth", "--pairs", "pairs_long.csv", "--out", "o5.csv"],
         "o5.csv"),
        ("score: zero-byte model", ["score", "--model", "zero.pth", "--pairs", "pairs_ws.csv", "--out", "o6.csv"], "o6.csv"),
        ("score: model missing a key", ["score", "--model", "nokey.pth", "--pairs", "pairs_ws.csv", "--out", "o7.csv"], "o7.csv"),
        ("score: unsorted id maps", ["score", "--model", "unsorted.pth", "--pairs", "pairs_ws.csv", "--out", "o8.csv"], "o8.csv"),
        ("score: pickled code in the model", ["score", "--model", "evil.pth", "--pairs", "pairs_ws.csv", "--out", "o9.csv"],
         "o9.csv"),
        ("score: --out is a folder", ["score", "--model", "m.pth", "--pairs", "pairs_ws.csv", "--out", "outdir"], None),
        ("train: --out under a file", ["train", "--train", "train.csv", "--out", "train.csv/x.pth"], None),
        ("train: rating inf", ["train", "--train", "train_inf.csv", "--task", "rating", "--out", "t1.pth"], "t1.pth"),
        ("train: rating 1e30", ["train", "--train", "train_big.csv", "--task", "rating", "--out", "t2.pth"], "t2.pth"),
        ("train: rating -3 (a valid rating)", ["train", "--train", "train_negative.csv", "--task", "rating", "--epochs", "2",
                                               "--out", "t3.pth"], "t3.pth"),
        ("train: --epochs 0", ["train", "--train", "train.csv", "--epochs", "0", "--out", "t4.pth"], "t4.pth"),
        ("train: --epochs -1", ["train", "--train", "train.csv", "--epochs", "-1", "--out", "t5.pth"], "t5.pth"),
        ("train: --lr -1", ["train", "--train", "train.csv", "--lr", "-1", "--out", "t6.pth"], "t6.pth"),
        ("train: --batch-size 0", ["train", "--train", "train.csv", "--batch-size", "0", "--out", "t7.pth"], "t7.pth"),
        ("recommend: --k 0", ["recommend", "--model", "m.pth", "--k", "0", "--out", "r0.csv"], "r0.csv"),
        ("recommend: a user listed twice", ["recommend", "--model", "m.pth", "--k", "2", "--users", "users_twice.csv",
                                            "--out", "r1.csv"], "r1.csv"),
    ]
    rows = []
    for label, args, out in probes:
        status, line, traceback, seconds, peak = run(CLI + args, folder)
        written = "-" if out is None else ("yes" if (folder / out).exists() else "no")
        rows.append((label, status, traceback, written, f"{peak:,.0f}", line.replace("|", "\\|")[:230]))
        print(f"{label}: status {status}, written {written}, {line[:160]}", flush=True)
    scores = pd.read_csv(folder / "s_ws.csv")
    recs = pd.read_csv(folder / "r1.csv")
    for command, extra in (("score", ["--pairs", "pairs_long.csv"]), ("recommend", ["--k", "5"])):
        out = folder / f"kill_{command}.csv"
        base = [command, *extra, "--model", "m.pth", "--out", str(out)]
        if command == "score":
            base[2] = "pairs_ws.csv"
        run(CLI + base, folder)
        good = out.read_bytes()
        status, *_ = run([sys.executable, "-c", KILL, *base], folder)
        rows.append((f"{command}: killed (-9) mid-write over an earlier output", status, False,
                     "earlier output whole" if out.read_bytes() == good else "TRUNCATED", "-", ""))
    mode = oct(model.stat().st_mode & 0o777)
    umask = os.umask(0)
    os.umask(umask)
    lines = ["# Hostile inputs at the command line", "",
             f"`.venv/bin/python benchmarks/hostile_inputs.py`, {time.strftime('%Y-%m-%d')}. Each probe is a fresh "
             "`python -m helpers` process. \"written\" says whether the --out file exists afterwards; peak MB is that "
             "process's largest resident size (`os.wait4`; about 800 MB is importing torch and fastai).", "",
             "| probe | status | traceback | written | peak MB | stderr (last line) |", "|---|---|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]} | {'yes' if r[2] else 'no'} | {r[3]} | {r[4]} | {r[5]} |" for r in rows]
    lines += ["", f"- `score` of `u1, i5` and ` u1 ,i5`: scores {scores['score'].round(4).tolist()} (the same pair).",
              f"- `recommend` with u1 listed twice: {len(recs)} rows for {recs['user_id'].nunique()} users.",
              f"- The model file's mode under umask {oct(umask)}: {mode} (what a plain `open()` gives).", ""]
    write_text(LOG, "\n".join(lines))
    print(f"wrote {LOG}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
