from __future__ import annotations

import json

import numpy as np
import pytest

from uqlib import metrics


def test_tukey_threshold_by_hand():
    # quartiles of 1..9 (numpy linear): Q1 = 3, Q3 = 7, IQR = 4 -> 7 + 6 = 13
    assert metrics.tukey_threshold(np.arange(1, 10)) == pytest.approx(13.0)
    with pytest.raises(ValueError, match="non-empty"):
        metrics.tukey_threshold(np.array([]))


def test_spearman_and_selection_rate():
    u = np.array([1.0, 2.0, 3.0, 4.0])
    assert metrics.spearman(u, u**3) == pytest.approx(1.0)
    assert metrics.spearman(u, -u) == pytest.approx(-1.0)
    assert metrics.selection_rate(u, 2.5) == 0.5
    with pytest.raises(ValueError, match="empty test set"):
        metrics.selection_rate(np.array([]), 1.0)


def test_confusion_fractions_add_up():
    u = np.array([0.1, 0.9, 0.9, 0.1])
    e = np.array([0.9, 0.9, 0.1, 0.1])
    assert metrics.confusion(u, e, 0.5) == {"detected": 0.25, "missed": 0.25, "false alarm": 0.25, "quiet": 0.25}


def test_claim_records_round_trip_and_missing_notebooks(tmp_path):
    claim = metrics.Claim("CBF > ABF", "0.8 vs 0.6", "0.7 vs 0.5", metrics.verdict(True), "rho on test")
    (tmp_path / "01_a").mkdir()
    metrics.write_claims(tmp_path / "01_a", "01_a", [claim])
    assert json.loads((tmp_path / "01_a" / "claims.json").read_text())["claims"][0]["verdict"] == "reproduced"
    table, missing = metrics.collect_claims(tmp_path, ["01_a", "02_b"])
    assert table["claim"].tolist() == ["CBF > ABF"] and missing == ["02_b"]
    with pytest.raises(ValueError, match="verdict"):
        metrics.Claim("x", "y", "z", "maybe", "w")
    assert metrics.verdict(False, partly=True) == "partly" and metrics.verdict(False) == "not reproduced"
