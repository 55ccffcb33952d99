"""`python -m helpers --help` and each command's: every option has help that states its default, every parser
shows 2-4 example command lines with their line breaks, every example parses, and the recommend and score
examples run as printed (against the committed model/collabnn_implicit.pth), so examples cannot rot."""
import argparse
import shlex
import subprocess
import sys

import pandas as pd
import pytest

from helpers import cli
from helpers.files import ROOT

PROG = "python -m helpers"


def parsers() -> dict:
    """{command (None for the top level): its parser}, walked from `cli.parser()`."""
    top = cli.parser()
    found = {None: top}
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def examples(p: argparse.ArgumentParser) -> list[str]:
    """The example command lines of a parser's epilog (comments dropped)."""
    return [line.split("  #")[0].strip() for line in (p.epilog or "").splitlines() if line.startswith("  python -m ")]


def test_every_command_is_walked():
    assert set(parsers()) == {None, "train", "tune", "score", "recommend"}


@pytest.mark.parametrize("command", list(parsers()))
def test_every_option_has_help_that_states_its_default(command):
    p = parsers()[command]
    for action in p._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help is not argparse.SUPPRESS, f"{command} {name} has no help"
        if action.option_strings and not action.required and action.default not in (None, False):
            assert "default" in action.help, f"{command} {name}: the help does not state the default {action.default!r}"
        if action.option_strings and action.required:
            assert "required" in action.help, f"{command} {name}: the help does not say it is required"
    text = p.format_help()
    for action in p._actions:
        for choice in action.choices or ():
            assert str(choice) in text, f"{command}: choice {choice!r} of {action.option_strings} is not shown"


@pytest.mark.parametrize("command", list(parsers()))
def test_every_help_shows_two_to_four_examples_with_their_line_breaks(command):
    p = parsers()[command]
    lines = examples(p)
    assert 2 <= len(lines) <= 4, f"{command or 'top level'}: {len(lines)} examples"
    assert any(line.startswith(f"{PROG} {command or ''}") for line in lines)
    text = p.format_help()
    for raw in p.epilog.splitlines():  # RawDescriptionHelpFormatter: each example on its own line, unwrapped
        assert raw in text.splitlines(), f"{command}: example line re-wrapped in --help: {raw!r}"


@pytest.mark.parametrize("line", sorted({line for p in parsers().values() for line in examples(p)
                                         if line.startswith(f"{PROG} ")}))
def test_every_example_parses(line):
    argv = shlex.split(line)[3:]
    if "--help" in argv:
        assert argv[0] in parsers()
        return
    args = cli.parser().parse_args(argv)  # an unknown option or a bad value exits here
    assert args.command == argv[0]


def run_as_printed(line, cwd):
    argv = shlex.split(line)
    assert argv[:3] == ["python", "-m", "helpers"]
    return subprocess.run([sys.executable, *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_the_recommend_and_score_examples_run_as_printed(tmp_path):
    (tmp_path / "model").symlink_to(ROOT / "model")  # the examples name model/collabnn_implicit.pth
    recommend = examples(parsers()["recommend"])[0]
    assert "--titles" in recommend and "model/collabnn_implicit.pth" in recommend
    res = run_as_printed(recommend, tmp_path)
    assert res.returncode == 0, res.stderr
    recs = pd.read_csv(tmp_path / "recs.csv", dtype=str, keep_default_na=False)
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score", "item_title", "item_category"]
    assert recs["user_id"].nunique() == 943 and (recs["item_title"] != "").all()

    first, second = examples(parsers()["score"])  # recommend writes the pairs that score reads
    for line in (first, second):
        res = run_as_printed(line, tmp_path)
        assert res.returncode == 0, res.stderr
    scores = pd.read_csv(tmp_path / "scores.csv", dtype={"user_id": str, "item_id": str})
    assert len(scores) == 5 * 943 and scores["score"].notna().all()
