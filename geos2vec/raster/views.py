"""Training views: windows at any offset on the patch grid (:func:`windows`), flips/rotations (:func:`augment`)."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from .. import cells as _cells
from .._dihedral import dihedral as _dihedral
from ..errors import InvalidInputError, InvalidTypeError
from ._common import DIMS, _is_dask, _pixel_coord, _shown

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["augment", "windows"]


# --------------------------------------------------------------------------- training views
def _compose_table() -> np.ndarray:
    """``table[a, b]``: the single transform equal to ``a`` then ``b`` (found on an asymmetric 3 x 3 grid)."""
    probe = np.arange(9).reshape(1, 3, 3)
    images = [_dihedral(probe, k) for k in range(8)]
    table = np.empty((8, 8), np.int8)
    for a in range(8):
        for b in range(8):
            both = _dihedral(_dihedral(probe, a), b)
            table[a, b] = next(k for k in range(8) if np.array_equal(images[k], both))
    return table


_COMPOSE = _compose_table()

def _take(sub, local, lr, lc):
    return np.asarray(sub)[local, lr, lc]


def _gather(arr, img_idx, lr, lc, per: int = 256):
    """``arr[img_idx, lr, lc]`` (pixels of images gathered into windows); lazy for a dask ``arr``.

    A dask ``arr`` is gathered in groups of ``per`` windows: each group is one task that depends only on
    the image chunks its windows overlap (``arr[unique images]``), so no step holds all images.
    """
    if not _is_dask(arr):
        return np.asarray(arr)[img_idx, lr, lc]
    import dask
    import dask.array as dsa

    n = img_idx.shape[0]
    tail = tuple(arr.shape[3:])
    if n == 0:
        # one explicit (empty) chunk: dask's automatic chunking divides by zero on a zero-length array
        return dsa.zeros((0, *img_idx.shape[1:], *tail), dtype=arr.dtype, chunks=-1)
    parts = []
    for s in range(0, n, per):
        ii = img_idx[s:s + per]
        u, inv = np.unique(ii, return_inverse=True)
        task = dask.delayed(_take, pure=True)(arr[u], inv.reshape(ii.shape), lr[s:s + per], lc[s:s + per])
        parts.append(dsa.from_delayed(task, shape=(*ii.shape, *tail), dtype=arr.dtype))
    return dsa.concatenate(parts, axis=0)



def _transform_coord(da, dim0, ts):
    """Per output image, the transform from the original: ``earlier`` then ``t``, transform-major."""
    earlier = (np.asarray(da["transform"].values, dtype=np.int8) if "transform" in da.coords and
               da["transform"].dims == (dim0,) else np.zeros(da.shape[0], np.int8))
    return np.concatenate([_COMPOSE[earlier, t] for t in ts]).astype(np.int8)


def augment(da: xr.DataArray, transforms: Iterable[int] = range(8)) -> xr.DataArray:
    """The eight flips/rotations (dihedral group D4) of every image or window.

    Augmentation for training on a small data set; not part of the S2Vec
    paper's recipe (off unless asked for). Transform ``t``: ``t % 4`` quarter
    turns counter-clockwise, then a left-right flip when ``t >= 4``; ``t = 0``
    is the identity. Pixel coordinates (``cell_id``, ``observed``, ``covered``, ``available``) move with
    the pixels, so :func:`to_frame` still maps every value to its cell.

    Parameters
    ----------
    da : xarray.DataArray
        Images or windows with dims ``(image or window, "row", "col", "feature")``, square, and the
        ``cell_id`` and ``observed`` coordinates (:func:`rasterize`, :func:`windows`). Dask-backed values
        (a zarr store opened lazily, lazy windows) stay lazy: the result is a dask-backed array whose
        chunks are flips/rotations of the input's chunks; NumPy-backed values give a NumPy result.
    transforms : iterable of int, default range(8)
        Which transforms (0-7) to produce, in this order.

    Returns
    -------
    xarray.DataArray
        First dimension ``len(transforms)`` times as long (transform-major:
        all of transform 0, then all of transform 1, ...), with a ``transform``
        coordinate on it: the transform from the original images, so augmenting an augmented array composes
        the two (a flip of a flip is the identity).

    Raises
    ------
    InvalidTypeError
        ``da`` is not a DataArray, or ``transforms`` is not an iterable.
    InvalidInputError
        Dims other than ``(image or window, "row", "col", "feature")`` in this order (a transposed array
        would pair values with the wrong cells), no ``cell_id``/``observed`` coordinate, images that are not
        square, or ``transforms`` empty or holding anything but integers 0-7 (not ``1.7``, ``"3"``).
    """
    if not isinstance(da, xr.DataArray):
        raise InvalidTypeError(f"augment needs an xarray.DataArray of images or windows, got {type(da).__name__}")
    if da.ndim != 4 or da.dims[1:] != ("row", "col", "feature"):
        raise InvalidInputError(
            f"augment needs dims (image or window, 'row', 'col', 'feature') in this order, got {da.dims}; "
            "transpose first, e.g. da.transpose('image', 'row', 'col', 'feature')")
    absent = [c for c in ("cell_id", "observed") if c not in da.coords]
    if absent:
        raise InvalidInputError(f"augment needs the {absent} coordinate(s) of rasterize or windows; "
                                f"the array has {sorted(map(str, da.coords))}")
    try:
        given = list(transforms)
    except TypeError:
        raise InvalidTypeError(f"transforms must be an iterable of integers 0-7 (e.g. [1] or range(8)), got "
                               f"{transforms!r}") from None
    bad = [t for t in given if isinstance(t, bool) or not isinstance(t, numbers.Integral) or not 0 <= t <= 7]
    if not given or bad:
        raise InvalidInputError(f"transforms must be a non-empty sequence of integers 0-7, got {_shown(given)}"
                                + (f"; not allowed: {_shown(bad)}" if bad else ""))
    ts = [int(t) for t in given]
    if da.shape[1] != da.shape[2]:
        raise InvalidInputError(f"augment needs square images or windows, got {da.shape[1]} x {da.shape[2]}")
    dim0 = da.dims[0]
    values = da.data if _is_dask(da.data) else np.asarray(da.values)  # dask stays lazy (np.rot90 dispatches)
    cid = _pixel_coord(da, "cell_id", (dim0, "row", "col"))
    obs = _pixel_coord(da, "observed", (dim0, "row", "col"))
    data = np.concatenate([_dihedral(values, t) for t in ts])
    cids = np.concatenate([_dihedral(cid, t) for t in ts])
    obss = np.concatenate([_dihedral(obs, t) for t in ts])
    coords = {"feature": da["feature"].values, "cell_id": ((dim0, "row", "col"), cids),
              "observed": ((dim0, "row", "col"), obss),
              "transform": (dim0, _transform_coord(da, dim0, ts))}
    for name, dims in (("covered", (dim0, "row", "col")), ("available", (dim0, "row", "col", "feature"))):
        if name in da.coords:
            arr = da[name].transpose(*dims).data
            arr = arr if _is_dask(arr) else np.asarray(arr)
            coords[name] = (dims, np.concatenate([_dihedral(arr, t) for t in ts]))
    for name, c in da.coords.items():
        if c.dims == (dim0,) and name != "transform":
            coords[name] = (dim0, np.tile(np.asarray(c.values), len(ts)))
    return xr.DataArray(data, dims=da.dims, coords=coords, name=da.name, attrs=dict(da.attrs))


def _check_unaugmented(da: xr.DataArray, caller: str) -> None:
    """Raise unless ``da`` holds images as :func:`rasterize` made them: unique ids, no flip or rotation.

    The windows of :func:`windows` (and of seamless embedding) read each image's pixels at their place on
    the face grid; a flipped or rotated image (:func:`augment`) would be stitched in turned, and a repeated
    image id (all eight transforms) would be read from one arbitrary copy.
    """
    if "transform" in da.coords:
        t = np.asarray(da["transform"].values)
        if (t != 0).any():
            raise InvalidInputError(
                f"{caller} needs images as rasterize made them, but {int((t != 0).sum())} of them are flipped or "
                f"rotated (transform coordinate {_shown(np.unique(t).tolist())}, from augment): augment after "
                "windowing, not before (windows(da, augment=True) or augment(windows(da))), and embed the "
                "original images")
    if "image" in da.coords:
        _check_unique_images(np.asarray(da["image"].values), caller)


def _check_unique_images(ids: np.ndarray, caller: str) -> None:
    """Raise when an image id appears more than once (e.g. the eight transforms of :func:`augment`)."""
    u, k = np.unique(ids, return_counts=True)
    if (k > 1).any():
        raise InvalidInputError(
            f"{caller} needs each image once, but {int((k > 1).sum())} image id(s) appear several times (e.g. "
            f"{_shown(_cells.cell_to_token(np.asarray(u[k > 1], dtype=np.uint64)).tolist())}; images from "
            "augment?): window or embed the original images, and augment the windows (windows(da, augment=True))")


def _check_whole_images(imgs: np.ndarray, cell_id: np.ndarray, n: int, ncol: int, ilev: int,
                        what: str = "windows", fix: str = "window the whole images and select from the windows"
                        ) -> None:
    """Raise unless every image is whole, its pixels in :func:`rasterize`'s order (windows place them by it).

    ``da.isel(row=slice(0, 8))`` or ``da.isel(row=slice(None, None, -1))`` keep each value with its
    ``cell_id``, but windows read pixel ``(r, c)`` of an image as the cell at that place on the face grid.
    """
    side = n.bit_length() - 1
    whole = n == ncol and n == 1 << side and ilev + side <= 30
    rows, cols = np.arange(n).reshape(1, n, 1), np.arange(n).reshape(1, 1, n)
    for lo in range(0, imgs.size if whole else 0, 4096):  # in blocks: a few MB at a time
        expected = _cells.rowcol_to_cell(imgs[lo:lo + 4096].reshape(-1, 1, 1), rows, cols, ilev + side)
        whole = whole and np.array_equal(cell_id[lo:lo + 4096], expected)
    if not whole:
        raise InvalidInputError(
            f"{what} needs whole images as rasterize made them ({n} x {ncol} pixels here): the cell_id of "
            "every pixel must be the image's cell at that row and column (images cropped, flipped or reordered "
            f"along row/col with isel/sel cannot be placed on the face grid); {fix}")


def windows(da: xr.DataArray, size: int = 16, stride: int | None = None, *, min_observed: int = 1,
            augment: bool = False, chunk_windows: int = 256) -> xr.DataArray:
    """Square training windows at arbitrary offsets on the patch-level grid.

    Images of one S2 face tile a common grid of patch-level cells (the frame of
    :func:`geos2vec.cells.cell_to_rowcol` extended over the face). Windows are
    placed on that grid with top-left corners at multiples of ``stride``,
    so they straddle neighbouring images instead of only coinciding with them
    (a few cities give many more training views).

    Face edges: a window never crosses an S2 face edge (the neighbouring face's
    grid is rotated against this one), and only windows whose every pixel lies
    in an image of ``da`` are produced; pixels of images that are in ``da``
    but hold no data are fill with ``observed=False``.

    Parameters
    ----------
    da : xarray.DataArray
        Output of :func:`rasterize`, NumPy- or dask-backed. Dask-backed values (e.g. a zarr store from
        :func:`geos2vec.raster.open_zarr`) are not loaded: the windows' values are a dask array whose
        every chunk of ``chunk_windows`` windows reads only the images it overlaps. The pixel coordinates
        (``cell_id``, ``observed``, ``covered``: one value per pixel, no feature axis) are loaded.
    size : int, default 16
        Pixels per side.
    stride : int, optional
        Step between window corners in pixels; default ``size // 2``.
    min_observed : int, default 1
        Keep windows with at least this many observed pixels.
    augment : bool, default False
        Also return the eight flips/rotations of each window (see
        :func:`augment`); off by default, as in the paper.
    chunk_windows : int, default 256
        Windows per chunk of a dask-backed result (ignored for NumPy-backed ``da``).

    Returns
    -------
    xarray.DataArray
        Dims ``("window", "row", "col", "feature")``; coordinates ``face``,
        ``row0``/``col0`` (top-left pixel on the face grid), ``cell_id``,
        ``observed``, ``covered``/``available`` when ``da`` has them (and
        ``transform`` with ``augment=True``).

    Raises
    ------
    InvalidTypeError
        ``da`` is not a DataArray with dims ``("image", "row", "col", "feature")``.
    InvalidInputError
        Flipped or rotated images (a non-zero ``transform`` coordinate, from :func:`augment`) or repeated
        image ids: windows are cut from the images as :func:`rasterize` made them, so augment the windows
        (``augment=True``), not the images; ``size``, ``stride``, ``chunk_windows`` or ``min_observed`` not
        an integer (positive; ``min_observed`` >= 0), images of several levels, or images that are not
        whole in :func:`rasterize`'s pixel order (cropped or flipped with ``isel``/``sel`` along ``row``/``col``).
    """
    if not isinstance(da, xr.DataArray) or da.dims != DIMS:
        got = f", got dims {da.dims}" if isinstance(da, xr.DataArray) else ""
        got += f": transpose first, da.transpose{DIMS}" if got and set(da.dims) == set(DIMS) else ""
        raise InvalidTypeError(f"windows needs a DataArray from rasterize with dims {DIMS}{got}")
    _check_unaugmented(da, "windows")
    for name, v, low in (("size", size, 1), ("stride", stride if stride is not None else 1, 1),
                         ("chunk_windows", chunk_windows, 1), ("min_observed", min_observed, 0)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
            raise InvalidInputError(f"{name} must be an integer >= {low}, got {v!r}")
    stride = size // 2 if stride is None else int(stride)
    stride = max(stride, 1)
    imgs = np.asarray(da["image"].values, dtype=np.uint64)
    n = da.shape[1]
    levels = np.asarray(_cells.get_level(imgs)) if imgs.size else np.array([0])
    ilev = int(levels.min())
    if imgs.size and (levels != ilev).any():
        raise InvalidInputError("windows needs images of one level")
    if ilev > 29:
        raise InvalidInputError("windows supports image levels up to 29")
    pixel_dims = ("image", "row", "col")
    cell_id = _pixel_coord(da, "cell_id", pixel_dims).astype(np.uint64)
    observed = _pixel_coord(da, "observed", pixel_dims)
    _check_whole_images(imgs, cell_id, n, da.shape[2], ilev)
    face, fi, fj = _cells.cell_to_face_ij(imgs)
    gr, gc = _cells._rowcol_from_ij(np.asarray(face), np.asarray(fi), np.asarray(fj), 1 << ilev)
    side = 1 << ilev
    keys = (np.asarray(face, dtype=np.int64) * side + gr) * side + gc
    korder = np.argsort(keys)
    skeys = keys[korder]
    # candidate corners: lattice points whose window touches an image
    span = np.arange(-((size - 1) // stride) - 1, n // stride + 2)
    r0 = (gr * n // stride)[:, None] + span[None, :]
    c0 = (gc * n // stride)[:, None] + span[None, :]
    rr = np.broadcast_to(r0[:, :, None], (imgs.size, span.size, span.size)) * stride
    cc = np.broadcast_to(c0[:, None, :], (imgs.size, span.size, span.size)) * stride
    ff = np.broadcast_to(np.asarray(face, dtype=np.int64)[:, None, None], rr.shape)
    cand = np.unique(np.stack([ff.ravel(), rr.ravel(), cc.ravel()], axis=1), axis=0)
    total = side * n
    ok = (cand[:, 1] >= 0) & (cand[:, 2] >= 0) & (cand[:, 1] + size <= total) & (cand[:, 2] + size <= total)
    cand = cand[ok]
    off = np.arange(size)
    R = cand[:, 1][:, None, None] + off[None, :, None]
    C = cand[:, 2][:, None, None] + off[None, None, :]
    F = cand[:, 0][:, None, None]
    k = (F * side + R // n) * side + C // n
    p = np.searchsorted(skeys, k).clip(0, max(skeys.size - 1, 0))
    found = skeys[p] == k if skeys.size else np.zeros(k.shape, bool)
    full = found.all(axis=(1, 2))
    cand, p, R, C = cand[full], p[full], R[full], C[full]
    img_idx = korder[p]
    lr, lc = R % n, C % n
    obs = observed[img_idx, lr, lc]
    keep = obs.sum(axis=(1, 2)) >= min_observed
    cand, img_idx, lr, lc, obs = cand[keep], img_idx[keep], lr[keep], lc[keep], obs[keep]
    data = _gather(da.data, img_idx, lr, lc, int(chunk_windows))
    cid = cell_id[img_idx, lr, lc]
    coords = {"face": ("window", cand[:, 0].astype(np.int8)), "row0": ("window", cand[:, 1]),
              "col0": ("window", cand[:, 2]), "feature": da["feature"].values,
              "cell_id": (("window", "row", "col"), cid), "observed": (("window", "row", "col"), obs)}
    if "covered" in da.coords:
        coords["covered"] = (("window", "row", "col"), _pixel_coord(da, "covered", pixel_dims)[img_idx, lr, lc])
    if "available" in da.coords:
        coords["available"] = (("window", "row", "col", "feature"),
                               _gather(da["available"].transpose(*DIMS).data, img_idx, lr, lc,
                                       int(chunk_windows)))
    out = xr.DataArray(data, dims=("window", "row", "col", "feature"), coords=coords, name=da.name,
                       attrs={**da.attrs, "window_size": int(size), "window_stride": int(stride)})
    if augment:
        out = globals()["augment"](out)
    return out
