"""Where things live and the defaults every module shares."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


ELEMENT = "W"
