"""EDA.ipynb through papermill on a small sample: it runs, writes its figures and its numbers."""
import json
from pathlib import Path

import papermill as pm

ROOT = Path(__file__).resolve().parents[1]
SEED_PLOTS = ["interactions_by_gender", "top_categories", "rating_by_gender_category", "ratings_over_years"]


def test_eda_notebook_smoke(tmp_path):
    out = tmp_path / "EDA.ipynb"
    pm.execute_notebook(str(ROOT / "EDA.ipynb"), str(out), cwd=str(ROOT), progress_bar=False, kernel_name="python3",
                        parameters={"DATASET": "ml-100k", "OUTPUT_DIR": str(tmp_path), "SAMPLE": 3000, "SEED": 1})
    metrics = json.loads((tmp_path / "metrics.json").read_text())["eda"]
    p = metrics["profile"]
    assert 3000 <= p["interactions"] < 4000 and p["users"] < 943
    assert abs(p["density"] - p["interactions"] / (p["users"] * p["items"])) < 1e-12
    assert set(metrics["by_gender"]) <= {"female", "male"}
    assert sum(v["interactions"] for v in metrics["by_gender"].values()) == p["interactions"]
    for name in SEED_PLOTS + ["rating_distribution", "long_tail"]:
        png = tmp_path / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_eda_notebook_is_thin_and_parameterised():
    nb = json.loads((ROOT / "EDA.ipynb").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    for line in "".join(tagged[0]["source"]).splitlines():
        name = line.split("=")[0].strip()
        assert name.isupper() and "#" in line, f"parameter line without UPPER_CASE name or comment: {line}"
    assert not any(line.lstrip().startswith(("def ", "class ")) for c in code for line in "".join(c["source"]).splitlines())
