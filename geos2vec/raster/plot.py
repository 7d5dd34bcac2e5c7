"""Maps of one channel: one image, or every image in place (:func:`plot_image`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from .. import cells as _cells
from ..errors import InvalidInputError, InvalidTypeError
from ._common import DIMS, _pixel_coord, _shown

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap

__all__ = ["plot_image"]


# --------------------------------------------------------------------------- plotting
def plot_image(da: xr.DataArray, channel: str | Sequence[str] | None = None,
               image: int | str | np.integer | None = None, *, ax: Axes | None = None,
               cmap: str | Colormap = "viridis", log: bool = True, outline: bool = True, **kwargs: Any) -> Axes:
    """Plot one channel: one image as pixels, or every image as a map.

    Parameters
    ----------
    da : xarray.DataArray
        Output of :func:`rasterize`.
    channel : str or list of str, optional
        Channel name(s); several are summed. Default: the sum of all channels.
    image : int, str or uint64, optional
        One image to show as a ``row x col`` picture: a position, a token or an
        image cell id. Default: a map of all images in longitude/latitude, each
        pixel drawn as its cell polygon (pixels of unknown value light grey; the map
        is drawn across the antimeridian, not split at it). Negative positions and
        booleans raise ``InvalidInputError``. Pixels of unknown value: without
        coverage (no ``covered`` coordinate) those without data (``observed``
        False); with coverage those outside it, and those where none of the
        channels shown is ``available`` (roads in a venue file: unknown, not 0);
        covered pixels without data are known to be empty and drawn as their value
        (the fill, 0).
    ax : matplotlib Axes, optional
        Axes to draw on; default: a new figure (``figsize`` from ``kwargs``, default ``(6, 6)``; ignored with
        ``ax``).
    cmap : str or matplotlib Colormap, default "viridis"
        Colour map of the values.
    log : bool, default True
        Logarithmic colour scale (``log1p``) for counts; values below 0 (normalized features) raise
        ``InvalidInputError``: pass ``log=False`` for them.
    outline : bool, default True
        Outline image cells on the map.
    **kwargs
        Passed to ``Axes.imshow`` (one image) or to the map's ``PolyCollection``; ``vmin``/``vmax`` (on the
        colour scale shown, i.e. in ``log1p`` units with ``log``) work in both, so panels can share one scale.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    if not isinstance(da, xr.DataArray) or da.dims != DIMS:
        got = f", got dims {da.dims}" if isinstance(da, xr.DataArray) else ""
        got += f": transpose first, da.transpose{DIMS}" if got and set(da.dims) == set(DIMS) else ""
        raise InvalidTypeError(f"plot_image needs a DataArray from rasterize with dims {DIMS}{got}")
    feats = list(da["feature"].values)
    if da.sizes["image"] == 0:  # drew an empty frame
        raise InvalidInputError("the DataArray has no images to plot; rasterize a table with rows, or pass "
                                "area=/images= to rasterize")
    if channel is None:
        chans, label = feats, "all channels"
    else:
        chans = [channel] if isinstance(channel, str) or not np.iterable(channel) else list(channel)
        if not chans:  # an empty list drew an all-zero picture with an empty label
            raise InvalidInputError(f"channel is an empty list; name at least one of {_shown(feats)}, or pass "
                                    "channel=None for the sum of all channels")
        unknown = [c for c in chans if c not in feats]
        if unknown:
            raise InvalidInputError(f"unknown channel(s) {unknown}; available: {_shown(feats)}")
        label = " + ".join(map(str, chans))
    figsize = kwargs.pop("figsize", (6, 6))  # never passed on to imshow / PolyCollection
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    sel = da.sel(feature=chans)
    known = _known(da, chans)
    # unknown pixels (NaN) light grey in both views; imshow left them transparent
    cmap = matplotlib.colormaps.get_cmap(cmap).with_extremes(bad="#eeeeee")
    if image is not None:
        pos = _image_position(da, image)
        values = np.asarray(sel.isel(image=pos).sum("feature").values, dtype=float)
        shown = _scale(np.where(known[pos], values, np.nan), log, label)  # unknown pixels hold the fill
        im = ax.imshow(shown, cmap=cmap, interpolation="nearest", **kwargs)
        turn = int(da["transform"].values[pos]) if "transform" in da.coords else 0  # augment: rotated, not north-up
        ax.set_title(f"image {da['token'].values[pos]}" + (f" (transform {turn})" if turn else "") + f": {label}")
        ax.set_xlabel("col")
        ax.set_ylabel("row")
        plt.colorbar(im, ax=ax, shrink=0.8, label=f"log1p({label})" if log else label)
        return ax
    obs = known.reshape(-1)
    cid = _pixel_coord(da, "cell_id", DIMS[:3]).reshape(-1)
    values = np.asarray(sel.sum("feature").values, dtype=float).reshape(-1)
    img_ids = np.asarray(da["image"].values, dtype=np.uint64)
    bnd, ib = _unwrap(_cells.cell_to_boundary(cid)[..., ::-1], _cells.cell_to_boundary(img_ids)[..., ::-1])
    if (~obs).any():
        ax.add_collection(PolyCollection(bnd[~obs], facecolors="#eeeeee", edgecolors="none"))
    clim = kwargs.pop("vmin", None), kwargs.pop("vmax", None)  # PolyCollection takes neither (an AttributeError)
    pc = PolyCollection(bnd[obs], array=_scale(values[obs], log, label), cmap=cmap, edgecolors="none", **kwargs)
    if clim != (None, None):
        pc.set_clim(*clim)
    ax.add_collection(pc)
    if outline:
        ax.add_collection(PolyCollection(ib, facecolors="none", edgecolors="#555555", linewidths=0.6))
    ax.autoscale_view()
    lat_mid = float(np.mean(bnd[..., 1])) if bnd.size else 0.0
    ax.set_aspect(1.0 / max(math.cos(math.radians(lat_mid)), 1e-3))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(label)
    plt.colorbar(pc, ax=ax, shrink=0.8, label=f"log1p({label})" if log else label)
    return ax


def _known(da: xr.DataArray, chans: list) -> np.ndarray:
    """Pixels whose value is known, ``(image, row, col)``: in the coverage of at least one channel shown.

    Before, every observed pixel was drawn as its value: a channel the source lacks (roads of a venue file)
    showed as 0 everywhere, and covered pixels without data (known empty) as unknown.
    """
    if "available" in da.coords:
        avail = da["available"].sel(feature=chans).any("feature")
        return np.asarray(avail.transpose(*DIMS[:3]).values, dtype=bool)
    name = "covered" if "covered" in da.coords else "observed"
    return _pixel_coord(da, name, DIMS[:3]).astype(bool)


def _scale(values: np.ndarray, log: bool, label: str) -> np.ndarray:
    """``log1p`` of counts; negative values (normalized features) were clipped to 0 without a word."""
    if not log:
        return values
    if (values < 0).any():
        raise InvalidInputError(f"log=True draws log1p of counts, but {label} has values down to "
                                f"{np.nanmin(values):.3g} (normalized features?); pass log=False")
    return np.log1p(values)


def _unwrap(bnd: np.ndarray, ib: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes of the polygons made continuous, the map cut at the widest gap between the cells.

    Before, a cell across ±180 spanned the whole map, and cells on both sides of it were drawn 360° apart.
    """
    if bnd.size == 0:
        return bnd, ib
    bnd, ib = bnd.copy(), ib.copy()
    for poly in (bnd, ib):  # each polygon's vertices within 180° of its first one
        lng = poly[..., 0]
        lng -= 360.0 * np.round((lng - lng[:, :1]) / 360.0)
    centre = bnd[..., 0].mean(axis=1)
    c = np.sort(np.unique(np.round(centre, 9)))
    gaps = np.diff(np.r_[c, c[0] + 360.0])
    k = int(np.argmax(gaps))
    if k != len(c) - 1:  # the widest gap is not the one across ±180: cut there, shift what lies west of it
        for poly in (bnd, ib):
            poly[..., 0] += 360.0 * (poly[..., 0].mean(axis=1) <= c[k] + 1e-9)[:, None]
    return bnd, ib


def _image_position(da: xr.DataArray, image) -> int:
    imgs = np.asarray(da["image"].values, dtype=np.uint64)
    if isinstance(image, (bool, np.bool_)) or (isinstance(image, (int, np.integer)) and
                                                not isinstance(image, np.uint64) and int(image) < 0):
        raise InvalidInputError(f"image must be a position 0-{imgs.size - 1}, a token or an image cell id, "
                                f"got {image!r}")
    if isinstance(image, str):
        target = _cells.token_to_cell(image)
    elif isinstance(image, (int, np.integer)) and not isinstance(image, np.uint64) and 0 <= int(image) < imgs.size:
        return int(image)
    else:
        target = np.uint64(image)
    hit = np.flatnonzero(imgs == target)
    if hit.size == 0:
        raise InvalidInputError(f"image {image!r} is not in the DataArray (give a position, token or image cell id)")
    return int(hit[0])
