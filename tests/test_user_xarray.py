"""An xarray user's round trips of raster images: arithmetic, reordering, concat, transposes, netCDF-read arrays.

References are pandas on the input table and S2 cell geometry (``cell_to_face_ij``), never the code's own output.
"""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from geos2vec import cells as C
from geos2vec import raster as R
from geos2vec.errors import InvalidInputError


@pytest.fixture(scope="module")
def table():
    """Counts on half the level-12 cells of two neighbouring level-8 images (Los Angeles), int64 and float64."""
    imgs = C.cell_to_children(C.cell_to_parent(C.latlng_to_cell(34.05, -118.25, 8), 7), 8).ravel()[:2]
    kids = C.cell_to_children(imgs, 12).ravel()
    rng = np.random.default_rng(1)
    kids = np.sort(rng.choice(kids, kids.size // 2, replace=False))
    return pd.DataFrame({"shop": rng.poisson(3.0, kids.size).astype(np.int64),
                         "share": rng.integers(0, 8, kids.size) / 4.0 + 0.25},   # never integral
                        index=pd.Index(kids, name="cell_id"))


def test_to_frame_keeps_values_after_arithmetic(table):
    # xarray keeps attrs (channel_dtypes: int64) through da / 2 and np.log1p(da): to_frame truncated 1.5 to 1
    da = R.rasterize(table[["shop"]])
    assert da.attrs["channel_dtypes"] == ["int64"]
    got = R.to_frame(da / 2)
    pd.testing.assert_series_equal(got["shop"], table["shop"].sort_index() / 2, check_names=False)
    got = R.to_frame(np.log1p(da))
    np.testing.assert_allclose(got["shop"].to_numpy(), np.log1p(table["shop"].sort_index().to_numpy()))


def test_to_frame_of_reordered_mixed_dtype_channels(table):
    # channel_dtypes is positional: after sel(feature=[...]) in another order, "share" (0.25, 0.5, ...) was cast
    # to int64 (truncated) and "shop" to float64
    da = R.rasterize(table)
    got = R.to_frame(da.sel(feature=["share", "shop"]))
    ref = table[["share", "shop"]].sort_index()
    assert list(got.columns) == ["share", "shop"]
    np.testing.assert_array_equal(got.to_numpy(float), ref.to_numpy(float))


def test_to_frame_of_concat_of_int_and_float_rasterizations(table):
    # xr.concat keeps the first array's attrs (channel_dtypes int64): the float images were truncated
    parents = C.cell_to_parent(table.index.to_numpy(np.uint64), 8)
    first = parents == parents.min()
    a, b = table.loc[first, ["shop"]], table.loc[~first, ["shop"]] + 0.5
    cat = xr.concat([R.rasterize(a), R.rasterize(b)], dim="image")
    ref = pd.concat([a.astype(float), b]).sort_index()
    np.testing.assert_array_equal(R.to_frame(cat)["shop"].to_numpy(), ref["shop"].to_numpy())


def test_to_frame_refuses_a_cell_with_two_values(table):
    da = R.rasterize(table)
    with pytest.raises(InvalidInputError, match="different values"):
        R.to_frame(xr.concat([da, da + 1], dim="image"))
    same = R.to_frame(xr.concat([da, da], dim="image"))  # repeated, equal: once
    pd.testing.assert_frame_equal(same, R.to_frame(da))


def test_concat_along_feature_is_refused_with_the_fix(table):
    # each channel got its own cell_id/observed (dims feature, image, row, col): raw IndexError before
    shop = table[["shop"]]
    cat = xr.concat([R.rasterize(shop), R.rasterize(table.loc[table["shop"] > 3, ["share"]])], dim="feature",
                    coords="different", compat="equals")
    for f in (R.to_frame, R.windows, R.augment, R.plot_image):
        with pytest.raises(InvalidInputError, match="join the tables|Join the tables"):
            f(cat)


def _contiguous(w) -> bool:
    """Every step along row or col of every window moves to a neighbouring cell on the face grid."""
    face, i, j = C.cell_to_face_ij(w["cell_id"].values)
    ok = np.ptp(face.reshape(len(face), -1), axis=1) == 0
    for axis in (1, 2):
        ok &= (np.abs(np.diff(i, axis=axis)) + np.abs(np.diff(j, axis=axis)) == 1).all(axis=(1, 2))
    return bool(ok.all())


def test_windows_refuse_cropped_or_flipped_images(table):
    da = R.rasterize(table)
    assert _contiguous(R.windows(da, size=4, stride=4))
    # cropped rows (8 x 16) or rows flipped with isel: windows were scattered cells, not squares of neighbours
    for bad in (da.isel(row=slice(0, 8)), da.isel(row=slice(0, 8), col=slice(0, 8)),
                da.isel(row=slice(None, None, -1))):
        with pytest.raises(InvalidInputError, match="whole images"):
            R.windows(bad, size=4, stride=4)


def test_zarr_of_an_array_read_from_netcdf(table, tmp_path):
    # xr.open_dataarray("x.nc") names its coordinates in .encoding, "token" too; to_zarr wrote that list and
    # open_zarr refused the store as having lost its "token" array
    da = R.rasterize(table)
    da.encoding["coordinates"] = "cell_id observed token"  # what the netCDF reader leaves there
    R.to_zarr(da, tmp_path / "x.zarr")
    back = R.open_zarr(tmp_path / "x.zarr")
    assert da.encoding["coordinates"] == "cell_id observed token"  # the user's array is left as it was
    pd.testing.assert_frame_equal(R.to_frame(back), R.to_frame(da))
    np.testing.assert_array_equal(back["token"].values, C.cell_to_token(np.asarray(da["image"].values)))


def test_embed_refuses_flipped_images_but_patch_mode_reads_them():
    """A flipped image is another picture: contextual/tiled/image embeddings of its cells differed silently
    (by up to 0.5) from those of the whole image; they are refused now. Patch mode reads each pixel alone."""
    import warnings

    import geos2vec
    from geos2vec.demo import load_sample
    from geos2vec.features import count_features

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        da = R.rasterize(count_features(*load_sample(), level=12))
    model = geos2vec.load_model("default")
    flipped = da.isel(row=slice(None, None, -1))
    for mode in ("contextual", "tiled", "image"):
        with pytest.raises(InvalidInputError, match=rf"embed\(mode='{mode}'\) needs whole images"):
            model.embed(flipped, mode=mode, verbose=False)
    want = model.embed(da, mode="patch", verbose=False).sortby("cell")
    got = model.embed(flipped, mode="patch", verbose=False).sortby("cell")
    # the same bits in earlier CI runs; with numpy 2.4.6's OpenBLAS the row order changes some float32 sums
    np.testing.assert_allclose(got.values, want.values, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got["cell"].values, want["cell"].values)
