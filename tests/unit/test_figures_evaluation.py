"""The figures and prose of evaluation.ipynb on hand-made tables: rows sorted best first, labels that do not
collide, value axes that hold every interval end, rating models kept out of the ranking figures, and sentences
that agree with the numbers they are written from."""
import types

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers.notebooks import evaluation_prose as nb  # noqa: E402
from helpers.plots import evaluation as ep  # noqa: E402


def summary_rows(protocol, metric, values, k=10, half=0.01, skew=None):
    """A summary frame of `values` ({model: value}); intervals value +- half unless skew gives (low, high)."""
    rows = []
    for model, value in values.items():
        low, high = (skew or {}).get(model, (value - half, value + half))
        rows.append({"model": model, "protocol": protocol, "metric": metric, "k": k if metric not in ("rmse", "mae")
                     else None, "value": value, "ci_low": low, "ci_high": high, "n_users": 100})
    return pd.DataFrame(rows)


def labels_of(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


def text_boxes(fig):
    """The window extents of every visible, non-empty text of `fig` (titles, ticks, annotations)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    return [(t.get_text(), t.get_window_extent(renderer)) for t in texts]


def overlapping_pairs(boxes):
    out = []
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            if box_a.overlaps(box_b) and box_a.width > 0 and box_b.width > 0:
                out.append((a, b))
    return out


# values close together (the 0.932 / 0.924 of the old figure, whose labels collided) and one skewed interval
CLOSE = {"popular": 0.774, "ease": 0.932, "collabnn": 0.933, "mf": 0.924, "itemknn": 0.915}
SUMMARY = pd.concat([summary_rows("full", "hr", CLOSE, skew={"mf": (0.930, 0.951)}),
                     summary_rows("full", "ndcg", {"popular": 0.2, "ease": 0.44, "collabnn": 0.45, "mf": 0.38,
                                                   "itemknn": 0.39}),
                     summary_rows("full", "hr", {"bias": 0.46, "mf_rating": 0.52}),
                     summary_rows("rating", "rmse", {"bias": 0.934, "mf_rating": 0.900, "collabnn_rating": 0.894},
                                  half=0.02)], ignore_index=True)
RANKING = ["popular", "ease", "collabnn", "mf", "itemknn"]


def test_metric_panels_are_sorted_best_first_and_hold_only_the_models_asked_for():
    fig = ep.plot_metric_bars(SUMMARY, "full", models=RANKING)
    hr, ndcg = fig.axes[0], fig.axes[1]
    assert labels_of(hr) == ["collabnn", "ease", "mf", "itemknn", "popular"]  # top row first
    assert labels_of(ndcg) == ["collabnn", "ease", "itemknn", "mf", "popular"]
    shown = {label for ax in fig.axes for label in labels_of(ax)}
    assert not shown & {"bias", "mf_rating"}  # the rating models stay out of the ranking figure
    # rows run top to bottom: the first label has the smallest y on screen-inverted axes
    assert hr.get_ylim()[0] > hr.get_ylim()[1]


def test_rmse_is_sorted_lowest_first_and_its_axis_shows_the_differences():
    fig = ep.plot_metric_bars(SUMMARY, "rating")
    ax = fig.axes[0]
    assert labels_of(ax) == ["collabnn_rating", "mf_rating", "bias"]
    low, high = ax.get_xlim()
    assert low > 0.8 and high < 1.0  # not from 0: the 0.04 spread fills the panel
    assert low <= 0.894 - 0.02 and high >= 0.934 + 0.02  # every interval end inside


def test_value_axis_includes_every_interval_end_even_a_skewed_one():
    fig = ep.plot_metric_bars(SUMMARY, "full", models=RANKING)
    low, high = fig.axes[0].get_xlim()
    part = SUMMARY[(SUMMARY["protocol"] == "full") & (SUMMARY["metric"] == "hr") & SUMMARY["model"].isin(RANKING)]
    assert low <= part["ci_low"].min() and high >= part["ci_high"].max()
    assert high >= 0.951  # mf's interval lies above its point (BCa, never clamped): its end is still shown
    assert ep.value_axis_limits([0.5], [0.2], [1.3]) == pytest.approx((0.2 - 0.088, 1.3 + 0.088))
    assert ep.value_axis_limits([1.0], [np.nan], [np.nan])[0] < 1.0 < ep.value_axis_limits([1.0], [np.nan], [np.nan])[1]


def test_no_text_of_the_metric_figure_overlaps_another():
    fig = ep.plot_metric_bars(SUMMARY, "full", models=RANKING, title="ml-100k — full ranking")
    boxes = text_boxes(fig)
    values = [t for t, _ in boxes if t in {"0.932", "0.933", "0.924"}]
    assert sorted(values) == ["0.924", "0.932", "0.933"]  # each value has its own label...
    assert overlapping_pairs(boxes) == []  # ...and no two texts (labels, ticks, titles) touch


def test_a_tall_figure_keeps_its_title_clear_of_the_panels():
    nine = {f"model_{i}": 0.2 + 0.03 * i for i in range(9)}  # the full-ranking figure of ml-100k: 9 x 11
    many = pd.concat([summary_rows("full", m, nine) for m in ("hr", "ndcg", "precision", "recall", "map", "mrr",
                                                              "coverage", "novelty", "avg_popularity", "ild_category",
                                                              "ild_embedding")], ignore_index=True)
    fig = ep.plot_metric_bars(many, "full", title="ml-100k — full ranking, 95% bootstrap intervals over users")
    assert overlapping_pairs(text_boxes(fig)) == []


def test_figures_do_not_change_their_input():
    before = SUMMARY.copy()
    ep.plot_metric_bars(SUMMARY, "full", models=RANKING)
    pd.testing.assert_frame_equal(SUMMARY, before)


def over_k_frame():
    rows = []
    for model, slope, start in (("a", 0.02, 0.30), ("b", 0.03, 0.125), ("c", 0.01, 0.20), ("bias", 0.0, 0.05)):
        for k in range(1, 21):
            v = start + slope * k
            rows.append({"model": model, "protocol": "full", "metric": "hr", "k": k, "value": v,
                         "ci_low": v - 0.01, "ci_high": v + 0.02})
    return pd.DataFrame(rows)


def test_over_k_has_one_legend_row_per_model_ordered_by_the_last_value_and_distinct_styles():
    fig = ep.plot_metrics_over_k(over_k_frame(), models=["a", "b", "c"])
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["b", "a", "c"]  # b ends highest (0.725), then a, c
    assert legend._ncols == 1
    lines = fig.axes[0].get_lines()
    assert len({(line.get_marker(), line.get_linestyle(), line.get_color()) for line in lines}) == 3
    low, high = fig.axes[0].get_ylim()
    frame = over_k_frame()
    frame = frame[frame["model"] != "bias"]
    assert low <= frame["ci_low"].min() and high >= frame["ci_high"].max()
    # the legend sits right of the panels, not over them
    fig.canvas.draw()
    assert legend.get_window_extent().x0 >= fig.axes[0].get_window_extent().x1


def group_frame():
    rows = []
    for model, f, m in (("popular", 0.70, 0.80), ("collabnn", 0.90, 0.95), ("ease", 0.91, 0.94), ("bias", 0.4, 0.5)):
        for group, v, n in (("F", f, 273), ("M", m, 670)):
            rows.append({"model": model, "protocol": "full", "metric": "hr", "k": 10, "gender": group, "value": v,
                         "ci_low": v - 0.03, "ci_high": v + 0.02, "n_users": n})
    return pd.DataFrame(rows)


def test_group_figure_sorts_rows_shows_the_gap_in_points_and_leaves_rating_models_out():
    fig = ep.plot_metrics_by_group(group_frame(), "gender", models=["popular", "collabnn", "ease"],
                                   title="ml-100k — by user gender")
    ax = fig.axes[0]
    assert labels_of(ax) == ["collabnn", "ease", "popular"]  # by the mean over the groups: 0.925, 0.925, 0.75
    texts = [t for t, _ in text_boxes(fig)]
    assert "+5.0 pp" in texts and "+10.0 pp" in texts and "+3.0 pp" in texts  # M - F, in percentage points
    assert "bias" not in texts and fig._suptitle.get_text() == "ml-100k — by user gender"
    low, high = ax.get_xlim()
    assert low <= 0.67 and high >= 0.97
    assert overlapping_pairs(text_boxes(fig)) == []
    assert ep.group_gap_text({"F": 0.4, "M": 0.45}, ["F", "M"], "ndcg") == "+0.050"


def test_gap_column_and_gap_sentence_take_the_groups_in_the_same_order():
    frame = group_frame().iloc[::-1].reset_index(drop=True)  # M rows first
    texts = [t for t, _ in text_boxes(ep.plot_metrics_by_group(frame, "gender"))]
    assert "M − F" in texts and "F − M" not in texts
    assert "M − F +5.0 pp" in nb.group_gap_sentences(frame, "gender", "collabnn")


def test_titles_put_a_separator_after_the_dataset():
    assert ep.figure_title("ml-100k", "by user gender") == "ml-100k — by user gender"
    assert ep.figure_title("", "by user gender") == "by user gender"


# ------------------------------------------------------------------------------------------------ prose

def test_ranking_and_rating_models_are_told_apart_by_their_task():
    models = {"popular": types.SimpleNamespace(task="implicit"), "bias": types.SimpleNamespace(task="rating"),
              "collabnn": types.SimpleNamespace(task="implicit"), "mf_rating": types.SimpleNamespace(task="rating")}
    assert nb.ranking_model_names(models) == ["popular", "collabnn"]
    assert nb.rating_model_names(models) == ["bias", "mf_rating"]


def test_results_sentences_name_the_protocol_and_agree_with_the_table():
    text = nb.results_sentences(SUMMARY, RANKING, ["bias", "mf_rating", "collabnn_rating"], headline="collabnn",
                                metric="hr")
    full, rating = text.split("\n")
    assert full.startswith("Full ranking, HR@10: the highest of 5 ranking models is collabnn 0.933 [0.923, 0.943]")
    assert "the strongest baseline is ease 0.932" in full
    assert "4 of the 4 other models are above it with the intervals apart" in full
    assert rating.startswith("Rating prediction, RMSE (lower is better), 3 rating models from the lowest: "
                             "collabnn_rating 0.894")


def paired_frame():
    rows = [("collabnn", "ease", 0.010, 0.004, 0.016, 0.001), ("popular", "collabnn", -0.2, -0.22, -0.18, 0.0002),
            ("collabnn", "mf", 0.002, -0.003, 0.007, 0.4), ("ease", "mf", 0.01, 0.0, 0.02, 0.05)]
    return pd.DataFrame([{"model_a": a, "model_b": b, "protocol": "full", "metric": "ndcg", "k": 10.0,
                          "mean_a": 0.4, "mean_b": 0.4 - d, "diff": d, "ci_low": lo, "ci_high": hi, "p_value": p,
                          "n_users": 100} for a, b, d, lo, hi, p in rows])


def test_comparisons_are_turned_to_the_default_and_counted_by_their_intervals():
    paired = paired_frame()
    before = paired.copy()
    oriented = nb.oriented_comparisons(paired, "collabnn")
    pd.testing.assert_frame_equal(paired, before)  # the input is left as it is
    assert list(oriented["other"]) == ["mf", "ease", "popular"]  # closest difference first
    pop = oriented[oriented["other"] == "popular"].iloc[0]
    assert (pop["diff"], pop["ci_low"], pop["ci_high"]) == pytest.approx((0.2, 0.18, 0.22))  # negated, ends swapped
    view = nb.comparison_view(oriented, "collabnn")
    assert list(view.index) == ["mf", "ease", "popular"] and view.index.name == "collabnn − other"
    assert view.loc["popular", ("full ranking NDCG@10", "difference [95% interval]")] == "+0.200 [+0.180, +0.220]"
    assert view.loc["popular", ("full ranking NDCG@10", "p")] == "0.0002"
    sentence = nb.comparisons_sentence(oriented, "collabnn")
    assert "(3 paired differences): 2 have a 95% interval above 0, 0 below 0, 1 contain 0" in sentence
    assert "Containing 0: mf on full ranking NDCG@10 +0.002 [-0.003, +0.007], p 0.4000" in sentence
    assert list(nb.oriented_comparisons(paired, "collabnn", others=["ease"])["other"]) == ["ease"]


def test_the_full_comparison_table_is_written_and_linked(tmp_path):
    link = nb.write_table(paired_frame(), "evaluation_paired", tmp_path)
    assert link == "tables/evaluation_paired.csv"
    assert len(pd.read_csv(tmp_path / link)) == 4


def activity_frame():
    rows = []
    for model, values in (("collabnn", (0.32, 0.38, 0.66)), ("popular", (0.12, 0.18, 0.35)),
                          ("weak", (0.05, 0.20, 0.40))):
        for bucket, v in zip(("cold", "medium", "heavy"), values):
            rows.append({"model": model, "protocol": "full", "metric": "ndcg", "k": 10, "activity": bucket,
                         "value": v, "ci_low": v - 0.02, "ci_high": v + 0.02, "n_users": 300})
    frame = pd.DataFrame(rows)
    frame["activity"] = pd.Categorical(frame["activity"], categories=["cold", "medium", "heavy"], ordered=True)
    return frame


def test_the_cold_user_sentence_agrees_with_the_table():
    text = nb.activity_sentences(activity_frame(), "collabnn")
    assert text.startswith("Full ranking, NDCG@10 of collabnn by bucket: cold 0.320 [0.300, 0.340]")
    assert "(highest: heavy)" in text
    # cold users: collabnn 0.32 against popular 0.12 is far above the floor, and the sentence says so
    assert "against popular: cold 2.67x (above it, the intervals apart)" in text
    assert "below most-popular with the intervals apart: weak (cold)" in text
    text = nb.activity_sentences(activity_frame(), "collabnn", models=["collabnn", "popular"])
    assert "no model is below most-popular in any bucket with the intervals apart" in text


def test_gender_gap_is_in_percentage_points_for_hr():
    text = nb.group_gap_sentences(group_frame(), "gender", "collabnn", models=["popular", "collabnn", "ease"])
    assert text == ("Full ranking, HR@10, collabnn: F 0.900 [0.870, 0.920], M 0.950 [0.920, 0.970], M − F +5.0 pp "
                    "(the intervals overlap); M scores higher for 3 of 3 models.")


def test_over_k_sentence_names_the_leader_at_each_k():
    text = nb.over_k_sentences(over_k_frame(), models=["a", "b", "c"])
    # a leads while 0.30 + 0.02k > 0.125 + 0.03k, i.e. k < 17.5, then b
    assert text == ("Full ranking, HR@K: the highest model changes with K: a at K=1..17, b at K=18..20; "
                    "no model's HR is lower at K=20 than at K=1.")


def test_generated_lines_become_a_markdown_list():
    assert nb.markdown_lines("a 0.1.\n\nb 0.2.") == "- a 0.1.\n- b 0.2."


def test_cold_slices_sentence_says_when_there_are_no_cold_users():
    table = pd.DataFrame([{"slice": "warm users", "n_users": 943, "n_rows": 20023},
                          {"slice": "cold items", "n_users": 16, "n_rows": 28}])
    assert nb.cold_slices_sentence(table) == ("Slices of this split: warm users (943 users, 20,023 rows), cold items "
                                              "(16 users, 28 rows); no evaluation user is unknown to training, so "
                                              "there is no cold-user slice.")


def test_list_measures_sentence_gives_each_range():
    summary = pd.concat([summary_rows("full", "coverage", {"popular": 0.031, "mf": 0.342}),
                         summary_rows("full", "avg_popularity", {"popular": 353.2, "mf": 227.0})])
    assert nb.list_measures_sentence(summary, ["popular", "mf"]) == (
        "Full ranking, the top-10 lists of the 2 ranking models: catalogue coverage from 0.031 (popular) to 0.342 "
        "(mf); avg. popularity from 227 (mf) to 353 (popular).")
