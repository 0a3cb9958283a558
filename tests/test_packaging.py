"""The wheel holds every module: built, installed non-editable in a fresh environment, imported and run."""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

import uqlib

ROOT = Path(__file__).resolve().parents[1]


def every_module() -> list[str]:
    """Every module of the source tree, by walking the package folders (what the wheel must ship)."""
    names = sorted(m.name for m in pkgutil.walk_packages(uqlib.__path__, "uqlib."))
    return ["uqlib", *(n for n in names if not n.endswith("__main__"))]  # importing __main__ runs the command


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the built wheel (no deps) and seeing this environment's dependencies."""
    work = tmp_path_factory.mktemp("wheel")
    # build from a copy of the tracked files: an in-tree build would leave build/ in the checkout
    source = work / "source"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if Path(ROOT, name).is_file():
            Path(source, name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(ROOT, name), Path(source, name))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work), str(source)],
                           capture_output=True, text=True)
    if built.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{built.stderr[-2000:]}")
    wheel = next(work.glob("uqlib-*.whl"))
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies come from this environment (a path, so its editable uqlib finder is not loaded)
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, str(wheel)],
                   check=True, capture_output=True)
    return python


def run(python: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(python), *args], capture_output=True, text=True, cwd=python.parents[2], env=env)


def test_the_wheel_ships_every_module(installed: Path) -> None:
    modules = every_module()
    assert "uqlib.criteria.committee" in modules and "uqlib.paper.claims" in modules
    script = ("import importlib, uqlib, sys\n"
              f"for name in {modules!r}:\n    importlib.import_module(name)\n"
              "print(uqlib.__file__)\n")
    result = run(installed, "-c", script)
    assert result.returncode == 0, result.stderr[-3000:]
    assert str(ROOT) not in result.stdout, f"imported the checkout, not the wheel: {result.stdout}"


def test_the_installed_command_and_package_data(installed: Path) -> None:
    result = run(installed, "-m", "uqlib", "--help")
    assert result.returncode == 0 and "grade" in result.stdout, result.stderr[-2000:]
    listed = run(installed, "-c", "from uqlib.paper import claims; print(len(claims.parse_claims_list()))")
    assert listed.returncode == 0 and int(listed.stdout) == 36, listed.stderr[-2000:]
