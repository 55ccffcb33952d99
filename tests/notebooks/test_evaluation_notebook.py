"""evaluation.ipynb through papermill on a small sample: it runs, loads or trains its models, writes its figures
and its numbers; and it stays thin and parameterised."""
import ast
import json

import papermill as pm

from helpers.files import ROOT
from helpers.models import MostPopular
from helpers.notebooks.evaluation import PARAMETER_DEFAULTS
from helpers.notebooks.inputs import notebook_split
from helpers.notebooks.records import read_metrics
from helpers.pipeline import declared_parameters

FIGURES = ["evaluation_sampled", "evaluation_full", "evaluation_rating", "evaluation_over_k",
           "evaluation_by_activity", "evaluation_by_gender", "evaluation_cold_start"]
PARAMETERS = ["DATASET", "SPLIT", "MODELS", "K", "PROTOCOLS", "N_NEGATIVES", "SEED", "SAMPLE", "DATA_DIR",
              "MODEL_DIR", "OUTPUT_DIR"]


def test_evaluation_notebook_smoke(tmp_path):
    data_dir, model_dir, out_dir = tmp_path / "data", tmp_path / "model", tmp_path / "reports"
    # one model saved beforehand (on the split the notebook will make), the others trained by the notebook
    train, _, _ = notebook_split(data_dir, "ml-100k", "random", seed=1, sample=3000)
    MostPopular().fit(train).save(model_dir / "popular_implicit.pth")
    models = PARAMETER_DEFAULTS["MODELS"]  # the default list: baselines, mf and collabnn (trained here, small)
    assert {"popular", "ease", "mf", "collabnn"} <= set(models)
    pm.execute_notebook(str(ROOT / "evaluation.ipynb"), str(tmp_path / "evaluation.ipynb"), cwd=str(ROOT),
                        progress_bar=False, kernel_name="python3",
                        parameters={"DATASET": "ml-100k", "SAMPLE": 3000, "SEED": 1, "K": 10,
                                    "DATA_DIR": str(data_dir), "MODEL_DIR": str(model_dir),
                                    "OUTPUT_DIR": str(out_dir)})
    ev = read_metrics(out_dir / "metrics.json")["evaluation"]
    assert ev["models"] == models
    sources = {r["model"]: r["source"] for r in ev["model_sources"]}
    assert sources["popular"].startswith("loaded") and sources["ease"] == "trained here"
    sampled, full = ev["results"]["sampled"], ev["results"]["full"]
    for name in models:
        for metric in ("hr@10", "ndcg@10"):
            cell = sampled[name][metric]
            # a real interval (BCa, never clamped: it need not contain the point), ordered, inside [0, 1]
            assert 0 <= cell["ci_low"] < cell["ci_high"] <= 1 and cell["ci_high"] - cell["ci_low"] < 0.5
    # measured with SEED 1, SAMPLE 3000 (25 users, 604 held-out rows, 75 of them on items unknown to train,
    # counted as misses): sampled HR@10 popular 0.293 [0.253, 0.344], ease 0.366 [0.324, 0.423]; bias RMSE 0.976
    assert 0.25 < sampled["popular"]["hr@10"]["value"] < 0.34
    assert 0.32 < sampled["ease"]["hr@10"]["value"] < 0.42
    assert sampled["ease"]["hr@10"]["value"] > sampled["popular"]["hr@10"]["value"]
    assert full["ease"]["coverage@10"]["value"] > full["popular"]["coverage@10"]["value"]
    rating = ev["results"]["rating"]
    assert set(rating) == {"bias", "mf_rating", "collabnn_rating"} and 0.9 < rating["bias"]["rmse"]["value"] < 1.06
    for name in ("mf_rating", "collabnn_rating"):  # 1-epoch-scale models on 25 users: a sane RMSE, not a tuned one
        assert 0.7 < rating[name]["rmse"]["value"] < 1.4
    assert len(ev["over_k"]["full"]["ease"]["hr"]) == 20
    assert set(ev["by_activity"]["full"]) == {"cold", "medium", "heavy"}
    # warm users (all of them: ml-100k users keep a training history) and the held-out items unknown to training
    assert set(ev["by_slice"]["full"]) == {"warm users"} and "cold items" in ev["by_slice"]["cold items"]
    assert ev["by_slice"]["cold items"]["cold items"]["popular"]["ndcg@10"]["value"] == 0  # cannot rank unseen items
    assert set(ev["by_gender"]["full"]) <= {"F", "M"} and ev["by_gender"]["full"]
    assert any(p["model_a"] == "popular" and p["model_b"] == "ease" for p in ev["paired"])
    for name in FIGURES:
        png = out_dir / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_evaluation_notebook_is_thin_and_parameterised():
    nb = json.loads((ROOT / "evaluation.ipynb").read_text())
    assert nb["metadata"]["kernelspec"] == {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                            "language": "python"}
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown" and "".join(first["source"]).startswith("# ")
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    names = []
    source = "".join(tagged[0]["source"])
    lines = source.splitlines()
    for node in ast.parse(source).body:  # one assignment per parameter; a long list may wrap over lines
        statement = lines[node.lineno - 1:node.end_lineno]
        name = node.targets[0].id
        assert name.isupper() and "#" in statement[-1], f"parameter without UPPER_CASE name or comment: {statement}"
        names.append(name)
    for line in lines:
        if "#" in line:
            assert "=" not in line.split("#", 1)[1], f"papermill cannot parse '=' in a parameter comment: {line}"
    assert names == PARAMETERS
    declared = declared_parameters(ROOT / "evaluation.ipynb")
    assert declared == PARAMETER_DEFAULTS, "the notebook's defaults differ from helpers.notebooks.evaluation.PARAMETER_DEFAULTS"
    assert not any(line.lstrip().startswith(("def ", "class ")) for c in code for line in "".join(c["source"]).splitlines())
    assert "record_metrics(\"evaluation\"" in "".join("".join(c["source"]) for c in code)
