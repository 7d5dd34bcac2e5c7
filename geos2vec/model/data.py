"""Training / embedding input: image DataArrays (or zarr stores) -> ``tf.data`` pipelines.

The input is the rasterization stage's output: an ``xarray.DataArray`` with
dims ``("image", "row", "col", "feature")``, coordinates ``image`` (uint64
image cell ids), ``feature`` (channel names), ``cell_id(image, row, col)``
(uint64 cell of each pixel) and boolean ``observed(image, row, col)``. It may
live in memory or lazily in a zarr store (dask-backed): lazy data is read in
blocks of images, never as a whole. Normalization by
:class:`~geos2vec.normalize.FeatureStats` happens inside the pipeline.

Opening and checking images (:func:`open_images`, :func:`check_images`, :func:`match_channels`, :data:`IMAGE_DIMS`)
is in :mod:`geos2vec.model._image_input`, and importable from here.
"""

from __future__ import annotations

from pathlib import Path as Path  # importable from here, as before the split
from typing import TYPE_CHECKING

import numpy as np

from .._optional import needs
from ..errors import InvalidInputError, InvalidTypeError
from ._image_input import IMAGE_DIMS, check_images, match_channels, open_images

if TYPE_CHECKING:
    import tensorflow as tf
    import xarray as xr
    from numpy.typing import ArrayLike

    from .._typing import StrPath
    from ..normalize import FeatureStats

__all__ = ["IMAGE_DIMS", "open_images", "as_images", "check_images", "match_channels", "split_images",
           "scorable_images", "make_dataset",
           "image_levels"]


def as_images(data: xr.DataArray | StrPath, name: str = "data") -> xr.DataArray:
    """Images from a DataArray or from the path of a stored one (:func:`open_images`), checked.

    Parameters
    ----------
    data : xarray.DataArray or str or path-like
        Images (:func:`geos2vec.raster.rasterize`), or a zarr store, ``.nc`` file or Parquet feature table.
    name : str
        The argument's name, for the error message.

    Returns
    -------
    xarray.DataArray
        :func:`check_images` of the images.

    Raises
    ------
    InvalidTypeError
        ``data`` is neither a DataArray nor a path.
    """
    if not hasattr(data, "dims"):
        if not isinstance(data, str) and not hasattr(data, "__fspath__"):
            raise InvalidTypeError(f"{name} must be an image DataArray (geos2vec.raster.rasterize) or the path of a "
                                   f"zarr store, .nc file or Parquet feature table; got {type(data).__name__}")
        data = open_images(data)
    return check_images(data)


def image_levels(da: xr.DataArray) -> tuple[int | None, int | None]:
    """``(image_level, patch_level)`` from attrs, else from the coordinates' cell ids (``None`` if unknown).

    Parameters
    ----------
    da : xarray.DataArray
        Images, with ``image_level`` / ``patch_level`` attrs or ``image`` / ``cell_id`` coordinates.

    Returns
    -------
    image_level, patch_level : int or None
        The level of the image cells and of the pixel cells; from the attrs when set, else the level of
        the first image's (first pixel's) cell id when it is a valid cell, else ``None``.
    """
    from geos2vec.cells import get_level, is_valid_cell

    def level_of(ids):
        ids = np.asarray(ids, dtype=np.uint64).ravel()[:1]
        return int(get_level(ids)[0]) if ids.size and bool(is_valid_cell(ids)[0]) else None

    image_level = da.attrs.get("image_level")
    patch_level = da.attrs.get("patch_level")
    if image_level is None and "image" in da.coords and da.sizes["image"]:
        image_level = level_of(da["image"].values[:1])
    if patch_level is None and "cell_id" in da.coords and da.sizes["image"]:
        patch_level = level_of(da["cell_id"].isel(image=0).values)
    return (None if image_level is None else int(image_level)), (None if patch_level is None else int(patch_level))


def check_levels(da: xr.DataArray, model) -> None:
    """Refuse images of other cell levels than the model's (``S2VecModel.embed`` and ``evaluate``).

    A 16 x 16 level-10 image of level-14 cells was embedded by the bundled level-12 model without a word: the grid
    matched, the cells' size did not.

    Parameters
    ----------
    da : xarray.DataArray
        Images (levels from their attrs or cell ids, :func:`image_levels`; unknown levels pass).
    model : S2VecModel
        The model, with its ``image_level`` and ``patch_level`` (unknown levels pass).

    Raises
    ------
    InvalidInputError
        If the images' cells are of another level than the model's.
    """
    # the cells' level only: with the model's grid it fixes the images' level, and an image label is read as a
    # cell id when the attrs are gone (images relabelled 1..n read as "level-30 images" and were refused)
    have, want = image_levels(da)[1], (getattr(model, "image_level", None), getattr(model, "patch_level", None))
    if have is None or want[1] is None or have == want[1]:
        return
    raise InvalidInputError(
        f"these images hold level-{have} cells, but the model embeds level-{want[1]} cells in level-{want[0]} "
        f"images: rasterize counts of level-{want[1]} cells (count_features(..., level={want[1]}), "
        f"rasterize(table, image_level={want[0]})), or train a model on level-{have} cells")


def scorable_images(da: xr.DataArray, indices: ArrayLike, observed_only: bool = False) -> np.ndarray:
    """The entries of ``indices`` whose image has a pixel the training loss counts.

    That is a covered pixel (every pixel when the images carry no ``covered`` coordinate), or with
    ``observed_only`` (``ignore_unobserved``) an observed one.

    Parameters
    ----------
    da : xarray.DataArray
        Images (:func:`check_images`).
    indices : array_like of int
        Image positions.
    observed_only : bool
        Count observed pixels only.

    Returns
    -------
    numpy.ndarray
        The image positions kept, in their order.
    """
    indices = np.asarray(indices, dtype=np.int64)
    name = "observed" if observed_only else "covered"
    if name not in da.coords or not indices.size:
        return indices
    has = np.asarray(da[name].transpose("image", ...).values).reshape(da.sizes["image"], -1).any(axis=1)
    return indices[has[indices]]


def split_images(n: int, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into sorted (train, validation) index arrays.

    At least one image stays in training; a positive ``fraction`` of ``n >= 2``
    images holds out at least one.

    Parameters
    ----------
    n : int
        Number of images.
    fraction : float
        Share of the images held out for validation, in [0, 1) (rounded to a count).
    seed : int
        Seed of the permutation.

    Returns
    -------
    train, val : numpy.ndarray of int64
        Sorted image positions; together a partition of ``range(n)``.

    Raises
    ------
    ValueError
        ``fraction`` outside [0, 1).
    """
    if not 0.0 <= fraction < 1.0:
        raise InvalidInputError(f"validation fraction must be in [0, 1), got {fraction}")
    n_val = int(round(n * fraction))
    if fraction > 0 and n >= 2:
        n_val = max(n_val, 1)
    n_val = min(n_val, n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _is_lazy(da) -> bool:
    return not isinstance(da.variable._data, np.ndarray) and not isinstance(da.data, np.ndarray)


def _observed(da):
    if "observed" in da.coords:
        return da["observed"].transpose("image", "row", "col")
    return None


def iter_blocks(da, indices=None, block: int = 256, coverage: bool = False):
    """Yield ``(values, observed)`` numpy blocks of at most ``block`` images.

    With ``coverage=True``: ``(values, observed, covered, available)``; ``covered`` is all True when the
    images carry no ``covered`` coordinate (coverage unknown), ``available`` is None without an
    ``available`` coordinate (every channel as covered).
    """
    indices = np.arange(da.sizes["image"]) if indices is None else np.asarray(indices)
    obs = _observed(da)
    cov = da["covered"].transpose("image", "row", "col") if "covered" in da.coords else None
    avail = da["available"].transpose(*IMAGE_DIMS) if "available" in da.coords else None
    for start in range(0, len(indices), block):
        idx = indices[start:start + block]
        sub = da.isel(image=idx)
        values = np.asarray(sub.values)
        if obs is not None:
            mask = np.asarray(obs.isel(image=idx).values, dtype=bool)
        else:
            mask = np.ones(values.shape[:3], dtype=bool)
        if not coverage:
            yield values, mask
            continue
        covered = np.ones(values.shape[:3], bool) if cov is None else np.asarray(cov.isel(image=idx).values, bool)
        available = None if avail is None else np.asarray(avail.isel(image=idx).values, bool)
        yield values, mask, covered, available


@needs("tensorflow", what="geos2vec.model.data.make_dataset")
def make_dataset(da: xr.DataArray, stats: FeatureStats, indices: ArrayLike | None = None, *, batch_size: int = 64,
                 shuffle_buffer: int = 0, seed: int = 0, drop_remainder: bool = False,
                 block: int = 256) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of normalized image batches.

    Elements are dicts ``{"x": (batch, rows*cols, features) float32,
    "w": (batch, rows*cols) float32, "c": (batch, rows*cols) float32}``
    (``w`` = 1 on observed pixels, ``c`` = 1 on covered pixels: everywhere
    when the images carry no coverage), and ``"v"`` ``(batch, rows*cols,
    features)``, 1 where the pixel's channel is available, when they carry
    an ``available`` coordinate (:mod:`geos2vec.coverage`); ``"e"`` ``(batch, rows*cols)`` is 1 where the
    cell has any count (the ``nonempty_weight`` of the loss).
    In-memory data is sliced directly; lazy (dask / zarr) data streams in
    blocks of ``block`` images. ``shuffle_buffer`` > 0 shuffles images with a
    seeded buffer that reshuffles every epoch; batches are prefetched (two ahead, normalized by one parallel
    call per available core, 2 to 8; no tf.data autotuning: see the comment at its end).

    Parameters
    ----------
    da : xarray.DataArray
        Images (:func:`check_images`); their channels are put in the order of ``stats.channels``.
    stats : FeatureStats
        The normalization (:class:`~geos2vec.normalize.FeatureStats`), applied inside the pipeline
        (``log1p`` first when ``stats.log1p``).
    indices : array_like of int, optional
        Positions of the images to use, in this order (default: all).
    batch_size : int
        Images per batch.
    shuffle_buffer : int
        Size of the shuffle buffer in images (capped at the number of images); 0 or 1: no shuffling.
    seed : int
        Seed of the shuffle.
    drop_remainder : bool
        Drop the last, smaller batch.
    block : int
        Images per read of lazy data.

    Returns
    -------
    tf.data.Dataset
        The batches, as described above.

    Raises
    ------
    TypeError, ValueError
        Invalid images (:func:`check_images`), channels that do not match ``stats.channels``
        (:func:`match_channels`), or NaN/inf values (e.g. ``rasterize(..., fill=np.nan)``; lazy data: when read).
    """
    import tensorflow as tf

    da = check_images(da)
    if list(stats.channels) != [str(c) for c in da["feature"].values]:
        da = match_channels(da, stats.channels)
    _, rows, cols, nfeat = (da.sizes[d] for d in IMAGE_DIMS)
    n = rows * cols
    indices = np.arange(da.sizes["image"]) if indices is None else np.asarray(indices)
    mean = tf.constant(np.asarray(stats.mean, dtype=np.float32))
    inv_std = tf.constant(1.0 / np.asarray(stats.std, dtype=np.float32))
    value_dtype = tf.as_dtype(np.dtype(da.dtype)) if np.dtype(da.dtype).kind in "iuf" else tf.float32

    has_avail = "available" in da.coords

    def pack(values, mask, covered, available):
        b = len(values)
        out = (values.reshape(b, n, nfeat), mask.reshape(b, n), covered.reshape(b, n))
        return out + ((available.reshape(b, n, nfeat),) if has_avail else ())

    if not _is_lazy(da):
        block_all = next(iter_blocks(da, indices, block=max(len(indices), 1), coverage=True))
        _check_finite(block_all[0], block_all[1])
        ds = tf.data.Dataset.from_tensor_slices(pack(*block_all))
    else:
        def gen():
            for parts in iter_blocks(da, indices, block=block, coverage=True):
                _check_finite(parts[0], parts[1])
                yield pack(*parts)

        spec = (tf.TensorSpec((None, n, nfeat), value_dtype), tf.TensorSpec((None, n), tf.bool),
                tf.TensorSpec((None, n), tf.bool))
        if has_avail:
            spec += (tf.TensorSpec((None, n, nfeat), tf.bool),)
        ds = tf.data.Dataset.from_generator(gen, output_signature=spec).unbatch()
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(indices)))  # Keras then knows the epoch length
    if shuffle_buffer and shuffle_buffer > 1:
        ds = ds.shuffle(min(int(shuffle_buffer), max(len(indices), 1)), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    log1p = bool(getattr(stats, "log1p", False))

    def normalize(x, w, c, v=None):
        x = tf.cast(x, tf.float32)
        e = tf.cast(tf.reduce_any(x > 0, axis=-1), tf.float32)  # the cell has a count (before the log)
        if log1p:
            x = tf.math.log1p(x)
        out = {"x": (x - mean) * inv_std, "w": tf.cast(w, tf.float32), "c": tf.cast(c, tf.float32), "e": e}
        if v is not None:
            out["v"] = tf.cast(v, tf.float32)
        return out

    # No tf.data autotuning: its optimization thread wakes at periods that double (10 ms, 20 ms, 40 ms, ...),
    # and Keras' deletion of an epoch's iterator waited for the next wake-up, so an epoch's end stalled for up to
    # its own length (a 15 s epoch 5 s, a 29 s one 12 s; benchmarks/RESULTS.md). The map is light and costs the
    # same every batch: one parallel call per available core (2 to 8) and two prefetched batches keep the step
    # fed (on a GPU host with many cores the step is short, so the map gets more of them)
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.map(normalize, num_parallel_calls=_map_calls()).prefetch(2).with_options(options)


def _check_finite(values, observed) -> None:
    """Refuse NaN/inf pixel values: they made the loss NaN, and fit blamed the learning rate after an epoch."""
    if values.dtype.kind not in "fc" or np.isfinite(values).all():
        return
    bad = ~np.isfinite(values).all(axis=-1)
    n_obs = int((bad & observed).sum())
    raise InvalidInputError(
        f"the images hold NaN/inf values in {int(bad.sum())} pixel(s), {n_obs} of them observed (with a row in the "
        "table); the model reads every pixel, so one makes the loss NaN. A pixel without a row is an empty cell (or "
        "uncovered, left out of the loss): rasterize with fill=0, not fill=np.nan (or da.fillna(0) where no row is); "
        "drop or fill observed channels with NaN (e.g. a 'mean' extra of a cell without values)")


def _map_calls() -> int:
    """Parallel calls of ``make_dataset``'s map: the cores this process may use, at least 2 and at most 8."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 2
    return max(2, min(8, cores))
