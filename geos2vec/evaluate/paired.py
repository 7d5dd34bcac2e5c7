"""Paired comparisons: method A against method B on the same splits, the sign test and the verdict.

``paired.csv`` of the report (:func:`~geos2vec.evaluate.report.write_report`): per task, split and probe, method
A against method B on the same splits: mean ΔR² (A − B), the splits A wins and loses, the ties (equal up to
round-off: neither), their number, the corrected t-test and its Holm-Bonferroni adjustment over the comparisons
of one task and probe (``p_holm``); "A beats B" is written only when A wins at least 3/4 of them (15 of 20), a
one-sided sign test over them gives p <= 0.05 (so never from fewer than 5 splits: 3 of 4 is p = 0.31) and
``p_holm`` <= 0.05, and only where the splits have different test sets: the repetitions of a ``region`` or ``holdout``
split share one test set (they differ in validation draws and MLP seeds), so there the verdict says which method
is *ahead on that test set*.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from .significance import corrected_resampled_ttest, holm_adjust
from .summary import _scores

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from .result import EvaluationResult

__all__ = ["paired_table", "verdict", "sign_test_p", "BEATS_SHARE", "BEATS_P"]

PAIRED_COLUMNS = ["task", "split", "probe", "method_a", "method_b", "delta_r2_mean", "delta_r2_std", "wins", "losses",
                  "ties", "n_splits", "n_r2_nan", "one_test_set", "t_corrected", "p_corrected", "p_holm", "beats"]
BEATS_SHARE = 0.75  # "A beats B": A wins at least this share of the paired splits (15 of 20)
#: R² differences up to ``TIE * max(1, |R²(A)|, |R²(B)|)`` are ties (round-off: the same fit through other BLAS
#: sums), counted as neither a win nor a loss and taken as 0 in the mean ΔR² and the t-test
TIE = 1e-9
#: ... and "A beats B" also needs P(at least that many wins of n_splits | a fair coin) <= BEATS_P (one-sided sign
#: test): 15 of 20 is 0.021, but 3 of 4 (75 %) is 0.31 and 4 of 4 is 0.063, so fewer than 5 splits never "beat"
BEATS_P = 0.05


def paired_table(results: EvaluationResult | Iterable[EvaluationResult] | pd.DataFrame,
                 methods: str | Collection[str] | None = None) -> pd.DataFrame:
    """Every pair of methods on the same splits: mean ΔR² (A − B), splits A wins, splits, "A beats B".

    ``methods`` (optional) restricts side A to these methods; side B is every other method.

    Parameters
    ----------
    results : EvaluationResult, list of EvaluationResult or pandas.DataFrame
        As for :func:`summary_table`.
    methods : str or collection of str, optional
        The methods of side A (one name as a str: before, a str was searched for substrings, so
        ``methods="counts-Loc"`` also put ``counts`` on side A).

    Returns
    -------
    pandas.DataFrame
        One row per (task, split, probe, A, B): ``delta_r2_mean`` and ``delta_r2_std`` of ``R²(A) - R²(B)``
        over the repetitions both have an R² on, ``wins`` (repetitions where A is higher), ``losses`` (where B
        is higher), ``ties`` (equal up to round-off: ``|ΔR²| <= TIE * max(1, |R²(A)|, |R²(B)|)``, :data:`TIE`
        = 1e-9; neither a win nor a loss, and a difference of 0 in the mean, SD and t-test), ``n_splits`` (the
        repetitions both were scored on: ``wins + losses + ties + n_r2_nan``), ``n_r2_nan`` (those of them
        without an R², a test set of one sample or one label value: neither a win nor a loss, and left out of
        the mean and the t-test), ``one_test_set`` (a
        ``region:...`` or ``holdout`` split: every repetition has the same test set), ``t_corrected`` and
        ``p_corrected`` (Nadeau & Bengio's corrected resampled t-test of the differences, two-sided, with the
        samples trained and validated on as the training size (``n_fit``; older scores: all not tested on):
        :func:`~geos2vec.evaluate.significance.corrected_resampled_ttest`; NaN where the repetitions share one
        test set or the scores lack ``n_cells``/``n_test``), ``p_holm`` (``p_corrected`` adjusted by
        Holm-Bonferroni over the comparisons of the task and probe: every pair of methods of every split kind,
        A-B and B-A counted once, whatever ``methods`` keeps) and ``beats`` (:func:`verdict` is "A beats B": A
        wins at least :data:`BEATS_SHARE` of the ``n_splits`` repetitions, those without R² included, with a
        one-sided sign test p <= :data:`BEATS_P`, ``p_holm`` <= :data:`BEATS_P` where it is known, and they
        have different test sets).

    Raises
    ------
    InvalidInputError
        Two methods' repetition ``k`` are not the same split (scores of ``evaluate`` runs with other seeds or
        samples: their ``split_id``, ``n_cells`` or ``n_test`` differ); before, they were paired silently.
    """
    scores = _scores(results)
    side_a = None if methods is None else _names(methods)
    rows = []
    for (task, split, probe), g in scores.groupby(["task", "split", "probe"], sort=False):
        _check_paired(g, task, split, probe)
        wide = g.pivot_table(index="rep", columns="method", values="r2", sort=False, dropna=False)
        have = g.groupby(["rep", "method"], sort=False).size().unstack().reindex(index=wide.index) > 0
        n_test = float(g["n_test"].mean()) if "n_test" in g else math.nan
        # the samples fitted on (training + validation; purged samples are neither); older scores: all but test
        n_fit = float(g["n_fit"].mean()) if "n_fit" in g else (
            float(g["n_cells"].mean()) - n_test if "n_cells" in g else math.nan)
        names = list(dict.fromkeys(g["method"]))
        for a in names:  # every pair: Holm's family does not depend on methods=
            for b in names:
                if a == b:
                    continue
                both = have[a] & have[b]  # the repetitions both methods were scored on
                d, tie = _differences(wide[a][both], wide[b][both])
                n_both, n_nan = int(both.sum()), int(both.sum()) - len(d)  # NaN: a test set without R² (one value)
                # a repetition without R² is neither, but counts in n_splits: 6 wins of 8 scored of 20 are no "beats"
                wins, losses, one = int((d > 0).sum()), int((d < 0).sum()), _one_test_set(split)
                t, p = (math.nan, math.nan) if one else corrected_resampled_ttest(d, n_fit, n_test)
                rows.append(dict(task=task, split=split, probe=probe, method_a=a, method_b=b,
                                 delta_r2_mean=float(d.mean()) if len(d) else math.nan,
                                 delta_r2_std=float(d.std()), wins=wins, losses=losses, ties=tie, n_splits=n_both,
                                 n_r2_nan=n_nan, one_test_set=one, t_corrected=t, p_corrected=p))
    out = pd.DataFrame(rows, columns=PAIRED_COLUMNS)  # its columns also without pairs (one method: was none)
    out["p_holm"] = _holm_column(out)
    out["beats"] = [verdict(r) == "A beats B" for r in out.itertuples()]
    return out if side_a is None else out[out.method_a.isin(side_a)].reset_index(drop=True)


def _holm_column(table: pd.DataFrame) -> pd.Series:
    """``p_corrected`` adjusted by Holm-Bonferroni within each task and probe (A-B and B-A: one comparison).

    A report lists dozens of pairwise p-values per task; before, each was read as if it were the only test.
    """
    out = pd.Series(np.nan, index=table.index, dtype=float)
    for _, g in table.groupby(["task", "probe"], sort=False):
        g = g[np.isfinite(g["p_corrected"].to_numpy(float))]
        keys = [(s, *sorted((str(a), str(b)))) for s, a, b in zip(g["split"], g["method_a"], g["method_b"])]
        family = dict(zip(keys, g["p_corrected"]))  # one p per unordered pair and split
        adjusted = dict(zip(family, holm_adjust(list(family.values()))))
        out[g.index] = [adjusted[k] for k in keys]
    return out


def _differences(r2_a: pd.Series, r2_b: pd.Series) -> tuple[pd.Series, int]:
    """``R²(A) - R²(B)`` of the repetitions both have an R² on, ties (round-off, :data:`TIE`) set to 0; the ties.

    Equal up to round-off is a tie: the same fit through other sums (a copy with its columns in another order,
    PCA or a rotation of the same table) scores 1e-16 off. Before, such differences went into the t-test as
    they were: 0 wins and 0 losses of 20 read ``p_corrected = 0.008`` when the round-off leaned one way.
    """
    d = (r2_a - r2_b).dropna()
    scale = np.maximum(1.0, np.maximum(np.abs(r2_a), np.abs(r2_b))).reindex(d.index)  # R² of -5e7: ulps of 7e-9
    tie = (d.abs() <= TIE * scale).to_numpy()
    return d.mask(tie, 0.0), int(tie.sum())


def _names(methods) -> list:
    """Method names: one name as a str (``list("mine")`` was ``["m", "i", "n", "e"]``), else each of them."""
    return [methods] if isinstance(methods, str) else list(methods)


def _check_paired(g: pd.DataFrame, task, split, probe) -> None:
    """Refuse to pair methods whose repetition ``k`` is not the same split (other seeds, samples: other runs)."""
    for col in ("split_id", "n_cells", "n_test"):
        if col not in g:
            continue
        known = g[g[col].notna()]
        per = known.groupby("rep")[col].nunique()
        if (per > 1).any():
            rep = per.index[(per > 1).to_numpy()][0]
            seen = known[known.rep == rep].drop_duplicates(col)
            raise InvalidInputError(
                f"task {task!r}, split {split!r}, probe {probe!r}: methods {sorted(set(seen.method))} were not scored "
                f"on the same splits (repetition {rep} differs in {col}: other seeds, samples or sample order, i.e. "
                "other evaluate() runs), so they cannot be paired. Evaluate them in one evaluate() call, or with the "
                "same seed on the same samples; or give the runs different task names")


def _one_test_set(split: str) -> bool:
    return split == "holdout" or split.startswith("region")


_TRUE, _FALSE = ("true", "1", "1.0", "yes"), ("false", "0", "0.0", "no")


def _flag(one: Any, split: str) -> bool:
    """``one_test_set`` as read back: bool, number (1.0 from a float column) or text ("True", "1.0")."""
    if isinstance(one, str):
        text = one.strip().lower()
        # text that is neither (a hand-edited CSV): what the split says
        return True if text in _TRUE else (False if text in _FALSE else _one_test_set(split))
    if one is None or pd.isna(one):  # a paired.csv from before 0.3 concatenated with a new one
        return _one_test_set(split)
    return bool(one)  # bool, numpy bool, 0/1, 0.0/1.0


def sign_test_p(wins: int, n: int) -> float:
    """One-sided sign test: the probability of at least ``wins`` wins in ``n`` fair coin flips.

    Parameters
    ----------
    wins : int
        Paired splits that one method wins.
    n : int
        Paired splits (ties and splits without R² included: they are no wins).

    Returns
    -------
    float
        ``P(X >= wins)`` for ``X ~ Binomial(n, 1/2)``; ``"A beats B"`` needs it ``<= BEATS_P``.

    Examples
    --------
    >>> sign_test_p(15, 20), sign_test_p(3, 4)
    (0.020694732666015625, 0.3125)
    """
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n


def _beats(wins: int, n: int) -> bool:
    return bool(n) and wins >= math.ceil(BEATS_SHARE * n) and sign_test_p(wins, n) <= BEATS_P


def _significant(row: Any, side: str) -> bool:
    """``p_holm <= BEATS_P`` with the mean ΔR² on ``side``'s side; True where the row has no finite ``p_holm``."""
    try:
        p = float(getattr(row, "p_holm", math.nan))
    except (TypeError, ValueError):
        p = math.nan
    if not math.isfinite(p):  # an older paired.csv, or no t-test (sizes unknown): the counts decide
        return True
    mean = float(getattr(row, "delta_r2_mean", math.nan))
    return p <= BEATS_P and not (mean < 0 if side == "A" else mean > 0)


def verdict(row: Any) -> str:
    """The report's verdict on one row of :func:`paired_table` (a row, or any object with its fields).

    ``"A beats B"`` / ``"B beats A"``: that side wins at least :data:`BEATS_SHARE` of the paired repetitions,
    and so many that a one-sided sign test gives p <= :data:`BEATS_P` (:func:`sign_test_p`; never from fewer
    than 5 repetitions), and where the row has a ``p_holm`` (the corrected t-test adjusted for the comparisons
    of its task and probe) it is <= :data:`BEATS_P` with the mean ΔR² on that side (a row without it, from an
    older ``paired.csv``: the counts alone)
    (ties, equal up to round-off, and repetitions without R² count for neither but are in ``n_splits``); where
    the repetitions share one test set (``one_test_set``) the same counts give
    ``"A ahead on one test set"`` / ``"B ahead on one test set"`` instead; otherwise ``"no clear winner"``.

    Parameters
    ----------
    row : pandas row or namedtuple
        With ``wins``, ``losses``, ``n_splits`` and ``one_test_set`` (lacking or NaN: from ``split``);
        ``p_holm`` and ``delta_r2_mean`` where known.

    Returns
    -------
    str
    """
    n, wins, losses = int(row.n_splits), int(row.wins), int(row.losses)  # a CSV may hold them as floats
    one = getattr(row, "one_test_set", None)  # a paired.csv from before 0.3 lacks it: NaN where concatenated
    one = _flag(one, str(getattr(row, "split", "")))
    if one:  # one comparison repeated: a sign test over it means nothing
        need = math.ceil(BEATS_SHARE * n)
        side = "A" if n and wins >= need else ("B" if n and losses >= need else None)
    else:
        side = "A" if _beats(wins, n) else ("B" if _beats(losses, n) else None)
        if side is not None and not _significant(row, side):
            side = None
    if side is None:
        return "no clear winner"
    return f"{side} ahead on one test set" if one else f"{side} beats {'B' if side == 'A' else 'A'}"
