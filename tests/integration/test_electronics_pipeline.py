"""The whole papermill pipeline on a small file in the exact df_electronics.csv format (no download): the global
80:20 split, cold users and items, the marketing-bias tables and the amplification of each model's lists."""
import json

import pandas as pd
import pytest

from helpers.data.electronics_file import write_electronics_file
from helpers.pipeline import dataset_parameters, run_pipeline

pytestmark = pytest.mark.slow


def test_pipeline_on_the_electronics_format(tmp_path):
    raw = write_electronics_file(tmp_path / "raw" / "df_electronics.csv", scale=0.005, seed=3)
    out, data, models = tmp_path / "reports", tmp_path / "data", tmp_path / "model"
    params = {"EPOCHS": 1, "N_BOOT": 100, "SWEEPS": {}, "RERANKERS": [["fairness", 1.0], ["popularity", 0.5]],
              "TOP_CATEGORIES": 5}
    results = run_pipeline(f"electronics:{raw}", output_dir=out, data_dir=data, model_dir=models,
                           parameters=params, log=lambda *a: None)
    assert [r["status"] for r in results] == ["ok"] * 5
    metrics = json.loads((out / "metrics.json").read_text())
    # the explorer shows the saved models (none trained there) with their reasons
    explore = metrics["explore"]
    assert explore["models"] == dataset_parameters("electronics")["EXPLORE_MODELS"]
    assert explore["reasons"]["collabnn"] == "exact" and explore["reasons"]["ease"] == "exact"
    assert max(explore["decomposition_error"].values()) < 1e-3
    assert all(s.startswith("loaded") for s in explore["model_sources"].values()), explore["model_sources"]
    split = metrics["split"]
    assert split["split"] == "global" and split["evaluation_share"] == pytest.approx(0.2, abs=0.001)
    assert split["evaluation_users_cold"] > 0.5 * split["evaluation_users"]
    # the models the evaluation compares were trained once, by training.ipynb, and loaded
    saved = {r["model"] for r in metrics["trained_models"]["models"]}
    assert saved == set(dataset_parameters("electronics")["OTHER_MODELS"])
    sources = {r["model"]: r["source"] for r in metrics["evaluation"]["model_sources"]}
    assert all(s.startswith("loaded") for s in sources.values()), sources
    slices = metrics["evaluation"]["by_slice"]["full"]
    assert {"warm users", "cold users"} <= set(slices)
    assert {"popular", "popular_segment", "collabnn", "collabnn_features"} <= set(slices["cold users"])
    # marketing bias: the study's table in the EDA, the amplification of the recommendations in the evaluation
    bias = metrics["eda"]["market_bias"]
    assert bias["chi2_test"]["p_value"] < 0.05
    amp = pd.DataFrame(metrics["evaluation"]["amplification"])
    assert set(amp["segment"]) == {"Female", "Female&Male", "Male"} and (amp["recommended_share"] >= 0).all()
    assert (out / "figures" / "evaluation_amplification.png").stat().st_size > 10_000
    train = pd.read_csv(data / "train.csv", dtype=str)
    assert {"model_attr", "user_gender", "brand"} <= set(train.columns)
