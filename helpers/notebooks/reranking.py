"""What reranking.ipynb needs: its re-rankers checked, the results table for reading, a worked example
user, and the conclusion written from the measured table.
"""
from __future__ import annotations

import ast

import numpy as np
import pandas as pd

from helpers import rerank
from helpers.data.eda import GENDER_NAMES
from helpers.rerank.experiments import MEASURES, TARGET, target_key

USER_SETS = ("auto", "all", "warm")

# Above this share of evaluation users unknown to training (Electronics' global split: 86%), "auto" measures the
# re-rankers on the users with a training history: a re-ranker re-orders a history's candidates, and every cold user
# of a profile gets the same popularity list (their figures are evaluation.ipynb's cold-start slice).
COLD_SHARE_FOR_WARM_ONLY = 0.5


def rerank_users(train: pd.DataFrame, evaluation: pd.DataFrame, which: str = "auto") -> tuple[np.ndarray, str]:
    """(the evaluation users the experiments measure, a sentence saying which and why). which: "all" | "warm"
    (those with training interactions) | "auto" (warm when more than COLD_SHARE_FOR_WARM_ONLY of the evaluation
    users are unknown to training, else all)."""
    if which not in USER_SETS:
        raise ValueError(f"USERS={which!r}; choose one of {USER_SETS}")
    users = pd.unique(evaluation["user_id"].astype(str).to_numpy())
    warm = pd.Index(users).isin(set(train["user_id"].astype(str)))
    n_cold = int((~warm).sum())
    if which == "auto":
        which = "warm" if len(users) and n_cold / len(users) > COLD_SHARE_FOR_WARM_ONLY else "all"
    if which == "all" or n_cold == 0:
        return users, f"all {len(users):,} evaluation users"
    return users[warm], (f"the {int(warm.sum()):,} evaluation users with a training history, of {len(users):,} (the other "
                         f"{n_cold:,}, {n_cold / len(users):.0%}, are unknown to training: every cold user of a side "
                         "profile gets the same popularity list; evaluation.ipynb reports them as its cold-user slice)")


def check_rerankers(variants, sweeps: dict) -> list[tuple[str, float]]:
    """Validate the notebook's RERANKERS ([method, weight] pairs) and SWEEPS ({method: weights});
    returns RERANKERS as (method, weight) tuples. A pair may also arrive as its string form
    ("('mmr', 0.5)"): papermill passes tuples that way."""
    out = []
    for v in variants:
        pair = ast.literal_eval(v) if isinstance(v, str) else v
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"each RERANKERS entry is [method, weight], got {v!r}")
        out.append((str(pair[0]), float(pair[1])))
    for method, weights in [(m, [w]) for m, w in out] + list(sweeps.items()):
        if method not in rerank.RERANKERS:
            raise ValueError(f"unknown re-ranker {method!r}; choose one of {rerank.RERANKERS}")
        for w in weights:
            rerank.check_weight(method, w)
    return out


def results_table(table: pd.DataFrame, digits: int = 3, k: int | None = None) -> pd.DataFrame:
    """The results as text cells 'mean [low, high]' (coverage, amplification and seconds: values); with `k`
    the column names carry it (NDCG@10 rather than NDCG@K)."""
    out = pd.DataFrame({"variant": table["variant"]})
    for name in ["hr", "ndcg", "ild", "avg_popularity", "long_tail_share", "calibration_kl"]:
        if name in table:
            d = 1 if name == "avg_popularity" else digits
            out[MEASURES[name]] = [f"{m:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]" for m, lo, hi in
                                   zip(table[name], table[f"{name}_low"], table[f"{name}_high"])]
    if "ndcg_diff" in table:
        out["NDCG@K vs base"] = [("" if pd.isna(m) else f"{m:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]")
                                 for m, lo, hi in zip(table["ndcg_diff"], table["ndcg_diff_low"], table["ndcg_diff_high"])]
    out["coverage"] = table["coverage"].map(lambda v: f"{v:.{digits}f}")
    out["amplification"] = table["amplification"].map(lambda v: f"{v:.{digits + 1}f}")
    out["seconds"] = table["seconds"].map(lambda v: f"{v:.2f}")
    if k is not None:
        out = out.rename(columns=lambda c: c.replace("@K", f"@{k}"))
    return out.set_index("variant")


def pick_example_user(per_user: dict, base_label: str, label: str) -> str:
    """The user whose calibration KL falls most from `base_label` to `label` (ties: smallest id), among
    users with a hit in the base list (so the example also shows what happens to a correct item)."""
    base, other = per_user[base_label], per_user[label]
    drop = (base["calibration_kl"] - other["calibration_kl"].reindex(base.index)).where(base["hr"] > 0)
    if drop.notna().sum() == 0:
        drop = base["calibration_kl"] - other["calibration_kl"].reindex(base.index)
    return str(drop.sort_values(ascending=False, kind="stable").index[0])


def example_lists(lists: dict, context, evaluation: pd.DataFrame, user: str, k: int = 10) -> pd.DataFrame:
    """One column per variant: the user's top k as 'title [categories]', '*' marking evaluation items."""
    held_out = set(evaluation.loc[evaluation["user_id"].astype(str) == str(user), "item_id"].astype(str))
    cols = {}
    for label, frame in lists.items():
        top = frame[(frame["user_id"].astype(str) == str(user)) & (frame["rank"] <= k)].sort_values("rank")
        idx = context.item_index(top["item_id"].to_numpy())
        cats = ["|".join(np.asarray(context.categories)[context.item_categories[i] > 0]) for i in idx]
        titles = context.item_title[idx] if context.item_title is not None else top["item_id"].to_numpy()
        cols[label] = [("* " if item in held_out else "") + f"{t} [{c}]"
                       for item, t, c in zip(top["item_id"].astype(str), titles, cats)]
    width = max(len(v) for v in cols.values())
    return pd.DataFrame({k_: v + [""] * (width - len(v)) for k_, v in cols.items()},
                        index=pd.RangeIndex(1, width + 1, name="rank"))


def history_profile(context, user: str, top: int = 6) -> pd.Series:
    """The user's history category distribution p(c | u), largest first (the calibration target)."""
    idx = context.user_index([user])[0]
    if idx < 0:
        return pd.Series(dtype=float)
    dist = pd.Series(context.user_history[idx], index=context.categories)
    return dist[dist > 0].sort_values(ascending=False).head(top).round(3)


def _significant(row, name) -> str:
    """'significant' where the paired interval of `name` excludes 0, 'within noise' where it includes it,
    'not compared' for a row without a paired interval (the base list itself)."""
    lo, hi = row.get(f"{name}_diff_low", np.nan), row.get(f"{name}_diff_high", np.nan)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "not compared"
    return "significant" if lo > 0 or hi < 0 else "within noise"


def _signed(value: float, digits: int = 3) -> str:
    """A change with its sign; one that rounds to zero at `digits` is written with one more digit, never -0.000."""
    if abs(value) < 0.5 * 10 ** -digits:
        return f"{value:+.{digits + 1}f}" if value != 0 else f"{0:.{digits}f}"
    return f"{value:+.{digits}f}"


def _names(labels) -> str:
    labels = [f"**{v}**" for v in labels]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def significance_sentence(table: pd.DataFrame, base_label: str, k: int, measure: str = "ndcg") -> str:
    """Which re-rankers change `measure` significantly against the base (paired 95% intervals), written from
    `table`. Only rows with a paired interval count: the base list (or any row without one) is no variant."""
    diff_low, diff_high = f"{measure}_diff_low", f"{measure}_diff_high"
    rr = table[(table["variant"] != base_label) & np.isfinite(table[diff_low].to_numpy(dtype=float))
               & np.isfinite(table[diff_high].to_numpy(dtype=float))]
    name = {"ndcg": f"NDCG@{k}", "hr": f"HR@{k}"}.get(measure, measure)
    if rr.empty:
        return f"No re-ranker was compared with the base list on {name}."
    up = rr[rr[diff_low] > 0]["variant"].tolist()
    down = rr[rr[diff_high] < 0]["variant"].tolist()
    same = rr[(rr[diff_low] <= 0) & (rr[diff_high] >= 0)]["variant"].tolist()
    parts = []
    for labels, verb in ((up, "raises"), (down, "lowers")):
        if labels:
            parts.append(f"{_names(labels)} {verb if len(labels) == 1 else verb[:-1]} {name} significantly")
    if same:
        parts.append(f"{_names(same)} {'leaves' if len(same) == 1 else 'leave'} {name} within noise")
    if not up:
        parts.append(f"no re-ranker raises {name} significantly")
    text = "; ".join(parts)
    return f"Against the base list (paired 95% intervals over the same users): {text}."


def timing_sentence(seconds: float, reference: float, what: str = "two-stage", reference_name: str = "full ranking") -> str:
    """`what` against `reference_name` in wall-clock time: the ratio as 'N x the time' and the difference in
    seconds, 'slower' or 'faster' by the sign of the difference."""
    if not (reference > 0 and np.isfinite(seconds)):
        return f"{what} took {seconds:.2f} s ({reference_name}: {reference:.2f} s)"
    diff = seconds - reference
    ratio = seconds / reference
    pace = ("the same time as" if abs(diff) < 0.005 else
            f"{abs(diff):.2f} s {'slower' if diff > 0 else 'faster'} than")
    return (f"{what} took {seconds:.2f} s against {reference:.2f} s for {reference_name}: {ratio:.2f}x the time, "
            f"{pace} {reference_name}")


def gap_points(value: float) -> str:
    """An exposure gap (a share difference) in signed percentage points: +0.8 pp."""
    return f"{100 * value:+.1f} pp"


def conclusion_text(table: pd.DataFrame, base_label: str, k: int, two_stage: pd.DataFrame | None = None,
                    exposure: pd.DataFrame | None = None) -> str:
    """Markdown bullets read off the results table, the two-stage table and the exposure table
    (`exposure_comparison`), so the text always matches the numbers."""
    base = table.set_index("variant").loc[base_label]
    lines = [f"Base list: **{base_label}**, HR@{k} {base['hr']:.3f}, NDCG@{k} {base['ndcg']:.3f}, "
             f"intra-list diversity {base['ild']:.3f}, long-tail share {base['long_tail_share']:.3f}, "
             f"calibration KL {base['calibration_kl']:.3f}, amplification {base['amplification']:.4f}."]
    for _, row in table[table["variant"] != base_label].iterrows():
        target = TARGET[target_key(row["method"], row["weight"])]
        b, v = base[target], row[target]
        verb = "raises" if v > b else "lowers" if v < b else "leaves"
        change = f" ({(v - b) / abs(b):+.0%})" if abs(b) >= 0.01 else ""  # no percentages of near-zero bases
        lines.append(f"**{row['variant']}** {verb} {MEASURES[target]} from {b:.3g} to {v:.3g}{change}; "
                     f"NDCG@{k} changes by {_signed(row['ndcg_diff'])} "
                     f"([{row['ndcg_diff_low']:+.3f}, {row['ndcg_diff_high']:+.3f}], {_significant(row, 'ndcg')}), "
                     f"HR@{k} by {_signed(row['hr_diff'])} ({_significant(row, 'hr')}); coverage {base['coverage']:.3f} -> "
                     f"{row['coverage']:.3f}.")
    if (table["variant"] != base_label).any():
        lines.append(significance_sentence(table, base_label, k))
    if two_stage is not None and len(two_stage) == 3:
        r_alone, k_alone, staged = (two_stage.iloc[i] for i in range(3))
        timing = timing_sentence(staged["seconds"], k_alone["seconds"], "it", "full ranking")
        lines.append(f"Two-stage (**{staged['variant']}**): NDCG@{k} {staged['ndcg']:.3f} against "
                     f"{k_alone['ndcg']:.3f} for the ranker alone ({_signed(staged['ndcg_diff'])}, "
                     f"{_significant(staged, 'ndcg')}) and {r_alone['ndcg']:.3f} for the retriever alone; "
                     f"{timing}.")
    if exposure is not None and len(exposure):
        gap_cols = [c for c in exposure.columns if c.startswith("gap: ")]
        base_gap = exposure[f"gap: {base_label}"]
        for group, g in base_gap.groupby(level="group"):
            g = g.droplevel("group")
            top = g.reindex(g.abs().sort_values(ascending=False).index[:3])
            shown = ", ".join(f"{c} {gap_points(v)}" for c, v in top.items())
            after = "; ".join(f"largest |gap| after **{c[5:]}**: "
                              f"{100 * exposure[c].xs(group, level='group').abs().max():.1f} pp"
                              for c in gap_cols if c != f"gap: {base_label}")
            who = GENDER_NAMES.get(str(group))
            lines.append(f"Exposure, {f'{who} users ({group})' if who else f'users of group {group}'}: the base "
                         f"lists' largest group-specific gaps (percentage points of the top {k} beyond what the "
                         f"histories and everyone's skew explain) are {shown}" + (f"; {after}." if after else "."))
    return "\n".join(f"- {line}" for line in lines)


def metrics_record(table: pd.DataFrame, two_stage: pd.DataFrame | None, sweeps: pd.DataFrame | None,
                   **extra) -> dict:
    """What reranking.ipynb records under `reranking` in metrics.json (variants by label)."""
    keep = [c for c in table.columns if c not in ("variant",)]
    out = {"variants": {r["variant"]: {c: r[c] for c in keep} for _, r in table.iterrows()}, **extra}
    if two_stage is not None:
        out["two_stage"] = {r["variant"]: {c: r[c] for c in two_stage.columns if c != "variant"}
                            for _, r in two_stage.iterrows()}
    if sweeps is not None:
        out["sweeps"] = {m: g.drop(columns="method").to_dict(orient="list") for m, g in sweeps.groupby("method")}
    return out

