"""explore.ipynb through papermill on a small sample (the same notebook, smaller parameters): the static view,
exact reasons that add up, the live explorer built, the interpretation figures written."""
import json

import nbformat
import papermill as pm
import pytest

from helpers.files import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explore")
    pm.execute_notebook(str(ROOT / "explore.ipynb"), str(tmp / "explore.ipynb"), cwd=str(ROOT), progress_bar=False,
                        kernel_name="python3",
                        parameters={"DATASET": "ml-100k", "SAMPLE": 3000, "SEED": 0, "EPOCHS": 1,
                                    "EXPLORE_MODELS": ["collabnn", "ease", "mf", "popular"],
                                    "INTERPRET": ["mf", "mf_rating", "bias"],
                                    "DATA_DIR": str(tmp / "data"), "MODEL_DIR": str(tmp / "model"),
                                    "OUTPUT_DIR": str(tmp / "out")})
    return tmp, json.loads((tmp / "out" / "metrics.json").read_text())["explore"]


def test_static_view_and_reasons(smoke):
    tmp, m = smoke
    assert m["models"] == ["collabnn", "ease", "mf", "popular"]
    assert m["reasons"] == {"collabnn": "exact", "ease": "exact", "mf": "nearest", "popular": "popularity"}
    assert set(m["decomposition_error"]) == {"collabnn", "ease"}
    assert max(m["decomposition_error"].values()) < 1e-4
    assert all(0 <= h <= m["k"] for h in m["hits"].values())
    assert set(m["reranked_hits"]) == {"collabnn", "popularity -0.5", "mmr +0.5"}


def test_widget_and_interpretation(smoke):
    tmp, m = smoke
    nb = nbformat.read(tmp / "explore.ipynb", as_version=4)
    mimes = {k for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) for k in o.get("data", {})}
    assert "application/vnd.jupyter.widget-view+json" in mimes  # INTERACTIVE: the widget was displayed
    assert m["interpreted"] == {"mf": {"item_bias": True, "embedding_map": True},
                                "mf_rating": {"item_bias": True, "embedding_map": True},
                                "bias": {"item_bias": True, "embedding_map": False}}
    for name in ("mf", "mf_rating"):
        assert (tmp / "out" / "figures" / f"embedding_map_{name}.png").stat().st_size > 10_000
