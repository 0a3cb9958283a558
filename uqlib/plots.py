"""Figure helpers with one consistent style. They draw; they compute nothing."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
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


# -- ensembles -----------------------------------------------------------------------------------

SET_COLORS = {"train": "#1f77b4", "test": "#ff7f0e"}
CRITERION_STYLE = {"CBE": dict(color="#2ca02c", ls="-"), "CBF": dict(color="#d62728", ls="-"),
                   "ABF": dict(color="#9467bd", ls="--"), "CBE or CBF": dict(color="#555555", ls=":")}
CRITERION_UNITS = {"CBE": "meV/atom", "CBF": "meV/Å", "ABF": "meV/Å"}


def error_vs_uncertainty(ax: Axes, points: dict[str, tuple[np.ndarray, np.ndarray]], criterion: str) -> Axes:
    """Log-log scatter of error against uncertainty per set, dashed lines at each set's means.

    ``points`` maps a set name (``train``, ``test``) to ``(uncertainty, error)`` in the
    criterion's display unit (meV/atom or meV/Å).
    """
    for name, (u, e) in points.items():
        color = SET_COLORS.get(name)
        ax.scatter(u, e, s=3 if len(u) > 2000 else 8, alpha=0.35, lw=0, color=color, rasterized=True,
                   label=f"{name} ({len(u)})")
        ax.axvline(np.mean(u), color=color, ls="--", lw=1)
        ax.axhline(np.mean(e), color=color, ls="--", lw=1)
    unit = CRITERION_UNITS[criterion]
    ax.set(xscale="log", yscale="log", xlabel=f"uncertainty {criterion} ({unit})", ylabel=f"error ({unit})")
    ax.legend(loc="lower right", fontsize=8, markerscale=3)
    return ax


def metric_vs_x(ax: Axes, x: np.ndarray, series: dict[str, np.ndarray], *, xlabel: str, ylabel: str,
                spread: dict[str, np.ndarray] | None = None, styles: dict | None = None) -> Axes:
    """Lines of one metric per criterion against ``x`` (F_RMSE or K), optional +-spread band."""
    styles = styles or CRITERION_STYLE
    for name, y in series.items():
        style = styles.get(name, {})
        ax.plot(x, y, marker="o", ms=4, label=name, **style)
        if spread is not None and name in spread:
            ax.fill_between(x, y - spread[name], y + spread[name], color=style.get("color"), alpha=0.2, lw=0)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=8)
    return ax


OUTCOME_COLORS = {"detected": "#2ca02c", "missed": "#d62728", "false alarm": "#ff7f0e", "quiet": "#c7c7c7"}


def outcome_bars(ax: Axes, outcomes: dict[str, dict[str, float]], title: str) -> Axes:
    """Stacked bars of the four outcomes of :func:`uqlib.metrics.confusion`, one bar per model."""
    labels = list(outcomes)
    bottom = np.zeros(len(labels))
    for outcome, color in OUTCOME_COLORS.items():
        heights = np.array([100 * outcomes[m][outcome] for m in labels])
        ax.bar(labels, heights, bottom=bottom, color=color, label=outcome, width=0.6)
        bottom += heights
    ax.set(ylabel="test set (%)", title=title, ylim=(0, 100))
    ax.legend(fontsize=7, loc="lower right", frameon=True, framealpha=0.9)
    return ax


# -- D-optimality --------------------------------------------------------------------------------

DETECTOR_STYLE = {
    "D-opt configurations": dict(color="#000000", ls="-"), "D-opt atoms": dict(color="#000000", ls="--"),
    "ensemble K=6 configurations": dict(color="#d62728", ls="-"), "ensemble K=6 atoms": dict(color="#d62728", ls="--"),
    "ensemble K=30 configurations": dict(color="#1f77b4", ls="-"),
    "ensemble K=30 atoms": dict(color="#1f77b4", ls="--"),
}


def error_vs_grade(ax: Axes, points: dict[str, tuple[np.ndarray, np.ndarray]], *, xlabel: str,
                   ylabel: str) -> Axes:
    """Log-log scatter of error against the extrapolation grade per set, dotted line at gamma = 1."""
    for name, (gamma, error) in points.items():
        ax.scatter(gamma, error, s=3 if len(gamma) > 2000 else 8, alpha=0.35, lw=0, color=SET_COLORS.get(name),
                   rasterized=True, label=f"{name} ({len(gamma)})")
    ax.axvline(1.0, color="k", ls=":", lw=1)
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())  # minor labels collide on short log ranges
    ax.legend(loc="upper left", fontsize=8, markerscale=3)
    return ax


# -- the 2D MaxVol example ------------------------------------------------------------------------

GROUP_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"]
REGION_COLORS = {"ID for both": "#f0f0f0", "OOD for both": "#bdbdbd",
                 "missed OOD (union ID, groups OOD)": "#d62728", "false OOD (union OOD, a group ID)": "#1f77b4"}


def parallelogram(ax: Axes, vectors: np.ndarray, **style) -> None:
    """Outline of the region gamma <= 1 of a 2-vector active set: corners +-v1 +-v2."""
    v1, v2 = vectors
    corners = np.array([v1 + v2, v1 - v2, -v1 - v2, -v1 + v2, v1 + v2])
    ax.plot(corners[:, 0], corners[:, 1], **style)


def active_sets_2d(ax: Axes, groups: list[np.ndarray], group_sets: list[np.ndarray], union_set: np.ndarray,
                   marked: dict[str, np.ndarray]) -> Axes:
    """The groups, each group's active set (bold points, its gamma <= 1 region) and the union's."""
    for g, (points, chosen) in enumerate(zip(groups, group_sets, strict=True)):
        color = GROUP_COLORS[g % len(GROUP_COLORS)]
        ax.scatter(points[:, 0], points[:, 1], s=12, color=color, alpha=0.6, label=f"group {'abcde'[g]}")
        ax.scatter(chosen[:, 0], chosen[:, 1], s=60, facecolor="none", edgecolor=color, lw=1.5)
        parallelogram(ax, chosen, color=color, lw=1, ls="--")
    parallelogram(ax, union_set, color="k", lw=1.5, label="union active set, gamma = 1")
    for label, point in marked.items():
        ax.scatter(*point, marker="*", s=160, color="k", zorder=5)
        ax.annotate(label, point, xytext=(6, 6), textcoords="offset points", fontsize=11, weight="bold")
    ax.set(xlabel="x1", ylabel="x2", aspect="equal")
    ax.legend(fontsize=7, loc="lower left")
    return ax


def region_map(ax: Axes, extent: tuple[float, float, float, float], labels: np.ndarray, names: list[str]) -> Axes:
    """Map of region categories over a grid (``labels`` indexes ``names``, shape ``(ny, nx)``)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    cmap = ListedColormap([REGION_COLORS[n] for n in names])
    ax.imshow(labels, origin="lower", extent=extent, cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5,
              interpolation="nearest")
    ax.legend(handles=[Patch(color=REGION_COLORS[n], label=n) for n in names], fontsize=7, loc="lower left",
              frameon=True, framealpha=0.9)
    ax.set(xlabel="x1", ylabel="x2", aspect="equal")
    return ax


def histograms(ax: Axes, samples: dict[str, np.ndarray], *, xlabel: str, bins: int = 60) -> Axes:
    """Overlaid log-x histograms of several positive samples, each as fractions of its own count."""
    values = np.concatenate([v[v > 0] for v in samples.values()])
    edges = np.logspace(np.log10(values.min()), np.log10(values.max()), bins)
    for name, v in samples.items():
        ax.hist(v[v > 0], bins=edges, histtype="step", lw=1.5, weights=np.full((v > 0).sum(), 100 / len(v)),
                label=f"{name} ({len(v)})", color=SUBSET_COLORS.get(name.split()[-1]))
    ax.set(xscale="log", xlabel=xlabel, ylabel="share of the set's atoms (%)")
    ax.legend(fontsize=7)
    return ax


# -- clustered D-optimality -----------------------------------------------------------------------

def gamma_slab(ax: Axes, positions: np.ndarray, gamma: np.ndarray, *, z_centre: float, thickness: float,
               log_range: tuple[float, float], title: str = ""):
    """Atoms of a slab (|z - z_centre| < thickness / 2) seen along z, coloured by log10 gamma.

    The diverging colour scale runs over ``log_range`` (log10 gamma) and is centred on
    gamma = 1 (white): blue interpolation, red extrapolation.
    """
    from matplotlib.colors import TwoSlopeNorm

    pick = np.abs(positions[:, 2] - z_centre) < thickness / 2
    order = np.argsort(gamma[pick])  # extrapolating atoms drawn on top
    xy, log_gamma = positions[pick][order], np.log10(np.maximum(gamma[pick][order], 1e-12))
    lo, hi = min(log_range[0], -0.05), max(log_range[1], 0.05)
    art = ax.scatter(xy[:, 0], xy[:, 1], c=np.clip(log_gamma, lo, hi), cmap="RdBu_r",
                     norm=TwoSlopeNorm(vcenter=0.0, vmin=lo, vmax=hi), s=12, lw=0)
    ax.set(xlabel="x (Å)", ylabel="y (Å)", aspect="equal", title=title)
    ax.grid(False)
    return art


AL_STYLE = {"random": dict(color="#7f7f7f", ls="--"), "CBF": dict(color="#d62728", ls="-"),
            "gamma": dict(color="#000000", ls="-"), "clustered gamma": dict(color="#1f77b4", ls="-"),
            "QUESTS": dict(color="#2ca02c", ls="-")}


def grade_map_2d(ax: Axes, extent: tuple[float, float, float, float], gamma: np.ndarray,
                 marked: dict[str, np.ndarray], *, title: str = "") -> Axes:
    """log10 gamma over the plane (``gamma`` shape ``(ny, nx)``) with the gamma = 1 contour and marked points."""
    log_gamma = np.log10(np.maximum(gamma.astype(float), 1e-3))  # the origin cell has gamma = 0
    image = ax.imshow(log_gamma, origin="lower", extent=extent, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.contour(log_gamma, levels=[0], extent=extent, colors="k", linewidths=1)
    for label, point in marked.items():
        ax.scatter(*point, marker="*", s=120, color="k")
        ax.annotate(label, point, xytext=(5, 5), textcoords="offset points", weight="bold")
    ax.set(xlabel="x1", ylabel="x2", aspect="equal", title=title)
    ax.grid(False)
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label="log10 gamma")
    return ax


# -- scoring (notebook 06) ------------------------------------------------------------------------

def roc_auc_bars(ax: Axes, detection: pd.DataFrame, title: str) -> Axes:
    """Horizontal ROC-AUC bars, one per (level, criterion) row of a detection table; chance (0.5) dotted."""
    names = detection["level"].str[:4] + " " + detection["criterion"]
    colors = ["#1f77b4" if level == "configuration" else "#ff7f0e" for level in detection["level"]]
    ax.barh(names, detection["roc_auc"], color=colors)
    ax.axvline(0.5, color="k", ls=":")
    ax.set(xlim=(0, 1), xlabel="ROC-AUC", title=title)
    return ax
