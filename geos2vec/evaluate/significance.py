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

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["corrected_resampled_ttest", "student_t_sf"]


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


def _betainc(a: float, b: float, x: float, y: float) -> float:
    """The regularized incomplete beta function I_x(a, b); ``y = 1 - x``, given exactly (no cancellation)."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y))
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
        Degrees of freedom (> 0).

    Returns
    -------
    float
        The upper tail probability (0.5 at ``t = 0``).

    Raises
    ------
    ValueError
        ``df`` is not positive.
    """
    if not df > 0:
        raise ValueError(f"df must be > 0, got {df}")
    if math.isnan(t):
        return math.nan
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
    mean, var = float(d.mean()), float(d.var(ddof=1))
    scale = (1.0 / j + float(n_test) / float(n_train)) * var
    if scale == 0.0:
        return (0.0, 1.0) if mean == 0.0 else (math.copysign(math.inf, mean), 0.0)
    t = mean / math.sqrt(scale)
    return t, min(1.0, 2.0 * student_t_sf(abs(t), j - 1))  # t is finite here
