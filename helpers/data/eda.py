"""Tables behind EDA.ipynb: size and sparsity, long tail, gender / category / year breakdowns.

Every function returns a new DataFrame or dict; the input is never modified.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from helpers.data.datasets import explode_categories

GENDER_NAMES = {"F": "female", "M": "male"}


def require_columns(df: pd.DataFrame, *columns: str, what: str = "this analysis") -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} needs column(s) {missing}; the dataset has {list(df.columns)}")


def dataset_profile(df: pd.DataFrame) -> dict:
    """Size, density and long-tail figures every recsys paper reports (plain numbers, JSON-ready)."""
    require_columns(df, "user_id", "item_id", "rating", what="dataset_profile")
    n, n_users, n_items = len(df), df["user_id"].nunique(), df["item_id"].nunique()
    user_counts = df.groupby("user_id").size().to_numpy()
    item_counts = np.sort(df.groupby("item_id").size().to_numpy())[::-1]
    top20 = item_counts[: max(1, int(np.ceil(0.2 * n_items)))].sum() / n
    ts = df["timestamp"].dropna() if "timestamp" in df.columns else pd.Series(dtype="Int64")
    return {
        "interactions": int(n),
        "users": int(n_users),
        "items": int(n_items),
        "density": float(n / (n_users * n_items)),
        "sparsity": float(1 - n / (n_users * n_items)),
        "interactions_per_user_mean": float(user_counts.mean()),
        "interactions_per_user_median": float(np.median(user_counts)),
        "interactions_per_user_min": int(user_counts.min()),
        "users_with_one_interaction": int((user_counts == 1).sum()),
        "interactions_per_item_mean": float(item_counts.mean()),
        "interactions_per_item_median": float(np.median(item_counts)),
        "items_with_one_interaction": int((item_counts == 1).sum()),
        "top20pct_items_share_of_interactions": float(top20),
        "item_gini": gini(item_counts),
        "rating_mean": float(df["rating"].mean()),
        "rating_std": float(df["rating"].std()),
        "first_interaction": str(pd.to_datetime(int(ts.min()), unit="s").date()) if len(ts) else None,
        "last_interaction": str(pd.to_datetime(int(ts.max()), unit="s").date()) if len(ts) else None,
    }


def profile_table(profile: dict) -> pd.DataFrame:
    """The profile as a two-column table for display."""
    def fmt(v, key=""):
        if isinstance(v, float) and any(w in key for w in ("density", "sparsity", "share")):
            return f"{v:.2%}"
        if isinstance(v, float):
            return f"{v:.4%}" if v < 0.01 else f"{v:,.3f}"
        return f"{v:,}" if isinstance(v, int) else str(v)
    return pd.DataFrame({"measure": list(profile), "value": [fmt(v, k) for k, v in profile.items()]})


def gini(counts) -> float:
    """Gini coefficient of counts, in [0, 1): 0 = every item equally popular."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    if len(x) == 0 or x.sum() == 0:
        return 0.0
    cum = np.cumsum(x)
    return float((len(x) + 1 - 2 * (cum / cum[-1]).sum()) / len(x))


def interactions_by_gender(df: pd.DataFrame) -> pd.DataFrame:
    """Per gender: interactions, users, interactions per user, mean rating (unknown gender as its own row)."""
    require_columns(df, "user_gender", "user_id", "rating", what="interactions by gender")
    g = df.assign(gender=df["user_gender"].map(GENDER_NAMES).fillna("unknown"))
    out = g.groupby("gender").agg(interactions=("rating", "size"), users=("user_id", "nunique"),
                                  mean_rating=("rating", "mean"))
    out["interactions_per_user"] = out["interactions"] / out["users"]
    out["share"] = out["interactions"] / out["interactions"].sum()
    return out.sort_values("interactions", ascending=False).reset_index()


def top_categories(df: pd.DataFrame, n: int = 15) -> pd.DataFrame:
    """The n categories with most interactions (a multi-genre item counts in each of its genres)."""
    e = explode_categories(df)
    out = e.groupby("item_category").agg(interactions=("rating", "size"), items=("item_id", "nunique"),
                                         mean_rating=("rating", "mean"))
    return out.sort_values("interactions", ascending=False).head(n).reset_index()


def ratings_by_gender_category(df: pd.DataFrame, n_categories: int = 10) -> pd.DataFrame:
    """Rows (item_category, gender, rating) for the n most popular categories, known genders only."""
    require_columns(df, "user_gender", "item_category", "rating", what="rating by gender x category")
    cats = top_categories(df, n_categories)["item_category"].tolist()
    e = explode_categories(df[df["user_gender"].isin(list(GENDER_NAMES))])
    e = e[e["item_category"].isin(cats)]
    return pd.DataFrame({"item_category": pd.Categorical(e["item_category"], categories=cats, ordered=True),
                         "gender": e["user_gender"].map(GENDER_NAMES).to_numpy(),
                         "rating": e["rating"].to_numpy()})


def gender_category_means(df: pd.DataFrame, n_categories: int = 10, confidence: float = 0.95) -> pd.DataFrame:
    """Per (category, gender) of the n most popular categories, known genders only: count, mean rating, std and
    the t interval of the mean (`confidence`; each rating one observation)."""
    t = ratings_by_gender_category(df, n_categories)
    g = t.groupby(["item_category", "gender"], observed=True)["rating"].agg(["size", "mean", "std"]).reset_index()
    sem = g["std"] / np.sqrt(g["size"])
    with np.errstate(invalid="ignore", divide="ignore"):
        low, high = stats.t.interval(confidence, (g["size"] - 1).where(g["size"] > 1), loc=g["mean"], scale=sem)
    out = pd.DataFrame({"item_category": g["item_category"].astype(str), "gender": g["gender"], "count": g["size"],
                        "mean_rating": g["mean"], "std": g["std"], "ci_low": low, "ci_high": high})
    out.attrs["confidence"] = confidence
    return out


def gender_category_gaps(df: pd.DataFrame, n_categories: int = 10, confidence: float = 0.95) -> pd.DataFrame:
    """Mean rating by category for each gender and the female - male gap with its Welch t interval
    (`gap_low`, `gap_high`), largest gaps first."""
    means = gender_category_means(df, n_categories, confidence).set_index(["item_category", "gender"])
    pivot = means["mean_rating"].unstack("gender")
    pivot.columns.name = None
    pivot["gap_female_minus_male"] = pivot.get("female", np.nan) - pivot.get("male", np.nan)
    if {"female", "male"} <= set(means.index.get_level_values("gender")):
        f, m = means.xs("female", level="gender"), means.xs("male", level="gender")
        vf, vm = (f["std"] ** 2 / f["count"]).reindex(pivot.index), (m["std"] ** 2 / m["count"]).reindex(pivot.index)
        dof = (vf + vm) ** 2 / (vf ** 2 / (f["count"].reindex(pivot.index) - 1)
                                + vm ** 2 / (m["count"].reindex(pivot.index) - 1))
        half = stats.t.ppf(0.5 + confidence / 2, dof) * np.sqrt(vf + vm)
        pivot["gap_low"] = pivot["gap_female_minus_male"] - half
        pivot["gap_high"] = pivot["gap_female_minus_male"] + half
    else:
        pivot["gap_low"] = pivot["gap_high"] = np.nan
    out = pivot.sort_values("gap_female_minus_male", key=np.abs, ascending=False).reset_index()
    out.attrs["confidence"] = confidence
    return out


def ratings_by_year(df: pd.DataFrame, max_groups: int = 25, min_count: int = 20) -> pd.DataFrame:
    """Rows (year, rating): every rating with a year, in periods of 1, 5, 10 or 20 years, the shortest that
    gives at most `max_groups` periods from the first year to the last. Every period of that span is a
    category, so none is dropped, an empty one included. attrs: `period_years`, `counts` (ratings per
    period), `sparse` (periods with fewer than `min_count` ratings, whose boxes rest on little),
    `min_count` and `without_year` (ratings left out because they have no year)."""
    require_columns(df, "year", "rating", what="ratings over the years")
    d = df[df["year"].notna()]
    years = d["year"].astype(int).to_numpy()
    ratings = d["rating"].to_numpy()
    if len(years) == 0:
        out = pd.DataFrame({"year": pd.Categorical([]), "rating": np.zeros(0)})
        out.attrs.update(period_years=1, counts={}, sparse=[], min_count=min_count, without_year=int(len(df)))
        return out
    for width in (1, 5, 10, 20, 50):
        first, last = years.min() // width * width, years.max() // width * width
        if (last - first) // width + 1 <= max_groups:
            break
    starts = np.arange(first, last + 1, width)
    names = [str(y) if width == 1 else f"{y}-{y + width - 1}" for y in starts]
    label = np.asarray(names, dtype=object)[(years // width * width - first) // width]
    out = pd.DataFrame({"year": pd.Categorical(label, categories=names, ordered=True), "rating": ratings})
    counts = out.groupby("year", observed=False).size()
    out.attrs.update(period_years=int(width), counts={k: int(v) for k, v in counts.items()},
                     sparse=[k for k, v in counts.items() if v < min_count], min_count=min_count,
                     without_year=int(len(df) - len(d)))
    return out


def activity_counts(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Interactions per user and per item, each sorted in decreasing order (for long-tail plots)."""
    return {"users": np.sort(df.groupby("user_id").size().to_numpy())[::-1],
            "items": np.sort(df.groupby("item_id").size().to_numpy())[::-1]}


def rating_distribution(df: pd.DataFrame) -> pd.DataFrame:
    """Count and share of each rating value."""
    c = df["rating"].value_counts().sort_index()
    return pd.DataFrame({"rating": c.index, "count": c.to_numpy(), "share": (c / c.sum()).to_numpy()})



# ------------------------------------------------------------------ sentences written from the tables above
def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def profile_sentence(profile: dict, dataset: str = "") -> str:
    """Size and density in words (`dataset_profile`): every number from the data."""
    name = f"{dataset}: " if dataset else ""
    ones = profile["users_with_one_interaction"]
    activity = (f"every user has at least {profile['interactions_per_user_min']:,} interactions"
                if ones == 0 else f"{ones:,} users ({ones / profile['users']:.0%}) have a single interaction")
    return (f"{name}{profile['interactions']:,} interactions by {profile['users']:,} users on {profile['items']:,} items. "
            f"Density {profile['density']:.2%} of the user x item matrix (sparsity {profile['sparsity']:.2%}); "
            f"{activity}, the median user has {profile['interactions_per_user_median']:,.0f} and the median item "
            f"{profile['interactions_per_item_median']:,.0f}.")


def gender_sentence(by_gender: pd.DataFrame) -> str:
    """Who gives the interactions (`interactions_by_gender`): shares compared in percentage points, users and
    interactions per user; '' with fewer than two genders."""
    rows = by_gender.sort_values("interactions", ascending=False).reset_index(drop=True)
    if len(rows) < 2:
        return ""
    a, b = rows.iloc[0], rows.iloc[1]
    ratio = a["users"] / b["users"] if b["users"] else float("nan")
    per = "more" if a["interactions_per_user"] > b["interactions_per_user"] else "fewer"
    text = (f"{str(a['gender']).capitalize()} users give {_pct(a['share'])} of the interactions "
            f"({a['interactions']:,} of {rows['interactions'].sum():,}), {100 * (a['share'] - b['share']):.1f} "
            f"percentage points more than {b['gender']} users ({_pct(b['share'])}): there are {ratio:.1f} times as many "
            f"of them ({a['users']:,} against {b['users']:,}), and each gives {per} interactions "
            f"({a['interactions_per_user']:.0f} against {b['interactions_per_user']:.0f}).")
    rest = rows.iloc[2:]
    if len(rest):
        text += " " + "; ".join(f"{r['gender']} users: {_pct(r['share'])} ({r['users']:,} users)"
                                for _, r in rest.iterrows()) + "."
    return text


def categories_sentence(categories: pd.DataFrame, total: int) -> str:
    """The leading categories (`top_categories`) and what the shown ones hold; `total`: all interactions
    (an item in several categories counts in each, so shares are of interactions, not of the bars' sum)."""
    if categories.empty:
        return ""
    top = categories.head(4)
    lead = ", ".join(f"{r['item_category']} ({r['interactions']:,}, {_pct(r['interactions'] / total)} of the "
                     "interactions)" if i == 0 else f"{r['item_category']} ({r['interactions']:,})"
                     for i, (_, r) in enumerate(top.iterrows()))
    last = categories.iloc[-1]
    return (f"The most popular categories: {lead}. The last of the {len(categories)} shown, {last['item_category']}, "
            f"has {last['interactions']:,}, {top.iloc[0]['interactions'] / max(last['interactions'], 1):.0f} times "
            "fewer than the first.")


def gaps_sentence(gaps: pd.DataFrame, top: int = 3) -> str:
    """The largest female - male rating gaps (`gender_category_gaps`), in stars, with how many intervals
    exclude 0."""
    g = gaps.dropna(subset=["gap_female_minus_male"])
    if g.empty:
        return ""
    level = gaps.attrs.get("confidence", 0.95)
    shown = []
    for _, r in g.head(top).iterrows():
        who = "women" if r["gap_female_minus_male"] > 0 else "men"
        shown.append(f"{who} rate {r['item_category']} higher by {abs(r['gap_female_minus_male']):.2f} stars "
                     f"({level:.0%} interval of the gap [{r['gap_low']:+.2f}, {r['gap_high']:+.2f}])")
    clear = g[(g["gap_low"] > 0) | (g["gap_high"] < 0)]
    means = g[[c for c in ("female", "male") if c in g]].to_numpy(dtype=float)
    return (f"The largest gaps: {'; '.join(shown)}. In {len(clear)} of the {len(g)} categories the interval of the "
            f"gap excludes 0; the category means themselves run from {np.nanmin(means):.2f} to {np.nanmax(means):.2f} "
            "stars" + (", so every gap is small beside the differences between categories."
                       if g["gap_female_minus_male"].abs().max() < (np.nanmax(means) - np.nanmin(means)) / 2 else "."))


def years_sentence(year_rows: pd.DataFrame) -> str:
    """Mean rating of the first, best and last periods of `ratings_by_year`, what is left out and which boxes
    rest on few ratings."""
    attrs = year_rows.attrs
    means = year_rows.groupby("year", observed=True)["rating"].agg(["mean", "size"])
    if means.empty:
        return "No rating has a year."
    first, last = means.index[0], means.index[-1]
    best = means["mean"].idxmax()
    older = means.iloc[: max(1, len(means) // 2)]
    newer = means.iloc[max(1, len(means) // 2):]
    w_old = float((older["mean"] * older["size"]).sum() / older["size"].sum())
    w_new = float((newer["mean"] * newer["size"]).sum() / newer["size"].sum()) if len(newer) else w_old
    trend = ("older items are rated higher than recent ones" if w_old > w_new + 0.05 else
             "recent items are rated higher than older ones" if w_new > w_old + 0.05 else
             "the mean rating hardly changes with the year")
    text = [f"Mean rating {means.loc[first, 'mean']:.2f} in {first}, highest in {best} ({means.loc[best, 'mean']:.2f}) "
            f"and {means.loc[last, 'mean']:.2f} in {last}; weighted by ratings, the earlier half of the periods "
            f"averages {w_old:.2f} against {w_new:.2f} for the later half: {trend}."]
    sparse = attrs.get("sparse") or []
    if sparse:
        counts = attrs.get("counts", {})
        text.append(f"Boxes with fewer than {attrs.get('min_count', 20)} ratings are drawn hollow: "
                    + ", ".join(f"{p} ({counts.get(p, 0):,})" for p in sparse) + ".")
    if attrs.get("without_year"):
        text.append(f"{attrs['without_year']:,} ratings have no year and are not shown.")
    return " ".join(text)


def rating_distribution_sentence(dist: pd.DataFrame, profile: dict | None = None) -> str:
    """The most common rating value and the share of the low ones (`rating_distribution`)."""
    if dist.empty:
        return ""
    mode = dist.loc[dist["share"].idxmax()]
    values = dist["rating"].to_numpy(dtype=float)
    low_cut = values.min() + (values.max() - values.min()) / 4
    low = dist[dist["rating"] <= low_cut]
    fmt = (lambda v: f"{v:g}")
    text = (f"The most common rating is {fmt(mode['rating'])} ({_pct(mode['share'])} of the interactions); ratings of "
            f"{' or '.join(fmt(v) for v in low['rating'])} make {_pct(low['share'].sum())}")
    if profile:
        text += f"; the mean rating is {profile['rating_mean']:.2f}"
    return text + "."


def long_tail_sentence(profile: dict) -> str:
    """How concentrated item popularity is (`dataset_profile`)."""
    return (f"The 20% most popular items hold {_pct(profile['top20pct_items_share_of_interactions'])} of the "
            f"interactions (Gini {profile['item_gini']:.2f}); {profile['items_with_one_interaction']:,} items have a "
            "single interaction.")
