"""The papermill pipeline: split written, notebooks executed and rendered, failures named, bad parameters rejected."""
import json

import nbformat
import pandas as pd
import pytest

from helpers.files import ROOT
from helpers.pipeline import PipelineError, declared_parameters, is_placeholder, run_pipeline


def test_pipeline_runs_eda_writes_split_html_and_metrics(tmp_path):
    out, data = tmp_path / "reports", tmp_path / "data"
    results = run_pipeline("ml-100k", sample=3000, seed=2, output_dir=out, data_dir=data,
                           notebooks=["EDA.ipynb"], log=lambda *a: None)
    assert [r["status"] for r in results] == ["ok"]
    train = pd.read_csv(data / "train.csv", dtype=str)
    ev = pd.read_csv(data / "evaluation.csv", dtype=str)
    assert 0.19 <= len(ev) / (len(train) + len(ev)) <= 0.21
    assert set(ev["user_id"]) <= set(train["user_id"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"]["dataset"] == "ml-100k" and metrics["split"]["seed"] == 2
    assert metrics["split"]["train_rows"] == len(train)
    assert "eda" in metrics and metrics["pipeline"]["notebooks"][0]["notebook"] == "EDA.ipynb"
    html = (out / "EDA.html").read_text()
    assert "<html" in html and "data:image/png;base64" in html
    # the landing pages link the notebook that ran and its figures; the repository's README is not touched
    landing = (out / "index.html").read_text()
    assert 'href="EDA.html"' in landing and "figures/long_tail.png" in landing
    assert "(EDA.ipynb)" in (out / "README.md").read_text()
    assert metrics["pipeline"]["run"]["commit"] and "load_average" in metrics["pipeline"]["run"]

    # what EDA.ipynb itself records (the pipeline's run is the tests' one run of it)
    eda = metrics["eda"]
    p = eda["profile"]
    assert p["interactions"] == len(train) + len(ev) and 3000 <= p["interactions"] < 4000 and p["users"] < 943
    assert abs(p["density"] - p["interactions"] / (p["users"] * p["items"])) < 1e-12
    assert set(eda["by_gender"]) <= {"female", "male"}
    assert sum(v["interactions"] for v in eda["by_gender"].values()) == p["interactions"]
    for name in ["interactions_by_gender", "top_categories", "rating_by_gender_category", "ratings_over_years",
                 "rating_distribution", "long_tail"]:
        png = out / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def _notebook(path, source, placeholder=False):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('DATASET = "ml-100k"  # dataset\nOUTPUT_DIR = "reports"  # out',
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell(source)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                  "placeholder": placeholder})
    nbformat.write(nb, path)
    return path


def test_failing_notebook_is_named_with_its_cell_and_leaves_the_earlier_output(tmp_path):
    bad = _notebook(tmp_path / "broken.ipynb", "raise ValueError('column rating missing')")
    earlier = tmp_path / "r" / "broken.ipynb"
    earlier.parent.mkdir()
    earlier.write_text("the output of an earlier, successful run")
    with pytest.raises(PipelineError) as err:
        run_pipeline("ml-100k", sample=2000, output_dir=tmp_path / "r", data_dir=tmp_path / "d",
                     notebooks=[str(bad)], log=lambda *a: None)
    msg = str(err.value)
    assert msg.startswith("broken.ipynb failed in cell") and "ValueError: column rating missing" in msg
    failed = tmp_path / "r" / "broken.failed.ipynb"
    assert msg.endswith(f"the executed notebook is {failed}") and "column rating missing" in failed.read_text()
    assert earlier.read_text() == "the output of an earlier, successful run"
    assert not list((tmp_path / "r").glob(".*running*"))


def test_placeholder_is_skipped_visibly(tmp_path):
    ph = _notebook(tmp_path / "later.ipynb", "raise RuntimeError('must not run')", placeholder=True)
    lines = []
    results = run_pipeline("ml-100k", sample=2000, output_dir=tmp_path / "r", data_dir=tmp_path / "d",
                           notebooks=[str(ph)], log=lines.append)
    assert is_placeholder(ph) and results[0]["status"] == "skipped (placeholder)"
    assert any(line.startswith("SKIPPED later.ipynb") for line in lines)
    assert not (tmp_path / "r" / "later.ipynb").exists()


def test_unknown_parameter_rejected_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match=r"\['EPOCHZ'\] are declared by none of the notebooks"):
        run_pipeline("ml-100k", output_dir=tmp_path / "r", data_dir=tmp_path / "d", notebooks=["EDA.ipynb"],
                     parameters={"EPOCHZ": 3})
    assert not (tmp_path / "r").exists() and not (tmp_path / "d").exists()


def test_declared_parameters_reads_the_parameters_cell():
    params = declared_parameters(ROOT / "EDA.ipynb")
    assert params["DATASET"] == "ml-100k" and params["SAMPLE"] == 0 and "OUTPUT_DIR" in params


def test_a_run_that_fails_before_any_output_leaves_no_folder(tmp_path):
    with pytest.raises(ValueError, match="file not found"):
        run_pipeline(f"csv:{tmp_path / 'missing.csv'}", output_dir=tmp_path / "r", data_dir=tmp_path / "d",
                     model_dir=tmp_path / "m", notebooks=["EDA.ipynb"], log=lambda *a: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_only_run_keeps_the_other_notebooks_on_the_landing_page(tmp_path):
    out, data = tmp_path / "reports", tmp_path / "data"
    out.mkdir()
    earlier = [{"notebook": n, "status": "ok", "seconds": 1.0} for n in ("training.ipynb", "EDA.ipynb")]
    (out / "metrics.json").write_text(json.dumps({"pipeline": {"dataset": "ml-100k", "seed": 2, "sample": 3000,
                                                               "notebooks": earlier}}))
    run_pipeline("ml-100k", sample=3000, seed=2, output_dir=out, data_dir=data, notebooks=["EDA.ipynb"],
                 log=lambda *a: None)
    listed = json.loads((out / "metrics.json").read_text())["pipeline"]["notebooks"]
    assert [r["notebook"] for r in listed] == ["EDA.ipynb", "training.ipynb"]  # pipeline order, EDA's entry new
    assert listed[0]["seconds"] != 1.0
    assert 'href="training.html"' in (out / "index.html").read_text()
