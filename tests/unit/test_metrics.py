"""helpers.metrics against values computed by hand (fractions written out next to each assert)."""
import math

import numpy as np
import pytest

from helpers import metrics as M

INF = np.inf


def test_relevant_positions_ties_go_against_the_relevant_item():
    # row 0: scores 0.9 (irrelevant), 0.5 (relevant), 0.5 (irrelevant, tied), 0.1, 0.3 (relevant)
    #        ranking with ties against relevant: 0.9, 0.5(irr), 0.5(rel) -> position 2; 0.3(rel) -> 3
    # row 1: every score equal, one relevant item: it is ranked last of 5 -> position 4
    scores = np.array([[0.9, 0.5, 0.5, 0.1, 0.3], [1.0, 1.0, 1.0, 1.0, 1.0]])
    relevant = np.array([[0, 1, 0, 0, 1], [0, 0, 1, 0, 0]], dtype=bool)
    pos = M.relevant_positions(scores, relevant)
    np.testing.assert_array_equal(pos, [[2, 3], [4, INF]])


def test_relevant_positions_excluded_items_are_removed():
    scores = np.array([[0.9, 0.8, 0.7, 0.6]])
    relevant = np.array([[0, 0, 1, 0]], dtype=bool)
    excluded = np.array([[1, 0, 1, 0]], dtype=bool)  # item 2 is relevant: never excluded
    np.testing.assert_array_equal(M.relevant_positions(scores, relevant, excluded), [[1]])


def test_relevant_positions_matches_a_brute_force_sort():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(30, 12)).astype(float)  # many ties
    relevant = rng.random((30, 12)) < 0.25
    pos = M.relevant_positions(scores, relevant)
    for row in range(30):
        # stable sort by (-score, relevant last): the pessimistic order
        order = sorted(range(12), key=lambda j: (-scores[row, j], relevant[row, j]))
        expected = sorted(order.index(j) for j in np.flatnonzero(relevant[row]))
        got = pos[row][np.isfinite(pos[row])]
        np.testing.assert_array_equal(got, expected)


def test_constant_model_gets_the_worst_rank_not_an_average():
    pos = M.relevant_positions(np.zeros((1, 100)), np.eye(1, 100, 0, dtype=bool))
    assert pos[0, 0] == 99 and M.hit_rate_at_k(pos, 10)[0] == 0.0


def test_ranking_metrics_hand_computed():
    # user 0: relevant at positions 0 and 2, 3 relevant in all (one never retrieved)
    # user 1: one relevant at position 5; user 2: nothing retrieved (1 relevant)
    pos = np.array([[0, 2, INF], [5, INF, INF], [INF, INF, INF]])
    n_rel = np.array([3, 1, 1])
    k = 3
    np.testing.assert_allclose(M.hit_rate_at_k(pos, k), [1, 0, 0])
    np.testing.assert_allclose(M.precision_at_k(pos, k), [2 / 3, 0, 0])
    np.testing.assert_allclose(M.recall_at_k(pos, k, n_rel), [2 / 3, 0, 0])
    dcg = 1 / math.log2(2) + 1 / math.log2(4)           # 1 + 0.5
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # min(3, 3) relevant at the top
    np.testing.assert_allclose(M.ndcg_at_k(pos, k, n_rel), [dcg / idcg, 0, 0])
    # AP@3: precision at the hits: 1/1 at position 0, 2/3 at position 2; divided by min(3, 3)
    np.testing.assert_allclose(M.average_precision_at_k(pos, k, n_rel), [(1 + 2 / 3) / 3, 0, 0])
    np.testing.assert_allclose(M.reciprocal_rank(pos), [1, 1 / 6, 0])
    np.testing.assert_allclose(M.reciprocal_rank(pos, k=3), [1, 0, 0])
    assert M.ndcg_at_k(pos, 10, n_rel)[1] == pytest.approx(1 / math.log2(7))


def test_ndcg_ideal_uses_min_k_and_relevant():
    # 5 relevant items, k = 2, hits at positions 0 and 1: perfect -> 1.0 (ideal over min(2, 5) items)
    pos = np.array([[0, 1, 7, 8, 9]], dtype=float)
    assert M.ndcg_at_k(pos, 2)[0] == pytest.approx(1.0)
    # one relevant at position 1: 1/log2(3) = 0.6309
    assert M.ndcg_at_k(np.array([[1.0]]), 10)[0] == pytest.approx(0.6309297535714575)


def test_single_relevant_metrics_agree_with_the_rank_formulas():
    ranks = np.array([0, 3, 9, 10, 50])
    pos = M.positions_from_ranks(ranks)
    np.testing.assert_allclose(M.hit_rate_at_k(pos, 10), [1, 1, 1, 0, 0])
    np.testing.assert_allclose(M.ndcg_at_k(pos, 10), [1, 1 / math.log2(5), 1 / math.log2(11), 0, 0])
    np.testing.assert_allclose(M.average_precision_at_k(pos, 10), [1, 1 / 4, 1 / 10, 0, 0])
    np.testing.assert_allclose(M.recall_at_k(pos, 10), M.hit_rate_at_k(pos, 10))


def test_metric_ranges_on_random_rankings():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(50, 40))
    relevant = rng.random((50, 40)) < 0.2
    relevant[:, 0] = True
    pos = M.relevant_positions(scores, relevant)
    for name, values in M.ranking_metrics(pos, 10).items():
        assert ((values >= 0) & (values <= 1)).all(), name


def test_k_must_be_positive():
    with pytest.raises(ValueError, match="k must be >= 1"):
        M.ndcg_at_k(np.array([[0.0]]), 0)


def test_rmse_and_mae_hand_computed():
    predicted, actual = [3.0, 4.0, 2.0, 5.0], [4.0, 4.0, 4.0, 4.0]  # errors -1, 0, -2, 1
    assert M.rmse(predicted, actual) == pytest.approx(math.sqrt((1 + 0 + 4 + 1) / 4))
    assert M.mae(predicted, actual) == pytest.approx((1 + 0 + 2 + 1) / 4)
    with pytest.raises(ValueError, match="NaN"):
        M.rmse([np.nan], [1.0])
    with pytest.raises(ValueError, match="shape"):
        M.mae([1.0, 2.0], [1.0])


def test_catalogue_coverage_hand_computed():
    assert M.catalogue_coverage(np.array([[0, 1], [1, 2], [2, 0]]), 10) == pytest.approx(0.3)
    assert M.catalogue_coverage(np.array([[0, -1]]), 4) == pytest.approx(0.25)  # -1 = empty slot


def test_intra_list_diversity_by_category_hand_computed():
    categories = ["Comedy", "Comedy|Drama", "Horror", ""]
    # list [0, 1, 2]: cos(0,1) = 1/sqrt(2), cos(0,2) = 0, cos(1,2) = 0 -> mean distance 1 - (1/sqrt2)/3
    # list [0, 0]: identical -> 0; list [2, 3]: item 3 has no category -> distance 1
    ild = M.intra_list_diversity_by_category(np.array([[0, 1, 2]]), categories)
    assert ild[0] == pytest.approx(1 - (1 / math.sqrt(2)) / 3)
    assert M.intra_list_diversity_by_category(np.array([[0, 0]]), categories)[0] == pytest.approx(0.0)
    assert M.intra_list_diversity_by_category(np.array([[2, 3]]), categories)[0] == pytest.approx(1.0)


def test_intra_list_diversity_by_embedding_range():
    emb = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    assert M.intra_list_diversity_by_embedding(np.array([[0, 1]]), emb)[0] == pytest.approx(2.0)  # opposite
    assert M.intra_list_diversity_by_embedding(np.array([[0, 2]]), emb)[0] == pytest.approx(1.0)  # orthogonal
    assert np.isnan(M.intra_list_diversity_by_embedding(np.array([[0]]), emb)[0])


def test_novelty_and_average_popularity_hand_computed():
    popularity = np.array([50, 25, 1, 0])
    rec = np.array([[0, 1], [2, 3]])
    # -log2(50/100) = 1, -log2(25/100) = 2 -> 1.5; -log2(1/100) twice (0 counts as 1) -> log2(100)
    np.testing.assert_allclose(M.novelty(rec, popularity, n_users=100), [1.5, math.log2(100)])
    np.testing.assert_allclose(M.average_popularity(rec, popularity), [37.5, 0.5])


@pytest.mark.parametrize("seed", range(5))
def test_positions_within_k_agree_with_the_full_sort_below_k(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=(40, 30)).astype(np.float32)  # many ties: pessimistic either way
    relevant = rng.random((40, 30)) < 0.2
    excluded = (rng.random((40, 30)) < 0.2) & ~relevant
    full = M.relevant_positions(scores, relevant, excluded)
    for k in (1, 3, 10):
        fast = M.relevant_positions(scores, relevant, excluded, within=k)
        assert fast.shape[1] == min(k, full.shape[1])
        below = full[:, :fast.shape[1]] < k
        assert np.array_equal(fast[below], full[:, :fast.shape[1]][below])
        assert (fast[~below & np.isfinite(full[:, :fast.shape[1]])] >= k).all()
        n_rel = relevant.sum(1)
        assert np.allclose(M.ndcg_at_k(fast, k, n_relevant=n_rel), M.ndcg_at_k(full, k, n_relevant=n_rel))


def test_counted_positions_equal_sorted_positions():
    """The comparison path (few relevant items a row) and the sort path give the same positions, ties included."""
    import torch

    from helpers import metrics
    gen = torch.Generator().manual_seed(0)
    for width in (1, 3, metrics.COUNT_MAX_RELEVANT, metrics.COUNT_MAX_RELEVANT + 5):
        others = torch.randint(0, 30, (40, 300), generator=gen).float()
        relevant = torch.full((40, 300), -torch.inf)
        n = torch.randint(0, width + 1, (40,), generator=gen)
        for i in range(40):
            idx = torch.randperm(300, generator=gen)[: int(n[i])]
            relevant[i, idx], others[i, idx] = others[i, idx], -torch.inf
        counted = metrics.positions_from_scores(others, relevant, n)
        limit, metrics.COUNT_MAX_RELEVANT = metrics.COUNT_MAX_RELEVANT, -1
        try:
            assert np.array_equal(counted, metrics.positions_from_scores(others, relevant, n))
        finally:
            metrics.COUNT_MAX_RELEVANT = limit
