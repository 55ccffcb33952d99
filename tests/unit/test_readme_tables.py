"""The README's benchmark tables are generated from reports/benchmarks.json (benchmarks/readme_tables.py):
the committed README is what the committed JSON gives, a typed edit inside a block is caught, and a
missing block or result is named in one line."""
import json
import sys

import pytest

from helpers.files import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import readme_tables  # noqa: E402

README = (ROOT / "README.md").read_text()
DATA = json.loads((ROOT / "reports" / "benchmarks.json").read_text())


def test_committed_readme_is_what_the_committed_json_gives():
    assert readme_tables.readme_with_tables(README, DATA) == README, "run .venv/bin/python benchmarks/readme_tables.py"


def typed_edit(readme: str) -> str:
    """`readme` with a word typed into the accuracy block (and nowhere else)."""
    block = readme[readme.index(readme_tables.marker("accuracy")):readme.index(readme_tables.marker("accuracy", end=True))]
    return readme.replace(block, block.replace("| popular |", "| popular (typed) |"))


def test_a_typed_number_inside_a_block_is_overwritten():
    edited = typed_edit(README)
    assert edited != README and readme_tables.readme_with_tables(edited, DATA) == README


def test_every_block_states_the_commit_it_was_measured_at():
    for name in ("peers", "scale", "budget"):
        start = README.index(readme_tables.marker(name))
        text = README[start:README.index(readme_tables.marker(name, end=True))]
        assert "commit `" in text, name


def test_missing_markers_and_missing_results_are_named():
    without = README.replace(readme_tables.marker("scale", end=True), "")
    with pytest.raises(ValueError, match=r"README.md has no '<!-- benchmarks:scale:start"):
        readme_tables.readme_with_tables(without, DATA)
    with pytest.raises(ValueError, match=r"reports/benchmarks.json has no 'peers' result; run its benchmark"):
        readme_tables.readme_with_tables(README, {k: v for k, v in DATA.items() if k != "peers"})


def test_check_mode_exits_1_on_a_stale_readme_and_writes_nothing(tmp_path):
    stale = tmp_path / "README.md"
    stale.write_text(typed_edit(README))
    before = stale.read_text()
    assert readme_tables.main(["--check", "--readme", str(stale)]) == 1 and stale.read_text() == before
    assert readme_tables.main(["--readme", str(stale)]) == 0 and stale.read_text() == README
