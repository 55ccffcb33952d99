"""Each top-level notebook is paired with a py:percent source by jupytext: the two agree, and syncing
them changes nothing (cell ids included), so an edit of either side is never silently lost."""
import shutil

import jupytext
import pytest
from jupytext.cli import jupytext as jupytext_cli

from helpers.files import ROOT
from helpers.pipeline import NOTEBOOKS, declared_parameters


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_and_its_script_hold_the_same_cells(name):
    nb = jupytext.read(ROOT / name)
    script = jupytext.read((ROOT / name).with_suffix(".py"))
    assert nb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    cells = lambda book: [(c.cell_type, c.source.strip(), c.metadata.get("tags", [])) for c in book.cells]
    assert cells(nb) == cells(script), f"{name} and its .py differ: run `make sync`"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        f"{name} has outputs: the executed notebooks live in reports/; clear them and run `make sync`"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_syncing_changes_nothing(tmp_path, name):
    for suffix in (".ipynb", ".py"):
        shutil.copy((ROOT / name).with_suffix(suffix), tmp_path)
    shutil.copy(ROOT / "jupytext.toml", tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    jupytext_cli(["--sync", "--quiet", str(tmp_path / name)])
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before, f"`jupytext --sync {name}` rewrote {[k for k in before if before[k] != after[k]]}"


def test_editing_the_script_changes_only_that_cell_of_the_notebook(tmp_path):
    for suffix in (".ipynb", ".py"):
        shutil.copy((ROOT / "EDA").with_suffix(suffix), tmp_path)
    shutil.copy(ROOT / "jupytext.toml", tmp_path)
    old = jupytext.read(tmp_path / "EDA.ipynb")
    script = tmp_path / "EDA.py"
    edited = script.read_text().replace("profile = eda.dataset_profile(df)", "profile = eda.dataset_profile(df)  # edited")
    script.write_text(edited)
    jupytext_cli(["--sync", "--quiet", str(script)])
    new = jupytext.read(tmp_path / "EDA.ipynb")
    changed = [i for i, (a, b) in enumerate(zip(old.cells, new.cells)) if a.source != b.source]
    assert len(new.cells) == len(old.cells) and len(changed) == 1
    assert [c.get("id") for c in new.cells] == [c.get("id") for c in old.cells]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_an_interactive_run_writes_under_scratch_not_over_the_committed_results(name):
    """reports/ and model/ hold the committed default run; only the pipeline (make run) writes there."""
    params = declared_parameters(ROOT / name)
    source = (ROOT / name).with_suffix(".py").read_text()
    writes_models = "save=True" in source or ".save(" in source
    for key in ("OUTPUT_DIR", "MODEL_DIR"):
        if key in params:
            if key == "MODEL_DIR" and not writes_models:  # a notebook that only reads models may read model/
                assert params[key] in ("model", "scratch/model"), f"{name}: {key} = {params[key]!r}"
                continue
            assert params[key].split("/")[0] == "scratch", f"{name}: {key} = {params[key]!r}"
    assert "scratch/" in (ROOT / ".gitignore").read_text().splitlines()
