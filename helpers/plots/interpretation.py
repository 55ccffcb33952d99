"""Figures of what a model learned about items: the labelled map of its item embeddings (explore.ipynb)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def _short(text: str, width: int = 32) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _overlaps(box, boxes) -> bool:
    return any(box.overlaps(other) for other in boxes)


def embedding_map_figure(coords: pd.DataFrame, labels: pd.Series, title: str = "", max_labels: int = 40) -> plt.Figure:
    """Scatter of the first two principal components (`coords`: pc1, pc2 indexed by item id, with
    attrs["explained_variance"]); the items of `labels` (item id -> text, most important first) are drawn darker
    and labelled, up to `max_labels`, a label left out where it would cover one already placed."""
    fig, ax = plt.subplots(figsize=(10, 7.5))
    ax.scatter(coords["pc1"], coords["pc2"], s=8, color="#bbbbbb", linewidths=0, label="items")
    chosen = [i for i in labels.index if i in coords.index][:max_labels]
    ax.scatter(coords.loc[chosen, "pc1"], coords.loc[chosen, "pc2"], s=16, color="#1b6ca8", linewidths=0,
               label=f"the {len(chosen)} most popular (labelled where there is room)")
    variance = coords.attrs.get("explained_variance", [np.nan, np.nan])
    ax.set_xlabel(f"first principal component ({variance[0]:.1%} of the variance)")
    ax.set_ylabel(f"second principal component ({variance[1]:.1%} of the variance)")
    ax.set_title(title)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    placed = []
    for item in chosen:
        x, y = coords.loc[item, "pc1"], coords.loc[item, "pc2"]
        text = ax.annotate(_short(str(labels[item])), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7.5,
                           color="#123")
        box = text.get_window_extent(renderer).expanded(1.02, 1.1)
        if _overlaps(box, placed):
            text.remove()
            continue
        placed.append(box)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
