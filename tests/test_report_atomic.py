"""An interrupted ``write_report`` never leaves a folder that reads as one complete report of mixed runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geos2vec.evaluate import report


def _scores(r2: float) -> pd.DataFrame:
    rows = [{"task": "t", "split": "random", "rep": k, "method": m, "probe": "ridge", "n_cells": 50, "n_test": 10,
             "r2": r2 + 0.01 * k + (0.05 if m == "A" else 0.0), "mae": 1.0} for k in range(3) for m in ("A", "B")]
    return pd.DataFrame(rows)


def test_an_interrupted_report_leaves_no_report_md_and_no_temporary_files(tmp_path, monkeypatch):
    out = tmp_path / "rep"
    report.write_report(_scores(0.5), out)
    assert "0.5" in (out / "report.md").read_text()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "plot_task", boom)
    with pytest.raises(KeyboardInterrupt):
        report.write_report(_scores(0.9), out)
    # before: report.md still showed the old run's 0.5x while scores.csv held the new 0.9x
    assert not (out / "report.md").exists()
    np.testing.assert_allclose(pd.read_csv(out / "scores.csv")["r2"].min(), 0.9)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    monkeypatch.undo()
    path = report.write_report(_scores(0.9), out)
    text = path.read_text()
    assert "0.9" in text and sorted(p.name for p in out.iterdir()) == [
        "config.json", "paired.csv", "r2_t.png", "report.md", "scores.csv", "summary.csv"]
