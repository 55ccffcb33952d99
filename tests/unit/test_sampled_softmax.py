"""The multinomial objective's sampled softmax (`catalogue_samples`, helpers.training.loaders.UserBatches):
every target is a candidate, the drawn items carry the logQ weight that makes the softmax's denominator an
unbiased estimate of the whole catalogue's, the whole catalogue drawn gives the exact loss, the batches are
seeded, the "auto" rule and bad values, dealing out across ranks, and a model trained this way finds a
planted preference."""
import numpy as np
import pandas as pd
import pytest
import torch
from test_train import planted  # tests/unit: the groups of users, each with its own items

from helpers.data.sampling import sampled_candidates
from helpers.evaluation import sampled_ranking
from helpers.models import MostPopular, make_model
from helpers.models.layers import History
from helpers.training.distributed import RankShard
from helpers.training.learner import train_model
from helpers.training.loaders import UserBatches
from helpers.training.losses import CATALOGUE_SAMPLES, CatalogueScores, multinomial_nll, resolve_catalogue_samples

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# 5 users (user 2 has no items) over 12 items
INDPTR, INDICES = np.array([0, 2, 3, 3, 6, 7]), np.array([0, 4, 1, 0, 2, 3, 4])


def loader(samples, batch_size=4, seed=1, n_items=12):
    return UserBatches(INDPTR, INDICES, n_items, batch_size=batch_size, shuffle=True, seed=seed, samples=samples)


def test_every_target_is_a_candidate_and_the_drawn_items_carry_the_logq_weight():
    for users, candidates, log_weights, y in loader(samples=5):
        union = sorted({int(i) for u in users.tolist() for i in INDICES[INDPTR[u]:INDPTR[u + 1]]})
        assert candidates[:len(union)].tolist() == union                       # the batch's items first, exact
        extra = candidates[len(union):].tolist()
        assert len(set(candidates.tolist())) == len(candidates) and not set(extra) & set(union)
        assert torch.all(log_weights[:len(union)] == 0)
        assert torch.allclose(log_weights[len(union):], torch.tensor(np.log((12 - len(union)) / len(extra))).float())
        assert y.shape == (len(users), len(candidates))
        for u, row in zip(users.tolist(), y):
            assert sorted(candidates[row.bool()].tolist()) == sorted(INDICES[INDPTR[u]:INDPTR[u + 1]].tolist())


def test_the_weighted_denominator_is_unbiased_and_the_whole_catalogue_gives_the_exact_loss():
    scores = torch.randn(12, generator=torch.Generator().manual_seed(0)) * 2
    users = torch.tensor([0, 1])
    batches = UserBatches(INDPTR, INDICES, 12, batch_size=2, samples=4)
    sums = []
    for seed in range(4000):
        _, cand, logw, _ = batches.sampled_batch(users, torch.Generator().manual_seed(seed))
        sums.append(torch.exp(scores[cand] + logw).sum())
    assert float(torch.stack(sums).mean()) == pytest.approx(float(torch.exp(scores).sum()), rel=0.02)

    whole = UserBatches(INDPTR, INDICES, 12, batch_size=2, samples=12).sampled_batch(users, torch.Generator().manual_seed(0))
    _, cand, logw, y = whole
    assert sorted(cand.tolist()) == list(range(12)) and torch.all(logw == 0)
    full = torch.randn(2, 12, generator=torch.Generator().manual_seed(1))
    dense = UserBatches(INDPTR, INDICES, 12, batch_size=2).targets(users)
    assert torch.isclose(multinomial_nll(full[:, cand] + logw, y), multinomial_nll(full, dense))


def test_sampled_batches_are_seeded_and_redrawn_every_pass():
    a, b = loader(samples=5), loader(samples=5)
    first, again = [t[1].tolist() for t in a], [t[1].tolist() for t in b]
    assert first == again
    assert [t[1].tolist() for t in a] != first      # the next pass draws other items


def test_auto_rule_and_bad_values():
    assert resolve_catalogue_samples(None, 943, 1_682) is None                 # ml-100k: the whole catalogue
    assert resolve_catalogue_samples(None, 610, 9_703) is None                 # the seed split: 6e6 scores per epoch
    assert resolve_catalogue_samples(None, 9_000, 17_600) == CATALOGUE_SAMPLES
    assert resolve_catalogue_samples(None, 100_000, 4 * CATALOGUE_SAMPLES - 1) is None   # too small to save much
    assert resolve_catalogue_samples(0, 9_000, 17_600) is None and resolve_catalogue_samples(300, 10, 10) == 300
    with pytest.raises(ValueError, match="catalogue_samples must be None"):
        resolve_catalogue_samples(-1, 10, 10)
    with pytest.raises(ValueError, match="catalogue_samples must be an integer >= 0"):
        make_model("collabnn", catalogue_samples=-5)
    with pytest.raises(ValueError, match="samples must be a positive number"):
        UserBatches(INDPTR, INDICES, 12, batch_size=2, samples=0)


def test_ranks_share_the_candidates_and_split_the_users():
    full = list(loader(samples=5))
    shards = [list(RankShard(loader(samples=5), r, 2)) for r in range(2)]
    for (users, cand, logw, y), (u0, c0, w0, y0), (u1, c1, w1, y1) in zip(full, *shards):
        assert torch.equal(c0, cand) and torch.equal(c1, cand) and torch.equal(w0, logw) and torch.equal(w1, logw)
        assert sorted(torch.cat([u0, u1]).tolist()) == sorted(users.tolist())
        assert torch.equal(torch.cat([y0, y1]).sum(0), y.sum(0))


def test_catalogue_scores_of_candidates_are_the_columns_of_the_whole_catalogue_plus_the_weights():
    train = pd.DataFrame({"user_id": ["a", "a", "b", "c"], "item_id": ["x", "y", "z", "x"]})
    model = train_model(train, "collabnn_factor", epochs=1, seed=0, early_stopping=False)
    net = CatalogueScores(model.module).eval()
    users, cand = torch.tensor([0, 2]), torch.tensor([2, 0])
    logw = torch.tensor([0.0, 1.5])
    with torch.no_grad():
        assert torch.allclose(net(users, cand, logw), net(users)[:, cand] + logw)
        assert torch.equal(net(users, torch.zeros(0, dtype=torch.long), torch.zeros(0)), net(users))  # empty: every item
    valid = UserBatches(np.array([0, 1, 2, 2]), np.array([0, 2]), 3, batch_size=8, whole_candidates=True)
    (users, cand, logw, y), = list(valid)          # the validation batches beside sampled training: every item
    assert len(cand) == len(logw) == 0 and y.shape == (2, 3) and valid.n_inp == 3


def test_a_model_trained_on_sampled_candidates_learns_the_planted_preference_reproducibly():
    train, test = planted()
    cand = sampled_candidates(train, test, 40, seed=0)
    pop = sampled_ranking(MostPopular().fit(train), cand, unknown="drop").mean("hr", 5)
    fits = [train_model(train, "collabnn_factor", epochs=15, batch_size=4, seed=0, catalogue_samples=8)
            for _ in range(2)]
    assert fits[0].config["loss"] == "multinomial"
    hr = sampled_ranking(fits[0], cand, unknown="drop").mean("hr", 5)
    # 4 users take about a third of the 120 items per batch, plus 8 drawn: most of the catalogue is never a
    # candidate of a batch, and still the groups are found (popularity is chance, about 0.12)
    assert hr > pop + 0.35, (hr, pop)
    assert all(torch.equal(a, b) for a, b in zip(fits[0].module.state_dict().values(), fits[1].module.state_dict().values()))
    assert fits[0].module.history.emb.sparse   # a sampled catalogue: the history table's gradient is sparse too
    whole = train_model(train, "collabnn_factor", epochs=1, batch_size=4, seed=0, catalogue_samples=0)
    assert not whole.module.history.emb.sparse  # the whole catalogue: dense, as the item table's


def test_the_history_sums_and_their_gradient_are_the_same_sparse_or_dense():
    torch.manual_seed(0)
    dense = History(INDPTR, INDICES, 12, 6, init_std=0.1, dropout=0.0)
    sparse = History(INDPTR, INDICES, 12, 6, init_std=0.1).sparse_gradient(True)
    sparse.load_state_dict(dense.state_dict())
    users = torch.tensor([3, 0, 2, 3])                       # user 2 has no items, user 3 twice
    weights = torch.randn(4, 6)
    outs = []
    for h in (dense, sparse):
        total, lens = h.sums(users)
        (total * weights).sum().backward()
        outs.append((total.detach(), lens, h.emb.weight.grad))
    (a, la, ga), (b, lb, gb) = outs
    assert torch.allclose(a, b, atol=1e-6) and torch.equal(la, lb) and torch.equal(b[2], torch.zeros(6))
    assert not ga.is_sparse and gb.is_sparse
    assert torch.allclose(ga, gb.to_dense(), atol=1e-6)
    assert set(gb.coalesce().indices()[0].tolist()) == {0, 2, 3, 4}   # the rows of users 0 and 3's items only
