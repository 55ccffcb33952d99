"""The marketing-bias questions of Wan et al., "Addressing Marketing Bias in Product Recommendations"
(WSDM 2020): do women and men buy different product-image segments (`model_attr`: "Female", "Male",
"Female&Male"), do they rate them differently, and does a recommender widen the gap?

- `segment_gender_counts` / `segment_gender_test`: the segment x gender contingency table and its
  chi-square test (Cramér's V, adjusted standardized residuals per cell).
- `mean_rating_table` / `rating_anova`: mean rating per cell (95% t interval) and a two-way ANOVA of
  rating on segment x gender.
- `recommended_segment_shares` / `amplification_sentence`: segment shares of a top-K list against the same
  users' history, per gender; a ratio above 1 means the model amplifies the segment for that gender.

Rows with a missing gender or segment are left out and counted in the result's `attrs`. Every function
returns a new object; the inputs are never modified.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats.contingency import association

from helpers.data.eda import GENDER_NAMES, require_columns

with warnings.catch_warnings():
    # statsmodels 0.14.5 decorates its docstrings with pandas' Substitution / Appender, which pandas 3
    # deprecates (Pandas4Warning at import time, not at use); nothing we call depends on them.
    warnings.filterwarnings("ignore", message=r"(Substitution|Appender) is deprecated", category=pd.errors.Pandas4Warning)
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

RESIDUAL_CUTOFF = 1.96  # |adjusted standardized residual| above it: the cell departs from independence (5% level)


def has_market_segments(df: pd.DataFrame, segment_col: str = "model_attr", gender_col: str = "user_gender") -> bool:
    """True when `df` has product-image segments and user genders, with at least one known gender."""
    return segment_col in df.columns and gender_col in df.columns and bool(_known(df[gender_col]).any())


def _known(values: pd.Series) -> pd.Series:
    """Mask of present values (not NaN / <NA> / empty string)."""
    return values.notna() & (values.astype("string").str.strip() != "")


def _gender_labels(values: pd.Series) -> pd.Series:
    """"F" / "M" as "female" / "male" (the names of helpers.data.eda); other values as they are."""
    return values.map(GENDER_NAMES).fillna(values).astype(str)


def _cells(df: pd.DataFrame, segment_col: str, gender_col: str, *extra: str, what: str) -> pd.DataFrame:
    """Rows with a known gender and segment as (segment, gender, *extra); attrs count what was left out."""
    require_columns(df, segment_col, gender_col, *extra, what=what)
    gender_ok, segment_ok = _known(df[gender_col]), _known(df[segment_col])
    if not gender_ok.any():
        raise ValueError(f"{what}: column '{gender_col}' has no known gender in {len(df):,} rows; "
                         "use a dataset with user genders (e.g. electronics), has_market_segments(df) tells")
    keep = gender_ok & segment_ok
    out = pd.DataFrame({"segment": df.loc[keep, segment_col].astype(str).to_numpy(),
                        "gender": _gender_labels(df.loc[keep, gender_col]).to_numpy(),
                        **{c: df.loc[keep, c].to_numpy() for c in extra}})
    out.attrs.update(left_out_unknown_gender=int((~gender_ok).sum()),
                     left_out_missing_segment=int((gender_ok & ~segment_ok).sum()))
    return out


def segment_gender_counts(df: pd.DataFrame, segment_col: str = "model_attr", gender_col: str = "user_gender") -> pd.DataFrame:
    """Interactions by segment (rows, sorted) x known gender (columns), the study's contingency table.

    Columns are two levels: ("interactions", gender) counts; ("share_of_segment", gender) the row shares
    (each gender's part of the segment's interactions, a row sums to 1); ("share_of_gender", gender) the
    column shares (the segment's part of each gender's interactions, a column sums to 1). A segment that
    only unknown-gender users bought is a row of zeros (its row shares NaN). Works on any frame with the
    two columns, e.g. top-K recommendations merged with user genders and item segments.
    """
    cells = _cells(df, segment_col, gender_col, what="segment_gender_counts")
    segments = sorted(df.loc[_known(df[segment_col]), segment_col].astype(str).unique())
    counts = pd.crosstab(cells["segment"], cells["gender"]).reindex(segments, fill_value=0)
    counts = counts.rename_axis(index=segment_col, columns="gender")
    row = counts.sum(axis=1).replace(0, np.nan)
    out = pd.concat({"interactions": counts, "share_of_segment": counts.div(row, axis=0),
                     "share_of_gender": counts / counts.sum(axis=0)}, axis=1)
    out.attrs.update(cells.attrs)
    return out


def _count_table(counts: pd.DataFrame) -> pd.DataFrame:
    return counts["interactions"] if isinstance(counts.columns, pd.MultiIndex) else counts


def segment_gender_test(counts: pd.DataFrame) -> dict:
    """Pearson chi-square test of independence of segment and gender on `segment_gender_counts(...)`.

    Returns plain numbers (JSON-ready): chi2, dof, p_value, cramers_v in [0, 1] (0 = independent), n,
    left_out_unknown_gender (from the table's attrs, None when absent), min_expected (below 5 the
    chi-square approximation is rough), the segments / genders left out for having no interactions,
    `residuals` {gender: {segment: r}} (adjusted standardized residuals, about N(0, 1) under
    independence; `pd.DataFrame(test["residuals"])` is the table) and the cells with r > 1.96 in
    `over_represented` (r < -1.96 in `under_represented`), largest first. No Yates correction, so chi2
    and V agree.
    """
    table = _count_table(counts)
    nonempty = table.loc[table.sum(axis=1) > 0, table.sum(axis=0) > 0]
    if nonempty.shape[0] < 2 or nonempty.shape[1] < 2:
        raise ValueError(f"segment_gender_test needs at least 2 segments and 2 genders with interactions; "
                         f"the table has segments {list(nonempty.index)} and genders {list(nonempty.columns)}")
    observed = nonempty.to_numpy(dtype=np.float64)
    result = stats.chi2_contingency(observed, correction=False)
    n = observed.sum()
    expected = result.expected_freq
    rows, cols = observed.sum(axis=1, keepdims=True) / n, observed.sum(axis=0, keepdims=True) / n
    adjusted = (observed - expected) / np.sqrt(expected * (1 - rows) * (1 - cols))
    residuals = pd.DataFrame(adjusted, index=nonempty.index.astype(str), columns=nonempty.columns.astype(str))
    cells = [{"segment": s, "gender": g, "residual": float(residuals.loc[s, g])}
             for s in residuals.index for g in residuals.columns]
    return {
        "chi2": float(result.statistic), "dof": int(result.dof), "p_value": float(result.pvalue),
        "cramers_v": float(association(observed.astype(np.int64), method="cramer", correction=False)),
        "n": int(n), "left_out_unknown_gender": counts.attrs.get("left_out_unknown_gender"),
        "min_expected": float(expected.min()),
        "left_out_segments": [str(s) for s in table.index if s not in nonempty.index],
        "left_out_genders": [str(g) for g in table.columns if g not in nonempty.columns],
        "residuals": residuals.to_dict(),
        "over_represented": sorted((c for c in cells if c["residual"] > RESIDUAL_CUTOFF), key=lambda c: -c["residual"]),
        "under_represented": sorted((c for c in cells if c["residual"] < -RESIDUAL_CUTOFF), key=lambda c: c["residual"]),
    }


def mean_rating_table(df: pd.DataFrame, segment_col: str = "model_attr", gender_col: str = "user_gender",
                      rating_col: str = "rating", confidence: float = 0.95) -> pd.DataFrame:
    """Per (segment, gender) cell: count, mean rating, std and the t interval of the mean (`confidence`).

    Every segment x gender pair is a row; an empty cell has count 0 and NaN mean, a one-rating cell a NaN
    interval. attrs["left_out_unknown_gender"] counts the rows left out for a missing gender.
    """
    cells = _cells(df, segment_col, gender_col, rating_col, what="mean_rating_table")
    cells = cells[cells[rating_col].notna()]
    grid = pd.MultiIndex.from_product([sorted(cells["segment"].unique()), sorted(cells["gender"].unique())],
                                      names=["segment", "gender"])
    g = cells.groupby(["segment", "gender"])[rating_col].agg(["size", "mean", "std"]).reindex(grid)
    count = g["size"].fillna(0).astype(int)
    sem = g["std"] / np.sqrt(count.where(count > 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        low, high = stats.t.interval(confidence, (count - 1).where(count > 1), loc=g["mean"], scale=sem)
    out = pd.DataFrame({"count": count, "mean_rating": g["mean"], "std": g["std"],
                        "ci_low": low, "ci_high": high}, index=grid).reset_index()
    out.attrs.update(cells.attrs, confidence=confidence)
    return out


def rating_anova(df: pd.DataFrame, segment_col: str = "model_attr", gender_col: str = "user_gender",
                 rating_col: str = "rating") -> pd.DataFrame:
    """Two-way ANOVA of rating on segment x gender with their interaction (statsmodels OLS, type II).

    Rows "segment", "gender", "segment:gender", "Residual"; columns sum_sq, df, F, p_value and
    partial_eta_sq (SS_effect / (SS_effect + SS_residual)). Interaction data are unbalanced, so the type
    matters: type II tests each main effect adjusted for the other but not for the interaction (the most
    powerful test when the interaction is negligible; when "segment:gender" is significant, read it first).
    When a segment x gender cell has no rating the interaction cannot be estimated: the table is then the
    additive model and attrs["interaction"] says which cells were empty. attrs also hold n and
    left_out_unknown_gender.
    """
    cells = _cells(df, segment_col, gender_col, rating_col, what="rating_anova").rename(columns={rating_col: "rating"})
    cells = cells[cells["rating"].notna()].assign(rating=lambda t: t["rating"].astype(np.float64))
    levels = {c: sorted(cells[c].unique()) for c in ("segment", "gender")}
    if min(len(v) for v in levels.values()) < 2:
        raise ValueError(f"rating_anova needs at least 2 segments and 2 genders with ratings; found {levels}")
    sizes = cells.groupby(["segment", "gender"]).size()
    empty = [f"{s} x {g}" for s in levels["segment"] for g in levels["gender"] if (s, g) not in sizes.index]
    formula = "rating ~ C(segment) + C(gender)" + ("" if empty else " + C(segment):C(gender)")
    fit = smf.ols(formula, data=cells).fit()
    if fit.df_resid < 1:
        raise ValueError(f"rating_anova has {len(cells)} ratings for {int(fit.df_model) + 1} parameters; "
                         "it needs more ratings than segment x gender cells")
    table = anova_lm(fit, typ=2).rename(columns={"PR(>F)": "p_value"})
    table.index = [i.replace("C(", "").replace(")", "") for i in table.index]
    table["partial_eta_sq"] = table["sum_sq"] / (table["sum_sq"] + table.loc["Residual", "sum_sq"])
    table.loc["Residual", "partial_eta_sq"] = np.nan
    table.attrs.update(cells.attrs, n=len(cells), anova_type=2,
                       interaction=f"not estimable: no ratings in {empty}; additive model" if empty else "estimated")
    return table


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def market_bias_sentence(test: dict, anova: pd.DataFrame, alpha: float = 0.05) -> str:
    """What the chi-square test and the ANOVA say, in words, with their numbers (tests at level `alpha`)."""
    link = "depend on" if test["p_value"] < alpha else "show no significant dependence on"
    text = (f"The product-image segments users buy {link} their gender (chi2 = {test['chi2']:.1f}, "
            f"dof = {test['dof']}, {_p(test['p_value'])}, Cramér's V = {test['cramers_v']:.3f}, "
            f"n = {test['n']:,} interactions of users with a known gender"
            + (f", {left:,} without one left out)" if (left := test.get("left_out_unknown_gender")) else ")"))
    over = [f"{c['gender']} users x {c['segment']} (r = {c['residual']:+.1f})" for c in test["over_represented"]]
    text += f"; over-represented: {', '.join(over)}." if over else "; no cell is over-represented at the 5% level."
    effect = lambda row: f"F = {row['F']:.2f}, {_p(row['p_value'])}, partial eta^2 = {row['partial_eta_sq']:.4f}"
    if "segment:gender" in anova.index:
        row = anova.loc["segment:gender"]
        gap = ("differs between segments" if row["p_value"] < alpha
               else "does not differ significantly between segments")
        text += f" In ratings, the gender gap {gap} (segment x gender interaction: {effect(row)})."
    else:
        text += f" In ratings, the segment x gender interaction is {anova.attrs.get('interaction', 'not in the table')}."
    mains = [f"{term} {'is' if anova.loc[term, 'p_value'] < alpha else 'is not'} significant ({effect(anova.loc[term])})"
             for term in ("segment", "gender") if term in anova.index]
    return text + (f" Main effects (type II): {'; '.join(mains)}." if mains else "")


def _segment_counts(pairs: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame, segment_col: str,
                    gender_col: str) -> pd.DataFrame:
    """(gender, segment, count) of user-item pairs joined to item segments and user genders."""
    joined = (pairs[["user_id", "item_id"]].merge(items, on="item_id", how="inner")
              .merge(users, on="user_id", how="inner"))
    cells = joined[_known(joined[segment_col]) & _known(joined[gender_col])]
    return pd.DataFrame({"gender": _gender_labels(cells[gender_col]).to_numpy(),
                         "segment": cells[segment_col].astype(str).to_numpy()}).value_counts()


def recommended_segment_shares(recommendations: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame, *,
                               history: pd.DataFrame, segment_col: str = "model_attr",
                               gender_col: str = "user_gender") -> pd.DataFrame:
    """Per gender, the share of each segment among recommended items next to its share among the same
    users' `history` (training interactions), and ratio = recommended_share / history_share:
    >1 means the model amplifies the segment for that gender (inf: recommended, never in the history).

    `recommendations` and `history` need user_id, item_id (a rank column is not used); `items` maps
    item_id -> segment_col, `users` user_id -> gender_col (one row each; a per-interaction frame works,
    the first row per id counts). Only recommended users with a known gender and items with a segment
    count. One tidy row per (gender, segment): history_count, history_share, recommended_count,
    recommended_share, ratio; the shares of a gender sum to 1.
    """
    require_columns(recommendations, "user_id", "item_id", what="recommended_segment_shares (recommendations)")
    require_columns(history, "user_id", "item_id", what="recommended_segment_shares (history)")
    require_columns(items, "item_id", segment_col, what="recommended_segment_shares (items)")
    require_columns(users, "user_id", gender_col, what="recommended_segment_shares (users)")
    items = items[["item_id", segment_col]].drop_duplicates("item_id")
    users = users[["user_id", gender_col]].drop_duplicates("user_id")
    users = users[_known(users[gender_col]) & users["user_id"].isin(recommendations["user_id"])]
    if users.empty:
        raise ValueError(f"recommended_segment_shares: no recommended user has a known '{gender_col}'; "
                         "pass users with genders for the users in the recommendations")
    rec = _segment_counts(recommendations, items, users, segment_col, gender_col).rename("recommended_count")
    hist = _segment_counts(history, items, users, segment_col, gender_col).rename("history_count")
    out = pd.concat([hist, rec], axis=1).fillna(0).astype(int)
    grid = pd.MultiIndex.from_product([sorted(out.index.get_level_values(0).unique()),
                                       sorted(out.index.get_level_values(1).unique())], names=["gender", "segment"])
    out = out.reindex(grid, fill_value=0).reset_index()
    for what in ("history", "recommended"):
        total = out.groupby("gender")[f"{what}_count"].transform("sum")
        out[f"{what}_share"] = out[f"{what}_count"] / total.replace(0, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = out["recommended_share"] / out["history_share"]
    return out[["gender", "segment", "history_count", "history_share", "recommended_count", "recommended_share", "ratio"]]


def amplification_sentence(table: pd.DataFrame) -> str:
    """The largest amplification in `recommended_segment_shares(...)`, in words, with its numbers."""
    require_columns(table, "gender", "segment", "history_share", "recommended_share", "ratio", what="amplification_sentence")
    new = table[np.isinf(table["ratio"])]
    finite = table[np.isfinite(table["ratio"])]
    if finite.empty and new.empty:
        return "No segment has both history and recommendations: there is no amplification to measure."
    if not new.empty:
        top = new.sort_values("recommended_share", ascending=False).iloc[0]
        return (f"Largest amplification: {top['gender']} users get {top['segment']} products in "
                f"{top['recommended_share']:.1%} of their recommendations although none is in their history.")
    top = finite.sort_values("ratio", ascending=False).iloc[0]
    if top["ratio"] <= 1:
        return f"No segment is amplified: every recommended/history ratio is at most {top['ratio']:.2f}."
    return (f"Largest amplification: {top['gender']} users get {top['segment']} products {top['ratio']:.2f}x as "
            f"often as in their history ({top['recommended_share']:.1%} of recommendations against "
            f"{top['history_share']:.1%} of interactions).")
