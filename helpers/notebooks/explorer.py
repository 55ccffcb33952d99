"""The user explorer of explore.ipynb, as plain functions: who the users are, what a user had, what each model
recommends them and why, what the re-rankers make of it, and which items are alike.

The widget (`helpers.notebooks.explorer_widget`) and the notebook's static view both call these, so what a
reader sees in the rendered HTML is what JupyterLab shows for the same user and settings.

Why an item is recommended:
- "exact": the model's score decomposes over the user's history (`Recommender.history_contributions`: EASE,
  item kNN, the CollabNN default with its history term and item-item branch, MF with history): the history
  items that add most to the item's score, with what each adds; the rest of the score (biases, the user's own
  vector) is shown beside.
- "nearest": the score does not decompose (an MLP over user and item, NeuMF, MF without history): the history
  items whose embeddings are closest to the item's (cosine), a pointer rather than a cause.
- "popularity": models without history or embeddings (most popular, segment popularity, biases): the item's
  training interactions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from helpers import rerank
from helpers.models import Recommender
from helpers.models.interpretation import item_embeddings, nearest_items

EXPLORER_RERANKERS = ["affinity", "popularity", "mmr", "calibration"]  # per-user re-rankers (fairness acts on groups)
HELD_OUT_MARK = "✓"  # marks a recommended item the user has in the evaluation split (a hit)
LIST_COLUMNS = ["rank", "held_out", "title", "category", "score", "why"]  # what a list shows a reader


@dataclass(frozen=True)
class ExplorerData:
    """What the explorer shows besides the models: the split and the side tables, indexed for lookups."""
    train: pd.DataFrame        # user_id, item_id[, rating][, timestamp]: the histories
    evaluation: pd.DataFrame   # the held-out interactions (hits are marked)
    items: pd.DataFrame        # indexed by item_id: item_title, item_category (where the dataset has them)
    users: pd.DataFrame        # indexed by user_id: user_gender, training, held_out (interaction counts)

    def title(self, item_ids) -> np.ndarray:
        """Titles of item ids (the id where the dataset has no title)."""
        ids = pd.Index(np.asarray(item_ids).astype(str))
        if "item_title" not in self.items.columns:
            return ids.to_numpy(dtype=object)
        titles = self.items["item_title"].reindex(ids)
        return np.where(titles.isna() | (titles.astype(str) == ""), ids, titles.astype(str)).astype(object)

    def category(self, item_ids) -> np.ndarray:
        ids = pd.Index(np.asarray(item_ids).astype(str))
        if "item_category" not in self.items.columns:
            return np.full(len(ids), "", dtype=object)
        return self.items["item_category"].reindex(ids).fillna("").astype(str).to_numpy(dtype=object)


def explorer_data(train: pd.DataFrame, evaluation: pd.DataFrame, items: pd.DataFrame,
                  users: pd.DataFrame) -> ExplorerData:
    """The explorer's tables from the split and `side_tables(...)`'s (items, users); nothing is changed."""
    both = pd.concat([train[["user_id"]], evaluation[["user_id"]]]).astype(str)
    table = pd.DataFrame(index=pd.Index(pd.unique(both["user_id"]), name="user_id"))
    genders = users.astype({"user_id": str}).drop_duplicates("user_id").set_index("user_id").get("user_gender")
    table["user_gender"] = (genders.reindex(table.index) if genders is not None
                            else pd.Series(np.nan, index=table.index)).astype("string").fillna("unknown")
    table["training"] = train["user_id"].astype(str).value_counts().reindex(table.index).fillna(0).astype(int)
    table["held_out"] = evaluation["user_id"].astype(str).value_counts().reindex(table.index).fillna(0).astype(int)
    catalogue = items.astype({"item_id": str}).drop_duplicates("item_id").set_index("item_id")
    return ExplorerData(train=train, evaluation=evaluation, items=catalogue, users=table.sort_index())


def matching_users(data: ExplorerData, query: str = "", gender: str = "any", activity=(0, None),
                   limit: int = 500) -> list[str]:
    """User ids that contain `query` (case-insensitive), of `gender` ("any" for all), with a number of training
    interactions within `activity` (low, high; None = no bound): sorted by id, at most `limit`."""
    users = data.users
    keep = np.ones(len(users), dtype=bool)
    if query.strip():
        keep &= users.index.str.contains(query.strip(), case=False, regex=False)
    if gender != "any":
        keep &= (users["user_gender"] == gender).to_numpy()
    low, high = activity
    keep &= (users["training"] >= (low or 0)).to_numpy()
    if high is not None:
        keep &= (users["training"] <= high).to_numpy()
    return users.index[keep][:limit].tolist()


def default_user(data: ExplorerData) -> str:
    """The user the static view shows: among users with both a training history and held-out items, the one whose
    number of training interactions is closest to those users' median (ties: smallest id), a typical user rather
    than an extreme one."""
    users = data.users[(data.users["training"] > 0) & (data.users["held_out"] > 0)]
    if not len(users):
        users = data.users
    if not len(users):
        raise ValueError("the split has no users; check DATA_DIR/train.csv and evaluation.csv")
    distance = (users["training"] - users["training"].median()).abs()
    return str(pd.DataFrame({"d": distance.to_numpy()}, index=users.index).sort_values("d", kind="stable").index[0])


def _dates(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values, unit="s", errors="coerce").dt.date
    return pd.to_datetime(values, errors="coerce", utc=True).dt.date


def user_history(data: ExplorerData, user: str) -> pd.DataFrame:
    """The user's training interactions, newest first: item_id, title, category[, rating][, date]."""
    rows = data.train[data.train["user_id"].astype(str) == str(user)]
    out = pd.DataFrame({"item_id": rows["item_id"].astype(str).to_numpy()})
    out["title"] = data.title(out["item_id"])
    out["category"] = data.category(out["item_id"])
    if "rating" in rows.columns:
        out["rating"] = rows["rating"].to_numpy()
    if "timestamp" in rows.columns:
        out["date"] = _dates(rows["timestamp"].reset_index(drop=True)).to_numpy()
        out = out.sort_values(["date", "item_id"], ascending=[False, True], kind="stable", na_position="last")
    return out.reset_index(drop=True)


def held_out_items(data: ExplorerData, user: str) -> set[str]:
    """The user's items in the evaluation split."""
    return set(data.evaluation.loc[data.evaluation["user_id"].astype(str) == str(user), "item_id"].astype(str))


def _explained(values: np.ndarray, names: np.ndarray, n: int, signed: bool) -> str:
    order = np.argsort(-values, kind="stable")[:n]
    order = order[values[order] > 0] if signed else order
    return " · ".join(f"{names[j]} ({values[j]:+.2f})" if signed else f"{names[j]} ({values[j]:.2f})" for j in order)


def reasons(model: Recommender, data: ExplorerData, user: str, item_ids, n: int = 3) -> tuple[pd.DataFrame, str]:
    """(one row per item of `item_ids`: why, from_history, rest; the kind of reason: "exact", "nearest",
    "popularity" or "cold start"), see the module docstring. from_history + rest is the item's score for
    "exact" (NaN otherwise)."""
    item_ids = np.asarray(item_ids).astype(str)
    u = int(model.user_index([str(user)])[0])
    items = model.item_index(item_ids)
    nan = np.full(len(item_ids), np.nan)
    popularity = model.item_popularity[np.maximum(items, 0)] * (items >= 0)
    fallback = pd.DataFrame({"why": [f"{int(c):,} training interactions" for c in popularity],
                             "from_history": nan, "rest": nan})
    if u < 0:
        return fallback, "cold start"
    known = items >= 0
    parts = model.history_contributions(u, items[known]) if known.all() else None
    if parts is not None:
        hist, contributions, rest = parts
        names = data.title(model.item_ids[hist])
        why = [_explained(contributions[a], names, n, signed=True) or "no history item adds to it"
               for a in range(len(item_ids))]
        return pd.DataFrame({"why": why, "from_history": contributions.sum(1).astype(np.float64),
                             "rest": rest.astype(np.float64)}), "exact"
    embeddings = item_embeddings(model)
    if embeddings is None:
        return fallback, "popularity"
    hist = model.seen[u].indices
    x = embeddings.to_numpy(dtype=np.float64)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    similarity = unit[np.maximum(items, 0)] @ unit[hist].T  # [len(items), h]
    names = data.title(model.item_ids[hist])
    why = [_explained(similarity[a], names, n, signed=False) if known[a] else "unknown to the model"
           for a in range(len(item_ids))]
    return pd.DataFrame({"why": why, "from_history": nan, "rest": nan}), "nearest"


def recommendation_table(model: Recommender, data: ExplorerData, user: str, k: int = 10,
                         n_reasons: int = 3) -> pd.DataFrame:
    """The user's top k from `model` (items seen in training excluded): rank, title, category, score, held_out
    (HELD_OUT_MARK where the user has the item in the evaluation split), why, from_history, rest, item_id;
    attrs["reason"] names the kind of reason (see `reasons`)."""
    top = model.recommend([str(user)], k=k)
    return _with_reasons(top, model, data, user, n_reasons)


def _with_reasons(top: pd.DataFrame, model: Recommender, data: ExplorerData, user: str, n_reasons: int) -> pd.DataFrame:
    ids = top["item_id"].astype(str).to_numpy()
    held = held_out_items(data, user)
    why, kind = reasons(model, data, user, ids, n_reasons)
    out = pd.DataFrame({"rank": top["rank"].to_numpy(), "title": data.title(ids), "category": data.category(ids),
                        "score": top["score"].to_numpy(dtype=np.float64),
                        "held_out": [HELD_OUT_MARK if i in held else "" for i in ids]})
    out = pd.concat([out, why], axis=1)
    out["item_id"] = ids
    out.attrs["reason"] = kind
    return out


def reranked_table(model: Recommender, context, data: ExplorerData, user: str, method: str, weight: float,
                   k: int = 10, n_candidates: int = 100, n_reasons: int = 3, similarity: str = "category") -> pd.DataFrame:
    """The user's top k after re-ranking the model's top `n_candidates` with `method` at `weight` (see
    helpers.rerank; weight 0 keeps the model's order), in the columns of `recommendation_table`; the score is the
    model's."""
    if method not in EXPLORER_RERANKERS:
        raise ValueError(f"the explorer re-ranks one user with {EXPLORER_RERANKERS}; got {method!r} "
                         "(fairness balances groups of users: see reranking.ipynb)")
    candidates = model.recommend([str(user)], k=n_candidates)
    params = {"mmr": {"k": k, "similarity": similarity}, "calibration": {"k": k}}.get(method, {})
    lists = rerank.rerank(candidates, context, method, weight, **params)
    top = lists.sort_values("rank", kind="stable").head(k)
    return _with_reasons(top, model, data, user, n_reasons)


def side_by_side(tables: dict, k: int = 10) -> pd.DataFrame:
    """One column per list (name -> a table of `recommendation_table`): rank 1..k down, 'title' cells,
    HELD_OUT_MARK before the items the user has in the evaluation split."""
    columns = {}
    for name, table in tables.items():
        cells = [f"{mark} {title}".strip() for mark, title in zip(table["held_out"], table["title"])][:k]
        columns[name] = cells + [""] * (k - len(cells))
    return pd.DataFrame(columns, index=pd.RangeIndex(1, k + 1, name="rank"))


def hits(tables: dict) -> pd.Series:
    """Held-out items in each list (name -> count)."""
    return pd.Series({name: int((table["held_out"] == HELD_OUT_MARK).sum()) for name, table in tables.items()},
                     name="hits")


def similar_items(model: Recommender, data: ExplorerData, item_id: str, k: int = 10) -> pd.DataFrame:
    """The k items most like `item_id` for `model`: cosine of its item embeddings where it has them, else cosine
    of the items' columns in the training interactions (who had both): title, category, similarity, item_id;
    attrs["basis"] says which."""
    embeddings = item_embeddings(model)
    if embeddings is not None:
        near, basis = nearest_items(embeddings, item_id, k), "embedding cosine"
    else:
        near, basis = co_occurrence_neighbours(model.seen, model.item_ids, item_id, k), "co-occurrence cosine"
    out = pd.DataFrame({"title": data.title(near["item_id"]), "category": data.category(near["item_id"]),
                        "similarity": near["similarity"].to_numpy(), "item_id": near["item_id"].to_numpy()})
    out.attrs["basis"] = basis
    return out


def co_occurrence_neighbours(seen: sp.csr_matrix, item_ids: np.ndarray, item_id: str, k: int = 10) -> pd.DataFrame:
    """The k items whose users overlap most with `item_id`'s (cosine of the binary item columns of `seen`, itself
    left out): item_id, similarity in [0, 1], most similar first (ties by id)."""
    position = np.flatnonzero(np.asarray(item_ids).astype(str) == str(item_id))
    if not len(position):
        raise ValueError(f"item {item_id!r} is unknown to this model's training data; choose an item it was trained on")
    x = sp.csc_matrix(seen, dtype=np.float64)
    x.data[:] = 1.0
    column = x[:, position[0]]
    overlap = np.asarray((x.T @ column).todense()).ravel()
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
    similarity = np.divide(overlap, norms * norms[position[0]], out=np.zeros_like(overlap), where=norms > 0)
    frame = pd.DataFrame({"item_id": np.asarray(item_ids).astype(str), "similarity": similarity}).drop(index=position[0])
    return frame.sort_values(["similarity", "item_id"], ascending=[False, True], kind="stable").head(k).reset_index(drop=True)


def view_html(table: pd.DataFrame, columns=None, digits: int = 3) -> str:
    """An HTML table of `table` (its `columns`; numbers rounded) for the widget's panels, text escaped."""
    shown = table if columns is None else table[[c for c in columns if c in table.columns]]
    return shown.round(digits).to_html(index=False, escape=True, border=0, classes="explorer-table", na_rep="")


def decomposition_error(model: Recommender, user: str, item_ids) -> float | None:
    """max |from_history + rest - score| over `item_ids` for a known `user` (None when the model's reasons are
    not exact): the check that the reasons shown add up to the model's own scores."""
    u = int(model.user_index([str(user)])[0])
    items = model.item_index(np.asarray(item_ids).astype(str))
    if u < 0 or (items < 0).any():
        return None
    parts = model.history_contributions(u, items)
    if parts is None:
        return None
    _, contributions, rest = parts
    scores = model.score_users(np.array([u]))[0].numpy()[items]
    return float(np.abs(contributions.sum(1) + rest - scores).max()) if len(items) else 0.0


def view_summary(data: ExplorerData, user: str, tables: dict, k: int = 10) -> str:
    """A paragraph (markdown) on what the static view shows for `user`, every number from the tables."""
    info = data.users.loc[str(user)]
    counts = hits(tables)
    best = counts.max()
    leaders = [name for name, value in counts.items() if value == best]
    parts = [f"User **{user}** ({info['user_gender']}) has {int(info['training']):,} training interactions and "
             f"{int(info['held_out']):,} held out in the evaluation split."]
    parts.append("Held-out items in each top " + f"{k}: " + ", ".join(f"{n} {int(v)}" for n, v in counts.items()) + "; "
                 + (f"{' and '.join(leaders)} find{'s' if len(leaders) == 1 else ''} the most ({int(best)})."
                    if best > 0 else "no model finds any of them for this user."))
    kinds = {name: table.attrs.get("reason", "") for name, table in tables.items()}
    exact = [n for n, kind in kinds.items() if kind == "exact"]
    nearest = [n for n, kind in kinds.items() if kind == "nearest"]
    if exact:
        parts.append(f"The reasons of {', '.join(exact)} are exact: each list's `from_history` and `rest` add up to "
                     "its score.")
    if nearest:
        parts.append(f"For {', '.join(nearest)} the score does not split over the history; the reasons shown are the "
                     "history items nearest to each recommendation in the model's embedding space.")
    return " ".join(parts)


def bias_sentence(name: str, extremes: pd.DataFrame, n: int = 3) -> str:
    """One sentence naming the highest and lowest item biases of `extremes` (from `bias_extremes`, with a title
    column)."""
    high = extremes[extremes["end"] == "highest"].head(n)
    low = extremes[extremes["end"] == "lowest"].head(n)
    fmt = lambda t: ", ".join(f"{row.title} ({row.item_bias:+.2f})" for row in t.itertuples())
    return (f"**{name}**: the highest item biases, liked or chosen beyond what the vectors explain: {fmt(high)}; "
            f"the lowest: {fmt(low)}.")
