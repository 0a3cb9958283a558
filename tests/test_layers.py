"""The two layers: the core never imports ``uqlib.paper``; the package ships every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "uqlib"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def core_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "paper" not in p.relative_to(PACKAGE).parts)


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_never_imports_the_paper(path: Path) -> None:
    upward = sorted(m for m in imported_modules(path) if m == "uqlib.paper" or m.startswith("uqlib.paper."))
    assert not upward, f"{path.relative_to(PACKAGE.parent)} imports {upward}: the core must not import uqlib.paper"


def test_the_layer_check_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from uqlib.paper import claims\n    return claims\n")
    assert "uqlib.paper" in imported_modules(bad)


def test_metrics_imports_nothing_from_uqlib() -> None:
    assert not [m for m in imported_modules(PACKAGE / "metrics.py") if m.startswith("uqlib")]


def api_modules() -> list[Path]:
    """Core modules a user imports from: every module but ``__main__`` and the top package's map."""
    return [p for p in core_files() if p.name != "__main__.py" and p != PACKAGE / "__init__.py"]


@pytest.mark.parametrize("path", api_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_core_module_says_its_public_names(path: Path) -> None:
    import importlib

    name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__: list the names a user may import"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names {missing}, which it does not define"
