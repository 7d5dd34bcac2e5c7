"""Embeddings from a trained S2Vec model.

Modes
-----
``"contextual"`` (default)
    Seamless: each cell is encoded, unmasked, in windows of the model's grid
    size placed around it on the face grid, straddling image borders
    (:mod:`geos2vec.model.context`); ``context="blend"`` (default) takes a
    tent-weighted mean of the four windows that hold the cell,
    ``context="centred"`` the token of the window in whose centre it lies. The vector reflects
    the cell's neighbourhood on every side and does not jump at image borders.
``"tiled"``
    The v0.1 contextual mode (``"contextual"`` before 0.2): the encoder runs
    on each full image on its own; each pixel's output token is its cell's
    vector. Cheaper (one pass per image), but cells near an image border see
    one-sided context, and the image acts as a region code (seams).
``"patch"``
    The paper's literal reading: the trained patch encoder (the linear patch
    projection, without position embedding) applied to each cell's own
    normalized feature vector. Works on an image DataArray or directly on a
    cell-feature table.
``"image"``
    The mean of the ``"tiled"`` tokens (the image encoded on its own) over all
    pixels of an image: one vector per image cell (e.g. level 8).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import cells as _cells
from ..errors import InvalidInputError, InvalidTypeError
from ..provenance import flat_attrs, model_name, provenance, record_from_attrs
from .config import architecture, check_architecture
from .._fork import tf_forked
from ._embed_targets import _check_finite, _pixel_cells, _progress, _seamless, _targets, _tiled_targets
from ._embed_targets import _loader as _loader  # re-exported: importable from here, as before the split
from .data import check_images, check_levels, iter_blocks, match_channels

__all__ = ["MODES", "embed", "embeddings_to_frame"]

MODES = ("contextual", "tiled", "patch", "image")


def _encoder_fn(keras_model):
    """A traced encoder for fixed-shape batches (cached on the model)."""
    fn = getattr(keras_model, "_geos2vec_encode_fn", None)
    if fn is None:
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def fn(x, c):
            return tf.cast(keras_model.encode(x, training=False, covered=c), tf.float32)

        keras_model._geos2vec_encode_fn = fn
    return fn


def contextual_tokens(keras_model, stats, values: np.ndarray, batch_size: int, numpy_weights=None,
                      num_heads: int = 8, covered=None) -> np.ndarray:
    """Encoder tokens ``(images, rows*cols, dim)`` of raw (unnormalized) image values.

    With ``keras_model=None`` the encoder runs in NumPy from ``numpy_weights`` (no TensorFlow). ``covered``
    ``(images, rows, cols)`` bool (default: all True) feeds a model's missing token (ignored without one).
    """
    b, r, c, f = values.shape
    x = stats.transform(values.reshape(b, r * c, f).astype(np.float32, copy=False)).astype(np.float32, copy=False)
    cov = np.ones((b, r * c), np.float32) if covered is None else \
        np.asarray(covered, np.float32).reshape(b, r * c)
    if keras_model is None:
        from ..options import blas_threads
        from .numpy_encoder import encode

        dim = numpy_weights["patch_embed/kernel"].shape[1]
        out = np.empty((b, r * c, dim), dtype=np.float32)
        with blas_threads():  # geos2vec.set_options(threads=...): no oversubscription on shared machines
            for s in range(0, b, batch_size):
                out[s:s + batch_size] = encode(numpy_weights, x[s:s + batch_size], num_heads,
                                               cov[s:s + batch_size])
        return out
    fn = _encoder_fn(keras_model)
    out = np.empty((b, r * c, keras_model.embedding_dim), dtype=np.float32)
    for s in range(0, b, batch_size):
        out[s:s + batch_size] = fn(x[s:s + batch_size], cov[s:s + batch_size]).numpy()
    return out


def _check_table(data: pd.DataFrame, model, cols: list) -> np.ndarray:
    """The cell ids of a ``"patch"``-mode feature table's index, validated; its channel columns ``cols`` finite."""
    idx = data.index
    level = getattr(model, "patch_level", None)
    need = f"level-{level} cell ids" if level is not None else "S2 cell ids"
    if len(idx) and (not pd.api.types.is_integer_dtype(idx.dtype) or idx.hasnans):
        raise InvalidTypeError(f"the feature table must be indexed by {need} (uint64, index named cell_id), got "
                               f"index dtype {idx.dtype}{' with missing values' if idx.hasnans else ''}; set it "
                               "with table.set_index('cell_id'), or convert S2 tokens with geos2vec.token_to_cell")
    ids = np.asarray(idx.to_numpy()).astype(np.uint64)
    bad = ~np.asarray(_cells.is_valid_cell(ids), bool) if ids.size else np.zeros(0, bool)
    if level is not None and (~bad).any():
        bad[~bad] = np.asarray(_cells.get_level(ids[~bad])) != level
    if bad.any():
        raise InvalidInputError(
            f"the feature table must be indexed by {need} (the cells the model embeds), but {int(bad.sum())} of "
            f"its {ids.size} index value(s) are not (e.g. {list(idx[bad][:5])}); set the index with "
            "table.set_index('cell_id') (count_features tables have it), or convert S2 tokens with "
            "geos2vec.token_to_cell")
    sub = data[cols]  # channel_columns refused duplicate and missing channels
    # integer counts cannot hold NaN: check float and nullable columns only
    maybe = [k for k, dt in enumerate(sub.dtypes)
             if dt.kind not in "iub" or pd.api.types.is_extension_array_dtype(dt)]
    if maybe:
        _check_finite(sub.iloc[:, maybe].to_numpy(dtype=np.float64, na_value=np.nan), lambda: ids,
                      [sub.columns[k] for k in maybe])
    return ids


def patch_vectors(keras_model, stats, values: np.ndarray, numpy_weights=None, block: int = 8192) -> np.ndarray:
    """The patch projection of each row of ``values`` (raw features, last axis = channels).

    Parameters
    ----------
    keras_model : keras.Model or None
        The trained masked autoencoder, or ``None`` for a compact model (then ``numpy_weights`` is used).
    stats : FeatureStats
        The model's normalization (folded into the projection).
    values : numpy.ndarray
        Raw feature values, any numeric dtype, last axis = the model's channels.
    numpy_weights : dict, optional
        The compact model's weights (``patch_embed/kernel``, ``patch_embed/bias``).
    block : int
        Rows per step: each block is converted to float32, log-transformed and projected straight into the
        result, so no full-size float32 copy of ``values`` is made.

    Returns
    -------
    numpy.ndarray
        ``(rows, embedding_dim)`` float32, rows in the order of ``values.reshape(-1, channels)``.
    """
    if keras_model is None:
        kernel = np.asarray(numpy_weights["patch_embed/kernel"], dtype=np.float32)
        bias = np.asarray(numpy_weights["patch_embed/bias"], dtype=np.float32)
    else:
        kernel = np.asarray(keras_model.patch_embed.kernel.numpy(), dtype=np.float32)
        bias = np.asarray(keras_model.patch_embed.bias.numpy(), dtype=np.float32)
    # fold the normalization into the projection: ((x - m) / s) W + b = x (W / s) + (b - (m / s) W)
    inv = (1.0 / np.asarray(stats.std, dtype=np.float32))[:, None]
    w = kernel * inv
    b0 = bias - ((np.asarray(stats.mean, dtype=np.float32)[None, :] * inv.T) @ kernel)[0]
    flat = values.reshape(-1, values.shape[-1])
    log = getattr(stats, "log1p", False)
    if log and flat.size and np.nanmin(flat) <= -1:
        low = np.nanmin(flat, axis=0)
        names = [str(stats.channels[k]) for k in np.flatnonzero(low <= -1)[:5]]
        raise InvalidInputError(f"log1p normalization needs values > -1 (counts are >= 0); channel(s) {names} "
                                f"have values down to {float(low.min())}: fix or drop those cells")
    from ..options import blas_threads

    out = np.empty((flat.shape[0], w.shape[1]), dtype=np.float32)
    # block by block: a block's float32 copy stays in cache for the log and the product (a DataFrame's
    # values are column-major; BLAS multiplies them as they are); under the thread budget like the encoder
    # (two OpenBLAS threads with one core busy elsewhere ran this 2x slower)
    with blas_threads():
        for s in range(0, flat.shape[0], int(block)):
            xb = np.array(flat[s:s + block], dtype=np.float32, order="K")
            if log:
                np.log1p(xb, out=xb)
            ob = out[s:s + block]
            if len(xb) == 1:  # NumPy takes one row to gemv, whose sums round unlike gemm's: pad it to two rows
                ob[:] = np.matmul(np.concatenate([xb, xb]), w)[:1]
            else:
                np.matmul(xb, w, out=ob)
            ob += b0  # while the block is in cache
    return out


def embed(model, data, mode: str = "contextual", *, batch_size: int = 256, cells="observed",
          context: str = "blend", block: int = 1024, as_frame: bool = False, verbose: bool | None = None):
    """Embed images (or, for ``mode="patch"``, a cell-feature table) with a trained model.

    Parameters
    ----------
    model : S2VecModel
        A trained or loaded model (Keras or compact NumPy weights).
    data : xarray.DataArray or pandas.DataFrame
        The rasterization stage's images; ``"patch"`` mode also takes a
        cell-indexed feature table with the model's channels as columns.
    mode : {"contextual", "tiled", "patch", "image"}
        How the vectors are made (see the module docs); default ``"contextual"``.
    batch_size : int
        Images (windows) per encoder call.
    cells : {"observed", "all"} or array_like of uint64
        Which pixels get a vector: only cells present in the feature table
        (``observed``; the default), every pixel of every image, or exactly
        these cells (``"contextual"``/``"tiled"``; each must lie in an image
        of ``data``; the other images serve as context), in this order.
    context : {"blend", "centred"}
        How ``"contextual"`` windows lie (module docs): ``"blend"`` (default) is seamless everywhere,
        ``"centred"`` needs fewer windows (half for scattered cells, 0.9x over large areas), steps at level 9.
    block : int
        Images processed at a time (bounds the memory used on lazy zarr / dask data); in
        ``"contextual"`` mode the target cells of ``block // 4`` images at a time (about ``block`` windows).
    as_frame : bool
        Return a DataFrame indexed by ``cell_id`` with columns ``s2vec_0 ...``
        instead of a DataArray.
    verbose : bool, optional
        Progress bar; default: ``geos2vec.get_options()["progress"]``. Keras' ``fit`` values are taken too:
        ``"auto"`` is the default, a non-negative integer is a bar when it is not 0.

    Returns
    -------
    xarray.DataArray or pandas.DataFrame
        Named ``"s2vec"``, dims ``("cell", "dim")``, coordinate ``cell``
        (uint64 cell ids: the pixels' cells, or the image cells in ``"image"``
        mode), float32 values, ``attrs["mode"]`` (and ``attrs["context"]`` in ``"contextual"`` mode).
        With ``as_frame=True``: :func:`embeddings_to_frame` of it.

    Raises
    ------
    InvalidInputError
        (a ``ValueError``) An unknown ``mode``, ``context`` or ``cells``, a ``batch_size`` or ``block`` that is
        not a positive integer, an unbuilt model, images whose grid or levels
        do not match the model's, or cell ids that lie in no image of ``data``; NaN or inf in the values the
        encoder reads (the images it encodes, or in ``"patch"`` mode the pixels or table rows it projects),
        e.g. images made with ``rasterize(..., fill=np.nan)``; or a ``"patch"``-mode table whose index is not
        the model's level-``patch_level`` cell ids.
    ValueError
        Images whose channels do not match the model's.
    InvalidTypeError
        (a ``TypeError``) A feature table with a mode other than ``"patch"``, or one not indexed by integer
        cell ids.
    """
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {MODES}, got {mode!r}")
    from .context import CONTEXTS

    if context not in CONTEXTS:
        raise InvalidInputError(f"context must be one of {CONTEXTS}, got {context!r}")
    explicit = not isinstance(cells, str)
    if explicit and mode not in ("contextual", "tiled"):
        raise InvalidInputError(f"cells= as cell ids works with mode='contextual' or 'tiled', not {mode!r}")
    if not explicit and cells not in ("observed", "all"):
        raise InvalidInputError(f"cells must be 'observed', 'all' or an array of cell ids, got {cells!r}")
    verbose = _keras_verbose(verbose)
    for name, value in (("batch_size", batch_size), ("block", block)):
        # a step of 0 raised a bare range() error, a negative one skipped the encoder (zero or garbage vectors)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    npw = getattr(model, "numpy_weights", None)
    if model.keras_model is None and npw is None:
        raise InvalidInputError("the model is not built or trained yet: call fit() or load() first")
    check_architecture(model.config, architecture(model.keras_model) if model.keras_model is not None  # compact:
                       else getattr(model, "weights_architecture", None) or {})  # the architecture loaded
    km, stats = model.keras_model, model.stats
    if km is not None and tf_forked():  # TensorFlow hangs in a process forked after it ran: the NumPy encoder
        from .numpy_encoder import weights_from_keras

        km, npw = None, weights_from_keras(km)
    heads = model.config.num_heads

    if isinstance(data, pd.DataFrame):
        if mode != "patch":
            raise InvalidTypeError(f"mode={mode!r} needs images (an xarray.DataArray from "
                                   "geos2vec.raster.rasterize); a feature table can only be embedded with mode='patch'")
        cols = stats._check_columns(data)  # labels matched as strings: integer column labels too
        ids = _check_table(data, model, cols)
        vec = patch_vectors(km, stats, data[cols].to_numpy(), npw)  # no float32 copy up front
        out = _as_dataarray(vec, ids, mode, model)
        return _to_frame(out, copy=False) if as_frame else out

    da = match_channels(check_images(data), model.channels)
    rows, cols = da.sizes["row"], da.sizes["col"]
    if model.grid is not None and (rows, cols) != tuple(model.grid):
        raise InvalidInputError(f"the model was trained on {model.grid[0]}x{model.grid[1]} images, got {rows}x{cols}")
    check_levels(da, model)
    if mode != "image" and "cell_id" not in da.coords:
        raise InvalidInputError("the image DataArray needs a 'cell_id(image, row, col)' coordinate to name the cells")
    cell_da = da["cell_id"].transpose("image", "row", "col") if "cell_id" in da.coords else None
    image_ids = np.asarray(da["image"].values, dtype=np.uint64) if "image" in da.coords else None
    if mode == "image" and image_ids is None:
        raise InvalidInputError("mode='image' needs an 'image' coordinate with the image cell ids")
    if mode != "patch" and image_ids is not None and cell_da is not None and "transform" not in da.coords:  # flipped
        from ..raster.views import _check_whole_images
        _check_whole_images(image_ids, np.asarray(cell_da.values, np.uint64), rows, cols, int(
            _cells.get_level(image_ids[:1])[0]), f"embed(mode={mode!r})", "embed whole images, then select cells")

    if mode in ("contextual", "tiled"):  # per target pixel (cell ids given, or every observed / every pixel)
        img, row, col, idv = _targets(da, cells, model)

        def encode(values, covered):  # looked up at the call: tests and scripts/layer_probe.py replace it
            return contextual_tokens(km, stats, values, batch_size, npw, heads, covered)

        if mode == "contextual":
            vec = _seamless(model, da, img, row, col, context, batch_size, block, verbose, encode)
        else:
            vec = _tiled_targets(model, da, img, row, col, block, verbose, encode)
        out = _as_dataarray(vec, idv, mode, model)
        if mode == "contextual":
            out.attrs["context"] = context
        return _to_frame(out, copy=False) if as_frame else out

    vecs, ids = [], []
    n_img = da.sizes["image"]
    with _progress(n_img, verbose, f"embedding ({mode})") as bar:
        start = 0
        for values, observed, covered, _ in iter_blocks(da, block=block, coverage=True):
            b = len(values)
            sl = slice(start, start + b)
            if mode == "image":
                _check_finite(values, lambda: _pixel_cells(da, sl, image_ids[sl]), model.channels)
                tok = contextual_tokens(km, stats, values, batch_size, npw, heads, covered)
                vecs.append(tok.mean(axis=1))
                ids.append(image_ids[sl])
            else:
                keep = observed.reshape(b, -1) if cells == "observed" else np.ones((b, rows * cols), bool)
                cid = np.asarray(cell_da.isel(image=sl).values, dtype=np.uint64).reshape(b, -1)
                read = values.reshape(b, rows * cols, -1)[keep]
                _check_finite(read, lambda: cid[keep], model.channels)
                vecs.append(patch_vectors(km, stats, read, npw))
                ids.append(cid[keep])
            start += b
            bar.update(b)
    dim = model.embedding_dim
    vec = np.concatenate(vecs) if vecs else np.empty((0, dim), np.float32)
    idv = np.concatenate(ids) if ids else np.empty(0, np.uint64)
    out = _as_dataarray(vec, idv, mode, model)
    return _to_frame(out, copy=False) if as_frame else out


def _keras_verbose(verbose):
    """``verbose`` as ``progress()`` takes it: Keras' ``"auto"`` and 0/1/2 mapped, anything else refused by name."""
    from ..options import check_progress

    if isinstance(verbose, str) and verbose == "auto":
        return None
    if isinstance(verbose, (int, np.integer)) and not isinstance(verbose, (bool, np.bool_)) and verbose >= 0:
        return bool(verbose)
    return check_progress(verbose, "verbose/progress")


def _as_dataarray(vec, ids, mode, model=None):
    import xarray as xr

    attrs = {"mode": mode, **flat_attrs(provenance(stage="embed", model=model_name(model), mode=mode,
                                                   level=getattr(model, "patch_level", None)))}
    return xr.DataArray(vec.astype(np.float32, copy=False), dims=("cell", "dim"),
                        coords={"cell": np.asarray(ids, dtype=np.uint64), "dim": np.arange(vec.shape[1])},
                        name="s2vec", attrs=attrs)


def embeddings_to_frame(emb) -> pd.DataFrame:
    """A ``(cell, dim)`` embedding DataArray as a DataFrame: index ``cell_id`` (uint64), ``s2vec_0 ...``.

    Parameters
    ----------
    emb : xarray.DataArray
        Embeddings with dims ``("cell", "dim")`` (in any order) and a ``cell`` coordinate of cell ids, as
        :func:`embed` returns them.

    Returns
    -------
    pandas.DataFrame
        One row per cell in the order of ``emb``, index ``cell_id`` (uint64), columns
        ``s2vec_0 ... s2vec_<dim-1>``; its own values (editing the frame leaves ``emb`` as it was).
    """
    return _to_frame(emb, copy=True)


def _to_frame(emb, copy: bool) -> pd.DataFrame:
    """:func:`embeddings_to_frame`; ``copy=False`` hands the frame ``emb``'s array (for a result made here)."""
    values = np.asarray(emb.transpose("cell", "dim").values)
    index = pd.Index(np.asarray(emb["cell"].values, dtype=np.uint64), name="cell_id")
    # copy=False: the frame takes the embedding array (pandas would copy a 2-D array by default); a user's
    # DataArray is copied: the frame shared its memory, so frame.iloc[0, 0] = 0 wrote into the DataArray
    frame = pd.DataFrame(values, index=index, columns=[f"s2vec_{i}" for i in range(values.shape[1])], copy=copy)
    record = record_from_attrs(emb.attrs)
    if record:  # the DataArray's provenance, as a table's (see geos2vec.provenance)
        frame.attrs["geos2vec"] = record
    return frame

