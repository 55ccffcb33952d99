"""Figures draw intervals as computed (never clamped), and the training figures read what training records."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers.plots.figures import draw_intervals  # noqa: E402
from helpers.plots.training import plot_selection, plot_trials  # noqa: E402


def test_draw_intervals_draws_a_skewed_interval_that_leaves_out_its_point():
    fig, ax = plt.subplots()
    draw_intervals(ax, [0, 1, 2], [0.50, 0.2, np.nan], [0.60, 0.3, 0.4])   # point 0.45 of the first lies below
    segments = ax.collections[0].get_segments()
    assert [tuple(map(tuple, s)) for s in segments] == [((0, 0.5), (0, 0.6)), ((1, 0.2), (1, 0.3))]  # NaN skipped
    plt.close(fig)


def test_plot_selection_marks_the_chosen_epoch_and_rejects_a_missing_record():
    sel = {"monitor": "ndcg_at_10", "best_epoch": 2, "curve": [0.1, 0.3, 0.2],
           "losses": {"epoch": [1, 2, 3], "train_loss": [3.0, 2.0, 1.5], "valid_loss": [3.1, 2.5, 2.6]}}
    fig = plot_selection(sel, loss="multinomial")
    star = [line for line in fig.axes[1].lines if line.get_marker() == "*"][0]
    assert star.get_xdata().tolist() == [2] and star.get_ydata().tolist() == [0.3]
    plt.close(fig)
    fig = plot_selection({**sel, "model_value": 0.35})  # CollabNN: the whole model beside the monitored branch
    diamond = [line for line in fig.axes[1].lines if line.get_marker() == "D"][0]
    assert diamond.get_ydata().tolist() == [0.35] and "monitored part" in fig.axes[1].get_ylabel()
    plt.close(fig)
    with pytest.raises(ValueError, match="no selection record"):
        plot_selection({})


def test_plot_trials_shows_the_best_so_far():
    trials = pd.DataFrame({"trial": [0, 1, 2, 3], "state": ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE"],
                           "validation_ndcg_at_10": [0.2, 0.1, 0.05, 0.3]})
    fig = plot_trials(trials)
    step = fig.axes[0].lines[-1]
    assert step.get_ydata().tolist() == [0.2, 0.2, 0.3]
    plt.close(fig)
