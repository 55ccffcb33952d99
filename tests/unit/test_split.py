"""Split invariants: ratio, per-user stratification, determinism, no overlap, nothing mutated."""
import pandas as pd
import pytest

from helpers.data.split import (
    leave_one_out,
    make_split,
    random_split,
    split_summary,
    temporal_split,
    validation_split,
    write_split,
)


def pairs(df):
    return set(zip(df["user_id"], df["item_id"]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_split_80_20_stratified(ml100k, seed):
    before = ml100k.copy()
    train, ev = random_split(ml100k, 0.8, seed=seed)
    pd.testing.assert_frame_equal(ml100k, before)
    assert len(train) + len(ev) == len(ml100k)
    assert 0.19 <= len(ev) / len(ml100k) <= 0.21
    assert not pairs(train) & pairs(ev)
    assert set(ev["user_id"]) <= set(train["user_id"])
    # stratified: every user's evaluation share is near 20% (rounding of small counts only)
    share = ev.groupby("user_id").size() / ml100k.groupby("user_id").size()
    assert share.between(0.1, 0.3).all()


def test_random_split_deterministic_and_seed_dependent(ml100k):
    a = random_split(ml100k, seed=5)[1]
    b = random_split(ml100k, seed=5)[1]
    c = random_split(ml100k, seed=6)[1]
    assert a.equals(b)
    assert pairs(a) != pairs(c)


def test_random_split_single_interaction_users_stay_in_train():
    df = pd.DataFrame({"user_id": ["a", "b", "b", "b", "b", "b"], "item_id": list("xxyzwv"), "rating": 1.0})
    train, ev = random_split(df, 0.8, seed=0)
    assert "a" in set(train["user_id"]) and "a" not in set(ev["user_id"])
    for seed in range(20):
        train, ev = random_split(df, 0.2, seed=seed)  # 80% evaluation asked: still one left in train
        assert set(ev["user_id"]) <= set(train["user_id"])


def test_leave_one_out_latest(ml100k):
    train, ev = leave_one_out(ml100k, by="timestamp")
    assert len(ev) == 943 and ev["user_id"].is_unique
    latest = ml100k.groupby("user_id")["timestamp"].max()
    assert (ev.set_index("user_id")["timestamp"] == latest.loc[ev["user_id"]].to_numpy()).all()
    assert not pairs(train) & pairs(ev) and len(train) + len(ev) == len(ml100k)
    t2, e2 = leave_one_out(ml100k, by="random", seed=3)
    assert len(e2) == 943 and e2.equals(leave_one_out(ml100k, by="random", seed=3)[1])


def test_leave_one_out_needs_timestamps():
    df = pd.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "y"],
                       "timestamp": pd.array([pd.NA, pd.NA], dtype="Int64")})
    with pytest.raises(ValueError, match="use by='random'"):
        leave_one_out(df, by="timestamp")


def test_temporal_split_respects_cutoff(ml100k):
    train, ev = temporal_split(ml100k, 0.8)
    assert train["timestamp"].max() < ev["timestamp"].min()
    assert set(ev["user_id"]) <= set(train["user_id"]) and set(ev["item_id"]) <= set(train["item_id"])
    assert ev.attrs["dropped_cold"] + len(ev) + len(train) == len(ml100k)
    with pytest.raises(ValueError, match="every interaction on one side"):
        temporal_split(ml100k, "2030-01-01")


def test_make_split_rejects_unknown_names(ml100k):
    with pytest.raises(ValueError, match="unknown split 'kfold'; choose one of"):
        make_split(ml100k, "kfold")


def test_write_split_writes_both_files(tmp_path, ml100k):
    train, ev = random_split(ml100k.head(2000), seed=0)
    t, e = write_split(train, ev, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evaluation.csv", "train.csv"]
    back = pd.read_csv(t, dtype={"user_id": str, "item_id": str})
    assert len(back) == len(train) and pairs(back) == pairs(train)
    s = split_summary(train, ev)
    assert s["evaluation_users_in_train"] == s["evaluation_users"]


@pytest.mark.parametrize("split", ["random", "leave_one_out", "temporal"])
def test_validation_split_carves_from_train_only(ml100k, split):
    train, evaluation = make_split(ml100k, split, seed=0)
    fit_part, valid = validation_split(train, split, seed=0)
    key = ["user_id", "item_id"]
    # nothing of the evaluation part leaks in; the validation part comes out of train, disjoint from the fit part
    assert fit_part.merge(evaluation, on=key).empty and valid.merge(evaluation, on=key).empty
    assert fit_part.merge(valid, on=key).empty
    assert len(valid.merge(train, on=key)) == len(valid)
    assert len(fit_part) + len(valid) + valid.attrs.get("dropped_cold", 0) == len(train)
    again = validation_split(train, split, seed=0)
    pd.testing.assert_frame_equal(again[1], valid)  # deterministic for a seed
    assert len(train) == len(ml100k) - len(evaluation) - evaluation.attrs.get("dropped_cold", 0)  # input untouched


def test_validation_split_random_is_per_user_share(ml100k):
    train, _ = random_split(ml100k, seed=0)
    fit_part, valid = validation_split(train, "random", seed=0)
    assert (len(fit_part), len(valid)) == (63_964, 16_013)  # ml-100k, seed 0: per-user shares rounded stochastically
    assert abs(len(valid) / len(train) - 0.2) < 0.003
    share = valid.groupby("user_id").size() / train.groupby("user_id").size()
    assert share.between(0.1, 0.3).all()


def test_validation_split_leave_one_out_is_the_second_latest(ml100k):
    train, evaluation = leave_one_out(ml100k, seed=0)
    fit_part, valid = validation_split(train, "leave_one_out", seed=0)
    assert valid["user_id"].is_unique and len(valid) == ml100k["user_id"].nunique()
    latest = evaluation.set_index("user_id")["timestamp"]
    v = valid.set_index("user_id")["timestamp"]
    assert (v <= latest[v.index]).all()
    assert (fit_part.groupby("user_id")["timestamp"].max() <= v[fit_part["user_id"].unique()].sort_index()).all()


def test_validation_split_temporal_is_the_period_before_the_cutoff(ml100k):
    train, evaluation = temporal_split(ml100k, 0.8)
    fit_part, valid = validation_split(train, "temporal")
    assert fit_part["timestamp"].max() < valid["timestamp"].min()
    assert valid["timestamp"].max() < evaluation["timestamp"].min()
    with pytest.raises(ValueError, match="quantile cutoff"):
        validation_split(train, "temporal", cutoff="1998-01-01")
