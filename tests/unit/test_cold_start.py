"""Splits that hold out 20% of any data, side features, the shared row of rare users, cold users and cold items."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from helpers.data import cold_start_split, global_split, make_split, resolve_split, sampled_candidates, split_summary
from helpers.data.features import FeatureTable, entity_tokens, feature_table
from helpers.evaluation import (
    cold_item_ranking,
    cold_start_table,
    evaluate_models,
    full_ranking,
    protocols,
    user_activity_buckets,
)
from helpers.models import CollabNN, MostPopular, load_model
from helpers.models.baselines import SegmentPopular
from helpers.notebooks.evaluation import activity_sentence, cold_start_models, cold_start_paragraph
from helpers.notebooks.reranking import rerank_users
from helpers.training import fit


def single_heavy(n_users=400, seed=0):
    """Most users with one interaction (as in Electronics), a few with several; genders for some."""
    rng = np.random.default_rng(seed)
    counts = np.where(rng.random(n_users) < 0.8, 1, rng.integers(2, 8, n_users))
    users = np.repeat([f"u{i}" for i in range(n_users)], counts)
    items = [f"i{j}" for j in rng.integers(0, 40, len(users))]
    gender = np.array(["F", "M", None], dtype=object)[rng.integers(0, 3, n_users)]
    df = pd.DataFrame({"user_id": users, "item_id": items}).drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)
    df["user_gender"] = df["user_id"].map(dict(zip([f"u{i}" for i in range(n_users)], gender)))
    df["item_category"] = df["item_id"].map(lambda i: f"c{int(i[1:]) % 4}")
    return df


def test_global_split_holds_out_twenty_percent_where_a_per_user_split_cannot():
    df = single_heavy()
    per_user = make_split(df, "random", seed=0)[1]
    train, ev = global_split(df, seed=0)
    assert len(ev) == round(0.2 * len(df)) and len(train) + len(ev) == len(df)
    assert len(per_user) / len(df) < 0.18         # single-interaction users all stay in train
    assert resolve_split(df, "auto") == "global" and make_split(df, "auto")[1].attrs["split"] == "global"
    s = split_summary(train, ev)
    cold = set(ev["user_id"]) - set(train["user_id"])
    assert s["evaluation_share"] == pytest.approx(0.2, abs=0.002) and s["evaluation_users_cold"] == len(cold)
    assert s["evaluation_rows_cold_user"] == int(ev["user_id"].isin(cold).sum())
    assert "cold users" in s["protocols"]
    assert global_split(df, seed=0)[1].equals(ev) and not global_split(df, seed=1)[1].equals(ev)


def test_auto_keeps_the_per_user_split_when_users_have_histories():
    df = pd.DataFrame({"user_id": np.repeat(["a", "b", "c"], 10), "item_id": [f"i{j}" for j in range(30)]})
    assert resolve_split(df, "auto") == "random"
    with pytest.raises(ValueError, match="unknown split"):
        resolve_split(df, "per-user")


def test_cold_start_split_moves_whole_users_and_items():
    df = single_heavy(seed=1)
    train, ev = cold_start_split(df, "global", user_share=0.1, item_share=0.1, seed=0)
    assert len(train) + len(ev) == len(df)
    gone_items = set(ev["item_id"]) - set(train["item_id"])
    assert len(gone_items) >= 4


def test_tokens_bucket_numbers_split_genres_and_skip_missing_values():
    df = pd.DataFrame({"user_id": ["a", "b", "a"], "item_id": ["x", "y", "z"], "user_gender": ["F", None, "M"],
                       "user_age": [23, 57, 23], "item_category": ["Action|Comedy", "Drama", None],
                       "year": [1994, 1999, None]})
    users = entity_tokens(df, "user")
    assert users["a"] == ["user_gender=F", "user_age=18"] and users["b"] == ["user_age=56"]
    items = entity_tokens(df, "item")
    assert items["x"] == ["item_category=Action", "item_category=Comedy", "year=1990"] and items["z"] == []
    table = feature_table(df, "item")
    new = pd.DataFrame({"item_id": ["q"], "item_category": ["Comedy|Horror"], "year": [1991]})
    ids, indptr, indices = table.encode(new)
    assert list(table.vocabulary[indices]) == ["item_category=Comedy", "year=1990"]  # Horror unknown: left out
    back = FeatureTable.from_state(table.state())
    assert (back.indices == table.indices).all() and list(back.ids) == list(table.ids)


def test_rare_users_share_one_row_and_the_model_file_keeps_the_features(tmp_path):
    df = single_heavy()
    model = fit(CollabNN(task="implicit", features=True, epochs=2, item_item=False, early_stopping=False), df)
    single = (np.diff(model.seen.indptr) < 2).sum()
    assert model.module.user_gmf.weight.shape[0] == model.n_users - single + 1
    new = pd.DataFrame({"user_id": ["n1", "n2"], "user_gender": ["F", "M"]})
    scores = model.score_new_users(new)
    assert scores.shape == (2, model.n_items) and not torch.allclose(scores[0], scores[1])
    path = model.save(tmp_path / "m.pth")
    back = load_model(path)
    assert torch.allclose(back.score_new_users(new), scores)
    assert torch.allclose(back.score_users(np.arange(5)), model.score_users(np.arange(5)))


def test_cold_users_get_the_models_cold_start_scores_in_full_ranking():
    train = pd.DataFrame({"user_id": ["a", "a", "b", "c"], "item_id": ["x", "y", "x", "x"]})
    ev = pd.DataFrame({"user_id": ["new", "b"], "item_id": ["x", "y"]})
    ranking = full_ranking(MostPopular().fit(train), ev, train, k=2)
    pos = dict(zip(ranking.user_ids, ranking.positions[:, 0]))
    assert pos["new"] == 0          # popularity puts x first for a cold user
    assert pos["b"] == 0            # y is b's only unseen item
    dropped = full_ranking(MostPopular().fit(train), ev, train, k=2, unknown="drop")
    assert list(dropped.user_ids) == ["b"]


def test_popularity_within_segment_and_on_new_items():
    train = pd.DataFrame({"user_id": ["f1", "f2", "m1", "m2", "m3"], "item_id": ["x", "x", "y", "y", "z"],
                          "user_gender": ["F", "F", "M", "M", "M"], "item_category": ["c1", "c1", "c2", "c2", "c1"]})
    model = SegmentPopular(global_weight=0.0).fit(train)
    cold = model.score_new_users(pd.DataFrame({"user_id": ["nf", "nm", "n?"], "user_gender": ["F", "M", None]}))
    items = list(model.item_ids)
    assert cold[0, items.index("x")] == pytest.approx(1.0) and cold[1, items.index("y")] == pytest.approx(2 / 3)
    assert cold[2, items.index("y")] == pytest.approx(2 / 5)        # unknown gender: the global shares
    new = model.score_new_items(np.array([0]), pd.DataFrame({"item_id": ["w", "v"], "item_category": ["c1", "c9"]}))
    assert new.shape == (1, 2) and new[0, 0] > new[0, 1] == 0


def test_cold_items_ranked_among_the_evaluations_cold_items():
    df = single_heavy(seed=2)
    train, ev = cold_start_split(df, "global", user_share=0.0, item_share=0.2, seed=0)
    popular = MostPopular().fit(train)
    ranking = cold_item_ranking(popular, train, ev)
    assert len(ranking.user_ids) > 0 and np.isinf(ranking.positions).all()   # cannot score unseen items
    segment = SegmentPopular().fit(train)
    assert np.isfinite(cold_item_ranking(segment, train, ev).positions).all()
    models = {"popular": popular, "popular_segment": segment}
    result = evaluate_models(models, train, ev, protocols=["full"], verbose=False, n_boot=50)
    table = cold_start_table(result, models, train, ev)
    assert {"warm users", "cold items"} <= set(table["slice"])
    assert (table[table["slice"] == "cold items"].set_index("model").loc["popular", "value"] == 0).all()


def test_activity_buckets_cope_with_single_interaction_users():
    df = single_heavy()
    buckets = user_activity_buckets(df)
    assert buckets.attrs["edges"][0] == 1 and len(buckets.cat.categories) >= 2
    ev = pd.DataFrame({"user_id": ["newcomer"], "item_id": ["i1"]})
    assert user_activity_buckets(df, evaluation=ev)["newcomer"] == "new"
    same = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"]})
    assert list(user_activity_buckets(same).cat.categories) == ["cold"]


@pytest.mark.parametrize("model_name", ["popular", "popular_segment"])
def test_cold_users_scored_once_per_profile_rank_as_when_scored_one_by_one(monkeypatch, model_name):
    # the profile path (one score vector per distinct side profile, positions counted from its sorted scores)
    # must give exactly the dense per-user path's positions and lists, ties (equal popularity) included
    df = single_heavy(n_users=600, seed=4)
    train, ev = global_split(df, seed=0)
    ev = pd.concat([ev, ev.head(40).assign(item_id=lambda f: [f"i{(int(i[1:]) + 7) % 40}" for i in f["item_id"]])])
    ev = ev.drop_duplicates(["user_id", "item_id"])  # some users with several held-out items
    model = (MostPopular() if model_name == "popular" else SegmentPopular()).fit(train)
    cold = set(ev["user_id"]) - set(train["user_id"])
    assert len(cold) > 50 and ev[ev["user_id"].isin(cold)].groupby("user_id").size().max() >= 2
    fast = full_ranking(model, ev, train, k=5)
    monkeypatch.setattr(protocols, "PROFILE_MAX", 0)
    dense = full_ranking(model, ev, train, k=5)
    np.testing.assert_array_equal(fast.positions, dense.positions)
    np.testing.assert_array_equal(fast.recommended, dense.recommended)
    np.testing.assert_array_equal(fast.list_users, dense.list_users)
    cand = sampled_candidates(train, ev, n_negatives=10, seed=0)
    side = protocols.user_side(ev)
    dense_s = protocols.sampled_ranking(model, cand, side=side)
    monkeypatch.setattr(protocols, "PROFILE_MAX", 4096)
    np.testing.assert_array_equal(protocols.sampled_ranking(model, cand, side=side).positions, dense_s.positions)


def test_profile_positions_hand_computed():
    table = np.array([[3.0, 1.0, 2.0, 2.0, 0.0]])  # one profile
    # row 0: items 2 and 3 (tied at 2.0): both behind item 0; pessimistic: the first at 1 + 1 (its tie), ...
    relevant = sp.csr_matrix(np.array([[0, 0, 1, 1, 0], [0, 1, 0, 0, 0], [1, 0, 0, 0, 1]], dtype=bool))
    pos = protocols._profile_positions(table, np.zeros(3, dtype=np.int64), relevant)
    # row 0: others >= 2.0 are {0} -> 1; places 0 and 1 -> 1, 2; row 1: others >= 1.0 are {0, 2, 3} -> 3;
    # row 2: item 0 first (0 others above), item 4 (0.0): others {1, 2, 3} -> 3, place 1 -> 4
    np.testing.assert_array_equal(pos, [[1, 2], [3, np.inf], [0, 4]])


def test_reranking_measures_warm_users_where_most_are_cold():
    df = single_heavy(seed=2)
    train, ev = global_split(df, seed=0)
    users, sentence = rerank_users(train, ev, "auto")
    known = set(train["user_id"])
    n_cold = len(set(ev["user_id"]) - known)
    assert n_cold / ev["user_id"].nunique() > 0.5 and set(users) <= known
    assert len(users) == ev["user_id"].nunique() - n_cold and f"{n_cold:,}" in sentence
    assert len(rerank_users(train, ev, "all")[0]) == ev["user_id"].nunique()
    warm_train, warm_ev = make_split(df, "random", seed=0)  # per-user split: every evaluation user is warm
    assert rerank_users(warm_train, warm_ev, "auto")[1].startswith("all ")
    with pytest.raises(ValueError, match="USERS='cold'"):
        rerank_users(train, ev, "cold")


def test_activity_sentence_counts_evaluation_users_per_bucket():
    train = pd.DataFrame({"user_id": ["a", "b", "b", "c", "c", "c", "d"], "item_id": list("xyzxyzx")})
    ev = pd.DataFrame({"user_id": ["a", "c", "e", "e"], "item_id": ["y", "w", "x", "y"]})
    activity = user_activity_buckets(train, edges=(1, 2), evaluation=ev)
    # evaluation users: e (new), a (1: cold), c (3: heavy); training-only users b and d are not counted
    assert activity_sentence(activity, ev) == ("evaluation users by their training interactions: new 0 (unknown to "
                                               "training) (1 users); cold <= 1 (1 users); medium 2 to 2 (0 users); "
                                               "heavy > 2 (1 users)")


def test_cold_start_paragraph_speaks_of_the_default_and_every_feature_model():
    models = {"popular": MostPopular(), "popular_segment": SegmentPopular(), "collabnn": CollabNN(),
              "collabnn_features": CollabNN(features=True)}
    assert cold_start_models(models) == ["collabnn", "collabnn_features"]
    assert cold_start_models({"popular": MostPopular(), "ease": MostPopular()}) == ["popular"]
    rows = [("collabnn", "warm users", 0.30, 0.28, 0.32), ("collabnn_features", "warm users", 0.31, 0.29, 0.33),
            ("popular", "warm users", 0.20, 0.19, 0.21), ("popular_segment", "warm users", 0.22, 0.21, 0.23),
            ("collabnn", "cold users", 0.10, 0.09, 0.11), ("collabnn_features", "cold users", 0.14, 0.13, 0.15),
            ("popular", "cold users", 0.10, 0.09, 0.11), ("popular_segment", "cold users", 0.12, 0.115, 0.125)]
    table = pd.DataFrame([{"model": m, "protocol": "full", "metric": "ndcg", "k": 10, "slice": s, "value": v,
                           "ci_low": lo, "ci_high": hi, "n_users": 100} for m, s, v, lo, hi in rows])
    lines = cold_start_paragraph(table, models).split("\n")
    assert len(lines) == 2 and lines[0].startswith("warm users (100 users): collabnn NDCG@10")
    assert "against popular_segment" in lines[0] and "(1.36x; above it, the intervals apart)" in lines[0]
    assert "cold users (100 users): collabnn NDCG@10" in lines[0] and "(0.83x; below it, the intervals apart)" in lines[0]
    assert lines[1].startswith("warm users (100 users): collabnn_features") and "(1.17x; above it" in lines[1]
