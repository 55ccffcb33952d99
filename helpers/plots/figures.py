"""The one way a figure is written: OUTPUT_DIR/figures/<name>.png, atomically."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from helpers.files import atomic_path


def save_figure(fig: plt.Figure, name: str, output_dir="reports", dpi: int = 130) -> Path:
    """Write `fig` to OUTPUT_DIR/figures/<name>.png (folder created, written atomically); returns the path."""
    path = Path(output_dir) / "figures" / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return path


def draw_intervals(ax, positions, low, high, horizontal: bool = False, color: str = "#555555", cap: float = 0.12) -> None:
    """Interval segments from `low` to `high` at `positions` (with caps), drawn as they are: the intervals
    of `helpers.evaluation` are never clamped, so a skewed one may leave out its point estimate, which
    matplotlib's symmetric-offset `yerr` / `xerr` cannot show (it rejects negative offsets). NaN skipped."""
    pos, lo, hi = (np.asarray(a, dtype=float) for a in (positions, low, high))
    ok = np.isfinite(pos) & np.isfinite(lo) & np.isfinite(hi)
    pos, lo, hi = pos[ok], lo[ok], hi[ok]
    if horizontal:
        ax.hlines(pos, lo, hi, color=color, lw=1.2, zorder=2)
        ax.vlines(np.r_[lo, hi], np.r_[pos, pos] - cap, np.r_[pos, pos] + cap, color=color, lw=1.2, zorder=2)
    else:
        ax.vlines(pos, lo, hi, color=color, lw=1.2, zorder=2)
        ax.hlines(np.r_[lo, hi], np.r_[pos, pos] - cap, np.r_[pos, pos] + cap, color=color, lw=1.2, zorder=2)
