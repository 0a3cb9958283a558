"""The on-disk caches: keys from what determines an entry, atomic writes."""

from __future__ import annotations

from uqlib import cache


def test_geometry_fingerprint_changes_with_positions_not_labels(small_table):
    moved = small_table.copy()
    atoms = moved.at[0, "atoms"].copy()
    atoms.positions[0, 0] += 1e-6
    moved.at[0, "atoms"] = atoms
    assert cache.geometry_fingerprint(small_table) == cache.geometry_fingerprint(small_table.copy())
    assert cache.geometry_fingerprint(moved) != cache.geometry_fingerprint(small_table)
    relabelled = small_table.assign(energy=small_table["energy"] + 1.0)
    assert cache.geometry_fingerprint(relabelled) == cache.geometry_fingerprint(small_table)

