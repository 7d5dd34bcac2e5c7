"""Probes: a closed-form ridge (and :func:`standardize`, the inputs' per-split scaling) and the paper's MLP.

The MLP probe (:func:`build_mlp`, the batched training of many heads) is in
:mod:`~geos2vec.evaluate.mlp_training`; its names stay importable from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidInputError
from .mlp_training import (  # noqa: F401
    _adamw_step,
    _check_mlp_options,
    _GroupTrainer,
    _pad,
    _parallel_mlp_class,
    _require_mlp,
    _train_group,
    build_mlp,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

__all__ = ["build_mlp", "standardize", "ridge_probe", "ridge_onehot_probe", "RIDGE_ALPHAS"]


# ------------------------------------------------------------------ ridge
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-2, 6, 17))


def _check_ridge_args(n: int, train, val, test, alphas) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ridge probes' rows as index arrays (boolean masks of the ``n`` rows allowed) and ``alphas``, checked.

    Before, a boolean mask gave ``ridge_onehot_probe`` another model than ``ridge_probe`` (its training size was
    the mask's length), no validation rows chose the first penalty on a NaN error, and a scalar ``alphas`` raised
    NumPy's ``IndexError``.
    """
    rows = []
    for name, idx in (("train", train), ("val", val), ("test", test)):
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise InvalidInputError(f"{name} as a boolean mask needs one entry per row ({n}), got {idx.shape}")
            idx = np.flatnonzero(idx)
        elif idx.size == 0:
            idx = idx.astype(np.int64)
        elif idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise InvalidInputError(f"{name} must be row indices (1-D integers) or a boolean mask, got dtype "
                                    f"{idx.dtype} and shape {idx.shape}")
        if name != "test" and idx.size == 0:
            raise InvalidInputError(f"{name} has no rows: the ridge probe fits on the training rows and chooses its "
                                    "penalty on the validation rows; give both at least one row")
        rows.append(idx)
    a = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if a.ndim != 1 or a.size == 0 or not (np.isfinite(a) & (a > 0)).all():
        raise InvalidInputError(f"alphas must be a non-empty list of positive, finite penalties, got {alphas!r:.80}")
    return rows[0], rows[1], rows[2], a


def standardize(x: ArrayLike, train: ArrayLike, *, clip: float | None = 4.0, scale: bool = True) -> np.ndarray:
    """Standardize the columns of ``x`` with the mean and SD of the ``train`` rows, then clip at ±``clip``.

    Only training rows are used: validation and test rows never take part in the fit. Columns constant
    on the training rows become 0 (they carry nothing a probe can learn). ``scale=False`` only centres
    (for one-hot blocks, which must not be rescaled or clipped).

    Parameters
    ----------
    x : array_like, shape (n, d)
        The features.
    train : array_like of int or bool
        The training rows (an index array or a boolean mask).
    clip : float or None
        Bound of the standardized values; ``None``: no clipping.
    scale : bool
        Divide by the SD (and clip); ``False``: only subtract the mean.

    Returns
    -------
    numpy.ndarray of float64, shape (n, d)
        All rows, transformed with the training rows' statistics.
    """
    x = np.asarray(x, dtype=np.float64)
    mu = x[train].mean(axis=0)
    sd = x[train].std(axis=0) if scale else None  # before z: its temporaries and z are not held at once
    z = x - mu
    if scale:
        const = sd <= 1e-12 * np.maximum(1.0, np.abs(mu))
        z /= np.where(const, 1.0, sd)  # in place: no second (n, d) array
        z[:, const] = 0.0
        if clip is not None:
            np.clip(z, -clip, clip, out=z)
    return z


def ridge_probe(x: ArrayLike, y: ArrayLike, train: ArrayLike, val: ArrayLike, test: ArrayLike,
                alphas: Sequence[float] = RIDGE_ALPHAS) -> tuple[np.ndarray, float, float]:
    """Closed-form ridge regression with the penalty chosen on validation.

    ``x`` is centred on the training rows here, so the intercept is not penalized (the training mean of
    ``y`` minus the slopes times the training means of ``x``; before, ``x`` was taken as centred, which
    :func:`standardize`'s clipping at ±4 SD breaks, and the intercept was shrunk with the slopes). Every
    alpha is solved from one eigendecomposition of the training rows' Gram matrix (``X'X``, or ``XX'`` when
    there are more features than rows).

    Parameters
    ----------
    x : array_like, shape (n, d)
        Features (e.g. :func:`standardize`'s, fitted on the training rows).
    y : array_like, shape (n,)
        The target.
    train, val, test : array_like of int or bool
        Row indices (or boolean masks of the rows) of the training, validation and test samples; training and
        validation rows are needed.
    alphas : sequence of float
        The penalties tried, positive (:data:`RIDGE_ALPHAS` by default; one number is one penalty).

    Returns
    -------
    pred_test : numpy.ndarray of float64
        Predictions for the ``test`` rows with the chosen penalty.
    val_mse : float
        Validation mean squared error of the chosen penalty.
    alpha : float
        The chosen penalty (the lowest validation MSE; the first of equal ones).

    Raises
    ------
    InvalidInputError (a ValueError)
        No training or validation rows, rows that are neither integers nor a boolean mask of ``x``'s rows, or
        ``alphas`` empty, not finite or not positive.
    """
    x = np.asarray(x, dtype=np.float64)
    train, val, test, alphas = _check_ridge_args(len(x), train, val, test, alphas)
    x = x - x[train].mean(axis=0)  # the training rows' means: an unpenalized intercept
    y = np.asarray(y, dtype=np.float64)
    mu = y[train].mean()
    xt, yt = x[train], y[train] - mu
    # every alpha from one symmetric eigendecomposition (sturdier than an SVD on rank-deficient inputs):
    # the primal Gram matrix when features <= rows, else the dual (kernel) one
    if xt.shape[1] <= xt.shape[0]:
        w, v = np.linalg.eigh(xt.T @ xt)
        proj_val, proj_test, rhs = x[val] @ v, x[test] @ v, v.T @ (xt.T @ yt)
    else:
        w, v = np.linalg.eigh(xt @ xt.T)
        proj_val, proj_test, rhs = (x[val] @ xt.T) @ v, (x[test] @ xt.T) @ v, v.T @ yt
    w = np.clip(w, 0.0, None)
    coef = rhs / (w + alphas[:, None])  # (alphas, rank)
    pred_val = proj_val @ coef.T + mu  # (n_val, alphas)
    mse = np.mean((pred_val - y[val][:, None]) ** 2, axis=0)
    best = int(np.argmin(mse))
    pred_test = proj_test @ coef[best] + mu
    return pred_test, float(mse[best]), float(alphas[best])


def ridge_onehot_probe(groups: ArrayLike, y: ArrayLike, train: ArrayLike, val: ArrayLike, test: ArrayLike,
                       alphas: Sequence[float] = RIDGE_ALPHAS) -> tuple[np.ndarray, float, float]:
    """:func:`ridge_probe` on a centred one-hot of ``groups``, in O(groups) per penalty.

    The same model as ``ridge_probe(standardize(onehot, train, scale=False), ...)`` — the training Gram
    matrix of a centred one-hot is diagonal minus rank one, so each penalty is solved with the
    Sherman-Morrison formula instead of an eigendecomposition of a (groups x groups) matrix.

    Parameters
    ----------
    groups : array_like, shape (n,)
        The group label of each row (e.g. the region of each sample).
    y : array_like, shape (n,)
        The target.
    train, val, test : array_like of int or bool
        Row indices (or boolean masks of the rows) of the training, validation and test samples; training and
        validation rows are needed.
    alphas : sequence of float
        The penalties tried, positive (:data:`RIDGE_ALPHAS` by default; one number is one penalty).

    Returns
    -------
    pred_test : numpy.ndarray of float64
        Predictions for the ``test`` rows with the chosen penalty.
    val_mse : float
        Validation mean squared error of the chosen penalty.
    alpha : float
        The chosen penalty.

    Raises
    ------
    InvalidInputError (a ValueError)
        As :func:`ridge_probe`.
    """
    groups = np.asarray(groups)
    y = np.asarray(y, dtype=np.float64)
    train, val, test, alphas = _check_ridge_args(len(groups), train, val, test, alphas)
    _, g = np.unique(groups, return_inverse=True)
    k = int(g.max()) + 1
    n = len(train)
    mu = y[train].mean()
    n_g = np.bincount(g[train], minlength=k).astype(np.float64)
    b = np.bincount(g[train], weights=y[train] - mu, minlength=k)  # X'y_c = n_g (mean_g - mean)
    p = n_g / n
    u = np.sqrt(n) * p
    e = n_g[None, :] + alphas[:, None]  # (alphas, groups): the diagonal of D + alpha I
    eb, eu = b / e, u / e
    beta = eb + eu * ((eu * b).sum(axis=1) / (1.0 - (eu * u).sum(axis=1)))[:, None]
    offset = mu - beta @ p  # prediction for a row of group h: beta_h - p'beta + mean
    pred_val = beta[:, g[val]].T + offset
    mse = np.mean((pred_val - y[val][:, None]) ** 2, axis=0)
    best = int(np.argmin(mse))
    return beta[best, g[test]] + offset[best], float(mse[best]), float(alphas[best])
