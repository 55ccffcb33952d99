"""Train / evaluation splits. Each returns two new DataFrames (inputs are never modified).

- `random_split`: per-user stratified 80:20; every evaluation user keeps >= 1 interaction in train.
  ml-100k (seed 0): 80,000 / 20,000 rows (every user has >= 20 ratings).
- `global_split`: 80:20 of the interactions of the whole data, drawn at random regardless of user (the seeds'
  train.csv / evaluation.csv). On data where most users have a single interaction (Amazon Electronics) a
  per-user split cannot hold out 20%: it keeps every single-interaction user in train. The global split
  does hold out 20%, and most of its evaluation users are then cold (unknown to training).
- "auto" (`resolve_split`): "global" when most users have a single interaction, else "random".
- `leave_one_out`: each user's latest (or a random) interaction held out, users with >= 2 only.
- `temporal_split`: everything before a cutoff trains, the rest evaluates (known users/items only).
- `validation_split`: the same rule applied again to a training part, carving out a validation part
  (what model selection, early stopping and tuning score on; the evaluation part is never seen by them):
  per user for "random", each user's second-latest interaction for "leave_one_out", the period just
  before the cutoff for "temporal".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from helpers.data.csv_files import read_interactions_csv
from helpers.files import atomic_path

SPLITS = ["auto", "random", "global", "leave_one_out", "temporal"]

# "auto" picks the global split when more than this share of users has a single interaction: a per-user split
# would then hold out far less than 20% (Electronics: 92% of users, 0.6% held out).
SINGLE_USER_SHARE_FOR_GLOBAL = 0.5


def _check(df: pd.DataFrame) -> None:
    for col in ("user_id", "item_id"):
        if col not in df.columns:
            raise ValueError(f"cannot split: no column '{col}'; found {list(df.columns)}")
    if len(df) == 0:
        raise ValueError("cannot split an empty DataFrame")


def _user_codes(df: pd.DataFrame) -> np.ndarray:
    return pd.factorize(df["user_id"])[0]


def random_split(df: pd.DataFrame, frac: float = 0.8, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, evaluation): per user, a random `1 - frac` share of the interactions goes to evaluation.

    Per-user counts are rounded stochastically (seeded) so the overall evaluation share is
    `1 - frac` in expectation, and each user keeps at least one interaction in train (a user with a
    single interaction stays in train only, which lowers the share on very sparse data).
    """
    _check(df)
    if not 0 < frac < 1:
        raise ValueError(f"frac must be in (0, 1), got {frac}")
    rng = np.random.default_rng(seed)
    users = _user_codes(df)
    counts = np.bincount(users)
    want = counts * (1 - frac)
    n_eval = np.floor(want + rng.random(len(counts))).astype(np.int64)
    n_eval = np.minimum(n_eval, counts - 1)
    # rank of each row inside its user, in a random order
    key = rng.random(len(df))
    order = np.lexsort((key, users))
    rank = np.empty(len(df), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank[order] = np.arange(len(df)) - np.repeat(starts, counts)
    is_eval = rank < n_eval[users]
    return df[~is_eval].reset_index(drop=True), df[is_eval].reset_index(drop=True)


def global_split(df: pd.DataFrame, frac: float = 0.8, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, evaluation): a random `1 - frac` share of all interactions evaluates, exactly
    round(len(df) * (1 - frac)) rows, drawn without regard to user or item (seeded). Evaluation users and
    items may be unknown to training (cold); `split_summary` counts them."""
    _check(df)
    if not 0 < frac < 1:
        raise ValueError(f"frac must be in (0, 1), got {frac}")
    n_eval = int(round(len(df) * (1 - frac)))
    if n_eval == 0 or n_eval == len(df):
        raise ValueError(f"a {1 - frac:.0%} evaluation share of {len(df)} rows leaves one side empty; "
                         "use more data or another frac")
    is_eval = np.zeros(len(df), dtype=bool)
    is_eval[np.random.default_rng(seed).choice(len(df), n_eval, replace=False)] = True
    return df[~is_eval].reset_index(drop=True), df[is_eval].reset_index(drop=True)


def single_interaction_share(df: pd.DataFrame) -> float:
    """Share of users with exactly one interaction in `df`, in [0, 1]."""
    counts = np.bincount(_user_codes(df))
    return float((counts == 1).mean()) if len(counts) else 0.0


def resolve_split(df: pd.DataFrame, split: str) -> str:
    """The concrete split for `split`: "auto" is "global" when more than half of the users have a single
    interaction (a per-user split could not hold out 20% of them), else "random"; other names unchanged."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    if split != "auto":
        return split
    return "global" if single_interaction_share(df) > SINGLE_USER_SHARE_FOR_GLOBAL else "random"


def leave_one_out(df: pd.DataFrame, by: str = "timestamp", seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, evaluation) with one interaction per user (users with >= 2 interactions) held out.

    by="timestamp": the latest interaction (ties broken at random, seeded); by="random": a random one.
    """
    _check(df)
    if by not in ("timestamp", "random"):
        raise ValueError(f"by must be 'timestamp' or 'random', got {by!r}")
    rng = np.random.default_rng(seed)
    users = _user_codes(df)
    key = rng.random(len(df))
    if by == "timestamp":
        if "timestamp" not in df.columns or df["timestamp"].isna().any():
            raise ValueError("leave_one_out(by='timestamp') needs a timestamp for every row; use by='random'")
        order = np.lexsort((key, df["timestamp"].to_numpy(dtype=np.int64), users))
    else:
        order = np.lexsort((key, users))
    last_of_user = np.r_[users[order][1:] != users[order][:-1], True]
    counts = np.bincount(users)
    is_eval = np.zeros(len(df), dtype=bool)
    is_eval[order[last_of_user]] = True
    is_eval &= counts[users] >= 2
    return df[~is_eval].reset_index(drop=True), df[is_eval].reset_index(drop=True)


def temporal_split(df: pd.DataFrame, cutoff) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, evaluation): interactions with timestamp < cutoff train, the others evaluate.

    cutoff: unix seconds (int), a date string / pd.Timestamp, or a float in (0, 1) read as the
    quantile of timestamps (0.8 = the latest 20% evaluate). Evaluation rows whose user or item does
    not occur in train are dropped (their count is in `evaluation.attrs["dropped_cold"]`).
    """
    _check(df)
    if "timestamp" not in df.columns or df["timestamp"].isna().any():
        raise ValueError("temporal_split needs a timestamp for every row; use random_split or leave_one_out(by='random')")
    ts = df["timestamp"].to_numpy(dtype=np.int64)
    if isinstance(cutoff, float) and 0 < cutoff < 1:
        cut = int(np.quantile(ts, cutoff))
    elif isinstance(cutoff, (int, np.integer)):
        cut = int(cutoff)
    else:
        try:
            cut = int((pd.Timestamp(cutoff) - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1))
        except (ValueError, TypeError):
            raise ValueError(f"cutoff {cutoff!r} is not unix seconds, a date or a quantile in (0, 1)") from None
    before = ts < cut
    train, rest = df[before], df[~before]
    if len(train) == 0 or len(rest) == 0:
        raise ValueError(f"cutoff {cutoff!r} puts every interaction on one side; choose a cutoff inside "
                         f"[{pd.to_datetime(ts.min(), unit='s')}, {pd.to_datetime(ts.max(), unit='s')}]")
    known = rest["user_id"].isin(set(train["user_id"])) & rest["item_id"].isin(set(train["item_id"]))
    evaluation = rest[known].reset_index(drop=True)
    evaluation.attrs["dropped_cold"] = int((~known).sum())
    return train.reset_index(drop=True), evaluation


def make_split(df: pd.DataFrame, split: str = "random", seed: int = 0, frac: float = 0.8,
               cutoff=0.8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Dispatch by name: "random" (80:20 per user), "global" (80:20 of all interactions), "leave_one_out" (latest
    per user), "temporal" (quantile cutoff), "auto" (`resolve_split`). The split used is in
    `evaluation.attrs["split"]` (train's too)."""
    _check(df)
    split = resolve_split(df, split)
    train, evaluation = _dispatch(df, split, seed, frac, cutoff)
    train.attrs["split"] = evaluation.attrs["split"] = split
    return train, evaluation


def _dispatch(df, split, seed, frac, cutoff):
    if split == "global":
        return global_split(df, frac=frac, seed=seed)
    if split == "random":
        return random_split(df, frac=frac, seed=seed)
    if split == "leave_one_out":
        by = "timestamp" if "timestamp" in df.columns and df["timestamp"].notna().all() else "random"
        return leave_one_out(df, by=by, seed=seed)
    if split == "temporal":
        return temporal_split(df, cutoff)
    raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")


def cold_start_split(df: pd.DataFrame, split: str = "random", user_share: float = 0.1, item_share: float = 0.05,
                     seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, evaluation): `make_split(df, split)`, then a random `user_share` of the users and `item_share` of
    the items held out entirely (every interaction of theirs moved to evaluation), so the evaluation has cold
    users and cold items to measure cold start on data whose users all have long histories (ml-100k)."""
    for name, share in (("user_share", user_share), ("item_share", item_share)):
        if not 0 <= share < 1:
            raise ValueError(f"{name} must be in [0, 1), got {share}")
    rng = np.random.default_rng(seed)
    users, items = pd.unique(df["user_id"]), pd.unique(df["item_id"])
    cold_users = set(rng.choice(users, int(round(len(users) * user_share)), replace=False))
    cold_items = set(rng.choice(items, int(round(len(items) * item_share)), replace=False))
    train, evaluation = make_split(df, split, seed=seed)
    moved = train["user_id"].isin(cold_users) | train["item_id"].isin(cold_items)
    out_train = train[~moved].reset_index(drop=True)
    out_eval = pd.concat([evaluation, train[moved]], ignore_index=True)
    out_train.attrs["split"] = out_eval.attrs["split"] = f"{evaluation.attrs['split']}+cold"
    return out_train, out_eval


def validation_split(train: pd.DataFrame, split: str = "random", seed: int = 0, frac: float = 0.8,
                     cutoff=0.8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit part, validation part) of a training part, by the rule the evaluation part was split with, so
    validation figures stand for the evaluation protocol; deterministic for a seed. Both are new frames.

    - "global": a random `1 - frac` share of all training interactions (validation users may be cold, as
      evaluation users are);
    - "auto": resolved on `train` (`resolve_split`);
    - "random": per user, a random `1 - frac` share of the user's training interactions (each user keeps
      >= 1 in the fit part); on ml-100k's 80,000 training rows, 64,000 / 16,000.
    - "leave_one_out": each user's latest training interaction, i.e. the second-latest of the whole data
      when the evaluation part holds the latest (a random one without timestamps).
    - "temporal": the last `1 - cutoff` of the training period (quantile cutoff over the training
      timestamps), users and items unknown before it dropped, as `temporal_split` does.

    Carve validation from `train`, never from the evaluation part: that is what makes a figure chosen on
    it an honest one.
    """
    if split == "temporal" and not (isinstance(cutoff, float) and 0 < cutoff < 1):
        raise ValueError(f"validation_split(split='temporal') takes a quantile cutoff in (0, 1), got {cutoff!r}")
    return make_split(train, split, seed=seed, frac=frac, cutoff=cutoff)


def split_summary(train: pd.DataFrame, evaluation: pd.DataFrame) -> dict:
    """Sizes and invariants of a split, for reports/metrics.json: the evaluation share, how many evaluation
    users and items (and rows) are unknown to training (cold), and which protocols suit the split."""
    train_users, train_items = set(train["user_id"]), set(train["item_id"])
    eval_users, eval_items = set(evaluation["user_id"]), set(evaluation["item_id"])
    cold_user_rows = ~evaluation["user_id"].isin(train_users)
    cold_item_rows = ~evaluation["item_id"].isin(train_items)
    cold_users = len(eval_users - train_users)
    summary = {
        "train_rows": int(len(train)),
        "evaluation_rows": int(len(evaluation)),
        "evaluation_share": round(len(evaluation) / max(len(train) + len(evaluation), 1), 4),
        "evaluation_users": len(eval_users),
        "evaluation_users_in_train": len(eval_users) - cold_users,
        "evaluation_users_cold": cold_users,
        "evaluation_items": len(eval_items),
        "evaluation_items_cold": len(eval_items - train_items),
        "evaluation_rows_cold_user": int(cold_user_rows.sum()),
        "evaluation_rows_cold_item": int((cold_item_rows & ~cold_user_rows).sum()),
        "train_single_interaction_users": round(single_interaction_share(train), 4) if len(train) else 0.0,
    }
    summary["protocols"] = suited_protocols(summary)
    return summary


def suited_protocols(summary: dict) -> str:
    """One sentence: which evaluation protocol suits a split with these sizes (from `split_summary`)."""
    warm_rows = summary["evaluation_rows"] - summary["evaluation_rows_cold_user"] - summary["evaluation_rows_cold_item"]
    parts = [f"{warm_rows:,} evaluation rows of warm users and items: sampled and full ranking as usual"]
    if summary["evaluation_rows_cold_user"]:
        parts.append(f"{summary['evaluation_rows_cold_user']:,} rows of {summary['evaluation_users_cold']:,} cold users: "
                     "full ranking against popularity (global and within the user's segment), scored from side "
                     "features where a model has them; report them apart")
    if summary["evaluation_rows_cold_item"]:
        parts.append(f"{summary['evaluation_rows_cold_item']:,} rows of cold items: only models that score items "
                     "from their features can rank them; report them apart")
    return "; ".join(parts)


def write_split(train: pd.DataFrame, evaluation: pd.DataFrame, data_dir="data") -> tuple[Path, Path]:
    """Write data_dir/train.csv and data_dir/evaluation.csv, each atomically, both written before either
    replaces an earlier file (a failure while writing leaves the earlier pair untouched)."""
    targets = [Path(data_dir) / "train.csv", Path(data_dir) / "evaluation.csv"]
    with atomic_path(targets[0]) as tmp_train, atomic_path(targets[1]) as tmp_eval:
        train.to_csv(tmp_train, index=False)
        evaluation.to_csv(tmp_eval, index=False)
    return targets[0], targets[1]


def read_split(data_dir) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(train, evaluation) from DATA_DIR/train.csv and DATA_DIR/evaluation.csv, read with
    `read_interactions_csv` (ids as strings, MovieLens headers renamed); None when either file is missing."""
    files = [Path(data_dir) / "train.csv", Path(data_dir) / "evaluation.csv"]
    if not all(f.exists() for f in files):
        return None
    train, evaluation = (read_interactions_csv(f) for f in files)
    return train, evaluation
