"""The landing page and the README's results block, from hand-made metrics: tables with intervals and the best in
bold, rating models kept out of the ranking table, the default's paired differences signed from its side, links
to every notebook and figure, atomic writes, and the README block replaced only between its markers."""
from pathlib import Path

import pytest

from helpers.notebooks.landing import (
    RESULTS_END,
    RESULTS_START,
    figures_by_notebook,
    headline_tables,
    landing_markdown,
    paired_table,
    readme_with_results,
    run_record,
    write_landing_pages,
)

RECORD = {"commit": "abc1234", "clean": True, "date": "2026-12-02 12:00 UTC", "machine": "Linux, 2 CPU cores, no GPU",
          "threads": 2, "python": "3.11", "torch": "2.14.1", "load_average": [0.1, 0.1, 0.1]}


def entry(value, low=None, high=None):
    return {"value": value, "ci_low": low, "ci_high": high}


METRICS = {
    "split": {"dataset": "toy", "split": "random", "seed": 0, "train_rows": 8000, "evaluation_rows": 2000,
              "evaluation_users": 100, "evaluation_users_cold": 0},
    "evaluation": {
        "models": ["popular", "ease", "collabnn", "mf_rating"],
        "config": {"n_negatives": 99, "n_boot": 1000},
        "results": {
            "sampled": {"popular": {"hr@10": entry(0.5, 0.49, 0.51), "ndcg@10": entry(0.3, 0.29, 0.31)},
                        "ease": {"hr@10": entry(0.74, 0.73, 0.75), "ndcg@10": entry(0.49, 0.48, 0.50)},
                        "collabnn": {"hr@10": entry(0.76, 0.75, 0.77), "ndcg@10": entry(0.51, 0.50, 0.52)},
                        "mf_rating": {"hr@10": entry(0.2, 0.1, 0.3), "ndcg@10": entry(0.1, 0.05, 0.15)}},
            "full": {"popular": {"hr@10": entry(0.77, 0.75, 0.79), "coverage@10": entry(0.03)},
                     "ease": {"hr@10": entry(0.93, 0.92, 0.94), "coverage@10": entry(0.2)},
                     "collabnn": {"hr@10": entry(0.92, 0.91, 0.93), "coverage@10": entry(0.25)}},
            "rating": {"mf_rating": {"rmse": entry(0.9, 0.88, 0.92)}}},
        "paired": [{"metric": "ndcg", "protocol": "sampled", "model_a": "ease", "model_b": "collabnn",
                    "diff": -0.02, "ci_low": -0.03, "ci_high": -0.01},
                   {"metric": "ndcg", "protocol": "full", "model_a": "collabnn", "model_b": "popular",
                    "diff": 0.2, "ci_low": 0.19, "ci_high": 0.21},
                   {"metric": "hr", "protocol": "full", "model_a": "collabnn", "model_b": "popular",
                    "diff": 0.1, "ci_low": 0.09, "ci_high": 0.11}]},
    "pipeline": {"dataset": "toy", "notebooks": [{"notebook": "EDA.ipynb", "status": "ok", "seconds": 3.0},
                                                 {"notebook": "evaluation.ipynb", "status": "ok", "seconds": 9.0}]},
    "reranking": {"conclusion": "- Base list: **collabnn**, NDCG@10 0.51."},
}


def test_headline_tables():
    ranking, rating = headline_tables(METRICS)
    assert list(ranking.index) == ["popular", "ease", "collabnn (default)"]  # the rating model is not ranked here
    assert ranking.loc["collabnn (default)", "sampled HR@10"] == "**0.760** [0.750, 0.770]"
    assert ranking.loc["ease", "full HR@10"] == "**0.930** [0.920, 0.940]"
    assert ranking.loc["popular", "full coverage@10"] == "0.030"  # no interval recorded: none shown
    assert ranking.loc["popular", "full NDCG@10"] == ""
    assert rating.loc["mf_rating", "RMSE"] == "**0.900** [0.880, 0.920]"


def test_paired_table_signs_from_the_default():
    table = paired_table(METRICS)
    assert table.loc["ease", "sampled NDCG@10"] == "+0.020 [+0.010, +0.030]"  # ease - collabnn flipped
    assert table.loc["popular", "full NDCG@10"] == "+0.200 [+0.190, +0.210]"
    assert "hr" not in " ".join(table.columns).lower().replace("ndcg", "")


def test_markdown_links_every_notebook_and_figure(tmp_path):
    (tmp_path / "figures").mkdir()
    for name in ("evaluation_full", "long_tail", "embedding_map_mf", "odd"):
        (tmp_path / "figures" / f"{name}.png").write_bytes(b"png")
    metrics = {**METRICS, "eda": {"figures": {"long_tail": str(tmp_path / "figures" / "long_tail.png")}}}
    assert figures_by_notebook(metrics, tmp_path) == {"EDA": ["long_tail"], "evaluation": ["evaluation_full"],
                                                      "explore": ["embedding_map_mf"], "other": ["odd"]}
    page = landing_markdown(metrics, RECORD, tmp_path, html_links=True)
    assert "(EDA.html)" in page and "(evaluation.html)" in page and "(metrics.json)" in page
    assert "figures/long_tail.png" in page and "figures/odd.png" in page
    assert "commit `abc1234`," in page and "uncommitted" not in page
    assert "Base list: **collabnn**" in page
    github = landing_markdown(metrics, {**RECORD, "clean": False}, tmp_path, html_links=False)
    assert "(EDA.ipynb)" in github and "with uncommitted changes" in github


def test_write_landing_pages(tmp_path):
    index, readme = write_landing_pages(tmp_path, Path("."), METRICS, RECORD)
    html = index.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html and 'href="evaluation.html"' in html
    assert "<strong>0.760</strong>" in html
    assert readme.read_text().startswith("# Results — toy")
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))


def test_readme_block_replaced_between_markers_only():
    text = f"intro\n{RESULTS_START}\nold table\n{RESULTS_END}\nrest\n"
    out = readme_with_results(text, METRICS, RECORD)
    assert out.startswith("intro\n" + RESULTS_START) and out.endswith(RESULTS_END + "\nrest\n")
    assert "old table" not in out and "| collabnn (default) |" in out and "reports/index.html" in out
    assert readme_with_results(out, METRICS, RECORD) == out  # idempotent
    assert readme_with_results("no markers", METRICS, RECORD) == "no markers"


def test_run_record_names_the_commit(tmp_path):
    record = run_record(Path(__file__).resolve().parents[2])
    assert set(RECORD) <= set(record)
    outside = run_record(tmp_path)
    assert outside["commit"].startswith("unknown") and outside["clean"] is False


@pytest.mark.parametrize("missing", ["evaluation", "split", "pipeline", "reranking"])
def test_partial_metrics_still_give_a_page(tmp_path, missing):
    metrics = {k: v for k, v in METRICS.items() if k != missing}
    assert landing_markdown(metrics, RECORD, tmp_path, html_links=True).startswith("# Results")
