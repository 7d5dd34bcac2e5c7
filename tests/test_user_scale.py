"""Scaling out with dask and zarr as a user would: empty dask tables, interrupted updates and re-runs into an
existing store, appends, and lazily augmented windows written to zarr. Real data: Los Angeles OSM POIs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from geos2vec import raster as R
from geos2vec.errors import InvalidInputError

dd = pytest.importorskip("dask.dataframe")
dsa = pytest.importorskip("dask.array")
pytest.importorskip("zarr")


@pytest.fixture(scope="module")
def la_table(shared_data):
    import warnings

    import geopandas as gpd

    import geos2vec

    pois = gpd.read_parquet(shared_data / "pois" / "los_angeles.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # dropped categories
        return geos2vec.count_features(pois)


@pytest.fixture(scope="module")
def la_images(la_table):
    da = R.rasterize(la_table)
    assert da.sizes["image"] == 4  # the four level-8 images of the shared sample
    return da


def _dying(da: xr.DataArray, at: int) -> xr.DataArray:
    """``da`` (dask-backed) whose block ``at`` along the first dim raises, like a killed writer."""
    def boom(block, block_info=None):
        if block_info[0]["chunk-location"][0] == at:
            raise RuntimeError("writer killed")
        return block

    return da.copy(data=dsa.map_blocks(boom, da.data, dtype=da.dtype))


# --------------------------------------------------------------------------- rasterize of an empty dask table
def test_rasterize_empty_dask_table_says_empty_not_divisions(la_table):
    empty = dd.from_pandas(la_table.iloc[:0], npartitions=1)
    assert not empty.known_divisions  # an empty frame has none, whatever is done to it
    assert not empty.reset_index().set_index("cell_id").known_divisions  # the advice of the old message
    with pytest.raises(InvalidInputError, match="feature table is empty.*images= or area="):
        R.rasterize(empty)
    # with images= it rasterizes, as the in-memory empty table does: all fill, nothing observed
    imgs = np.unique(np.asarray(la_table.index, dtype=np.uint64) >> np.uint64(2 * (30 - 8) + 1))
    imgs = (imgs << np.uint64(2 * (30 - 8) + 1)) | (np.uint64(1) << np.uint64(2 * (30 - 8)))  # level-8 parents
    lazy = R.rasterize(empty, images=imgs, patch_level=12)
    xr.testing.assert_identical(lazy.compute(), R.rasterize(la_table.iloc[:0], images=imgs, patch_level=12))
    assert lazy.sizes["image"] == 4 and not lazy["observed"].values.any() and int(abs(lazy).sum()) == 0
    # a table with rows still needs known divisions, and is told so
    with pytest.raises(InvalidInputError, match="known divisions"):
        R.rasterize(dd.from_pandas(la_table, npartitions=2).clear_divisions())


@pytest.mark.parametrize("nparts", [1, 4])
def test_rasterize_dask_table_with_signed_cell_ids(shared_data, nparts):
    """Cell ids stored as int64 (as other tools write them): faces 4 and 5 are negative, Vermont spans 2 and 4."""
    import geos2vec

    venues = pd.read_parquet(shared_data / "wof" / "us-vt.parquet", columns=["lon", "lat"]).iloc[::40]
    venues["fclass"] = "restaurant"
    t = geos2vec.count_features(venues, coverage="infer")
    assert set((t.index.to_numpy() >> np.uint64(61)).tolist()) == {2, 4}  # ids of both signs as int64
    signed = t.copy()
    signed.index = pd.Index(t.index.to_numpy().view(np.int64), name="cell_id")
    want = R.rasterize(t)
    assert int(want["observed"].sum()) == len(t) and int(want.sum()) == int(t.to_numpy().sum())
    got = R.rasterize(dd.from_pandas(signed, npartitions=nparts), chunks=4)
    xr.testing.assert_identical(got.compute(), want)  # not images of zeros where observed says data


def test_rasterize_dask_table_with_signed_cell_ids_of_one_sign(la_table, la_images):
    signed = la_table.copy()
    signed.index = pd.Index(la_table.index.to_numpy().view(np.int64), name="cell_id")
    assert (signed.index < 0).all()  # Los Angeles lies on face 4
    got = R.rasterize(dd.from_pandas(signed, npartitions=3), chunks=1)
    xr.testing.assert_identical(got.compute(), la_images)


# --------------------------------------------------------------------------- interrupted writes and re-runs
def test_open_after_interrupted_append_refuses_with_geos2vec_error(la_images, tmp_path):
    store = tmp_path / "a.zarr"
    R.to_zarr(la_images.isel(image=slice(0, 2)).chunk({"image": 2}), store)
    # two dask chunks of 1 image into one zarr chunk of 2: xarray refuses the append after growing some arrays
    with pytest.raises(ValueError, match="overlap"):
        R.to_zarr(la_images.isel(image=slice(2, None)).chunk({"image": 1}), store, mode="a", append_dim="image")
    with pytest.raises(InvalidInputError, match="not completely written"):
        R.open_zarr(store)


def test_update_does_not_complete_a_store_another_update_left_unfinished(la_images, tmp_path):
    store = tmp_path / "r.zarr"
    lazy = la_images.chunk({"image": 1})
    R.to_zarr(lazy, store)
    new = lazy + 100
    with pytest.raises(RuntimeError, match="writer killed"):  # images 0-1 rewritten: dies at image 1
        R.to_zarr(_dying(new.isel(image=slice(0, 2)), at=1), store, mode="r+", region={"image": slice(0, 2)})
    R.to_zarr(new.isel(image=slice(2, 3)), store, mode="r+", region={"image": slice(2, 3)})  # another region
    with pytest.raises(InvalidInputError, match="not completely written"):  # images 0-1 are half new, half old
        R.open_zarr(store)
    R.to_zarr(new.isel(image=slice(0, 2)), store, mode="r+", region={"image": slice(0, 2)})  # re-run: finished
    want = la_images.values.copy()
    want[:3] += 100
    np.testing.assert_array_equal(R.open_zarr(store).values, want)


def test_region_writes_into_an_unmarked_store_do_not_mark_it(la_images, tmp_path):
    store = tmp_path / "t.zarr"
    lazy = la_images.chunk({"image": 1})
    R.to_zarr(lazy, store, compute=False)  # a template: the marking is the user's
    R.to_zarr(lazy.isel(image=slice(0, 1)), store, mode="r+", region={"image": slice(0, 1)})
    with pytest.raises(InvalidInputError, match="not completely written.*mark_zarr_complete"):
        R.open_zarr(store)  # not "lost chunk files (a partial copy or sync?)"
    R.to_zarr(lazy.isel(image=slice(1, None)), store, mode="r+", region={"image": slice(1, None)})
    R.mark_zarr_complete(store)
    np.testing.assert_array_equal(R.open_zarr(store).values, la_images.values)


def test_append_dim_without_mode_appends(la_images, tmp_path):
    store = tmp_path / "p.zarr"
    R.to_zarr(la_images.isel(image=slice(0, 2)), store)
    R.to_zarr(la_images.isel(image=slice(2, None)), store, append_dim="image")  # as xarray: mode "a"
    xr.testing.assert_identical(R.open_zarr(store).compute(), la_images)
    R.to_zarr(la_images.isel(image=slice(0, 1)), store)  # no append_dim/region: still overwrites
    assert R.open_zarr(store).sizes["image"] == 1


# --------------------------------------------------------------------------- lazy windows and augment to zarr
def test_lazily_augmented_windows_write_to_zarr(la_images, tmp_path):
    R.to_zarr(la_images.chunk({"image": 1}), tmp_path / "img.zarr")
    lazy = R.augment(R.windows(R.open_zarr(tmp_path / "img.zarr"), size=16, stride=8, chunk_windows=2),
                     transforms=[0, 5])
    assert lazy.chunks is not None and len(set(lazy.chunks[0][:-1])) > 1  # unequal chunks, as zarr refuses
    R.to_zarr(lazy, tmp_path / "win.zarr")
    back = R.open_zarr(tmp_path / "win.zarr")
    want = R.augment(R.windows(la_images, size=16, stride=8), transforms=[0, 5])
    np.testing.assert_array_equal(back.values, want.values)
    np.testing.assert_array_equal(back["cell_id"].values, want["cell_id"].values)
    np.testing.assert_array_equal(back["transform"].values, want["transform"].values)
    assert R.to_frame(back).equals(R.to_frame(la_images))  # every value still maps to its cell


def test_dask_table_from_partitioned_parquet_round_trips(la_table, la_images, tmp_path):
    dd.from_pandas(la_table, npartitions=3).to_parquet(tmp_path / "t")
    ddf = dd.read_parquet(tmp_path / "t", calculate_divisions=True)
    lazy = R.rasterize(ddf, chunks=1)
    R.to_zarr(lazy, tmp_path / "d.zarr")
    back = R.open_zarr(tmp_path / "d.zarr")
    np.testing.assert_array_equal(back.values, la_images.values)
    pd.testing.assert_frame_equal(R.to_frame(back), la_table.sort_index(), check_names=False)


# --------------------------------------------------------------------------- embed_cells with a dask count table
def test_embed_cells_takes_a_dask_count_table(la_table):
    import geos2vec

    ids = la_table.index.to_numpy()[[0, 40, 80, 0]]  # a duplicate too
    want = geos2vec.embed_cells(ids, la_table, mode="tiled", progress=False)
    table = dd.from_pandas(la_table, npartitions=2)  # as dd.read_parquet of a written table gives it
    lazy = geos2vec.embed_cells(dd.from_pandas(pd.Series(ids), npartitions=2), table, mode="tiled", progress=False)
    got = lazy.compute()  # not counted as if the table were POIs
    np.testing.assert_array_equal(got.index.to_numpy(), ids)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=0, atol=1e-6)
