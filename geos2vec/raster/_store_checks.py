"""Checks of :func:`geos2vec.raster.to_zarr` before it writes.

What mode ``"w"`` would delete, and what an update would write under the store's names, dtype or images.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidInputError
from ._common import _VAR

if TYPE_CHECKING:
    import xarray as xr

    from .._typing import ZarrStoreLike


_MARKERS = ("zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata")


_OS_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}  # what a file manager leaves in an "empty" folder


def _check_overwrite(store: ZarrStoreLike, da: xr.DataArray, overwrite_any: bool) -> None:
    """Refuse a mode ``"w"`` write that would delete what is not a store of images, or the images being written.

    Mode ``"w"`` deletes everything at ``store`` first: a folder of other files (``to_zarr(da, "~/Documents")``)
    was emptied without a word, and images read lazily from the store itself (``open_zarr(store) * 2``) were
    deleted before they were read, leaving a store of zeros marked complete.
    """
    from .storage import _COMPLETE, _group_attrs

    path = _local_path(store)
    if path is not None and (path.exists() or path.is_symlink()):
        if not path.is_dir():
            raise InvalidInputError(f"{store!r} is a file, not a zarr store; to_zarr would replace it: give the "
                                    "path of a new (or empty) folder, or delete the file first")
        entries = sorted(e.name for e in path.iterdir() if e.name not in _OS_FILES)
        if entries and not any(m in entries for m in _MARKERS):
            raise InvalidInputError(
                f"{store!r} is a folder of other files ({entries[:3]}{' ...' if len(entries) > 3 else ''}), not a zarr "
                "store; writing it (mode 'w') would delete them all: give the path of a new (or empty) folder")
        ours = _COMPLETE in _group_attrs(store) or (path / _VAR).is_dir()
        if not overwrite_any and not ours and set(entries) - set(_MARKERS) | set(_group_attrs(store)):
            raise InvalidInputError(f"{store!r} holds a zarr store that geos2vec.raster.to_zarr did not write; "
                                    "pass mode='w' to overwrite it, or give another path")
    target = _location(store)
    if target is None or da.chunks is None:
        return
    for source in _zarr_sources(da):
        if source[0] == target[0] and (source[1] == target[1] or source[1].startswith(target[1].rstrip("/") + "/")):
            raise InvalidInputError(
                f"the images are read lazily from {store!r} itself (open_zarr of the store they are written to): "
                "writing it (mode 'w') deletes them before they are read, and the store would hold zeros. Load "
                "them first (da = da.load()), or write to another path")


def _check_update(group, da: xr.DataArray, names: list, store: ZarrStoreLike, kwargs: dict) -> None:
    """Refuse an update (``mode="a"``, ``append_dim=``, ``region=``) that would not read back as written.

    xarray writes only the values of an update, into the stored array: images of channels ``p, q, r`` in a
    store of ``x, y, z`` read back as ``x, y, z``, float images in a store of integers were truncated (2.25 as
    2), and appended images that the store holds already were held twice. All were marked complete.
    """
    if _VAR not in group:
        return
    array = group[_VAR]
    stored = array.attrs.get("feature_names")
    if stored is not None and list(stored) != names:
        shown = [f"{x[:8]!r}{f' ... ({len(x)} in all)' if len(x) > 8 else ''}" for x in (list(stored), names)]
        raise InvalidInputError(
            f"{store!r} holds the channels {shown[0]}, and these images have {shown[1]}: an update writes only "
            "the values, which would be read under the store's names. Write them in its order "
            "(da.sel(feature=stored_names), when it has the same channels), or write a new store (mode='w')")
    _check_sizes(array, da, store, kwargs)
    dtype = np.dtype(array.dtype)
    if not np.can_cast(da.dtype, dtype, casting="safe"):
        raise InvalidInputError(
            f"{store!r} holds {dtype} images, and these are {da.dtype}: zarr would cast their values into "
            f"{dtype} (2.25 stored as 2). Write da.astype('{dtype}') if that keeps every value, or write a new "
            "store (mode='w') of a dtype that holds both")
    masks = [{m for m in ("covered", "available") if m in have} for have in (group, da.coords)]
    if kwargs.get("append_dim") is not None and masks[0] != masks[1]:  # one of them is of known coverage
        raise InvalidInputError(
            f"{store!r} has the masks {sorted(masks[0])} and these images {sorted(masks[1])} (a known coverage "
            "makes 'covered'; channels of another coverage 'available'): xarray would write a mask that only one "
            "has for these images alone, a store that does not open. Rasterize both with a coverage "
            "(count_features(..., coverage=...)) or both without, and with the same channels' coverage")
    if kwargs.get("append_dim") == "image" and "image" in group and "image" in da.coords:
        from .. import cells as _cells

        both = np.intersect1d(np.asarray(group["image"][:]).astype(np.uint64),
                              np.asarray(da["image"].values).astype(np.uint64))
        if both.size:
            raise InvalidInputError(
                f"{both.size} of the images appended to {store!r} are in it already (tokens "
                f"{list(_cells.cell_to_token(both[:5]))}{' ...' if both.size > 5 else ''}): it would hold them twice. "
                "Rewrite those with region=, and append only the others (da.drop_sel(image=...))")


def _local_path(store: ZarrStoreLike) -> Path | None:
    """``store``'s local folder (a path, ``~`` expanded; a ``file://`` URL; a zarr ``LocalStore``), or None."""
    if isinstance(store, (str, os.PathLike)):
        text = os.fspath(store)
        if isinstance(text, str) and text.startswith("file://"):
            return Path(text[len("file://"):])
        return Path(os.path.expanduser(text)) if "://" not in str(text) else None
    root = getattr(store, "root", None)  # zarr 3 LocalStore
    return Path(root) if isinstance(root, (str, os.PathLike)) else None


def _location(store) -> tuple | None:
    """Where a store keeps its keys, comparably; None when unknown.

    ``("file", absolute path)``, ``(protocol, path)`` of an fsspec URL, ``("dict", id)`` of an in-memory mapping.
    """
    local = _local_path(store)
    if local is not None:
        return "file", os.path.realpath(local)
    if isinstance(store, str):
        protocol, rest = store.split("://", 1)
        return (("file", os.path.realpath(rest)) if protocol == "file"
                else (protocol, "/" + rest.strip("/")))
    root = getattr(store, "root", None)  # zarr 3 LocalStore; zarr 2 MemoryStore: its dict
    if isinstance(root, (str, os.PathLike)):
        return "file", os.path.realpath(root)
    fs, path = getattr(store, "fs", None), getattr(store, "path", None)
    if isinstance(path, str):  # zarr 3 FsspecStore, zarr 2 FSStore / DirectoryStore
        if fs is None:
            return "file", os.path.realpath(path)
        fs = getattr(fs, "sync_fs", fs)
        protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
        return (("file", os.path.realpath(path)) if protocol in ("file", "local")
                else (protocol, "/" + path.strip("/")))
    mapping = getattr(store, "_store_dict", root if isinstance(root, dict) else None)  # zarr 3, zarr 2 MemoryStore
    return ("dict", str(id(mapping))) if mapping is not None else None


def _zarr_sources(da: xr.DataArray) -> list[tuple]:
    """The locations of the zarr arrays that ``da``'s dask graphs read (xarray's ``original-`` keys).

    Such a key may sit in a layer of its own or, once the array went through ``dask.delayed`` (lazy
    ``windows``), among the keys of a materialized layer.
    """
    from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

    out = []
    for var in [da.variable, *(c.variable for c in da.coords.values())]:
        graph = var.data.__dask_graph__() if var.chunks is not None else None
        for layer in (graph.layers.values() if isinstance(graph, HighLevelGraph) else ()):
            values = ([v for k, v in layer.mapping.items() if isinstance(k, str) and k.startswith("original-")]
                      if isinstance(layer, MaterializedLayer) else layer.values() if len(layer) == 1 else ())
            for value in values:
                for _ in range(20):  # xarray's adapters around its ZarrArrayWrapper
                    if type(value).__name__ == "ZarrArrayWrapper":
                        array = getattr(value, "_array", None)
                        store_path = getattr(array, "store_path", None)  # zarr 3; zarr 2: .store
                        where = _location(getattr(store_path, "store", getattr(array, "store", None)))
                        if where is not None:
                            sub = getattr(store_path, "path", "") or getattr(array, "path", "") or ""
                            out.append((where[0], where[1].rstrip("/") + "/" + sub if sub else where[1]))
                        break
                    value = getattr(value, "array", getattr(value, "value", None))
    return out


def _check_sizes(array, da: xr.DataArray, store: ZarrStoreLike, kwargs: dict) -> None:
    """Refuse an update of other image sizes than the store's, before the store is unmarked.

    xarray refuses it too, but only once :func:`to_zarr` has unmarked the store: the store it left (nothing
    written) no longer opened, "not completely written".
    """
    # zarr 3 names the dimensions in its metadata; zarr 2 (an Array without .metadata) in xarray's attribute
    dims = getattr(getattr(array, "metadata", None), "dimension_names", None) or array.attrs.get("_ARRAY_DIMENSIONS")
    if dims is None or len(dims) != len(array.shape):
        return
    region = kwargs.get("region")
    auto = region is not None and not isinstance(region, dict)  # "auto": xarray places the images by their index
    region = region if isinstance(region, dict) else {}
    stored = dict(zip(dims, array.shape))
    for dim, size in da.sizes.items():
        if dim not in stored or dim == kwargs.get("append_dim") or (auto and dim in da.indexes):
            continue
        sl = region.get(dim, slice(None))
        want = len(range(*sl.indices(stored[dim]))) if isinstance(sl, slice) else size
        if size != want:
            raise InvalidInputError(
                f"these images have {size} along {dim!r}, and {store!r} takes {want} there "
                f"({dict(stored)}{f', region {region}' if region else ''}): images of another size (level) go to a "
                "store of their own; the store is left as it was")


def _merge_coverage(group, da: xr.DataArray) -> None:
    """After an append, the stored array's ``attrs["coverage"]``: the union of the store's and the images'.

    xarray keeps the stored attrs, so a store of New York with Sydney appended recorded New York's coverage
    alone: ``to_frame`` gave a table whose empty Sydney cells read as missing, not empty. Unknown (no coverage)
    on either side makes the union unknown, as :func:`geos2vec.coverage.combine_coverage`.
    """
    import json

    import pandas as pd

    from ..coverage import combine_coverage

    if _VAR not in group:
        return
    attrs = group[_VAR].attrs
    if attrs.get("coverage") is not None and attrs.get("coverage") == da.attrs.get("coverage"):
        return  # parts of one table: its coverage as stored (a union of it with itself took seconds, rewritten)
    parts = [pd.DataFrame() for _ in range(2)]
    for part, text in zip(parts, (attrs.get("coverage"), da.attrs.get("coverage"))):
        if text is not None:
            part.attrs["coverage"] = json.loads(text) if isinstance(text, str) else text
    merged = combine_coverage(parts)
    if merged is None:
        if "coverage" in attrs:
            del attrs["coverage"]
    elif merged != parts[0].attrs.get("coverage"):
        attrs["coverage"] = json.dumps(merged)


def _before_update(store: ZarrStoreLike, group) -> tuple | None:
    """What :func:`_restore_if_untouched` needs: the time, the arrays' shapes and the attrs (local stores only)."""
    import time

    if _local_path(store) is None:
        return None
    return (time.time_ns(), {name: tuple(a.shape) for name, a in group.arrays()}, dict(group.attrs),
            dict(group[_VAR].attrs) if _VAR in group else None)


def _restore_if_untouched(store: ZarrStoreLike, before: tuple | None) -> None:
    """After an update that raised: put the store's attrs (its completion mark) back when it wrote nothing.

    xarray refuses some updates (dask chunks that would share a zarr chunk, ...) only after :func:`to_zarr`
    has unmarked the store: nothing was written, yet the store no longer opened. Nothing written: no array
    changed its shape or appeared, and no chunk file was modified since 2 s before the update began (a margin
    for file systems that keep coarse times); otherwise the store stays unmarked.
    """
    import zarr

    if before is None:
        return
    start, shapes, attrs, var_attrs = before
    path = _local_path(store)
    group = zarr.open_group(os.fspath(path), mode="r+")
    if {name: tuple(a.shape) for name, a in group.arrays()} != shapes:
        return
    since = start - 2_000_000_000
    for root, _, files in os.walk(path):
        for name in files:
            if name not in _MARKERS and os.stat(os.path.join(root, name)).st_mtime_ns >= since:
                return
    group.attrs.put(attrs)
    if var_attrs is not None:
        group[_VAR].attrs.put(var_attrs)

