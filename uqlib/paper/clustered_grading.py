"""Fig. 8: the clustered grade of PRM2020 on a LAMMPS fracture run, as tidy tables.

PRM2020 (Byggmästar et al. 2020) is relabelled with UNEP-v1 (the stand-in for the
paper's NEP89) and partitioned four ways: its 15 structure groups (the paper's choice,
:func:`uqlib.paper.prm2020.prm2020_groups`, the default), its 23 contiguous blocks, the
authors' unsupervised route (structure-averaged SOAP, PCA, BIRCH into 5 clusters,
:func:`uqlib.clustering.soap_birch_clusters`) and k-means on the ACE descriptor. A global
:class:`~uqlib.criteria.DOptimality` (one active set) and one
:class:`~uqlib.criteria.ClusteredDOptimality` per partition (one model, outlier filter
and active set per cluster; gamma_atom = minimum over the clusters, the paper's Fig. 8b)
grade every atom of every frame of a mode-I fracture run of a W polycrystal
(:func:`uqlib.paper.fracture.run_profile`, LAMMPS + Zhou EAM), labelled with UNEP-v1. Each
atom is classed bulk / grain boundary / free surface
(:func:`uqlib.paper.structures.fracture_atom_table`). Force errors are those of the global
model (all PRM2020) against UNEP-v1, in eV/Å.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from ase import Atoms

from uqlib import ace, clustering, grading, tables
from uqlib.activeset import ActiveSet, ClusteredActiveSet
from uqlib.config import ELEMENT
from uqlib.criteria import ClusteredDOptimality, DOptimality, FeaturizedSet, featurize
from uqlib.exceptions import UqlibError
from uqlib.paper import claims, data, fracture, prm2020, structures

PARTITIONS = ("groups", "blocks", "soap-birch", "kmeans")
GRADES = ("global", "clustered")
KINDS = ("all", *structures.ATOM_CLASSES)
PROFILES = {"fast": fracture.FAST, "full": fracture.FULL}


class PartitionError(UqlibError, ValueError):
    """An unknown partition of PRM2020 or fracture profile was asked for."""


def _check_partitions(partitions: tuple[str, ...] | list[str]) -> None:
    unknown = [p for p in partitions if p not in PARTITIONS]
    if unknown or not partitions:
        raise PartitionError(f"partitions {list(partitions)}: choose one or more of {PARTITIONS}; "
                             f"the first one is the clustered grade shown in Fig. 8d,f")


def load_prm2020(per_group: int | None, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """UNEP-v1-labelled PRM2020, at most ``per_group`` structures of each of the 15 groups (None: all).

    Returns the structure table (extra columns ``group``, ``family`` and ``block``) and the
    group mapping (:func:`uqlib.paper.prm2020.block_evidence`: what each block holds, its family
    and group, and the share of its structures whose own rule agrees).
    """
    full = data.load_subsets("PRM2020")
    evidence = prm2020.block_evidence(full)
    blocks = data.prm2020_blocks(full)
    full["block"] = blocks.to_numpy()
    for level in ("group", "family"):
        full[level] = blocks.map(dict(zip(evidence["block"], evidence[level], strict=True)))
    table = structures.label_with_nep(tables.subsample(full, per_group, seed, by="group").reset_index(drop=True))
    return table, evidence


def partition_labels(train: FeaturizedSet, partition: str, *, n_clusters: int | None = None,
                     seed: int = 0) -> np.ndarray | str:
    """One cluster label per training structure (or ``"kmeans"`` for the criterion to cluster itself).

    ``"soap-birch"`` uses ``n_clusters`` BIRCH clusters (default 5, as the authors'
    ``Code/Clustering.ipynb``) of the averaged SOAP vectors.
    """
    _check_partitions([partition])
    if partition == "groups":
        return train.table["group"].astype(str).to_numpy()
    if partition == "blocks":
        return train.table["block"].astype(str).to_numpy()
    if partition == "soap-birch":
        labels, _ = clustering.soap_birch_clusters(soap_matrix(train.table), n_clusters or 5)
        return np.array([f"birch{label}" for label in labels])
    return "kmeans"


def soap_matrix(table: pd.DataFrame) -> np.ndarray:
    """Structure-averaged SOAP vectors of a structure table (cached), ``(n_structures, n_features)``."""
    return clustering.soap_descriptors(list(table["atoms"]), progress=False)


def soap_birch_sizes(table: pd.DataFrame, n_clusters: int = 5, *, n_orders: int = 10, seed: int = 0) -> pd.DataFrame:
    """Sizes of the SOAP+BIRCH clusters (largest first) over ``n_orders`` row orders: mean, sd, min, max."""
    sizes = clustering.cluster_sizes_over_orders(soap_matrix(table), n_clusters, n_orders=n_orders, seed=seed)
    return sizes.groupby("rank")["size"].agg(["mean", "std", "min", "max"]).round(1)


@dataclass
class PrmCriteria:
    """The PRM2020 training set, the global criterion and one clustered criterion per partition."""

    train: FeaturizedSet
    global_: DOptimality
    clustered: dict[str, ClusteredDOptimality]

    @property
    def main(self) -> str:
        """The partition whose grade is "the clustered grade" (the first fitted)."""
        return next(iter(self.clustered))


def fit_on_prm2020(train: FeaturizedSet, partitions: tuple[str, ...] | list[str] = ("groups",), *,
                   outliers: str = "per-cluster", n_clusters: int | None = None, seed: int = 0,
                   kappa: float = 0.01, alpha: float = 1e-8) -> PrmCriteria:
    """A global and one clustered D-optimality criterion per partition, fitted on featurized PRM2020.

    ``n_clusters`` is used by ``"soap-birch"`` (default 5) and ``"kmeans"`` (default: by
    silhouette, at most 15).
    """
    _check_partitions(partitions)
    clustered = {p: ClusteredDOptimality(partition_labels(train, p, n_clusters=n_clusters, seed=seed),
                                         n_clusters=n_clusters, outliers=outliers, seed=seed, max_clusters=15,
                                         kappa=kappa, alpha=alpha).fit(train) for p in partitions}
    return PrmCriteria(train, DOptimality(kappa=kappa, alpha=alpha).fit(train), clustered)


def fracture_run(profile: str, seed: int) -> tuple[list[Atoms], dict]:
    """The frames (unloaded first, fractured last) and report of a fracture profile (``"fast"``/``"full"``)."""
    if profile not in PROFILES:
        raise PartitionError(f"fracture profile {profile!r}: choose one of {list(PROFILES)}")
    _, frames, report = fracture.run_profile(PROFILES[profile], seed)
    return frames, report


def grade_frames(criteria: PrmCriteria, frames: list[Atoms]) -> pd.DataFrame:
    """Every atom of every frame graded: a tidy table, one row per (frame, atom).

    Columns: ``frame, strain, atom, kind`` (bulk / grain_boundary / free_surface),
    ``new_free_surface``, ``fracture_mode``, ``coordination`` (within 3.8 Å; bulk 14),
    ``gamma_global``, ``gamma_<partition>`` for each fitted partition, ``gamma_clustered``
    (the main partition), ``cluster`` (the main partition's cluster that gave the minimum)
    and ``force_error`` (eV/Å, the global model against UNEP-v1).
    """
    table = structures.label_frames(frames)
    graded = featurize(table, criteria.train.dm.preset)
    kinds = [structures.fracture_atom_table(frames[0], frame).assign(frame=k, strain=frame.info.get("strain", np.nan))
             for k, frame in enumerate(frames)]
    out = pd.concat(kinds, ignore_index=True)[["frame", "strain", "atom", "kind", "new_free_surface",
                                               "fracture_mode", "coordination"]]
    global_atoms = criteria.global_.score(graded).atoms  # the errors of the global model
    projections = {ELEMENT: graded.projections}  # the cached featurization pass: no second pyace pass
    out["gamma_global"] = _frame_gammas(frames, criteria.global_.active_set_, projections)[0]
    for name, criterion in criteria.clustered.items():
        gamma, cluster = _frame_gammas(frames, criterion.active_set_, projections)
        out[f"gamma_{name}"] = gamma
        if name == criteria.main:
            out["gamma_clustered"], out["cluster"] = gamma, np.asarray(criterion.active_set_.clusters)[cluster]
    out["force_error"] = global_atoms["err_F"].to_numpy()
    return out


def _frame_gammas(frames: list[Atoms], active_set: ActiveSet | ClusteredActiveSet,
                  projections: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Every atom's gamma and nearest cluster, frame by frame, by :func:`uqlib.grading.grade_block` (the function
    the command and the Dask path grade frames with)."""
    if isinstance(active_set, ActiveSet):
        active_set = ClusteredActiveSet.single(active_set)
    graded = grading.grade_block(frames, active_set, projections, source="the fracture run")
    return np.concatenate([g for g, _ in graded]), np.concatenate([c for _, c in graded])


def _kind_masks(atoms: pd.DataFrame) -> dict[str, np.ndarray]:
    masks = {"all": np.ones(len(atoms), bool)}
    masks.update({kind: (atoms["kind"] == kind).to_numpy() for kind in structures.ATOM_CLASSES})
    masks["new free surface"] = atoms["new_free_surface"].to_numpy(bool)
    return masks


def frame_rates(graded: pd.DataFrame) -> pd.DataFrame:
    """Per frame and atom kind: atoms and the share (%) above gamma = 1 under each grade; tidy."""
    rows = []
    for (frame, strain), atoms in graded.groupby(["frame", "strain"], sort=True):
        for kind, mask in _kind_masks(atoms).items():
            row = {"frame": frame, "strain": strain, "kind": kind, "atoms": int(mask.sum())}
            row.update({f"{grade} (%)": 100 * float(np.mean(atoms.loc[mask, f"gamma_{grade}"] > 1))
                        if mask.any() else np.nan for grade in GRADES})
            rows.append(row)
    return pd.DataFrame(rows)


def partition_comparison(criteria: PrmCriteria, graded: pd.DataFrame, high_error: float) -> pd.DataFrame:
    """One row per grade (global, then each partition) on the last frame: clusters, merges, outliers, and the
    share (%) flagged of all, grain-boundary, free-surface and new free-surface atoms and of high-error atoms
    (force error > ``high_error`` eV/Å)."""
    last = graded[graded["frame"] == graded["frame"].max()]
    masks = _kind_masks(last) | {f"error > {high_error:g} eV/Å": (last["force_error"] > high_error).to_numpy()}
    grades = {"global": (criteria.global_, last["gamma_global"])}
    grades.update({name: (c, last[f"gamma_{name}"]) for name, c in criteria.clustered.items()})
    rows = []
    for name, (criterion, gamma) in grades.items():
        active = criterion.active_set_
        row = {"grade": name, "clusters": len(getattr(active, "clusters", [name])),
               "merged": len(getattr(active, "merged", {})), "outlier atoms": int((~criterion.keep_).sum())}
        row.update({f"{kind} (%)": 100 * float(np.mean(gamma.to_numpy()[m] > 1)) if m.any() else np.nan
                    for kind, m in masks.items()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("grade").round(2)


def only_one_grade(graded: pd.DataFrame) -> pd.DataFrame:
    """Per frame: atoms flagged by only one grade, and their force errors (meV/Å) against the unflagged rest."""
    rows = []
    for frame, atoms in graded.groupby("frame", sort=True):
        g, c, error = atoms["gamma_global"] > 1, atoms["gamma_clustered"] > 1, 1e3 * atoms["force_error"]
        for name, mask in (("only clustered", c & ~g), ("only global", g & ~c)):
            rows.append({"frame": frame, "strain": atoms["strain"].iloc[0], "flagged by": name,
                         "atoms": int(mask.sum()),
                         "median error": error[mask].median(), "median error, neither grade": error[~g & ~c].median()})
    return pd.DataFrame(rows).round({"strain": 3, "median error": 1, "median error, neither grade": 1})


def _spread(values: list[float], unit: str = "%", scale: float = 100.0) -> str:
    v = scale * np.asarray(values, float)
    v = v[np.isfinite(v)]
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f} {unit} over {v.size} loaded frames" if v.size > 1 else "n/a"


def _frame_claims(atoms: pd.DataFrame, high_error: float, clustered: str = "gamma_clustered"
                  ) -> list[claims.ClaimRecord]:
    """P31-P33 and P36 on one frame's atoms; ``clustered`` names the column of the clustered grade judged
    (``gamma_clustered``, the main partition, or ``gamma_<partition>``)."""
    g, c = atoms["gamma_global"].to_numpy(), atoms[clustered].to_numpy()
    error, surface = atoms["force_error"].to_numpy(), (atoms["kind"] == "free_surface").to_numpy()
    high, only = error > high_error, (c > 1) & (g <= 1)
    neither = (g <= 1) & (c <= 1)  # P33: the new atoms against the atoms neither grade flags
    records = [claims.p31_surface_atoms(float(np.mean(g[surface] > 1)), float(np.mean(c[surface] > 1))),
               claims.p32_global_misses(g, error, high_error),
               claims.judge("P33", claims.p33_new_atoms_error, error[only], error[neither])]
    if high.any():
        records.append(claims.p36_clustered_improves(float(np.mean(g[high] > 1)), float(np.mean(c[high] > 1))))
    else:
        records.append(claims.not_testable("P36", f"no atom has a force error above {high_error:g} eV/Å"))
    return records


def _combinations_text(pid: str, combinations: pd.DataFrame) -> str:
    """"verdict for partition @ preset, ..." of one claim, verdicts in VERDICTS order."""
    rows = combinations[combinations["pid"] == pid]
    parts = [f"{verdict} for " + ", ".join(f"{r.partition} @ {r.preset}" for r in rows[rows["verdict"] == verdict]
                                           .itertuples())
             for verdict in claims.VERDICTS if (rows["verdict"] == verdict).any()]
    return "by partition and preset: " + "; ".join(parts) if parts else ""


def fracture_claims(graded: pd.DataFrame, high_error: float,
                    combinations: pd.DataFrame | None = None) -> list[claims.ClaimRecord]:
    """P31-P33 and P36 on the fractured (last) frame; ``ours`` adds the spread of the claim's quantity over the
    loaded frames (strain > 0). P31 counts free-surface atoms (pre-crack and new crack faces); P32/P36 the atoms
    with a force error above ``high_error`` eV/Å; P33 compares atoms flagged only by the clustered grade with
    atoms neither grade flags. ``combinations`` (:func:`combination_claims`, optional): the verdict of every
    partition at every preset judged; each record's ``why`` then says which combinations give which verdict."""
    loaded = [atoms for _, atoms in graded[graded["strain"] > 0].groupby("frame", sort=True)]
    surface = [a[a["kind"] == "free_surface"] for a in loaded]
    high = [a[a["force_error"] > high_error] for a in loaded]
    new = [a[(a["gamma_clustered"] > 1) & (a["gamma_global"] <= 1)] for a in loaded]
    extra = {"P31": "clustered - global: " + _spread([np.mean(s["gamma_clustered"] > 1) - np.mean(s["gamma_global"] > 1)
                                                      for s in surface], "points"),
             "P32": "missed: " + _spread([np.mean(h["gamma_global"] <= 1) if len(h) else np.nan for h in high]),
             "P33": "median error of new atoms: " + _spread([n["force_error"].median() for n in new], "meV/Å", 1e3),
             "P36": "clustered - global: " + _spread([np.mean(h["gamma_clustered"] > 1) - np.mean(h["gamma_global"] > 1)
                                                      if len(h) else np.nan for h in high], "points")}
    last = graded[graded["frame"] == graded["frame"].max()]
    records = [replace(r, ours=f"{r.ours}; {extra[r.pid]}") for r in _frame_claims(last, high_error)]
    if combinations is not None:
        records = [replace(r, why=f"{r.why}; {text}") if (text := _combinations_text(r.pid, combinations)) else r
                   for r in records]
    return records


# -- Fig 8 under scrutiny (issue 21, item 7): every partition, at the preset where the groups span their basis --


def partition_columns(graded: pd.DataFrame) -> list[str]:
    """The partitions graded in a :func:`grade_frames` table (its ``gamma_<partition>`` columns), in order."""
    return [c.removeprefix("gamma_") for c in graded.columns
            if c.startswith("gamma_") and c.removeprefix("gamma_") in PARTITIONS]


def combination_claims(graded_by_preset: dict[str, pd.DataFrame], high_error: float,
                       merged_by_preset: dict[str, dict[str, int]] | None = None) -> pd.DataFrame:
    """P31-P33 and P36 on the last frame for every (preset, partition) graded: a tidy table.

    ``graded_by_preset`` maps a preset to its :func:`grade_frames` table; every partition graded
    there is judged (``gamma_<partition>`` in place of the clustered grade). ``merged_by_preset``
    (optional, preset -> partition -> clusters merged because their atoms could not span the
    basis, as :func:`merged_clusters` gives) adds a ``merged`` column: 0 means every cluster kept
    its own active set, as each of the authors' 15 potentials did. One row per (preset,
    partition, pid): ``verdict``, ``ours``, ``why``.
    """
    rows = []
    for preset, graded in graded_by_preset.items():
        last = graded[graded["frame"] == graded["frame"].max()]
        for partition in partition_columns(graded):
            merged = (merged_by_preset or {}).get(preset, {}).get(partition, np.nan)
            for record in _frame_claims(last, high_error, f"gamma_{partition}"):
                rows.append({"preset": preset, "partition": partition, "merged": merged, "pid": record.pid,
                             "verdict": record.verdict, "ours": record.ours, "why": record.why})
    return pd.DataFrame(rows, columns=["preset", "partition", "merged", "pid", "verdict", "ours", "why"])


def merged_clusters(criteria: PrmCriteria) -> dict[str, int]:
    """Per partition of fitted criteria: how many clusters were merged into others (could not span the basis)."""
    return {name: len(getattr(c.active_set_, "merged", {})) for name, c in criteria.clustered.items()}


def spanning_table(train: FeaturizedSet, presets: list[str], partition: str = "groups", *,
                   outliers: str = "per-cluster", n_clusters: int | None = None, seed: int = 0,
                   kappa: float = 0.01, alpha: float = 1e-8) -> pd.DataFrame:
    """Per preset (nested in ``train``'s, column selections): whether every cluster of ``partition`` spans its
    basis, measured by fitting that partition's clustered criterion (the same outlier filter and merging).

    One row per preset: ``n_functions``, ``clusters`` (own active sets), ``merged`` (clusters merged
    because their kept atoms could not span the functions) and ``all span`` (merged == 0).
    """
    rows = []
    for preset in presets:
        selected = train.select(preset)
        # the criterion fit_on_prm2020 builds for this partition (no global set: it is not needed here)
        active = ClusteredDOptimality(partition_labels(selected, partition, n_clusters=n_clusters, seed=seed),
                                      n_clusters=n_clusters, outliers=outliers, seed=seed, max_clusters=15,
                                      kappa=kappa, alpha=alpha).fit(selected).active_set_
        rows.append({"preset": preset, "n_functions": selected.dm.n_functions,
                     "clusters": len(active.clusters), "merged": len(active.merged),
                     "all span": not active.merged})
    return pd.DataFrame(rows).set_index("preset")


def spanning_preset(table: pd.DataFrame) -> str | None:
    """The preset of most functions in a :func:`spanning_table` where every cluster spans its basis (``None``: none)."""
    spanning = table[table["all span"]]
    return None if spanning.empty else str(spanning["n_functions"].idxmax())


def grade_at_preset(study: Fig8Study, preset: str, *, outliers: str = "per-cluster", n_clusters: int | None = None,
                    seed: int = 0, kappa: float = 0.01, alpha: float = 1e-8) -> tuple[PrmCriteria, pd.DataFrame]:
    """The study's partitions refitted at a smaller nested ``preset`` (column selections of the study's
    featurization) and the same fracture frames graded with them (:func:`grade_frames`)."""
    criteria = fit_on_prm2020(study.criteria.train.select(preset), list(study.criteria.clustered), outliers=outliers,
                              n_clusters=n_clusters, seed=seed, kappa=kappa, alpha=alpha)
    return criteria, grade_frames(criteria, study.frames)


def final_frame_with_grades(frames: list[Atoms], graded: pd.DataFrame) -> Atoms:
    """The last frame with per-atom arrays for OVITO: both grades, force error (eV/Å), kind code (0 bulk,
    1 grain boundary, 2 free surface) and new_free_surface."""
    last = graded[graded["frame"] == graded["frame"].max()]
    atoms = frames[-1].copy()
    for column in ("gamma_global", "gamma_clustered", "force_error"):
        atoms.arrays[column] = last[column].to_numpy(float)
    atoms.arrays["kind"] = last["kind"].cat.codes.to_numpy(int)
    atoms.arrays["new_free_surface"] = last["new_free_surface"].to_numpy(int)
    return atoms


def verdicts_by_preset(study: Fig8Study, high_error: float, *, outliers: str = "per-cluster",
                       n_clusters: int | None = None, seed: int = 0, kappa: float = 0.01,
                       alpha: float = 1e-8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fig 8 under scrutiny (issue 21, item 7): P31-P33 and P36 for every partition of the study, at its preset
    and at the largest nested ladder preset where every one of PRM2020's 15 groups spans its basis.

    The authors trained one potential per group, so each group kept its own active set; here a
    group that cannot span the preset's functions is merged into another. The ladder presets
    nested in the study's are checked (:func:`spanning_table`, the ``groups`` partition); at the
    spanning one (if it differs) every partition is refitted and the frames regraded
    (:func:`grade_at_preset`). Returns the spanning table and :func:`combination_claims` (with
    each preset's merges), which :func:`fracture_claims` turns into each record's ``why``.
    """
    preset = study.criteria.train.dm.preset
    checked = [p.name for p in ace.LADDER if ace.nesting_problem(p.name, preset) is None]
    fit = {"outliers": outliers, "n_clusters": n_clusters, "seed": seed, "kappa": kappa, "alpha": alpha}
    spans = spanning_table(study.criteria.train, checked, **fit)
    graded, merged = {preset: study.graded}, {preset: merged_clusters(study.criteria)}
    per_group = spanning_preset(spans)
    if per_group is not None and per_group != preset:
        criteria, graded[per_group] = grade_at_preset(study, per_group, **fit)
        merged[per_group] = merged_clusters(criteria)
    return spans, combination_claims(graded, high_error, merged)


def verdict_table(combinations: pd.DataFrame) -> pd.DataFrame:
    """:func:`combination_claims` as one row per (preset, partition, merged clusters), one verdict column per claim."""
    return combinations.set_index(["preset", "partition", "merged", "pid"])["verdict"].unstack("pid")


@dataclass
class Fig8Study:
    """Everything Fig. 8 and its tables are drawn from."""

    criteria: PrmCriteria
    group_mapping: pd.DataFrame
    frames: list[Atoms]
    fracture_report: dict
    graded: pd.DataFrame

    @property
    def last(self) -> pd.DataFrame:
        """Graded atoms of the fractured (last) frame."""
        return self.graded[self.graded["frame"] == self.graded["frame"].max()]


def run_study(preset: str, *, per_group: int | None, partitions: tuple[str, ...] | list[str] = PARTITIONS,
              profile: str = "fast", seed: int = 0, outliers: str = "per-cluster", n_clusters: int | None = None,
              kappa: float = 0.01, alpha: float = 1e-8) -> Fig8Study:
    """PRM2020 (``per_group`` per group), the criteria of every partition, the fracture run graded frame by frame."""
    _check_partitions(partitions)
    table, mapping = load_prm2020(per_group, seed)
    criteria = fit_on_prm2020(featurize(table, preset), partitions, outliers=outliers, n_clusters=n_clusters,
                              seed=seed, kappa=kappa, alpha=alpha)
    frames, report = fracture_run(profile, seed)
    return Fig8Study(criteria, mapping, frames, report, grade_frames(criteria, frames))
