"""geos2vec.model.data: opening saved images (netCDF, Parquet tables), checking them, and their error branches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from geos2vec import cells as C
from geos2vec import raster as R
from geos2vec.errors import InvalidInputError
from geos2vec.model.data import check_images, image_levels, iter_blocks, open_images, split_images

NYC = (40.75, -73.98)


def _table(n=60, seed=0, nchan=3, level=12):
    """A small count table of level-12 cells around New York (uint64 ``cell_id`` index)."""
    rng = np.random.default_rng(seed)
    cells = np.unique(C.latlng_to_cell(NYC[0] + rng.uniform(-0.2, 0.2, n), NYC[1] + rng.uniform(-0.2, 0.2, n),
                                       level))
    counts = rng.integers(0, 9, size=(cells.size, nchan))
    return pd.DataFrame(counts, index=pd.Index(cells, name="cell_id"), columns=[f"c{k}" for k in range(nchan)])


def _netcdf3_images(da):
    """``da`` as netCDF 3 (scipy, the only netCDF writer here) holds it: no uint64 coordinates, int32 values."""
    out = da.drop_vars(["image", "token", "cell_id"]).astype(np.int32)
    out.attrs = {"image_level": 10, "patch_level": 12}
    return out


# --------------------------------------------------------------------------- open_images
def test_netcdf_file_with_one_image_variable_opens_as_written(tmp_path):
    written = _netcdf3_images(R.rasterize(_table(), image_level=10))
    written.to_netcdf(tmp_path / "images.nc")
    got = open_images(tmp_path / "images.nc")
    assert isinstance(got, xr.DataArray) and got.dims == ("image", "row", "col", "feature")
    xr.testing.assert_identical(got.load(), written)  # values, channel names, observed mask, attrs
    got.close()


def test_netcdf_file_needs_exactly_one_image_variable(tmp_path):
    written = _netcdf3_images(R.rasterize(_table(), image_level=10))
    xr.Dataset({"a": written, "b": written + 1}).to_netcdf(tmp_path / "two.nc")
    with pytest.raises(ValueError, match=r"two\.nc holds 2 variables with dims \('image', 'row', 'col', "
                                         r"'feature'\): \['a', 'b'\]; expected one"):
        open_images(tmp_path / "two.nc")
    xr.Dataset({"v": ("x", np.arange(3.0))}).to_netcdf(tmp_path / "none.nc")
    with pytest.raises(ValueError, match=r"none\.nc holds 0 variables .*: \[\]; expected one"):
        open_images(tmp_path / "none.nc")


@pytest.mark.parametrize("layout", ["index", "column", "signed column", "folder of files"])
def test_parquet_feature_table_is_rasterized(tmp_path, layout):
    """The cell ids as the index (``table.to_parquet``), as a column (uint64, or int64 as Spark, BigQuery and
    DuckDB write them), or a folder of Parquet parts: the same images as rasterizing the table itself."""
    table = _table()
    path = tmp_path / "t.parquet"
    if layout == "index":
        table.to_parquet(path)
    elif layout == "column":
        table.reset_index().to_parquet(path, index=False)
    elif layout == "signed column":
        flat = table.reset_index()
        flat["cell_id"] = flat["cell_id"].to_numpy().view(np.int64)
        assert (flat["cell_id"] < 0).all()  # New York's cells (face 4) lie above 2**63
        flat.to_parquet(path, index=False)
    else:
        path = tmp_path / "parts"
        path.mkdir()
        table.iloc[: len(table) // 2].to_parquet(path / "part-0.parquet")
        table.iloc[len(table) // 2:].to_parquet(path / "part-1.parquet")
    got = open_images(path)
    want = R.rasterize(table)
    xr.testing.assert_identical(got, want)
    # and the pixels hold the table's rows (a reference independent of rasterize)
    observed = got["observed"].values
    back = pd.DataFrame(got.values[observed], index=got["cell_id"].values[observed], columns=table.columns)
    pd.testing.assert_frame_equal(back.sort_index(), table.sort_index(), check_names=False)


@pytest.mark.parametrize("ids", ["none", "other name"])
def test_parquet_table_without_cell_ids_is_a_clear_error(tmp_path, ids):
    """A table written without its index (``to_parquet(index=False)``) or with the ids under another name
    gave "the feature table index: invalid S2 cell id(s) at positions [0, 2, 6, ...]" (the row numbers)."""
    table = _table()
    flat = table.reset_index(drop=ids == "none")
    if ids == "other name":
        flat = flat.rename(columns={"cell_id": "cell"})
    flat.to_parquet(tmp_path / "t.parquet", index=False)
    with pytest.raises(InvalidInputError, match=r"t\.parquet has no cell ids: no 'cell_id' column and no cell-id "
                                                r"index \(columns: \[.*'c0'.*\]\)\. Write the feature table "
                                                r"with its cell_id index .* or name the cell id column 'cell_id'"):
        open_images(tmp_path / "t.parquet")


def test_unknown_format_and_missing_path_are_named(tmp_path):
    (tmp_path / "images.csv").write_text("a,b\n1,2\n")
    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "images.csv", tmp_path / "empty"):
        with pytest.raises(ValueError, match=f"cannot read images from {bad}: expected a zarr store, a .nc file "
                                             "or a Parquet feature table"):
            open_images(bad)
    with pytest.raises(FileNotFoundError, match="no data at .*nothing.zarr"):
        open_images(tmp_path / "nothing.zarr")


# --------------------------------------------------------------------------- check_images
def test_check_images_refuses_non_real_values_missing_channels_and_no_images():
    da = R.rasterize(_table(), image_level=10)
    for dtype, shown in ((np.complex64, "complex64"), (np.str_, "<U")):
        with pytest.raises(TypeError, match=f"image values must be real numbers, got dtype {shown}"):
            check_images(da.astype(dtype))
    with pytest.raises(TypeError, match=r"got dtype bool; convert with da.astype\('uint8'\)"):
        check_images(da > 0)  # rasterize makes bool images of a bool table
    np.testing.assert_array_equal(check_images((da > 0).astype("uint8")).values, (da.values > 0).astype("uint8"))
    with pytest.raises(ValueError, match="needs a 'feature' coordinate with the channel names"):
        check_images(da.drop_vars("feature"))
    with pytest.raises(ValueError, match="the image DataArray holds no images"):
        check_images(da.isel(image=slice(0, 0)))
    # transposed dims are put back in order, values untouched
    moved = da.transpose("feature", "col", "image", "row")
    got = check_images(moved)
    assert got.dims == ("image", "row", "col", "feature")
    np.testing.assert_array_equal(got.values, np.transpose(moved.values, (2, 3, 1, 0)))


# --------------------------------------------------------------------------- image_levels
def test_image_levels_come_from_the_cell_ids_without_attrs():
    table = _table()
    da = R.rasterize(table, image_level=9)
    bare = da.copy()
    bare.attrs = {}
    # the levels the cells were built at, read with get_level on the table's own ids
    patch = int(np.unique(C.get_level(table.index.to_numpy()))[0])
    image = int(np.unique(C.get_level(np.unique(C.cell_to_parent(table.index.to_numpy(), 9))))[0])
    assert (image, patch) == (9, 12)
    assert image_levels(bare) == (image, patch)
    # attrs win over the coordinates
    assert image_levels(bare.assign_attrs(image_level=7, patch_level=11)) == (7, 11)
    # ids that are not cells (row numbers) and no images: unknown
    numbered = bare.assign_coords(image=np.arange(bare.sizes["image"], dtype=np.uint64),
                                  cell_id=(("image", "row", "col"), np.zeros(bare["cell_id"].shape, np.uint64)))
    assert image_levels(numbered) == (None, None)
    assert image_levels(bare.isel(image=slice(0, 0))) == (None, None)


# --------------------------------------------------------------------------- split_images / iter_blocks
def test_split_fraction_outside_zero_one_is_refused():
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=rf"validation fraction must be in \[0, 1\), got {bad}"):
            split_images(10, bad)
    # hand-checked edges: one image stays in training; a positive fraction of two holds one out
    train, val = split_images(1, 0.5)
    assert train.tolist() == [0] and val.tolist() == []
    train, val = split_images(2, 0.01, seed=3)
    assert sorted(train.tolist() + val.tolist()) == [0, 1] and len(val) == 1


def test_iter_blocks_without_observed_mask_or_coverage():
    da = R.rasterize(_table(), image_level=10).drop_vars("observed")
    values = da.values
    order = np.array([3, 0, 2, 1, 3])
    blocks = list(iter_blocks(da, order, block=2))
    assert [len(v) for v, _ in blocks] == [2, 2, 1] and all(len(b) == 2 for b in blocks)
    np.testing.assert_array_equal(np.concatenate([v for v, _ in blocks]), values[order])
    for v, mask in blocks:  # no observed mask: every pixel counts
        assert mask.dtype == bool and mask.shape == v.shape[:3] and mask.all()


def test_lazy_dataset_carries_the_available_channels():
    """Lazy (dask) images with an ``available`` coordinate stream ``"v"`` like in-memory ones."""
    tf = pytest.importorskip("tensorflow")  # noqa: F841
    from geos2vec.model.data import make_dataset
    from geos2vec.normalize import FeatureStats

    da = R.rasterize(_table(), image_level=10)
    rng = np.random.default_rng(1)
    available = rng.random(da.shape) < 0.7
    da = da.assign_coords(available=(da.dims, available))
    stats = FeatureStats.fit(da)
    lazy = da.chunk({"image": 2})
    batches = list(make_dataset(lazy, stats, batch_size=3, block=2))
    n, r, c, f = da.shape
    v = np.concatenate([b["v"].numpy() for b in batches])
    x = np.concatenate([b["x"].numpy() for b in batches])
    np.testing.assert_array_equal(v, available.reshape(n, r * c, f).astype(np.float32))
    ref = (da.values.reshape(n, r * c, f).astype(np.float64) - np.asarray(stats.mean)) / np.asarray(stats.std)
    np.testing.assert_allclose(x, ref, rtol=1e-5, atol=1e-5)
