"""uqlib.paper.book.figure: glue a figure for a numbered {glue:figure} and close it (the rendered check builds one)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.core.pylabtools import select_figure_formats  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402

from uqlib.paper import book  # noqa: E402


@pytest.mark.parametrize("name", ["ensemble", "Fig-ladder", "fig_ladder", "fig-", "fig-ladder ", "fig--x", 3])
def test_a_name_that_is_not_a_figure_label_is_a_clear_error(name):
    fig = plt.figure()
    with pytest.raises(ValueError, match="not a figure label.*fig-ensemble-accuracy"):
        book.figure(fig, name)
    plt.close(fig)


def test_figure_glues_the_image_without_showing_it_and_closes_the_figure():
    # glue publishes through IPython's display machinery; a kernel's inline backend registers the png formatter
    select_figure_formats(InteractiveShell.instance(), {"png"})
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    with capture_output() as captured:
        book.figure(fig, "fig-test-ladder-2")
    assert not plt.fignum_exists(fig.number)
    (output,) = captured.outputs
    assert "application/papermill.record/image/png" in output.data
    assert output.metadata["scrapbook"]["name"] == "fig-test-ladder-2"
    assert "image/png" not in output.data  # glued, not displayed: only the {glue:figure} shows it
