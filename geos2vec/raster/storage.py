"""zarr storage that streams, with a completion mark (:func:`to_zarr`, :func:`open_zarr`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from .. import cells as _cells
from ._common import _VAR

if TYPE_CHECKING:
    from dask.delayed import Delayed
    from xarray.backends.zarr import ZarrStore

    from .._typing import ZarrStoreLike

__all__ = ["to_zarr", "mark_zarr_complete", "open_zarr"]


# --------------------------------------------------------------------------- storage
def to_zarr(da: xr.DataArray, store: ZarrStoreLike, *, mode: str = "w", **kwargs: Any) -> ZarrStore | Delayed:
    """Write a rasterized DataArray to a zarr store (dask arrays stream block by block).

    The ``token`` coordinate is not stored (it is recomputed by
    :func:`open_zarr`); everything else, attrs included, round-trips exactly.
    Extra keyword arguments go to :meth:`xarray.Dataset.to_zarr`.

    The store is marked complete only after every block is written: a write
    that is interrupted (killed, Ctrl-C, an error in a dask block) leaves a
    store that :func:`open_zarr` refuses to open, instead of images of zeros
    that would read as real empty cells. (With ``compute=False`` the marking is
    yours: call :func:`mark_zarr_complete` after computing.)

    Parameters
    ----------
    da : xarray.DataArray
        Images as :func:`rasterize` (or :func:`open_zarr`) returns them, with a ``feature`` coordinate.
    store : str, path or zarr store
        Where to write.
    mode : str, default "w"
        As in :meth:`xarray.Dataset.to_zarr` (``"w"`` overwrites).
    **kwargs
        Further arguments of :meth:`xarray.Dataset.to_zarr` (not ``consolidated``, which is always False).

    Returns
    -------
    object
        What :meth:`xarray.Dataset.to_zarr` returns: the zarr store, or a ``dask.delayed.Delayed`` with
        ``compute=False``.

    Raises
    ------
    TypeError
        If ``da`` is not a DataArray.
    """
    if not isinstance(da, xr.DataArray):
        raise TypeError(f"to_zarr needs an xarray.DataArray, not {type(da).__name__}")
    names = [x.item() if isinstance(x, np.generic) else x for x in da["feature"].values]
    # channel names go to attrs (JSON): zarr 3 has no stable string dtype yet
    ds = da.drop_vars([c for c in ("token", "feature") if c in da.coords]).to_dataset(name=_VAR)
    ds[_VAR].attrs = {**da.attrs, "feature_names": names}
    ds.attrs = {_COMPLETE: False}
    out = ds.to_zarr(store, mode=mode, consolidated=False, **kwargs)
    if kwargs.get("compute", True):
        mark_zarr_complete(store)
    return out


_COMPLETE = "geos2vec_complete"


def mark_zarr_complete(store: ZarrStoreLike) -> None:
    """Mark a store written by :func:`to_zarr` as completely written (done by ``to_zarr`` itself).

    Parameters
    ----------
    store : str, path or zarr store
        A store written by :func:`to_zarr` (e.g. with ``compute=False``, once computed).
    """
    import zarr

    zarr.open_group(store, mode="r+").attrs[_COMPLETE] = True


def open_zarr(store: ZarrStoreLike, *, chunks: dict[str, int] | None = None) -> xr.DataArray:
    """Open a store written by :func:`to_zarr` lazily (dask), without loading the data.

    Parameters
    ----------
    store : str, path or zarr store
    chunks : dict, optional
        Dask chunks (e.g. ``{"image": 64}``); default: the stored chunks.

    Returns
    -------
    xarray.DataArray
        Lazy (dask) images as written, with the ``feature`` coordinate restored from the attrs and the
        ``token`` coordinate recomputed; the ``cell_id``, ``observed``, ``covered`` and ``available``
        coordinates are loaded into memory.

    Raises
    ------
    ValueError
        If the store holds no geos2vec array.
    InvalidInputError
        If the store is marked as not completely written.
    """
    ds = xr.open_zarr(store, chunks={} if chunks is None else chunks, consolidated=False)
    if _VAR not in ds:
        raise ValueError(f"{store!r} holds no {_VAR!r} array; was it written by geos2vec.raster.to_zarr?")
    if ds.attrs.get(_COMPLETE) is False:  # stores of geos2vec 0.1 have no marker: they open as before
        from ..errors import InvalidInputError

        raise InvalidInputError(f"{store!r} was not completely written (the write was interrupted, or "
                                "to_zarr(..., compute=False) was never marked complete); write it again")
    da = ds[_VAR]
    attrs = dict(da.attrs)
    names = attrs.pop("feature_names", None)
    if names is not None:
        da = da.assign_coords(feature=("feature", np.asarray(names, dtype=str if all(
            isinstance(x, str) for x in names) else object)))
    da.attrs = attrs
    for name in ("cell_id", "observed", "covered", "available"):
        if name in da.coords:
            da = da.assign_coords({name: da[name].load()})
    if "image" in da.dims:
        imgs = np.asarray(da["image"].values, dtype=np.uint64)
        da = da.assign_coords(token=("image", _cells.cell_to_token(imgs).astype(str) if imgs.size
                                     else np.array([], str)))
    return da
