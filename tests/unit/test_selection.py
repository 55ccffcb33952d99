"""Model selection on validation: the validation metric equals the evaluation protocol's figure, early
stopping keeps the best epoch's weights, the carved validation is refitted on all of train, the tuner
searches on validation only, and the CLI's duration parser accepts what it says and nothing else."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from helpers.cli import main
from helpers.data import random_split, validation_split
from helpers.data.interactions import interaction_matrix
from helpers.evaluation import full_ranking
from helpers.models import EASE, load_model, make_model
from helpers.training import UserBatches, fit, refit
from helpers.training.losses import CatalogueScores
from helpers.training.tuning import parse_budget, tune
from helpers.training.validation import ValidationNDCG

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small(ml100k):
    users = np.sort(ml100k["user_id"].unique())[:150]
    df = ml100k[ml100k["user_id"].isin(users)].reset_index(drop=True)
    train, _ = random_split(df, seed=0)  # the second part is never used here: these tests select on validation
    return train


def _csr(matrix):
    return matrix.indptr, matrix.indices


def _codes(model, frame):
    u, i = model.user_index(frame["user_id"].to_numpy()), model.item_index(frame["item_id"].to_numpy())
    keep = (u >= 0) & (i >= 0)
    return u[keep], i[keep]


def test_validation_ndcg_is_the_full_ranking_figure(small):
    fit_part, held = validation_split(small, seed=0)
    ease = EASE().fit(fit_part)
    metric = ValidationNDCG(ease, *_codes(ease, held))
    expected = full_ranking(ease, held, fit_part, unknown="drop").mean("ndcg", 10)
    assert metric.value == pytest.approx(expected, abs=1e-9)
    assert metric.name == "ndcg_at_10"
    with pytest.raises(ValueError, match="validation part has no interaction"):
        ValidationNDCG(ease, [], [])


def test_early_stopping_keeps_the_best_epochs_weights(small):
    fit_part, held = validation_split(small, seed=0)
    model = fit(make_model("collabnn", epochs=12, patience=2, lr=0.05, seed=0), fit_part, valid=held)
    sel = model.metadata["selection"]
    curve = np.asarray(sel["curve"])
    assert sel["best_epoch"] == int(np.argmax(curve)) + 1 and sel["best_value"] == curve.max()
    assert len(curve) == model.metadata["epochs"] == sel["epochs_run"] <= 12
    # the weights the model ends with are the best epoch's, not the last epoch's
    assert ValidationNDCG(model, *_codes(model, held)).value == pytest.approx(sel["best_value"], abs=1e-6)
    # never stopped within the one-cycle warm-up (3 of 12 epochs); else `patience` epochs after the best
    assert sel["epochs_run"] == min(12, max(sel["best_epoch"], 3) + 2)


def test_fit_without_validation_carves_one_and_refits_on_all_of_train(small, tmp_path):
    model = fit(make_model("collabnn", epochs=8, seed=0), small)
    sel = model.metadata["selection"]
    assert sel["rule"] == "random" and sel["fit_rows"] + sel["validation_rows"] == len(small)
    assert model.metadata["train_rows"] == len(small) and model.metadata["epochs"] == sel["best_epoch"]
    assert set(model.user_ids) == set(small["user_id"].astype(str))
    again = fit(make_model("collabnn", epochs=8, seed=0), small)  # reproducible from the seed
    assert again.metadata["selection"]["curve"] == sel["curve"]
    model.save(tmp_path / "m.pth")
    assert load_model(tmp_path / "m.pth").metadata["selection"]["best_epoch"] == sel["best_epoch"]


def test_no_early_stopping_trains_the_fixed_epochs(small):
    model = fit(make_model("collabnn", epochs=3, early_stopping=False), small)
    assert model.metadata["epochs"] == 3 and "selection" not in model.metadata


def test_rating_task_selects_on_validation_rmse(small):
    fit_part, held = validation_split(small, seed=0)
    model = fit(make_model("mf", task="rating", epochs=6, patience=2), fit_part, valid=held)
    sel = model.metadata["selection"]
    assert sel["monitor"] == "rmse" and sel["best_epoch"] == int(np.argmin(sel["curve"])) + 1


def test_refit_rejects_an_epoch_outside_the_schedule(small):
    with pytest.raises(ValueError, match=r"epochs_run must be in \[1, epochs=4\]"):
        refit(make_model("collabnn", epochs=4), small, 5)


def test_tune_searches_on_validation_and_refits_the_best(small):
    result = tune(small, "ease", budget_seconds=60, n_trials=4, seed=0)
    lambdas = result.trials["param_lambda_"]
    assert len(result.trials) == 4 and result.best_params["lambda_"] in set(lambdas)
    assert result.best_value == result.trials["validation_ndcg_at_10"].max()
    assert [c for c in result.trials.columns if "ndcg" in c] == ["validation_ndcg_at_10"]  # validation figures only
    # the best configuration is refitted on all of train: its weights are EASE's on `small` with that lambda
    assert result.model.n_users == small["user_id"].nunique()
    direct = EASE(lambda_=result.best_params["lambda_"]).fit(small)
    assert np.allclose(result.model.score_users([0, 1]).numpy(), direct.score_users([0, 1]).numpy())
    assert result.model.metadata["tuning"]["best_value"] == result.best_value


def test_tune_a_neural_model_uses_the_chosen_epoch(small):
    result = tune(small, "collabnn", budget_seconds=120, n_trials=2, seed=0, epochs=4)
    best = result.trials.loc[result.trials["validation_ndcg_at_10"].idxmax()]
    assert result.model.metadata["epochs"] == best["best_epoch"]
    with pytest.raises(ValueError, match="no search space for model 'popular'"):
        tune(small, "popular", n_trials=1)


@given(st.floats(min_value=0.01, max_value=1e5, allow_nan=False), st.sampled_from(["", "s", "m", "h"]))
def test_parse_budget_reads_seconds_minutes_hours(value, unit):
    text = f"{value:.2f}{unit}"
    expected = float(f"{value:.2f}") * {"": 1, "s": 1, "m": 60, "h": 3600}[unit]
    if expected > 0:
        assert parse_budget(text) == pytest.approx(expected)


@given(st.text().filter(lambda t: not t.strip().replace(".", "", 1).rstrip("smh").isdigit()))
def test_parse_budget_rejects_anything_else_with_one_line(text):
    with pytest.raises(ValueError) as err:
        parse_budget(text)
    assert "\n" not in str(err.value)


def test_cli_tune_writes_the_model_and_the_trials(small, tmp_path, capsys):
    csv = tmp_path / "train.csv"
    small.to_csv(csv, index=False)
    out = tmp_path / "tuned.pth"
    assert main(["tune", "--train", str(csv), "--out", str(out), "--model", "ease", "--trials", "2", "--budget", "1m"]) == 0
    trials = pd.read_csv(tmp_path / "tuned.trials.csv")
    assert len(trials) == 2 and "validation_ndcg_at_10" in trials.columns
    assert load_model(out).metadata["tuning"]["n_trials"] == 2
    bad = tmp_path / "bad.pth"
    assert main(["tune", "--train", str(csv), "--out", str(bad), "--budget", "ten minutes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: budget 'ten minutes' is not a duration") and not bad.exists()


def test_default_config_refits_for_the_chosen_epoch(small):
    model = fit(make_model("mf", task="rating", patience=1), small)  # epochs left to the model's default
    sel = model.metadata["selection"]
    assert model.metadata["epochs"] == sel["best_epoch"] and model.metadata["max_epochs"] == model.config["epochs"]


def test_early_stopping_waits_out_the_warm_up():
    from helpers.training.validation import EarlyStoppingAfterWarmup

    class Recorder:  # what fastai's trackers read: one row per epoch, the monitored value in column 1
        metric_names = ["epoch", "train_loss", "ndcg_at_10"]
        values = []

    cb = EarlyStoppingAfterWarmup(min_epochs=4, monitor="ndcg_at_10", patience=1)
    cb.learn = type("L", (), {"recorder": Recorder()})()
    cb.before_fit()
    stopped = None
    for epoch, value in enumerate([0.3, 0.2, 0.2, 0.2, 0.2, 0.4, 0.3, 0.2]):
        Recorder.values.append([0.0, value])
        cb.learn.epoch = epoch
        try:
            cb.after_epoch()
        except Exception as exc:  # fastai's CancelFitException
            stopped = (epoch + 1, type(exc).__name__)
            break
    # a plain EarlyStoppingCallback(patience=1) would stop after epoch 2; this one waits out epochs 1-4
    assert stopped == (5, "CancelFitException") and cb.best == 0.3


def test_early_stopping_counts_the_patience_from_the_end_of_the_warm_up():
    """A best epoch inside the warm-up gives the fit `patience` epochs after the warm-up to improve (counted from the
    best epoch, this curve would stop at epoch 5 and keep epoch 1; benchmarks/logs/warmup_patience.md)."""
    from helpers.training.validation import EarlyStoppingAfterWarmup

    class Recorder:
        metric_names = ["epoch", "train_loss", "ndcg_at_10"]
        values = []

    cb = EarlyStoppingAfterWarmup(min_epochs=4, monitor="ndcg_at_10", patience=2)
    cb.learn = type("L", (), {"recorder": Recorder()})()
    cb.before_fit()
    ran = 0
    for epoch, value in enumerate([0.3, 0.1, 0.1, 0.1, 0.1, 0.35, 0.1, 0.1, 0.1, 0.1]):
        Recorder.values.append([0.0, value])
        cb.learn.epoch = epoch
        ran = epoch + 1
        try:
            cb.after_epoch()
        except Exception:  # fastai's CancelFitException
            break
    assert (ran, cb.best) == (8, 0.35)   # epoch 6 improved within the patience (epochs 5-6); 7-8 ran it out


def test_a_neural_search_starts_from_the_defaults_and_never_ends_below_them(small):
    result = tune(small, "mf", budget_seconds=120, n_trials=2, seed=0, epochs=4)
    first = result.trials.iloc[0]
    assert (first["param_lr"], first["param_wd"], first["param_emb_size"]) == (0.02, 0.1, 64)  # mf's bce defaults
    assert result.best_value >= first["validation_ndcg_at_10"]


@pytest.mark.parametrize("max_users", [5_000, 20])
def test_validation_ndcg_from_the_validation_batches_equals_scoring_the_users(small, max_users):
    """The multinomial objective's figure is accumulated from the validation pass's own scores (`from_batches`):
    the value is the one scoring the (sampled) users again gives, and a batch in another dtype falls back."""
    fit_part, held = validation_split(small, seed=0)
    model = fit(make_model("collabnn", epochs=2, seed=0, early_stopping=False, item_item=False), fit_part)
    u, i = _codes(model, held)
    seen = model.seen
    batches = UserBatches(*_csr(interaction_matrix(u, i, model.n_users, model.n_items)), model.n_items, batch_size=16,
                          exclude=(seen.indptr, seen.indices))
    net = CatalogueScores(model.module).eval()
    scored = ValidationNDCG(model, u, i, max_users=max_users, seed=3).mean_over_users()
    for dtype, falls_back in ((torch.float32, False), (torch.float64, True)):
        metric = ValidationNDCG(model, u, i, max_users=max_users, seed=3, from_batches=True)
        with torch.no_grad():
            for users, y in batches:
                metric.accumulate(SimpleNamespace(pred=net(users).to(dtype), xb=(users,), yb=(y,)))
        assert len(metric.users) == min(max_users, len(np.unique(u)))
        assert metric._count == (0 if falls_back else len(metric.users))
        assert metric.value == pytest.approx(scored, abs=1e-12)
    assert 0 < scored < 1


def test_no_refit_carries_the_chosen_epochs_weights_over_onto_all_of_train(small, tmp_path):
    model = fit(make_model("collabnn", epochs=8, seed=0, refit=False), small)
    sel = model.metadata["selection"]
    assert sel["refit"] is False and model.metadata["epochs"] == sel["best_epoch"]
    # id maps, histories and the item-item branch are all of train's, not the probe's 80%
    assert set(model.user_ids) == set(small["user_id"].astype(str)) and model.n_items == small["item_id"].nunique()
    assert model.metadata["train_rows"] == len(small) and model.seen.nnz == len(small)
    assert model.module.history.indices.numel() == len(small)
    # the weights are the probe's at the chosen epoch: the same fit on the carved part, matched by id
    fit_part, held = validation_split(small, sel["rule"], seed=0)
    probe = fit(make_model("collabnn", epochs=8, seed=0), fit_part, valid=held)
    assert probe.metadata["selection"]["best_epoch"] == sel["best_epoch"]
    for table in ("item_gmf", "history.emb", "item_bias"):
        mine = model.module.get_submodule(table).weight[torch.as_tensor(model.item_index(probe.item_ids))]
        assert torch.equal(mine, probe.module.get_submodule(table).weight)
    assert torch.equal(model.module.out.weight, probe.module.out.weight)
    users = probe.user_ids
    assert torch.equal(model.module.user_gmf.weight[model.module.rows(torch.as_tensor(model.user_index(users)))],
                       probe.module.user_gmf.weight[probe.module.rows(torch.as_tensor(probe.user_index(users)))])
    # it saves and loads like a refitted model, with the same scores
    model.save(tmp_path / "m.pth")
    again = load_model(tmp_path / "m.pth")
    assert again.metadata["selection"]["refit"] is False
    assert torch.equal(again.score_users([0, 1, 2]), model.score_users([0, 1, 2]))
    with pytest.raises(ValueError, match="refit must be True or False, got 'no'"):
        make_model("collabnn", refit="no")


def _frame(pairs):
    return pd.DataFrame(pairs, columns=["user_id", "item_id"])


def _built(frame, **config):
    model = make_model("collabnn_factor", gmf_size=4, history=True, epochs=1, **config)
    model.index_training_data(frame)
    model.fill_loss_defaults()
    model.module = model.build_module()
    return model


@pytest.mark.parametrize("least", [1, 2])
def test_adopt_weights_matches_rows_by_id_and_leaves_new_rows_initialised(least):
    # the fitted model knows users a, b and items x, y; the new one adds user c and item z (b rates twice there)
    fitted = _built(_frame([("a", "x"), ("a", "y"), ("b", "y")]), min_user_interactions=least)
    with torch.no_grad():
        for p in fitted.module.parameters():
            p.copy_(torch.arange(p.numel(), dtype=p.dtype).view_as(p) + 100)
    model = _built(_frame([("a", "x"), ("a", "y"), ("b", "y"), ("b", "z"), ("c", "z"), ("c", "x")]),
                   min_user_interactions=least)
    init = {k: v.clone() for k, v in model.module.state_dict().items()}
    model.adopt_weights(fitted)
    item = {i: int(model.item_index([i])[0]) for i in "xyz"}
    for table in ("item_gmf", "history.emb", "item_bias"):
        mine, theirs = model.module.get_submodule(table).weight, fitted.module.get_submodule(table).weight
        for i in "xy":
            assert torch.equal(mine[item[i]], theirs[int(fitted.item_index([i])[0])])
        assert torch.equal(mine[item["z"]], init[f"{table}.weight"][item["z"]])  # never seen by `fitted`
    rows = model.module.rows(torch.as_tensor(model.user_index(list("abc")))).tolist()
    fitted_rows = fitted.module.rows(torch.as_tensor(fitted.user_index(list("ab")))).tolist()
    mine, theirs = model.module.user_gmf.weight, fitted.module.user_gmf.weight
    assert torch.equal(mine[rows[0]], theirs[fitted_rows[0]])
    # b: its own row there, or (once rare, least=2) the fitted model's shared row 0, where it was
    assert torch.equal(mine[rows[1]], theirs[fitted_rows[1]]) and (least == 1 or fitted_rows[1] == 0)
    assert torch.equal(mine[rows[2]], init["user_gmf.weight"][rows[2]])
    assert torch.equal(model.module.out.weight, fitted.module.out.weight)


def test_adopt_weights_refuses_a_model_of_another_shape():
    frame = _frame([("a", "x"), ("b", "y")])
    other = make_model("collabnn_factor", gmf_size=8, epochs=1)
    other.index_training_data(frame)
    other.fill_loss_defaults()
    other.module = other.build_module()
    with pytest.raises(ValueError, match=r"'user_gmf.weight' has shape \(\d+, 8\) in the fitted model and \(\d+, 4\) here"):
        _built(frame).adopt_weights(other)
    with pytest.raises(ValueError, match="needs both modules built"):
        make_model("collabnn").adopt_weights(other)
