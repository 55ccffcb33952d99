"""The figures and generated prose of EDA.ipynb, training.ipynb and reranking.ipynb, on hand-made inputs:
labels carry the real K, bars are sorted, axes include the data and its intervals, weight labels never
collide, and every sentence that states a number says what the numbers say."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers.notebooks import reranking as rerank_prose  # noqa: E402
from helpers.plots import rerank as rerank_plots  # noqa: E402


# ------------------------------------------------------------------ reranking.ipynb
def _row(variant, method, weight, ndcg, diff, lo, hi, **kw):
    base = dict(hr=0.5, ndcg=ndcg, ild=0.7, long_tail_share=0.1, calibration_kl=0.8, amplification=0.02,
                avg_popularity=100.0, coverage=0.1, hr_diff=0.0, hr_diff_low=-0.01, hr_diff_high=0.01,
                ndcg_diff=diff, ndcg_diff_low=lo, ndcg_diff_high=hi, ndcg_low=ndcg - 0.02, ndcg_high=ndcg + 0.02,
                seconds=0.1)
    return {"variant": variant, "method": method, "weight": weight, **base, **kw}


def _table():
    return pd.DataFrame([_row("base", "none", 0.0, 0.30, np.nan, np.nan, np.nan),
                         _row("mmr 0.5", "mmr", 0.5, 0.25, -0.05, -0.07, -0.03, ild=0.9),
                         _row("affinity 0.5", "affinity", 0.5, 0.33, 0.03, 0.01, 0.05),
                         _row("calibration 0.5", "calibration", 0.5, 0.31, 0.01, -0.01, 0.03)])


def test_significance_counts_only_the_re_rankers_never_the_base_row():
    text = rerank_prose.significance_sentence(_table(), "base", 10)
    assert "**affinity 0.5** raises NDCG@10 significantly" in text
    assert "**mmr 0.5** lowers NDCG@10 significantly" in text
    assert "**calibration 0.5** leaves NDCG@10 within noise" in text
    assert "base" not in text.split(":", 1)[1] and "none" not in text
    # a base row under another label (no paired interval) is not a variant either
    other = _table().assign(variant=["collabnn", "mmr 0.5", "affinity 0.5", "calibration 0.5"])
    assert "**collabnn**" not in rerank_prose.significance_sentence(other, "base", 10)
    only_down = _table().iloc[[0, 1]]
    assert rerank_prose.significance_sentence(only_down, "base", 5).endswith(
        "**mmr 0.5** lowers NDCG@5 significantly; no re-ranker raises NDCG@5 significantly.")
    assert rerank_prose._significant(_table().iloc[0], "ndcg") == "not compared"


def test_timing_sentence_says_slower_with_the_ratio_as_the_time_taken():
    text = rerank_prose.timing_sentence(0.37, 0.29, "two-stage", "full ranking")
    assert "1.28x the time" in text and "0.08 s slower than full ranking" in text
    assert "0.8x" not in text
    faster = rerank_prose.timing_sentence(0.20, 0.40, "two-stage", "full ranking")
    assert "0.50x the time" in faster and "0.20 s faster" in faster


def test_conclusion_writes_gaps_in_points_and_genders_by_name():
    exposure = pd.DataFrame({"history": [0.3, 0.7], "exposure: base": [0.31, 0.69], "gap: base": [0.008, -0.008]},
                            index=pd.MultiIndex.from_tuples([("F", "Comedy"), ("F", "Drama")],
                                                            names=["group", "category"]))
    text = rerank_prose.conclusion_text(_table(), "base", 10, exposure=exposure)
    assert "female users (F)" in text and "'F'" not in text
    assert "Comedy +0.8 pp" in text and "Drama -0.8 pp" in text
    assert rerank_prose._signed(-0.0003) == "-0.0003" and rerank_prose._signed(0.0) == "0.000"


def test_tradeoff_labels_carry_k_and_never_collide():
    rows = []
    for method, slope in (("mmr", -0.1), ("calibration", -0.12), ("popularity", -0.11), ("fairness", 0.0)):
        for w in (0, 0.25, 0.5, 0.75, 1):
            rows.append({"method": method, "weight": w, "ild": 0.7 + (0.2 * w if slope else 0.0),
                         "ndcg": 0.45 + slope * w})
    sweeps = pd.DataFrame(rows)
    fig = rerank_plots.tradeoff_figure(sweeps, x="ild", y="ndcg", k=10)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "NDCG@10" and fig._suptitle.get_text().startswith("NDCG@10 against")
    assert len(fig.axes) == 2 and fig.axes[1].get_title() == "zoom on the base list"  # 4 points crowd the star
    renderer = fig.canvas.get_renderer()
    for panel in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in panel.texts]
        assert boxes, "no weight label placed"
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    spread = sweeps.assign(ild=sweeps["ild"] * 3, ndcg=sweeps["ndcg"] - 0.5 * sweeps["weight"])
    assert len(rerank_plots.tradeoff_figure(spread, k=10).axes) == 1  # nothing crowds the star: one panel
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "fairness (stays at the base at every weight)" in legend  # the line hidden under the star says so
    star = [line for line in ax.lines if line.get_marker() == "*"][0]
    assert all(line.get_zorder() > star.get_zorder() for line in ax.lines if line is not star)
    plt.close(fig)


def test_interval_figure_sorts_the_re_rankers_and_labels_k():
    fig = rerank_plots.accuracy_interval_figure(_table(), "ndcg", k=10)
    ax, ax_d = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["base", "affinity 0.5", "calibration 0.5", "mmr 0.5"]  # top down: base, then best change first
    assert "NDCG@10" in ax.get_xlabel()
    low, high = ax_d.get_xlim()
    assert low <= -0.07 and high >= 0.05  # every paired interval inside the axis
    plt.close(fig)


def test_exposure_gap_in_points_on_an_axis_that_keeps_small_gaps_small():
    frame = pd.DataFrame({"group": "F", "category": ["A", "B", "C"], "gap": [-0.004, 0.008, 0.002],
                          "exposure": 0.3, "history": 0.3, "n_users": 10})
    fig = rerank_plots.exposure_gap_figure({"base": frame, "fairness 1": frame.assign(gap=0.001)}, "F", k=10)
    ax = fig.axes[0]
    assert ax.get_ylim() == pytest.approx((-5.0, 5.0))  # 0.8 pp on a +-5 pp axis
    assert [t.get_text() for t in ax.get_xticklabels()] == ["B", "C", "A"]  # sorted by the base's gap
    assert "female users (F)" in ax.get_title() and "0.8 pp" in ax.get_title() and "'F'" not in ax.get_title()
    assert "top-10" in ax.get_ylabel()
    big = rerank_plots.exposure_gap_figure({"base": frame.assign(gap=[0.1, -0.2, 0.0])}, "F")
    low, high = big.axes[0].get_ylim()
    assert low <= -20 and high >= 10  # a large gap is never cut
    plt.close("all")


# ------------------------------------------------------------------ EDA.ipynb
from helpers.data import eda  # noqa: E402
from helpers.plots import eda as eda_plots  # noqa: E402


def _ratings(rng=None):
    rng = rng or np.random.default_rng(0)
    n = 600
    users = [f"u{i}" for i in rng.integers(0, 40, n)]
    return pd.DataFrame({"user_id": users, "item_id": [f"i{i}" for i in rng.integers(0, 60, n)],
                         "rating": rng.integers(1, 6, n).astype(float),
                         "user_gender": np.where(rng.random(n) < 0.3, "F", "M"),
                         "item_category": rng.choice(["Drama", "Comedy|Drama", "Action", "Sci-Fi"], n),
                         "year": rng.choice([1931, 1950, 1951, 1990, 1995, 1996, 1997, np.nan], n)})


def test_ratings_by_year_keeps_every_period_and_says_which_are_sparse():
    df = _ratings()
    rows = eda.ratings_by_year(df, max_groups=25, min_count=20)
    counts = rows.attrs["counts"]
    assert rows.attrs["period_years"] == 5 and list(counts)[0] == "1930-1934" and list(counts)[-1] == "1995-1999"
    assert len(counts) == 14 and counts["1935-1939"] == 0  # an empty period keeps its place
    assert sum(counts.values()) + rows.attrs["without_year"] == len(df)  # nothing silently dropped
    assert set(rows.attrs["sparse"]) == {p for p, n in counts.items() if n < 20}
    fig = eda_plots.year_boxplot(rows, "toy")
    ax = fig.axes[0]
    assert ax.get_ylim()[0] >= 0.5 and ax.get_ylim()[1] <= 5.5  # the axis fits the rating scale, not 6
    assert [t.get_text() for t in ax.get_xticklabels()] == list(counts)
    assert ax.get_title().startswith("toy — ratings by year")
    sentence = eda.years_sentence(rows)
    assert f"{rows.attrs['without_year']:,} ratings have no year" in sentence
    plt.close(fig)


def test_gender_sentence_compares_shares_in_points_from_the_table():
    by_gender = pd.DataFrame({"gender": ["male", "female"], "interactions": [74_260, 25_740], "users": [670, 273],
                              "mean_rating": [3.5, 3.5], "interactions_per_user": [110.8, 94.3],
                              "share": [0.7426, 0.2574]})
    text = eda.gender_sentence(by_gender)
    assert "Male users give 74.3% of the interactions (74,260 of 100,000)" in text
    assert "48.5 percentage points more than female users (25.7%)" in text
    assert "2.5 times as many" in text and "(111 against 94)" in text


def test_profile_sentence_uses_thousands_separators():
    df = _ratings()
    p = eda.dataset_profile(df)
    text = eda.profile_sentence({**p, "interactions": 1_234_567}, "toy")
    assert text.startswith("toy: 1,234,567 interactions") and f"{p['density']:.2%}" in text


def test_gender_category_figure_spans_the_intervals_and_sorts_by_the_gap():
    df = _ratings()
    means, gaps = eda.gender_category_means(df, 4), eda.gender_category_gaps(df, 4)
    assert {"gap_low", "gap_high"} <= set(gaps.columns)
    assert (gaps["gap_low"] <= gaps["gap_female_minus_male"]).all()
    fig = eda_plots.gender_category_figure(means, gaps, "toy")
    ax, ax_g = fig.axes
    low, high = ax.get_xlim()
    assert low <= means["ci_low"].min() and high >= means["ci_high"].max() and low > 1  # not forced from 0
    expected = gaps.sort_values("gap_female_minus_male", ascending=False)["item_category"].tolist()
    assert [t.get_text() for t in ax.get_yticklabels()] == expected
    g_low, g_high = ax_g.get_xlim()
    assert g_low <= gaps["gap_low"].min() and g_high >= gaps["gap_high"].max()
    assert "toy — " in fig._suptitle.get_text()
    plt.close(fig)


def test_eda_bars_sorted_with_separated_titles():
    df = _ratings()
    cats = eda.top_categories(df, 4).sample(frac=1, random_state=1)  # shuffled: the figure sorts
    fig = eda_plots.category_bar_figure(cats, "toy")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == eda.top_categories(df, 4)["item_category"].tolist()
    assert ax.get_title() == "toy — most popular categories"
    plt.close(fig)
    fig = eda_plots.rating_distribution_figure(eda.rating_distribution(df), "toy")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1", "2", "3", "4", "5"]
    plt.close(fig)
    assert eda_plots.figure_title("", "long tail") == "long tail"


# ------------------------------------------------------------------ training.ipynb
from helpers.notebooks import training as training_prose  # noqa: E402
from helpers.plots.training import lr_find_figure  # noqa: E402

COLLABNN = {"task": "implicit", "loss": "multinomial", "layers": [], "gmf_size": 128, "emb_size": 64, "history": True,
            "history_dropout": 0.7, "bias": True, "features": False, "item_item": True, "item_item_max_items": 10_000,
            "item_item_weight": 0.4, "item_item_lambda": None, "lr": 0.01, "wd": 0.1, "batch_size": 128,
            "epochs": 50, "neg_ratio": 4}


def test_model_description_is_written_from_the_configuration():
    text = training_prose.model_description("collabnn", COLLABNN, 943, 1_650)
    assert "multinomial likelihood" in text and "all 1,650 items" in text
    assert "MLP" not in text and "binary cross-entropy" not in text and "negatives" not in text
    assert "128 user and item factors" in text and "70%" in text and "0.4 times the factor branch" in text
    assert "1.0e-02" in text and "batches of 128 users" in text and "at most 50 epochs" in text
    mlp = {**COLLABNN, "loss": "bce", "layers": [64], "gmf_size": 64, "item_item": False, "batch_size": 4096}
    text = training_prose.model_description("collabnn_mlp", mlp, 943, 20_000)
    assert "concat-MLP branch" in text and "hidden layers of 64 units" in text
    assert "binary cross-entropy" in text and "4 sampled negatives" in text and "4,096 interactions" in text
    assert "item-item" not in text
    big = training_prose.model_description("collabnn", COLLABNN, 1_000, 50_000)
    assert "the 10,000 most popular of the 50,000 items" in big


def _lr_curve():
    lrs = np.logspace(-7, 0, 100)
    loss = 7.39 - 0.23 * np.exp(-((np.log10(lrs) + 0.5) ** 2) / 0.5)  # flat, falls, lowest near 0.3, turns up
    return pd.DataFrame({"lr": lrs, "loss": loss})


def test_learning_rate_sentence_states_both_rates_and_where_they_sit():
    curve = _lr_curve()
    text = training_prose.learning_rate_sentence(4.8e-4, 1e-2, curve, loss="multinomial", n_items=1_650)
    assert "valley is 4.8e-04" in text and "used is 1.0e-02, 21x the valley" in text
    assert "barely begun to fall" in text and "before the lowest point" in text
    assert "ln(1,650) = 7.41" in text and "warms up from 4.0e-04" in text
    close = training_prose.learning_rate_sentence(1e-2, 1.2e-2, curve)
    assert "close to the valley" in close and "ln(" not in close


def test_lr_find_curve_and_figure_mark_both_rates():
    curve = _lr_curve()
    fig, ax = plt.subplots()
    ax.plot(curve["lr"], curve["loss"])
    ax.plot([4.8e-4], [7.39], "o")
    read = training_prose.lr_find_curve(fig)
    np.testing.assert_allclose(read["lr"], curve["lr"]) and np.testing.assert_allclose(read["loss"], curve["loss"])
    plt.close(fig)
    fig = lr_find_figure(curve, 4.8e-4, 1e-2, title="toy — lr_find")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "valley: 4.8e-04" in legend and "rate used: 1.0e-02" in legend
    assert fig.axes[0].get_xscale() == "log"
    plt.close(fig)


def test_loss_curves_sentence_follows_the_curves():
    sel = {"monitor": "ndcg_at_10", "best_epoch": 3,
           "losses": {"epoch": [1, 2, 3, 4, 5], "train_loss": [7.4, 7.2, 6.6, 6.2, 6.0],
                      "valid_loss": [7.3, 7.0, 6.5, 6.3, 6.2]}}
    text = training_prose.loss_curves_sentence(sel, COLLABNN)
    assert "below the training loss in epochs 1-3 and above it in epochs 4-5" in text
    assert "ends above it (6.200 against 6.000)" in text and "epoch chosen by the validation NDCG@10 is 3" in text
    assert "70% of each user's history hidden" in text  # why it can sit below, only where it does
    above = {**sel, "losses": {**sel["losses"], "valid_loss": [7.5, 7.3, 6.7, 6.3, 6.1]}}
    text = training_prose.loss_curves_sentence(above, COLLABNN)
    assert "above the training loss in every epoch" in text and "hidden" not in text
    assert training_prose.loss_curves_sentence({}, COLLABNN) == ""


def test_results_table_names_the_real_k():
    table = _table()[["variant", "ndcg", "ndcg_low", "ndcg_high", "ndcg_diff", "ndcg_diff_low", "ndcg_diff_high",
                      "coverage", "amplification", "seconds"]]
    out = rerank_prose.results_table(table, k=10)
    assert "NDCG@10" in out.columns and "NDCG@10 vs base" in out.columns and not any("@K" in c for c in out.columns)


def test_model_description_of_mf_names_its_biases():
    cfg = {"task": "rating", "emb_size": 50, "lr": 5e-3, "wd": 0.1, "batch_size": 1024, "epochs": 12}
    text = training_prose.model_description("mf", cfg, 10, 20)
    assert "50-dimensional" in text and "user and item biases" in text and "mean squared error" in text


def test_selection_sentence_separates_the_refit_time_from_choosing_the_epoch():
    from types import SimpleNamespace

    sel = {"epochs_run": 28, "fit_rows": 63_964, "best_epoch": 23, "monitor": "ndcg_at_10", "best_value": 0.2584,
           "validation_rows": 16_013, "rule": "random", "selection_seconds": 42.97}
    model = SimpleNamespace(name="collabnn", task="implicit", metadata={
        "selection": sel, "epochs": 23, "train_rows": 79_977, "train_seconds": 45.31, "refit_seconds": 2.34,
        "seconds_per_epoch": 0.102, "device": "cpu"})
    text = training_prose.selection_sentence(model, {"hr@10": 0.76, "ndcg@10": 0.51, "n_negatives": 99})
    assert "validation NDCG@10 0.2584" in text
    assert "in 2.3 s (0.102 s per epoch) on cpu, after 43.0 s choosing the epoch (45.3 s in all)" in text
