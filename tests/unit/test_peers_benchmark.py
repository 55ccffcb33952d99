"""benchmarks/peers.py and its adapters (benchmarks/peer_models.py): the peers answer in this repository's
index space (a wrong id map would rank the wrong items), the search keeps validation figures only and
starts from the reference configuration, the summaries pair the same rows, and bad input is refused.

The peer libraries come from benchmarks/requirements-peers.txt (`make setup-peers`, which `make test` runs).
"""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.files import ROOT
from helpers.models import MODEL_CLASSES

sys.path.insert(0, str(ROOT / "benchmarks"))
peer_models = pytest.importorskip("peer_models", reason="the peer libraries are not installed: run `make setup-peers`")
import peers  # noqa: E402
import readme_tables  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def planted_blocks(n_users=60, n_items=40, per_user=8, seed=0) -> pd.DataFrame:
    """Two communities: even users only ever take items of the first half, odd users of the second; the ids
    are shuffled strings, so an adapter whose id map is wrong ranks the other half."""
    rng = np.random.default_rng(seed)
    rows = []
    half = n_items // 2
    for u in range(n_users):
        block = np.arange(half) if u % 2 == 0 else np.arange(half, n_items)
        for i in rng.choice(block, per_user, replace=False):
            rows.append((f"user{(u * 7919) % 1000:03d}-{u}", f"item{(i * 104729) % 997:03d}-{i}"))
    return pd.DataFrame(rows, columns=["user_id", "item_id"])


def _own_block_share(model, frame: pd.DataFrame, k: int = 5) -> float:
    """Share of each user's top-k unseen items that lie in the user's own block."""
    n_items = frame["item_id"].nunique()
    half = n_items // 2
    shares = []
    for user_id in frame["user_id"].unique()[:20]:
        u = int(model.user_index([user_id])[0])
        scores = model.score_users(np.array([u])).numpy()[0]
        scores[model.seen[u].indices] = -np.inf
        top = model.item_ids[np.argsort(-scores)[:k]]
        own = int(user_id.split("-")[1]) % 2
        shares.append(np.mean([(int(t.split("-")[1]) >= half) == own for t in top]))
    return float(np.mean(shares))


@pytest.mark.parametrize("name, config", [
    ("implicit_als", {"factors": 8, "iterations": 10}),
    ("implicit_bpr", {"factors": 8, "iterations": 200, "learning_rate": 0.05}),
    ("cornac_bpr", {"k": 8, "max_iter": 200, "learning_rate": 0.05}),
    ("cornac_bivae", {"k": 8, "encoder_width": 16, "n_epochs": 60, "batch_size": 16, "learning_rate": 0.003}),
    ("recbole_multivae", {"epochs": 30, "learning_rate": 0.005}),
])
def test_peers_rank_the_users_own_block_in_this_repositorys_item_order(name, config):
    frame = planted_blocks()
    model = peer_models.PEERS[name](seed=0, threads=1, **config).fit(frame)
    scores = model.score_users(np.arange(model.n_users))
    assert scores.shape == (model.n_users, model.n_items) and scores.dtype == torch.float32
    assert _own_block_share(model, frame) >= 0.9, name   # a permuted id map gives about 0.5


def test_recbole_ease_equals_this_repositorys_ease_item_for_item():
    """Same closed form, same L2 strength: RecBole's scores, put back in this repository's item order,
    equal helpers' EASE (float32 Cholesky against RecBole's float64 inverse)."""
    frame = planted_blocks(per_user=6, seed=3)
    ours = MODEL_CLASSES["ease"](lambda_=5.0).fit(frame)
    theirs = peer_models.PEERS["recbole_ease"](seed=0, threads=1, reg_weight=5.0).fit(frame)
    assert list(theirs.item_ids) == list(ours.item_ids)
    users = np.arange(ours.n_users)
    np.testing.assert_allclose(theirs.score_users(users).numpy(), ours.score_users(users).numpy(), rtol=1e-4, atol=1e-5)


def test_recbole_early_stopping_keeps_the_epoch_it_chose_for_the_refit():
    frame = planted_blocks(seed=1)
    held = frame.groupby("user_id").tail(1)
    fit_part = frame.drop(held.index)
    model = peer_models.PEERS["recbole_multivae"](seed=0, threads=1, epochs=6).fit_early_stopped(fit_part, held)
    assert 1 <= model.best_epochs <= 6 and model.validation is None


def test_unknown_peer_setting_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"implicit_als: unknown setting\(s\) \['factor'\]; choose from"):
        peer_models.PEERS["implicit_als"](factor=8)


def test_search_starts_from_the_reference_and_refits_the_best_validation_trial():
    frame = planted_blocks(n_users=80, seed=2)
    model, valid, seconds, notes = peers.searched_peer("implicit_als", frame, "random", seed=0, threads=1, trials=3,
                                                       search_seconds=60)
    log = notes["tuning_log"]
    reference = peer_models.ImplicitALS.reference
    assert len(log) == 3 == notes["trials"]
    assert all(log[0][k] == v for k, v in reference.items())           # first trial: the library's defaults
    assert valid == max(t["validation"] for t in log)                  # the best validation trial is kept
    assert model.config == notes["config"] and notes["reference_validation"] == log[0]["validation"]
    assert set(log[0]) == {"trial", "validation", "seconds", "best_epochs", *reference}   # validation figures only
    assert model.n_users == frame["user_id"].nunique()                 # refitted on all of train


def test_a_run_of_some_protocols_keeps_the_others_earlier_results():
    earlier = {"seed_split": {"provenance": {"commit": "old"}}, "ml100k_random": {"provenance": {"commit": "old"}},
               "gone": {"x": 1}}
    merged = peers.merged_protocols(earlier, {"ml100k_random": {"provenance": {"commit": "new"}}})
    assert list(merged) == ["seed_split", "ml100k_random"]
    assert merged["ml100k_random"]["provenance"]["commit"] == "new" and merged["seed_split"]["provenance"]["commit"] == "old"


def test_an_interrupted_run_keeps_the_protocols_it_finished(tmp_path, monkeypatch):
    out = tmp_path / "b.json"
    out.write_text(json.dumps({"peers": {"protocols": {"ml100k_temporal": {"provenance": {"commit": "old"}}}}}))

    def run_protocol(protocol, names, args, folder):  # the first protocol ends, the second is stopped
        if protocol == "ml100k_random":
            raise KeyboardInterrupt
        return {"provenance": {"commit": "new"}, "models": {}}

    monkeypatch.setattr(peers, "run_protocol", run_protocol)
    with pytest.raises(KeyboardInterrupt):
        peers.main(["--protocols", "seed_split,ml100k_random", "--out", str(out), "--table", str(tmp_path / "P.md"),
                    "--figure", str(tmp_path / "f.png")])
    kept = json.loads(out.read_text())["peers"]["protocols"]
    assert kept["seed_split"]["provenance"]["commit"] == "new" and kept["ml100k_temporal"]["provenance"]["commit"] == "old"
    assert "ml100k_random" not in kept and not (tmp_path / "P.md").exists()


def test_pareto_front_keeps_points_nothing_beats_on_both_axes():
    points = [(1.0, 0.30), (2.0, 0.25), (3.0, 0.40), (0.5, 0.10), (5.0, 0.39), (3.0, 0.35)]
    assert peers.pareto_front(points) == [3, 0, 2]


def _rows(values: dict) -> tuple[dict, dict]:
    users = np.array(["a", "b", "c", "d"])
    rows = {n: {"train_seconds": s, "peak_gb": 1.0, "test": {}} for n, (s, _) in values.items()}
    per_user = {n: {"full ndcg@10": (np.asarray(v, dtype=float), users)} for n, (_, v) in values.items()}
    return rows, per_user


def test_summary_pairs_the_same_rows_and_states_ratios_to_the_default():
    rows, per_user = _rows({"ours": (10.0, [0.5, 0.4, 0.6, 0.5]), "peer": (5.0, [0.25, 0.2, 0.3, 0.25])})
    out = peers.summarise(rows, per_user, "ours", n_boot=200)
    assert out["ours"]["figures"]["full ndcg@10"]["ratio_to_default"] == 1.0
    peer = out["peer"]["figures"]["full ndcg@10"]
    assert peer["value"] == pytest.approx(0.25) and peer["ratio_to_default"] == pytest.approx(0.5)
    assert peer["paired"]["diff"] == pytest.approx(0.25) and peer["paired"]["ci_low"] > 0
    assert out["peer"]["train_seconds_ratio"] == pytest.approx(0.5)
    lines = readme_tables.verdicts({"default": "ours", "models": out})
    assert lines == ["- full-ranking NDCG@10: the default is ahead of peer (+0.250); tied (interval across zero) with "
                     "none; behind none."]


def test_summary_refuses_rows_that_differ():
    rows, per_user = _rows({"ours": (1.0, [0.5, 0.4, 0.6, 0.5]), "peer": (1.0, [0.2, 0.2, 0.3, 0.2])})
    per_user["peer"]["full ndcg@10"] = (per_user["peer"]["full ndcg@10"][0], np.array(["a", "b", "c", "e"]))
    with pytest.raises(RuntimeError, match="the test rows of ours and peer differ; cannot pair them"):
        peers.summarise(rows, per_user, "ours", n_boot=50)


def test_unknown_model_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "b.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--models", "collabnn,lightfm",
                           "--out", str(out), "--table", str(tmp_path / "P.md")], capture_output=True, text=True)
    assert done.returncode == 2 and "unknown models ['lightfm']; choose from collabnn,ease," in done.stderr
    assert not out.exists() and not (tmp_path / "P.md").exists()


@pytest.mark.slow
def test_quick_run_writes_the_table_the_plot_and_provenance(tmp_path):
    out, table, figure = tmp_path / "b.json", tmp_path / "P.md", tmp_path / "f.png"
    out.write_text(json.dumps({"accuracy": {"kept": True}}))
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--quick", "--models",
                           "ease,implicit_als,recbole_ease", "--protocols", "ml100k_temporal", "--threads", "1",
                           "--out", str(out), "--table", str(table), "--figure", str(figure)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["accuracy"] == {"kept": True}                          # other benchmarks' keys are kept
    section = data["peers"]
    assert {"commit", "clean", "date", "machine", "threads", "load_average"} <= set(section["provenance"])
    part = section["protocols"]["ml100k_temporal"]
    assert part["provenance"]["commit"] and "load_average_end" in part     # each protocol's own run
    assert part["default"] == "ease" and set(part["models"]) == {"ease", "implicit_als", "recbole_ease"}
    ease, recbole = part["models"]["ease"], part["models"]["recbole_ease"]
    assert recbole["trials"] == 2 and recbole["tuning_log"][0]["reg_weight"] == 250.0
    figure_ = recbole["figures"]["full ndcg@10"]
    assert figure_["ci_low"] <= figure_["value"] <= figure_["ci_high"] and "paired" in figure_
    assert ease["peak_gb"] > 0.1 and ease["figures"]["full ndcg@10"]["ratio_to_default"] == 1.0
    text = table.read_text()
    assert "| **ease** (default) | this repository |" in text and "recbole_ease | recbole |" in text
    assert figure.stat().st_size > 10_000
    assert "All rows from one run:" in text
    table.unlink()
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--render", "--out", str(out),
                            "--table", str(table), "--figure", str(figure)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and table.read_text() == text           # --render: the same table from the JSON


def test_pair_scoring_peers_score_in_chunks_with_the_same_values(monkeypatch):
    """RecBole's NeuMF scores (user, item) pairs only; scored a few users at a time, its rows are the same."""
    frame = planted_blocks(n_users=20, n_items=16, per_user=4, seed=5)
    model = peer_models.PEERS["recbole_neumf"](seed=0, threads=1, epochs=1).fit(frame)
    users = np.arange(model.n_users)
    whole = model.score_users(users)
    monkeypatch.setattr(peer_models, "PAIRS_PER_CHUNK", 3 * model.n_items)   # 3 users per chunk
    assert torch.allclose(model.score_users(users), whole, atol=1e-6) and whole.shape == (20, 16)
