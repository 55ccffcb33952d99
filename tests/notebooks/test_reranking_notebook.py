"""reranking.ipynb through papermill on a small sample (the same notebook, smaller parameters), plus
the experiment helpers it relies on: the model check and the generated conclusion."""
import ast
import json

import numpy as np
import pandas as pd
import papermill as pm
import pytest

from helpers import rerank
from helpers.files import ROOT
from helpers.notebooks.inputs import notebook_split
from helpers.notebooks.models import item_embeddings, load_or_train
from helpers.notebooks.reranking import check_rerankers, conclusion_text, example_lists, history_profile
from helpers.rerank.experiments import exposure_comparison, variant_label
from helpers.training import fit

RERANKERS = [["affinity", 0.5], ["popularity", 0.5], ["popularity", -0.5], ["mmr", 0.5], ["calibration", 0.5],
             ["fairness", 1.0]]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reranking")
    pm.execute_notebook(str(ROOT / "reranking.ipynb"), str(tmp / "reranking.ipynb"), cwd=str(ROOT),
                        progress_bar=False, kernel_name="python3",
                        parameters={"DATASET": "ml-100k", "SAMPLE": 3000, "SEED": 0, "EPOCHS": 1, "N_BOOT": 100,
                                    "BASE_MODEL": "collabnn", "RETRIEVER": "ease", "RERANKERS": RERANKERS,
                                    "SWEEPS": {"mmr": [0, 0.5, 1], "popularity": [-0.5, 0, 0.5]},
                                    "DATA_DIR": str(tmp / "data"), "MODEL_DIR": str(tmp / "model"),
                                    "OUTPUT_DIR": str(tmp / "out")})
    return tmp, json.loads((tmp / "out" / "metrics.json").read_text())["reranking"]


def test_smoke_run_records_every_reranker_over_all_users(smoke):
    tmp, m = smoke
    labels = ["collabnn"] + [variant_label(*v) for v in RERANKERS]
    assert sorted(m["variants"]) == sorted(labels)
    assert 25 <= m["n_users"] <= 45  # SAMPLE=3000 keeps ~33 of ml-100k's 943 users (seed 0)
    for label in labels:
        v = m["variants"][label]
        assert v["n_users"] == m["n_users"]  # every evaluation user is judged, none dropped
        for name in ("hr", "ndcg", "ild", "long_tail_share", "coverage"):
            assert 0 <= v[name] <= 1, (label, name)
        for name in ("hr", "ndcg", "ild", "calibration_kl"):
            assert v[f"{name}_low"] < v[f"{name}_high"], (label, name)  # BCa, never clamped: ordered, not degenerate
    assert "trained here" in m["model_source"]  # MODEL_DIR was empty: the fallback trained collabnn


def test_smoke_run_reranker_effects(smoke):
    _, m = smoke
    v = m["variants"]
    base = v["collabnn"]
    # each re-ranker moves its own target measure the way it claims (large margins on this sample)
    assert v["mmr 0.5"]["ild"] > base["ild"] + 0.05
    assert v["calibration 0.5"]["calibration_kl"] < 0.8 * base["calibration_kl"]
    assert v["affinity 0.5"]["calibration_kl"] < base["calibration_kl"]
    assert v["popularity +0.5"]["avg_popularity"] > base["avg_popularity"]
    assert v["popularity -0.5"]["long_tail_share"] >= base["long_tail_share"]
    assert v["popularity -0.5"]["avg_popularity"] < base["avg_popularity"]
    assert v["fairness 1"]["amplification"] < 0.5 * base["amplification"]
    assert base["ndcg_diff"] is None and v["mmr 0.5"]["ndcg_diff_low"] < v["mmr 0.5"]["ndcg_diff_high"]


def test_smoke_run_two_stage_sweeps_figures_and_conclusion(smoke):
    tmp, m = smoke
    assert len(m["two_stage"]) == 3
    staged = next(v for k, v in m["two_stage"].items() if k.startswith("two-stage"))
    assert staged["retrieve_s"] > 0 and staged["rescore_s"] > 0
    assert set(m["sweeps"]) == {"mmr", "popularity"}
    assert m["sweeps"]["mmr"]["weight"] == [0.0, 0.5, 1.0]
    for name in ("rerank_ndcg_intervals", "tradeoff_diversity", "tradeoff_long_tail", "exposure_gap"):
        png = tmp / "out" / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    # the conclusion is written from the table: its numbers are the recorded ones
    base = m["variants"]["collabnn"]
    assert f"NDCG@10 {base['ndcg']:.3f}" in m["conclusion"]
    for label in m["variants"]:
        assert f"**{label}**" in m["conclusion"]
    executed = json.loads((tmp / "reranking.ipynb").read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


def test_notebook_is_thin_and_parameterised():
    nb = json.loads((ROOT / "reranking.ipynb").read_text())
    assert nb["metadata"]["kernelspec"] == {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                            "language": "python"}
    assert nb["cells"][0]["cell_type"] == "markdown" and "".join(nb["cells"][0]["source"]).startswith("# ")
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1 and code.index(tagged[0]) == 1  # right after the imports
    names = []
    source = "".join(tagged[0]["source"])
    lines = source.splitlines()
    for st in ast.parse(source).body:  # a long value or comment may wrap onto further lines
        name, first, last = st.targets[0].id, lines[st.lineno - 1], lines[st.end_lineno - 1]
        names.append(name)
        assert name.isupper() and "#" in last, f"parameter without UPPER_CASE name or comment: {first}"
        assert first.count("=") == 1, f"papermill cannot parse a parameter line with two '=': {first}"
        assert all("=" not in ln for ln in lines[st.lineno:st.end_lineno]), f"'=' in a continuation of {name}"
    assert max(map(len, lines)) <= 110  # no line overflows the code cell of the rendered HTML
    for required in ("DATASET", "SPLIT", "BASE_MODEL", "RETRIEVER", "N_CANDIDATES", "K", "RERANKERS", "SEED",
                     "SAMPLE", "DATA_DIR", "MODEL_DIR", "OUTPUT_DIR"):
        assert required in names
    assert not any(line.lstrip().startswith(("def ", "class ")) for c in code for line in "".join(c["source"]).splitlines())


def test_bad_reranker_parameters_are_rejected_with_the_allowed_names():
    assert check_rerankers([["mmr", 0.5], "('popularity', -1)"], {}) == [("mmr", 0.5), ("popularity", -1.0)]
    with pytest.raises(ValueError, match="choose one of"):
        check_rerankers([("diversify", 0.5)], {})
    with pytest.raises(ValueError, match=r"\[0.0, 1.0\]"):
        check_rerankers([], {"mmr": [0, 2]})
    with pytest.raises(ValueError, match="unknown model 'deepfm'; choose from"):
        load_or_train(["deepfm"], pd.DataFrame({"user_id": ["u"], "item_id": ["i"]}), model_dir="nowhere")


def test_a_model_from_another_split_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 20, 300)],
                       "item_id": [f"i{i}" for i in rng.integers(0, 30, 300)]}).drop_duplicates()
    train, other = df.iloc[:200], df.iloc[50:250]
    from helpers.models import EASE

    EASE(lambda_=10.0).fit(train).save(tmp_path / "ease_implicit.pth")
    models, sources = load_or_train(["ease"], train, model_dir=tmp_path, log=None)
    assert sources["source"].iloc[0].startswith("loaded") and models["ease"].n_items > 0
    with pytest.raises(ValueError, match="trained on other data"):
        load_or_train(["ease"], other, model_dir=tmp_path, log=None)


def test_conclusion_follows_the_table():
    def row(variant, method, weight, ndcg, diff, lo, hi, **kw):
        base = dict(hr=0.5, ndcg=ndcg, ild=0.7, long_tail_share=0.1, calibration_kl=0.8, amplification=0.02,
                    avg_popularity=100.0, coverage=0.1, hr_diff=0.0, hr_diff_low=-0.01, hr_diff_high=0.01,
                    ndcg_diff=diff, ndcg_diff_low=lo, ndcg_diff_high=hi)
        return {"variant": variant, "method": method, "weight": weight, **base, **kw}

    table = pd.DataFrame([row("base", "none", 0.0, 0.30, np.nan, np.nan, np.nan),
                          row("mmr 0.5", "mmr", 0.5, 0.25, -0.05, -0.07, -0.03, ild=0.9),
                          row("calibration 0.5", "calibration", 0.5, 0.31, 0.01, -0.01, 0.03, calibration_kl=0.4)])
    text = conclusion_text(table, "base", 10)
    assert "**mmr 0.5** raises intra-list diversity from 0.7 to 0.9 (+29%)" in text
    assert "-0.050 ([-0.070, -0.030], significant)" in text
    assert "**calibration 0.5** lowers calibration KL from 0.8 to 0.4 (-50%)" in text
    assert ("**mmr 0.5** lowers NDCG@10 significantly; **calibration 0.5** leaves NDCG@10 within noise; "
            "no re-ranker raises NDCG@10 significantly.") in text


def test_exposure_comparison_and_example_tables():
    items = pd.DataFrame({"item_id": list("abcd"), "item_category": ["A", "B", "A|B", "B"],
                          "item_title": ["Alpha", "Beta", "Gamma", "Delta"]})
    train = pd.DataFrame({"user_id": ["f", "f", "m", "m"], "item_id": ["a", "b", "a", "b"],
                          "user_gender": ["F", "F", "M", "M"]})
    ctx = rerank.build_context(train, items=items)
    lists = pd.DataFrame({"user_id": ["f", "f", "m", "m"], "item_id": ["c", "d", "d", "c"],
                          "score": [2.0, 1.0, 2.0, 1.0], "rank": [1, 2, 1, 2]})
    wide = exposure_comparison({"base": lists}, ctx, k=2)
    assert set(wide.columns) == {"history", "exposure: base", "gap: base"}
    assert wide.loc[("F", "A"), "history"] == pytest.approx(0.5)
    ex = example_lists({"base": lists}, ctx, pd.DataFrame({"user_id": ["f"], "item_id": ["d"]}), "f", k=2)
    assert ex["base"].tolist() == ["Gamma [A|B]", "* Delta [B]"]
    assert history_profile(ctx, "f").to_dict() == {"A": 0.5, "B": 0.5}


def test_item_embeddings_of_a_neural_model_feed_embedding_mmr():
    from helpers.models import MostPopular, make_model

    train = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u3"], "item_id": ["a", "b", "b", "c"],
                          "item_category": ["A", "B", "B", "C"]})
    model = fit(make_model("collabnn", epochs=0, emb_size=8), train)  # built, not trained: enough for shapes
    emb = item_embeddings(model)
    assert list(emb.index) == ["a", "b", "c"] and emb.shape == (3, 128)   # the default: GMF factors, no MLP
    mlp = fit(make_model("collabnn", epochs=0, emb_size=8, layers=[4]), train)
    assert item_embeddings(mlp).shape == (3, 8)                         # with an MLP branch: its item table
    assert item_embeddings(MostPopular().fit(train)) is None
    ctx = rerank.build_context(train, embeddings=emb)
    cand = pd.DataFrame({"user_id": "u2", "item_id": ["a", "c", "b"], "score": [3.0, 2.0, 1.0]})
    out = rerank.rerank_mmr(cand, ctx, 0.5, similarity="embedding")
    assert sorted(out["item_id"]) == ["a", "b", "c"] and out["item_id"].iloc[0] == "a"


def test_an_existing_split_is_used_as_written(tmp_path):
    """The pipeline and training.ipynb write DATA_DIR/train.csv from the same SAMPLE; the models were
    fitted on exactly those rows, so the notebook must not sample them again."""
    from helpers.data.split import write_split

    train = pd.DataFrame({"user_id": [f"u{j % 7}" for j in range(40)], "item_id": [f"i{j}" for j in range(40)]})
    evaluation = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["i90", "i91"]})
    write_split(train, evaluation, tmp_path)
    got_train, got_eval, source = notebook_split(tmp_path, "ml-100k", sample=10)
    assert len(got_train) == 40 and len(got_eval) == 2 and source.startswith("read")
