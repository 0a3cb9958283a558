"""The paper's 2D MaxVol example (Fig. 7c-d) and the minimum rule of clustered D-optimality (Fig. 8a-b).

Groups of 2D vectors stand in for the groups of a heterogeneous training set (dimensionless
coordinates x1, x2; each vector is the "projection" of one atom onto two basis functions).
MaxVol picks, from each set of vectors, the two of (locally) largest |det|; a vector x is
graded by ``gamma = max_j |(x A^-1)_j|`` (the paper's extrapolation grade), whose region
``gamma <= 1`` is the parallelogram with corners +-v1 +-v2. The union of the groups has one
active set (the original D-optimality, Fig. 8a); the clustered rule grades x by the minimum
of its grades over the groups' own active sets (Fig. 8b). Since ``gamma(-x) = gamma(x)``,
every region of the plane has a mirror image through the origin; points A and B are looked
for on the data's side only.

MaxVol and the grade are :func:`uqlib.activeset.build_active_set` and
:func:`uqlib.activeset.extrapolation_grade`, i.e. pyace's ``compute_active_set``, as for ACE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from uqlib import activeset
from uqlib.exceptions import UqlibError
from uqlib.paper import values

CATEGORIES = ("ID for both", "OOD for both", "missed OOD (union ID, groups OOD)", "false OOD (union OOD, a group ID)")
GROUP_NAMES = "abcdefghij"
# The paper's Fig. 7c grades, keyed (point, active set), from uqlib.paper.values (its point coordinates
# are not published): gamma_15 is the union's set (v1, v5), gamma_12 / gamma_34 / gamma_56 those of
# groups a / b / c.
PAPER_GRADES = values.TOY_GRADES
# The paper's point B lies in group b: its "group b" grade is compared with our B's own group's grade.
PAPER_OWN_GROUP = {"B": "group b"}


class ToyExampleError(UqlibError, ValueError):
    """Bad parameters of the 2D example."""


def make_groups(centres: list | np.ndarray, spread: float, points_per_group: int, seed: int) -> list[np.ndarray]:
    """One Gaussian cloud of ``points_per_group`` 2D vectors, each (points_per_group, 2), per centre (n_groups, 2)."""
    centres = np.asarray(centres, dtype=float)
    if centres.ndim != 2 or centres.shape[1] != 2 or not 1 <= len(centres) <= len(GROUP_NAMES):
        raise ToyExampleError(f"group_centres must be 1 to {len(GROUP_NAMES)} pairs [x1, x2], got {centres.tolist()}")
    if spread <= 0 or points_per_group < 2:
        raise ToyExampleError(f"need group_spread > 0 and points_per_group >= 2 (an active set has two vectors), "
                              f"got {spread} and {points_per_group}")
    rng = np.random.default_rng(seed)
    return [c + spread * rng.standard_normal((points_per_group, 2)) for c in centres]


def active_set_2d(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MaxVol active set of (n, 2) vectors: the row indices (2,) and the vectors A (2, 2)."""
    points = np.asarray(points, dtype=float)
    selected = activeset.build_active_set(points).atoms  # one species: the array is keyed W
    (rows,) = selected.values()
    return rows, points[rows]


def grade(points: np.ndarray, active_vectors: np.ndarray) -> np.ndarray:
    """gamma = max_j |(x A^-1)_j| of each row x of ``points`` (n, 2) against the active set A (2, 2); shape (n,)."""
    return activeset.extrapolation_grade(np.atleast_2d(np.asarray(points, float)), np.linalg.inv(active_vectors))


@dataclass
class ActiveSets2D:
    """The union's active set (indices into the stacked groups) and each group's own."""

    groups: list[np.ndarray]
    union_indices: np.ndarray  # (2,) rows of np.vstack(groups)
    union_vectors: np.ndarray  # (2, 2)
    group_indices: list[np.ndarray]  # (2,) rows of each group
    group_vectors: list[np.ndarray]  # (2, 2) each

    @property
    def names(self) -> list[str]:
        return [f"group {GROUP_NAMES[g]}" for g in range(len(self.groups))]


def union_vs_groups(groups: list[np.ndarray]) -> ActiveSets2D:
    """MaxVol on the union of the groups (Fig. 8a) and on each group alone (Fig. 8b)."""
    union_indices, union_vectors = active_set_2d(np.vstack(groups))
    per_group = [active_set_2d(g) for g in groups]
    return ActiveSets2D(groups, union_indices, union_vectors, [i for i, _ in per_group], [v for _, v in per_group])


def grades_table(points: np.ndarray, sets: ActiveSets2D) -> pd.DataFrame:
    """Per point: x1, x2, gamma union, gamma of each group, gamma min (the clustered rule) and its argmin group."""
    points = np.atleast_2d(np.asarray(points, float))
    per_group = np.column_stack([grade(points, v) for v in sets.group_vectors])
    table = pd.DataFrame({"x1": points[:, 0], "x2": points[:, 1], "gamma union": grade(points, sets.union_vectors)})
    table[[f"gamma {n}" for n in sets.names]] = per_group
    table["gamma min"] = per_group.min(axis=1)
    table["argmin group"] = np.array(sets.names)[per_group.argmin(axis=1)]
    return table


def categorise(gamma_union: np.ndarray, gamma_min: np.ndarray) -> np.ndarray:
    """Index into CATEGORIES of each point: how the union's grade and the minimum rule agree (gamma > 1 is OOD)."""
    union_ood, min_ood = gamma_union > 1, gamma_min > 1
    return np.select([~union_ood & ~min_ood, union_ood & min_ood, ~union_ood & min_ood], [0, 1, 2], default=3)


@dataclass
class PlaneScan:
    """Grades over the square [-w, w]^2 cut into n_grid x n_grid cells, graded at their centres."""

    table: pd.DataFrame  # one row per cell: grades_table columns + "category"
    sets: ActiveSets2D
    half_width: float
    n_grid: int

    @property
    def extent(self) -> tuple[float, float, float, float]:
        return (-self.half_width, self.half_width, -self.half_width, self.half_width)

    @property
    def cell_area(self) -> float:
        return (2 * self.half_width / self.n_grid) ** 2

    def image(self, column: str = "category") -> np.ndarray:
        """A column as an (n_grid, n_grid) image, rows along x2 (for ``imshow(origin="lower")``)."""
        return self.table[column].to_numpy().reshape(self.n_grid, self.n_grid)

    @property
    def covers_all_sets(self) -> bool:
        """Whether the square holds every gamma <= 1 parallelogram, so the disagreement areas are complete."""
        corners = [np.abs(v[0]) + np.abs(v[1]) for v in [self.sets.union_vectors, *self.sets.group_vectors]]
        return bool(np.max(corners) <= self.half_width)

    @property
    def areas(self) -> pd.Series:
        """Area of each category (same units as x1 * x2); they sum to (2 w)^2."""
        counts = np.bincount(self.table["category"], minlength=len(CATEGORIES))
        return pd.Series(self.cell_area * counts, index=list(CATEGORIES), name="area")


def scan_plane(sets: ActiveSets2D, half_width: float, n_grid: int) -> PlaneScan:
    """Grade the centres of an n_grid x n_grid grid of cells covering [-half_width, half_width]^2 (Fig. 7d)."""
    if half_width <= 0 or n_grid < 2:
        raise ToyExampleError(f"need grid_half_width > 0 and grid_points >= 2, got {half_width} and {n_grid}")
    centres = -half_width + (np.arange(n_grid) + 0.5) * 2 * half_width / n_grid
    x1, x2 = np.meshgrid(centres, centres)
    table = grades_table(np.column_stack([x1.ravel(), x2.ravel()]), sets)
    table["category"] = categorise(table["gamma union"].to_numpy(), table["gamma min"].to_numpy())
    return PlaneScan(table, sets, half_width, n_grid)


def _in_data_cone(xy: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Whether each row of ``xy`` points in a direction between the data's extreme directions (same side)."""
    reference = np.angle(complex(*data.mean(0)))
    relative = np.angle(np.exp(1j * (np.angle(xy[:, 0] + 1j * xy[:, 1]) - reference)))
    data_relative = np.angle(np.exp(1j * (np.angle(data[:, 0] + 1j * data[:, 1]) - reference)))
    return (xy @ data.mean(0) > 0) & (relative >= data_relative.min()) & (relative <= data_relative.max())


def mahalanobis(xy: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Distance of each row of ``xy`` (n, 2) from the group's mean, in units of its own covariance; shape (n,)."""
    offset = xy - group.mean(0)
    return np.sqrt(np.einsum("ij,jk,ik->i", offset, np.linalg.inv(np.cov(group.T)), offset))


def find_points(sets: ActiveSets2D, scan: PlaneScan, within_sigma: float = 2.0) -> pd.DataFrame:
    """Points A and B of Fig. 7c, chosen among the scan's cell centres.

    A (between groups): among missed-OOD cells (gamma union <= 1 < gamma min) whose direction lies
    between the data's extreme directions, the one deepest inside that region, i.e. of largest
    min(1 - gamma union, gamma min - 1).
    B (inside group g's data: Mahalanobis distance from g's mean <= ``within_sigma``; 2 holds about
    86 % of a Gaussian group): among cells its own group grades ID (gamma_g <= 1) while every other
    group alone grades OOD, the one of largest gamma union (> 1: the union over-estimates it, the
    paper's "false OOD" B). As B's own set is also a group's, the minimum rule grades it <= 1.
    Returns grades_table rows indexed "A", "B" plus "group" (B's own) and "mahalanobis" (B's distance
    in units of its group's spread); a point with no candidate cell is left out.
    """
    table = scan.table
    xy, union = table[["x1", "x2"]].to_numpy(), table["gamma union"].to_numpy()
    gamma = table[[f"gamma {n}" for n in sets.names]].to_numpy()
    chosen = {}
    missed = _in_data_cone(xy, np.vstack(sets.groups)) & (table["category"].to_numpy() == 2)
    if missed.any():
        margin = np.minimum(1 - union, table["gamma min"].to_numpy() - 1)
        chosen["A"] = (np.flatnonzero(missed)[np.argmax(margin[missed])], None, np.nan)
    for g, group in enumerate(sets.groups):
        distance = mahalanobis(xy, group)
        others_ood = np.delete(gamma, g, axis=1).min(axis=1, initial=np.inf) > 1
        candidates = np.flatnonzero((distance <= within_sigma) & (gamma[:, g] <= 1) & others_ood)
        if len(candidates) and ("B" not in chosen or union[candidates].max() > union[chosen["B"][0]]):
            best = candidates[np.argmax(union[candidates])]
            chosen["B"] = (best, sets.names[g], distance[best])
    points = table.iloc[[row for row, _, _ in chosen.values()]].drop(columns="category").set_axis(list(chosen))
    points["group"] = [group for _, group, _ in chosen.values()]
    points["mahalanobis"] = [distance for _, _, distance in chosen.values()]
    return points


def paper_comparison(points: pd.DataFrame) -> pd.DataFrame:
    """Claim P28: the paper's grades of A and B beside ours, and whether each lies on the same side of 1.

    The paper's coordinates of the groups, A and B are not published, so the values themselves
    cannot be compared, only which side of gamma = 1 each falls on (ID or OOD). Group labels a, b, c
    are matched by order of the centres; for B the comparison uses its own group (b in the paper).
    """
    rows = []
    for (point, which), paper in PAPER_GRADES.items():
        if point not in points.index:
            ours = np.nan
        else:
            own = PAPER_OWN_GROUP.get(point) == which
            column = f"gamma {points.loc[point, 'group']}" if own else f"gamma {which}"
            ours = points.loc[point, column] if column in points.columns else np.nan
        rows.append({"point": point, "grade": which, "paper": paper, "ours": ours,
                     "same side of 1": bool(np.isfinite(ours) and (ours > 1) == (paper > 1))})
    return pd.DataFrame(rows)


def novelty_shares(sets: ActiveSets2D, scan: PlaneScan, within_sigma: float = 2.0) -> dict[str, float]:
    """How each rule treats novel and known cells of the scan (Fig. 8a-b, claim P30).

    Known cells lie within ``within_sigma`` (Mahalanobis) of some group's mean, novel cells
    of none. Returns the share of novel cells flagged (gamma > 1) by the union's set and by
    the minimum over the groups, and the share of known cells flagged by the worst single
    group's set (each group judging the other groups' data), by the union's set and by the
    minimum (the keys of :func:`uqlib.paper.claims.p30_minimum_grade`).
    """
    xy = scan.table[["x1", "x2"]].to_numpy()
    near = np.stack([mahalanobis(xy, group) <= within_sigma for group in sets.groups], axis=1)
    novel, known = ~near.any(axis=1), near.any(axis=1)
    single = np.stack([scan.table[f"gamma {name}"].to_numpy() for name in sets.names], axis=1)
    worst_single = max(float(np.mean(single[near[:, g] & ~near[:, h], h] > 1))
                       for g in range(len(sets.groups)) for h in range(len(sets.groups))
                       if h != g and (near[:, g] & ~near[:, h]).any())
    return {"novel_rate_union": float(np.mean(scan.table["gamma union"].to_numpy()[novel] > 1)),
            "novel_rate_min": float(np.mean(scan.table["gamma min"].to_numpy()[novel] > 1)),
            "known_rate_single": worst_single,
            "known_rate_union": float(np.mean(scan.table["gamma union"].to_numpy()[known] > 1)),
            "known_rate_min": float(np.mean(scan.table["gamma min"].to_numpy()[known] > 1))}


def random_geometry(rng: np.random.Generator, n_groups: int, points_per_group: int,
                    radius: tuple[float, float] = (1.0, 4.0), spread: tuple[float, float] = (0.1, 0.4),
                    max_tries: int = 1000) -> list[np.ndarray]:
    """``n_groups`` non-overlapping Gaussian groups of 2D vectors, each ``(points_per_group, 2)``, as Fig. 7c.

    Each group's centre has a uniform direction in [0, pi) (gamma(-x) = gamma(x) and |det| is
    blind to a vector's sign, so the other half-plane adds nothing) and a length uniform in
    ``radius``; its standard deviation is uniform in ``spread`` times that length. Groups are
    redrawn until every two centres lie more than two standard deviations of each apart
    (the paper's "distinct non-overlapping subsets").
    """
    for _ in range(max_tries):
        angles = rng.uniform(0.0, np.pi, n_groups)
        lengths = rng.uniform(*radius, n_groups)
        centres = np.column_stack([lengths * np.cos(angles), lengths * np.sin(angles)])
        sigmas = rng.uniform(*spread, n_groups) * lengths
        distance = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
        apart = distance > 2 * (sigmas[:, None] + sigmas[None])
        if np.all(apart | np.eye(n_groups, dtype=bool)):
            return [c + s * rng.standard_normal((points_per_group, 2)) for c, s in zip(centres, sigmas, strict=True)]
    raise ToyExampleError(f"no {n_groups} non-overlapping groups found in {max_tries} draws: use fewer groups or a "
                          f"smaller spread than {spread}")


def random_geometries(n_geometries: int, seed: int, *, n_groups: int = 3, points_per_group: int = 25,
                      n_grid: int = 201, margin: float = 1.05) -> pd.DataFrame:
    """Claim P29 over many seeded random 2D geometries (:func:`random_geometry`) instead of one chosen here.

    Geometry *i* is drawn with the seed sequence ``(seed, i)``: the same ``seed`` gives the
    same geometries, and adding geometries keeps the first ones. Each is scanned
    (:func:`scan_plane`) over a square ``margin`` times larger than every active set's
    gamma <= 1 parallelogram, so the disagreement areas are complete. One row per geometry:
    ``geometry``, ``n_groups``, ``half_width``, and the shares of the scanned square that the
    union's active set under-estimates (``underestimated share``: union gamma <= 1 < the
    minimum over the groups, "missed OOD") and over-estimates (``overestimated share``: union
    gamma > 1 >= the minimum, "false OOD"); dimensionless, in [0, 1].
    """
    if n_geometries < 1 or n_groups < 2 or n_grid < 2 or margin < 1:
        raise ToyExampleError(f"need n_geometries >= 1, n_groups >= 2, n_grid >= 2 and margin >= 1; got "
                              f"{n_geometries}, {n_groups}, {n_grid}, {margin}")
    rows = []
    for geometry in range(n_geometries):
        groups = random_geometry(np.random.default_rng([seed, geometry]), n_groups, points_per_group)
        sets = union_vs_groups(groups)
        corners = [np.abs(v[0]) + np.abs(v[1]) for v in [sets.union_vectors, *sets.group_vectors]]
        scan = scan_plane(sets, margin * float(np.max(corners)), n_grid)
        shares = scan.areas / scan.areas.sum()
        rows.append({"geometry": geometry, "n_groups": n_groups, "half_width": scan.half_width,
                     "covers all sets": scan.covers_all_sets,
                     "underestimated share": float(shares[CATEGORIES[2]]),
                     "overestimated share": float(shares[CATEGORIES[3]])})
    return pd.DataFrame(rows)


def claim_inputs(sets: ActiveSets2D, scan: PlaneScan, n_geometries: int, seed: int,
                 within_sigma: float = 2.0) -> tuple[dict[str, float], pd.DataFrame]:
    """The 2D inputs of claims P30 and P29: :func:`novelty_shares` of the example's scan, and
    :func:`random_geometries` (``n_geometries`` seeded random geometries, ``seed``), in the order
    :func:`uqlib.paper.studies.heterogeneity_claims` takes them."""
    return novelty_shares(sets, scan, within_sigma), random_geometries(n_geometries, seed)
