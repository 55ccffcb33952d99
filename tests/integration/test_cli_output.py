"""What the command line prints besides its results: fastai's progress bars on stderr when stderr is a terminal
(stdout keeps the one result line), none when it is piped or redirected (no `\\r`-drawn bars in a log), as
--progress / --no-progress decide when given; and no warning of any kind on stderr for the normal commands run
as a user runs them (`python -m helpers ...` in a fresh process with Python's default warning filters)."""
import contextlib
import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from helpers import cli
from helpers.cli.options import shows_progress
from helpers.files import ROOT

COMMITTED = ROOT / "model" / "collabnn_implicit.pth"


class Stream(io.StringIO):
    """A captured stream that says whether it is a terminal."""

    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("choice, stream, expected", [
    (None, Stream(tty=True), True),  # auto: a terminal draws bars
    (None, Stream(tty=False), False),  # auto: a pipe or a file does not
    (None, object(), False),  # a stream without isatty counts as not a terminal
    (True, Stream(tty=False), True),  # --progress
    (False, Stream(tty=True), False),  # --no-progress
])
def test_progress_is_auto_unless_asked(choice, stream, expected):
    assert shows_progress(choice, stream) is expected


@pytest.mark.parametrize("command", ["train", "tune"])
def test_the_progress_options_parse_to_auto_on_and_off(command):
    base = [command, "--train", "t.csv", "--out", "m.pth"]
    assert cli.parser().parse_args(base).progress is None
    assert cli.parser().parse_args([*base, "--progress"]).progress is True
    assert cli.parser().parse_args([*base, "--no-progress"]).progress is False


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("output")
    rng = np.random.default_rng(0)
    pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 40, 500)],
                  "item_id": [f"i{i}" for i in rng.integers(0, 30, 500)],
                  "rating": rng.integers(1, 6, 500).astype(float)}).drop_duplicates(["user_id", "item_id"]).to_csv(
        root / "train.csv", index=False)
    (root / "pairs.csv").write_text("user_id,item_id\nu1,i1\nu2,i3\nnobody,i1\n")
    return root


def train_in_process(folder, stderr_tty: bool, *options):
    """(stdout, stderr) of `train` run in this process with a stderr that is (or is not) a terminal."""
    out, err = io.StringIO(), Stream(tty=stderr_tty)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(["train", "--train", str(folder / "train.csv"), "--out", str(folder / "m.pth"), "--epochs", "2",
                           "--device", "cpu", *options])
    assert status == 0, err.getvalue()
    return out.getvalue(), err.getvalue()


def test_on_a_terminal_the_bars_go_to_stderr_and_stdout_keeps_the_result_line(folder):
    out, err = train_in_process(folder, True)
    assert "Epoch 1/2" in err and "\r" in err and "train_loss" in err  # fastai's bars and epoch table
    assert len(out.splitlines()) == 1 and out.startswith("trained collabnn (implicit)") and "\r" not in out
    assert "Warning" not in err  # the refit's empty validation loader does not warn
    out, err = train_in_process(folder, True, "--no-progress")
    assert "\r" not in err and "Epoch" not in err and out.startswith("trained")


def test_piped_or_redirected_there_are_no_bars(folder):
    out, err = train_in_process(folder, False)
    assert "\r" not in out + err and "Epoch" not in err and out.startswith("trained")
    res = python_m_helpers("train", "--train", folder / "train.csv", "--out", folder / "piped.pth", "--epochs", 2)
    assert res.returncode == 0 and "\r" not in res.stdout + res.stderr and "Epoch" not in res.stderr, res.stderr


def python_m_helpers(*args):
    """`python -m helpers ARGS` in a fresh process with pipes, Python's default warning filters and no
    PYTHONWARNINGS: what a user running it in a shell sees."""
    return subprocess.run([sys.executable, "-m", "helpers", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


NORMAL_COMMANDS = {
    "train": ["train", "--train", "{f}/train.csv", "--out", "{f}/implicit.pth", "--epochs", "2"],
    "train rating": ["train", "--train", "{f}/train.csv", "--out", "{f}/rating.pth", "--epochs", "2", "--task", "rating"],
    "train --progress": ["train", "--train", "{f}/train.csv", "--out", "{f}/bars.pth", "--epochs", "2", "--progress"],
    "tune": ["tune", "--train", "{f}/train.csv", "--out", "{f}/tuned.pth", "--budget", "60s", "--trials", "1"],
    "score": ["score", "--model", str(COMMITTED), "--pairs", "{f}/pairs.csv", "--out", "{f}/scores.csv"],
    "recommend --titles": ["recommend", "--model", str(COMMITTED), "--k", "3", "--titles", "--out", "{f}/recs.csv"],
    "help": ["recommend", "--help"],
}


@pytest.mark.parametrize("name", list(NORMAL_COMMANDS))
def test_the_normal_commands_print_no_warning(folder, name):
    res = python_m_helpers(*[a.format(f=folder) for a in NORMAL_COMMANDS[name]])
    assert res.returncode == 0, res.stderr
    assert "Warning" not in res.stderr and "warn(" not in res.stderr, res.stderr
