"""What a fitted model has learned about items, the fastai collab chapter's way: the item bias (how much an item
is liked, or chosen, beyond what its users' vectors explain), a map of the item embeddings by principal
components, and the nearest items by cosine similarity of their embeddings.

All functions read a fitted `Recommender` and return tables indexed by item id; none changes the model.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def item_embeddings(model) -> pd.DataFrame | None:
    """The model's item embedding table (rows indexed by item id), or None if it has none (baselines).

    The MLP branch's item table when the model has one (`item_emb`), else the GMF / dot-product factors
    (`item_gmf`: the implicit CollabNN default has no MLP branch)."""
    module = getattr(model, "module", None)
    table = getattr(module, "item_emb", None) or getattr(module, "item_gmf", None)
    weight = getattr(table, "weight", None)
    if weight is None:
        return None
    return pd.DataFrame(weight.detach().cpu().numpy(), index=pd.Index(model.item_ids, name="item_id"))


def item_biases(model) -> pd.Series | None:
    """The model's item bias per item id (with the side features' bias where the model has them), or None when
    it has none (EASE, kNN, popularity, NeuMF). Rating models: in stars before the squash into the rating range's
    logit scale for the neural ones; the bias baseline's in stars."""
    module = getattr(model, "module", None)
    if module is not None and getattr(module, "bias", True) is not False and hasattr(module, "item_bias"):
        bias = module.item_table()[1] if hasattr(module, "item_table") else module.item_bias.weight[:, 0]
        values = bias.detach().cpu().numpy()
    elif hasattr(model, "_bi"):  # BiasBaseline: mean + user bias + item bias, in stars
        values = model._bi.detach().cpu().numpy()
    else:
        return None
    return pd.Series(values.astype(np.float64), index=pd.Index(model.item_ids, name="item_id"), name="item_bias")


def bias_extremes(biases: pd.Series, popularity: pd.Series | None = None, n: int = 10,
                  min_interactions: int = 0) -> pd.DataFrame:
    """The `n` lowest and `n` highest item biases: columns item_id, item_bias, end ("lowest" / "highest")[,
    interactions]; items with fewer than `min_interactions` training interactions are left out when
    `popularity` (interactions per item id) is given, so a bias learned from two ratings does not lead."""
    frame = biases.rename("item_bias").to_frame()
    if popularity is not None:
        frame["interactions"] = popularity.reindex(frame.index).fillna(0).astype(int)
        frame = frame[frame["interactions"] >= min_interactions]
    ordered = frame.sort_values("item_bias", kind="stable")
    low = ordered.head(n).assign(end="lowest")
    high = ordered.tail(n).iloc[::-1].assign(end="highest")
    return pd.concat([high, low]).rename_axis("item_id").reset_index()


def embedding_map(embeddings: pd.DataFrame, items=None, n_components: int = 2) -> pd.DataFrame:
    """Principal-component coordinates of item embeddings: columns pc1..pcN indexed by item id, of `items` (ids;
    default all), the PCA fitted on those rows (centred; numpy's SVD, which also gives the explained variance
    ratios, kept in `attrs["explained_variance"]`: fastai's `Tensor.pca` gives the coordinates only)."""
    table = embeddings if items is None else embeddings.loc[pd.Index(items).intersection(embeddings.index, sort=False)]
    if len(table) < 2:
        raise ValueError(f"a map needs at least 2 items with embeddings, got {len(table)}")
    x = table.to_numpy(dtype=np.float64)
    x = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    k = int(min(n_components, vt.shape[0]))
    out = pd.DataFrame(x @ vt[:k].T, index=table.index, columns=[f"pc{c + 1}" for c in range(k)])
    total = float((s ** 2).sum())
    out.attrs["explained_variance"] = [float(v) for v in (s[:k] ** 2 / total if total > 0 else np.zeros(k))]
    return out


def nearest_items(embeddings: pd.DataFrame, item_id: str, k: int = 10) -> pd.DataFrame:
    """The `k` items whose embeddings are closest to `item_id`'s by cosine similarity (itself left out): columns
    item_id, similarity in [-1, 1], most similar first (ties by id)."""
    item_id = str(item_id)
    if item_id not in embeddings.index:
        raise ValueError(f"item {item_id!r} has no embedding in this model (unknown to its training data); "
                         "choose an item the model was trained on")
    x = embeddings.to_numpy(dtype=np.float64)
    norms = np.linalg.norm(x, axis=1)
    unit = np.divide(x, norms[:, None], out=np.zeros_like(x), where=norms[:, None] > 0)
    position = embeddings.index.get_loc(item_id)
    similarity = unit @ unit[position]
    frame = pd.DataFrame({"item_id": embeddings.index.astype(str), "similarity": similarity})
    frame = frame.drop(index=position)
    return frame.sort_values(["similarity", "item_id"], ascending=[False, True], kind="stable").head(k).reset_index(drop=True)
