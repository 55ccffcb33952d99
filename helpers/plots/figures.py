"""The one way a figure is written: OUTPUT_DIR/figures/<name>.png, atomically."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from helpers.files import atomic_path


def save_figure(fig: plt.Figure, name: str, output_dir="reports", dpi: int = 130) -> Path:
    """Write `fig` to OUTPUT_DIR/figures/<name>.png (folder created, written atomically); returns the path."""
    path = Path(output_dir) / "figures" / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return path
