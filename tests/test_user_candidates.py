"""Candidate problems a user meets: H3 ids given as S2 ids, a dropped image dimension, object extras on dask,
plain Parquet with WKB geometries."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from geos2vec import cells
from geos2vec.errors import Geos2VecWarning, InvalidInputError

h3 = pytest.importorskip("h3")
s2sphere = pytest.importorskip("s2sphere")


def _h3_int(lat, lng, res):
    return h3.str_to_int(h3.latlng_to_cell(lat, lng, res))


def _s2_leaf(lat, lng):
    return s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lng)).id()


# --------------------------------------------------------------------------- 1. H3 indexes as S2 ids
def test_h3_index_refused_with_conversion_advice():
    i = _h3_int(40.7, -74.0, 9)
    assert cells.is_valid_cell(i)  # it IS a valid S2 id (a leaf in the Atlantic): the silent case
    leaf_lat = s2sphere.LatLng.from_point(s2sphere.CellId(i).to_point()).lat().degrees
    assert 0 < leaf_lat < 10  # nowhere near New York
    for call in (cells.cell_polygons, cells.cell_to_latlng, cells.get_level, cells.cell_to_token,
                 lambda c: cells.cell_to_parent(c, 12)):
        for form in (i, np.int64(np.uint64(i).view(np.int64)), [i], np.array([i], dtype=np.uint64)):
            with pytest.raises(InvalidInputError, match=r"H3 cell indexes \(resolution 9.*h3\.int_to_str"):
                call(form)


def test_h3_column_of_several_resolutions_refused():
    rng = np.random.default_rng(3)
    ids = [_h3_int(la, lo, r) for la, lo, r in zip(rng.uniform(-60, 60, 40), rng.uniform(-180, 180, 40),
                                                    rng.integers(0, 15, 40))]
    with pytest.raises(InvalidInputError, match="resolutions 0-14"):
        cells.cell_to_latlng(np.array(ids, dtype=np.uint64))
    # a column of one fine resolution: each id is weak evidence, many of them are not
    fine = np.array([_h3_int(40.7 + k * 1e-3, -74.0, 14) for k in range(10)], dtype=np.uint64)
    with pytest.raises(InvalidInputError, match="resolution 14"):
        cells.cell_polygons(fine)


def test_single_fine_h3_index_warns_and_is_read_as_s2():
    i = _h3_int(40.7, -74.0, 12)
    with pytest.warns(Geos2VecWarning, match="H3 cell indexes .resolution 12.*a warning, not an error"):
        lat, lng = cells.cell_to_latlng(i)
    ref = s2sphere.LatLng.from_point(s2sphere.CellId(i).to_point())
    assert lat == pytest.approx(ref.lat().degrees, abs=1e-9) and lng == pytest.approx(ref.lng().degrees, abs=1e-9)


def test_invalid_s2_ids_that_are_h3_say_so():
    ids = [_h3_int(40.7, -74.0 + k * 1e-5, 15) for k in range(30)]
    bad = [i for i in ids if not cells.is_valid_cell(i)]
    assert bad  # resolution-15 cells whose last digit is even are often no S2 id at all
    with pytest.raises(InvalidInputError, match=r"invalid S2 cell id.*look like H3 cell indexes \(resolution 15"):
        cells.cell_to_latlng(np.array(bad, dtype=np.uint64))


def test_genuine_s2_leaves_never_refused():
    """s2sphere leaf ids at random points: everywhere, and in the one patch (0-9.8 N, 22.6-45 W) where an S2 leaf
    can share H3's top byte. No batch and no single id is refused; single ids there may warn (rarely)."""
    rng = np.random.default_rng(11)
    xyz = rng.normal(size=(3000, 3))
    xyz /= np.linalg.norm(xyz, axis=1)[:, None]
    lat = np.concatenate([np.degrees(np.arcsin(xyz[:, 2])), rng.uniform(0, 9.8, 3000)])
    lng = np.concatenate([np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])), rng.uniform(-45, -22.6, 3000)])
    leaves = np.array([_s2_leaf(a, b) for a, b in zip(lat, lng)], dtype=np.uint64)
    assert np.array_equal(cells.latlng_to_cell(lat, lng, 30), leaves)
    assert ((leaves[3000:] >> np.uint64(56)) == 8).mean() > 0.8  # the patch: H3's top byte
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got_lat, _ = cells.cell_to_latlng(leaves)
        cells.cell_polygons(leaves[:50])
    assert np.allclose(got_lat, lat, atol=1e-6)
    warned = 0
    for leaf in leaves:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            cells.cell_to_latlng(leaf)
        warned += len(w)
    assert warned <= 30  # ~0.3 % of leaves in the patch; none refused



def test_h3_strings_as_s2_tokens_refused():
    token = h3.latlng_to_cell(40.7, -74.0, 9)  # '892a1072d6bffff': as an S2 token a level-28 cell near Cuba
    assert s2sphere.CellId.from_token(token).level() == 28
    with pytest.raises(InvalidInputError, match=r"tokens look like H3 cell indexes \(resolution 9.*h3\.cell_to_latlng"):
        cells.token_to_cell(token)
    several = [h3.latlng_to_cell(40.7 + k * 1e-3, -74.0, 13) for k in range(5)]
    with pytest.raises(InvalidInputError, match="resolution 13"):
        cells.token_to_cell(several)
    # genuine 15-digit S2 tokens (level 28) where H3 strings fall (0-45 N, 45-135 W): never refused
    rng = np.random.default_rng(2)
    lat, lng = rng.uniform(0, 45, 3000), rng.uniform(-135, -45, 3000)
    ids = [s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(a, b)).parent(28) for a, b in zip(lat, lng)]
    tokens = [c.to_token() for c in ids]
    assert sum(len(t) == 15 and t[0] == "8" for t in tokens) > 1000
    assert np.array_equal(cells.token_to_cell(tokens), np.array([c.id() for c in ids], dtype=np.uint64))
    for t, c in zip(tokens, ids):
        assert cells.token_to_cell(t) == c.id()


# --------------------------------------------------------------------------- 2. to_frame of one image
@pytest.fixture(scope="module")
def la_table():
    import geos2vec

    pois, roads = geos2vec.demo.load_sample()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return geos2vec.count_features(pois, roads, coverage="infer")


def test_to_frame_of_one_image(la_table):
    from geos2vec import raster

    da = raster.rasterize(la_table)
    parents = cells.cell_to_parent(la_table.index.to_numpy(), 8)
    for k in range(da.sizes["image"]):
        image = np.uint64(da["image"].values[k])
        expected = la_table[parents == image]  # the table's rows in that image
        assert len(expected)
        for one in (da.isel(image=k), da.isel(image=k).transpose("feature", "row", "col"),
                    da.chunk({"image": 1}).isel(image=k)):
            got = raster.to_frame(one)
            assert got.equals(expected), k
            assert got.equals(raster.to_frame(da.isel(image=[k])))
            assert got.attrs["coverage"] == raster.to_frame(da).attrs["coverage"]
    win = raster.windows(da, size=8, stride=8)
    w = int(np.flatnonzero(win["observed"].values.any(axis=(1, 2)))[0])
    assert raster.to_frame(win.isel(window=w)).equals(raster.to_frame(win.isel(window=[w])))
    with pytest.raises(InvalidInputError, match="expected dims"):
        raster.to_frame(da.isel(image=0, row=0))  # two dims dropped: no image to rebuild


# --------------------------------------------------------------------------- 4. plain Parquet with WKB
@pytest.fixture(scope="module")
def plain_files(tmp_path_factory):
    """The LA POIs and roads as plain pandas Parquet: WKB bytes, no GeoParquet 'geo' metadata."""
    import geopandas as gpd
    import pandas as pd

    d = tmp_path_factory.mktemp("plain")
    out = {}
    for kind in ("pois", "roads"):
        gdf = gpd.read_parquet(f"/work/shared/data/{kind}/los_angeles.parquet").iloc[:300]
        df = pd.DataFrame(gdf.drop(columns="geometry"))
        df["geom"] = gdf.geometry.to_wkb()
        df.to_parquet(d / f"{kind}.parquet")
        out[kind] = (d / f"{kind}.parquet", gdf)
    zone = pd.DataFrame({"geometry": gpd.GeoSeries.from_xy([-118.3], [34.1]).buffer(0.1).to_wkb()})
    zone.to_parquet(d / "zone.parquet")
    out["zone"] = d / "zone.parquet"
    return out


def test_plain_wkb_parquet_explained_and_the_fix_works(plain_files, tmp_path):
    import geopandas as gpd
    import pandas as pd

    from geos2vec.io import read_pois, read_roads

    for reader, kind in ((read_pois, "pois"), (read_roads, "roads")):
        path, original = plain_files[kind]
        with pytest.raises(InvalidInputError, match=r"no GeoParquet 'geo' metadata.*column 'geom' holds bytes.*"
                                                    r"gpd\.GeoSeries\.from_wkb\(df\['geom'\]\)") as info:
            reader(str(path))
        assert "pandas.read_parquet/read_feather() instead" not in str(info.value)  # geopandas' advice: bytes
        # the advice, as written in the message, makes a file the reader takes, with the original geometries
        df = pd.read_parquet(path)
        gdf = gpd.GeoDataFrame(df.drop(columns="geom"), geometry=gpd.GeoSeries.from_wkb(df["geom"]), crs="EPSG:4326")
        gdf.to_parquet(tmp_path / f"{kind}.parquet")
        back = reader(str(tmp_path / f"{kind}.parquet"))
        assert back.geometry.geom_equals_exact(original.geometry.reset_index(drop=True), 0).all()


def test_plain_wkb_parquet_on_the_command_line(plain_files, tmp_path, capsys):
    from geos2vec.cli import main

    path, _ = plain_files["pois"]
    assert main(["features", str(path), "--out", str(tmp_path / "t.parquet")]) == 1
    assert "column 'geom' holds bytes" in capsys.readouterr().err
    assert main(["evaluate", "--labels", str(plain_files["zone"]), "--target", "y"]) == 1
    assert "column 'geometry' holds bytes" in capsys.readouterr().err



# --------------------------------------------------------------------------- 3. object extras on dask
def test_object_extra_channels_same_in_memory_and_on_dask():
    import dask
    import dask.dataframe as dd
    import geopandas as gpd
    import pandas as pd

    import geos2vec
    from geos2vec.partitioned import count_features_dask

    dask_geopandas = pytest.importorskip("dask_geopandas")
    pois = gpd.read_parquet("/work/shared/data/pois/los_angeles.parquet").iloc[:600]
    rng = np.random.default_rng(5)
    n = len(pois)
    pois["stars"] = pd.Series(rng.choice([2, 10, 100, -1], n), index=pois.index).astype(object)
    pois["size"] = pd.Series(rng.choice([2.5, 10.0, 0.75], n), index=pois.index).astype(object)
    pois["mix"] = pd.Series(rng.choice(np.array([3, 20, "a", "B"], dtype=object), n), index=pois.index)
    pois["code"] = pd.Series(rng.choice(["9", "10", "x"], n), index=pois.index)  # numbers written as text
    extra = ["stars", "size", "mix", "code"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = geos2vec.count_features(pois, extra=extra)
        expected = (["stars=-1", "stars=2", "stars=10", "stars=100"], ["size=0.75", "size=2.5", "size=10.0"],
                    ["mix=3", "mix=20", "mix=B", "mix=a"], ["code=9", "code=10", "code=x"])
        assert list(mem.columns[-14:]) == [c for group in expected for c in group]
        for col, names in zip(extra, expected):  # counts: the hand count of each value
            for name in names:
                value = name.split("=", 1)[1]
                assert mem[name].sum() == (pois[col].astype(str) == value).sum(), name
        ddf = dask_geopandas.from_geopandas(pois, npartitions=3)
        assert str(ddf["stars"].dtype) == "string"  # what dask made of the object column
        plain = pd.DataFrame(pois.drop(columns="geometry")).assign(lon=pois.geometry.x, lat=pois.geometry.y)
        for other in (geos2vec.count_features(ddf, extra=extra), count_features_dask(ddf, extra=extra),
                      geos2vec.count_features(dd.from_pandas(plain, npartitions=2), extra=extra)):
            pd.testing.assert_frame_equal(other, mem, check_like=False)
        with dask.config.set({"dataframe.convert-string": False}):  # object stays object on dask too
            raw = dask_geopandas.from_geopandas(pois, npartitions=3)
            pd.testing.assert_frame_equal(geos2vec.count_features(raw, extra=extra), mem)
