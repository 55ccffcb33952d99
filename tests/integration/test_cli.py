"""`python -m helpers train|score|recommend` round trip on a tiny CSV, in subprocesses (the contract)."""
import subprocess
import sys

import numpy as np
import pandas as pd

from helpers.files import ROOT
from helpers.models import load_model


def cli(*args, check=True):
    res = subprocess.run([sys.executable, "-m", "helpers", *map(str, args)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    if check:
        assert res.returncode == 0, res.stderr[-2000:]
    return res


def test_cli_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    # ids that look numeric, with leading zeros: they must stay strings ("007" != "7")
    train = pd.DataFrame({"user_id": [f"{u:03d}" for u in rng.integers(0, 25, 400)],
                          "item_id": [f"0{i}" for i in rng.integers(0, 30, 400)]}).drop_duplicates()
    train.to_csv(tmp_path / "train.csv", index=False)
    model = tmp_path / "model" / "m.pth"
    res = cli("train", "--train", tmp_path / "train.csv", "--out", model, "--epochs", 2, "--seed", 1,
              "--device", "cpu")
    assert model.exists() and "trained collabnn (implicit)" in res.stdout

    pairs = pd.DataFrame({"user_id": ["003", "nobody", "001", "003"], "item_id": ["01", "01", "ghost", "02"]})
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    res = cli("score", "--model", model, "--pairs", tmp_path / "pairs.csv", "--out", tmp_path / "scores.csv")
    scores = pd.read_csv(tmp_path / "scores.csv", dtype={"user_id": str, "item_id": str})
    assert list(scores.columns) == ["user_id", "item_id", "score"]
    assert scores[["user_id", "item_id"]].equals(pairs)  # same rows, same order
    assert scores["score"].isna().tolist() == [False, True, True, False]
    assert "2 with an unknown user or item" in res.stderr

    pd.DataFrame({"user_id": ["003", "nobody"]}).to_csv(tmp_path / "users.csv", index=False)
    res = cli("recommend", "--model", model, "--k", 5, "--out", tmp_path / "recs.csv", "--users", tmp_path / "users.csv")
    recs = pd.read_csv(tmp_path / "recs.csv", dtype={"user_id": str, "item_id": str})
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score"]
    assert recs.groupby("user_id")["rank"].apply(list).to_dict() == {"003": [1, 2, 3, 4, 5], "nobody": [1, 2, 3, 4, 5]}
    seen = set(train.loc[train["user_id"] == "003", "item_id"])
    assert not seen & set(recs.loc[recs["user_id"] == "003", "item_id"])
    assert "1 users unknown to the model" in res.stderr

    # every user of the model when --users is absent; --exclude replaces the training items
    exclude = pd.DataFrame({"user_id": ["003"], "item_id": [recs.iloc[0]["item_id"]]})
    exclude.to_csv(tmp_path / "exclude.csv", index=False)
    cli("recommend", "--model", model, "--k", 3, "--out", tmp_path / "all.csv", "--exclude", tmp_path / "exclude.csv")
    all_recs = pd.read_csv(tmp_path / "all.csv", dtype={"user_id": str, "item_id": str})
    assert set(all_recs["user_id"]) == set(train["user_id"]) and len(all_recs) == 3 * train["user_id"].nunique()
    assert recs.iloc[0]["item_id"] not in set(all_recs.loc[all_recs["user_id"] == "003", "item_id"])


def test_cli_train_no_refit_keeps_the_chosen_epoch(tmp_path):
    rng = np.random.default_rng(1)
    train = pd.DataFrame({"user_id": rng.integers(0, 25, 400), "item_id": rng.integers(0, 30, 400)}).drop_duplicates()
    train.to_csv(tmp_path / "train.csv", index=False)
    cli("train", "--train", tmp_path / "train.csv", "--out", tmp_path / "m.pth", "--epochs", 4, "--device", "cpu",
        "--no-refit")
    model = load_model(tmp_path / "m.pth")
    sel = model.metadata["selection"]
    assert sel["refit"] is False and model.metadata["epochs"] == sel["best_epoch"]
    assert model.metadata["train_rows"] == len(train) and model.n_users == train["user_id"].nunique()


def test_cli_errors_are_one_line_with_status_2(tmp_path):
    res = cli("score", "--model", tmp_path / "missing.pth", "--pairs", tmp_path / "p.csv", "--out",
              tmp_path / "s.csv", check=False)
    assert res.returncode == 2 and res.stderr.startswith("error: model file") and "Traceback" not in res.stderr
    res = cli("train", "--train", tmp_path / "none.csv", "--out", tmp_path / "m.pth", check=False)
    assert res.returncode == 2 and "file not found" in res.stderr
