"""Figures of the marketing-bias analysis (`helpers.data.market_bias`). Each returns a matplotlib Figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.plots.eda import PALETTE, figure_title
from helpers.plots.figures import draw_intervals

OTHER_COLORS = ["#7570b3", "#e7298a", "#66a61e", "#e6ab02"]


def _colors(genders) -> list[str]:
    """The EDA palette for female / male, further colours for any other gender label."""
    others = iter(OTHER_COLORS * 4)
    return [PALETTE.get(g) or next(others) for g in genders]


def _offsets(n: int, width: float) -> np.ndarray:
    """Centres of n side-by-side bars (or points) of `width` around each group's x."""
    return (np.arange(n) - (n - 1) / 2) * width


def segment_gender_figure(counts: pd.DataFrame, dataset: str = ""):
    """Grouped bars per segment: each gender's share of its interactions in the segment (bars of one
    gender sum to 1, so genders of different sizes compare), the interaction count on each bar."""
    shares, numbers = counts["share_of_gender"], counts["interactions"]
    segments, genders = [str(s) for s in shares.index], [str(g) for g in shares.columns]
    width = 0.8 / len(genders)
    x = np.arange(len(segments))
    crowded = len(segments) * len(genders) > 8
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(segments) * len(genders) + 1.5), 4))
    for offset, gender, color in zip(_offsets(len(genders), width), genders, _colors(genders)):
        bars = ax.bar(x + offset, shares[gender].fillna(0).to_numpy(), width * 0.95, color=color, label=gender)
        ax.bar_label(bars, labels=[f"{n:,}" for n in numbers[gender]], fontsize=7, padding=2,
                     rotation=90 if crowded else 0)
    if {"female", "male"} <= set(genders):  # the share comparison, in percentage points, under each segment
        gap = 100 * (shares["female"].fillna(0) - shares["male"].fillna(0))
        segments = [f"{s}\n(female - male: {g:+.1f} pp)" for s, g in zip(segments, gap.to_numpy())]
    ax.set_xticks(x, segments)
    ax.set_xlabel(f"product-image segment ({shares.index.name or 'segment'})")
    ax.set_ylabel("share of the gender's interactions")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.margins(y=0.3 if crowded else 0.15)
    ax.legend(title="user gender", frameon=False)
    ax.set_title(figure_title(dataset, "product-image segment by user gender (numbers = interactions)"))
    fig.tight_layout()
    return fig


def mean_rating_figure(table: pd.DataFrame, dataset: str = ""):
    """Mean rating per segment x gender with its confidence interval (whiskers) and the count under it;
    the y axis spans the intervals, not 0..5, so gaps of a tenth of a star stay visible."""
    segments, genders = list(dict.fromkeys(table["segment"])), list(dict.fromkeys(table["gender"]))
    width = 0.6 / max(1, len(genders) - 1) if len(genders) > 1 else 0
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(segments) + 2), 4))
    for offset, gender, color in zip(_offsets(len(genders), width), genders, _colors(genders)):
        rows = table[table["gender"] == gender].set_index("segment").reindex(segments)
        pos = np.arange(len(segments)) + offset
        draw_intervals(ax, pos, rows["ci_low"], rows["ci_high"], color=color, cap=0.05)
        ax.plot(pos, rows["mean_rating"], "o", color=color, label=gender, zorder=3)
        for p, low, n in zip(pos, rows["ci_low"].fillna(rows["mean_rating"]), rows["count"].fillna(0)):
            if np.isfinite(low):
                ax.annotate(f"n={int(n):,}", (p, low), xytext=(0, -4), textcoords="offset points", ha="center",
                            va="top", fontsize=7, color="#444444")
    values = pd.concat([table["ci_low"], table["ci_high"], table["mean_rating"]]).dropna()
    if len(values):
        low, high = values.min(), values.max()
        pad = max(0.05, 0.15 * (high - low))
        ax.set_ylim(low - 1.5 * pad, high + pad)
    ax.set_xticks(np.arange(len(segments)), segments)
    ax.set_xlim(-0.6, len(segments) - 0.4)
    ax.set_xlabel("product-image segment")
    level = table.attrs.get("confidence", 0.95)
    ax.set_ylabel(f"mean rating ({level:.0%} CI)")
    ax.legend(title="user gender", frameon=False)
    ax.set_title(figure_title(dataset, "mean rating by segment x user gender"))
    fig.tight_layout()
    return fig


def amplification_figure(table: pd.DataFrame, dataset: str = ""):
    """Bars of recommended_share / history_share from 1, per gender (groups) x segment (colours): above
    the line the model recommends the segment more than the gender bought it. Labels give the two
    shares; a segment absent from the history (ratio inf) is drawn at the top and marked "new"."""
    genders, segments = list(dict.fromkeys(table["gender"])), list(dict.fromkeys(table["segment"]))
    ratio = table["ratio"].to_numpy(dtype=float)
    finite = ratio[np.isfinite(ratio)]
    top = max(1.2, finite.max() * 1.1) if len(finite) else 1.5
    width = 0.8 / len(segments)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(genders) * len(segments) + 1.5), 4))
    colors = plt.get_cmap("Set2")(np.arange(len(segments)) % 8)
    for offset, segment, color in zip(_offsets(len(segments), width), segments, colors):
        rows = table[table["segment"] == segment].set_index("gender").reindex(genders)
        r = rows["ratio"].to_numpy(dtype=float)
        shown = np.where(np.isinf(r), top, r)
        bars = ax.bar(np.arange(len(genders)) + offset, np.nan_to_num(shown - 1), width * 0.95, bottom=1,
                      color=color, label=segment)
        labels = ["" if np.isnan(v) else ("new" if np.isinf(v) else f"{rec:.0%}/{hist:.0%}")
                  for v, rec, hist in zip(r, rows["recommended_share"], rows["history_share"])]
        ax.bar_label(bars, labels=labels, fontsize=7, padding=2)
    ax.axhline(1, color="black", lw=0.8)
    ax.set_xticks(np.arange(len(genders)), genders)
    ax.set_xlabel("user gender")
    ax.set_ylabel("recommended share / history share")
    low = min(finite.min(), 1) if len(finite) else 1
    pad = 0.12 * (top - low)
    ax.set_ylim(max(0, low - pad), top + pad)
    ax.legend(title="segment", frameon=False, fontsize=8)
    ax.set_title(figure_title(dataset, "segment amplification by the recommender (labels: recommended/history)"))
    fig.tight_layout()
    return fig
