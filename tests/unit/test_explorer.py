"""The explorer's logic and widget without a browser: exact reasons add up to the models' scores, the nearest and
popularity fallbacks, filters, the static view's tables, the widget reacting to a user and to a slider, and the
interpretation tables (item biases, PCA map, nearest items) on hand-made cases."""
import numpy as np
import pandas as pd
import pytest
import torch

from helpers import rerank
from helpers.models import model_class
from helpers.models.interpretation import bias_extremes, embedding_map, item_biases, item_embeddings, nearest_items
from helpers.notebooks import explorer as ex
from helpers.notebooks.explorer_widget import UserExplorer
from helpers.plots.interpretation import embedding_map_figure
from helpers.training.learner import train_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(epochs=2, batch_size=256, early_stopping=False)


def toy_split(seed=0):
    rng = np.random.default_rng(seed)
    n = 900
    df = pd.DataFrame({"user_id": [f"u{i}" for i in rng.integers(0, 40, n)],
                       "item_id": [f"i{i}" for i in rng.integers(0, 60, n)],
                       "rating": rng.integers(1, 6, n).astype(np.float32),
                       "timestamp": rng.integers(8.7e8, 8.9e8, n)}).drop_duplicates(["user_id", "item_id"])
    df["user_gender"] = np.where(df["user_id"].str[-1].isin(list("02468")), "F", "M")
    df["item_category"] = np.where(df["item_id"].str[-1].isin(list("012")), "A|B", "C")
    df["item_title"] = "Title " + df["item_id"]
    last = df.sample(frac=0.2, random_state=seed)
    return df.drop(last.index).reset_index(drop=True), last.reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted():
    train, evaluation = toy_split()
    models = {"collabnn": train_model(train, "collabnn", **FAST),
              "collabnn_features": train_model(train, "collabnn_features", **FAST),
              "collabnn_factor": train_model(train, "collabnn_factor", **FAST),
              "collabnn_mlp": train_model(train, "collabnn_mlp", **FAST),
              "mf_history": train_model(train, "mf", history=True, **FAST),
              "mf": train_model(train, "mf", **FAST),
              "mf_rating": train_model(train, "mf", task="rating", **FAST)}
    for name in ("ease", "itemknn", "popular", "bias"):
        models[name] = model_class(name)[0]().fit(train)
    items = pd.concat([train, evaluation])[["item_id", "item_category", "item_title"]].drop_duplicates("item_id")
    users = pd.concat([train, evaluation])[["user_id", "user_gender"]].drop_duplicates("user_id")
    data = ex.explorer_data(train, evaluation, items, users)
    context = rerank.build_context(train, items=items, users=users, embeddings=item_embeddings(models["collabnn"]))
    return data, models, context


EXACT = ["collabnn", "collabnn_features", "collabnn_factor", "mf_history", "ease", "itemknn"]


@pytest.mark.parametrize("name", EXACT)
def test_exact_reasons_add_up_to_the_score(fitted, name):
    data, models, _ = fitted
    model = models[name]
    for user in (0, 7, 23):
        unseen = np.setdiff1d(np.arange(model.n_items), model.seen[user].indices)
        hist, contributions, rest = model.history_contributions(user, unseen)
        np.testing.assert_array_equal(hist, model.seen[user].indices)
        assert contributions.shape == (len(unseen), len(hist))
        scores = model.score_users(np.array([user]))[0].numpy()[unseen]
        np.testing.assert_allclose(contributions.sum(1) + rest, scores, rtol=1e-5, atol=1e-5)
        assert np.abs(contributions).max() > 0  # the history does contribute


def test_ease_contribution_is_the_weight_of_each_history_item(fitted):
    _, models, _ = fitted
    ease = models["ease"]
    hist, contributions, rest = ease.history_contributions(3, np.array([5, 9]))
    weights = ease._weights.numpy()
    np.testing.assert_allclose(contributions, weights[np.ix_(hist, [5, 9])].T)
    assert not rest.any()


@pytest.mark.parametrize("name", ["collabnn_mlp", "mf", "mf_rating", "popular", "bias"])
def test_models_whose_score_does_not_split_over_the_history_say_so(fitted, name):
    _, models, _ = fitted
    assert models[name].history_contributions(0, np.array([1, 2])) is None


def test_recommendation_table_reasons_by_kind(fitted):
    data, models, _ = fitted
    user = ex.default_user(data)
    kinds = {name: ex.recommendation_table(models[name], data, user, k=5).attrs["reason"]
             for name in ("collabnn", "ease", "mf", "popular")}
    assert kinds == {"collabnn": "exact", "ease": "exact", "mf": "nearest", "popular": "popularity"}
    table = ex.recommendation_table(models["collabnn"], data, user, k=5)
    assert list(table["rank"]) == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(table["from_history"] + table["rest"], table["score"], rtol=1e-5, atol=1e-5)
    history_titles = set(ex.user_history(data, user)["title"])
    for why in table["why"]:  # every named reason is one of the user's history items
        for part in why.split(" · "):
            assert part.rsplit(" (", 1)[0] in history_titles
    seen = set(data.train.loc[data.train["user_id"] == user, "item_id"])
    assert not seen & set(table["item_id"])  # training items are excluded
    held = ex.held_out_items(data, user)
    assert [m == ex.HELD_OUT_MARK for m in table["held_out"]] == [i in held for i in table["item_id"]]
    popular = ex.recommendation_table(models["popular"], data, user, k=3)
    counts = models["popular"].item_popularity[models["popular"].item_index(popular["item_id"].to_numpy())]
    assert list(popular["why"]) == [f"{c:,} training interactions" for c in counts]


def test_decomposition_error_is_float_rounding(fitted):
    data, models, _ = fitted
    user = ex.default_user(data)
    items = ex.recommendation_table(models["collabnn"], data, user, k=10)["item_id"]
    assert ex.decomposition_error(models["collabnn"], user, items) < 1e-4
    assert ex.decomposition_error(models["mf"], user, items) is None


def test_cold_user_gets_the_cold_start_reason(fitted):
    data, models, _ = fitted
    why, kind = ex.reasons(models["collabnn"], data, "nobody", ["i1", "i2"])
    assert kind == "cold start" and len(why) == 2


def test_default_user_is_a_typical_one_and_filters_match(fitted):
    data, _, _ = fitted
    user = ex.default_user(data)
    eligible = data.users[(data.users["training"] > 0) & (data.users["held_out"] > 0)]
    distance = (eligible["training"] - eligible["training"].median()).abs()
    assert abs(data.users.loc[user, "training"] - eligible["training"].median()) == distance.min()
    women = ex.matching_users(data, gender="F")
    assert women and all(data.users.loc[u, "user_gender"] == "F" for u in women)
    busy = ex.matching_users(data, activity=(15, 18))
    assert all(15 <= data.users.loc[u, "training"] <= 18 for u in busy)
    assert ex.matching_users(data, query="U1") == sorted(u for u in data.users.index if "u1" in u)


def test_history_is_newest_first_with_titles(fitted):
    data, _, _ = fitted
    user = ex.default_user(data)
    history = ex.user_history(data, user)
    assert len(history) == data.users.loc[user, "training"]
    assert list(history["title"]) == ["Title " + i for i in history["item_id"]]
    assert history["date"].is_monotonic_decreasing


def test_reranked_table_weight_zero_keeps_the_order_and_fairness_is_refused(fitted):
    data, models, context = fitted
    user = ex.default_user(data)
    base = ex.recommendation_table(models["collabnn"], data, user, k=5)
    same = ex.reranked_table(models["collabnn"], context, data, user, "popularity", 0.0, k=5)
    assert list(same["item_id"]) == list(base["item_id"])
    tail = ex.reranked_table(models["collabnn"], context, data, user, "popularity", -1.0, k=5)
    pop = lambda t: models["collabnn"].item_popularity[models["collabnn"].item_index(t["item_id"].to_numpy())].mean()
    assert pop(tail) < pop(base)
    with pytest.raises(ValueError, match="fairness balances groups"):
        ex.reranked_table(models["collabnn"], context, data, user, "fairness", 0.5)


def test_similar_items_from_embeddings_or_co_occurrence(fitted):
    data, models, _ = fitted
    near = ex.similar_items(models["collabnn"], data, "i1", k=4)
    assert near.attrs["basis"] == "embedding cosine" and len(near) == 4 and "i1" not in set(near["item_id"])
    assert near["similarity"].is_monotonic_decreasing
    co = ex.similar_items(models["ease"], data, "i1", k=4)
    assert co.attrs["basis"] == "co-occurrence cosine"
    assert ((co["similarity"] >= 0) & (co["similarity"] <= 1)).all()
    with pytest.raises(ValueError, match="unknown to this model"):
        ex.co_occurrence_neighbours(models["ease"].seen, models["ease"].item_ids, "nope")


def test_co_occurrence_cosine_known_values():
    import scipy.sparse as sp
    seen = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0]]))
    out = ex.co_occurrence_neighbours(seen, np.array(["a", "b", "c"]), "a", k=2)
    # a is had by 3 users, b by 2 (both also a), c by 1 (also a): cos(a, b) = 2 / sqrt(6), cos(a, c) = 1 / sqrt(3)
    np.testing.assert_allclose(out["similarity"], [2 / np.sqrt(6), 1 / np.sqrt(3)])
    assert list(out["item_id"]) == ["b", "c"]


def test_widget_reacts_to_a_user_and_to_a_slider(fitted):
    data, models, context = fitted
    chosen = {name: models[name] for name in ("collabnn", "ease", "mf")}
    explorer = UserExplorer(data, chosen, context, k=5, n_candidates=30)
    first = explorer.user.value
    assert f"User {first}" in explorer.header.value
    assert "Title " in explorer.history.value and "Title " in explorer.lists.value
    assert "(exact)" in explorer.why.value and "(nearest)" in explorer.why.value
    before = explorer.reranked.value
    explorer.weights["popularity"].value = -1.0
    assert explorer.reranked.value != before and "popularity -1.00" in explorer.reranked.value
    other = next(u for u in explorer.user.options if u != first)
    explorer.user.value = other
    assert f"User {other}" in explorer.header.value
    explorer.gender.value = "F"
    assert all(data.users.loc[u, "user_gender"] == "F" for u in explorer.user.options)
    assert data.users.loc[explorer.user.value, "user_gender"] == "F"
    explorer.item.value = explorer.item.options[-1][1]
    assert "embedding cosine" in explorer.similar.value
    with pytest.raises(ValueError, match="at least one model"):
        UserExplorer(data, {}, context)


def test_view_summary_states_the_tables_numbers(fitted):
    data, models, _ = fitted
    user = ex.default_user(data)
    tables = {name: ex.recommendation_table(models[name], data, user, k=10) for name in ("collabnn", "popular")}
    text = ex.view_summary(data, user, tables, k=10)
    hits = ex.hits(tables)
    assert f"collabnn {hits['collabnn']}, popular {hits['popular']}" in text
    assert f"{data.users.loc[user, 'training']:,} training interactions" in text


def test_item_biases_and_extremes(fitted):
    data, models, _ = fitted
    assert item_biases(models["ease"]) is None
    biases = item_biases(models["mf_rating"])
    np.testing.assert_allclose(biases.to_numpy(), models["mf_rating"].module.item_bias.weight[:, 0].detach().numpy())
    assert item_biases(models["bias"]) is not None and item_biases(models["collabnn"]) is not None
    toy = pd.Series([0.5, -1.0, 2.0, 0.1], index=["a", "b", "c", "d"])
    out = bias_extremes(toy, n=1)
    assert list(zip(out["item_id"], out["end"])) == [("c", "highest"), ("b", "lowest")]
    few = bias_extremes(toy, pd.Series({"a": 5, "b": 1, "c": 1, "d": 9}), n=1, min_interactions=2)
    assert list(few["item_id"]) == ["a", "d"]


def test_embedding_map_known_values():
    # points on a line y = 2x: all variance on the first component
    table = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0.0, 2.0, 4.0, 6.0]}, index=list("abcd"))
    coords = embedding_map(table)
    assert coords.attrs["explained_variance"][0] == pytest.approx(1.0)
    np.testing.assert_allclose(np.abs(coords["pc1"]), np.sqrt(5) * np.array([1.5, 0.5, 0.5, 1.5]))
    np.testing.assert_allclose(coords["pc2"], 0, atol=1e-12)
    assert list(embedding_map(table, ["c", "a", "zz"]).index) == ["c", "a"]
    with pytest.raises(ValueError, match="at least 2 items"):
        embedding_map(table, ["a"])
    fig = embedding_map_figure(coords, pd.Series({"a": "A", "b": "B"}), "t")
    assert {t.get_text() for t in fig.axes[0].texts} <= {"A", "B"}


def test_nearest_items_known_values():
    table = pd.DataFrame([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]], index=["a", "b", "c", "d"])
    out = nearest_items(table, "a", k=3)
    assert list(out["item_id"]) == ["b", "c", "d"]
    assert out["similarity"].iloc[-1] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="no embedding"):
        nearest_items(table, "zz")


def test_nothing_changes_the_inputs(fitted):
    data, models, _ = fitted
    before = data.train.copy()
    weights = models["ease"]._weights.clone()
    ex.recommendation_table(models["ease"], data, ex.default_user(data))
    pd.testing.assert_frame_equal(data.train, before)
    assert torch.equal(models["ease"]._weights, weights)
