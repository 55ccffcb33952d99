"""The neural models: shapes and ranges, split first layer == concat MLP, fast ranking == pair scoring,
save/load round trip, files that do not fit, recommend with seen items and unknown users."""
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.models import (
    MODELS,
    CollabNN,
    CollabNNModule,
    DotProductBiasModule,
    Embedding,
    NeuMF,
    load_model,
    make_model,
    n_parameters,
)
from helpers.training import fit
from helpers.training.learner import train_model
from helpers.training.optim import LazyAdam

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_ratings(n_users=30, n_items=40, n=500, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"user_id": [f"u{i}" for i in rng.integers(0, n_users, n)],
                       "item_id": [f"i{i}" for i in rng.integers(0, n_items, n)],
                       "rating": rng.integers(1, 6, n).astype(np.float32)})
    return df.drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)


FAST = dict(epochs=2, batch_size=256, early_stopping=False)  # structure tests: a fixed number of epochs


@pytest.fixture(scope="module")
def fitted():
    """One fitted model per (name, task, history), on the same tiny data."""
    df = tiny_ratings()
    out = {}
    for name in MODELS:
        for task in ("implicit", "rating"):
            out[name, task] = train_model(df, name, task=task, **FAST)
    out["collabnn", "implicit", "plain"] = train_model(df, "collabnn", task="implicit", gmf_size=0, bias=False,
                                                       history=False, layers=[16, 8], **FAST)
    out["mf", "implicit", "history"] = train_model(df, "mf", task="implicit", history=True, **FAST)
    return df, out


def test_forward_shapes_and_y_range_respected_even_for_extreme_weights():
    x = torch.stack([torch.randint(0, 7, (50,)), torch.randint(0, 9, (50,))], 1)
    hist = (np.array([0, 2, 2, 3, 3, 3, 3, 3]), np.array([1, 4, 2]))  # CSR of 7 users' items
    for module in (CollabNNModule(7, 9, 8, [16, 4], y_range=(0.5, 5.5), batchnorm=True, dropout=0.1),
                   CollabNNModule(7, 9, 8, [16], y_range=(0.5, 5.5), history=hist),
                   DotProductBiasModule(7, 9, 8, y_range=(0.5, 5.5), history=hist)):
        with torch.no_grad():
            for p in module.parameters():
                p.mul_(0).add_(torch.randn_like(p) * 50)  # push the pre-activation far out
        module.eval()
        y = module(x)
        assert y.shape == (50,)
        assert (y >= 0.5).all() and (y <= 5.5).all()
        assert module.score_all(torch.arange(7)).shape == (7, 9)
    logit = CollabNNModule(7, 9, 8, [16])(x)  # implicit: an unbounded logit
    assert logit.shape == (50,) and logit.dtype == torch.float32


def test_split_first_layer_is_the_linear_layer_on_the_concatenation():
    m = CollabNNModule(5, 6, 4, [3], gmf_size=0, bias=False)
    concat = torch.nn.Linear(8, 3)
    with torch.no_grad():
        concat.weight.copy_(torch.cat([m.user_proj.weight, m.item_proj.weight], 1))
        concat.bias.copy_(m.user_proj.bias)
    u, i = torch.tensor([0, 4, 2]), torch.tensor([5, 1, 1])
    split = m.user_proj(m.user_emb(u)) + m.item_proj(m.item_emb(i))
    assert torch.allclose(split, concat(torch.cat([m.user_emb(u), m.item_emb(i)], 1)), atol=1e-6)


def test_score_users_equals_pairwise_scores_for_every_model(fitted):
    _, models = fitted
    for key, model in models.items():
        users, items = np.arange(model.n_users), np.arange(model.n_items)
        full = model.score_users(users)
        assert full.shape == (model.n_users, model.n_items) and full.dtype == torch.float32
        uu, ii = np.meshgrid(users, items, indexing="ij")
        pairs = model.score_pairs(uu.ravel(), ii.ravel()).reshape(full.shape)
        np.testing.assert_allclose(full.numpy(), pairs, atol=1e-5, err_msg=str(key))
        if model.task == "rating":
            lo, hi = model.config["y_range"]
            assert lo <= full.min() and full.max() <= hi


def test_plain_concat_mlp_is_available(fitted):
    _, models = fitted
    plain = models["collabnn", "implicit", "plain"].module
    assert plain.gmf_size == 0 and not plain.bias and plain.history is None
    assert [m.out_features for m in plain.mlp if isinstance(m, torch.nn.Linear)] == [8]


def test_save_load_round_trip_gives_identical_scores(fitted, tmp_path):
    _, models = fitted
    for key, model in models.items():
        path = model.save(tmp_path / f"{'_'.join(key)}.pth", metadata={"dataset": "tiny"})
        back = load_model(path)
        assert type(back) is type(model) and back.task == model.task
        assert back.metadata["dataset"] == "tiny" and back.metadata["epochs"] == FAST["epochs"]
        assert "torch" in back.metadata["versions"]
        users = np.arange(model.n_users)
        assert torch.equal(back.score_users(users), model.score_users(users)), key
        np.testing.assert_array_equal(back.score_pairs(users, users % model.n_items),
                                      model.score_pairs(users, users % model.n_items))


def test_a_file_that_does_not_match_the_code_fails_clearly(fitted, tmp_path):
    _, models = fitted
    model = models["collabnn", "implicit"]
    path = model.save(tmp_path / "m.pth")
    payload = torch.load(path, weights_only=True)
    payload["state"]["item_emb.weight"] = torch.zeros(3, 2)  # a file from other code / other data
    torch.save(payload, tmp_path / "bad_shape.pth")
    with pytest.raises(ValueError, match="does not match the current 'collabnn' code"):
        load_model(tmp_path / "bad_shape.pth")
    payload = torch.load(path, weights_only=True)
    payload["config"]["layers"] = [7, 3]
    torch.save(payload, tmp_path / "bad_config.pth")
    with pytest.raises(ValueError, match="retrain it"):
        load_model(tmp_path / "bad_config.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a model file"):
        load_model(tmp_path / "junk.pth")
    with pytest.raises(FileNotFoundError, match="python -m helpers train"):
        load_model(tmp_path / "missing.pth")


def test_recommend_excludes_seen_items_and_flags_unknown_users(fitted):
    df, models = fitted
    model = models["collabnn", "implicit"]
    users = ["u1", "u2", "nobody"]
    recs = model.recommend(users, k=5)
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score", "cold_start"]
    assert recs.groupby("user_id").size().to_dict() == {"u1": 5, "u2": 5, "nobody": 5}
    seen = set(zip(df["user_id"], df["item_id"]))
    assert not any((u, i) in seen for u, i in zip(recs["user_id"], recs["item_id"]))
    known = recs[recs["user_id"] != "nobody"]
    assert not known["cold_start"].any() and recs.loc[recs["user_id"] == "nobody", "cold_start"].all()
    for _, g in known.groupby("user_id"):
        assert list(g["rank"]) == [1, 2, 3, 4, 5] and g["score"].is_monotonic_decreasing
    popular = df["item_id"].value_counts()
    cold = recs[recs["user_id"] == "nobody"]
    assert cold["score"].tolist() == sorted(popular.to_numpy()[:5].tolist(), reverse=True)
    # the top item of the full ranking is what recommend returns first
    u = model.user_index(["u1"])
    scores = model.score_users(u)[0].numpy()
    scores[model.seen[u[0]].indices] = -np.inf
    assert known.iloc[0]["item_id"] == model.item_ids[int(np.argmax(scores))]


def test_unknown_items_get_nan_and_a_warning(fitted):
    _, models = fitted
    model = models["mf", "rating"]
    pairs = pd.DataFrame({"user_id": ["u1", "u1", "ghost"], "item_id": ["i1", "nope", "i1"]})
    with pytest.warns(UserWarning, match="2 of 3 pairs"):
        scores = model.score(pairs)
    assert np.isfinite(scores[0]) and np.isnan(scores[1:]).all()


def test_config_is_validated():
    with pytest.raises(ValueError, match=r"unknown model 'collabnn' key\(s\) \['widths'\]; allowed"):
        make_model("collabnn", widths=[3])
    with pytest.raises(ValueError, match="unknown model 'nope'; choose one of"):
        make_model("nope")
    with pytest.raises(ValueError, match="unknown task 'clicks'"):
        CollabNN(task="clicks")
    assert make_model("mf", task="rating", lr=None).config["lr"] == MODELS["mf"].defaults["rating"]["lr"]


def test_sparse_embedding_gradient_touches_only_the_batch_rows():
    emb = Embedding(100, 4, init_std=0.1, sparse=True)
    emb(torch.tensor([3, 7, 7])).sum().backward()
    assert emb.weight.grad.is_sparse
    assert set(emb.weight.grad.coalesce().indices()[0].tolist()) == {3, 7}
    before = emb.weight.detach().clone()
    opt = LazyAdam(emb.parameters(), lr=0.1, weight_decay=0.1)
    opt.step()
    changed = (emb.weight.detach() != before).any(1).nonzero().ravel().tolist()
    assert changed == [3, 7]


def test_lazy_adam_on_dense_gradients_is_adamw():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5, 3))
    b = torch.nn.Parameter(a.detach().clone())
    mine = LazyAdam([a], lr=0.01, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.1)
    ref = torch.optim.AdamW([b], lr=0.01, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.1)
    for step in range(5):
        for p, opt in ((a, mine), (b, ref)):
            opt.zero_grad()
            ((p - step) ** 2).sum().backward()
            opt.step()
    assert torch.allclose(a, b, atol=1e-6)


def test_neumf_pretraining_initialises_from_gmf_and_mlp(monkeypatch):
    """pretrain=True: NeuMF starts from the GMF and MLP trained first (He et al. 2017): the GMF's
    embeddings, the MLP's embeddings and layers, the output layer half of each. epochs=0 ends `fit` before
    fine-tuning changes them; the stages are recorded as `fit` asks the model for them."""
    df = tiny_ratings()
    model = NeuMF(task="implicit", pretrain=True, pretrain_epochs=1, epochs=0, batch_size=256)
    stages = {}
    plan = model.pretraining_stages

    def recorded():
        out = plan()
        stages.update(out)
        return out

    monkeypatch.setattr(model, "pretraining_stages", recorded)
    fit(model, df, valid=tiny_ratings(seed=1))  # valid given: fit trains on df itself, nothing carved out of it
    assert set(stages) == {"gmf", "mlp"} and all(len(sub.losses) == 1 for sub in stages.values())  # 1 epoch each
    net, gmf, mlp = model.module, stages["gmf"].module, stages["mlp"].module
    assert torch.equal(net.user_gmf.weight, gmf.user_gmf.weight) and torch.equal(net.item_gmf.weight, gmf.item_gmf.weight)
    mlp_part = {k: v for k, v in mlp.state_dict().items() if not k.startswith("out.")}
    assert {"user_emb.weight", "item_emb.weight"} <= set(mlp_part)
    for key, value in mlp_part.items():
        assert torch.equal(net.state_dict()[key], value), key
    n_mlp = mlp.out.in_features
    assert torch.equal(gmf.out.weight[0, :n_mlp], torch.zeros(n_mlp))  # the GMF stage trained without its MLP branch
    assert not torch.equal(net.user_emb.weight, gmf.user_emb.weight)  # NeuMF's MLP branch is the MLP stage's
    torch.testing.assert_close(net.out.weight[0, :n_mlp], 0.5 * mlp.out.weight[0])
    torch.testing.assert_close(net.out.weight[0, n_mlp:], 0.5 * gmf.out.weight[0, n_mlp:])
    torch.testing.assert_close(net.out.bias[0], 0.5 * (mlp.out.bias[0] + gmf.out.bias[0]))
    assert model.module.gmf_size == 32 and not model.module.bias
    assert n_parameters(model.module) == model.n_parameters > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(model.score_pairs([0, 1], [2, 3])).all()


def test_model_files_are_named_for_their_task_and_loading_checks_it(tmp_path):
    from helpers.models import BiasBaseline, MostPopular, load_model, model_file_name

    assert model_file_name("collabnn") == "collabnn_implicit.pth"
    assert model_file_name("collabnn_rating") == "collabnn_rating.pth"
    assert model_file_name("popular") == "popular_implicit.pth" and model_file_name("bias") == "bias_rating.pth"
    train = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"], "rating": [4.0, 2.0, 5.0]})
    path = BiasBaseline().fit(train).save(tmp_path / "bias_rating.pth")
    assert load_model(path, task="rating").task == "rating"
    with pytest.raises(ValueError, match="holds a rating-task bias model, not the implicit task asked for"):
        load_model(path, task="implicit")
    MostPopular().fit(train).save(tmp_path / "p.pth")
    assert load_model(tmp_path / "p.pth").task == "implicit"


def test_library_lookups_read_ids_as_the_files_are_read():
    """fit strips ids (helpers.data.ids); score, recommend and exclude find them with the same spaces, and a user
    listed twice is recommended once."""
    from helpers.models import MostPopular

    train = pd.DataFrame({"user_id": [" u1", "u1 ", "u2", "u3"], "item_id": ["a", "b ", "a", "c"]})
    model = MostPopular().fit(train)
    assert model.user_ids.tolist() == ["u1", "u2", "u3"] and model.item_ids.tolist() == ["a", "b", "c"]
    scores = model.score(pd.DataFrame({"user_id": ["u1", " u1 ", "u2"], "item_id": ["c", " c", "b"]}))
    assert scores[0] == scores[1] and not np.isnan(scores).any()
    recs = model.recommend(["u2", " u2", "u2 "], k=2, exclude=pd.DataFrame({"user_id": [" u2"], "item_id": ["a "]}))
    assert recs["user_id"].tolist() == ["u2", "u2"] and "a" not in set(recs["item_id"])
