from __future__ import annotations

import numpy as np
import pytest
from ase.build import bcc110, bulk

from uqlib import io
from uqlib.paper import data, prm2020


@pytest.fixture(scope="module")
def prm():
    table = data.load_subsets("PRM2020")
    return table, prm2020.structure_table(table)


def test_every_row_gets_one_of_the_fifteen_groups(prm):
    table, per = prm
    groups = prm2020.prm2020_groups(table)
    assert groups.notna().all() and len(groups) == 3913
    assert set(groups) == set(prm2020.GROUPS) and len(prm2020.GROUPS) == 15
    counts = groups.value_counts()
    # the sizes of the GAP data set's families (2019 release, ColabFit W_PRB2019, and the 2020 additions)
    assert counts["liquid"] == 45 and counts["A15"] == counts["C15"] == counts["sc"] == counts["diamond"] == 100
    assert counts["vacancies"] == 200 + 10 + 15 and counts["short_range"] == 100
    assert counts["surfaces"] == 178 + 24 and counts["interstitials"] == 32 + 15
    assert counts["bcc_primitive_distorted"] > 1500
    families = prm2020.prm2020_groups(table, level="family")
    assert families.nunique() == 16 and (families == "surfaces_molten").sum() == 24


def test_blocks_agree_with_their_own_structures(prm):
    table, per = prm
    evidence = prm2020.block_evidence(table, per)
    assert len(evidence) == 23 and evidence["rows"].sum() == 3913
    assert (evidence["agreement"] > 0.5).all()  # every block's label is its structures' majority
    assert (evidence["agreement"] == 1).sum() >= 17
    assert {"n_atoms", "volume_per_atom", "energy_median", "shell_coordination", "reason"} <= set(evidence.columns)
    one_atom = evidence.set_index("block").loc[["P00", "P02", "P04"], "family"].tolist()
    assert one_atom == ["bcc_primitive_distorted", "fcc", "sc"]
    with pytest.raises(io.DataError, match="full PRM2020"):
        prm2020.block_evidence(table.iloc[:100])


def test_rules_on_hand_made_structures():
    def family(atoms, max_force=0.1):
        return prm2020.classify_structure(prm2020.structure_features(atoms) | {"max_force": max_force})[0]

    assert family(bulk("W", "bcc", a=3.18)) == "bcc_primitive_distorted"
    assert family(bulk("W", "fcc", a=4.0)) == "fcc"
    assert family(bulk("W", "sc", a=2.6)) == "sc"
    assert family(bulk("W", "diamond", a=6.3)) == "diamond"
    supercell = bulk("W", "bcc", a=3.18, cubic=True).repeat(3)
    assert family(supercell) == "bcc_md"
    assert family(supercell[1:]) == "vacancies"
    assert family(bcc110("W", (2, 3, 2), a=3.18, vacuum=6.0, periodic=True)) == "surfaces"
    squeezed = supercell.copy()
    squeezed.positions[0] = squeezed.positions[1] + [1.2, 0, 0]
    assert family(squeezed) == "short_range"
    rng = np.random.default_rng(0)
    liquid = supercell.copy()
    liquid.positions += rng.normal(scale=0.6, size=liquid.positions.shape)
    assert family(liquid, max_force=5.0) == "liquid"
