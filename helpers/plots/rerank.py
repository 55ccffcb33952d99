"""Figures of reranking.ipynb. Each function returns a matplotlib Figure (save with `helpers.plots.save_figure`)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.transforms import Bbox

from helpers.data.eda import GENDER_NAMES
from helpers.plots.figures import draw_intervals

COLORS = {"affinity": "#1b9e77", "popularity": "#d95f02", "mmr": "#7570b3", "calibration": "#e7298a",
          "fairness": "#66a61e"}
MARKERS = {"affinity": "o", "popularity": "s", "mmr": "^", "calibration": "D", "fairness": "v"}

LABELS = {"ndcg": "NDCG@{k}", "hr": "HR@{k}", "ild": "intra-list diversity (categories)",
          "long_tail_share": "long-tail share of the list", "calibration_kl": "calibration KL",
          "avg_popularity": "average popularity", "coverage": "catalogue coverage",
          "amplification": "stereotype amplification"}

# offsets (points) tried in turn for a weight label; a label that fits none of them is left out
LABEL_OFFSETS = ((4, 4), (4, -11), (-4, 4), (-4, -11), (8, -3), (-8, -3), (0, 9), (0, -15))


def measure_label(name: str, k: int | None = None) -> str:
    """The axis label of a measure, with the list length where it has one ("NDCG@10"; "NDCG@K" without k)."""
    return LABELS.get(name, name).format(k="K" if k is None else k)


def group_name(group) -> str:
    """A user group as a reader names it: 'female' for F, 'male' for M, anything else as it is."""
    return GENDER_NAMES.get(str(group), str(group))


def _overlaps(box, boxes) -> bool:
    return any(box.overlaps(b) for b in boxes)


def place_labels(ax, points, texts, colors, avoid=()) -> list:
    """Annotate each (x, y) in `points` with its text at the first offset of LABEL_OFFSETS whose box overlaps
    no label placed before it nor any box in `avoid` (display coordinates); labels that fit nowhere are left
    out. Returns the annotations placed (their boxes never overlap one another)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    placed, boxes = [], list(avoid)
    for (x, y), text, color in zip(points, texts, colors):
        for dx, dy in LABEL_OFFSETS:
            ann = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=7, color=color,
                              ha="left" if dx >= 0 else "right", va="bottom" if dy >= 0 else "top")
            box = ann.get_window_extent(renderer).expanded(1.05, 1.1)
            if not _overlaps(box, boxes) and ax.bbox.contains(box.x0, box.y0) and ax.bbox.contains(box.x1, box.y1):
                placed.append(ann)
                boxes.append(box)
                break
            ann.remove()
    return placed


def _marker_box(ax, x, y, size_points: float):
    """The display box of a marker of `size_points` at data (x, y)."""
    cx, cy = ax.transData.transform((x, y))
    half = size_points * ax.figure.dpi / 72 / 2
    return Bbox([[cx - half, cy - half], [cx + half, cy + half]])


ZOOM_SHARE = 0.08  # points within this share of each axis' span from the base count as crowding it
ZOOM_MIN_POINTS = 4  # this many crowded points open a zoomed panel around the base


def _draw_sweeps(ax, sweeps: pd.DataFrame, x: str, y: str, span_x: float, span_y: float, legend: bool) -> list:
    """The base star and one line per re-ranker on `ax`; returns [((x, y), weight label, colour)] of the
    points other than the base."""
    base = sweeps[sweeps["weight"] == 0]
    if len(base):
        ax.plot(base[x].iloc[0], base[y].iloc[0], "*", color="#222222", markersize=16, label="base (weight 0)",
                zorder=2)
    points = []
    for method, g in sweeps.groupby("method", sort=False):
        g = g.sort_values("weight")
        color = COLORS.get(method, "#666666")
        still = (np.ptp(g[x].to_numpy(dtype=float)) < 0.01 * span_x and np.ptp(g[y].to_numpy(dtype=float)) < 0.01 * span_y)
        label = f"{method} (stays at the base at every weight)" if still else method
        ax.plot(g[x], g[y], "-", marker=MARKERS.get(method, "o"), color=color, label=label if legend else None,
                markersize=5, mfc="white" if still else color, lw=1.6, zorder=3)
        points += [((r[x], r[y]), f"{r['weight']:g}", color) for _, r in g.iterrows() if r["weight"] != 0]
    ax.grid(alpha=0.3)
    return points


def _label_points(ax, points, star=None) -> None:
    """Weight labels on `ax` for the points inside its limits, kept off the markers, the star and the legend."""
    fig = ax.figure
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    inside = [p for p in points if x0 <= p[0][0] <= x1 and y0 <= p[0][1] <= y1]
    avoid = [_marker_box(ax, *star, 16)] if star is not None else []
    avoid += [_marker_box(ax, px, py, 5) for (px, py), _, _ in inside]
    if ax.get_legend() is not None:
        avoid.append(ax.get_legend().get_window_extent(fig.canvas.get_renderer()))
    place_labels(ax, [p for p, _, _ in inside], [t for _, t, _ in inside], [c for _, _, c in inside], avoid)


def tradeoff_figure(sweeps: pd.DataFrame, x: str = "ild", y: str = "ndcg", title: str = "", k: int | None = None):
    """One line per re-ranker through its sweep of weights (x: a list property, y: accuracy at k); the
    base list (weight 0) is the black star every line starts from, drawn under the lines so a re-ranker that
    never leaves it stays visible (its legend entry says so); each point is labelled with its weight where
    the label does not collide with another label, a marker or the star (`place_labels`). When
    ZOOM_MIN_POINTS or more points crowd the star, a second panel zooms on them (their labels go there)."""
    span_x = float(np.ptp(sweeps[x].to_numpy(dtype=float))) or 1.0
    span_y = float(np.ptp(sweeps[y].to_numpy(dtype=float))) or 1.0
    base = sweeps[sweeps["weight"] == 0]
    star = (float(base[x].iloc[0]), float(base[y].iloc[0])) if len(base) else None
    near = sweeps[(sweeps["weight"] != 0)]
    if star is not None:
        near = near[((near[x] - star[0]).abs() <= ZOOM_SHARE * span_x) & ((near[y] - star[1]).abs() <= ZOOM_SHARE * span_y)]
    zoom = star is not None and len(near) >= ZOOM_MIN_POINTS
    if zoom:
        fig, (ax, ax_z) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    else:
        fig, ax = plt.subplots(figsize=(8, 5.5))
    points = _draw_sweeps(ax, sweeps, x, y, span_x, span_y, legend=True)
    ax.set_xlabel(measure_label(x, k))
    ax.set_ylabel(measure_label(y, k))
    ax.legend(fontsize=8, loc="best")
    ax.margins(0.06)
    if zoom:
        _draw_sweeps(ax_z, sweeps, x, y, span_x, span_y, legend=False)
        xs = np.r_[near[x].to_numpy(dtype=float), star[0]]
        ys = np.r_[near[y].to_numpy(dtype=float), star[1]]
        pad_x, pad_y = 0.15 * (np.ptp(xs) or 0.01 * span_x), 0.15 * (np.ptp(ys) or 0.01 * span_y)
        ax_z.set_xlim(xs.min() - pad_x, xs.max() + pad_x)
        ax_z.set_ylim(ys.min() - pad_y, ys.max() + pad_y)
        ax_z.set_xlabel(measure_label(x, k))
        ax_z.set_title("zoom on the base list", fontsize=10)
        ax.indicate_inset_zoom(ax_z, edgecolor="#888888")
    fig.suptitle(title or f"{measure_label(y, k)} against {measure_label(x, k)}, sweeping each weight")
    fig.tight_layout()
    near_keys = set(zip(near[x], near[y])) if zoom else set()
    _label_points(ax, [p for p in points if p[0] not in near_keys], star)
    if zoom:
        _label_points(ax_z, points, star)
    return fig


def accuracy_interval_figure(table: pd.DataFrame, measure: str = "ndcg", title: str = "", k: int | None = None):
    """Two panels per variant, the base first and the re-rankers sorted by their paired change (best first):
    left, the mean with its 95% bootstrap interval (base: dashed line); right, the paired change against the
    base (same users resampled together; 0 dashed), its value written beside it and filled where the interval
    excludes 0. The marginal intervals overlap even where the paired change is clearly non-zero: read the
    right panel."""
    name = measure_label(measure, k)
    diff = f"{measure}_diff"
    order = table.iloc[:1]
    if len(table) > 1:
        rest = table.iloc[1:]
        order = pd.concat([order, rest.sort_values(diff, ascending=False, kind="stable") if diff in rest else rest])
    fig, (ax, ax_d) = plt.subplots(1, 2, figsize=(12, 0.5 * len(order) + 1.6), sharey=True)
    y = np.arange(len(order))[::-1]
    methods = order["method"] if "method" in order else pd.Series(["none"] * len(order))
    colors = [COLORS.get(str(meth), "#333333") for meth in methods]
    m = order[measure].to_numpy(dtype=float)
    for pos, lo, hi, c in zip(y, order[f"{measure}_low"], order[f"{measure}_high"], colors):
        draw_intervals(ax, [pos], [lo], [hi], horizontal=True, color=c)
    ax.scatter(m, y, c=colors, zorder=3)
    ax.axvline(m[0], color="k", ls="--", lw=0.8)
    ax.set_yticks(y, order["variant"], fontsize=10)
    ax.set_xlabel(f"{name} (95% bootstrap interval over users)")
    ax.grid(axis="x", alpha=0.3)
    if diff in order:
        d = order[diff].to_numpy(dtype=float)
        lo, hi = order[f"{diff}_low"].to_numpy(dtype=float), order[f"{diff}_high"].to_numpy(dtype=float)
        for pos, a, b, c in zip(y, lo, hi, colors):
            draw_intervals(ax_d, [pos], [a], [b], horizontal=True, color=c)
        for pos, value, a, b, c in zip(y, d, lo, hi, colors):
            if np.isfinite(value):
                significant = a > 0 or b < 0
                ax_d.scatter([value], [pos], color=c, facecolor=c if significant else "white", zorder=3, s=36)
                text = f"{value:+.4f}" if abs(value) < 5e-4 else f"{value:+.3f}"  # never "-0.000"
                ax_d.annotate(text + ("" if significant else " (within noise)"), (b, pos),
                              xytext=(5, 0), textcoords="offset points", va="center", fontsize=8, color="#333333",
                              bbox={"fc": "white", "ec": "none", "pad": 0.8, "alpha": 0.9}, zorder=4)
        ax_d.axvline(0, color="k", ls="--", lw=0.8)
        finite = np.r_[lo[np.isfinite(lo)], hi[np.isfinite(hi)], 0.0]
        width = finite.max() - finite.min() or 1e-3
        ax_d.set_xlim(finite.min() - 0.05 * width, finite.max() + 0.35 * width)  # room for the value labels
        ax_d.set_xlabel(f"change in {name} vs the base (paired 95% interval; hollow: interval includes 0)")
        ax_d.grid(axis="x", alpha=0.3)
    fig.suptitle(title or f"{name} per re-ranker, over all evaluation users")
    fig.tight_layout()
    return fig


EXPOSURE_AXIS_FLOOR_PP = 5.0  # the exposure-gap axis spans at least +-5 percentage points


def exposure_gap_figure(exposures: dict, group: str, top: int = 12, title: str = "",
                        floor_pp: float = EXPOSURE_AXIS_FLOOR_PP, k: int | None = None):
    """Group-specific exposure gap per category for one group, in percentage points of the top-K list, one
    bar per variant (`exposures`: label -> `rerank.exposure_by_group` frame); the categories with the largest
    gap in any variant, sorted by the first variant's gap. Bars above 0: the group is shown more of that
    category than its histories justify beyond everyone's skew. The axis spans at least +-`floor_pp` points,
    so gaps of a fraction of a point look as small as they are; the title states the largest."""
    frames = [e[e["group"] == group].set_index("category")["gap"].rename(label) for label, e in exposures.items()]
    gaps = pd.concat(frames, axis=1).fillna(0.0) * 100
    gaps = gaps.loc[gaps.abs().max(axis=1).sort_values(ascending=False).index[:top]]
    gaps = gaps.sort_values(gaps.columns[0], ascending=False, kind="stable")
    fig, ax = plt.subplots(figsize=(9, 4.8))
    width = 0.8 / max(len(gaps.columns), 1)
    x = np.arange(len(gaps))
    palette = ["#4c72b0", "#66a61e", "#d95f02", "#7570b3"]
    for j, col in enumerate(gaps.columns):
        ax.bar(x + j * width - 0.4 + width / 2, gaps[col], width, label=col, color=palette[j % len(palette)])
    ax.axhline(0, color="k", lw=0.8)
    largest = float(gaps.abs().to_numpy().max()) if gaps.size else 0.0
    half = max(floor_pp, 1.15 * largest)
    ax.set_ylim(-half, half)
    ax.set_xticks(x, gaps.index, rotation=45, ha="right")
    ax.set_ylabel(f"exposure gap (percentage points of the top-{'K' if k is None else k} list)")
    who = group_name(group)
    where = f"{who} users ({group})" if who != str(group) else f"users of group {group}"
    ax.set_title(title or f"Group-specific exposure gap for {where}: largest {largest:.1f} pp "
                          f"(axis at least +-{floor_pp:g} pp)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
