"""A user comparing embedding modes and contexts (embed_cells, S2VecModel.embed) on awkward inputs."""

import copy
import warnings

import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec import cells as C
from geos2vec.errors import InvalidInputError
from geos2vec.raster import rasterize


@pytest.fixture(scope="module")
def model():
    return geos2vec.load_model("default")


@pytest.fixture(scope="module")
def island(model):
    """Counts in 40 cells of one level-8 image; its eight neighbouring images have no feature at all."""
    lon, lat = np.array([-96.73]), np.array([43.54])
    image = C.cell_to_parent(C.latlng_to_cell(lat, lon, 12), 8)
    kids = np.sort(np.asarray(C.cell_to_children(np.asarray(image, np.uint64), 12)).ravel())
    rng = np.random.default_rng(0)
    cells = np.sort(rng.choice(kids, 40, replace=False))
    counts = rng.poisson(2.0, (cells.size, len(model.channels)))
    table = pd.DataFrame(counts, index=pd.Index(cells, name="cell_id"), columns=list(model.channels))
    return np.asarray(image, np.uint64).ravel(), table


def _missing_token_model(model):
    m = copy.deepcopy(model)
    m.numpy_weights = dict(m.numpy_weights)
    m.numpy_weights["missing_embed"] = np.random.default_rng(1).normal(0, 1, m.embedding_dim).astype(np.float32)
    m.config.missing_token = True
    if getattr(m, "weights_architecture", None):
        m.weights_architecture = {**m.weights_architecture, "missing_token": True}
    return m


def test_missing_token_model_sees_empty_neighbour_images_as_empty(model, island):
    # the table records no coverage, so it counts as covered everywhere: the neighbouring images without a
    # feature are known-empty land; embed_cells used to leave them out, so a model with a missing token read
    # them as "no data"
    image, table = island
    m = _missing_token_model(model)
    cells = table.index.to_numpy(np.uint64)
    got = geos2vec.embed_cells(cells, table, model=m, progress=False)
    ring = np.unique(C.grid_disk(image, 1))
    assert ring.size == 9
    everything = rasterize(table, image_level=8, images=ring)   # all nine images given, all covered
    ref = m.embed(everything, "contextual", cells=cells, verbose=False).values
    np.testing.assert_allclose(got.to_numpy(), ref, atol=1e-5)
    alone = m.embed(rasterize(table, image_level=8, images=image), "contextual", cells=cells, verbose=False).values
    assert np.abs(alone - ref).max() > 1e-2   # the neighbours do matter for this model
    # the bundled model has no missing token: empty neighbours and absent ones read the same
    plain = geos2vec.embed_cells(cells, table, model=model, progress=False).to_numpy()
    np.testing.assert_allclose(plain, model.embed(everything, "contextual", cells=cells, verbose=False).values,
                               atol=1e-5)


def test_explicit_cells_of_wrong_level_say_how_to_fix(model, island):
    _, table = island
    da = rasterize(table, image_level=8)
    finer = np.asarray(C.cell_to_children(table.index.to_numpy(np.uint64)[:1], 13)).ravel()
    with pytest.raises(InvalidInputError, match=r"level\(s\) \[13\].*cell_to_parent\(cells, 12\)"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.embed(da, "contextual", cells=finer, verbose=False)


def test_one_image_selected_without_its_dimension_says_how_to_keep_it():
    import geos2vec
    from geos2vec.errors import InvalidInputError

    model = geos2vec.load_model("default")
    pois, roads = geos2vec.demo.load_sample()
    da = geos2vec.rasterize(geos2vec.count_features(pois, roads))
    with pytest.raises(InvalidInputError, match=r"got \('row', 'col', 'feature'\); one image: keep its dimension "
                                                r"with da.isel\(image=\[k\]\)"):
        model.embed(da.isel(image=0), verbose=False)
    one = model.embed(da.isel(image=[0]), verbose=False)                # the fix works, and gives image 0's cells
    first = da.isel(image=0)
    assert sorted(one["cell"].values.tolist()) == sorted(first["cell_id"].values[first["observed"].values].tolist())
