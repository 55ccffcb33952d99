"""training.ipynb through papermill with 1 epoch on a small sample, into temporary folders; and its shape
(thin, one tagged parameters cell, kernelspec)."""
import ast
import json

import nbformat
import numpy as np
import pandas as pd
import papermill as pm

from helpers.files import ROOT
from helpers.models import load_model
from helpers.notebooks.records import read_metrics

NOTEBOOK = ROOT / "training.ipynb"
PARAMETERS = ["DATASET", "SPLIT", "MODEL", "TASK", "EPOCHS", "PATIENCE", "TUNE", "LR", "WD", "EMB_SIZE", "LAYERS", "LOSS",
              "SEED", "DEVICE", "SAMPLE", "OTHER_MODELS", "OUTPUT_DIR", "DATA_DIR", "MODEL_DIR"]


def test_notebook_is_thin_with_one_parameters_cell():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.metadata["kernelspec"] == {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [2]  # markdown title, imports, parameters
    lines = nb.cells[2].source.splitlines()
    statements = ast.parse(nb.cells[2].source).body  # a long value or comment may wrap onto further lines
    assert [st.targets[0].id for st in statements] == PARAMETERS
    assert all("#" in lines[st.end_lineno - 1] for st in statements)  # every value commented with its options
    assert max(map(len, lines)) <= 110  # no line overflows the code cell of the rendered HTML
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert "def " not in cell.source and "class " not in cell.source


def _run(tmp_path, monkeypatch, **parameters):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel inherits it: tiny models, small shared CPU
    data_dir, model_dir, out_dir = tmp_path / "data", tmp_path / "model", tmp_path / "reports"
    pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "training.ipynb"), cwd=str(ROOT), progress_bar=False,
                        kernel_name="python3",
                        parameters={"SAMPLE": 3000, "SEED": 0, "DATA_DIR": str(data_dir), "OTHER_MODELS": [],
                                    "MODEL_DIR": str(model_dir), "OUTPUT_DIR": str(out_dir), **parameters})
    return read_metrics(out_dir / "metrics.json")["training"], data_dir, model_dir, out_dir


def test_training_notebook_smoke(tmp_path, monkeypatch):
    m, data_dir, model_dir, out_dir = _run(tmp_path, monkeypatch, EPOCHS=3, PATIENCE=1,
                                           OTHER_MODELS=["popular", "collabnn_factor"])
    assert (m["dataset"], m["split"], m["seed"], m["model"], m["task"], m["max_epochs"]) == \
        ("ml-100k", "random", 0, "collabnn", "implicit", 3)
    s = m["split_summary"]
    assert 2500 <= s["train_rows"] + s["evaluation_rows"] <= 3500 and 0.15 < s["evaluation_share"] < 0.25
    assert s["evaluation_users_in_train"] == s["evaluation_users"]
    assert s["fit_rows"] + s["validation_rows"] == s["train_rows"]  # validation carved out of train, not evaluation
    assert (data_dir / "train.csv").exists() and (data_dir / "evaluation.csv").exists()
    # the epoch was chosen on validation NDCG@10, then the model refitted on all of train for that many epochs
    v = m["validation"]
    assert v["monitor"] == "ndcg_at_10" and v["rule"] == "random" and 0 < v["best_value"] <= 1
    assert m["epochs"] == v["best_epoch"] == int(np.argmax(m["validation_curve"])) + 1
    assert v["epochs_run"] == len(m["validation_curve"]) <= 3
    assert (v["fit_rows"], v["validation_rows"]) == (s["fit_rows"], s["validation_rows"])
    # the default objective on this sample: multinomial over the catalogue, ln(n_items) for the uniform start
    assert m["config"]["loss"] == "multinomial" and m["config"]["epochs"] == 3
    n_items = pd.read_csv(data_dir / "train.csv", dtype=str)["item_id"].nunique()
    assert len(m["losses"]["train_loss"]) == m["epochs"] and 0 < m["final_train_loss"] < np.log(n_items) + 0.1
    assert 0 <= m["evaluation"]["hr@10"] <= 1 and m["evaluation"]["n_negatives"] == 99
    assert m["n_parameters"] > 10_000 and 1e-7 < m["lr_find_valley"] < 10 and m["tuning"] is None
    for fig in ("training_lr_find.png", "training_selection.png"):
        assert (out_dir / "figures" / fig).stat().st_size > 5_000
    model = load_model(model_dir / "collabnn_implicit.pth")
    assert model.metadata["dataset"] == "ml-100k" and model.metadata["split"] == "random"
    assert model.metadata["selection"]["best_epoch"] == m["epochs"]
    # ml-100k users have >= 20 ratings: the random split keeps every sampled user in both parts
    assert model.n_users == s["evaluation_users"]
    json.dumps(m)  # plain JSON values only
    # the other models the evaluation compares: trained once here, on this split, and saved for the other notebooks
    saved = read_metrics(out_dir / "metrics.json")["trained_models"]
    assert [r["model"] for r in saved["models"]] == ["popular", "collabnn_factor"] and saved["split"] == "random"
    other = load_model(model_dir / "collabnn_factor_implicit.pth")
    assert other.metadata["split"] == "random" and other.metadata["selection"]["rule"] == "random"
    assert model.n_users == other.n_users and load_model(model_dir / "popular_implicit.pth").n_items == model.n_items


def test_training_notebook_tunes_on_validation(tmp_path, monkeypatch):
    m, _, model_dir, out_dir = _run(tmp_path, monkeypatch, EPOCHS=2, TUNE="15s", SPLIT="leave_one_out")
    t = m["tuning"]
    assert t["n_trials"] >= 1 and t["monitor"] == "validation ndcg_at_10" and t["validation_rule"] == "leave_one_out"
    assert m["epochs"] == t["best_epoch"] and m["validation"] == {}  # chosen by the tuner, not by a second selection
    model = load_model(model_dir / "collabnn_implicit.pth")
    assert model.metadata["tuning"]["best_params"] == t["best_params"]
    assert all(model.config[k] == v for k, v in t["best_params"].items())
    assert (out_dir / "figures" / "training_selection.png").stat().st_size > 5_000
