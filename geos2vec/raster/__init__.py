"""Rasterization: cell-feature tables as labelled xarray images, and back.

S2Vec treats each coarse "image" cell (level 8) as an image whose pixels
("patches") are its level-12 descendants, each pixel a feature vector. This
module turns the cell-indexed feature table of :mod:`geos2vec.features` (a
DataFrame indexed by uint64 cell ids, index named ``cell_id``, one numeric
column per channel) into an :class:`xarray.DataArray` with dims
``("image", "row", "col", "feature")`` and back:

* :func:`rasterize` - table -> images (NumPy, or dask with ``chunks=``),
* :func:`to_frame` - images -> table (exact inverse on observed pixels),
* :func:`windows` - training views at arbitrary offsets on the patch grid,
* :func:`augment` - the eight flips/rotations (dihedral group D4),
* :func:`to_zarr` / :func:`open_zarr` - storage that streams,
* :func:`plot_image` - one image, or a map of every image, for one channel.

Pixel order is the one :func:`geos2vec.cells.cell_to_rowcol` defines: row by
row from the top-left; north up and east right on the equatorial faces.
"""

from ._common import DIMS, image_cells
from .plot import plot_image
from .storage import mark_zarr_complete, open_zarr, to_zarr
from .transform import rasterize, to_frame
from .views import augment, windows

__all__ = [
    "rasterize",
    "to_frame",
    "image_cells",
    "windows",
    "augment",
    "to_zarr",
    "open_zarr",
    "mark_zarr_complete",
    "plot_image",
    "DIMS",
]
