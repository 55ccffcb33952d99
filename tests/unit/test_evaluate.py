"""Protocols: sampler invariants, full ranking = brute force, bootstrap intervals, paired comparisons."""
import numpy as np
import pandas as pd
import pytest
import torch

from helpers.data.sampling import sampled_candidates
from helpers.evaluation import metrics as M
from helpers.evaluation.groups import metrics_by_group, user_activity_buckets
from helpers.evaluation.protocols import full_ranking, sampled_ranking, unknown_evaluation_rows
from helpers.evaluation.results import evaluate_models, metrics_over_k, paired_comparisons
from helpers.evaluation.stats import bootstrap_ci, paired_comparison, sign_flip_p_value
from helpers.models import EASE, BiasBaseline, ItemKNN, MostPopular, Recommender, model_class
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
def test_bootstrap_ci_contains_the_estimate_and_narrows_with_more_users():
    rng = np.random.default_rng(0)
    small = rng.random(100) < 0.6
    large = rng.random(10_000) < 0.6
    p_s, lo_s, hi_s = bootstrap_ci(small, np.arange(100), n_boot=500, seed=1)
    p_l, lo_l, hi_l = bootstrap_ci(large, np.arange(10_000), n_boot=500, seed=1)
    assert lo_s <= p_s <= hi_s and lo_l <= p_l <= hi_l
    assert (hi_l - lo_l) < 0.2 * (hi_s - lo_s)  # 100 x the users: about 1/10 the width
    assert (hi_s - lo_s) == pytest.approx(2 * 1.96 * np.sqrt(0.6 * 0.4 / 100), rel=0.3)  # normal approximation
    assert bootstrap_ci(small, np.arange(100), n_boot=500, seed=1) == (p_s, lo_s, hi_s)  # seeded


def test_bootstrap_resamples_users_not_rows():
    # two users: one with 99 hits, one with 1 miss; resampling users gives much wider intervals than rows
    values = np.r_[np.ones(99), 0.0]
    users = np.r_[np.zeros(99), 1]
    point, low, high = bootstrap_ci(values, users, n_boot=2000, seed=0)
    assert point == pytest.approx(0.99)
    assert low == 0.0 or low < 0.5  # a resample with only the second user exists
    _, low_rows, _ = bootstrap_ci(values, None, n_boot=2000, seed=0)
    assert low_rows > 0.95


def test_bootstrap_rmse_statistic():
    errors = np.array([1.0, -1.0, 2.0, 0.0])
    point, low, high = bootstrap_ci(errors ** 2, ["a", "a", "b", "c"], statistic="rmse")
    assert point == pytest.approx(np.sqrt(6 / 4)) and low <= point <= high


def test_paired_comparison_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(300), 2)
    a = (rng.random(600) < 0.7).astype(float)
    b = np.where(rng.random(600) < 0.2, 0.0, a)  # b loses 20% of a's hits
    res = paired_comparison(a, b, users, seed=0)
    assert res["diff"] == pytest.approx(a.mean() - b.mean())
    assert 0 < res["ci_low"] <= res["diff"] <= res["ci_high"]
    assert res["p_value"] == pytest.approx(1 / 10_001)  # no sign flip reaches it: the smallest p possible
    same = paired_comparison(a, a, users, seed=0)
    assert same["diff"] == 0 and same["p_value"] == 1.0
    noise = paired_comparison(a, np.roll(a, 2), users, seed=0)  # same hit rate, shuffled users
    assert noise["ci_low"] < 0 < noise["ci_high"] and noise["p_value"] > 0.05


def test_sign_flip_p_value_hand_computed():
    # differences (1, 1, 1): of the 8 sign patterns, 2 reach |sum| = 3 -> p = 1/4 (exactly, in the limit)
    assert sign_flip_p_value([1.0, 1.0, 1.0], n_permutations=20_000, seed=0) == pytest.approx(0.25, abs=0.01)
    assert sign_flip_p_value([0.0, 0.0]) == 1.0
    assert sign_flip_p_value(np.ones(40), n_permutations=999) == pytest.approx(1 / 1000)  # never reached


def test_paired_test_and_interval_agree_when_users_have_many_rows():
    # the statistic is row-weighted: a heavy user dominates; test and interval must say the same thing
    rng = np.random.default_rng(3)
    counts = rng.integers(1, 40, 200)
    users = np.repeat(np.arange(200), counts)
    a = (rng.random(len(users)) < 0.6).astype(float)
    b = np.where((rng.random(len(users)) < 0.05) & (counts[users] > 20), 0.0, a)  # b loses hits of heavy users
    res = paired_comparison(a, b, users, seed=0)
    assert (res["ci_low"] > 0) == (res["p_value"] < 0.05)


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
    assert (ranked["ci_low"] <= ranked["value"] + 1e-12).all() and (ranked["value"] <= ranked["ci_high"] + 1e-12).all()
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
    leaky.save(tmp_path / "popular.pth")
    with pytest.raises(ValueError, match="evaluation interactions"):
        load_or_train(["popular"], train, evaluation, tmp_path, log=None)
    MostPopular().fit(train).save(tmp_path / "popular.pth")
    models, sources = load_or_train(["popular", "ease"], train, evaluation, tmp_path, log=None)
    assert sources["source"].str.startswith("loaded").tolist() == [True, False]
