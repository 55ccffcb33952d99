"""Protocols: sampler invariants, full ranking = brute force, bootstrap intervals, paired comparisons."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from scipy import stats
from scipy.stats import binom, norm

from helpers import metrics as M
from helpers.data.sampling import sampled_candidates
from helpers.evaluation import stats as stats_module
from helpers.evaluation.groups import metrics_by_group, user_activity_buckets
from helpers.evaluation.protocols import full_ranking, sampled_ranking, unknown_evaluation_rows
from helpers.evaluation.results import evaluate_models, metrics_over_k, paired_comparisons
from helpers.evaluation.stats import bootstrap_ci, paired_comparison, sign_flip_p_value
from helpers.models import EASE, BiasBaseline, ItemKNN, MostPopular, Recommender, item_item, model_class
from helpers.models.item_item import history_row_sums
from helpers.notebooks.evaluation import check_parameters, report_values
from helpers.notebooks.inputs import user_genders
from helpers.notebooks.models import load_or_train


def toy_split(seed=0, n_users=60, n_items=40, density=0.3):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[:, :3] = True  # every user has a few items; items 0..2 popular
    u, i = np.nonzero(mask)
    df = pd.DataFrame({"user_id": [f"u{x}" for x in u], "item_id": [f"i{x}" for x in i],
                       "rating": rng.integers(1, 6, len(u)).astype(np.float32),
                       "user_gender": np.where(u % 2 == 0, "F", "M")})
    from helpers.data.split import random_split
    return random_split(df, seed=seed)


class Constant(Recommender):
    """Every item scores the same: the pessimistic tie rule must give it no hit at all."""

    name = "constant"

    def _fit(self, users, items, ratings):
        pass

    def score_users(self, users):
        return torch.zeros(len(users), self.n_items)


# --------------------------------------------------------------------------- sampled protocol
def test_sampled_candidates_invariants():
    train, evaluation = toy_split()
    cands = sampled_candidates(train, evaluation, n_negatives=10, seed=3)
    touched = set(zip(train["user_id"], train["item_id"])) | set(zip(evaluation["user_id"], evaluation["item_id"]))
    train_items = set(train["item_id"])
    for user, negatives in zip(cands["user_id"], cands["negatives"]):
        assert len(negatives) == 10 and len(set(negatives)) == 10          # no duplicates
        assert not any((user, item) in touched for item in negatives)       # never an item of the user
        assert set(negatives) <= train_items
    again = sampled_candidates(train, evaluation, n_negatives=10, seed=3)
    assert all((a == b).all() for a, b in zip(cands["negatives"], again["negatives"]))  # same seed, same draw
    other = sampled_candidates(train, evaluation, n_negatives=10, seed=4)
    assert not all((a == b).all() for a, b in zip(cands["negatives"], other["negatives"]))


def test_sampled_ranking_agrees_with_pair_scores_and_counts_ties_against_the_positive():
    train, evaluation = toy_split(1)
    cands = sampled_candidates(train, evaluation, n_negatives=10, seed=0)
    model = EASE(lambda_=5).fit(train)
    ranking = sampled_ranking(model, cands)
    u = model.user_index(cands["user_id"].to_numpy())
    negatives = model.item_index(np.stack(cands["negatives"].to_numpy()).ravel()).reshape(len(cands), -1)
    positive = model.score_pairs(u, model.item_index(cands["item_id"].to_numpy()))
    others = model.score_pairs(np.repeat(u, negatives.shape[1]), negatives.ravel()).reshape(negatives.shape)
    np.testing.assert_array_equal(ranking.positions[:len(cands), 0], (others >= positive[:, None]).sum(axis=1))
    constant = Constant().fit(train)
    assert (sampled_ranking(constant, cands).positions == 10).all()  # every tie lost: last of 11


def test_unknown_evaluation_items_count_as_misses_or_are_dropped():
    train, evaluation = toy_split(2)
    extra = pd.DataFrame({"user_id": ["u0", "stranger"], "item_id": ["new-item", "i0"], "rating": [4.0, 4.0]})
    evaluation = pd.concat([evaluation, extra], ignore_index=True)
    model = MostPopular().fit(train)
    cands = sampled_candidates(train, evaluation, n_negatives=10, seed=0)
    unknown = unknown_evaluation_rows(train, evaluation)
    missed = sampled_ranking(model, cands, unknown, unknown="miss")
    dropped = sampled_ranking(model, cands, unknown, unknown="drop")
    assert len(missed.user_ids) == len(evaluation) and missed.n_unknown == 2
    assert len(dropped.user_ids) == len(evaluation) - 2
    assert np.isinf(missed.positions[-2:]).all()
    full = full_ranking(model, evaluation, train, unknown="miss")
    assert "stranger" in set(full.user_ids) and full.n_unknown == 2
    assert "stranger" not in set(full_ranking(model, evaluation, train, unknown="drop").user_ids)
    row = list(full.user_ids).index("u0")
    assert full.n_relevant[row] == (evaluation["user_id"] == "u0").sum()  # the unknown item still counts


# --------------------------------------------------------------------------- full ranking
@pytest.mark.parametrize("cls", [EASE, ItemKNN, Constant])
def test_full_ranking_equals_brute_force(cls):
    train, evaluation = toy_split(3)
    model = cls().fit(train)
    ranking = full_ranking(model, evaluation, train, k=5, batch_size=7)  # several batches
    scores = model.score_users(np.arange(model.n_users)).numpy()
    seen = set(zip(train["user_id"], train["item_id"]))
    for row, user in enumerate(ranking.user_ids):
        u = model.user_index([user])[0]
        relevant = set(evaluation.loc[evaluation["user_id"] == user, "item_id"])
        candidates = [j for j, item in enumerate(model.item_ids) if (user, item) not in seen]
        # brute force: sort candidates by score desc, relevant items after irrelevant ones on ties
        order = sorted(candidates, key=lambda j: (-scores[u, j], model.item_ids[j] in relevant))
        expected = sorted(p for p, j in enumerate(order) if model.item_ids[j] in relevant)
        got = ranking.positions[row][np.isfinite(ranking.positions[row])]
        np.testing.assert_array_equal(got, expected)
        assert ranking.n_relevant[row] == len(relevant)
        top = order[:5] if cls is not Constant else None
        if top is not None and len(set(scores[u, top])) == 5:  # top-k list (no ties to break)
            assert list(ranking.recommended[row]) == top


def test_full_ranking_metrics_from_positions_agree_with_recommend():
    train, evaluation = toy_split(4)
    model = EASE(lambda_=3).fit(train)
    ranking = full_ranking(model, evaluation, train, k=10)
    recs = model.recommend(list(ranking.user_ids), k=10)
    relevant = set(zip(evaluation["user_id"], evaluation["item_id"]))
    hits = recs.assign(hit=[(u, i) in relevant for u, i in zip(recs["user_id"], recs["item_id"])])
    per_user = hits.groupby("user_id")["hit"].sum().reindex(ranking.user_ids).to_numpy()
    np.testing.assert_allclose(M.precision_at_k(ranking.positions, 10), per_user / 10)


# --------------------------------------------------------------------------- intervals and comparisons
@pytest.mark.parametrize("n_users,level", [(2_000, 0.95), (2_000, 0.8), (10_000, 0.95)])
def test_bootstrap_ci_of_many_bernoulli_users_is_the_normal_theory_interval(n_users, level):
    # one 0/1 value per user, hit rate 0.3: p +- z sqrt(p (1 - p) / n), to a fifth of its half-width
    # (Monte Carlo error of 1,000 draws and BCa's skew correction); 10,000 users: the percentile method
    values = (np.random.default_rng(n_users).random(n_users) < 0.3).astype(float)
    point, low, high = bootstrap_ci(values, np.arange(n_users), level=level, seed=0)
    p = values.mean()
    half = norm.ppf(0.5 + level / 2) * np.sqrt(p * (1 - p) / n_users)
    assert point == pytest.approx(p)
    assert (low, high) == pytest.approx((p - half, p + half), abs=0.2 * half)


def test_bootstrap_ci_covers_the_true_mean_95_percent_of_the_time():
    # 200 samples of 100 users with 1-9 rows each, the rows of a user hits at the user's own rate (mean 0.3):
    # the interval over users covers 0.3 about 95% of the time; resampling rows treats a user's correlated
    # rows as independent and covers far less often
    rng = np.random.default_rng(1)
    covered = {"users": 0, "rows": 0}
    for rep in range(200):
        users = np.repeat(np.arange(100), rng.integers(1, 10, 100))
        rate = rng.beta(0.6, 1.4, 100)
        values = (rng.random(len(users)) < rate[users]).astype(float)
        for name, groups in (("users", users), ("rows", None)):
            _, low, high = bootstrap_ci(values, groups, seed=rep)
            covered[name] += low <= 0.3 <= high
    assert 0.90 <= covered["users"] / 200 <= 0.99
    assert covered["rows"] / 200 < 0.88


def test_bootstrap_ci_resamples_users_whole():
    # 500 users with 10 identical rows each: the interval is that of one value per user, sqrt(10) times as
    # wide as the one that resamples the 5,000 rows as if they were independent
    hit = (np.random.default_rng(2).random(500) < 0.3).astype(float)
    users = np.repeat(np.arange(500), 10)
    _, low, high = bootstrap_ci(hit[users], users)
    assert (low, high) == pytest.approx(bootstrap_ci(hit, np.arange(500))[1:])
    _, low_rows, high_rows = bootstrap_ci(hit[users], None)
    assert (high - low) / (high_rows - low_rows) == pytest.approx(np.sqrt(10), rel=0.15)


def test_bootstrap_resamples_users_not_rows():
    # two users, one with 99 hits, one with 1 miss: resampling the users gives (u2, u2) a quarter of the
    # time (figure 0), (u1, u2) half (0.99), (u1, u1) a quarter (1), so the 95% interval is (0, 1).
    # Resampling the 100 rows: about the binomial interval of 99 / 100 (Clopper-Pearson 0.946 - 1)
    values = np.r_[np.ones(99), 0.0]
    users = np.r_[np.zeros(99), 1]
    point, low, high = bootstrap_ci(values, users, n_boot=2000, seed=0)
    assert point == pytest.approx(0.99) and (low, high) == (0.0, 1.0)
    _, low_rows, high_rows = bootstrap_ci(values, None, n_boot=2000, seed=0)
    assert low_rows == pytest.approx(0.95, abs=0.01) and high_rows == 1.0


def test_bootstrap_rmse_interval_on_hand_made_errors(monkeypatch):
    # users a (errors 1, -1), b (2), c (0): squared-error sums 2, 4, 0 over 2, 1, 1 rows, RMSE sqrt(6 / 4).
    # The 27 equally likely resamples of the 3 users give RMSE 0 (c, c, c) to 2 (b, b, b), each 1 / 27 > 2.5%:
    # the percentile interval is (0, 2). BCa (z0 = 0.14, acceleration 0.068 here) moves the lower end to the
    # 7th percentile, the resamples with a once and c twice (1 / 27 to 4 / 27): RMSE sqrt(2 / 4)
    errors = np.array([1.0, -1.0, 2.0, 0.0])
    users = ["a", "a", "b", "c"]
    point, low, high = bootstrap_ci(errors ** 2, users, statistic="rmse")
    assert point == pytest.approx(np.sqrt(6 / 4))
    assert (low, high) == pytest.approx((np.sqrt(2 / 4), 2.0))
    monkeypatch.setattr(stats_module, "BCA_MAX_GROUPS", 2)  # 3 users: above it, the percentile method
    assert bootstrap_ci(errors ** 2, users, statistic="rmse")[1:] == pytest.approx((0.0, 2.0))


def test_bootstrap_ci_is_seeded_exact_when_constant_and_checks_its_arguments():
    values = (np.random.default_rng(4).random(300) < 0.4).astype(float)
    users = np.arange(300) // 3
    first = bootstrap_ci(values, users, seed=7)
    assert bootstrap_ci(values, users, seed=7) == first
    assert bootstrap_ci(values, users, seed=8) != first  # another seed, other draws
    assert bootstrap_ci(np.full(12, 0.25), np.arange(12) // 3) == (0.25, 0.25, 0.25)  # every resample 0.25
    assert bootstrap_ci([0.25, 0.75], ["u", "u"]) == (0.5, 0.5, 0.5)  # one user: every resample is that user
    assert np.isnan(bootstrap_ci([], None)).all()
    with pytest.raises(ValueError, match="statistic must be one of"):
        bootstrap_ci(values, users, statistic="median")
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\)"):
        bootstrap_ci(values, users, level=95)


def test_paired_comparison_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(300), 2)
    a = (rng.random(600) < 0.7).astype(float)
    b = np.where(rng.random(600) < 0.2, 0.0, a)  # b loses 20% of a's hits
    res = paired_comparison(a, b, users, seed=0)
    assert res["diff"] == pytest.approx(a.mean() - b.mean()) and res["n_users"] == 300
    # the same resampled users for both models: the interval of the per-row differences over users
    assert (res["ci_low"], res["ci_high"]) == pytest.approx(bootstrap_ci(a - b, users, seed=0)[1:])
    per_user = (a - b).reshape(300, 2).mean(axis=1)  # ... close to the normal-theory one of the user means
    half = 1.96 * per_user.std() / np.sqrt(300)
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((res["diff"] - half, res["diff"] + half), abs=0.2 * half)
    assert res["p_value"] == pytest.approx(2 / 10_001)  # no swap reaches it: the smallest two-sided p, 2 / (n + 1)
    same = paired_comparison(a, a, users, seed=0)
    assert (same["diff"], same["ci_low"], same["ci_high"], same["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    noise = paired_comparison(a, np.roll(a, 2), users, seed=0)  # same hit rate, shuffled users
    assert noise["ci_low"] < 0 < noise["ci_high"] and noise["p_value"] > 0.05


def test_paired_p_value_swaps_users_not_rows():
    # users u (2 rows), v, w; A hits every row, B none: of the 2^3 swaps of whole users (enumerated: exact),
    # 2 reach |diff| = 1 -> p = 1/4 (swapping the 4 rows one by one would give 2 / 16)
    res = paired_comparison([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], ["u", "u", "v", "w"])
    assert res["p_value"] == 0.25 and res["diff"] == 1.0
    assert (res["ci_low"], res["ci_high"]) == (1.0, 1.0)  # every resample: A - B = 1


def test_sign_flip_p_value_hand_computed():
    # differences (1, 1, 1): of the 8 sign patterns (all enumerated: exact), 2 reach |sum| = 3 -> p = 1/4
    assert sign_flip_p_value([1.0, 1.0, 1.0]) == 0.25
    assert sign_flip_p_value([1.0, 2.0, 3.0, 4.0]) == 2 / 16  # only all + and all - reach |sum| = 10
    assert sign_flip_p_value([0.0, 0.0]) == 1.0
    # 20 users, 13 at +1 and 7 at -1 (sum 6): 2^20 patterns, 10,000 drawn; exact p = P(|sum| >= 6) = 2 P(Bin(20, 1/2) >= 13)
    d = np.r_[np.ones(13), -np.ones(7)]
    assert sign_flip_p_value(d, seed=0) == pytest.approx(2 * binom.sf(12, 20, 0.5), abs=0.01)
    assert sign_flip_p_value(np.ones(40), n_permutations=999) == pytest.approx(2 / 1000)  # never reached: 2 (0 + 1) / (999 + 1)


def test_paired_test_and_interval_agree_when_users_have_many_rows():
    # the statistic is row-weighted: a heavy user dominates; test and interval must say the same thing
    rng = np.random.default_rng(3)
    counts = rng.integers(1, 40, 200)
    users = np.repeat(np.arange(200), counts)
    a = (rng.random(len(users)) < 0.6).astype(float)
    b = np.where((rng.random(len(users)) < 0.05) & (counts[users] > 20), 0.0, a)  # b loses hits of heavy users
    res = paired_comparison(a, b, users, seed=0)
    assert (res["ci_low"] > 0) == (res["p_value"] < 0.05)
    # the test flips the sign of each user's summed difference, as sign_flip_p_value does (the same draws:
    # user labels that sort in the order of np.bincount's)
    c = np.where(rng.random(len(users)) < 0.01, 1 - a, a)  # a little noise: p well above its floor 2 / 10,001
    labels = np.array([f"u{i:03d}" for i in range(200)])[users]
    p_value = paired_comparison(a, c, labels, seed=0)["p_value"]
    assert p_value > 0.01 and p_value == pytest.approx(sign_flip_p_value(np.bincount(users, weights=a - c)))


def test_evaluate_models_tidy_results_and_breakdowns():
    train, evaluation = toy_split(5)
    models = {"popular": MostPopular().fit(train), "ease": EASE(lambda_=5).fit(train),
              "bias": BiasBaseline().fit(train)}
    cats = pd.Series(["A|B" if int(i[1:]) % 2 else "C" for i in train["item_id"].unique()],
                     index=train["item_id"].unique())
    result = evaluate_models(models, train, evaluation, k=5, n_negatives=10, n_boot=200, item_categories=cats,
                               verbose=False)
    s = result.summary
    assert {"model", "protocol", "metric", "k", "value", "ci_low", "ci_high", "n_users"} <= set(s.columns)
    ranked = s[s["metric"] != "coverage"]
    assert ranked[["value", "ci_low", "ci_high"]].notna().all().all() and (ranked["ci_low"] < ranked["ci_high"]).all()
    # each interval is bootstrap_ci of that metric's per-row values over their users (BCa, not clamped)
    key = "protocol == 'sampled' and metric == 'hr' and model == 'ease'"
    rows = result.per_row.query(key)
    assert tuple(s.query(key)[["value", "ci_low", "ci_high"]].iloc[0]) == \
        bootstrap_ci(rows["value"], rows["user_id"], n_boot=200, seed=0)
    assert set(s.loc[s["protocol"] == "rating", "model"]) == {"bias"}  # implicit models have no RMSE
    assert set(s.loc[s["protocol"] == "full", "metric"]) >= {"hr", "ndcg", "precision", "recall", "map", "mrr",
                                                             "coverage", "novelty", "ild_category", "ild_embedding"}
    # the same figure computed directly
    hr = s.query("protocol == 'sampled' and metric == 'hr' and model == 'ease'")["value"].iloc[0]
    direct = sampled_ranking(models["ease"], result.candidates, unknown="drop").mean("hr", 5)
    assert hr == pytest.approx(direct)
    table = result.table()
    assert list(table.index) == ["popular", "ease", "bias"] and "sampled hr@5" in table.columns
    paired = paired_comparisons(result)
    assert set(paired["protocol"]) == {"sampled", "full"}  # one rating model: nothing to pair in "rating"
    assert len(paired) == 2 * 2 * 3  # protocols x (hr, ndcg) x model pairs
    over_k = metrics_over_k(result, ks=range(1, 6), ci=False)
    hr_k = over_k.query("model == 'ease' and protocol == 'full' and metric == 'hr'")["value"].to_numpy()
    assert (np.diff(hr_k) >= 0).all()  # HR@K never decreases with K
    buckets = user_activity_buckets(train)
    assert list(buckets.cat.categories) == ["cold", "medium", "heavy"]
    by_activity = metrics_by_group(result, buckets, group_name="activity")
    assert set(by_activity["activity"]) <= {"cold", "medium", "heavy"}
    genders = user_genders(train)
    by_gender = metrics_by_group(result, genders, group_name="gender")
    assert set(by_gender["gender"]) == {"F", "M"}
    values = report_values(result, paired, over_k, {"activity": by_activity, "gender": by_gender})
    assert values["results"]["sampled"]["ease"]["hr@5"]["value"] == pytest.approx(hr)
    assert "F" in values["by_gender"]["full"]


def test_parameters_are_checked_with_helpful_messages():
    assert check_parameters(MODELS=["popular"], PROTOCOLS="full")["PROTOCOLS"] == ["full"]
    with pytest.raises(ValueError, match="allowed"):
        check_parameters(EPOCH=3)
    with pytest.raises(ValueError, match="choose one or more"):
        check_parameters(PROTOCOLS=["sampeld"])
    with pytest.raises(ValueError, match="unknown model 'eas'"):
        check_parameters(MODELS=["eas"])
    assert model_class("mf_rating")[1] == "rating"


def test_load_or_train_refuses_a_model_trained_on_the_evaluation_data(tmp_path):
    train, evaluation = toy_split(6)
    leaky = MostPopular().fit(pd.concat([train, evaluation]))
    leaky.save(tmp_path / "popular_implicit.pth")
    with pytest.raises(ValueError, match="evaluation interactions"):
        load_or_train(["popular"], train, evaluation, tmp_path, log=None)
    MostPopular().fit(train).save(tmp_path / "popular_implicit.pth")
    models, sources = load_or_train(["popular", "ease"], train, evaluation, tmp_path, log=None)
    assert sources["source"].str.startswith("loaded").tolist() == [True, False]


@pytest.mark.parametrize("statistic", ["mean", "rmse"])
def test_randomised_swap_test_matches_scipy_permutation_test(statistic):
    # the randomised path (monte_carlo_test on sign flips) draws from the same null as scipy's
    # permutation_test(permutation_type="samples"): on 300 users the two p-values agree within Monte Carlo error
    rng = np.random.default_rng(5)
    counts = rng.integers(1, 4, 300)
    users = np.repeat(np.arange(300), counts)
    a = rng.random(len(users))
    b = a + rng.normal(0.0, 0.5, len(users)) if statistic == "mean" else np.roll(a, 1) * 1.05  # B: about as good
    ours = paired_comparison(a, b, users, statistic=statistic, n_permutations=20_000, n_boot=200)["p_value"]
    sa, sb, n = np.bincount(users, weights=a), np.bincount(users, weights=b), len(users)
    figure = (lambda s: s / n) if statistic == "mean" else (lambda s: np.sqrt(s / n))
    ref = stats.permutation_test((sa, sb), lambda x, y, axis=-1: figure(np.sum(x, axis=axis)) - figure(np.sum(y, axis=axis)),
                                 permutation_type="samples", vectorized=True, n_resamples=20_000,
                                 rng=np.random.default_rng(1)).pvalue
    assert 0.02 < ref < 0.98  # a p-value away from its bounds, where disagreement would show
    assert ours == pytest.approx(ref, abs=4 * np.sqrt(ref * (1 - ref) / 20_000) * 2)


def test_bootstrap_table_above_bca_size_is_scipys_percentile_bootstrap_draw_for_draw():
    # above BCA_MAX_GROUPS users the resamples are totalled by a matrix product; they must be the resamples
    # scipy.stats.bootstrap draws with the same seed and batch, so the intervals agree to rounding
    rng = np.random.default_rng(1)
    n = stats_module.BCA_MAX_GROUPS + 500
    counts = rng.integers(1, 4, n).astype(float)
    sa, sb = rng.binomial(counts.astype(int), 0.3).astype(float), rng.binomial(counts.astype(int), 0.33).astype(float)
    table = stats_module.bootstrap_table(np.column_stack([sa, sb]), counts,
                                         [("mean", 1), ("rmse", 0), ("diff", "mean", 0, 1), ("diff", "rmse", 0, 1)],
                                         n_boot=300, seed=7)
    options = dict(paired=True, vectorized=True, batch=stats_module._batch(n), method="percentile", n_resamples=300)
    ref = [stats.bootstrap((sb, counts), lambda s, c, axis=-1: np.sum(s, axis) / np.sum(c, axis),
                           rng=np.random.default_rng(7), **options),
           stats.bootstrap((sa, counts), lambda s, c, axis=-1: np.sqrt(np.sum(s, axis) / np.sum(c, axis)),
                           rng=np.random.default_rng(7), **options),
           stats.bootstrap((sa, sb, counts), lambda x, y, c, axis=-1: np.sum(x - y, axis) / np.sum(c, axis),
                           rng=np.random.default_rng(7), **options),
           stats.bootstrap((sa, sb, counts), lambda x, y, c, axis=-1: np.sqrt(np.sum(x, axis) / np.sum(c, axis))
                           - np.sqrt(np.sum(y, axis) / np.sum(c, axis)), rng=np.random.default_rng(7), **options)]
    for row, res in zip(table, ref):
        assert row[1:] == pytest.approx([res.confidence_interval.low, res.confidence_interval.high], rel=1e-9)
    assert table[0, 0] == pytest.approx(sb.sum() / counts.sum()) and table[2, 0] == pytest.approx((sa - sb).sum() / counts.sum())
    # and the one-figure wrapper gives the same as the table (user labels sorting in the table's order)
    users = np.repeat(np.array([f"u{i:05d}" for i in range(n)]), counts.astype(int))
    values = np.concatenate([np.r_[np.ones(int(h)), np.zeros(int(c - h))] for h, c in zip(sb, counts)])
    assert bootstrap_ci(values, users, n_boot=300, seed=7) == pytest.approx(tuple(table[0]), rel=1e-9)


def test_bootstrap_table_rejects_bad_figures_and_shapes():
    with pytest.raises(ValueError, match="figure"):
        stats_module.bootstrap_table(np.ones((3, 2)), np.ones(3), [("median", 0)])
    with pytest.raises(ValueError, match="figure"):
        stats_module.bootstrap_table(np.ones((3, 2)), np.ones(3), [("diff", "mean", 0, 2)])
    with pytest.raises(ValueError, match="one row per user"):
        stats_module.bootstrap_table(np.ones((3, 2)), np.ones(4), [("mean", 0)])


def test_history_row_sums_is_the_sparse_product():
    rng = np.random.default_rng(0)
    rows = sp.random(30, 12, density=0.2, random_state=1, format="csr", dtype=np.float32)
    binary = (rows != 0).astype(np.float32)
    weights = torch.from_numpy(rng.normal(size=(12, 7)).astype(np.float32))
    for x in (rows, binary):
        np.testing.assert_allclose(history_row_sums(x, weights).numpy(), x @ weights.numpy(), rtol=1e-5, atol=1e-6)
    assert history_row_sums(sp.csr_matrix((0, 12), dtype=np.float32), weights).shape == (0, 7)


def test_history_row_sums_in_sub_blocks_gives_the_same_sums(monkeypatch):
    """A gather budget below one user's history (sub-blocks of one user) and one of a few users: the same
    values, bit for bit, as one gather of the whole block."""
    rng = np.random.default_rng(4)
    x = sp.random(40, 30, density=0.3, format="csr", random_state=5, dtype=np.float32)
    x.data[:] = 1.0
    weights = torch.from_numpy(rng.normal(size=(30, 11)).astype(np.float32))
    whole = history_row_sums(x, weights)
    for floats in (1, 11 * 20):
        monkeypatch.setattr(item_item, "GATHER_FLOATS", floats)
        assert torch.equal(history_row_sums(x, weights), whole), floats


def test_load_or_train_refuses_a_file_of_the_other_task(tmp_path):
    """A rating model saved under the implicit entry's name (e.g. by hand) is refused, not evaluated as a ranker."""
    from helpers.models import BiasBaseline

    train, evaluation = toy_split(6)
    BiasBaseline().fit(train).save(tmp_path / "popular_implicit.pth")
    with pytest.raises(ValueError, match="holds a rating-task bias model, not the implicit task asked for"):
        load_or_train(["popular"], train, evaluation, tmp_path, log=None)
