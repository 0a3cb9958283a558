"""Settings come from one module; nothing writes os.environ."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from uqlib import config, progress

PACKAGE = Path(__file__).resolve().parents[1] / "uqlib"


def test_environment_variables_are_read_in_config_only() -> None:
    readers = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "config.py" or path.parent.name == "paper" and path.name == "book.py":
            continue  # the book runner sets its kernels' environment (UQLIB_RESULTS) for papermill
        if "UQLIB_" in path.read_text() and "os.environ" in path.read_text():
            readers.append(str(path.relative_to(PACKAGE)))
    assert not readers, f"{readers} read UQLIB_* variables: read them through uqlib.config"


def test_nothing_in_the_core_writes_os_environ() -> None:
    for path in PACKAGE.rglob("*.py"):
        if "paper" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
                assert ast.unparse(node.value) != "os.environ", f"{path.name} writes os.environ"


def test_set_progress_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UQLIB_PROGRESS", "1")
    try:
        config.set_progress(False)
        assert not config.progress_enabled()
        assert progress.progress_bar(range(3)).disable
    finally:
        config.set_progress(None)
    assert config.progress_enabled()
    monkeypatch.setenv("UQLIB_PROGRESS", "0")
    assert not config.progress_enabled()


def test_caches_leave_the_checkout_when_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("UQLIB_COMPUTE_CACHE", raising=False)
    monkeypatch.delenv("UQLIB_CACHE", raising=False)
    assert config.compute_cache_dir() == config.PROJECT_ROOT / "data" / "cache"
    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path / "site-packages")
    assert config.compute_cache_dir().name == "compute"
    assert "site-packages" not in str(config.compute_cache_dir())
    assert config.download_cache_dir().name == "raw"
    monkeypatch.setenv("UQLIB_COMPUTE_CACHE", str(tmp_path / "mine"))
    assert config.compute_cache_dir() == tmp_path / "mine"
