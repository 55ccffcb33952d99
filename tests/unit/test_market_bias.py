"""The marketing-bias tables: chi-square, Cramér's V and residuals against hand computations, a balanced
ANOVA whose sums of squares are known, the share invariants of the amplification table, one-line errors,
untouched inputs and empty cells."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from helpers.data import market_bias as mb  # noqa: E402
from helpers.plots import market_bias as plots  # noqa: E402


def frame(cells: dict, unknown: int = 0) -> pd.DataFrame:
    """Interactions from {(segment, gender): count or list of ratings}, plus `unknown` rows without gender."""
    rows = []
    for (segment, gender), spec in cells.items():
        ratings = [4.0] * spec if isinstance(spec, int) else spec
        rows += [(segment, gender, r) for r in ratings]
    rows += [("A", None, 3.0)] * unknown
    df = pd.DataFrame(rows, columns=["model_attr", "user_gender", "rating"])
    df["user_id"] = [f"u{i}" for i in range(len(df))]
    df["item_id"] = [f"i{i % 7}" for i in range(len(df))]
    return df.assign(user_gender=df["user_gender"].astype("string"), model_attr=df["model_attr"].astype("string"))


# A 2x2 table by hand: rows A (30 F, 10 M) and B (20 F, 40 M), n = 100; expected 20/20 and 30/30, so
# chi2 = 100/20 + 100/20 + 100/30 + 100/30 = 50/3, V = sqrt(chi2 / n), |adjusted residual| = sqrt(chi2) in 2x2.
TWO_BY_TWO = {("A", "F"): 30, ("A", "M"): 10, ("B", "F"): 20, ("B", "M"): 40}


def test_counts_table_has_counts_row_shares_and_column_shares_and_leaves_out_unknown_gender():
    counts = mb.segment_gender_counts(frame(TWO_BY_TWO, unknown=5))
    assert counts["interactions"].to_dict() == {"female": {"A": 30, "B": 20}, "male": {"A": 10, "B": 40}}
    np.testing.assert_allclose(counts["share_of_segment"].sum(axis=1), 1)
    np.testing.assert_allclose(counts["share_of_gender"].sum(axis=0), 1)
    assert counts.loc["A", ("share_of_segment", "female")] == pytest.approx(0.75)
    assert counts.loc["B", ("share_of_gender", "male")] == pytest.approx(0.8)
    assert counts.attrs["left_out_unknown_gender"] == 5
    assert mb.segment_gender_test(counts)["left_out_unknown_gender"] == 5


def test_chi_square_cramers_v_and_residuals_match_the_hand_computation():
    test = mb.segment_gender_test(mb.segment_gender_counts(frame(TWO_BY_TWO)))
    chi2 = 50 / 3
    assert test["chi2"] == pytest.approx(chi2) and test["dof"] == 1 and test["n"] == 100
    assert test["p_value"] == pytest.approx(stats.chi2.sf(chi2, 1))
    assert test["cramers_v"] == pytest.approx(np.sqrt(chi2 / 100))
    assert test["min_expected"] == pytest.approx(20)
    res = pd.DataFrame(test["residuals"])
    np.testing.assert_allclose(res.abs().to_numpy(), np.sqrt(chi2))
    assert res.loc["A", "female"] > 0 and res.loc["A", "male"] < 0
    assert {(c["segment"], c["gender"]) for c in test["over_represented"]} == {("A", "female"), ("B", "male")}
    assert {(c["segment"], c["gender"]) for c in test["under_represented"]} == {("A", "male"), ("B", "female")}


def test_three_by_two_chi_square_follows_the_formula():
    observed = np.array([[25, 5], [10, 30], [15, 15]])
    cells = {(s, g): int(observed[i, j]) for i, s in enumerate(["Female", "Female&Male", "Male"])
             for j, g in enumerate(["F", "M"])}
    test = mb.segment_gender_test(mb.segment_gender_counts(frame(cells)))
    n = observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert test["chi2"] == pytest.approx(chi2) and test["dof"] == 2
    assert test["cramers_v"] == pytest.approx(np.sqrt(chi2 / (n * (2 - 1))))
    assert test["over_represented"][0]["segment"] in {"Female", "Female&Male"}  # the largest residual comes first
    assert all(a["residual"] >= b["residual"] for a, b in zip(test["over_represented"], test["over_represented"][1:]))


def test_a_segment_only_unknown_gender_users_bought_is_a_zero_row_left_out_of_the_test():
    df = pd.concat([frame(TWO_BY_TWO), frame({("Lonely", None): 3})], ignore_index=True)
    counts = mb.segment_gender_counts(df)
    assert counts.loc["Lonely", "interactions"].tolist() == [0, 0]
    assert counts.loc["Lonely", "share_of_segment"].isna().all()
    test = mb.segment_gender_test(counts)
    assert test["left_out_segments"] == ["Lonely"] and test["chi2"] == pytest.approx(50 / 3)
    plt.close(plots.segment_gender_figure(counts, "toy"))


def additive(effects_segment: dict, effects_gender: dict, interaction: dict | None = None) -> dict:
    """Balanced 2 ratings per cell: 3 + a_segment + b_gender (+ c_cell) -/+ 0.5 (cell means unchanged)."""
    interaction = interaction or {}
    return {(s, g): [3 + a + b + interaction.get((s, g), 0) + d for d in (-0.5, 0.5)]
            for s, a in effects_segment.items() for g, b in effects_gender.items()}


def test_balanced_additive_anova_has_the_known_sums_of_squares_and_no_interaction():
    # segment means 3.25 / 4.25 around 3.75: SS = 8 * 0.5^2 = 2; gender means 4.0 / 3.5: SS = 8 * 0.25^2 = 0.5;
    # residual: 8 deviations of 0.5 -> SS = 2 on 8 - 4 = 4 df
    anova = mb.rating_anova(frame(additive({"A": 0.0, "B": 1.0}, {"F": 0.5, "M": 0.0}), unknown=3))
    assert anova.loc["segment", "sum_sq"] == pytest.approx(2.0)
    assert anova.loc["gender", "sum_sq"] == pytest.approx(0.5)
    assert anova.loc["segment:gender", "sum_sq"] == pytest.approx(0, abs=1e-12)
    assert anova.loc["Residual", "sum_sq"] == pytest.approx(2.0) and anova.loc["Residual", "df"] == 4
    assert anova.loc["segment", "F"] == pytest.approx(4.0)
    assert anova.loc["segment", "partial_eta_sq"] == pytest.approx(0.5)
    assert anova.attrs["left_out_unknown_gender"] == 3 and anova.attrs["n"] == 8 and anova.attrs["anova_type"] == 2


def test_a_crossover_design_puts_everything_in_the_interaction():
    # cell means A-F 4, A-M 3, B-F 3, B-M 4: no main effect, interaction SS = 8 * 0.5^2 = 2
    cells = additive({"A": 0.0, "B": 0.0}, {"F": 0.0, "M": 0.0},
                     {("A", "F"): 1.0, ("B", "M"): 1.0})
    anova = mb.rating_anova(frame(cells))
    assert anova.loc["segment:gender", "sum_sq"] == pytest.approx(2.0)
    assert anova.loc[["segment", "gender"], "sum_sq"].to_numpy() == pytest.approx([0, 0], abs=1e-12)
    sentence = mb.market_bias_sentence(mb.segment_gender_test(mb.segment_gender_counts(frame(cells))), anova)
    # F = (2 / 1) / (2 / 4) = 4 on (1, 4) df: p = 0.116, not significant with 8 ratings
    assert anova.loc["segment:gender", "F"] == pytest.approx(4.0)
    assert "the gender gap does not differ significantly between segments (segment x gender interaction: F = 4.00, " \
           f"p = {stats.f.sf(4, 1, 4):.3f}" in sentence


def test_an_empty_cell_fits_the_additive_model_and_says_so():
    cells = additive({"A": 0.0, "B": 1.0}, {"F": 0.5, "M": 0.0})
    del cells[("B", "M")]
    cells[("A", "F")] = cells[("A", "F")] + [3.0]
    anova = mb.rating_anova(frame(cells))
    assert "segment:gender" not in anova.index and anova["F"].iloc[:2].notna().all()
    assert "B x male" in anova.attrs["interaction"]
    table = mb.mean_rating_table(frame(cells))
    empty = table[(table["segment"] == "B") & (table["gender"] == "male")].iloc[0]
    assert empty["count"] == 0 and np.isnan(empty["mean_rating"])
    plt.close(plots.mean_rating_figure(table, "toy"))
    assert "not estimable" in mb.market_bias_sentence(mb.segment_gender_test(mb.segment_gender_counts(frame(cells))), anova)


def test_mean_rating_table_gives_counts_means_and_the_t_interval():
    table = mb.mean_rating_table(frame({("A", "F"): [1.0, 2.0, 3.0], ("A", "M"): [5.0], ("B", "F"): [4.0, 4.0]}))
    t = table.set_index(["segment", "gender"])
    assert t["count"].to_dict() == {("A", "female"): 3, ("A", "male"): 1, ("B", "female"): 2, ("B", "male"): 0}
    half = stats.t.ppf(0.975, 2) / np.sqrt(3)  # mean 2, std 1
    assert t.loc[("A", "female"), ["mean_rating", "ci_low", "ci_high"]].tolist() == pytest.approx([2, 2 - half, 2 + half])
    assert np.isnan(t.loc[("A", "male"), "ci_low"]) and t.loc[("A", "male"), "mean_rating"] == 5  # one rating: no interval


def recommendation_case():
    history = frame({("Female", "F"): 6, ("Male", "F"): 2, ("Female", "M"): 1, ("Male", "M"): 3})
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(4)], "model_attr": ["Female", "Female", "Male", "Female&Male"]})
    history = history.assign(item_id=history["model_attr"].map({"Female": "i0", "Male": "i2"}))
    users = history[["user_id", "user_gender"]]
    return history, items, users


def test_shares_sum_to_one_per_gender_and_equal_lists_give_ratio_one():
    history, items, users = recommendation_case()
    same = mb.recommended_segment_shares(history, items, users, history=history)
    assert same.groupby("gender")[["history_share", "recommended_share"]].sum().to_numpy() == pytest.approx(1)
    assert same["ratio"].to_numpy() == pytest.approx(1)
    assert list(same.columns) == ["gender", "segment", "history_count", "history_share", "recommended_count",
                                  "recommended_share", "ratio"]
    assert mb.amplification_sentence(same).startswith("No segment is amplified")


def test_amplification_is_measured_against_the_same_users_and_stated_in_words():
    history, items, users = recommendation_case()
    women = history.loc[history["user_gender"] == "F", "user_id"]
    recs = pd.DataFrame({"user_id": women, "item_id": "i2", "rank": 1})  # every woman gets the Male item
    table = mb.recommended_segment_shares(recs, items, users, history=history).set_index(["gender", "segment"])
    assert set(table.index.get_level_values("gender")) == {"female"}  # men got no list: not counted
    assert table.loc[("female", "Male"), "history_share"] == pytest.approx(0.25)
    assert table.loc[("female", "Male"), "ratio"] == pytest.approx(4.0)
    assert table.loc[("female", "Female"), "ratio"] == 0
    sentence = mb.amplification_sentence(table.reset_index())
    assert sentence == ("Largest amplification: female users get Male products 4.00x as often as in their history "
                        "(100.0% of recommendations against 25.0% of interactions).")
    plt.close(plots.amplification_figure(table.reset_index(), "toy"))


def test_a_segment_absent_from_the_history_is_new_not_a_crash():
    history, items, users = recommendation_case()
    recs = pd.DataFrame({"user_id": history["user_id"], "item_id": "i3"})  # Female&Male: nobody bought it
    table = mb.recommended_segment_shares(recs, items, users, history=history)
    assert np.isinf(table.loc[table["segment"] == "Female&Male", "ratio"]).all()
    assert "although none is in their history" in mb.amplification_sentence(table)
    plt.close(plots.amplification_figure(table, "toy"))


def test_has_market_segments():
    assert mb.has_market_segments(frame(TWO_BY_TWO))
    assert not mb.has_market_segments(frame(TWO_BY_TWO).drop(columns="model_attr"))  # ml-100k: no segments
    assert not mb.has_market_segments(frame({}, unknown=4))  # no known gender


@pytest.mark.parametrize("call", [
    lambda df: mb.segment_gender_counts(df.drop(columns="model_attr")),
    lambda df: mb.mean_rating_table(df.drop(columns="rating")),
    lambda df: mb.rating_anova(df, gender_col="gender"),
    lambda df: mb.recommended_segment_shares(df[["user_id"]], df, df, history=df),
    lambda df: mb.recommended_segment_shares(df, df.drop(columns="model_attr"), df, history=df),
])
def test_a_missing_column_is_named_in_one_line(call):
    with pytest.raises(ValueError) as err:
        call(frame(TWO_BY_TWO))
    assert "\n" not in str(err.value) and "needs column(s) [" in str(err.value)


def test_no_known_gender_and_a_one_gender_table_are_rejected_in_one_line():
    for call in (mb.segment_gender_counts, mb.rating_anova, mb.mean_rating_table):
        with pytest.raises(ValueError, match="no known gender") as err:
            call(frame({}, unknown=4))
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="at least 2 segments and 2 genders"):
        mb.segment_gender_test(mb.segment_gender_counts(frame({("A", "F"): 3, ("B", "F"): 2})))
    with pytest.raises(ValueError, match="at least 2 segments and 2 genders"):
        mb.rating_anova(frame({("A", "F"): [3.0, 4.0], ("B", "F"): [2.0, 5.0]}))
    history, items, users = recommendation_case()
    with pytest.raises(ValueError, match="no recommended user has a known"):
        mb.recommended_segment_shares(history, items, users.assign(user_gender=pd.NA), history=history)


def test_inputs_are_not_modified():
    df = frame(additive({"A": 0.0, "B": 1.0}, {"F": 0.5, "M": 0.0}), unknown=2)
    df.attrs["dataset"] = "toy"
    before = df.copy()
    counts = mb.segment_gender_counts(df)
    counts_before = counts.copy()
    mb.segment_gender_test(counts)
    mb.rating_anova(df)
    mb.mean_rating_table(df)
    mb.recommended_segment_shares(df, df, df, history=df)
    pd.testing.assert_frame_equal(df, before)
    pd.testing.assert_frame_equal(counts, counts_before)
    assert df.attrs == {"dataset": "toy"}
