"""Reading and checking the image DataArrays of :mod:`geos2vec.model.data`.

:func:`open_images` opens stored images (a zarr store, a netCDF file, or a Parquet feature table, rasterized),
:func:`check_images` validates a DataArray of images and puts its dims in :data:`IMAGE_DIMS` order, and
:func:`match_channels` puts its features in a model's order. Everything here is importable from
:mod:`geos2vec.model.data`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._textfile import lookalike_names
from ..errors import InvalidInputError, InvalidTypeError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import xarray as xr

    from .._typing import StrPath

IMAGE_DIMS = ("image", "row", "col", "feature")


def open_images(path: StrPath) -> xr.DataArray:
    """Open an image DataArray saved by the rasterization stage.

    ``path`` may be a zarr store (directory or ``.zarr``), a netCDF file
    (``.nc``), or a cell-feature table in Parquet (file or directory), which is
    rasterized with :func:`geos2vec.raster.rasterize` into images of 16 x 16 cells (S2Vec's level-12 cells in
    level-8 images; level-14 cells in level-10 images).

    Parameters
    ----------
    path : str or path-like
        The zarr store (also an fsspec URL: ``"memory://x.zarr"``, ``"s3://bucket/x.zarr"``), netCDF file or
        Parquet table (one file, or a folder of files; not one partitioned into ``key=value`` folders).

    Returns
    -------
    xarray.DataArray
        The images, dims ``("image", "row", "col", "feature")``; lazy (dask-backed) for a zarr store
        (:func:`geos2vec.raster.open_zarr`). A netCDF dataset must hold exactly one variable with those dims.

    Raises
    ------
    FileNotFoundError
        Nothing exists at ``path``.
    ValueError
        An unknown format, a store or dataset without exactly one image variable, or a Parquet table without
        cell ids (no ``cell_id`` column or index).
    """
    import xarray as xr

    if isinstance(path, str) and "://" in path:  # an fsspec URL (memory://, s3://): Path() made "memory:/x" of it
        from geos2vec.raster import open_zarr

        return open_zarr(path)
    path = Path(path).expanduser()  # "~/images.zarr" is the home folder's
    if not path.exists():
        raise FileNotFoundError(f"no data at {path}")
    is_zarr = path.suffix == ".zarr" or (path.is_dir() and any(
        (path / m).exists() for m in (".zgroup", ".zarray", "zarr.json", ".zmetadata")))
    if is_zarr:
        try:
            from geos2vec.raster import open_zarr
        except ImportError:  # pragma: no cover - the rasterization stage is part of the package
            ds = xr.open_zarr(path)
        else:
            return open_zarr(path)
    elif path.suffix in (".nc", ".nc4", ".netcdf"):
        ds = xr.open_dataset(path)
    elif path.suffix == ".parquet" or (path.is_dir() and any(path.glob("*.parquet"))):
        import pandas as pd

        try:
            from geos2vec.raster import rasterize
        except ImportError as exc:  # pragma: no cover - depends on the rasterization stage
            raise ImportError("reading a feature table needs geos2vec.raster.rasterize") from exc
        table = pd.read_parquet(path)
        if "cell_id" in table.columns:
            table = table.set_index("cell_id")
        elif isinstance(table.index, pd.RangeIndex):  # no index stored: row numbers, not cells
            raise InvalidInputError(
                f"{path} has no cell ids: no 'cell_id' column and no cell-id index (columns: "
                f"{list(table.columns)[:10]}). Write the feature table with its cell_id index "
                "(table.to_parquet(path), as `geos2vec features` does) or name the cell id column 'cell_id'")
        return rasterize(table, image_level=_image_level(table))
    elif path.is_dir() and any(path.rglob("*.parquet")):  # Hive partitions: key=value folders
        raise InvalidInputError(
            f"{path} is a Parquet table partitioned into folders ({sorted(p.name for p in path.iterdir())[:3]}); "
            "open_images reads a table in one file or in files directly in the folder. Read it, drop the "
            "partition columns and duplicate cells, and pass rasterize(table) (or table.to_parquet('one.parquet'))")
    else:
        raise InvalidInputError(f"cannot read images from {path}: expected a zarr store, a .nc file or a Parquet "
                                "feature table")
    if isinstance(ds, xr.DataArray):
        return ds
    names = [v for v in ds.data_vars if set(IMAGE_DIMS) <= set(ds[v].dims)]
    if len(names) != 1:
        raise InvalidInputError(f"{path} holds {len(names)} variables with dims {IMAGE_DIMS}: {names}; expected one")
    return ds[names[0]]


def _image_level(table) -> int:
    """The image level of a table's 16 x 16 images (S2Vec's: level-12 cells in level-8 images): its cells' level - 4.

    A level-14 table made level-8 images of 64 x 64 pixels (256 x 256 at level 16) and a level-10 one 4 x 4 images.
    Tables that are empty or not indexed by cell ids get the default (8); :func:`~geos2vec.raster.rasterize` says
    what is wrong with them.
    """
    from .. import _cells_core as cells

    ids = np.asarray(table.index[:1])
    if ids.size != 1 or ids.dtype.kind not in "iu":
        return 8
    ids = ids.astype(np.uint64)
    return max(int(cells.get_level(ids)[0]) - 4, 0) if bool(cells.is_valid_cell(ids)[0]) else 8


def check_images(da: xr.DataArray) -> xr.DataArray:
    """Validate an image DataArray and return it with dims in ``IMAGE_DIMS`` order.

    Parameters
    ----------
    da : xarray.DataArray
        Images with exactly the dims ``("image", "row", "col", "feature")`` (any order) and a ``feature``
        coordinate of channel names; windows (:func:`geos2vec.raster.windows`, dim ``"window"`` instead
        of ``"image"``) are taken as images.

    Returns
    -------
    xarray.DataArray
        ``da`` transposed to ``("image", "row", "col", "feature")`` (``"window"`` renamed ``"image"``).

    Raises
    ------
    TypeError
        A non-DataArray, or values that are not real numbers.
    ValueError
        Missing or extra dims, no ``feature`` coordinate, or no images.
    """
    import xarray as xr

    if not isinstance(da, xr.DataArray):
        raise InvalidTypeError(f"expected an xarray.DataArray of images (see geos2vec.raster.rasterize), got "
                               f"{type(da).__name__}")
    if "window" in da.dims and "image" not in da.dims:  # training windows (geos2vec.raster.windows)
        da = da.rename(window="image")
    missing = [d for d in IMAGE_DIMS if d not in da.dims]
    if missing or len(da.dims) != 4:
        hint = ("; one image: keep its dimension with da.isel(image=[k]) (not image=k), or da.expand_dims('image')"
                if missing == ["image"] else "")
        raise InvalidInputError(f"image DataArray needs exactly the dims {IMAGE_DIMS}; got {da.dims}{hint}")
    if not np.issubdtype(da.dtype, np.number) or np.issubdtype(da.dtype, np.complexfloating):
        hint = "; convert with da.astype('uint8')" if da.dtype == bool else ""
        raise InvalidTypeError(f"image values must be real numbers, got dtype {da.dtype}{hint}")
    if "feature" not in da.coords:
        raise InvalidInputError("image DataArray needs a 'feature' coordinate with the channel names")
    if da.sizes["image"] == 0:
        raise InvalidInputError("the image DataArray holds no images")
    return da.transpose(*IMAGE_DIMS)


def match_channels(da: xr.DataArray, channels: Sequence[str]) -> xr.DataArray:
    """``da`` with its features in the order ``channels``.

    The same channels in another order are reordered; missing or extra
    channels raise ``ValueError`` naming them.

    Parameters
    ----------
    da : xarray.DataArray
        Data with a ``feature`` dimension and coordinate (channel names).
    channels : sequence of str
        The wanted channels, in order (e.g. a model's ``channels``).

    Returns
    -------
    xarray.DataArray
        ``da`` itself when its channels are already ``channels``, else ``da.sel(feature=channels)``.

    Raises
    ------
    ValueError
        Channels of ``channels`` missing from ``da``, channels of ``da`` not in ``channels``, or duplicate
        channel names in ``da``.
    """
    have = [str(c) for c in da["feature"].values]
    want = [str(c) for c in channels]
    if have == want:
        return da
    missing = [c for c in want if c not in have]
    extra = [c for c in have if c not in want]
    if missing or extra or len(set(have)) != len(have):
        raise InvalidInputError(
            "the data's channels do not match the model's: "
            f"missing {missing[:20]}{' ...' if len(missing) > 20 else ''}, "
            f"unexpected {extra[:20]}{' ...' if len(extra) > 20 else ''} "
            f"(model: {len(want)} channels, data: {len(have)}).{lookalike_names(missing, extra, 'model', 'data')} "
            "Build the features with the model's channel list (model.channels) or train a new model.")
    return da.sel(feature=want)
