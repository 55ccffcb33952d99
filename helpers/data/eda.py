"""Tables behind EDA.ipynb: size and sparsity, long tail, gender / category / year breakdowns.

Every function returns a new DataFrame or dict; the input is never modified.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

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
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4%}" if v < 0.01 else f"{v:,.3f}"
        return f"{v:,}" if isinstance(v, int) else str(v)
    return pd.DataFrame({"measure": list(profile), "value": [fmt(v) for v in profile.values()]})


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


def gender_category_gaps(df: pd.DataFrame, n_categories: int = 10) -> pd.DataFrame:
    """Mean rating by category for each gender and the female - male gap, largest gaps first."""
    t = ratings_by_gender_category(df, n_categories)
    pivot = t.groupby(["item_category", "gender"], observed=True)["rating"].mean().unstack("gender")
    pivot["gap_female_minus_male"] = pivot.get("female", np.nan) - pivot.get("male", np.nan)
    return pivot.sort_values("gap_female_minus_male", key=np.abs, ascending=False).reset_index()


def ratings_by_year(df: pd.DataFrame, max_groups: int = 25, min_count: int = 20) -> pd.DataFrame:
    """Rows (year_group, rating). Years with fewer than `min_count` ratings are left out; when more than
    `max_groups` years remain they are grouped into 5-year (then 10-year) periods so boxes stay readable."""
    require_columns(df, "year", "rating", what="ratings over the years")
    d = df[df["year"].notna()]
    years = d["year"].astype(int).to_numpy()
    ratings = d["rating"].to_numpy()
    for width in (1, 5, 10):
        groups = years // width * width
        counts = pd.Series(groups).value_counts()
        keep = counts[counts >= min_count].index
        if len(keep) <= max_groups or width == 10:
            break
    mask = np.isin(groups, keep)
    label = (groups.astype(str) if width == 1 else
             np.char.add(np.char.add(groups.astype(str), "-"), (groups + width - 1).astype(str)))
    order = sorted(set(label[mask]))
    return pd.DataFrame({"year": pd.Categorical(label[mask], categories=order, ordered=True),
                         "rating": ratings[mask]})


def activity_counts(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Interactions per user and per item, each sorted in decreasing order (for long-tail plots)."""
    return {"users": np.sort(df.groupby("user_id").size().to_numpy())[::-1],
            "items": np.sort(df.groupby("item_id").size().to_numpy())[::-1]}


def rating_distribution(df: pd.DataFrame) -> pd.DataFrame:
    """Count and share of each rating value."""
    c = df["rating"].value_counts().sort_index()
    return pd.DataFrame({"rating": c.index, "count": c.to_numpy(), "share": (c / c.sum()).to_numpy()})

