from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from uqlib.paper import plots  # noqa: E402


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


# -- colour-blind-safe palette, sizes, the accuracy ladder, gamma's scale, histograms ----------------

def _every_style_colour():
    groups = [plots.SUBSET_COLORS.values(), plots.SET_COLORS.values(), plots.OUTCOME_COLORS.values(),
              [s["color"] for s in plots.CRITERION_STYLE.values()], [s["color"] for s in plots.AL_STYLE.values()],
              [s["color"] for s in plots.DETECTOR_STYLE.values()], plots.GROUP_COLORS,
              [c for n, c in plots.REGION_COLORS.items() if "missed" in n or "false" in n]]
    return [c for group in groups for c in group]


def test_every_categorical_colour_is_okabe_ito_or_a_neutral_grey():
    allowed = {c.lower() for c in plots.OKABE_ITO.values()}
    for colour in _every_style_colour():
        r, g, b = matplotlib.colors.to_rgb(colour)
        assert colour.lower() in allowed or (r == g == b), colour


def test_criteria_differ_in_more_than_colour():
    styles = list(plots.CRITERION_STYLE.values())
    assert len({s["marker"] for s in styles}) == len(styles)


def test_new_figure_fills_the_text_width_by_default_and_honours_explicit_sizes():
    fig, axes = plots.new_figure(ncols=3, nrows=2)
    assert axes.shape == (2, 3) and np.isclose(fig.get_size_inches()[0], plots.TEXT_WIDTH)
    fig, _ = plots.new_figure(ncols=2, width=3.0, height=2.0)
    assert np.allclose(fig.get_size_inches(), (6.0, 2.0))


def test_apply_style_sets_fonts_readable_at_the_rendered_size():
    plots.apply_style()
    # TEXT_WIDTH at figure.dpi is about the column's width: a point renders as dpi / 72 px
    px_per_point = matplotlib.rcParams["figure.dpi"] / 72
    assert matplotlib.rcParams["font.size"] * px_per_point >= 14
    assert matplotlib.rcParams["xtick.labelsize"] * px_per_point >= 13
    cycle = [c["color"].lower() for c in matplotlib.rcParams["axes.prop_cycle"]]
    assert cycle[:3] == [plots.OKABE_ITO["blue"].lower(), plots.OKABE_ITO["vermillion"].lower(),
                         plots.OKABE_ITO["bluish green"].lower()]


def test_accuracy_axis_spaces_the_ladder_evenly_and_labels_ours_and_the_papers():
    fig, axes = plots.new_figure()
    ax = axes[0, 0]
    ours = np.array([900.0, 120.0, 90.0, 60.0, 45.0, 30.0])  # one preset far out, as in the issue
    x = plots.accuracy_axis(ax, ours, paper_f_rmse=[160, 100, 70, 50, 35, 20],
                            presets=[f"Func-{n}" for n in (15, 38, 72, 153, 399, 945)])
    assert np.allclose(np.diff(x), 1.0)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "900\nFunc-15" and labels[-1] == "30\nFunc-945"
    top = [a for a in ax.child_axes if a.get_xlabel().startswith("paper")]
    assert len(top) == 1 and [t.get_text() for t in top[0].get_xticklabels()] == ["160", "100", "70", "50", "35", "20"]


def test_accuracy_axis_log_mode_marks_the_papers_values():
    fig, axes = plots.new_figure()
    ax = axes[0, 0]
    x = plots.accuracy_axis(ax, [300.0, 30.0], paper_f_rmse=[150.0, 20.0, 10.0], mode="log")
    assert ax.get_xscale() == "log" and np.allclose(x, [300, 30])
    marks = [line for line in ax.lines if line.get_label() == "paper's presets"]
    assert len(marks) == 1 and np.allclose(marks[0].get_xdata(), [150, 20, 10])
    assert ax.get_xlim()[0] < 10


@pytest.mark.parametrize("f_rmse, paper, mode, message", [
    ([], None, "rank", "non-empty"),
    ([10.0, -1.0], None, "rank", "positive"),
    ([10.0, 20.0], [1.0], "rank", "paper_f_rmse has 1 values for 2"),
    ([10.0], None, "linear", "mode"),
])
def test_accuracy_axis_rejects_bad_input_clearly(f_rmse, paper, mode, message):
    fig, axes = plots.new_figure()
    with pytest.raises(ValueError, match=message):
        plots.accuracy_axis(axes[0, 0], f_rmse, paper_f_rmse=paper, mode=mode)


def test_gamma_scale_diverges_at_one_with_a_visible_centre_and_a_labelled_bar():
    fig, axes = plots.new_figure()
    positions = np.array([[0, 0, 5.0], [1, 1, 5.0], [2, 2, 5.0]])
    art = plots.gamma_slab(axes[0, 0], positions, np.array([0.01, 1.0, 1000.0]), z_centre=5.0, thickness=2.0,
                           log_range=(-2.0, 3.0))
    assert art.norm.vcenter == 0.0 and art.norm(0.0) == 0.5
    centre = np.array(art.cmap(0.5)[:3])
    background = np.array(matplotlib.colors.to_rgb(axes[0, 0].get_facecolor()))
    assert np.abs(centre - background).sum() > 0.3  # gamma = 1 atoms stand out from the panel
    assert art.cmap(0.0)[2] > art.cmap(0.0)[0] and art.cmap(1.0)[0] > art.cmap(1.0)[2]  # blue below, red above
    bar = plots.gamma_colorbar(art, axes[0, 0])
    assert "gamma" in bar.ax.get_ylabel() and "1" in [t.get_text() for t in bar.ax.get_yticklabels()]


def test_histograms_are_seaborn_steps_in_percent_of_each_whole_sample():
    fig, axes = plots.new_figure()
    samples = {"train A": np.array([1.0, 2.0, 3.0, 0.0]), "test C": np.array([10.0, 20.0])}
    ax = plots.histograms(axes[0, 0], samples, xlabel="error", bins=10)
    assert ax.get_xscale() == "log" and ax.get_ylabel().startswith("share")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["train A (4)", "test C (2)"]
    # the zero of train A is left off the log axis but counted: its curve sums to 75 %
    steps = {matplotlib.colors.to_hex(line.get_color()): line.get_ydata()[:-1] for line in ax.lines}  # last: repeat
    assert set(steps) == {plots.SUBSET_COLORS["A"].lower(), plots.SUBSET_COLORS["C"].lower()}
    assert np.isclose(steps[plots.SUBSET_COLORS["A"].lower()].sum(), 75.0)
    assert np.isclose(steps[plots.SUBSET_COLORS["C"].lower()].sum(), 100.0)


def test_roc_auc_bars_draw_one_bar_per_row_coloured_by_level():
    import pandas as pd

    detection = pd.DataFrame({"level": ["configuration", "atom"], "criterion": ["CBF", "ABF"], "roc_auc": [0.8, 0.3]})
    fig, axes = plots.new_figure()
    ax = plots.roc_auc_bars(axes[0, 0], detection, "split")
    widths = [p.get_width() for p in ax.patches]
    assert widths == [0.8, 0.3]
    assert ax.patches[0].get_facecolor() != ax.patches[1].get_facecolor()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["conf CBF", "atom ABF"]


def test_paper_models_axis_marks_the_papers_f_rmse_from_the_values_module():
    from uqlib.paper import values

    fig, axes = plots.new_figure()
    top = plots.paper_models_axis(axes[0, 0], [0, 5])
    labels = [t.get_text() for t in top.get_xticklabels()]
    assert labels == [f"{values.F_RMSE_FUNC15.value:g} (Func-15)", f"{values.F_RMSE_FUNC945.value:g} (Func-945)"]
    assert list(top.get_xticks()) == [0, 5] and "meV/Å" in top.get_xlabel()
    with pytest.raises(ValueError, match="one ladder step per model"):
        plots.paper_models_axis(axes[0, 0], [0])
