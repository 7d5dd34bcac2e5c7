"""zarr storage that streams, with a completion mark (:func:`to_zarr`, :func:`open_zarr`)."""

from __future__ import annotations

import json
import numbers
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from .. import cells as _cells
from .._optional import needs
from ..errors import InvalidInputError, InvalidTypeError
from ._common import _VAR
from ._store_checks import _before_update, _check_overwrite, _check_update, _merge_coverage
from ._store_checks import _restore_if_untouched

if TYPE_CHECKING:
    from dask.delayed import Delayed
    from xarray.backends.zarr import ZarrStore

    from .._typing import ZarrStoreLike

__all__ = ["to_zarr", "mark_zarr_complete", "open_zarr"]


# --------------------------------------------------------------------------- storage
@needs("zarr", what="geos2vec.raster.to_zarr")
def to_zarr(da: xr.DataArray, store: ZarrStoreLike, *, mode: str | None = None,
            **kwargs: Any) -> ZarrStore | Delayed:
    """Write a rasterized DataArray to a zarr store (dask arrays stream block by block).

    The ``token`` coordinate is not stored (it is recomputed by
    :func:`open_zarr`); everything else, attrs included, round-trips exactly.
    Extra keyword arguments go to :meth:`xarray.Dataset.to_zarr`.

    The store is marked complete only after every block is written: a write
    that is interrupted (killed, Ctrl-C, an error in a dask block) leaves a
    store that :func:`open_zarr` refuses to open, instead of images of zeros
    that would read as real empty cells. An update of an existing store
    (``mode="a"``/``"r+"``, ``append_dim=``, ``region=``) unmarks it before
    writing, and marks it complete again only when nothing is left unfinished:
    an interrupted region write is finished by a later region write covering
    it, while an interrupted append, or a store that was incomplete before its
    first update (an interrupted write, ``compute=False``), stays unfinished
    whatever is updated after it. An append records the union of the store's and the images'
    ``attrs["coverage"]``. (With ``compute=False`` the marking is yours:
    call :func:`mark_zarr_complete` after computing.) Every chunk is written,
    empty ones too (``write_empty_chunks=True`` unless given), so that
    :func:`open_zarr` can tell a lost chunk file from an empty chunk. Dask
    chunks of unequal sizes (lazy :func:`augment` output) are made equal first,
    as zarr needs.

    Parameters
    ----------
    da : xarray.DataArray
        Images as :func:`rasterize` (or :func:`open_zarr`) returns them, with a ``feature`` coordinate.
    store : str, path or zarr store
        Where to write.
    mode : str, optional
        As in :meth:`xarray.Dataset.to_zarr`; default ``"w"`` (overwrite), or, with ``append_dim=`` or
        ``region=``, xarray's default for them (``"a"``, ``"r+"``).
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
    InvalidInputError
        With mode ``"w"`` (the default), if ``store`` is a file, a folder of other files or (unless ``mode="w"``
        is given) a zarr store that ``to_zarr`` did not write, or if ``da`` reads lazily from ``store`` itself
        (its chunks would be deleted before they are read: ``.load()`` it first). An update whose channels
        (names, order), dtype (one the store's cannot hold) or masks (``covered``, ``available``) differ from
        the store's, or an append of images it holds already. If chunk files are missing
        after the write (the store is then left unmarked): chunks written by dask
        worker processes did not reach a store in memory (``MemoryStore``, ``memory://``) or a local path the
        workers do not share. With ``write_empty_chunks=False`` that loss cannot be seen afterwards, so a
        store in memory is refused up front unless dask runs in this process (threads, sync).
    ImportError
        zarr is not installed: ``pip install 'geos2vec[dask]'``.
    """
    try:
        with _whole_write_lock(store, mode, kwargs):  # two processes writing one store take turns
            return _to_zarr(da, store, mode=mode, **kwargs)
    except OSError as exc:  # a full disk named no store: "[Errno 28] No space left on device"
        from .._jsonfile import write_error

        local = isinstance(store, (str, os.PathLike)) and "://" not in str(store)
        err = write_error(exc, Path(store).expanduser(), True, state="a store it had begun to write is left marked "
                          "unfinished (open_zarr refuses it): write it again once there is room") if local else None
        if err is None:
            raise
        raise err from exc


def _whole_write_lock(store, mode: str | None, kwargs: dict):
    """A lock beside a local store that a whole write (mode "w"/"w-", computed now) holds while it writes.

    Two such writes at once (a notebook and a cron job) interleaved their chunks: the store held some images of
    one and the rest of the other, and was marked complete. Updates (``region=``, ``append_dim=``) are not
    locked: region writes of disjoint parts from several processes are xarray's way to write in parallel.
    """
    import contextlib
    from pathlib import Path

    from .._jsonfile import write_lock

    whole = mode in ("w", "w-") or (mode is None and kwargs.get("append_dim") is None and kwargs.get("region") is None)
    if not whole or not kwargs.get("compute", True) or not isinstance(store, (str, os.PathLike)) or "://" in str(store):
        return contextlib.nullcontext()
    path = Path(store).expanduser().absolute()
    if not path.name or not path.parent.is_dir():
        return contextlib.nullcontext()
    return write_lock(path.with_name(f".{path.name}.lock"))


def _to_zarr(da: xr.DataArray, store: ZarrStoreLike, *, mode: str | None = None, **kwargs: Any) -> ZarrStore | Delayed:
    """:func:`to_zarr`, unlocked."""
    if not isinstance(da, xr.DataArray):
        raise InvalidTypeError(f"to_zarr needs an xarray.DataArray, not {type(da).__name__}")
    overwrite_any = mode == "w"  # asked for: a zarr store of something else may be overwritten too
    if mode is None and kwargs.get("append_dim") is None and kwargs.get("region") is None:
        mode = "w"
    if mode == "w":
        _check_overwrite(store, da, overwrite_any)
    names = [x.item() if isinstance(x, np.generic) else x for x in da["feature"].values]
    da = _uniform_chunks(da)
    # channel names go to attrs (JSON): zarr 3 has no stable string dtype yet
    ds = da.drop_vars([c for c in ("token", "feature") if c in da.coords]).to_dataset(name=_VAR)
    ds[_VAR].attrs = {**da.attrs, "feature_names": names}
    # a DataArray read from netCDF names its coordinates in its encoding, 'token' too: open_zarr took that
    # token for a lost array; xarray writes the coordinates it has
    for var in ds.variables.values():
        var.encoding.pop("coordinates", None)
    all_chunks = bool(kwargs.setdefault("write_empty_chunks", True))
    if not all_chunks and da.chunks is not None and _in_memory(store) and not _shared_memory_scheduler():
        raise InvalidInputError(
            f"{store!r} is in memory: dask worker processes would write its chunks into their own copies, and "
            "with write_empty_chunks=False the loss cannot be detected (the images would read as empty cells); "
            "write to a path or object store the workers share, or leave write_empty_chunks at True")
    update, group = None, None
    if mode not in ("w", "w-"):  # an update: unmark the store first (a region write keeps the old attrs)
        group = _existing_group(store)
        if group is not None:
            _check_update(group, da, names, store, kwargs)
            untouched = _before_update(store, group)
            if kwargs.get("append_dim") is not None:
                _merge_coverage(group, da)
            all_chunks = all_chunks and group.attrs.get(_ALL_CHUNKS) is True
            update, before = _update_extent(ds, kwargs), _pending(group.attrs)
            group.attrs.update({_COMPLETE: False, _ALL_CHUNKS: all_chunks, _PENDING: [*before, update]})
    ds.attrs = {_COMPLETE: False, _ALL_CHUNKS: all_chunks}
    if group is not None:
        ds.attrs[_PENDING] = [*before, update]
    try:
        out = ds.to_zarr(store, mode=mode, consolidated=False, **kwargs)
    except Exception:
        if group is not None:  # refused by xarray before it wrote anything: the store as it was
            _restore_if_untouched(store, untouched)
        raise
    if kwargs.get("compute", True):
        if group is None:
            mark_zarr_complete(store)
        else:  # this update and what it covers are finished; complete once nothing is left unfinished
            left = [p for p in before if not _covers(update, p)]
            if left:
                _open_group(store).attrs[_PENDING] = left
            else:
                mark_zarr_complete(store)
    return out


_COMPLETE = "geos2vec_complete"
_ALL_CHUNKS = "geos2vec_all_chunks"  # every chunk file was written (empty ones too): a missing one is lost
_PENDING = "geos2vec_pending"  # updates begun and not known to be finished: extents (below), None = unknown


def _uniform_chunks(da: xr.DataArray) -> xr.DataArray:
    """``da`` rechunked where its dask chunks differ in size (zarr needs equal chunks but for the last)."""
    if da.chunks is None:
        return da
    uneven = {dim: max(c) for dim, c in zip(da.dims, da.chunks) if len(set(c[:-1])) > 1 or c[-1] > c[0]}
    return da.chunk(uneven) if uneven else da


def _update_extent(ds: xr.Dataset, kwargs: dict):
    """What an update rewrites: ``{dim: [start, stop]}`` (``{}``: every array whole), or None (unknown).

    An append (``append_dim=``) and ``region="auto"`` are unknown: an interrupted append cannot be finished
    by running it again, and an automatic region is only known to xarray.
    """
    region = kwargs.get("region")
    if kwargs.get("append_dim") is not None or (region is not None and not isinstance(region, dict)):
        return None
    out = {}
    for dim, sl in (region or {}).items():
        if not isinstance(sl, slice) or sl.step not in (None, 1) or not (
                sl.start is None or isinstance(sl.start, numbers.Integral) and sl.start >= 0):
            return None
        start = int(sl.start or 0)
        out[str(dim)] = [start, start + int(ds.sizes[dim])]
    return out


def _covers(update, pending) -> bool:
    """Whether a finished ``update`` rewrote all that the unfinished ``pending`` update may have touched."""
    if update is None:
        return False
    if pending is None:  # unknown: only a rewrite of every array whole covers it
        return update == {}
    return all(dim in pending and lo <= pending[dim][0] and pending[dim][1] <= hi
               for dim, (lo, hi) in update.items())


def _pending(attrs) -> list:
    """The unfinished updates of a store before a new one begins (none when it is marked complete)."""
    if attrs.get(_COMPLETE) is not False:
        return []
    pending = attrs.get(_PENDING)
    # incomplete without a record: an interrupted write or a compute=False store, of unknown extent
    return list(pending) if isinstance(pending, list) else [None]


def _expanded(store: ZarrStoreLike) -> ZarrStoreLike:
    """A path's ``~`` expanded, as xarray expands it.

    zarr did not: ``to_zarr(da, "~/x.zarr")`` wrote the store into the home folder, then could not mark it.
    """
    return os.path.expanduser(store) if isinstance(store, (str, os.PathLike)) else store


def _open_group(store: ZarrStoreLike):
    import zarr

    return zarr.open_group(_expanded(store), mode="r+")


def _existing_group(store: ZarrStoreLike):
    """The zarr group at ``store`` opened for writing, or None when there is none yet."""
    import zarr

    try:
        return zarr.open_group(_expanded(store), mode="r+")
    except (FileNotFoundError, KeyError, ValueError):  # nothing there yet (zarr 3, zarr 2)
        return None


def _group_attrs(store: ZarrStoreLike) -> dict:
    """The attributes of the zarr group at ``store`` (empty when there is none: xarray says what is wrong)."""
    import zarr

    try:
        return dict(zarr.open_group(_expanded(store), mode="r").attrs)
    except (FileNotFoundError, KeyError, ValueError, TypeError):
        return {}


def _stored_chunks(array) -> int:
    """How many chunk files of a zarr array exist in its store (one listing of its keys)."""
    try:  # zarr 3: Array.nchunks_initialized compares every key with every chunk (quadratic)
        from zarr.core.sync import sync

        store, path = array.store_path.store, array.store_path.path
    except (ImportError, AttributeError):  # zarr 2: nchunks_initialized lists the keys once
        return int(array.nchunks_initialized)

    async def count() -> int:
        prefix = f"{path}/" if path else ""
        return sum([1 async for key in store.list_prefix(prefix)
                    if key.rsplit("/", 1)[-1] not in ("zarr.json", ".zarray", ".zattrs")])

    return int(sync(count()))


@needs("zarr", what="geos2vec.raster.mark_zarr_complete")
def mark_zarr_complete(store: ZarrStoreLike) -> None:
    """Mark a store written by :func:`to_zarr` as completely written (done by ``to_zarr`` itself).

    Parameters
    ----------
    store : str, path or zarr store
        A store written by :func:`to_zarr` (e.g. with ``compute=False``, once computed).

    Raises
    ------
    InvalidInputError
        If the store was written with every chunk (the default) and chunk files are missing: they would
        read as empty cells (chunks computed by dask worker processes into a store in memory or a path they
        do not share, or regions not written yet).
    ImportError
        zarr is not installed: ``pip install 'geos2vec[dask]'``.
    """
    group = _open_group(store)
    lost = _lost_chunks(group) if group.attrs.get(_ALL_CHUNKS) is True else None
    if lost:
        name, missing, total = lost
        raise InvalidInputError(
            f"{store!r} lacks {missing} of the {total} chunk files of its {name!r} array, so it is not marked "
            "complete (they would read as empty cells): chunks written by dask worker processes or a remote "
            "cluster did not reach it (a store in memory, zarr.storage.MemoryStore or 'memory://', or a local "
            "path that the workers do not share), or not every region was written yet; write to a path or "
            "object store that the workers and this process share")
    group.attrs[_COMPLETE] = True
    if _PENDING in group.attrs:
        del group.attrs[_PENDING]


@needs("zarr", "dask", what="geos2vec.raster.open_zarr")
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
    InvalidInputError
        If the store holds no geos2vec array, is marked as not completely
        written, has a damaged metadata file, or has lost an array
        (``cell_id``, ``observed``, ...) or, when :func:`to_zarr` wrote every
        chunk (the default since this version), a chunk file. A lost chunk of
        a store without that mark (older versions, ``write_empty_chunks=False``)
        cannot be told from an empty one and reads as the fill value; damaged
        chunk contents raise zarr's own error when read.
    ImportError
        zarr or dask is not installed: ``pip install 'geos2vec[dask]'``.
    """
    try:
        # the mark first: an interrupted update (an append) may leave arrays xarray cannot open together
        complete = _group_attrs(store).get(_COMPLETE)
        ds = xr.open_zarr(store, chunks={} if chunks is None else chunks, consolidated=False)
    except json.JSONDecodeError as err:
        raise InvalidInputError(f"{store!r} has a damaged metadata file ({err}); copy or write the store "
                                "again") from err
    except ValueError:
        if complete is not False:
            raise
        ds = xr.Dataset(attrs={_COMPLETE: False})
    if complete is False or ds.attrs.get(_COMPLETE) is False:  # stores of geos2vec 0.1 have no marker
        raise InvalidInputError(f"{store!r} was not completely written (a write or update was interrupted, or "
                                "a store written with to_zarr(..., compute=False) was never marked complete "
                                "with mark_zarr_complete); write it again")
    if _VAR not in ds:
        raise InvalidInputError(f"{store!r} holds no {_VAR!r} array; was it written by geos2vec.raster.to_zarr?")
    _check_arrays(ds, store)
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


def _check_arrays(ds: xr.Dataset, store: ZarrStoreLike) -> None:
    """Raise when arrays the store was written with, or (when every chunk was written) chunk files, are lost.

    Without ``observed`` every pixel would count as observed, without ``covered`` as covered, and a lost
    chunk reads as the fill value: missing data taken for empty cells.
    """
    var = ds[_VAR]
    wanted = str(var.encoding.get("coordinates", "")).split() + [d for d in ("image",) if d in var.dims]
    lost = [name for name in wanted if name not in ds.variables and name != "token"]  # token is recomputed
    if lost:
        raise InvalidInputError(f"{store!r} has lost its {lost} array(s) (a partial copy or sync?); copy or "
                                "write the store again")
    if ds.attrs.get(_ALL_CHUNKS) is not True:
        return
    import zarr

    lost = _lost_chunks(zarr.open_group(_expanded(store), mode="r"))
    if lost:
        name, missing, total = lost
        raise InvalidInputError(f"{store!r} has lost {missing} of the {total} chunk files of its "
                                f"{name!r} array (a partial copy or sync?); they would read as empty cells. "
                                "Copy or write the store again")


def _lost_chunks(group) -> tuple[str, int, int] | None:
    """``(array name, chunk files missing, chunks)`` of the first array of ``group`` missing some, or None."""
    for name, array in group.arrays():
        if getattr(array, "shards", None) is not None:  # a shard file holds many chunks
            continue
        stored, total = _stored_chunks(array), int(array.nchunks)
        if stored < total:
            return name, total - stored, total
    return None


def _in_memory(store) -> bool:
    """Whether ``store`` lives in this process's memory (a zarr MemoryStore, an fsspec ``memory://`` URL)."""
    import zarr

    memory = tuple(t for t in (getattr(zarr.storage, "MemoryStore", None),) if t is not None)
    return (bool(memory) and isinstance(store, memory)) or str(store).startswith("memory://")


def _shared_memory_scheduler() -> bool:
    """Whether dask's active scheduler runs tasks in this process (threads, sync), sharing its memory."""
    import dask.base
    import dask.local
    import dask.threaded

    get = dask.base.get_scheduler()
    return get is None or get in (dask.threaded.get, dask.local.get_sync)
