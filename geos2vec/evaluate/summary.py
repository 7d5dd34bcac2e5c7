"""The scores of evaluation results as one table, and its summary: mean ± std over the splits.

``summary.csv`` of the report (:func:`~geos2vec.evaluate.report.write_report`): ``task, split, method, probe,
n_cells, r2_mean, r2_std, mae_mean, mae_std, n_splits, n_r2_nan``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .result import EvaluationResult

__all__ = ["summary_table"]

SUMMARY_COLUMNS = ["task", "split", "method", "probe", "n_cells", "r2_mean", "r2_std", "mae_mean", "mae_std",
                   "n_splits", "n_r2_nan"]


def _scores(results) -> pd.DataFrame:
    if isinstance(results, pd.DataFrame):
        scores = results
    else:
        results = [results] if hasattr(results, "scores") else list(results)
        scores = pd.concat([r.scores if "task" in r.scores else r.scores.assign(task=r.config.get("task") or r.target)
                            for r in results], ignore_index=True)
    if "task" not in scores:
        scores = scores.assign(task="task")
    lost = [c for c in ("task", "split", "method", "probe") if c in scores and scores[c].isna().any()]
    if lost:  # pd.read_csv reads a method "NA", "None" or "null" as NaN, and groupby dropped its rows silently
        raise InvalidInputError(f"the scores have rows without a {lost[0]} (pd.read_csv reads the names 'NA', 'None',"
                                " 'null' as missing); read scores.csv with pd.read_csv(path, keep_default_na=False, "
                                "na_values=[''], dtype={'task': str, 'split': str, 'method': str, 'probe': str})")
    return scores


def summary_table(results: EvaluationResult | Iterable[EvaluationResult] | pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over splits per (task, split, method, probe), with exactly :data:`SUMMARY_COLUMNS`.

    Parameters
    ----------
    results : EvaluationResult, list of EvaluationResult or pandas.DataFrame
        Evaluation results, or their concatenated ``scores`` (a missing ``task`` column is filled with the
        result's ``config["task"]`` or target name, or with ``"task"`` for a bare table).

    Returns
    -------
    pandas.DataFrame
        Columns ``task, split, method, probe, n_cells, r2_mean, r2_std, mae_mean, mae_std, n_splits,
        n_r2_nan``, one row per (task, split, method, probe) in the order they first appear. ``n_splits``
        counts the repetitions, ``n_r2_nan`` those without an R² (a test set of one sample or of one label
        value): ``r2_mean`` and ``r2_std`` cover the other ``n_splits - n_r2_nan`` only.
    """
    scores = _scores(results)
    keys = ["task", "split", "method", "probe"]
    g = scores.groupby(keys, sort=False)
    out = pd.DataFrame({
        "n_cells": g["n_cells"].first(), "r2_mean": g["r2"].mean(), "r2_std": g["r2"].std(),
        "mae_mean": g["mae"].mean(), "mae_std": g["mae"].std(), "n_splits": g.size(),
        "n_r2_nan": g["r2"].apply(lambda r: int(r.isna().sum())),
    }).reset_index()
    return out[SUMMARY_COLUMNS]
