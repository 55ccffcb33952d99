"""The command line against a hostile user (bad files, odd ids, killed processes): every expected failure is one
line on stderr with status 2 and writes nothing; ids are read the same way by `train` and `score`; a killed
`score` / `recommend` leaves the earlier output whole. In-process (`helpers.cli.main`) where a traceback would
show as an exception escaping the test, in a subprocess where the process itself is killed."""
import os
import signal
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from cli_in_process import run

from helpers.files import ROOT, current_umask


def assert_one_line(status, lines, *expected):
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A training CSV (100 users x 40 items) and a model trained on it by `train`."""
    root = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 100, 1500)],
                          "item_id": [f"i{i}" for i in rng.integers(0, 40, 1500)],
                          "rating": rng.integers(1, 6, 1500).astype(float)})
    train.to_csv(root / "train.csv", index=False)
    status, lines = run("train", "--train", root / "train.csv", "--out", root / "m.pth", "--epochs", 2, "--device", "cpu")
    assert status == 0, lines
    assert any("dropped" in line and "duplicated" in line for line in lines)  # duplicates are reported
    return root


def write(path, content):
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def test_a_model_file_is_readable_by_the_group(folder):
    assert stat.S_IMODE((folder / "m.pth").stat().st_mode) == 0o666 & ~current_umask()


def test_the_same_id_is_read_the_same_way_by_train_and_score(folder):
    pairs = write(folder / "pairs.csv", "user_id,item_id\nu1, i5\n u1 ,i5\nu1,i5\n")
    status, _ = run("score", "--model", folder / "m.pth", "--pairs", pairs, "--out", folder / "s.csv")
    scores = pd.read_csv(folder / "s.csv", dtype={"user_id": str, "item_id": str})
    assert status == 0 and scores["score"].notna().all() and scores["score"].nunique() == 1


@pytest.mark.parametrize("content, expected", [
    (b"", "is empty; expected a header line"),
    ("user_id,item_id\nJos\xe9,i1\n".encode("latin-1"), "is not UTF-8 text"),
    ("user_id,item_id\n   ,i1\n", "column 'user_id' has 1 missing id(s), the first '   ' at data row 1"),
    ("user_id,item_id\nNA,i1\n", "the first 'NA' at data row 1"),
    ("user_id,item_id\nu1," + "x" * 100_000 + "\n" + "u2,i1\n" * 1000, "an id of 100,000 characters at data row 1"),
    ("user,item\nu1,i1\n", "has no column(s) ['user_id', 'item_id']"),
])
def test_bad_pairs_files_are_one_line_naming_the_file(folder, content, expected):
    pairs = write(folder / "bad_pairs.csv", content)
    status, lines = run("score", "--model", folder / "m.pth", "--pairs", pairs, "--out", folder / "never.csv")
    assert_one_line(status, lines, f"pairs file {pairs}", expected)
    assert not (folder / "never.csv").exists()


def _tampered(folder, name, change):
    payload = torch.load(folder / "m.pth", weights_only=True)
    change(payload)
    torch.save(payload, folder / name)
    return folder / name


@pytest.mark.parametrize("make, expected", [
    (lambda f: write(f / "zero.pth", b""), "is empty (0 bytes), not a model file"),
    (lambda f: write(f / "text.pth", "not a model"), "is not a model file this project can read"),
    (lambda f: _tampered(f, "nokey.pth", lambda p: p.pop("state")), "lacks ['state']"),
    (lambda f: _tampered(f, "unsorted.pth", lambda p: p.update(user_ids=p["user_ids"][::-1])), "not sorted and unique"),
    (lambda f: _tampered(f, "short.pth", lambda p: p.update(item_ids=p["item_ids"][:-1])), "damaged or edited"),
    (lambda f: _tampered(f, "code.pth", lambda p: p.update(metadata=os.system)), "refused for safety"),
])
def test_damaged_model_files_are_one_line_naming_the_file(folder, make, expected):
    path = make(folder)
    status, lines = run("score", "--model", path, "--pairs", write(folder / "p.csv", "user_id,item_id\nu1,i1\n"),
                        "--out", folder / "never.csv")
    assert_one_line(status, lines, str(path), expected)
    assert "weights_only=False" not in lines[0] and not (folder / "never.csv").exists()


@pytest.mark.parametrize("option, value, expected", [
    ("--epochs", "0", "--epochs: must be an integer >= 1, got '0'"),
    ("--epochs", "-1", "--epochs: must be an integer >= 1"),
    ("--lr", "-0.1", "--lr: must be a finite number > 0, got '-0.1'"),
    ("--lr", "nan", "--lr: must be a finite number > 0"),
    ("--wd", "-1", "--wd: must be a finite number >= 0"),
    ("--batch-size", "0", "--batch-size: must be an integer >= 1"),
    ("--patience", "0", "--patience: must be an integer >= 1"),
    ("--seed", "-3", "--seed: must be an integer >= 0"),
])
def test_numeric_options_are_range_checked_before_training(folder, option, value, expected):
    status, lines = run("train", "--train", folder / "train.csv", "--out", folder / "never.pth", option, value)
    assert_one_line(status, lines, expected, "(see `python -m helpers train --help`)")
    assert not (folder / "never.pth").exists()


def test_an_unwritable_out_fails_before_training(folder):
    status, lines = run("train", "--train", folder / "train.csv", "--out", folder, "--epochs", 1)
    assert_one_line(status, lines, "is a folder")
    status, lines = run("train", "--train", folder / "train.csv", "--out", folder / "train.csv" / "m.pth", "--epochs", 1)
    assert_one_line(status, lines, f"{folder / 'train.csv'} is a file, not a folder")
    status, lines = run("recommend", "--model", folder / "m.pth", "--k", 0, "--out", folder / "r.csv")
    assert_one_line(status, lines, "--k: must be an integer >= 1")


@pytest.mark.parametrize("value, expected", [
    ("inf", "the first 'inf' at data row 3; ratings must be finite numbers"),
    ("", "column 'rating' has 1 missing"),
    ("1e30", "training diverged: the training loss became NaN or infinite in epoch 1; the ratings span [1, 1e+30]"),
])
def test_ratings_that_would_train_a_nan_model_are_refused_and_nothing_is_saved(folder, value, expected):
    train = write(folder / "extreme.csv", f"user_id,item_id,rating\nu1,i1,4\nu2,i2,5\nu3,i3,{value}\n"
                  + "".join(f"u{u},i{i},{1 + (u * i) % 5}\n" for u in range(30) for i in range(4, 12)))
    status, lines = run("train", "--train", train, "--out", folder / "nan.pth", "--task", "rating", "--epochs", 2)
    assert_one_line(status, lines, expected)
    assert not (folder / "nan.pth").exists()


def test_repeated_users_are_recommended_once(folder):
    users = write(folder / "users.csv", "user_id\nu1\nu1\n u2\nnobody\nnobody\n")
    status, lines = run("recommend", "--model", folder / "m.pth", "--users", users, "--k", 3, "--out", folder / "r.csv")
    recs = pd.read_csv(folder / "r.csv", dtype={"user_id": str, "item_id": str})
    assert status == 0 and recs["user_id"].tolist() == ["u1"] * 3 + ["u2"] * 3 + ["nobody"] * 3
    assert any("2 repeated user id(s) listed once" in line for line in lines)


KILL_MID_WRITE = textwrap.dedent("""
    import os, signal, sys
    import pandas as pd
    from helpers import cli

    original = pd.DataFrame.to_csv

    def killed(self, path, *args, **kwargs):  # half the rows reach the disk, then the process dies (kill -9)
        with open(path, "w") as f:
            f.write(original(self.head(len(self) // 2), index=False))
            f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    pd.DataFrame.to_csv = killed
    cli.main(sys.argv[1:])
""")


@pytest.mark.parametrize("command", ["score", "recommend"])
def test_a_process_killed_mid_write_leaves_the_earlier_output_whole(folder, command):
    out = folder / f"{command}_out.csv"
    args = (["score", "--pairs", write(folder / "all_pairs.csv", "user_id,item_id\n" + "u1,i1\n" * 500)]
            if command == "score" else ["recommend", "--k", 5])
    args = [str(a) for a in args] + ["--model", str(folder / "m.pth"), "--out", str(out)]
    assert run(*args)[0] == 0
    good = out.read_bytes()
    result = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, *args], cwd=ROOT, capture_output=True, timeout=300)
    assert result.returncode == -signal.SIGKILL
    assert out.read_bytes() == good  # the final name still holds the whole earlier output
    fresh = folder / f"{command}_fresh.csv"
    args[-1] = str(fresh)
    result = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, *args], cwd=ROOT, capture_output=True, timeout=300)
    assert result.returncode == -signal.SIGKILL and not fresh.exists()  # no truncated file under the final name
