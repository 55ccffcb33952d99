"""What reranking.ipynb needs: its re-rankers checked, the results table for reading, a worked example
user, and the conclusion written from the measured table.
"""
from __future__ import annotations

import ast

import numpy as np
import pandas as pd

from helpers import rerank
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


def results_table(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The results as text cells 'mean [low, high]' (coverage, amplification and seconds: values)."""
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
    lo, hi = row[f"{name}_diff_low"], row[f"{name}_diff_high"]
    return "significant" if lo > 0 or hi < 0 else "within noise"


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
        acc = row["ndcg_diff"]
        lines.append(f"**{row['variant']}** {verb} {MEASURES[target]} from {b:.3g} to {v:.3g}{change}; "
                     f"NDCG@{k} changes by {acc:+.3f} "
                     f"([{row['ndcg_diff_low']:+.3f}, {row['ndcg_diff_high']:+.3f}], {_significant(row, 'ndcg')}), "
                     f"HR@{k} by {row['hr_diff']:+.3f} ({_significant(row, 'hr')}); coverage {base['coverage']:.3f} -> "
                     f"{row['coverage']:.3f}.")
    rr = table[table["variant"] != base_label]
    if len(rr):
        def names(frame):
            return ", ".join(f"**{v}**" for v in frame["variant"]) if len(frame) else "none"

        up, down = rr[rr["ndcg_diff_low"] > 0], rr[rr["ndcg_diff_high"] < 0]
        same = rr[(rr["ndcg_diff_low"] <= 0) & (rr["ndcg_diff_high"] >= 0)]
        lines.append(f"NDCG@{k} against the base (paired 95% intervals): significantly higher with {names(up)}; "
                     f"no significant change with {names(same)}; significantly lower with {names(down)}.")
    if two_stage is not None and len(two_stage) == 3:
        r_alone, k_alone, staged = (two_stage.iloc[i] for i in range(3))
        faster = k_alone["seconds"] / staged["seconds"] if staged["seconds"] > 0 else float("nan")
        lines.append(f"Two-stage (**{staged['variant']}**): NDCG@{k} {staged['ndcg']:.3f} against "
                     f"{k_alone['ndcg']:.3f} for the ranker alone ({staged['ndcg_diff']:+.3f}, "
                     f"{_significant(staged, 'ndcg')}) and {r_alone['ndcg']:.3f} for the retriever alone; "
                     f"{staged['seconds']:.2f}s against {k_alone['seconds']:.2f}s for full ranking "
                     f"({faster:.1f}x {'faster' if faster >= 1 else 'slower'}).")
    if exposure is not None and len(exposure):
        gap_cols = [c for c in exposure.columns if c.startswith("gap: ")]
        base_gap = exposure[f"gap: {base_label}"]
        for group, g in base_gap.groupby(level="group"):
            g = g.droplevel("group")
            top = g.reindex(g.abs().sort_values(ascending=False).index[:3])
            shown = ", ".join(f"{c} {v:+.3f}" for c, v in top.items())
            after = "; ".join(f"largest |gap| after **{c[5:]}**: {exposure[c].xs(group, level='group').abs().max():.3f}"
                              for c in gap_cols if c != f"gap: {base_label}")
            lines.append(f"Exposure, users '{group}': the base lists' largest group-specific gaps (share of the "
                         f"top {k} beyond what the histories and everyone's skew explain) are {shown}"
                         + (f"; {after}." if after else "."))
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

