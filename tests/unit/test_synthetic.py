"""Invariants of the synthetic Electronics-shaped generator (helpers.synthetic).

Measured at scale 0.1 (seed 0): 129,295 rows, 115,763 users, 9,560 items, 92.2% single-interaction
users, item rank-frequency slope -0.97 (item_alpha 1.0), top 1% of items 50% of the rows.
"""
import numpy as np
import pandas as pd
import pytest

from helpers.data.synthetic import ELECTRONICS_SHAPE, electronics_like, shape_summary, user_exponent


@pytest.fixture(scope="module")
def tenth():
    return electronics_like(scale=0.1, seed=0)


def test_exact_sizes_and_columns(tenth):
    s = shape_summary(tenth)
    assert s["rows"] == round(ELECTRONICS_SHAPE["n_ratings"] * 0.1)
    assert s["users"] == round(ELECTRONICS_SHAPE["n_users"] * 0.1)
    assert s["items"] == ELECTRONICS_SHAPE["n_items"]          # every item of the catalogue is used
    assert list(tenth.columns) == ["user_id", "item_id", "rating", "timestamp", "item_category"]
    assert not tenth.duplicated(["user_id", "item_id"]).any()  # no repeated (user, item)
    assert set(np.unique(tenth["rating"])) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert tenth["rating"].mean() > 4.0                        # Electronics' skew towards 5 stars


def test_electronics_shape(tenth):
    s = shape_summary(tenth)
    assert 0.88 <= s["single_interaction_users"] <= 0.96      # measured 0.922 (Electronics: mostly one rating)
    assert -1.15 <= s["item_slope"] <= -0.85                   # power law, item_alpha = 1.0 (measured -0.97)
    assert 0.4 <= s["top1pct_item_share"] <= 0.6               # measured 0.50
    assert s["max_user_interactions"] <= min(ELECTRONICS_SHAPE["n_items"] // 4, 500)


def test_item_alpha_controls_the_slope():
    flat = shape_summary(electronics_like(scale=0.05, item_alpha=0.7, seed=1))["item_slope"]
    steep = shape_summary(electronics_like(scale=0.05, item_alpha=1.3, seed=1))["item_slope"]
    assert steep < flat - 0.3


def test_deterministic_per_seed():
    a = electronics_like(scale=0.01, seed=3)
    b = electronics_like(scale=0.01, seed=3)
    c = electronics_like(scale=0.01, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a[["user_id", "item_id"]].equals(c[["user_id", "item_id"]])


def test_planted_category_preference():
    def top_category_share(affinity):
        df = electronics_like(n_ratings=20_000, n_users=1_000, n_items=300, affinity=affinity, seed=0)
        share = df.groupby("user_id")["item_category"].agg(lambda s: s.value_counts(normalize=True).iloc[0])
        return share[df.groupby("user_id").size() >= 10].mean()

    # measured: 0.59 with affinity 0.8 (capped by 30-item categories and no repeats), 0.19 with none
    assert top_category_share(0.8) > top_category_share(0.0) + 0.3


def test_user_exponent_hits_the_mean():
    g = user_exponent(ELECTRONICS_SHAPE["n_ratings"] / ELECTRONICS_SHAPE["n_users"], 500)
    assert 3.5 < g < 4.5
    k = np.arange(1, 501.0)
    assert abs((k ** -g * k).sum() / (k ** -g).sum() - 1.1169) < 1e-3


@pytest.mark.parametrize("kwargs, message", [
    ({"n_ratings": 100, "n_users": 200}, "n_users <= n_ratings"),
    ({"n_ratings": 100, "n_users": 50, "n_items": 500}, "n_items <= n_ratings"),
    ({"scale": 0.01, "affinity": 1.5}, "affinity"),
    ({"scale": 0.01, "item_alpha": 0}, "item_alpha"),
])
def test_bad_sizes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        electronics_like(**kwargs)
