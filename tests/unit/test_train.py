"""Training: negatives, batches, seeds, devices, parameter checks, and a planted preference that the
model must find (clearly better than popularity)."""
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.data.sampling import NegativeSampler, sampled_candidates
from helpers.evaluation import sampled_ranking
from helpers.models import MostPopular, make_model
from helpers.notebooks.training import check_parameters
from helpers.training import callbacks, losses
from helpers.training.device import resolve_device
from helpers.training.learner import find_lr, resolved_config, train_model
from helpers.training.loaders import TensorBatches
from helpers.training.losses import GroupRankingLoss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_negative_sampler_never_returns_a_positive_and_matches_the_ratio():
    rng = np.random.default_rng(0)
    n_users, n_items = 50, 30
    # dense users (up to 28 of 30 items) make collisions frequent
    users = np.concatenate([np.full(28, 0), rng.integers(1, n_users, 600)])
    items = np.concatenate([np.arange(28), rng.integers(0, n_items, 600)])
    pos = set(zip(users.tolist(), items.tolist()))
    for ratio in (1, 4, 7):
        sampler = NegativeSampler(users, items, n_items, ratio)
        nu, ni = sampler.draw(np.random.default_rng(ratio))
        assert len(nu) == len(ni) == ratio * len(users)
        assert np.array_equal(np.bincount(nu, minlength=n_users), ratio * np.bincount(users, minlength=n_users))
        assert not any((u, i) in pos for u, i in zip(nu.tolist(), ni.tolist()))
        assert set(ni[nu == 0].tolist()) <= {28, 29}
        assert ni.min() >= 0 and ni.max() < n_items
    with pytest.raises(ValueError, match="every item"):
        NegativeSampler(np.zeros(3, int), np.arange(3), 3, 4)


def test_batches_redraw_negatives_every_epoch_and_keep_every_positive():
    rng = np.random.default_rng(1)
    users, items = rng.integers(0, 20, 300), rng.integers(0, 50, 300)
    users, items = np.unique(np.c_[users, items], axis=0).T
    loader = TensorBatches(users, items, np.ones(len(users)), batch_size=64, shuffle=True,
                           sampler=NegativeSampler(users, items, 50, 4), seed=0)
    epochs = []
    for _ in range(2):
        x, y = map(torch.cat, zip(*loader))
        epochs.append((x, y))
        assert len(x) == 5 * len(users) and len(loader) == -(-5 * len(users) // 64)  # drop_last=False here
    (x1, y1), (x2, y2) = epochs
    assert (y1 == 1).sum() == (y2 == 1).sum()
    neg1 = {tuple(r) for r in x1[y1 == 0].tolist()}
    neg2 = {tuple(r) for r in x2[y2 == 0].tolist()}
    assert neg1 != neg2  # re-drawn
    assert abs((y1 == 0).float().mean().item() - 0.8) < 0.01  # ratio 4


def test_grouped_batches_hold_whole_groups_of_one_positive_and_its_own_negatives():
    rng = np.random.default_rng(2)
    users, items = np.unique(np.c_[rng.integers(0, 20, 300), rng.integers(0, 50, 300)], axis=0).T
    sampler = NegativeSampler(users, items, 50, 4)
    loader = TensorBatches(users, items, np.ones(len(users)), batch_size=64, shuffle=True, sampler=sampler,
                           seed=0, grouped=True)
    assert loader.bs == 60 and loader.group == 5  # rounded down to whole groups
    firsts = []
    for _ in range(2):
        batches = list(loader)
        assert all(len(xb) % 5 == 0 for xb, _ in batches)
        x, y = (torch.cat(t) for t in zip(*batches))
        g, t = x.view(-1, 5, 2), y.view(-1, 5)
        assert len(g) == len(users)
        assert (t[:, 0] == 1).all() and (t[:, 1:] == 0).all()
        assert (g[:, :, 0] == g[:, :1, 0]).all()  # one user per group
        assert not sampler.is_positive(g[:, 1:, 0].reshape(-1).numpy(), g[:, 1:, 1].reshape(-1).numpy()).any()
        assert sorted(map(tuple, g[:, 0].tolist())) == sorted(zip(users.tolist(), items.tolist()))
        firsts.append(g[:, 1:, 1].clone())
    assert not torch.equal(firsts[0], firsts[1])  # negatives re-drawn
    with pytest.raises(ValueError, match="NegativeSampler"):
        TensorBatches(users, items, np.ones(len(users)), 64, grouped=True)


def test_ranking_losses_match_their_definitions():
    s = torch.tensor([2.0, 1.0, 0.0, -1.0, 3.0, 0.5])
    y = torch.tensor([1.0, 0, 0, 1, 0, 0])
    soft = GroupRankingLoss("softmax", 3)(s, y)
    want = -(torch.log_softmax(s[:3], 0)[0] + torch.log_softmax(s[3:], 0)[0]) / 2
    assert torch.isclose(soft, want)
    bpr = GroupRankingLoss("bpr", 3)(s, y)
    sig = torch.nn.functional.logsigmoid
    want = -(sig(s[0] - s[1:3]).mean() + sig(s[3] - s[4:]).mean()) / 2
    assert torch.isclose(bpr, want)
    with pytest.raises(ValueError, match="softmax"):
        GroupRankingLoss("hinge", 3)


@pytest.mark.parametrize("loss", ["softmax", "bpr"])
def test_ranking_losses_learn_the_planted_preference(loss):
    train, test = planted()
    cand = sampled_candidates(train, test, 40, seed=0)
    model = train_model(train, "collabnn", task="implicit", loss=loss, epochs=15, batch_size=512, seed=0,
                        valid=test, early_stopping=False)  # `test` only gives the loss curve: nothing is chosen on it
    hr = sampled_ranking(model, cand, unknown="drop").mean("hr", 5)
    assert model.losses["valid_loss"].notna().all()
    # measured (training seeds 0, 1, 2): softmax 0.73, 0.69, 0.71; bpr 0.70, 0.73, 0.70; popularity 0.096
    assert hr > 0.45, hr


def test_loss_option_is_checked():
    train, _ = planted(n_users=40)
    with pytest.raises(ValueError, match="unknown loss"):
        train_model(train, "collabnn", task="implicit", loss="hinge", epochs=1)
    ratings = train.assign(rating=3.0)
    with pytest.raises(ValueError, match="rating task"):
        train_model(ratings, "mf", task="rating", loss="softmax", epochs=1)


def test_same_seed_same_model_other_seed_other_model():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user_id": rng.integers(0, 30, 400).astype(str), "item_id": rng.integers(0, 40, 400).astype(str)})
    df = df.drop_duplicates()
    a = train_model(df, "collabnn", epochs=1, batch_size=256, seed=3).score_users(np.arange(5))
    b = train_model(df, "collabnn", epochs=1, batch_size=256, seed=3).score_users(np.arange(5))
    c = train_model(df, "collabnn", epochs=1, batch_size=256, seed=4).score_users(np.arange(5))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def planted(n_users=240, n_items=120, groups=4, per_user=12, seed=0):
    """Users in `groups` groups, each interacting only with its group's items, uniformly: item
    popularity carries no signal about a user's group, the interactions do."""
    rng = np.random.default_rng(seed)
    size = n_items // groups
    rows = []
    for u in range(n_users):
        chosen = rng.choice(size, per_user, replace=False) + (u % groups) * size
        rows += [(f"u{u}", f"i{i}") for i in chosen]
    df = pd.DataFrame(rows, columns=["user_id", "item_id"])
    last = df.groupby("user_id").tail(1)
    return df.drop(last.index).reset_index(drop=True), last.reset_index(drop=True)


def test_planted_preference_is_learned_clearly_better_than_popularity():
    train, test = planted()
    cand = sampled_candidates(train, test, 40, seed=0)
    pop = sampled_ranking(MostPopular().fit(train), cand, unknown="drop").mean("hr", 5)
    model = train_model(train, "collabnn", task="implicit", epochs=15, batch_size=512, seed=0)
    hr = sampled_ranking(model, cand, unknown="drop").mean("hr", 5)
    # about 7 of the 40 negatives are unseen items of the user's group, indistinguishable from the held-out
    # item, so HR@5 tops out near 5/8 = 0.62; popularity is chance, about 5/41 = 0.12.
    # measured (seed 0, 15 epochs of 512 users, the multinomial default): 0.73; popularity 0.096
    assert pop < 0.2
    assert hr > pop + 0.35, (hr, pop)


def test_rating_task_predicts_the_planted_rating_structure():
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 60, 3000), rng.integers(0, 60, 3000)
    rating = np.where((users % 2) == (items % 2), 5.0, 1.0) + rng.normal(0, 0.3, 3000)
    df = pd.DataFrame({"user_id": users.astype(str), "item_id": items.astype(str), "rating": rating.clip(1, 5)})
    df = df.drop_duplicates(["user_id", "item_id"])
    train, test = df.iloc[:2000], df.iloc[2000:]
    model = train_model(train, "collabnn", task="rating", epochs=10, batch_size=256, seed=0)
    rmse = np.sqrt(np.mean((model.score(test) - test["rating"].to_numpy()) ** 2))
    baseline = np.sqrt(np.mean((train["rating"].mean() - test["rating"].to_numpy()) ** 2))  # about 2.0
    assert rmse < 0.5 * baseline, (rmse, baseline)
    lo, hi = model.config["y_range"]
    assert lo < 1 and hi > 5 and "rmse" not in model.losses.columns  # no valid set given -> no rmse
    assert model.losses["train_loss"].iloc[-1] < 0.5 * model.losses["train_loss"].iloc[0]


def test_device_choice_and_parameter_checks():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    ok = dict(dataset="ml-100k", split="random", model="collabnn", task="implicit", device="auto")
    assert check_parameters(**ok, epochs=1, layers=[8]) == {"epochs": 1, "layers": [8], "seed": 0, "device": "auto",
                                                             "validation": "random"}
    assert check_parameters(**{**ok, "split": "temporal"}, patience=3)["validation"] == "temporal"  # the split's rule
    for key, bad, msg in (("dataset", "ml-1m", "unknown DATASET 'ml-1m'; choose one of"),
                          ("split", "kfold", "unknown SPLIT 'kfold'"), ("model", "gpt", "unknown MODEL 'gpt'"),
                          ("task", "clicks", "unknown TASK 'clicks'"), ("device", "tpu", "unknown DEVICE 'tpu'")):
        with pytest.raises(ValueError, match=msg):
            check_parameters(**{**ok, key: bad})
    with pytest.raises(ValueError, match="LAYERS must be a list"):
        check_parameters(**ok, layers=8)
    with pytest.raises(ValueError, match="has no hidden layers"):
        check_parameters(**{**ok, "model": "mf"}, layers=[8])
    for kwargs, msg in ((dict(epochs=0), "EPOCHS must be >= 1"), (dict(patience=0), "PATIENCE must be a positive"),
                        (dict(tune_budget="soon"), "budget 'soon' is not a duration")):
        with pytest.raises(ValueError, match=msg):
            check_parameters(**ok, **kwargs)
    with pytest.raises(ValueError, match="TUNE has no search space for MODEL 'neumf' on TASK 'rating'"):
        check_parameters(**{**ok, "model": "neumf", "task": "rating"}, tune_budget="1m")


def test_find_lr_leaves_the_model_untouched():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user_id": rng.integers(0, 30, 600).astype(str), "item_id": rng.integers(0, 40, 600).astype(str)})
    df = df.drop_duplicates()
    model = make_model("mf", epochs=1, batch_size=64)
    lr = find_lr(model, df, show_plot=False, num_it=30)
    assert 1e-7 < lr < 10
    assert model.module is None and model.n_users == 0  # the probe was a copy


# --------------------------------------------------------------------------- the multinomial objective
def test_multinomial_nll_matches_its_definition():
    from helpers.training.losses import multinomial_nll

    s = torch.tensor([[2.0, 0.0, -1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    y = torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0]])
    logp = torch.log_softmax(s, 1)
    want = -(logp[0, 0] + logp[0, 3] + logp[1, 1]) / 3   # mean over the 3 (user, item) targets
    assert torch.isclose(multinomial_nll(s, y), want)
    assert torch.isclose(multinomial_nll(s[1:], y[1:]), torch.log(torch.tensor(4.0)))  # uniform: ln(n_items)


def test_multinomial_nll_training_path_equals_the_masked_definition_bit_for_bit():
    """Training batches (0 / 1 targets) skip the mask of the zero targets: the same value and gradient, exactly."""
    from helpers.training.losses import multinomial_nll

    g = torch.Generator().manual_seed(1)
    s = (torch.randn(64, 300, generator=g) * 4).requires_grad_()
    y = (torch.rand(64, 300, generator=g) < 0.05).float()
    y[0] = 0.0  # a row without targets
    masked = -(torch.log_softmax(s, 1).masked_fill(y == 0, 0.0) * y).sum() / y.sum()
    (want,) = torch.autograd.grad(masked, s)
    got = multinomial_nll(s, y)
    (grad,) = torch.autograd.grad(got, s)
    assert torch.equal(got, masked) and torch.equal(grad, want)


def test_multinomial_nll_with_excluded_items_matches_the_log_softmax_over_the_rest():
    """Validation batches (-1: the user's training items) take a logsumexp path: the same value as the definition,
    also for a row with no held-out item and a row whose every other item is excluded."""
    from helpers.training.losses import multinomial_nll

    g = torch.Generator().manual_seed(0)
    s = torch.randn(5, 7, generator=g) * 3
    y = torch.tensor([[1.0, -1, 0, 0, 1, 0, -1], [0, 0, 1, 0, 0, 0, 0], [-1, -1, 0, 0, 0, 0, 0],
                      [1, -1, -1, -1, -1, -1, -1], [0, 1, 1, 1, -1, 0, 0]])
    logp = torch.log_softmax(s.masked_fill(y < 0, float("-inf")), 1)
    pos = y.clamp(min=0)
    want = -(logp.masked_fill(pos == 0, 0.0) * pos).sum() / pos.sum()
    assert torch.isclose(multinomial_nll(s, y), want, atol=1e-6)
    assert torch.isclose(multinomial_nll(s[3:4], y[3:4]), torch.tensor(0.0), atol=1e-6)   # the only item left
    assert multinomial_nll(s[2:3], y[2:3]) == 0                                            # nothing held out


def test_user_batches_cover_every_user_with_items_once_per_pass_with_their_targets():
    from helpers.training.loaders import UserBatches

    indptr, indices = np.array([0, 2, 2, 5, 6]), np.array([1, 3, 0, 2, 4, 4])   # user 1 has no items
    loader = UserBatches(indptr, indices, 5, batch_size=2, shuffle=True, seed=0)
    passes = [list(loader), list(loader)]
    for batches in passes:
        users = torch.cat([u for u, _ in batches]).tolist()
        assert sorted(users) == [0, 2, 3] and len(batches) == len(loader) == 2
        for u, y in batches:
            assert y.shape == (len(u), 5)
            for user, row in zip(u.tolist(), y):
                assert np.flatnonzero(row.numpy()).tolist() == sorted(indices[indptr[user]:indptr[user + 1]].tolist())
    orders = [torch.cat([u for u, _ in b]).tolist() for b in passes]
    assert orders[0] != orders[1] or len(set(map(tuple, orders))) == 1  # re-shuffled per pass (seeded)
    again = UserBatches(indptr, indices, 5, batch_size=2, shuffle=True, seed=0)
    assert torch.cat([u for u, _ in again]).tolist() == orders[0]


def test_auto_loss_takes_the_catalogue_softmax_when_it_fits_and_bce_otherwise(monkeypatch):
    train, _ = planted(n_users=40)
    model = train_model(train, "collabnn", epochs=1, seed=0)
    assert model.config["loss"] == "multinomial"
    # unset keys follow the chosen loss; explicit ones win
    assert (model.config["epochs"], model.config["gmf_size"], model.config["history_dropout"]) == (1, 128, 0.7)
    assert model.config["batch_size"] == 128 and model.config["lr"] == 0.01
    with_mlp = train_model(train, "collabnn", epochs=1, layers=[8], seed=0)
    assert with_mlp.config["loss"] == "bce" and with_mlp.config["gmf_size"] == 64
    monkeypatch.setattr(losses, "CATALOGUE_BUDGET", 10)
    big = train_model(train, "collabnn", epochs=1, seed=0)
    assert big.config["loss"] == "bce" and big.config["batch_size"] == 4096
    planned = resolved_config(make_model("collabnn"), train)
    assert planned["loss"] == "bce" and planned["epochs"] == 6
    with pytest.raises(ValueError, match="layers"):
        train_model(train, "collabnn", loss="multinomial", layers=[8], epochs=1)


def test_history_dropout_only_in_training_and_eval_scores_are_the_pair_scores():
    train, _ = planted(n_users=40)
    model = train_model(train, "collabnn_factor", epochs=2, seed=0)  # the factor module alone
    module = model.module
    users = torch.arange(10)
    module.eval()
    a, b = module.catalogue_logits(users), module.catalogue_logits(users)
    assert torch.equal(a, b)                        # no dropout at evaluation
    module.train()
    torch.manual_seed(0)
    c = module.catalogue_logits(users)
    assert not torch.allclose(a, c)                 # 70% of each history hidden while training
    module.eval()
    full = model.score_users(users.numpy())
    seen = model.seen[:10].toarray() > 0
    np.testing.assert_allclose(full.numpy()[~seen], a.detach().numpy()[~seen], atol=1e-5)


def test_multinomial_default_learns_the_planted_preference_with_a_validation_loss():
    train, test = planted()
    cand = sampled_candidates(train, test, 40, seed=0)
    model = train_model(train, "collabnn", task="implicit", seed=0, valid=test, early_stopping=False)
    hr = sampled_ranking(model, cand, unknown="drop").mean("hr", 5)
    assert model.config["loss"] == "multinomial"
    losses = model.losses
    assert losses["valid_loss"].notna().all() and losses["valid_loss"].iloc[-1] < np.log(model.n_items)
    assert losses["train_loss"].iloc[-1] < losses["train_loss"].iloc[0]
    # measured (defaults: 50 epochs of 128 users; training seeds 0, 1, 2): 0.71, 0.72, 0.71; popularity 0.096
    assert hr > 0.45, hr


def test_cpu_training_returns_freed_memory_every_20_batches(monkeypatch):
    if sys.platform.startswith("linux"):
        assert callable(callbacks.glibc_malloc_trim())     # the real one, on glibc
    calls = []
    monkeypatch.setattr(callbacks, "glibc_malloc_trim", lambda: (lambda pad: calls.append(pad) or 1))
    train, _ = planted(n_users=80)   # 80 users x 11 items x (1 + 4) rows = 4,400 rows: 68 batches of 64
    model = train_model(train, "collabnn", loss="bce", epochs=1, batch_size=64, seed=0, device="cpu", early_stopping=False)
    n_batches = len(model.learn.dls.train)
    assert n_batches >= 60 and "ReleaseFreedMemory" in [type(c).__name__ for c in model.learn.cbs]
    assert len(calls) == n_batches // 20 + 1 and set(calls) == {0}   # every 20 batches, and once after the fit


def test_validation_leaves_the_training_items_out_of_the_softmax():
    from helpers.training.loaders import UserBatches
    from helpers.training.losses import multinomial_nll

    # user 0: trained on items 0, 1; held out item 2 (of 4)
    loader = UserBatches(np.array([0, 1]), np.array([2]), 4, batch_size=8, exclude=(np.array([0, 2]), np.array([0, 1])))
    (users, y), = list(loader)
    assert y.tolist() == [[-1.0, -1.0, 1.0, 0.0]]
    s = torch.tensor([[5.0, 5.0, 1.0, 0.0]])
    want = -torch.log_softmax(torch.tensor([1.0, 0.0]), 0)[0]   # item 2 against item 3 only
    assert torch.isclose(multinomial_nll(s, y), want)
