"""training.ipynb through papermill with 1 epoch on a small sample, into temporary folders; and its shape
(thin, one tagged parameters cell, kernelspec)."""
import json

import nbformat
import numpy as np
import pandas as pd
import papermill as pm

from helpers.files import ROOT
from helpers.models import load_model
from helpers.notebooks.records import read_metrics

NOTEBOOK = ROOT / "training.ipynb"
PARAMETERS = ["DATASET", "SPLIT", "MODEL", "TASK", "EPOCHS", "LR", "WD", "EMB_SIZE", "LAYERS", "LOSS", "SEED", "DEVICE",
              "SAMPLE", "OUTPUT_DIR", "DATA_DIR", "MODEL_DIR"]


def test_notebook_is_thin_with_one_parameters_cell():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.metadata["kernelspec"] == {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [2]  # markdown title, imports, parameters
    lines = [ln for ln in nb.cells[2].source.splitlines() if ln.strip()]
    assert [ln.split("=")[0].strip() for ln in lines] == PARAMETERS
    assert all("#" in ln for ln in lines)  # every value commented with its options
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert "def " not in cell.source and "class " not in cell.source


def test_training_notebook_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel inherits it: tiny models, small shared CPU
    data_dir, model_dir, out_dir = tmp_path / "data", tmp_path / "model", tmp_path / "reports"
    pm.execute_notebook(str(NOTEBOOK), str(tmp_path / "training.ipynb"), cwd=str(ROOT), progress_bar=False,
                        kernel_name="python3",
                        parameters={"SAMPLE": 3000, "EPOCHS": 1, "SEED": 0, "DATA_DIR": str(data_dir),
                                    "MODEL_DIR": str(model_dir), "OUTPUT_DIR": str(out_dir)})
    m = read_metrics(out_dir / "metrics.json")["training"]
    assert (m["dataset"], m["split"], m["seed"], m["model"], m["task"], m["epochs"]) == \
        ("ml-100k", "random", 0, "collabnn", "implicit", 1)
    s = m["split_summary"]
    assert 2500 <= s["train_rows"] + s["evaluation_rows"] <= 3500 and 0.15 < s["evaluation_share"] < 0.25
    assert s["evaluation_users_in_train"] == s["evaluation_users"]
    assert (data_dir / "train.csv").exists() and (data_dir / "evaluation.csv").exists()
    # the default objective on this sample: multinomial over the catalogue, ln(n_items) for the uniform start
    assert m["config"]["loss"] == "multinomial" and m["config"]["epochs"] == 1
    n_items = pd.read_csv(data_dir / "train.csv", dtype=str)["item_id"].nunique()
    assert len(m["losses"]["train_loss"]) == 1 and 0 < m["final_train_loss"] < np.log(n_items) + 0.1
    assert np.isfinite(m["final_valid_loss"])
    assert 0 <= m["evaluation"]["hr@10"] <= 1 and m["evaluation"]["n_negatives"] == 99
    assert m["n_parameters"] > 10_000 and 1e-7 < m["lr_find_valley"] < 10
    for fig in ("training_lr_find.png", "training_losses.png"):
        assert (out_dir / "figures" / fig).stat().st_size > 5_000
    model = load_model(model_dir / "collabnn.pth")
    assert model.metadata["dataset"] == "ml-100k" and model.metadata["split"] == "random"
    # ml-100k users have >= 20 ratings: the random split holds out about 20% (>= 4) of each and keeps the rest
    # in train, so every sampled user is in both parts and the model knows exactly the evaluation users
    assert model.n_users == s["evaluation_users"]
    json.dumps(m)  # plain JSON values only
