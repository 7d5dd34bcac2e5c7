"""How sure a paired comparison over repeated splits is: the corrected resampled t-test.

Win counts over 20 repeated splits treat the repetitions as independent, but they share most of their training
and test samples, so their differences are correlated and a plain t-test (or a binomial count) is far too
confident. Nadeau & Bengio (2003, "Inference for the generalization error", Machine Learning 52) correct the
variance of the mean difference for that overlap::

    t = mean(d) / sqrt((1 / J + n_test / n_train) * var(d))        (J repetitions, J - 1 degrees of freedom)

where ``d`` are the per-repetition differences (e.g. R² of A minus R² of B), ``n_train`` the samples a
repetition trains on and ``n_test`` those it tests on. Bouckaert & Frank (2004) found it the test among the
usual ones whose type-I error stays near its nominal level for repeated random splits. It does not apply to
repetitions that share one test set (region and hold-out splits): there only the validation draw changes.

Plain NumPy/math (no SciPy): the Student-t tail comes from the regularized incomplete beta function
(Lentz's continued fraction, as in Numerical Recipes 6.4).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["corrected_resampled_ttest", "student_t_sf", "holm_adjust"]


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _stirling(z: float) -> float:
    """``lgamma(z) - ((z - 0.5) log z - z + log(2 pi) / 2)``, Stirling's series (z > 1000: error < 1e-30)."""
    z3 = z * z * z  # inf for huge z (z ** 3 raised OverflowError): the terms are then 0
    return 1.0 / (12.0 * z) - 1.0 / (360.0 * z3) + 1.0 / (1260.0 * z3 * z * z)


def _lbeta(a: float, b: float) -> float:
    """``log B(a, b)``, also where one argument is large.

    ``lgamma(a + b) - lgamma(a)`` of two values near 1e13 (a Student t with 1e12 degrees of freedom) cancelled
    to 1e-3, so the tail was off in its fourth digit: above 1000 the difference comes from Stirling's series.
    """
    small, big = min(a, b), max(a, b)
    if big <= 1000.0:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    diff = (big - 0.5) * math.log1p(small / big) + small * math.log(big + small) - small \
        + _stirling(big + small) - _stirling(big)  # lgamma(big + small) - lgamma(big)
    return math.lgamma(small) - diff


def _betainc(a: float, b: float, x: float, y: float) -> float:
    """The regularized incomplete beta function I_x(a, b); ``y = 1 - x``, given exactly (no cancellation)."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_x = math.log1p(-y) if y < 0.5 else math.log(x)  # x near 1: log(x) of a rounded x, times a large a
    log_y = math.log1p(-x) if x < 0.5 else math.log(y)
    front = math.exp(a * log_x + b * log_y - _lbeta(a, b))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, y) / b


def student_t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom.

    Parameters
    ----------
    t : float
        The statistic.
    df : float
        Degrees of freedom (> 0); ``inf`` gives the standard normal tail.

    Returns
    -------
    float
        The upper tail probability (0.5 at ``t = 0``; NaN for a NaN ``t``).

    Raises
    ------
    InvalidInputError
        ``df`` is not positive (or NaN); a ``ValueError``.
    """
    if not df > 0:
        raise InvalidInputError(f"df must be > 0, got {df}")
    if math.isnan(t):
        return math.nan
    if df > 1e7:  # the continued fraction needs ~sqrt(df) terms: 0.5 for df = inf, 0.42 for 0.31 at df = 1e15
        # Wallace's normal approximation, relative error < 1e-9 here (df = inf: the normal itself)
        z = abs(t) if math.isinf(df) else math.sqrt((df - 0.5) * math.log1p(t * t / df))
        upper = 0.5 * math.erfc(z / math.sqrt(2.0))
        return upper if t >= 0 else 1.0 - upper
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t), t * t / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def corrected_resampled_ttest(d: ArrayLike, n_train: float, n_test: float) -> tuple[float, float]:
    """Nadeau & Bengio's corrected resampled t-test of paired differences over repeated splits.

    Parameters
    ----------
    d : array_like
        The difference of the two methods' scores on each repetition (NaN ignored).
    n_train, n_test : float
        Samples a repetition trains on and tests on (their mean over the repetitions).

    Returns
    -------
    t : float
        The corrected statistic (NaN with fewer than 2 repetitions or without finite sizes, ``n_train > 0``;
        ±inf when every difference is the same non-zero value, 0 when all are 0).
    p : float
        Two-sided p-value with ``J - 1`` degrees of freedom (NaN where ``t`` is NaN).
    """
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    j = d.size
    n_train, n_test = float(n_train), float(n_test)
    if j < 2 or not (math.isfinite(n_train) and math.isfinite(n_test) and n_train > 0 and n_test >= 0):
        return math.nan, math.nan  # too few repetitions, or sizes unknown
    # equal differences have no variance: d.var() of three 0.1s is 1e-33 (the mean rounds), t was 7.7e15, not inf
    mean, var = float(d.mean()), 0.0 if d.min() == d.max() else float(d.var(ddof=1))
    scale = (1.0 / j + float(n_test) / float(n_train)) * var
    if scale == 0.0:
        return (0.0, 1.0) if mean == 0.0 else (math.copysign(math.inf, mean), 0.0)
    t = mean / math.sqrt(scale)
    return t, min(1.0, 2.0 * student_t_sf(abs(t), j - 1))  # t is finite here


def holm_adjust(p: ArrayLike) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values of a family of tests (family-wise error rate).

    The ``i``-th smallest of ``m`` p-values becomes ``max over j <= i of min(1, (m - j + 1) * p_(j))``; reject
    where the adjusted value is ``<= alpha``. NaN p-values are not tests: left out of ``m`` and kept NaN.

    Parameters
    ----------
    p : array_like of float
        The family's p-values.

    Returns
    -------
    numpy.ndarray
        The adjusted p-values, in the order given.

    Examples
    --------
    >>> holm_adjust([0.01, 0.04, 0.03, 0.005]).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out
