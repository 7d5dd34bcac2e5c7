"""A user keeping rasterized images of big areas in zarr stores: what a write may delete, and what it reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from geos2vec import cells as C
from geos2vec.errors import InvalidInputError

pytest.importorskip("zarr")
pytest.importorskip("dask")
from geos2vec import raster as R  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _table(n=120, seed=0, names=("shop=bakery", "amenity=café", "roads"), lat=40.75, lng=-73.98):
    rng = np.random.default_rng(seed)
    ids = np.unique(C.latlng_to_cell(lat + 0.4 * rng.random(n), lng + 0.4 * rng.random(n), 12))
    return pd.DataFrame(rng.integers(0, 50, (len(ids), len(names))), columns=list(names),
                        index=pd.Index(ids, name="cell_id"))


@pytest.fixture(scope="module")
def images():
    return R.rasterize(_table())


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- what a write may delete
def test_a_folder_of_other_files_is_refused_not_emptied(images, tmp_path):
    docs = tmp_path / "Documents"
    (docs / "thesis").mkdir(parents=True)
    (docs / "thesis" / "chapter1.tex").write_text("precious")
    (docs / "notes.txt").write_text("also precious")
    with pytest.raises(InvalidInputError, match="folder of other files.*new \\(or empty\\) folder"):
        R.to_zarr(images, docs)  # mode "w" deleted both files and wrote the store in their place
    assert _files(docs) == ["notes.txt", "thesis/chapter1.tex"]
    assert (docs / "notes.txt").read_text() == "also precious"
    with pytest.raises(InvalidInputError, match="folder of other files"):
        R.to_zarr(images, docs, mode="w")  # asking for mode "w" overwrites a store, not a folder of files
    assert _files(docs) == ["notes.txt", "thesis/chapter1.tex"]
    (tmp_path / "empty").mkdir()  # what may be written: an empty folder, and an earlier store of geos2vec
    R.to_zarr(images, tmp_path / "empty")
    xr.testing.assert_identical(R.open_zarr(tmp_path / "empty").compute(), images)
    big = R.rasterize(_table(400, seed=1, names=("a", "b", "c", "d", "e")))
    big.attrs["old"] = "stale"
    R.to_zarr(big.chunk({"image": 1}), tmp_path / "s.zarr")
    R.to_zarr(images, tmp_path / "s.zarr")  # smaller, over a bigger store: nothing of it is left
    xr.testing.assert_identical(R.open_zarr(tmp_path / "s.zarr").compute(), images)
    assert [f for f in _files(tmp_path / "s.zarr") if "/c/" in f] == [
        "cell_id/c/0/0/0", "features/c/0/0/0/0", "image/c/0", "observed/c/0/0/0"]


@pytest.mark.parametrize("form", ["file://", "LocalStore"])
def test_a_folder_of_other_files_given_as_a_url_or_a_store_is_refused(images, tmp_path, form):
    import zarr

    docs = tmp_path / "Documents"
    docs.mkdir()
    (docs / "notes.txt").write_text("precious")
    store = f"file://{docs}" if form == "file://" else zarr.storage.LocalStore(docs)
    with pytest.raises(InvalidInputError, match="folder of other files"):
        R.to_zarr(images, store)  # file://: the folder was deleted whole; LocalStore: emptied
    assert _files(docs) == ["notes.txt"]
    if form == "LocalStore":  # an empty one is written, and a rewrite from itself is refused
        store = zarr.storage.LocalStore(tmp_path / "s.zarr")
        R.to_zarr(images.chunk({"image": 1}), store)
        xr.testing.assert_identical(R.open_zarr(store).compute(), images)
        with pytest.raises(InvalidInputError, match="read lazily"):
            R.to_zarr(R.open_zarr(tmp_path / "s.zarr") + 1, store)


def test_a_file_is_refused_with_a_geos2vec_error(images, tmp_path):
    path = tmp_path / "images.zarr"
    path.write_bytes(b"not a store")
    with pytest.raises(InvalidInputError, match="is a file, not a zarr store"):  # was a bare FileExistsError
        R.to_zarr(images, str(path))
    assert path.read_bytes() == b"not a store"


def test_a_zarr_store_of_other_data_is_kept_unless_mode_w_is_asked_for(images, tmp_path):
    store = tmp_path / "era5.zarr"
    temperature = xr.Dataset({"t2m": (("time", "x"), np.arange(12.0).reshape(3, 4))}, attrs={"source": "ERA5"})
    temperature.to_zarr(store, consolidated=False)
    with pytest.raises(InvalidInputError, match="did not write; pass mode='w'"):
        R.to_zarr(images, store)
    xr.testing.assert_identical(xr.open_zarr(store, consolidated=False).compute(), temperature)
    R.to_zarr(images, store, mode="w")  # asked for: overwritten, wholly
    xr.testing.assert_identical(R.open_zarr(store).compute(), images)
    assert "t2m" not in xr.open_zarr(store, consolidated=False)


# --------------------------------------------------------------------------- a write that reads its own store
@pytest.mark.parametrize("where", ["path", "memory"])
def test_rewriting_a_store_from_its_own_lazy_images_is_refused(images, tmp_path, where):
    store = tmp_path / "s.zarr" if where == "path" else f"memory://own-{tmp_path.name}.zarr"
    R.to_zarr(images.chunk({"image": 1}), store)
    lazy = R.open_zarr(store)
    with pytest.raises(InvalidInputError, match="read lazily from .* itself.*da.load"):
        R.to_zarr(lazy * 2, store)  # deleted the chunks before reading them: a store of zeros, marked complete
    with pytest.raises(InvalidInputError, match="read lazily"):  # through dask.delayed too
        R.to_zarr(R.windows(R.open_zarr(store, chunks={"image": 2}), 8, stride=8), store)
    xr.testing.assert_identical(R.open_zarr(store).compute(), images)  # untouched
    R.to_zarr((lazy * 2).load(), store)  # loaded first: the doubled images
    np.testing.assert_array_equal(R.open_zarr(store).values, 2 * images.values)
    other = tmp_path / "other.zarr" if where == "path" else f"memory://other-{tmp_path.name}.zarr"
    R.to_zarr(R.open_zarr(store) + 1, other)  # to another store: lazily, as before
    np.testing.assert_array_equal(R.open_zarr(other).values, 2 * images.values + 1)


def test_rewriting_a_store_object_from_its_own_lazy_images_is_refused(images):
    import zarr

    store = zarr.storage.MemoryStore()
    R.to_zarr(images.chunk({"image": 2}), store)
    with pytest.raises(InvalidInputError, match="read lazily"):
        R.to_zarr(R.open_zarr(store).isel(feature=[2, 0]), store)
    xr.testing.assert_identical(R.open_zarr(store).compute(), images)


# --------------------------------------------------------------------------- open_images (fit, geos2vec train --data)
def test_open_images_reads_a_store_at_an_fsspec_url(images, tmp_path):
    from geos2vec.model.data import open_images

    url = f"memory://open-images-{tmp_path.name}.zarr"
    R.to_zarr(images, url)
    xr.testing.assert_identical(open_images(url).compute(), images)  # was "no data at memory:/open-images-..."


def test_open_images_names_a_table_partitioned_into_folders(tmp_path):
    from geos2vec.model.data import open_images

    table = _table()
    table.assign(state=np.where(np.arange(len(table)) % 2, "NY", "NJ")).to_parquet(tmp_path / "t",
                                                                                   partition_cols=["state"])
    with pytest.raises(InvalidInputError, match=r"partitioned into folders \(\['state=NJ', 'state=NY'\]\)"):
        open_images(tmp_path / "t")  # was "expected a zarr store, a .nc file or a Parquet feature table"
    (tmp_path / "flat").mkdir()
    table.to_parquet(tmp_path / "flat" / "part.0.parquet")  # files directly in the folder: read
    xr.testing.assert_identical(open_images(tmp_path / "flat"), R.rasterize(table))


# --------------------------------------------------------------------------- FeatureStats as JSON
def test_feature_stats_saved_onto_a_folder_or_into_a_missing_one_say_so(tmp_path):
    from geos2vec.normalize import FeatureStats

    stats = FeatureStats.fit(_table().astype(float))
    (tmp_path / "stats").mkdir()
    (tmp_path / "stats" / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="stats is a folder; give the path of a file"):
        stats.save(tmp_path / "stats")  # was IsADirectoryError: '.../.stats.<pid>@<host>.<hex>.tmp' -> '.../stats'
    with pytest.raises(InvalidInputError, match="missing is not an existing folder; create the folder first"):
        stats.save(tmp_path / "missing" / "stats.json")  # was FileNotFoundError naming the hidden temporary file
    with pytest.raises(InvalidInputError, match=r"keep.txt is not an existing folder \(it is a file\)"):
        stats.save(tmp_path / "stats" / "keep.txt" / "stats.json")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["keep.txt", "stats"]  # nothing left behind
    assert FeatureStats.load(stats.save(tmp_path / "stats" / "s.json")) == stats


# --------------------------------------------------------------------------- dtypes through a store
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_float16_table_is_rasterized_and_stored_exactly(tmp_path, zarr_format):
    table = (_table(names=("a", "b")) / 8).astype(np.float16)  # halves of memory: was NotImplementedError: float16
    da = R.rasterize(table)
    assert da.dtype == np.float16
    ids = da["cell_id"].values.ravel()
    pixels = da.values.reshape(-1, 2)
    ref = table.reindex(ids, fill_value=np.float16(0)).to_numpy()  # every pixel: its cell's row, else 0
    np.testing.assert_array_equal(pixels, ref)
    R.to_zarr(R.rasterize(table, chunks=1), tmp_path / "h.zarr", zarr_format=zarr_format)
    back = R.open_zarr(tmp_path / "h.zarr").compute()
    xr.testing.assert_identical(back, da)
    pd.testing.assert_frame_equal(R.to_frame(back), R.to_frame(da))
    assert R.to_frame(back).dtypes.tolist() == [np.float16, np.float16]


# --------------------------------------------------------------------------- updates keep the store's channel names
def test_an_update_with_other_channels_is_refused_not_mislabelled(tmp_path):
    store = tmp_path / "s.zarr"
    old = R.rasterize(_table(names=("x", "y", "z")))
    R.to_zarr(old.chunk({"image": 1}), store)
    n = old.sizes["image"]
    swapped = old.isel(feature=[2, 1, 0])  # the same images, channels in another order
    with pytest.raises(InvalidInputError, match=r"holds the channels \['x', 'y', 'z'\].*\['z', 'y', 'x'\]"):
        R.to_zarr(swapped.isel(image=slice(0, 1)), store, region={"image": slice(0, 1)})  # z's values under "x"
    other = R.rasterize(_table(seed=5, names=("p", "q", "r")))
    with pytest.raises(InvalidInputError, match="update writes only the values"):
        R.to_zarr(other, store, mode="a")  # p, q, r's values read back as x, y, z (and the old attrs)
    with pytest.raises(InvalidInputError, match="update writes only the values"):
        R.to_zarr(other, store, append_dim="image")
    xr.testing.assert_identical(R.open_zarr(store).compute(), old)  # untouched, still marked complete
    R.to_zarr(swapped.sel(feature=["x", "y", "z"]).isel(image=slice(0, 1)) * 2, store, region={"image": slice(0, 1)})
    back = R.open_zarr(store).compute()  # in the store's order: written
    np.testing.assert_array_equal(back.values[0], 2 * old.values[0])
    np.testing.assert_array_equal(back.values[1:n], old.values[1:n])
    assert list(back["feature"].values) == ["x", "y", "z"]


def test_an_update_that_zarr_would_cast_or_duplicate_is_refused(tmp_path):
    store = tmp_path / "s.zarr"
    first = R.rasterize(_table(names=("x", "y", "z")))
    R.to_zarr(first, store)
    n = first.sizes["image"]
    elsewhere = R.rasterize(_table(seed=3, names=("x", "y", "z"), lat=-33.9, lng=151.0))  # Sydney: other images
    halves = (elsewhere / 4).astype(np.float64)  # 2.25 was stored as 2 in the int64 store, marked complete
    with pytest.raises(InvalidInputError, match="holds int64 images, and these are float64.*2.25 stored as 2"):
        R.to_zarr(halves, store, append_dim="image")
    with pytest.raises(InvalidInputError, match="holds int64 images"):
        R.to_zarr((first / 4).isel(image=slice(0, 1)), store, region={"image": slice(0, 1)})
    with pytest.raises(InvalidInputError, match=f"{n} of the images appended .* are in it already"):
        R.to_zarr(first, store, append_dim="image")  # held every image twice
    xr.testing.assert_identical(R.open_zarr(store).compute(), first)  # untouched, still complete
    R.to_zarr(elsewhere.astype(np.int32), store, append_dim="image")  # new images, a dtype int64 holds: written
    back = R.open_zarr(store).compute()
    np.testing.assert_array_equal(back["image"].values, np.concatenate([first["image"].values,
                                                                       elsewhere["image"].values]))
    np.testing.assert_array_equal(back.values, np.concatenate([first.values, elsewhere.values]))


def test_an_append_records_the_union_of_the_coverages(tmp_path):
    import shapely

    from geos2vec.coverage import covered_mask, get_coverage, set_coverage

    nyc = set_coverage(_table(names=("x", "y", "z")), (-74.0, 40.7, -73.5, 41.2))
    sydney = set_coverage(_table(seed=3, names=("x", "y", "z"), lat=-33.9, lng=151.0), (150.9, -34.0, 151.5, -33.4))
    store = tmp_path / "s.zarr"
    R.to_zarr(R.rasterize(nyc), store)
    R.to_zarr(R.rasterize(sydney), store, append_dim="image")
    table = R.to_frame(R.open_zarr(store).compute())
    union = shapely.union_all([shapely.box(-74.0, 40.7, -73.5, 41.2), shapely.box(150.9, -34.0, 151.5, -33.4)])
    assert get_coverage(table)[0].equals(union)  # was New York's box alone
    empty_in_sydney = np.setdiff1d(C.latlng_to_cell(np.linspace(-33.8, -33.5, 40), np.full(40, 151.2), 12),
                                   sydney.index.to_numpy())
    assert covered_mask(empty_in_sydney, table)[0].all()  # empty there, not missing
    unknown = tmp_path / "u.zarr"  # a store of unknown coverage and images of a known one: refused
    R.to_zarr(R.rasterize(_table(names=("x", "y", "z"))), unknown)
    with pytest.raises(InvalidInputError, match=r"has the masks \[\] and these images \['covered'\]"):
        R.to_zarr(R.rasterize(sydney), unknown, append_dim="image")  # wrote a 'covered' of Sydney's images alone
    R.open_zarr(unknown)  # untouched: it opens (it did not: "conflicting sizes for dimension 'image'")


def test_an_update_of_other_sizes_is_refused_before_the_store_is_unmarked(tmp_path):
    store = tmp_path / "s.zarr"
    first = R.rasterize(_table(names=("x", "y", "z")))
    R.to_zarr(first.chunk({"image": 1}), store)
    rng = np.random.default_rng(1)
    fine = np.unique(C.latlng_to_cell(-33.9 + 0.3 * rng.random(50), 151.0 + 0.3 * rng.random(50), 14))
    level14 = R.rasterize(pd.DataFrame(rng.integers(0, 9, (len(fine), 3)), columns=["x", "y", "z"],
                                       index=pd.Index(fine, name="cell_id")))  # 64 x 64 pixels a level-8 image
    with pytest.raises(InvalidInputError, match="have 64 along 'row'.* takes 16 there"):
        R.to_zarr(level14, store, append_dim="image")  # xarray refused it too, after the store was unmarked
    with pytest.raises(InvalidInputError, match="have 3 along 'image'.* takes 2 there"):
        R.to_zarr(first.isel(image=slice(0, 3)), store, region={"image": slice(1, 3)})
    xr.testing.assert_identical(R.open_zarr(store).compute(), first)  # was "not completely written": rewrite all
    R.to_zarr(first.isel(image=slice(1, 3)) + 1, store, region={"image": slice(1, 3)})  # the right size: written
    np.testing.assert_array_equal(R.open_zarr(store).values[1:3], first.values[1:3] + 1)


def test_an_update_xarray_refuses_before_writing_leaves_the_store_complete(tmp_path):
    import os
    import time

    store = tmp_path / "s.zarr"
    first = R.rasterize(_table(400, names=("x", "y", "z")))
    assert first.sizes["image"] >= 4
    R.to_zarr(first.chunk({"image": 2}), store)
    an_hour_ago = time.time() - 3600  # a store written earlier (chunk files modified in the last 2 s count as new)
    for f in store.rglob("*"):
        os.utime(f, (an_hour_ago, an_hour_ago))
    unaligned = first.isel(image=slice(1, 3)).chunk({"image": 1})  # dask chunks that share a zarr chunk
    with pytest.raises(ValueError, match="overlap multiple Dask chunks"):
        R.to_zarr(unaligned, store, region={"image": slice(1, 3)})
    xr.testing.assert_identical(R.open_zarr(store).compute(), first)  # was "not completely written"

    def fail_on_second_block(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 1:
            time.sleep(0.5)  # once the first block is written
            raise RuntimeError("disk full")
        return block

    part = first.isel(image=slice(0, 4)).chunk({"image": 2}) + 1
    part = part.copy(data=part.data.map_blocks(fail_on_second_block, dtype=part.dtype))
    with pytest.raises(RuntimeError, match="disk full"):
        R.to_zarr(part, store, region={"image": slice(0, 4)})  # the first block is written, then a failure
    assert os.stat(next((store / "features" / "c").glob("0/*/*/*"))).st_mtime > an_hour_ago + 60
    with pytest.raises(InvalidInputError, match="not completely written"):  # it wrote: stays unmarked
        R.open_zarr(store)
