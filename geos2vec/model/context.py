"""Seamless contextual embeddings: every cell is encoded in a window around it.

The encoder sees ``n x n`` pixels (16 x 16 level-12 cells for the bundled model). Encoding each level-8 image
on its own (``mode="tiled"``, the v0.1 behaviour) gives a cell near an image border context on one side only,
and cells of one image share a flavour that changes abruptly at the border: the image becomes a region code.
Here the windows are placed on the face grid of :func:`geos2vec.raster.windows` (images of one S2 face tile a
common grid of cells) at stride ``n / 2``, straddling image borders, and each cell takes its vector from the
windows that hold it (``"blend"`` is the default of :func:`geos2vec.model.embed.embed`):

``"centred"``
    Windows whose central ``n/2 x n/2`` block is one level-9 cell (corners at ``n/2 * k - n/4``). Each cell
    takes the token of the one window in whose centre it lies, so it has at least ``n/4`` cells of context on
    every side. Costs 4 windows per image where every quarter is needed.
``"blend"``
    Windows at corners ``n/2 * k``; each cell takes the mean of the tokens of the four windows that hold it,
    weighted by closeness to each window's centre (bilinear tent weights, summing to 1). Continuous across
    every window border; up to 9 windows per isolated image, about 4 per image in a contiguous area.

A window that reaches beyond the edge of its S2 face continues on the neighbouring face, as
:func:`geos2vec.cells.grid_disk` does: each pixel beyond the edge is the cell at that place of the face grid
unfolded across the edge (``S2CellId::FromFaceIJWrap``), so the window holds the true neighbouring cells in this
face's orientation although the neighbouring face's own grid is rotated against it. Within ``n`` cells of a
cube corner only three faces meet: pixels beyond two face edges at once lie nowhere and are fill.

Pixels of a window that fall in images not given, or beyond two face edges at a cube corner, are fill (value 0)
and *not covered*: a model with a missing token sees the token there, unlike unobserved pixels inside an image,
which are covered fill.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import cells as _cells

if TYPE_CHECKING:
    import xarray as xr
    from numpy.typing import ArrayLike

__all__ = ["CONTEXTS", "FaceGrid", "corner_pixels", "target_pixels", "window_plan", "encode_windows"]

CONTEXTS = ("centred", "blend")


class FaceGrid:
    """Where each image of a DataArray lies on its face's grid of ``n x n``-pixel images.

    Parameters
    ----------
    images : xarray.DataArray or array_like of uint64
        The images (a DataArray from :func:`geos2vec.raster.rasterize`, whose ``image`` coordinate is used),
        or their image cell ids.
    n : int
        Pixels per image side.

    Raises
    ------
    InvalidInputError
        Images of several levels, or images that are not where their ids say: repeated image ids, or (for a
        DataArray) flipped or rotated images (a non-zero ``transform`` coordinate from
        :func:`geos2vec.raster.augment`), whose pixels would be read turned.
    """

    def __init__(self, images: xr.DataArray | ArrayLike, n: int):
        from ..errors import InvalidInputError
        from ..raster.views import _check_unaugmented, _check_unique_images

        caller = "seamless contextual embedding"
        if hasattr(images, "dims") and hasattr(images, "coords"):  # an image DataArray
            _check_unaugmented(images, caller)
            images = images["image"].values
        images = np.asarray(images, dtype=np.uint64)
        levels = np.asarray(_cells.get_level(images)) if images.size else np.array([8])
        self.level = int(levels.min())
        if images.size and (levels != self.level).any():
            raise InvalidInputError("seamless contextual embeddings need images of one level")
        _check_unique_images(images, caller)
        self.n = int(n)
        self.side = 1 << self.level
        face, fi, fj = _cells.cell_to_face_ij(images)
        self.face = np.asarray(face, dtype=np.int64)
        self.gr, self.gc = (np.asarray(a, dtype=np.int64) for a in
                            _cells._rowcol_from_ij(self.face, np.asarray(fi), np.asarray(fj), self.side))
        keys = self._key(self.face, self.gr, self.gc)
        self._order = np.argsort(keys, kind="stable")
        self._sorted = keys[self._order]

    def _key(self, face, gr, gc):
        return (face * self.side + gr) * self.side + gc

    def lookup(self, face, R, C):
        """Image position (or -1) and in-image row/col of global pixels ``(face, R, C)``.

        Parameters
        ----------
        face, R, C : numpy.ndarray of int64
            Face and global row and column (pixels of the face grid, ``0 <= R, C < 2**level * n``) of each
            pixel; arrays of one shape.

        Returns
        -------
        img : numpy.ndarray of int64
            Position of the pixel's image in the ``images`` given to the constructor, -1 where no given
            image holds the pixel or it lies beyond two face edges at once (next to a cube corner). A pixel
            beyond one face edge is the cell there on the neighbouring face (the face grid unfolded across the
            edge, as :func:`geos2vec.cells.grid_disk` walks it).
        row, col : numpy.ndarray of int64
            The pixel's row and column inside its image (0 for pixels beyond two face edges).
        """
        n, total = self.n, self.side * self.n
        face, R, C = np.broadcast_arrays(*(np.asarray(a, dtype=np.int64) for a in (face, R, C)))
        inside = (R >= 0) & (C >= 0) & (R < total) & (C < total)
        if not inside.all():  # beyond the face's edge: the neighbouring face's cell, unfolded (grid_disk's wrap)
            face, R, C, inside = _across_face_edge(face, R, C, total)
        Rc, Cc = np.where(inside, R, 0), np.where(inside, C, 0)
        k = self._key(face, Rc // n, Cc // n)
        if self._sorted.size == 0:
            return np.full(k.shape, -1, np.int64), Rc % n, Cc % n
        p = np.searchsorted(self._sorted, k).clip(0, self._sorted.size - 1)
        found = inside & (self._sorted[p] == k)
        return np.where(found, self._order[p], -1), Rc % n, Cc % n


def _across_face_edge(face, R, C, total):
    """Global pixels ``(face, R, C)`` moved onto the face that holds them, across at most one face edge.

    ``total`` pixels per face side. The face grid is unfolded across the edge the way ``S2CellId::FromFaceIJWrap``
    (and :func:`geos2vec.cells.grid_disk`, whose table of edges this uses) crosses it: the cells along a common
    edge are shared, so the pixel at distance ``d`` beyond the edge is the cell ``d`` deep into the other face.
    Returns ``face, R, C, ok`` (``R, C`` in the other face's frame); ``ok`` is False for pixels beyond two face
    edges at once (around a cube corner, where only three faces meet) and for pixels more than a face away.
    """
    from ..cell_neighbours import _EDGE_NBR

    swapped = face >= 3
    i = np.where(swapped, R, C)  # inverse of cells._rowcol_from_ij
    j = np.where(swapped, C, total - 1 - R)
    out_i = (i < 0) | (i >= total)
    out_j = (j < 0) | (j >= total)
    one = out_i ^ out_j
    ok = ~(out_i | out_j) | (one & (i >= -total) & (i < 2 * total) & (j >= -total) & (j < 2 * total))
    edge = np.where(out_i, np.where(i < 0, 0, 1), np.where(j < 0, 2, 3))
    over = np.where(out_i, np.where(i < 0, -i, i - total + 1), np.where(j < 0, -j, j - total + 1)) - 1
    along = np.where(out_i, j, i)
    move = one & ok
    nbr = _EDGE_NBR[face[move], edge[move]]
    e2 = nbr[:, 1]
    al = np.where(nbr[:, 2] != 0, total - 1 - along[move], along[move])
    across = np.where(e2 & 1, total - 1 - over[move], over[move])
    i, j, face = i.copy(), j.copy(), face.copy()
    i[move] = np.where(e2 < 2, across, al)
    j[move] = np.where(e2 < 2, al, across)
    face[move] = nbr[:, 0]
    R, C = _cells._rowcol_from_ij(face, i, j, total)
    return face, np.asarray(R, np.int64), np.asarray(C, np.int64), ok


def target_pixels(grid: FaceGrid, img: np.ndarray, row: np.ndarray, col: np.ndarray):
    """Global face-grid coordinates ``(face, R, C)`` of pixels ``(row, col)`` of images ``img``.

    Parameters
    ----------
    grid : FaceGrid
        The grid of the images.
    img : numpy.ndarray of int
        Position of each pixel's image in the grid's images.
    row, col : numpy.ndarray of int
        Row and column of each pixel inside its image.

    Returns
    -------
    face, R, C : numpy.ndarray of int64
        The face of each pixel and its row and column on that face's grid of pixels.
    """
    n = grid.n
    return grid.face[img], grid.gr[img] * n + row, grid.gc[img] * n + col


def window_plan(face, R, C, n: int, context: str = "centred"):
    """The windows the target pixels need and how each pixel's vector is made of their tokens.

    Parameters
    ----------
    face, R, C : array_like of int
        Global face-grid coordinates of the target pixels (:func:`target_pixels`), 1-D.
    n : int
        Side of a window in pixels (the model's grid); divisible by 4.
    context : {"centred", "blend"}
        Window placement (see the module docs): one window per pixel, or four tent-weighted ones.

    Returns
    -------
    corners : numpy.ndarray of int64, shape (W, 3)
        ``(face, R0, C0)`` of the windows' top-left pixels, unique.
    contributions : dict of 1-D numpy.ndarray
        ``pixel`` (index into the targets), ``window`` (row of ``corners``), ``pos`` (token index
        ``r * n + c`` in the window), ``weight`` (1 with ``"centred"``; with ``"blend"`` the four weights of a
        pixel sum to 1) and ``quad`` (0-3; within one quad every pixel appears at most once), sorted by
        ``window``.

    Raises
    ------
    InvalidInputError
        (a ``ValueError``) An unknown ``context``, or ``n`` not divisible by 4.
    """
    from ..errors import InvalidInputError

    if context not in CONTEXTS:
        raise InvalidInputError(f"context must be one of {CONTEXTS}, got {context!r}")
    if n % 4:
        raise InvalidInputError(f"seamless contextual embeddings need a grid side divisible by 4, got {n}x{n} "
                                "images; embed them with mode='tiled', or train on larger images (a lower "
                                "rasterize(..., image_level=...))")
    h = n // 2
    face, R, C = (np.asarray(a, dtype=np.int64) for a in (face, R, C))
    pix = np.arange(R.size, dtype=np.int64)
    if context == "centred":
        r0 = (R // h) * h - h // 2
        c0 = (C // h) * h - h // 2
        parts = [(pix, r0, c0, np.ones(R.size), np.zeros(R.size, np.int64))]
    else:
        parts = []
        for a in (0, 1):
            r0 = (R // h) * h - h * a
            wr = 1.0 - np.abs(R - r0 + 0.5 - h) / h
            for b in (0, 1):
                c0 = (C // h) * h - h * b
                wc = 1.0 - np.abs(C - c0 + 0.5 - h) / h
                parts.append((pix, r0, c0, wr * wc, np.full(R.size, 2 * a + b, np.int64)))
    p = np.concatenate([q[0] for q in parts])
    r0 = np.concatenate([q[1] for q in parts])
    c0 = np.concatenate([q[2] for q in parts])
    w = np.concatenate([q[3] for q in parts])
    quad = np.concatenate([q[4] for q in parts])
    f = np.tile(face, len(parts))
    corners, win = np.unique(np.stack([f, r0, c0], axis=1), axis=0, return_inverse=True)
    win = np.asarray(win).ravel()
    pos = (np.tile(R, len(parts)) - r0) * n + (np.tile(C, len(parts)) - c0)
    order = np.argsort(win, kind="stable")
    contrib = {"pixel": p[order], "window": win[order], "pos": pos[order], "weight": w[order],
               "quad": quad[order]}
    return corners.reshape(-1, 3), contrib


def corner_pixels(grid: FaceGrid, corners: np.ndarray, contrib: dict, n_pixels: int) -> np.ndarray:
    """Which target pixels take a token of a window that reaches beyond two face edges (a cube corner).

    Parameters
    ----------
    grid : FaceGrid
        The grid of the images.
    corners, contrib :
        The windows and contributions of :func:`window_plan`.
    n_pixels : int
        Number of target pixels.

    Returns
    -------
    numpy.ndarray of bool, shape (n_pixels,)
        True for pixels with such a window: part of its context lies nowhere (fill).
    """
    total, n = grid.side * grid.n, grid.n
    face, r0, c0 = corners[:, 0], corners[:, 1], corners[:, 2]
    swapped = face >= 3  # the window's extent in i and j (rows and columns swap on faces 3-5)
    lo_i, lo_j = np.where(swapped, r0, c0), np.where(swapped, c0, total - r0 - n)
    out_i = (lo_i < 0) | (lo_i + n > total)
    out_j = (lo_j < 0) | (lo_j + n > total)
    hit = np.zeros(n_pixels, dtype=bool)
    hit[contrib["pixel"][(out_i & out_j)[contrib["window"]]]] = True
    return hit


def gather_windows(grid: FaceGrid, corners: np.ndarray, load):
    """Raw window values ``(W, n, n, F)`` (fill 0 where no image) and their covered mask ``(W, n, n)``.

    ``load(idx)`` returns the values of images ``idx`` (sorted unique positions) as ``(len(idx), n, n, F)``
    and their covered mask ``(len(idx), n, n)``. Pixels in no image are not covered.
    """
    n = grid.n
    off = np.arange(n)
    R = corners[:, 1][:, None, None] + off[None, :, None]
    C = corners[:, 2][:, None, None] + off[None, None, :]
    F = np.broadcast_to(corners[:, 0][:, None, None], R.shape)
    img, lr, lc = grid.lookup(F, R, C)
    found = img >= 0
    need = np.unique(img[found])
    vals, cov = load(need)
    out = np.zeros((corners.shape[0], n, n, vals.shape[-1]), dtype=np.float32)
    covered = np.zeros((corners.shape[0], n, n), dtype=bool)
    if need.size:
        local = np.searchsorted(need, img[found])
        out[found] = vals[local, lr[found], lc[found]]
        covered[found] = cov[local, lr[found], lc[found]]
    return out, covered


def encode_windows(encode, windows: np.ndarray, covered: np.ndarray, contrib: dict, n_pixels: int, dim: int,
                   batch_size: int = 256) -> np.ndarray:
    """Each target pixel's vector from the tokens of its windows.

    ``encode(x, covered)`` maps raw windows ``(B, n, n, F)`` and their covered mask to tokens
    ``(B, n * n, dim)``. Windows are encoded in batches; only the tokens the pixels use are kept.

    Parameters
    ----------
    encode : callable
        ``encode(x, covered) -> (B, n * n, dim)`` tokens, as above.
    windows : numpy.ndarray, shape (W, n, n, F)
        Raw window values (:func:`gather_windows`), in the order of the ``corners`` of :func:`window_plan`.
    covered : numpy.ndarray of bool, shape (W, n, n)
        Their covered mask.
    contrib : dict
        The contributions of :func:`window_plan` (sorted by ``window``).
    n_pixels : int
        Number of target pixels.
    dim : int
        Length of a token (the embedding dimension).
    batch_size : int
        Windows per ``encode`` call.

    Returns
    -------
    numpy.ndarray of float32, shape (n_pixels, dim)
        Per target pixel, the token of its window (``"centred"``: every weight is 1) or the weighted sum of
        the tokens of its windows (``"blend"``).
    """
    out = np.zeros((n_pixels, dim), dtype=np.float32)
    win = contrib["window"]
    blend = bool((contrib["weight"] != 1.0).any())
    for s in range(0, windows.shape[0], batch_size):
        e = min(s + batch_size, windows.shape[0])
        tok = np.asarray(encode(windows[s:e], covered[s:e]), dtype=np.float32)
        a, b = np.searchsorted(win, [s, e])
        sel = slice(a, b)
        pix, w_idx, pos = contrib["pixel"][sel], win[sel] - s, contrib["pos"][sel]
        if not blend:
            out[pix] = tok[w_idx, pos]
            continue
        wt, quad = contrib["weight"][sel], contrib["quad"][sel]
        # quads in the order their windows sort (corners (face, R0, C0): quad 3 < 2 < 1 < 0), so each pixel's
        # float32 sum runs in one order however the windows fall into batches (batch_size, block, the other cells)
        for q in (3, 2, 1, 0):
            m = quad == q
            out[pix[m]] += (wt[m, None] * tok[w_idx[m], pos[m]]).astype(np.float32)
    return out
