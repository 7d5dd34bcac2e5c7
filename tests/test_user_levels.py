"""A user who wants finer or coarser cells than level 12: counts, images, models and evaluation at levels 10 and 14.

Each test failed before its fix. References: the images' pixels placed by ``cell_to_parent`` / ``cell_to_rowcol``
and compared with the table, s2sphere parents with a pandas group-by, and the hints of the error messages
followed to a working call.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import geos2vec
from geos2vec.cells import cell_to_parent, cell_to_rowcol


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def sample():
    pois, roads = geos2vec.demo.load_sample()
    return pois, roads.iloc[:2000]


@pytest.fixture(scope="module")
def tables(sample):
    pois, roads = sample
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # POIs outside the ontology, said in the report
        return {lvl: geos2vec.count_features(pois, roads, level=lvl) for lvl in (10, 12, 14)}


# ----------------------------------------------------------------- images of a stored table
@pytest.mark.parametrize("level, image_level", [(14, 10), (10, 6)])
def test_a_stored_table_of_another_level_trains_on_16x16_images(tables, tmp_path, level, image_level):
    """Old: open_images (``geos2vec train --data t.parquet``, ``fit(path)``) always made level-8 images, so a
    level-14 table gave 64 x 64 pixels per image (4,096 patches: a 16-fold longer attention sequence than the
    model's 16 x 16) and a level-10 table 4 x 4 images, without a word."""
    from geos2vec.model.data import open_images

    table = tables[level]
    table.to_parquet(tmp_path / "t.parquet")
    da = open_images(tmp_path / "t.parquet")
    assert (da.sizes["row"], da.sizes["col"]) == (16, 16)
    assert (da.attrs["image_level"], da.attrs["patch_level"]) == (image_level, level)
    cells = table.index.to_numpy(np.uint64)
    # the images are the cells' parents at image_level, and each cell sits at its own row/col there
    assert np.array_equal(da["image"].values, np.unique(cell_to_parent(cells, image_level)))
    k = np.searchsorted(da["image"].values, cell_to_parent(cells, image_level))
    r, c = cell_to_rowcol(cells, image_level)
    assert np.array_equal(da["cell_id"].values[k, r, c], cells)
    road = list(da["feature"].values).index("road")
    assert np.array_equal(da.values[k, r, c, road], table["road"].to_numpy())
    assert geos2vec.to_frame(da).equals(table.sort_index())
