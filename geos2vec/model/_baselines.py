"""The parameter-free predictors of the reconstruction evaluation (:mod:`geos2vec.model.reconstruction`).

:func:`baseline_predictions` gives, for masked images, the predictions ``zero``, ``empty``, ``visible_mean``
and ``local_mean`` (the visible covered patches of the 5 x 5 neighbourhood, :func:`neighbour_sums`, shrunk
toward ``visible_mean``) that :meth:`geos2vec.model.S2VecModel.evaluate` sets against the model. Plain NumPy;
everything here is importable from :mod:`geos2vec.model.reconstruction`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

LOCAL_RADIUS, LOCAL_PRIOR = 2, 4.0


def baseline_predictions(x: ArrayLike, mask: ArrayLike, empty: ArrayLike | None = None,
                         c: ArrayLike | None = None, grid: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """The parameter-free predictions, each broadcastable to ``x`` (``(batch, n, features)``).

    ``zero``: 0; ``empty``: the vector ``empty`` (``(features,)``; left out when ``None``); ``visible_mean``:
    per image, the mean over its unmasked covered patches (``c``; all patches when ``None``; 0 for an image
    with none visible).

    Parameters
    ----------
    x : array_like, shape (batch, n, features)
        Normalized patches.
    mask : array_like, shape (batch, n)
        1 where a patch is masked.
    empty : array_like, shape (features,), optional
        The normalized value of a cell with zero counts.
    c : array_like, shape (batch, n), optional
        Covered weight (1 where the source has data).
    grid : tuple of int, optional
        ``(rows, cols)`` of the images (``rows * cols == n``, patches in row-major order); default: square
        images when ``n`` is a perfect square (a 4 x 16 crop would be read as 8 x 8: give its grid).

    Returns
    -------
    dict of str to numpy.ndarray
        float64 predictions: ``"zero"`` ``(1, 1, features)``, ``"empty"`` ``(1, 1, features)`` (with
        ``empty``), ``"visible_mean"`` ``(batch, 1, features)`` and, with ``grid`` or for square images (``n``
        a perfect square), ``"local_mean"`` ``(batch, n, features)`` (see :mod:`geos2vec.model.reconstruction`).

    Raises
    ------
    ValueError
        ``empty`` has another number of features than ``x``, or ``grid`` does not hold ``n`` patches.
    """
    x = np.asarray(x)
    keep = 1.0 - np.asarray(mask, dtype=np.float64)
    if c is not None:
        keep = keep * np.asarray(c, dtype=np.float64)
    n_vis = keep.sum(axis=1)[:, None]
    vis_mean = np.einsum("bn,bnf->bf", keep, x.astype(np.float64)) / np.maximum(n_vis, 1.0)
    out = {"zero": np.zeros((1, 1, x.shape[-1]))}
    if empty is not None:
        empty = np.asarray(empty, dtype=np.float64).reshape(1, 1, -1)
        if empty.shape[-1] != x.shape[-1]:
            raise InvalidInputError(f"empty has {empty.shape[-1]} features, x has {x.shape[-1]}")
        out["empty"] = empty
    out["visible_mean"] = vis_mean[:, None, :]
    if grid is None:
        side = int(round(np.sqrt(x.shape[1])))
        grid = (side, side) if side * side == x.shape[1] else None
    elif len(grid) != 2 or int(grid[0]) * int(grid[1]) != x.shape[1]:
        raise InvalidInputError(f"grid={tuple(grid)} must be (rows, cols) with rows * cols = {x.shape[1]} patches")
    if grid is not None:
        out["local_mean"] = _local_mean(x.astype(np.float64), keep, (int(grid[0]), int(grid[1])), vis_mean)
    return out


def neighbour_sums(x: np.ndarray, keep: np.ndarray, side: int | tuple[int, int],
                   radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Per patch: the sum of ``x`` over the kept patches around it, and how many there are.

    The neighbourhood is ``(2 radius + 1)^2`` patches (itself excluded) on the ``side x side`` (or
    ``rows x cols``) image, clipped at the image's edges.

    Parameters
    ----------
    x : numpy.ndarray, shape (b, n, f)
        Patches, ``n = side * side`` (or ``rows * cols``) in row-major order.
    keep : numpy.ndarray, shape (b, n)
        Weight of each patch (for ``local_mean``: 1 where visible and covered, 0 elsewhere).
    side : int or tuple of int
        Side of the square image, or its ``(rows, cols)``.
    radius : int
        Half the side of the neighbourhood.

    Returns
    -------
    total : numpy.ndarray, shape (b, n, f)
        Per patch, the ``keep``-weighted sum of ``x`` over its neighbours.
    count : numpy.ndarray, shape (b, n)
        Per patch, the sum of ``keep`` over its neighbours.
    """
    b, n, f = x.shape
    rows, cols = (side, side) if np.ndim(side) == 0 else side
    xs = (x * keep[..., None]).reshape(b, rows, cols, f)
    ks = keep.reshape(b, rows, cols)
    total = np.zeros_like(xs)
    count = np.zeros_like(ks)
    for dr in range(-radius, radius + 1):
        for dc in range(-radius, radius + 1):
            if dr == 0 and dc == 0:
                continue
            r0, r1 = max(0, dr), rows + min(0, dr)
            c0, c1 = max(0, dc), cols + min(0, dc)
            total[:, r0 - dr:r1 - dr, c0 - dc:c1 - dc] += xs[:, r0:r1, c0:c1]
            count[:, r0 - dr:r1 - dr, c0 - dc:c1 - dc] += ks[:, r0:r1, c0:c1]
    return total.reshape(b, n, f), count.reshape(b, n)


def _local_mean(x, keep, side, vis_mean, radius=LOCAL_RADIUS, prior=LOCAL_PRIOR):
    total, count = neighbour_sums(x, keep, side, radius)
    count = count[..., None]
    local = total / np.maximum(count, 1.0)
    a = count / (count + prior)
    return a * local + (1 - a) * vis_mean[:, None, :]
