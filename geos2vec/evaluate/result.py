"""What :func:`~geos2vec.evaluate.protocol.evaluate` returns: the scores, test predictions and configuration."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .._reprs import result_html, result_repr
from .summary import summary_table

__all__ = ["EvaluationResult"]


@dataclass
class EvaluationResult:
    """What :func:`evaluate` measured.

    Attributes
    ----------
    scores : DataFrame
        One row per (split, rep, method, probe): ``r2`` (on the test samples, around their own mean), ``mae``
        (original units), ``val_mse`` and the chosen ``alpha`` (ridge) or ``lr``, ``hidden``, ``dropout`` (MLP).
        ``split`` names the kind (``random``, ``blocked``, ``region:A->B``, ``holdout``), ``rep`` the
        repetition, ``split_id`` the split itself (:func:`~geos2vec.evaluate.splits.split_ids`); ``n_test`` and
        ``n_fit`` count its test and its training + validation samples.
    predictions : DataFrame
        Test predictions: ``split, rep, method, probe, sample, y_true, y_pred`` (original units).
    target : str
    config : dict of the protocol parameters.
    wall_time_s : float
    n_cells : int
        Samples evaluated (cells for point tasks).
    """

    scores: pd.DataFrame
    predictions: pd.DataFrame
    target: str
    config: dict = field(default_factory=dict)
    wall_time_s: float = 0.0
    n_cells: int = 0
    __repr__ = result_repr  # the header and the summary table, not every score and prediction
    _repr_html_ = result_html

    def summary(self) -> pd.DataFrame:
        """Mean and std of R² and MAE per (split, method, probe), in evaluation order.

        Returns
        -------
        pandas.DataFrame
            Columns ``split``, ``method``, ``probe``, ``r2_mean``, ``r2_std``, ``mae_mean``, ``mae_std``,
            ``n_splits`` (the repetitions) and ``n_r2_nan`` (those without an R²: a test set of one sample or
            of one label value; the R² mean and std cover the others only), one row per (split, method, probe).
        """
        return summary_table(self.scores.drop(columns="task", errors="ignore")).drop(columns=["task", "n_cells"])
