"""Re-rankers (helpers/rerank.py): permutations of their input, weight 0 = no change, and each one
does what it claims on a hand-made case small enough to check by eye."""
import numpy as np
import pandas as pd
import pytest

from helpers import rerank
from helpers.evaluation.stats import bootstrap_mean_ci
from helpers.models import Recommender
from helpers.rerank import experiments

# six items: three Action, two Comedy, one Drama; popularity a (most) .. f (least)
ITEMS = pd.DataFrame({"item_id": list("abcdef"),
                      "item_category": ["Action", "Action", "Action|Comedy", "Comedy", "Comedy", "Drama"],
                      "item_title": ["A1", "A2", "AC", "C1", "C2", "D1"]})
POPULARITY = {"a": 6, "b": 5, "c": 4, "d": 3, "e": 2, "f": 1}


def _train():
    """u1 (F) watched Comedy and Drama, u2 (M) Action; popularity from filler users."""
    rows = [("u1", "x1", "Comedy"), ("u1", "x2", "Drama"), ("u2", "x3", "Action")]
    for item, n in POPULARITY.items():
        rows += [(f"p{j}", item, None) for j in range(n)]
    t = pd.DataFrame(rows, columns=["user_id", "item_id", "item_category"])
    gender = {"u1": "F", "u2": "M"}
    return t.assign(rating=4.0, user_gender=t["user_id"].map(gender))


def _items():
    extra = pd.DataFrame({"item_id": ["x1", "x2", "x3"], "item_category": ["Comedy", "Drama", "Action"],
                          "item_title": ["X1", "X2", "X3"]})
    return pd.concat([ITEMS, extra], ignore_index=True)


@pytest.fixture(scope="module")
def context():
    return rerank.build_context(_train(), items=_items())


def _candidates(users=("u1", "u2")):
    """Every user gets a..f scored 6..1 (model order = alphabetical), plus an extra column."""
    frames = [pd.DataFrame({"user_id": u, "item_id": list("abcdef"), "score": np.arange(6, 0, -1) * 1.5,
                            "rank": np.arange(1, 7), "note": [f"{u}-{i}" for i in "abcdef"]}) for u in users]
    return pd.concat(frames, ignore_index=True)


ALL = [("affinity", 0.7), ("popularity", 0.7), ("popularity", -0.7), ("mmr", 0.7), ("mmr", 1.0),
       ("calibration", 0.7), ("fairness", 1.0)]


def _pairs(df):
    return sorted(map(tuple, df[["user_id", "item_id", "score", "note"]].astype(str).to_numpy()))


@pytest.mark.parametrize("method,weight", ALL)
def test_reranker_returns_a_permutation_of_its_input(context, method, weight):
    cand = _candidates()
    before = cand.copy()
    out = rerank.rerank(cand, context, method, weight, k=3) if method in ("mmr", "calibration", "fairness") \
        else rerank.rerank(cand, context, method, weight)
    pd.testing.assert_frame_equal(cand, before)  # input untouched
    assert _pairs(out) == _pairs(cand)  # nothing invented, nothing lost, other columns carried
    for _, g in out.groupby("user_id"):
        assert g["rank"].tolist() == list(range(1, 7))


@pytest.mark.parametrize("method", rerank.RERANKERS)
def test_weight_zero_leaves_the_order_unchanged(context, method):
    cand = _candidates().sample(frac=1.0, random_state=0)  # row order shuffled; rank decides the order
    out = rerank.rerank(cand, context, method, 0.0)
    for u, g in out.groupby("user_id"):
        assert g["item_id"].tolist() == list("abcdef"), u


def test_order_comes_from_score_when_there_is_no_rank(context):
    cand = _candidates().drop(columns="rank").sample(frac=1.0, random_state=1)
    out = rerank.rerank_popularity(cand, context, 0.0)
    assert out[out.user_id == "u1"]["item_id"].tolist() == list("abcdef")


def test_mmr_with_full_diversity_weight_spreads_categories(context):
    out = rerank.rerank_mmr(_candidates(["u1"]), context, 1.0)
    top3 = out["item_id"].tolist()[:3]
    # a (Action) first by score; then the items least similar to what is chosen: Comedy d, Drama f
    assert top3 == ["a", "d", "f"]
    cats = set(ITEMS.set_index("item_id").loc[top3, "item_category"])
    assert cats == {"Action", "Comedy", "Drama"}
    base = rerank.list_measures(_candidates(["u1"]), context, k=3)["ild"].iloc[0]
    diverse = rerank.list_measures(out, context, k=3)["ild"].iloc[0]
    assert diverse == pytest.approx(1.0) and base < 0.5


def test_mmr_with_embeddings(context):
    emb = pd.DataFrame({"e0": [1.0, 1.0, 0.9, 0.0, 0.0, -1.0], "e1": [0.0, 0.1, 0.1, 1.0, 1.0, 0.0]},
                       index=list("abcdef"))
    ctx = rerank.build_context(_train(), items=_items(), embeddings=emb)
    out = rerank.rerank_mmr(_candidates(["u1"]), ctx, 1.0, similarity="embedding")
    assert out["item_id"].tolist()[:2] == ["a", "f"]  # f points the opposite way to a
    with pytest.raises(ValueError, match="embeddings"):
        rerank.rerank_mmr(_candidates(["u1"]), context, 0.5, similarity="embedding")


def test_calibration_lowers_kl_to_the_history(context):
    cand = _candidates(["u1"])  # u1's history: half Comedy, half Drama; the model ranks Action first
    before = rerank.list_measures(cand, context, k=3)["calibration_kl"].iloc[0]
    out = rerank.rerank_calibration(cand, context, 0.9, k=3)
    after = rerank.list_measures(out, context, k=3)["calibration_kl"].iloc[0]
    assert after < before / 5
    assert set(out["item_id"].tolist()[:3]) >= {"f"}  # the only Drama is pulled into the top 3


def test_kl_divergence_matches_hand_computation():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([1.0, 0.0, 0.0])
    q_tilde = 0.99 * q + 0.01 * p
    expected = 0.5 * np.log(0.5 / q_tilde[0]) + 0.5 * np.log(0.5 / q_tilde[1])
    assert rerank.kl_divergence(p, q) == pytest.approx(expected)
    assert rerank.kl_divergence(p, p) == pytest.approx(0.0)


def test_affinity_promotes_the_users_categories(context):
    out = rerank.rerank_affinity(_candidates(["u1", "u2"]), context, 0.9)
    u1 = out[out.user_id == "u1"]["item_id"].tolist()
    u2 = out[out.user_id == "u2"]["item_id"].tolist()
    # 0.1 s' + 0.9 affinity, s' = a..f 1, 0.8, .., 0: u1's history is half Comedy, half Drama, so c, d, e, f
    # (affinity 0.5) score 0.51, 0.49, 0.47, 0.45 and the Action-only a, b 0.1, 0.08
    assert u1 == ["c", "d", "e", "f", "a", "b"]
    # u2 watches Action: a, b, c (affinity 1) score 1, 0.98, 0.96 and d, e, f 0.04, 0.02, 0: the model order
    assert u2 == list("abcdef")


def test_popularity_blend_both_directions(context):
    cand = _candidates(["u1"]).assign(score=[1.0, 1.0, 1.0, 1.0, 1.0, 1.0], rank=[6, 5, 4, 3, 2, 1])
    up = rerank.rerank_popularity(cand, context, 1.0)["item_id"].tolist()
    down = rerank.rerank_popularity(cand, context, -1.0)["item_id"].tolist()
    assert up == list("abcdef") and down == list("fedcba")
    lt_base = rerank.list_measures(_candidates(["u1"]), context, k=2)["avg_popularity"].iloc[0]
    lt_down = rerank.list_measures(rerank.rerank_popularity(_candidates(["u1"]), context, -0.9), context,
                                   k=2)["avg_popularity"].iloc[0]
    assert lt_down < lt_base


def test_fairness_removes_a_group_specific_skew():
    """Both groups have the same history (half Action, half Comedy), but the model shows women
    Comedy and men Action: a stereotype the histories do not show."""
    rows = [(u, i, c) for u in ("f1", "f2", "m1", "m2") for i, c in (("h1", "Action"), ("h2", "Comedy"))]
    train = pd.DataFrame(rows, columns=["user_id", "item_id", "item_category"])
    train = train.assign(user_gender=train["user_id"].str[0].str.upper())
    items = pd.DataFrame({"item_id": ["a1", "a2", "c1", "c2", "h1", "h2"],
                          "item_category": ["Action", "Action", "Comedy", "Comedy", "Action", "Comedy"]})
    ctx = rerank.build_context(train, items=items)
    frames = []
    for u in ("f1", "f2", "m1", "m2"):
        order = ["c1", "c2", "a1", "a2"] if u.startswith("f") else ["a1", "a2", "c1", "c2"]
        frames.append(pd.DataFrame({"user_id": u, "item_id": order, "score": [4.0, 3.0, 2.0, 1.0]}))
    cand = pd.concat(frames, ignore_index=True)
    ranked = cand.assign(rank=cand.groupby("user_id").cumcount() + 1)
    before = rerank.stereotype_amplification(rerank.exposure_by_group(ranked, ctx, k=2))
    out = rerank.rerank_fairness(cand, ctx, 1.0, k=2)
    after = rerank.stereotype_amplification(rerank.exposure_by_group(out, ctx, k=2))
    assert before == pytest.approx(0.5)
    assert after < 0.1
    half = rerank.rerank_fairness(cand, ctx, 0.5, k=2)
    assert _pairs(half.assign(note="")) == _pairs(cand.assign(note=""))


def test_lists_of_different_lengths_keep_their_rows(context):
    cand = _candidates()
    cand = cand[~((cand.user_id == "u2") & cand.item_id.isin(["e", "f"]))]
    for method, weight in ALL:
        out = rerank.rerank(cand, context, method, weight)
        assert _pairs(out) == _pairs(cand), method
        assert out[out.user_id == "u2"]["rank"].tolist() == [1, 2, 3, 4]


def test_random_lists_stay_permutations():
    """Many users, ties and unknown users: every re-ranker keeps each user's item set."""
    rng = np.random.default_rng(0)
    cats = np.array(["A", "B", "C", "A|B", "C|D"])
    items = pd.DataFrame({"item_id": [f"i{j}" for j in range(40)], "item_category": cats[rng.integers(0, 5, 40)]})
    train = pd.DataFrame({"user_id": [f"u{j % 30}" for j in range(300)],
                          "item_id": [f"i{j}" for j in rng.integers(0, 40, 300)]})
    train = train.merge(items, on="item_id").assign(user_gender=lambda t: np.where(t.user_id.str[-1] < "5", "F", "M"))
    ctx = rerank.build_context(train, items=items)
    cand = pd.concat([pd.DataFrame({"user_id": f"u{u}", "item_id": rng.choice(items.item_id, 15, replace=False),
                                    "score": rng.integers(0, 4, 15).astype(float)}) for u in range(35)])
    for method, weight in ALL:
        out = rerank.rerank(cand, ctx, method, weight, **({"block": 7} if method in ("mmr", "calibration") else {}))
        assert sorted(map(tuple, out[["user_id", "item_id"]].to_numpy())) == \
            sorted(map(tuple, cand[["user_id", "item_id"]].to_numpy())), method


def test_errors_say_what_is_allowed(context):
    cand = _candidates()
    with pytest.raises(ValueError, match="choose one of"):
        rerank.rerank(cand, context, "shuffle", 0.5)
    with pytest.raises(ValueError, match=r"\[-1.0, 1.0\]"):
        rerank.rerank_popularity(cand, context, 2.0)
    with pytest.raises(ValueError, match="not in the context catalogue"):
        rerank.rerank_mmr(cand.assign(item_id="zz"), context, 0.5)
    with pytest.raises(ValueError, match="NaN"):
        rerank.rerank_affinity(cand.assign(score=np.nan), context, 0.5)
    with pytest.raises(ValueError, match="no column 'score'"):
        rerank.rerank_affinity(cand.drop(columns="score"), context, 0.5)


class _Reverse(Recommender):
    """Scores items by reverse alphabetical order: z best."""

    name = "reverse_test"

    def _fit(self, users, items, ratings):
        pass

    def score_users(self, users):
        import torch
        return torch.arange(self.n_items, dtype=torch.float32).expand(len(users), -1).clone()


def test_rescore_orders_by_the_second_model(context):
    train = pd.DataFrame({"user_id": ["u1", "u2", "p"] * 2 + ["p"] * 4,
                          "item_id": list("abcdefabcd")})
    model = _Reverse().fit(train)
    cand = _candidates()
    out = rerank.rescore(cand, model)
    assert _pairs(out.assign(score=out["retrieval_score"])) == _pairs(cand)
    assert out[out.user_id == "u1"]["item_id"].tolist() == list("fedcba")
    lists, timing = rerank.two_stage_recommend(model, model, ["u1", "u2"], n_candidates=4, k=2, exclude=None)
    assert lists.groupby("user_id").size().tolist() == [2, 2]
    assert set(timing) == {"retrieve_s", "rescore_s", "total_s"}


def test_list_measures_on_a_hand_made_case(context):
    cand = _candidates(["u1", "u2"])
    evaluation = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["b", "f", "e"]})
    m = rerank.list_measures(cand, context, evaluation, k=3)
    # u1: b at position 1 of 2 relevant -> ndcg = (1/log2 3) / (1 + 1/log2 3); u2: e not in top 3
    assert m.loc["u1", "hr"] == 1.0 and m.loc["u2", "hr"] == 0.0
    assert m.loc["u1", "ndcg"] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    assert m.loc["u1", "avg_popularity"] == pytest.approx(5.0)  # a, b, c: 6, 5, 4
    assert m.loc["u1", "group"] == "F"
    s = rerank.summarise_lists(cand, context, evaluation, k=3, n_boot=200)
    # 2 users, hr 1 and 0: resamples give 0, 0.5, 1 with probability 1/4, 1/2, 1/4; the 95% interval is (0, 1)
    assert s["hr"] == pytest.approx(0.5) and (s["hr_low"], s["hr_high"]) == (0.0, 1.0)
    assert 0 < s["coverage"] <= 1 and s["n_users"] == 2


def test_long_tail_and_bootstrap():
    ctx = rerank.build_context(_train(), items=_items())
    tail = rerank.long_tail_items(ctx, head_share=0.2)
    assert not tail[ctx.item_index(["a", "b"])].any() and tail[ctx.item_index(["f"])].all()
    mean, lo, hi = bootstrap_mean_ci(np.r_[np.zeros(50), np.ones(50), np.nan], n_boot=500)  # NaN: dropped
    half = 1.96 * np.sqrt(0.5 * 0.5 / 100)  # normal theory for 100 users, p = 0.5
    assert mean == 0.5 and (lo, hi) == pytest.approx((0.5 - half, 0.5 + half), abs=0.2 * half)


def test_fairness_on_a_separate_attribute_like_electronics_model_attr():
    """Electronics: categories for diversity/calibration, the product image's gender (model_attr) for
    fairness. Women are shown only 'Female'-image items though both groups bought the same mix."""
    items = pd.DataFrame({"item_id": [f"i{j}" for j in range(6)], "item_category": ["Headphones", "Camera"] * 3,
                          "model_attr": ["Female", "Female", "Male", "Male", "Female&Male", "Female&Male"]})
    rows = [(u, i) for u in ("f1", "f2", "m1", "m2") for i in ("i0", "i2", "i4")]
    train = pd.DataFrame(rows, columns=["user_id", "item_id"]).merge(items, on="item_id")
    train = train.assign(user_gender=train["user_id"].str[0].str.upper())
    ctx = rerank.build_context(train, items=items, fair_col="model_attr")
    assert ctx.fair_categories == ["Female", "Female&Male", "Male"] and ctx.categories == ["Camera", "Headphones"]
    cand = pd.concat([pd.DataFrame({"user_id": u, "item_id": ["i1", "i0", "i3", "i5"] if u[0] == "f"
                                    else ["i3", "i2", "i1", "i5"], "score": [4.0, 3.0, 2.0, 1.0]})
                      for u in ("f1", "f2", "m1", "m2")], ignore_index=True)
    before = rerank.stereotype_amplification(rerank.exposure_by_group(cand.assign(rank=[1, 2, 3, 4] * 4), ctx, k=2))
    after = rerank.stereotype_amplification(rerank.exposure_by_group(rerank.rerank_fairness(cand, ctx, 1.0, k=2), ctx, k=2))
    assert before == pytest.approx(0.5) and after < before / 2


def _mmr_by_hand(items, scores, context, weight):
    """MMR by its definition, one pick at a time: argmax (1 - w) s'_i - w max_{j chosen} cos(i, j) over
    category vectors, s' the scores scaled to [0, 1]; items in input order (ties: the earlier one)."""
    v = context.item_categories[context.item_index(items)].astype(np.float64)
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    sim = unit @ unit.T
    s = (scores - scores.min()) / (scores.max() - scores.min())
    chosen, left = [], list(range(len(items)))
    while left:
        value = [(1 - weight) * s[i] - weight * (max(sim[i, j] for j in chosen) if chosen else 0.0) for i in left]
        chosen.append(left.pop(int(np.argmax(value))))
    return [items[i] for i in chosen]


def test_ml100k_sized_lists_rerank_each_user_as_on_their_own():
    """943 users x 100 candidates (the ml-100k run), more users than one block of the greedy re-rankers (512):
    the per-user re-rankers give every user the list they give that user's candidates alone, MMR the list
    of its greedy definition; fairness, which couples users through group exposure, lowers the skew."""
    rng = np.random.default_rng(0)
    genres = np.array(["Action", "Comedy", "Drama", "Romance", "Thriller", "Sci-Fi", "Horror", "War"])
    n_items, n_users = 1682, 943
    cats = ["|".join(rng.choice(genres, rng.integers(1, 4), replace=False)) for _ in range(n_items)]
    items = pd.DataFrame({"item_id": [f"i{j}" for j in range(n_items)], "item_category": cats})
    train = pd.DataFrame({"user_id": [f"u{j}" for j in rng.integers(0, n_users, 60_000)],
                          "item_id": [f"i{j}" for j in rng.zipf(1.3, 60_000) % n_items]})
    train = train.assign(user_gender=np.where(train["user_id"].str[-1] < "4", "F", "M"))
    ctx = rerank.build_context(train, items=items)
    cand = pd.DataFrame({"user_id": np.repeat([f"u{j}" for j in range(n_users)], 100),
                         "item_id": [f"i{j}" for j in rng.integers(0, n_items, (n_users, 100)).ravel()],
                         "score": rng.normal(size=n_users * 100)})
    cand = cand.drop_duplicates(["user_id", "item_id"])
    by_user = dict(tuple(cand.groupby("user_id", sort=False)))

    def rows(df):
        return sorted(zip(df["user_id"], df["item_id"], df["score"]))

    users = ["u0", "u511", "u512", "u942"]  # first, both sides of the first block boundary, last
    for method, weight in [("affinity", 0.5), ("popularity", -0.5), ("mmr", 0.5), ("calibration", 0.5)]:
        out = rerank.rerank(cand, ctx, method, weight)
        assert rows(out) == rows(cand), method  # every user's candidates, each once
        for u in users:
            alone = rerank.rerank(by_user[u], ctx, method, weight)["item_id"].tolist()
            assert out.loc[out["user_id"] == u, "item_id"].tolist() == alone, (method, u)
            if method == "mmr":
                ordered = by_user[u].sort_values("score", ascending=False)
                assert alone == _mmr_by_hand(ordered["item_id"].to_numpy(), ordered["score"].to_numpy(), ctx, weight)
    ranked = cand.assign(rank=cand.groupby("user_id")["score"].rank(ascending=False, method="first"))
    fair = rerank.rerank(cand, ctx, "fairness", 1.0)
    assert rows(fair) == rows(cand)
    before = rerank.stereotype_amplification(rerank.exposure_by_group(ranked, ctx, k=10))
    after = rerank.stereotype_amplification(rerank.exposure_by_group(fair, ctx, k=10))
    assert after < before / 2, (before, after)


def test_sweep_reuses_run_variants_lists_and_gives_the_same_figures(context, monkeypatch):
    cand = _candidates()
    evaluation = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["d", "f", "b"]})
    sweeps = {"affinity": [0, 0.5, 1], "popularity": [-1, -0.5, 0, 0.5, 1], "mmr": [0, 1], "fairness": [0, 1]}
    fresh = experiments.sweep(cand, context, evaluation, sweeps, k=3)
    _, lists, per_user = experiments.run_variants(cand, context, evaluation, [("popularity", 0.5), ("mmr", 1.0)],
                                                  k=3, n_boot=50, base_label="model")
    calls = []
    original = experiments.rerankers.rerank
    monkeypatch.setattr(experiments.rerankers, "rerank", lambda *a, **kw: calls.append(a[2:4]) or original(*a, **kw))
    reused = experiments.sweep(cand, context, evaluation, sweeps, k=3, lists=lists, per_user=per_user,
                               base_label="model")
    pd.testing.assert_frame_equal(reused, fresh)
    assert sorted(calls) == sorted([("affinity", 0.5), ("affinity", 1), ("popularity", -1), ("popularity", -0.5),
                                    ("popularity", 1), ("fairness", 1)])  # no weight 0, nothing run_variants had
    base = fresh[fresh["weight"] == 0].drop(columns=["method"]).drop_duplicates()
    assert len(base) == 1  # weight 0 is the base list for every method
    assert base["ndcg"].iloc[0] == pytest.approx(per_user["model"]["ndcg"].mean())


def test_coverage_is_one_definition_in_the_evaluation_and_the_reranking():
    """The same top-k lists get the same catalogue coverage from evaluate_models and from the re-ranking measures,
    although the re-ranking context's catalogue also holds items seen only in evaluation (here 'new')."""
    from helpers.evaluation import evaluate_models
    from helpers.evaluation.protocols import full_ranking
    from helpers.models import MostPopular

    train = _train()
    evaluation = pd.DataFrame({"user_id": ["u1", "u2", "u1"], "item_id": ["a", "d", "new"]})
    items = pd.concat([_items(), pd.DataFrame({"item_id": ["new"], "item_category": ["Drama"], "item_title": ["N"]})])
    model = MostPopular().fit(train)
    result = evaluate_models({"popular": model}, train, evaluation, protocols=("full",), k=3, n_boot=50, verbose=False)
    evaluated = result.summary.query("metric == 'coverage'")["value"].iloc[0]
    ranking = full_ranking(model, evaluation, train, k=3)
    lists = pd.DataFrame([(u, model.item_ids[i], r + 1) for u, row in zip(ranking.user_ids, ranking.recommended)
                          for r, i in enumerate(row)], columns=["user_id", "item_id", "rank"])
    context = rerank.build_context(train, items=items)
    assert context.n_items == model.n_items + 1 and context.n_training_items == model.n_items
    assert rerank.measures.list_coverage(lists, context, k=3) == pytest.approx(evaluated)
    assert evaluated == pytest.approx(len(set(lists["item_id"])) / model.n_items)
