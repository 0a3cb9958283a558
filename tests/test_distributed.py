"""Grading on a 2-worker Dask LocalCluster (processes) gives the serial gammas, in order, via library and CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pandas as pd
import pytest
from ase.build import bulk
from distributed import Client, LocalCluster
from pyace import ACEBBasisSet
from pyace.multispecies_basisextension import create_multispecies_basis_config

from uqlib import activeset, distributed, grading
from uqlib.io import DataError

# A small two-species basis (gamma needs no fitted coefficients): species order must survive the chunks.
ALLOY_BASIS = {
    "deltaSplineBins": 0.001, "elements": ["Cu", "Au"],
    "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}},
    "bonds": {"ALL": {"radbase": "SBessel", "radparameters": [5.25], "rcut": 4.5, "dcut": 0.01}},
    "functions": {"ALL": {"nradmax_by_orders": [6, 2], "lmax_by_orders": [0, 1]}},
}
REPO = Path(__file__).resolve().parents[1]


def alloy(seed: int, repeat: int = 2, rattle: float = 0.1, gold: float = 0.4):
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.75, cubic=True).repeat(repeat)
    atoms.symbols[rng.random(len(atoms)) < gold] = "Au"
    atoms.rattle(rattle, seed=seed)
    return atoms


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    yaml = folder / "alloy.yaml"
    ACEBBasisSet(create_multispecies_basis_config(ALLOY_BASIS)).to_BBasisConfiguration().save(str(yaml))
    basis = grading.load_potential(yaml)
    train = [alloy(seed) for seed in range(12)]
    projections = grading.species_projections(basis, train)
    owners = grading.structure_indices(train, projections)
    clusters = activeset.fit_clustered_active_set(projections, grading.species_labels(np.arange(12) % 2, owners),
                                                  progress=False)
    frames = [alloy(100 + s, repeat=2 + s % 2, rattle=0.05 + 0.04 * s, gold=0.1 + 0.1 * s) for s in range(7)]
    trajectory = folder / "md.extxyz"
    ase.io.write(trajectory, frames)
    return {"yaml": yaml, "basis": basis, "clusters": clusters, "folder": clusters.save(folder / "clusters"),
            "frames": frames, "trajectory": trajectory}


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread; closed whatever the tests do."""
    local = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        yield local
    finally:
        local.close()


def test_library_matches_serial_in_order(model, cluster):
    serial = list(grading.iter_grades(model["frames"], model["basis"], model["clusters"], chunk_size=2,
                                      progress=False))
    with Client(cluster) as client:
        # a window of 2 chunks forces waiting and re-ordering through 4 chunks
        ours = list(distributed.grade_frames_distributed(iter(model["frames"]), model["yaml"], model["clusters"],
                                                         chunk_size=2, client=client, max_in_flight=2,
                                                         progress=False))
        cached = client.run(lambda: list(distributed._WORKER_POTENTIALS)).values()
    assert str(model["yaml"].resolve()) in sum(cached, [])  # workers load the potential once and keep it
    assert all(len(paths) <= 1 for paths in cached)
    assert [g.frame for g in ours] == list(range(7))
    assert [len(g.atoms) for g in ours] == [len(a) for a in model["frames"]]
    for mine, theirs in zip(ours, serial, strict=True):
        np.testing.assert_array_equal(mine.gamma, theirs.gamma)  # identical, not merely close
        np.testing.assert_array_equal(mine.cluster, theirs.cluster)
    assert len({g.gamma_max for g in ours}) > 1  # the frames differ, so order matters


def test_worker_error_names_the_frame(model, cluster):
    bad = [a.copy() for a in model["frames"][:3]]
    bad[2].positions[0] = np.nan
    with Client(cluster) as client, pytest.raises(DataError, match="2"):
        list(distributed.grade_frames_distributed(bad, model["yaml"], model["clusters"], chunk_size=1, client=client,
                                                  progress=False))


def test_scheduler_address_from_environment(monkeypatch):
    monkeypatch.setenv(distributed.SCHEDULER_ENV, "tcp://10.1.2.3:8786")
    assert distributed.scheduler_address() == "tcp://10.1.2.3:8786"
    assert distributed.scheduler_address("tcp://h:1") == "tcp://h:1"
    monkeypatch.delenv(distributed.SCHEDULER_ENV)
    assert distributed.scheduler_address() is None
    with pytest.raises(DataError, match="tcp://HOST:PORT"):
        distributed.scheduler_address("localhost")


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != distributed.SCHEDULER_ENV}
    env.update(PYTHONPATH=str(REPO), UQLIB_PROGRESS="0")
    return subprocess.run([sys.executable, "-m", "uqlib", "-q", "grade", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_cli_scheduler_matches_serial(model, cluster, tmp_path):
    common = [str(model["trajectory"]), "--potential", str(model["yaml"]), "--active-set", str(model["folder"]),
              "--chunk-size", "3", "--gamma-hi", "1e6"]
    serial = _cli(*common, "-o", str(tmp_path / "serial.extxyz"))
    dask = _cli(*common, "--scheduler", cluster.scheduler_address, "-o", str(tmp_path / "dask.extxyz"))
    assert serial.returncode == 0, serial.stderr
    assert dask.returncode == 0, dask.stderr
    ours, theirs = ase.io.read(tmp_path / "dask.extxyz", ":"), ase.io.read(tmp_path / "serial.extxyz", ":")
    assert len(ours) == len(theirs) == 7
    for mine, other, frame in zip(ours, theirs, model["frames"], strict=True):
        np.testing.assert_allclose(mine.positions, frame.positions, atol=1e-6)  # same frame, same place
        np.testing.assert_array_equal(mine.arrays["gamma"], other.arrays["gamma"])
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "dask.csv"), pd.read_csv(tmp_path / "serial.csv"))
    read_back = ase.io.read(model["trajectory"], ":")  # what the CLI graded: positions as written to text
    library = list(grading.iter_grades(read_back, model["basis"], model["clusters"], progress=False))
    np.testing.assert_array_equal(pd.read_csv(tmp_path / "dask.csv")["gamma_max"], [g.gamma_max for g in library])


def test_cli_unreachable_scheduler_is_a_user_error(model, tmp_path):
    result = _cli(str(model["trajectory"]), "--potential", str(model["yaml"]), "--active-set", str(model["folder"]),
                  "--scheduler", "tcp://127.0.0.1:9", "-o", str(tmp_path / "x.extxyz"))
    assert result.returncode == 2
    assert "Dask scheduler at tcp://127.0.0.1:9" in result.stderr
    assert not (tmp_path / "x.extxyz").exists() and not (tmp_path / "x.extxyz.part").exists()


def test_batch_count_from_size_or_memory():
    assert grading.batch_count(10, 1000, 100, batch_size=4) == 3
    assert grading.batch_count(10, 1000, 100, memory_limit="400kB") == 2  # 800 kB of projections
    assert grading.batch_count(10, 1000, 100) == 1
    with pytest.raises(DataError, match="not both"):
        grading.batch_count(10, 1000, 100, batch_size=2, memory_limit="1GB")
    with pytest.raises(DataError, match="--memory-limit"):
        grading.batch_count(10, 1000, 100, memory_limit="lots")


def test_batched_active_set_interpolates_its_training_set(model, tmp_path):
    train = [alloy(seed) for seed in range(12)]
    batched = grading.build_active_set_by_batches(model["basis"], train, batch_size=4)  # three batches
    assert batched.elements == ["Au", "Cu"]
    single = activeset.ClusteredActiveSet.single(batched)
    grades = list(grading.iter_grades(train, model["basis"], single, progress=False))
    # batched MaxVol approximates the one-shot set (whose gamma is <= 1.01): close to 1, far from a random set
    assert 1.0 <= max(g.gamma_max for g in grades) <= 1.1
    result = _cli_activeset(*[str(ase.io.write(tmp_path / "train.extxyz", train) or tmp_path / "train.extxyz")],
                            "--potential", str(model["yaml"]), "--memory-limit", "20kB", "-o", str(tmp_path / "b.asi"))
    assert result.returncode == 0, result.stderr
    assert set(activeset.ActiveSet.load(tmp_path / "b.asi").inverses) == {"Au", "Cu"}


def test_a_batch_without_a_species_is_a_clear_error(model, tmp_path):
    """pyace's batched MaxVol fails with a bare KeyError when a batch lacks a species (issue 24: "error: 0")."""
    train = [alloy(seed, gold=0.0) for seed in range(4)] + [alloy(seed) for seed in range(4, 12)]  # batch 1: Cu only
    ase.io.write(tmp_path / "train.extxyz", train)
    result = _cli_activeset(str(tmp_path / "train.extxyz"), "--potential", str(model["yaml"]), "--batch-size", "4",
                            "-o", str(tmp_path / "b.asi"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "holds no atom of one species" in result.stderr and "--batch-size" in result.stderr


def _cli_activeset(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "UQLIB_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "uqlib", "-q", "activeset", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_scale_plan_keeps_the_scheduler_load_bounded():
    from uqlib.scale import MAX_SCHEDULER_LOAD, scale_plan

    record = {"dask_1_worker_atoms_per_s": 5000.0, "scheduler_overhead_s_per_task": 0.01, "chunk_atoms": 50000,
              "memory_baseline_rss_mib": 200.0, "memory_kib_per_chunk_atom": 4.0}
    plan = scale_plan({"distributed_grading": record}, worker_counts=(1, 1000))
    assert (plan["scheduler_load"] <= MAX_SCHEDULER_LOAD + 1e-9).all()
    one, many = plan.iloc[0], plan.iloc[1]
    assert one["chunk_atoms"] == 50000 and one["task_s"] == 10.0  # the measured chunk suffices for one worker
    assert many["chunk_atoms"] == 500000  # 1000 workers x 10 ms / 0.1 load = 100 s tasks at 5000 atoms/s
    assert one["wall_hours"] == pytest.approx(1e9 / (50000 / 10.01) / 3600, rel=1e-3)
    assert many["memory_per_worker_gib"] == pytest.approx((200 + 500000 * 4 / 1024) / 1024, rel=1e-2)
    assert scale_plan({}).empty  # no benchmark record, no plan


def test_library_uses_the_scheduler_of_the_environment(model, cluster, monkeypatch):
    with Client(cluster) as client:
        client.run(lambda: distributed._WORKER_POTENTIALS.clear())  # so that a cached potential proves this run
    monkeypatch.setenv(distributed.SCHEDULER_ENV, cluster.scheduler_address)
    ours = list(distributed.grade_frames_distributed(model["frames"][:3], model["yaml"], model["clusters"],
                                                     chunk_size=2, progress=False))  # no client: the env's
    serial = grading.iter_grades(model["frames"][:3], model["basis"], model["clusters"], progress=False)
    for mine, theirs in zip(ours, serial, strict=True):
        np.testing.assert_array_equal(mine.gamma, theirs.gamma)
    with Client(cluster) as client:  # the tasks ran on that cluster: its workers hold the potential
        assert str(model["yaml"].resolve()) in sum(client.run(lambda: list(distributed._WORKER_POTENTIALS)).values(),
                                                   [])
