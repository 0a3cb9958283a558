"""Figure helpers with one consistent style. They draw; they compute nothing.

Colours come from the Okabe-Ito palette, which stays distinguishable under the common
forms of colour-vision deficiency. Figures are sized for the book's text column
(:data:`TEXT_WIDTH` inches, rendered at about its natural size), so that fonts set in
:func:`apply_style` read at the size they are set.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

# Okabe & Ito (2008), "Color universal design": safe for deuteranopia, protanopia, tritanopia.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7",
    "grey": "#999999",
}
_OI = OKABE_ITO
# The colour cycle of every axis: black and yellow last (black is for references, yellow is faint).
PALETTE = [_OI["blue"], _OI["vermillion"], _OI["bluish green"], _OI["reddish purple"], _OI["orange"],
           _OI["sky blue"], _OI["grey"], _OI["black"]]

# Width (inches) of a figure that fills the book's text column; wide.css sets the column to match.
TEXT_WIDTH = 8.0
# One colour per data subset, used by every figure of the book.
SUBSET_COLORS = {
    "A": _OI["blue"], "B": _OI["orange"], "C": _OI["bluish green"], "D": _OI["reddish purple"],
    "E": _OI["vermillion"], "PRM2020": _OI["grey"],
}
SUBSET_LABELS = {
    "A": "A elastic", "B": "B AIMD + defects", "C": "C periodic defects", "D": "D nanospheres",
    "E": "E defect clusters", "PRM2020": "PRM2020 (GAP set)",
}


def apply_style() -> None:
    """Matplotlib defaults for the book: colour-blind-safe cycle, fonts readable at the rendered size.

    A :data:`TEXT_WIDTH` figure at ``figure.dpi`` 100 is 800 px wide, about the width of
    the text column, so a 12 pt label renders at about 16 px.
    """
    mpl.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 200, "font.size": 12, "axes.titlesize": 12, "axes.labelsize": 12,
        "xtick.labelsize": 11, "ytick.labelsize": 11, "legend.fontsize": 10, "legend.title_fontsize": 10,
        "lines.linewidth": 2.0, "lines.markersize": 6,
        "axes.prop_cycle": mpl.cycler(color=PALETTE), "image.cmap": "cividis",
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
    ax.legend(loc="best", fontsize=9, markerscale=2)
    return ax


def new_figure(ncols: int = 1, nrows: int = 1, width: float | None = None, height: float | None = None,
               **kwargs):
    """A figure of ``nrows x ncols`` panels; returns ``(fig, axes)`` with ``axes`` of shape ``(nrows, ncols)``.

    By default the figure fills the text column: each panel is ``TEXT_WIDTH / ncols``
    inches wide and three quarters as high (at least 2.8, at most 5 inches). ``width``
    and ``height`` (inches per panel) override this.
    """
    panel_width = TEXT_WIDTH / ncols if width is None else width
    panel_height = float(np.clip(0.75 * panel_width, 2.8, 5.0)) if height is None else height
    return plt.subplots(nrows, ncols, figsize=(panel_width * ncols, panel_height * nrows), squeeze=False, **kwargs)


# -- ensembles -----------------------------------------------------------------------------------

SET_COLORS = {"train": _OI["blue"], "test": _OI["vermillion"]}
# Colour, line style and marker differ, so that the criteria stay apart in grey print too.
CRITERION_STYLE = {"CBE": dict(color=_OI["bluish green"], ls="-", marker="o"),
                   "CBF": dict(color=_OI["vermillion"], ls="-", marker="s"),
                   "ABF": dict(color=_OI["reddish purple"], ls="--", marker="^"),
                   "CBE or CBF": dict(color=_OI["black"], ls=":", marker="D")}
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
    ax.legend(loc="lower right", fontsize=9, markerscale=3)
    return ax


def metric_vs_x(ax: Axes, x: np.ndarray, series: dict[str, np.ndarray], *, xlabel: str, ylabel: str,
                spread: dict[str, np.ndarray] | None = None, styles: dict | None = None) -> Axes:
    """Lines of one metric per criterion against ``x`` (F_RMSE or K), optional +-spread band."""
    styles = styles or CRITERION_STYLE
    for name, y in series.items():
        style = {"marker": "o", **styles.get(name, {})}
        ax.plot(x, y, label=name, **style)
        if spread is not None and name in spread:
            ax.fill_between(x, y - spread[name], y + spread[name], color=style.get("color"), alpha=0.2, lw=0)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    return ax


OUTCOME_COLORS = {"detected": _OI["bluish green"], "missed": _OI["vermillion"], "false alarm": _OI["orange"],
                  "quiet": "#dddddd"}


def outcome_bars(ax: Axes, outcomes, title: str) -> Axes:
    """Stacked bars of the four outcomes of :func:`uqlib.metrics.confusion`, one bar per model.

    ``outcomes``: a table with one row per model and the outcomes as columns, in % (as
    :func:`uqlib.paper.studies.outcome_table` gives), or a dict ``{model: {outcome: fraction}}``.
    """
    import pandas as pd

    percent = outcomes if isinstance(outcomes, pd.DataFrame) else 100 * pd.DataFrame(outcomes).T
    bottom = np.zeros(len(percent))
    for outcome, color in OUTCOME_COLORS.items():
        heights = percent[outcome].to_numpy()
        ax.bar(percent.index.astype(str), heights, bottom=bottom, color=color, label=outcome, width=0.6)
        bottom += heights
    ax.set(ylabel="test set (%)", title=title, ylim=(0, 100))
    ax.legend(fontsize=9, loc="lower right", frameon=True, framealpha=0.9)
    return ax


def rates_vs_accuracy(ax: Axes, table, fixed_rates, signals: list[str]) -> Axes:
    """Test selection rates (%) against training F_RMSE: adaptive thresholds solid, fixed ones dotted.

    ``table`` is :func:`uqlib.paper.studies.ladder_table` (columns ``rate <signal> (%)``), ``fixed_rates``
    the first result of :func:`uqlib.paper.studies.fixed_threshold_rates`.
    """
    x = table["F_RMSE train"].to_numpy()
    for signal in signals:
        style = {**CRITERION_STYLE[signal], "ls": "-", "ms": 4}
        ax.plot(x, table[f"rate {signal} (%)"], label=f"{signal} adaptive", **style)
        ax.plot(x, fixed_rates.loc[table.index, signal], label=f"{signal} fixed", **{**style, "ls": ":"})
    ax.set(xlabel="F_RMSE train (meV/Å)", ylabel="test selection rate (%)")
    ax.legend(fontsize=6, ncol=2)
    return ax


# -- D-optimality --------------------------------------------------------------------------------

DETECTOR_STYLE = {
    "D-opt configurations": dict(color=_OI["black"], ls="-", marker="o"),
    "D-opt atoms": dict(color=_OI["black"], ls="--", marker="o", mfc="white"),
    "ensemble K=6 configurations": dict(color=_OI["vermillion"], ls="-", marker="s"),
    "ensemble K=6 atoms": dict(color=_OI["vermillion"], ls="--", marker="s", mfc="white"),
    "ensemble K=30 configurations": dict(color=_OI["blue"], ls="-", marker="^"),
    "ensemble K=30 atoms": dict(color=_OI["blue"], ls="--", marker="^", mfc="white"),
}


# Fig 4's panels: (signal, x label, y label)
GRADE_PANELS = [("gamma_cfg (energy)", "gamma_cfg", "energy error (meV/atom)"),
                ("gamma_cfg", "gamma_cfg", "force error, max over atoms (meV/Å)"),
                ("gamma_atom", "gamma_atom", "atomic force error (meV/Å)")]


def error_vs_grade(ax: Axes, points: dict[str, tuple[np.ndarray, np.ndarray]], *, xlabel: str,
                   ylabel: str) -> Axes:
    """Log-log scatter of error against the extrapolation grade per set, dotted line at gamma = 1."""
    for name, (gamma, error) in points.items():
        ax.scatter(gamma, error, s=3 if len(gamma) > 2000 else 8, alpha=0.35, lw=0, color=SET_COLORS.get(name),
                   rasterized=True, label=f"{name} ({len(gamma)})")
    ax.axvline(1.0, color="k", ls=":", lw=1)
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel)
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())  # minor labels collide on short log ranges
    ax.legend(loc="upper left", fontsize=9, markerscale=3)
    return ax


# -- the 2D MaxVol example ------------------------------------------------------------------------

GROUP_COLORS = [_OI["blue"], _OI["orange"], _OI["bluish green"], _OI["reddish purple"], _OI["sky blue"]]
REGION_COLORS = {"ID for both": "#f0f0f0", "OOD for both": "#bdbdbd",
                 "missed OOD (union ID, groups OOD)": _OI["vermillion"],
                 "false OOD (union OOD, a group ID)": _OI["sky blue"]}


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
    ax.legend(fontsize=9, loc="lower left")
    return ax


def region_map(ax: Axes, extent: tuple[float, float, float, float], labels: np.ndarray, names: list[str]) -> Axes:
    """Map of region categories over a grid (``labels`` indexes ``names``, shape ``(ny, nx)``)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    cmap = ListedColormap([REGION_COLORS[n] for n in names])
    ax.imshow(labels, origin="lower", extent=extent, cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5,
              interpolation="nearest")
    ax.legend(handles=[Patch(color=REGION_COLORS[n], label=n) for n in names], fontsize=9, loc="lower left",
              frameon=True, framealpha=0.9)
    ax.set(xlabel="x1", ylabel="x2", aspect="equal")
    return ax


def histograms(ax: Axes, samples: dict[str, np.ndarray], *, xlabel: str, bins: int = 60) -> Axes:
    """Overlaid log-x step histograms (seaborn) of positive samples, each as % of its own count.

    Values <= 0 cannot sit on a log axis: they are left out of the bins but still count in
    their sample's total, so each curve sums to the share of its sample that is positive.
    A name whose last word is a subset letter (``"test C"``) takes that subset's colour.
    """
    import pandas as pd
    import seaborn as sns

    labels = {name: f"{name} ({len(v)})" for name, v in samples.items()}
    tidy = pd.concat([pd.DataFrame({"value": v[v > 0], "sample": labels[name],
                                    "weight": np.full(int((v > 0).sum()), 100 / max(len(v), 1))})
                      for name, v in samples.items()], ignore_index=True)
    palette = {labels[name]: SUBSET_COLORS.get(name.split()[-1], PALETTE[i % len(PALETTE)])
               for i, name in enumerate(samples)}
    sns.histplot(data=tidy, x="value", hue="sample", weights="weight", stat="count", bins=bins, log_scale=True,
                 element="step", fill=False, common_bins=True, linewidth=2, palette=palette, ax=ax)
    ax.set(xlabel=xlabel, ylabel="share of the set's atoms (%)")
    legend = ax.get_legend()
    if legend is not None:
        legend.set_title(None)
    return ax


# -- clustered D-optimality -----------------------------------------------------------------------

def gamma_slab(ax: Axes, positions: np.ndarray, gamma: np.ndarray, *, z_centre: float, thickness: float,
               log_range: tuple[float, float], title: str = ""):
    """Atoms of a slab (|z - z_centre| < thickness / 2) seen along z, coloured by log10 gamma.

    ``positions`` (N, 3) in Å, ``gamma`` (N,) the extrapolation grade. The diverging
    colour scale runs over ``log_range`` (log10 gamma) and is centred on gamma = 1
    (light grey): blue interpolation (gamma < 1), red extrapolation (gamma > 1); the
    panel's background is dark enough for the centre colour to show. Returns the
    scatter, for :func:`gamma_colorbar`.
    """
    from matplotlib.colors import TwoSlopeNorm

    pick = np.abs(positions[:, 2] - z_centre) < thickness / 2
    order = np.argsort(gamma[pick])  # extrapolating atoms drawn on top
    xy, log_gamma = positions[pick][order], np.log10(np.maximum(gamma[pick][order], 1e-12))
    lo, hi = min(log_range[0], -0.05), max(log_range[1], 0.05)
    art = ax.scatter(xy[:, 0], xy[:, 1], c=np.clip(log_gamma, lo, hi), cmap=GAMMA_CMAP,
                     norm=TwoSlopeNorm(vcenter=0.0, vmin=lo, vmax=hi), s=14, lw=0.2, edgecolors="#555555")
    ax.set(xlabel="x (Å)", ylabel="y (Å)", aspect="equal", title=title)
    ax.set_facecolor("#bdbdbd")
    ax.grid(False)
    return art




def grade_map_2d(ax: Axes, extent: tuple[float, float, float, float], gamma: np.ndarray,
                 marked: dict[str, np.ndarray], *, title: str = "") -> Axes:
    """log10 gamma over the plane (``gamma`` shape ``(ny, nx)``) with the gamma = 1 contour and marked points."""
    log_gamma = np.log10(np.maximum(gamma.astype(float), 1e-3))  # the origin cell has gamma = 0
    image = ax.imshow(log_gamma, origin="lower", extent=extent, cmap=GAMMA_CMAP, vmin=-1, vmax=1)
    ax.contour(log_gamma, levels=[0], extent=extent, colors="k", linewidths=1)
    for label, point in marked.items():
        ax.scatter(*point, marker="*", s=120, color="k")
        ax.annotate(label, point, xytext=(5, 5), textcoords="offset points", weight="bold")
    ax.set(xlabel="x1", ylabel="x2", aspect="equal", title=title)
    ax.grid(False)
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label="log10 gamma")
    return ax


def sweep_panel(ax: Axes, stats, column: str, criteria: list[str], *, scale: float = 1.0, ylabel: str,
                title: str = "") -> Axes:
    """One quantity of :func:`uqlib.paper.studies.sweep_statistics` against K: mean line, +-1 std band per criterion."""
    for name in criteria:
        part = stats.loc[name]
        mean, std = scale * part[(column, "mean")].to_numpy(), scale * np.nan_to_num(part[(column, "std")].to_numpy())
        style = {"marker": "o", **CRITERION_STYLE.get(name, {}), "ms": 4}
        ax.plot(part.index, mean, label=name, **style)
        ax.fill_between(part.index, mean - std, mean + std, color=style.get("color"), alpha=0.2, lw=0)
    ax.set(xlabel="K", ylabel=ylabel, title=title)
    ax.legend(fontsize=7)
    return ax

def _diverging_at_one():
    """Blue (gamma < 1) through a light grey (gamma = 1) to red (gamma > 1): RdBu_r with a visible centre."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list(
        "gamma", ["#053061", "#2166ac", "#92c5de", "#f0f0f0", "#f4a582", "#d6604d", "#67001f"])


GAMMA_CMAP = _diverging_at_one()


def gamma_colorbar(art, ax: Axes | list, *, label: str = "extrapolation grade gamma"):
    """A colour bar for :func:`gamma_slab`: ticks at powers of ten labelled as gamma, gamma = 1 marked."""
    fig = np.ravel(ax)[0].figure
    bar = fig.colorbar(art, ax=ax, shrink=0.9, extend="both")
    lo, hi = art.norm.vmin, art.norm.vmax
    ticks = np.arange(np.ceil(lo), np.floor(hi) + 1)
    bar.set_ticks(ticks if len(ticks) > 1 else [lo, 0.0, hi])
    bar.set_ticklabels([_gamma_label(t) for t in bar.get_ticks()])
    bar.ax.axhline(0.0, color="k", lw=2)
    bar.set_label(f"{label} (log scale; 1 = edge of the active set)")
    return bar


def _gamma_label(log_value: float) -> str:
    value = 10.0 ** log_value
    return f"{value:g}" if 1e-3 <= value <= 1e3 else f"$10^{{{log_value:.0f}}}$"


# -- the accuracy ladder --------------------------------------------------------------------------

def accuracy_axis(ax: Axes, f_rmse, paper_f_rmse=None, *, presets: list[str] | None = None, mode: str = "rank",
                  label: str = "F_RMSE train (meV/Å)") -> np.ndarray:
    """Lay out the x axis of the basis-preset ladder evenly; returns the x positions to plot at.

    ``f_rmse`` (n,) our force RMSE per preset (meV/Å), in the order the caller plots them.
    ``mode="rank"`` puts preset i at x = i with our F_RMSE as tick labels (and the
    preset's name under it), so that no preset sits far out on the axis; the paper's
    F_RMSE of the same presets, ``paper_f_rmse`` (n,), label a secondary axis on top.
    ``mode="log"`` returns ``f_rmse`` itself on a log axis with ticks at our values; the
    paper's values are marked as open triangles on the axis. Call before or after
    drawing: it only sets the axis.
    """
    f_rmse = np.asarray(f_rmse, dtype=float)
    if f_rmse.ndim != 1 or len(f_rmse) == 0 or not np.all(np.isfinite(f_rmse)) or np.any(f_rmse <= 0):
        raise ValueError(f"accuracy_axis: f_rmse must be a non-empty 1-D array of positive values, got {f_rmse!r}")
    paper = None if paper_f_rmse is None else np.asarray(paper_f_rmse, dtype=float)
    if mode not in ("rank", "log"):
        raise ValueError(f"accuracy_axis: mode must be 'rank' or 'log', got {mode!r}")
    if mode == "rank" and paper is not None and paper.shape != f_rmse.shape:
        raise ValueError(f"accuracy_axis: paper_f_rmse has {paper.size} values for {f_rmse.size} presets; "
                         "in rank mode give the paper's value of each preset, in the same order")
    if presets is not None and len(presets) != len(f_rmse):
        raise ValueError(f"accuracy_axis: {len(presets)} preset names for {len(f_rmse)} F_RMSE values")
    ticks = [f"{v:.0f}" if v >= 10 else f"{v:.1f}" for v in f_rmse]
    if presets is not None:
        ticks = [f"{t}\n{name}" for t, name in zip(ticks, presets, strict=True)]
    if mode == "rank":
        x = np.arange(len(f_rmse), dtype=float)
        ax.set_xticks(x, ticks)
        ax.set_xlim(-0.4, len(x) - 0.6)
        ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
        if paper is not None:
            top = ax.secondary_xaxis("top")
            top.set_xticks(x, [f"{v:.0f}" if v >= 10 else f"{v:.1f}" for v in paper])
            top.set_xlabel("paper's F_RMSE (meV/Å)", fontsize=10)
            top.tick_params(labelsize=10, colors="#555555")
        ax.set_xlabel(label + (" (our presets, evenly spaced)" if presets is None else ""))
        return x
    ax.set_xscale("log")
    ax.set_xticks(f_rmse, ticks)
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    if paper is not None:
        ax.plot(paper, np.zeros_like(paper), ls="none", marker="^", ms=9, mfc="white", mec="k", clip_on=False,
                transform=ax.get_xaxis_transform(), label="paper's presets", zorder=5)
        lo, hi = min(f_rmse.min(), paper.min()), max(f_rmse.max(), paper.max())
        ax.set_xlim(lo / 1.15, hi * 1.15)
    ax.set_xlabel(label)
    return f_rmse


AL_STYLE = {"random": dict(color=_OI["grey"], ls="--", marker="x"),
            "CBF": dict(color=_OI["vermillion"], ls="-", marker="s"),
            "gamma": dict(color=_OI["black"], ls="-", marker="o"),
            "clustered gamma": dict(color=_OI["blue"], ls="-", marker="^"),
            "QUESTS": dict(color=_OI["bluish green"], ls="-", marker="D")}


# -- scoring (notebook 06) ------------------------------------------------------------------------

def roc_auc_bars(ax: Axes, detection: pd.DataFrame, title: str) -> Axes:
    """Horizontal ROC-AUC bars, one per (level, criterion) row of a detection table; chance (0.5) dotted."""
    names = detection["level"].str[:4] + " " + detection["criterion"]
    colors = [_OI["blue"] if level == "configuration" else _OI["orange"] for level in detection["level"]]
    ax.barh(names, detection["roc_auc"], color=colors)
    ax.axvline(0.5, color="k", ls=":")
    ax.set(xlim=(0, 1), xlabel="ROC-AUC", title=title)
    return ax


def paper_models_axis(ax: Axes, positions: list[float], paper_f_rmse: dict[str, float] | None = None, *,
                      names: bool = True) -> Axes:
    """Mark the paper's stated F_RMSE (meV/Å) on a top axis at the ladder steps that stand for its models.

    ``positions`` (m,): the x positions of our presets that stand for the paper's models, in
    the order of ``paper_f_rmse`` (default :data:`uqlib.paper.values.F_RMSE`, Func-15 then
    Func-945). The ladder axis is categorical (:func:`accuracy_axis` in rank mode), so the
    marks name steps, not a scale. Returns the secondary axis.
    """
    from uqlib.paper import values

    paper = values.F_RMSE if paper_f_rmse is None else paper_f_rmse
    if len(positions) != len(paper):
        raise ValueError(f"paper_models_axis: {len(positions)} positions for the paper's {len(paper)} models "
                         f"{list(paper)}; give one ladder step per model")
    top = ax.secondary_xaxis("top")
    top.set_xticks(list(positions), [f"{v:g}" + (f" ({name})" if names else "") for name, v in paper.items()])
    top.set_xlabel("paper's F_RMSE (meV/Å)", fontsize=10)
    top.tick_params(labelsize=9, colors="#555555")
    return top
