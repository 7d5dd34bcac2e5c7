"""Which pixels :func:`geos2vec.model.embed.embed` gives a vector, and the loops that encode them.

``"contextual"`` (seamless, :mod:`geos2vec.model.context`) and ``"tiled"`` embed target pixels: the cells given,
or every observed pixel, or every pixel (:func:`_targets`). The images are read a block at a time
(:func:`_loader`), their values checked finite (:func:`_check_finite`), and encoded by the ``encode(values,
covered)`` that ``embed`` passes in (its ``contextual_tokens``).
"""

from __future__ import annotations

import numpy as np

from .. import cells as _cells
from ..errors import InvalidInputError


def _progress(total, verbose, desc):
    from tqdm.auto import tqdm

    from ..options import progress

    # leave=None: left on screen unless inside another bar (a user's loop), where it is cleared when done
    return tqdm(total=total, disable=not progress(verbose), desc=desc, unit="img", leave=None)


def _check_finite(values: np.ndarray, cells, channels) -> None:
    """Raise :class:`~geos2vec.errors.InvalidInputError` where ``values`` holds NaN or inf.

    Parameters
    ----------
    values : numpy.ndarray
        Pixels the encoder reads, shape ``(..., channels)``; integer values are always finite.
    cells : callable
        ``cells()`` gives the cell ids of the pixels (shape ``values.shape[:-1]``); called only when some
        value is not finite.
    channels : sequence of str
        The channel names (the last axis).

    Raises
    ------
    InvalidInputError
        Naming how many values are not finite, in which cells and channels, and how to fill them: one NaN
        would make every vector whose window reads its pixel NaN.
    """
    if values.dtype.kind in "iub" or values.size == 0:
        return
    finite = np.isfinite(values)
    if finite.all():
        return
    bad = ~finite.reshape(-1, values.shape[-1])
    pix = bad.any(axis=1)
    ids = np.asarray(cells(), dtype=np.uint64).ravel()[pix]
    chans = [str(channels[k]) for k in np.flatnonzero(bad.any(axis=0))[:5]]
    raise InvalidInputError(
        f"the data the encoder reads has {int(bad.sum())} NaN/inf value(s) in {int(pix.sum())} cell(s) (e.g. "
        f"{list(_cells.cell_to_token(ids[:5]))}) and channel(s) {chans}; the encoder cannot embed them (each "
        "would make every vector that reads it NaN): rasterize with a finite fill (rasterize(..., fill=0), not "
        "fill=np.nan), or fill them (da.fillna(0), table.fillna(0))")


def _targets(da, cells, model):
    """Image position, row, col and cell id of every pixel to embed, in output order."""
    rows, cols = da.sizes["row"], da.sizes["col"]
    cid = da["cell_id"]
    if isinstance(cells, str):
        if cells == "observed":
            obs = np.asarray(da["observed"].transpose("image", "row", "col").values, dtype=bool) \
                if "observed" in da.coords else np.ones((da.sizes["image"], rows, cols), bool)
            img, row, col = np.nonzero(obs)
        else:
            img, row, col = (a.ravel() for a in np.indices((da.sizes["image"], rows, cols)))
        ids = np.asarray(cid.transpose("image", "row", "col").values, dtype=np.uint64)[img, row, col]
        return img, row, col, ids
    ids = np.atleast_1d(_cells._as_cells(cells)).ravel()
    images = np.asarray(da["image"].values, dtype=np.uint64)
    image_level = int(_cells.get_level(images[:1])[0]) if images.size else model.image_level
    pix, lv = image_level + int(np.log2(rows)), np.asarray(_cells.get_level(ids)) if ids.size else ids
    if ids.size and (lv != pix).any():
        raise InvalidInputError(f"cells must be level-{pix} cells (the images' pixels), got level(s) "
                                f"{sorted(set(lv.tolist()))}; map finer ones with cell_to_parent(cells, {pix})")
    parent = _cells.cell_to_parent(ids, image_level) if ids.size else ids
    order = np.argsort(images, kind="stable")
    p = np.searchsorted(images[order], parent).clip(0, max(images.size - 1, 0))
    found = images[order][p] == parent if images.size else np.zeros(ids.size, bool)
    if not found.all():
        bad = _cells.cell_to_token(ids[~found][:5])
        raise InvalidInputError(f"{int((~found).sum())} of the cells lie in no image of the data (e.g. "
                                f"{list(bad)}); rasterize their images too (rasterize(..., images=...))")
    row, col = _cells.cell_to_rowcol(ids, image_level) if ids.size else (ids.astype(np.int64),) * 2
    return order[p], np.asarray(row, np.int64), np.asarray(col, np.int64), ids


def _pixel_cells(da, idx, image_ids):
    """Cell ids ``(len(idx), row, col)`` of images ``idx`` (their image cells where no ``cell_id`` is given)."""
    if "cell_id" in da.coords:
        return np.asarray(da["cell_id"].transpose("image", "row", "col").isel(image=idx).values, np.uint64)
    return np.broadcast_to(np.asarray(image_ids, np.uint64)[:, None, None],
                           (len(image_ids), da.sizes["row"], da.sizes["col"]))


def _loader(da):
    """``load(idx)``: raw float32 values and covered mask of images ``idx`` (sorted positions).

    NaN/inf values raise (:func:`_check_finite`), once per loaded block of images.
    """
    data = da.data
    cov = np.asarray(da["covered"].transpose("image", "row", "col").values, bool) if "covered" in da.coords \
        else None
    channels = [str(c) for c in da["feature"].values]
    counts = da.dtype.kind in "iub"  # integer counts are finite in float32 too: nothing to check

    def load(idx):
        vals = np.asarray(data[idx] if isinstance(data, np.ndarray) else da.isel(image=idx).values, np.float32)
        if not counts:
            _check_finite(vals, lambda: _pixel_cells(da, idx, np.asarray(da["image"].values)[idx]), channels)
        return vals, (np.ones(vals.shape[:3], bool) if cov is None else cov[idx])

    return load


def _seamless(model, da, img, row, col, context, batch_size, block, verbose, encode):
    """Vectors of the target pixels from windows around them (see :mod:`geos2vec.model.context`).

    ``encode(values, covered)`` gives the encoder tokens of raw image values (``embed``'s ``contextual_tokens``).
    """
    from .context import FaceGrid, corner_pixels, encode_windows, gather_windows, target_pixels, window_plan

    n = da.sizes["row"]
    grid = FaceGrid(da, n)  # refuses flipped or rotated images (augment)
    out = np.empty((img.size, model.embedding_dim), dtype=np.float32)
    load = _loader(da)
    order = np.argsort(img, kind="stable")  # blocks of whole images in image order
    uimg, starts = np.unique(img[order], return_index=True)
    step = max(1, block // 4)
    bounds = list(starts[::step]) + [img.size]
    at_corner = np.zeros(img.size, dtype=bool)
    with _progress(uimg.size, verbose, f"embedding (contextual, {context})") as bar:
        for k in range(len(bounds) - 1):
            sel = order[bounds[k]:bounds[k + 1]]
            f, R, C = target_pixels(grid, img[sel], row[sel], col[sel])
            corners, contrib = window_plan(f, R, C, n, context)
            at_corner[sel] = corner_pixels(grid, corners, contrib, sel.size)
            windows, covered = gather_windows(grid, corners, load)
            out[sel] = encode_windows(encode, windows, covered, contrib, sel.size, model.embedding_dim,
                                      batch_size)
            bar.update(min(step, uimg.size - k * step))
    if at_corner.any():
        from .._stacklevel import warn
        from ..errors import Geos2VecWarning

        cells = np.asarray(da["cell_id"].values)[img[at_corner], row[at_corner], col[at_corner]]
        warn(f"{int(at_corner.sum())} of {img.size} cells (e.g. {_cells.cell_to_token(cells[:3]).tolist()}) lie "
             f"next to a corner of the S2 cube, where only three faces meet: part of their {n}x{n} context "
             "windows lies beyond two face edges at once, where no cell is, and is read as fill (not covered: "
             "empty to a model without a missing token). Their vectors see less context than elsewhere "
             "(docs/model.md, 'Face edges and cube corners')", Geos2VecWarning)
    return out


def _tiled_targets(model, da, img, row, col, block, verbose, encode):
    """Per-image (tiled) contextual vectors of the target pixels only; ``encode`` as for :func:`_seamless`."""
    n = da.sizes["row"]
    out = np.empty((img.size, model.embedding_dim), dtype=np.float32)
    uimg, inv = np.unique(img, return_inverse=True)
    load = _loader(da)
    with _progress(uimg.size, verbose, "embedding (tiled)") as bar:
        for s in range(0, uimg.size, block):
            idx = uimg[s:s + block]
            vals, cov = load(idx)
            tok = encode(vals, cov)
            m = (inv >= s) & (inv < s + idx.size)
            out[m] = tok[inv[m] - s, row[m] * n + col[m]]
            bar.update(idx.size)
    return out
