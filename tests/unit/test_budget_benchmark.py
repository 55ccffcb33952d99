"""benchmarks/budget.py, the cost growth in the catalogue: a quick run writes every size's default and EASE
rows (each from its own process) with the run's provenance and the figure, EASE is skipped with its reason
above its size, and the README block is generated from those numbers."""
import json
import sys

import pytest

from helpers.files import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import budget  # noqa: E402
import readme_tables  # noqa: E402


@pytest.mark.slow
def test_quick_run_writes_rows_provenance_figure_and_the_readme_block(tmp_path, monkeypatch):
    out, figure = tmp_path / "benchmarks.json", tmp_path / "growth.png"
    out.write_text(json.dumps({"scale": {"kept": True}}))             # other benchmarks' results stay
    monkeypatch.setattr(budget, "EASE_MAX_ITEMS", 300)
    monkeypatch.setattr(budget, "TARGETS", {**budget.TARGETS, "items": 200})
    assert budget.main(["--items", "400", "200", "--ratings", "2000", "--users", "200", "--out", str(out),
                        "--figure", str(figure)]) == 0
    data = json.loads(out.read_text())
    assert data["scale"] == {"kept": True}
    section = data["budget"]
    assert [r["items"] for r in section["rows"]] == [200, 400]         # smallest first
    small, large = section["rows"]
    for row in (small["default"], small["ease"], large["default"]):
        assert row["rows"] == 2000 and row["users"] == 200 and row["fit_seconds"] > 0 and row["peak_gb"] > 0.1
    assert small["default"]["items"] == 200 and large["default"]["items"] == 400
    assert small["default"]["loss"] == "multinomial" and small["default"]["epochs_run"] >= small["default"]["epochs_chosen"]
    assert "ease" not in large and "0.00064 GB" in large["ease_skipped"]  # 400 x 400 float32
    assert {"commit", "clean", "date", "machine", "threads", "load_average"} <= set(section["provenance"])
    assert figure.stat().st_size > 10_000
    block = readme_tables.budget_block(section)
    assert f"commit `{section['provenance']['commit']}`" in block
    assert f"| 200 | multinomial | {small['default']['fit_seconds']:.1f} s |" in block
    assert large["ease_skipped"] in block
    assert f"Targets at 200 items: the default trains in {small['default']['fit_seconds']:.1f} s" in block


def test_render_without_a_result_says_what_to_run(tmp_path):
    out = tmp_path / "benchmarks.json"
    out.write_text("{}")
    with pytest.raises(SystemExit, match="no 'budget' result; run benchmarks/budget.py first"):
        budget.main(["--render", "--out", str(out), "--figure", str(tmp_path / "g.png")])
    assert not (tmp_path / "g.png").exists()
