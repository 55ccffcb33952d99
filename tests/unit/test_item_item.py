"""The item-item branch: EASE's weights in float32, the most popular items kept, its scale fitted on the
training likelihood, pairs = rows, and CollabNN's score = weight x factor score + branch (saved and loaded)."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from helpers.models import EASE, load_model, make_model
from helpers.models.item_item import LAMBDA_PER_INTERACTION, ItemItemBranch, default_lambda, ease_weights
from helpers.training import fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_seen(n_users=60, n_items=25, p=0.2, seed=0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_items)) < p).astype(np.int8))


def float64_ease(seen: sp.csr_matrix, lambda_: float) -> np.ndarray:
    x = seen.toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + lambda_ * np.eye(x.shape[1]))
    expected = -p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    return expected


@pytest.mark.parametrize("n_users, n_items", [(60, 25), (300, 40), (25, 60), (40, 300)])  # primal, primal, dual, dual
@pytest.mark.parametrize("lambda_", [0.5, 30.0])
def test_ease_weights_match_the_float64_solve_on_either_path(n_users, n_items, lambda_):
    seen = random_seen(n_users, n_items)
    weights = ease_weights(seen, lambda_)
    assert weights.dtype == torch.float32 and weights.shape == (n_items, n_items)
    np.testing.assert_allclose(weights.numpy(), float64_ease(seen, lambda_), atol=2e-6)


def test_ease_weights_ignore_users_without_a_kept_item_and_columns_select_items():
    seen = random_seen(25, 60)
    padded = sp.vstack([seen, sp.csr_matrix((500, 60), dtype=np.int8)]).tocsr()  # 500 empty users: still the dual path
    np.testing.assert_allclose(ease_weights(padded, 5.0).numpy(), float64_ease(seen, 5.0), atol=2e-6)
    items = np.array([3, 7, 11, 40])
    np.testing.assert_allclose(ease_weights(seen, 5.0, items).numpy(), float64_ease(seen[:, items], 5.0), atol=2e-6)


def test_ease_weights_reject_a_lambda_that_is_not_positive_and_a_singular_matrix():
    seen = random_seen()
    with pytest.raises(ValueError, match="lambda_ > 0"):
        ease_weights(seen, 0.0)
    with pytest.raises(ValueError, match="use a larger lambda_"):
        ease_weights(sp.hstack([seen, seen]).tocsr(), 1e-12)  # equal columns: X'X + 1e-12 I is singular in float32


def test_default_lambda_scales_with_the_interactions_per_item():
    seen = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=np.int8))  # items seen 3, 2, 1 times
    assert default_lambda(seen) == pytest.approx(LAMBDA_PER_INTERACTION * 2.0)
    assert default_lambda(seen, np.array([0])) == pytest.approx(LAMBDA_PER_INTERACTION * 3.0)


def test_branch_over_all_items_is_ease_scaled_and_pairs_agree_with_rows():
    seen = random_seen()
    branch = ItemItemBranch.fitted(seen, lambda_=20.0)
    assert branch.scale in ItemItemBranch.SCALES and len(branch.items) == seen.shape[1]
    df = pd.DataFrame({"user_id": seen.nonzero()[0].astype(str), "item_id": seen.nonzero()[1].astype(str)})
    ease = EASE(lambda_=20.0).fit(df)
    rows = seen[ease.user_ids.astype(int)][:, ease.item_ids.astype(int)]  # the rows in EASE's id order
    scores = ItemItemBranch.fitted(rows, lambda_=20.0).user_scores(rows)
    np.testing.assert_allclose(scores.numpy() / branch.scale, ease.score_users(np.arange(ease.n_users)).numpy(), atol=1e-4)
    users = np.repeat(np.arange(seen.shape[0]), 4)
    items = np.random.default_rng(1).integers(0, seen.shape[1], len(users))
    full = branch.user_scores(seen).numpy()
    np.testing.assert_allclose(branch.pair_scores(seen, users, items), full[users, items], atol=1e-5)


def test_branch_keeps_the_most_popular_items_and_scores_the_others_zero():
    seen = random_seen(p=0.3)
    counts = np.asarray(seen.sum(0)).ravel()
    branch = ItemItemBranch.fitted(seen, max_items=10)
    assert set(branch.items) == set(np.argsort(-counts, kind="stable")[:10])
    others = np.setdiff1d(np.arange(seen.shape[1]), branch.items)
    assert (branch.user_scores(seen).numpy()[:, others] == 0).all()
    assert branch.lambda_ == pytest.approx(default_lambda(seen, branch.items))


def test_the_scale_is_the_likelihood_minimiser():
    seen = random_seen(n_users=200, n_items=30, p=0.25, seed=3)
    branch = ItemItemBranch.fitted(seen, lambda_=5.0)
    raw = branch.user_scores(seen) / branch.scale
    target = torch.from_numpy(seen.toarray().astype(np.float32))
    nll = {s: float(-(torch.log_softmax(s * raw, 1) * target).sum()) for s in ItemItemBranch.SCALES}
    assert branch.scale == min(nll, key=nll.get)


def test_collabnn_adds_the_branch_to_the_weighted_factor_score_and_saves_it(tmp_path, ml100k):
    df = ml100k[ml100k["user_id"].isin(np.sort(ml100k["user_id"].unique())[:80])]
    model = fit(make_model("collabnn", epochs=2, early_stopping=False), df)
    assert model.item_item is not None and model.metadata["item_item"]["items"] == model.n_items
    users = np.arange(10)
    factor = super(type(model), model).score_users(users)
    expected = 0.4 * factor + model.item_item.user_scores(model.seen[users])
    assert torch.allclose(model.score_users(users), expected, atol=1e-5)
    items = np.arange(10)
    np.testing.assert_allclose(model.score_pairs(users, items), expected.numpy()[users, items], atol=1e-4)
    back = load_model(model.save(tmp_path / "m.pth"))
    assert back.item_item.scale == model.item_item.scale and torch.equal(back.score_users(users), model.score_users(users))
    plain = fit(make_model("collabnn_factor", epochs=2, early_stopping=False), df)
    assert plain.item_item is None and "item_item" not in plain.metadata
