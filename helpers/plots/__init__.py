"""Figures of the notebooks (EDA, evaluation, re-ranking), saved through one `save_figure`."""
from helpers.plots.figures import save_figure

__all__ = ["save_figure"]
