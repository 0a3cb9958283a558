"""The structure groups of PRM2020, recovered from the structures themselves.

The paper's clustered grade (Fig. 8) splits PRM2020, the W GAP data set of
Byggmästar et al., Phys. Rev. Materials 4, 093802 (2020), by its own group labels
into 15 subsets (authors' ``Code/README.md``). The pickle of the paper's repository
carries no labels, but its rows come in 23 contiguous blocks of equal atom count
(:func:`uqlib.paper.data.prm2020_blocks`). This module names each block's structures by
what they are (cell, vacuum, atoms per bcc site, first-shell coordination, closest
pair, energy), in the families of the group's W data set: its 2019 release
(PRB 100, 144105; config types slice_sample, bcc_distorted, sc, fcc, hcp, dia,
A15, C15, phonon, vacancy, di-/tri-vacancy, surface_100/110/111/112, surf_liquid,
liquid, sia, di-SIA, short_range, dimer, isolated_atom, listed with their sizes in
ColabFit's W_PRB2019 record) plus the γ-surfaces of the 2020 release.

Every structure is classified by the rules of :func:`classify_structure`; a block
takes the label most of its structures get, and :func:`block_evidence` reports how
many agree. The fine labels (``family``) are 16 after vacancies (mono, di, tri) and
self-interstitials (single, di) are pooled as the GAP paper does; the paper's 15
groups (``group``) also pool the two kinds of free-surface slab (crystalline
(100)/(110)/(111)/(112) surfaces and damaged, half-molten (100)/(110) surfaces), which
the 2019 label set also tags alike ("surface"). Which pooling the authors used is
not published; ``family`` keeps the finer split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from ase import Atoms

from uqlib.io import DataError
from uqlib.paper.data import prm2020_blocks
from uqlib.paper.structures import fast_neighbour_list

BCC_VOLUME = 16.2  # Å^3 per atom, W near equilibrium (a = 3.19 Å)
VACUUM_GAP = 5.0  # Å: an empty band this wide across the cell means a slab in vacuum
SHORT_RANGE_DISTANCE = 2.0  # Å: closer pairs than any W defect (the SIA dumbbell is 2.2 Å) are "short-range"
SHORT_RANGE_FORCE = 15.0  # eV/Å: no relaxed or thermal defect cell has forces this large (vacancies < 5 eV/Å)
LIQUID_ORDER = 0.5  # below this fraction of bcc-ordered atoms a bulk cell is a liquid

# family -> (paper group, what it is)
FAMILIES = {
    "bcc_primitive_distorted": ("bcc_primitive_distorted", "1-atom bcc cells, random distortions (slice_sample)"),
    "bcc_strained": ("bcc_strained", "2-atom bcc cells, strains up to ±30 % (bcc_distorted)"),
    "fcc": ("fcc", "1-atom fcc cells, random distortions"),
    "hcp": ("hcp", "2-atom hcp cells, random distortions"),
    "sc": ("sc", "1-atom simple cubic cells, random distortions"),
    "diamond": ("diamond", "2-atom diamond cells, random distortions"),
    "A15": ("A15", "8-atom A15 cells, random distortions"),
    "C15": ("C15", "6-atom C15 cells, random distortions"),
    "bcc_md": ("bcc_md", "54-atom bcc MD snapshots (phonon, 1000 K)"),
    "vacancies": ("vacancies", "bcc supercells missing 1-3 atoms (vacancy, di-, tri-vacancy)"),
    "interstitials": ("interstitials", "bcc supercells with 1-2 extra atoms (sia, di-SIA)"),
    "short_range": ("short_range", "bcc with an atom pushed close to another (short_range, d < 2 Å)"),
    "liquid": ("liquid", "128-atom liquid cells"),
    "surfaces": ("surfaces", "12-atom slabs in vacuum, (100)/(110)/(111)/(112)"),
    "surfaces_molten": ("surfaces", "large slabs in vacuum, damaged and half-molten (surf_liquid)"),
    "gamma_surfaces": ("gamma_surfaces", "12-atom bulk cells with a sheared (tilted) cell: γ-surfaces"),
}
GROUPS = sorted({group for group, _ in FAMILIES.values()})


def _bcc_order(atoms: Atoms) -> float:
    """Fraction of atoms whose 15th neighbour is > 1.15 × farther than the 14th (bcc: √2/1 = 1.41, a liquid ≈ 1)."""
    reach = 2.2 * (atoms.get_volume() / len(atoms)) ** (1 / 3)  # beyond the third bcc shell at any density
    i, d = fast_neighbour_list("id", atoms, reach)
    order = np.lexsort((d, i))
    i, d = i[order], d[order]
    starts = np.searchsorted(i, np.arange(len(atoms)))
    counts = np.bincount(i, minlength=len(atoms))
    ok = counts >= 15
    ratio = d[starts[ok] + 14] / d[starts[ok] + 13]
    return float((ratio > 1.15).sum() / len(atoms))


def _largest_gap(atoms: Atoms) -> float:
    """Widest empty band (Å) across the cell along any cell vector: a slab in vacuum has one of ≳ 8 Å."""
    gaps = []
    for axis in range(3):
        spacing = atoms.cell.volume / np.linalg.norm(np.cross(*np.delete(atoms.cell.array, axis, 0)))
        s = np.sort(atoms.get_scaled_positions()[:, axis] % 1.0)
        gaps.append(np.diff(np.append(s, s[0] + 1)).max() * spacing)
    return float(max(gaps))


def structure_features(atoms: Atoms) -> dict[str, float]:
    """What identifies a PRM2020 structure: volume, vacuum, bcc sites, coordination, closest pair.

    ``shell_coordination`` (cells of 1-2 atoms): mean number of neighbours within 1.3 ×
    the closest distance (bcc 14, fcc and hcp 12, sc 6, diamond 4); ``bcc_order``: the
    fraction of atoms whose 15th neighbour is more than 1.15 × farther than the 14th
    (the gap between the 2nd and 3rd bcc shells; ordered bcc ≈ 1, liquid ≈ 0);
    ``vacuum_gap``: the widest empty band across the cell (Å); ``extra_atoms``: atoms minus the
    sites of the nearest bcc supercell of an orthogonal cell (NaN otherwise).
    """
    n = len(atoms)
    volume = atoms.get_volume() / n
    distances = fast_neighbour_list("d", atoms, 4.0)
    closest = float(distances.min()) if len(distances) else np.inf
    # first shell: bcc's 8 + 6 lie within 1.155 d_min, the next shells of bcc, fcc, hcp, sc, diamond beyond 1.41 d_min
    shell = np.bincount(fast_neighbour_list("i", atoms, 1.3 * closest), minlength=n).mean() if n <= 2 else np.nan
    order = _bcc_order(atoms)
    lengths = atoms.cell.lengths()
    orthogonal = bool(np.allclose(atoms.cell.angles(), 90, atol=1))
    extra = n - 2 * np.prod(np.round(lengths / (2 * BCC_VOLUME) ** (1 / 3))) if orthogonal else np.nan
    return {"n_atoms": n, "volume_per_atom": volume, "vacuum_gap": _largest_gap(atoms) if n > 2 else 0.0,
            "closest_distance": closest, "shell_coordination": shell,
            "bcc_order": order, "orthogonal": orthogonal, "extra_atoms": float(extra),
            "longest_cell_edge": float(lengths.max())}


def classify_structure(f: dict[str, float]) -> tuple[str, str]:
    """A family (see :data:`FAMILIES`) from :func:`structure_features` plus ``max_force`` (eV/Å), and the rule.

    Rules in order: a vacuum gap > 5 Å makes a slab (12 atoms: surfaces, more: the
    damaged/molten surfaces); 1-2 atom cells by first-shell coordination; 8 atoms A15;
    6 atoms C15; 12 atoms at bulk density γ-surface; bcc order < 0.5 liquid; a pair
    closer than 2 Å or a force above 15 eV/Å short-range; else the atoms per bcc site
    of the supercell: fewer vacancies, more interstitials, equal bcc MD.
    """
    n, shell = f["n_atoms"], f["shell_coordination"]
    if f["vacuum_gap"] > VACUUM_GAP:
        if n == 12:
            return "surfaces", f"{f['vacuum_gap']:.0f} Å of vacuum, 12-atom slab"
        return "surfaces_molten", f"{f['vacuum_gap']:.0f} Å of vacuum, {n}-atom slab of bcc order {f['bcc_order']:.2f}"
    if n in (1, 2):
        nearest = min((14, 12, 6, 4), key=lambda c: abs(c - shell))
        name = {(1, 14): "bcc_primitive_distorted", (2, 14): "bcc_strained", (1, 12): "fcc", (2, 12): "hcp",
                (1, 6): "sc", (2, 6): "sc", (1, 4): "diamond", (2, 4): "diamond"}[(n, nearest)]
        return name, f"{n}-atom cell, first-shell coordination {shell:.1f} ≈ {nearest}"
    if n == 8:
        return "A15", "8-atom cell (A15)"
    if n == 6:
        return "C15", "6-atom cell (C15 primitive)"
    if n == 12:
        return "gamma_surfaces", f"12 atoms at bulk density, {'orthogonal' if f['orthogonal'] else 'tilted'} cell"
    if f["bcc_order"] < LIQUID_ORDER:
        return "liquid", f"no vacuum, only {f['bcc_order']:.0%} of atoms bcc-ordered"
    if f["closest_distance"] < SHORT_RANGE_DISTANCE:
        return "short_range", f"closest pair {f['closest_distance']:.2f} Å < {SHORT_RANGE_DISTANCE} Å"
    if f["max_force"] > SHORT_RANGE_FORCE:
        return "short_range", f"largest force {f['max_force']:.0f} eV/Å > {SHORT_RANGE_FORCE} eV/Å"
    extra = f["extra_atoms"]
    if extra < 0:
        return "vacancies", f"{-extra:.0f} atom(s) fewer than bcc sites"
    if extra > 0:
        return "interstitials", f"{extra:.0f} atom(s) more than bcc sites"
    return "bcc_md", "perfect bcc supercell, thermal displacements"


def _require_prm2020(table: pd.DataFrame) -> None:
    if set(table["subset"]) != {"PRM2020"} or len(table) != 3913:
        raise DataError(f"The PRM2020 groups need the full PRM2020 table in upstream order (3,913 rows), got "
                        f"{len(table)} rows of {sorted(set(table['subset']))}: load it with "
                        f"data.load_subsets('PRM2020') and subsample after labelling")


def structure_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per row of PRM2020: block, features, the row's own family and rule."""
    _require_prm2020(table)
    rows = []
    for atoms, forces in zip(table["atoms"], table["forces"], strict=True):
        features = structure_features(atoms) | {"max_force": float(np.linalg.norm(forces, axis=1).max())}
        family, reason = classify_structure(features)
        rows.append({**features, "family": family, "reason": reason})
    out = pd.DataFrame(rows, index=table.index)
    out.insert(0, "block", prm2020_blocks(table))
    out["energy_per_atom"] = table["energy_per_atom"]
    return out


def block_evidence(table: pd.DataFrame, per_structure: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per contiguous block: what it holds and the family and group assigned to it.

    Columns: block, first row, rows, n_atoms, cell volume per atom (Å³, median),
    energy per atom (eV, min/median/max), shell coordination, bcc order, closest pair
    (Å, min), extra atoms per bcc supercell, family, paper group, agreement (share of
    the block's structures whose own rule gives the block's family) and the reason.
    """
    per_structure = structure_table(table) if per_structure is None else per_structure
    rows = []
    for block, part in per_structure.groupby("block", sort=True):
        family = part["family"].mode().iloc[0]
        reason = part.loc[part["family"] == family, "reason"].iloc[0]
        rows.append({
            "block": block, "first_row": int(part.index[0]), "rows": len(part), "n_atoms": int(part["n_atoms"].iloc[0]),
            "volume_per_atom": part["volume_per_atom"].median(),
            "energy_min": part["energy_per_atom"].min(), "energy_median": part["energy_per_atom"].median(),
            "energy_max": part["energy_per_atom"].max(), "shell_coordination": part["shell_coordination"].mean(),
            "bcc_order": part["bcc_order"].mean(), "closest_distance": part["closest_distance"].min(),
            "extra_atoms": part["extra_atoms"].median(), "vacuum_gap": part["vacuum_gap"].median(),
            "max_force": part["max_force"].max(), "family": family, "group": FAMILIES[family][0],
            "agreement": float((part["family"] == family).mean()), "reason": reason,
        })
    return pd.DataFrame(rows)


def prm2020_groups(table: pd.DataFrame, *, level: str = "group") -> pd.Series:
    """The group (``level="group"``: the paper's 15) or family (16) of every PRM2020 row, by its block.

    ``table`` is the full PRM2020 structure table in upstream order.
    """
    if level not in ("group", "family"):
        raise ValueError(f"level must be 'group' or 'family', got {level!r}")
    evidence = block_evidence(table)
    by_block = dict(zip(evidence["block"], evidence[level], strict=True))
    return prm2020_blocks(table).map(by_block).rename(level)
