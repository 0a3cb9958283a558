"""Figure helpers with one consistent style. They draw; they compute nothing."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

# One colour per data subset, used by every figure of the book.
SUBSET_COLORS = {
    "A": "#1b9e77", "B": "#d95f02", "C": "#7570b3", "D": "#e7298a", "E": "#66a61e", "PRM2020": "#a6a6a6",
}
SUBSET_LABELS = {
    "A": "A elastic", "B": "B AIMD + defects", "C": "C periodic defects", "D": "D nanospheres",
    "E": "E defect clusters", "PRM2020": "PRM2020 (GAP set)",
}


def apply_style() -> None:
    """Matplotlib defaults for the book: readable fonts, light grid, tight layout."""
    mpl.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 150, "font.size": 10, "axes.titlesize": 10,
        "axes.grid": True, "grid.alpha": 0.3, "legend.frameon": False, "figure.constrained_layout.use": True,
    })


def descriptor_map(ax: Axes, coords: np.ndarray, subsets: np.ndarray, explained: np.ndarray,
                   order: list[str] | None = None) -> Axes:
    """Scatter of structures in the first two principal components, coloured by subset."""
    subsets = np.asarray(subsets)
    for name in order or list(dict.fromkeys(subsets)):
        pick = subsets == name
        ax.scatter(coords[pick, 0], coords[pick, 1], s=10, alpha=0.7, lw=0,
                   color=SUBSET_COLORS.get(name), label=f"{SUBSET_LABELS.get(name, name)} ({pick.sum()})")
    ax.set_xlabel(f"PC 1 ({100 * explained[0]:.0f} % of variance)")
    ax.set_ylabel(f"PC 2 ({100 * explained[1]:.0f} % of variance)")
    ax.legend(loc="best", fontsize=8, markerscale=2)
    return ax


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.0, height: float = 3.4, **kwargs):
    """A figure of ``nrows x ncols`` panels of the given size (inches) each."""
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kwargs)
