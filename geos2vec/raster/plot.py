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
        pixel drawn as its cell polygon (unobserved pixels light grey). Negative
        positions and booleans raise ``InvalidInputError``.
    ax : matplotlib Axes, optional
        Axes to draw on; default: a new figure (``figsize`` from ``kwargs``, default ``(6, 6)``; ignored with
        ``ax``).
    cmap : str or matplotlib Colormap, default "viridis"
        Colour map of the values.
    log : bool, default True
        Logarithmic colour scale (``log1p``) for counts.
    outline : bool, default True
        Outline image cells on the map.
    **kwargs
        Passed to ``Axes.imshow`` (one image) or to the map's ``PolyCollection``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    if not isinstance(da, xr.DataArray) or da.dims != DIMS:
        got = f", got dims {da.dims}" if isinstance(da, xr.DataArray) else ""
        got += f": transpose first, da.transpose{DIMS}" if got and set(da.dims) == set(DIMS) else ""
        raise InvalidTypeError(f"plot_image needs a DataArray from rasterize with dims {DIMS}{got}")
    feats = list(da["feature"].values)
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
    if image is not None:
        pos = _image_position(da, image)
        values = np.asarray(sel.isel(image=pos).sum("feature").values, dtype=float)
        obs = _pixel_coord(da, "observed", DIMS[:3])[pos]
        shown = np.where(obs, np.log1p(np.clip(values, 0, None)) if log else values, np.nan)
        im = ax.imshow(shown, cmap=cmap, interpolation="nearest", **kwargs)
        ax.set_title(f"image {da['token'].values[pos]}: {label}")
        ax.set_xlabel("col")
        ax.set_ylabel("row")
        plt.colorbar(im, ax=ax, shrink=0.8, label=f"log1p({label})" if log else label)
        return ax
    obs = _pixel_coord(da, "observed", DIMS[:3]).reshape(-1)
    cid = _pixel_coord(da, "cell_id", DIMS[:3]).reshape(-1)
    values = np.asarray(sel.sum("feature").values, dtype=float).reshape(-1)
    bnd = _cells.cell_to_boundary(cid)[..., ::-1]  # (lng, lat)
    if (~obs).any():
        ax.add_collection(PolyCollection(bnd[~obs], facecolors="#eeeeee", edgecolors="none"))
    shown = np.log1p(np.clip(values[obs], 0, None)) if log else values[obs]
    pc = PolyCollection(bnd[obs], array=shown, cmap=cmap, edgecolors="none", **kwargs)
    ax.add_collection(pc)
    if outline:
        ib = _cells.cell_to_boundary(np.asarray(da["image"].values, dtype=np.uint64))[..., ::-1]
        ax.add_collection(PolyCollection(ib, facecolors="none", edgecolors="#555555", linewidths=0.6))
    ax.autoscale_view()
    lat_mid = float(np.mean(bnd[..., 1])) if bnd.size else 0.0
    ax.set_aspect(1.0 / max(math.cos(math.radians(lat_mid)), 1e-3))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(label)
    plt.colorbar(pc, ax=ax, shrink=0.8, label=f"log1p({label})" if log else label)
    return ax


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
