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
