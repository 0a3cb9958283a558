from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from uqlib import plots  # noqa: E402


def test_descriptor_map_draws_one_labelled_series_per_subset():
    fig, axes = plots.new_figure()
    coords = np.arange(10.0).reshape(5, 2)
    ax = plots.descriptor_map(axes[0, 0], coords, np.array(["A", "A", "D", "D", "D"]), np.array([0.6, 0.3]))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["A elastic (2)", "D nanospheres (3)"]
    assert "60 %" in ax.get_xlabel() and "30 %" in ax.get_ylabel()
    assert ax.collections[1].get_offsets().shape == (3, 2)


def test_outcome_bars_stack_to_one_hundred_percent():
    fig, axes = plots.new_figure()
    outcomes = {"D-opt": {"detected": 0.5, "missed": 0.1, "false alarm": 0.3, "quiet": 0.1}}
    ax = plots.outcome_bars(axes[0, 0], outcomes, "test")
    tops = [p.get_y() + p.get_height() for p in ax.patches]
    assert max(tops) == 100.0 and len(ax.patches) == 4


def test_gamma_slab_keeps_only_the_slab_and_centres_the_colours_on_one():
    fig, axes = plots.new_figure()
    positions = np.array([[0, 0, 5.0], [1, 1, 5.5], [2, 2, 20.0]])
    art = plots.gamma_slab(axes[0, 0], positions, np.array([0.5, 10.0, 3.0]), z_centre=5.0, thickness=2.0,
                           log_range=(-1.0, 1.0))
    assert art.get_offsets().shape == (2, 2)
    assert art.norm.vcenter == 0.0 and art.norm(0.0) == 0.5


def test_region_map_labels_every_category():
    fig, axes = plots.new_figure()
    names = list(plots.REGION_COLORS)
    ax = plots.region_map(axes[0, 0], (-1, 1, -1, 1), np.array([[0, 1], [2, 3]]), names)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == names


def test_roc_auc_bars_draw_one_bar_per_row_coloured_by_level():
    import pandas as pd

    detection = pd.DataFrame({"level": ["configuration", "atom"], "criterion": ["CBF", "ABF"], "roc_auc": [0.8, 0.3]})
    fig, axes = plots.new_figure()
    ax = plots.roc_auc_bars(axes[0, 0], detection, "split")
    widths = [p.get_width() for p in ax.patches]
    assert widths == [0.8, 0.3]
    assert ax.patches[0].get_facecolor() != ax.patches[1].get_facecolor()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["conf CBF", "atom ABF"]
