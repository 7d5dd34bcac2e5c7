"""A pandas/GeoPandas user who wants exact joins: every row, its index and its order, on awkward frames.

References are independent of the code under test: s2sphere cell ids, pandas merges, shapely, pyproj.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import s2sphere
import shapely

import geos2vec
from geos2vec.embedding import row_cells
from geos2vec.errors import InvalidInputError, InvalidTypeError
from conftest import la_downtown


def _s2(lng, lat, level=12):
    return s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lng)).parent(level).id()


@pytest.fixture(scope="module")
def la(shared_data):
    """California housing block groups in downtown Los Angeles, and the Los Angeles sample's features there."""
    _, _, table = la_downtown(shared_data)
    h = pd.read_csv(shared_data / "labels" / "housing.csv")
    h = h[h.longitude.between(-118.30, -118.22) & h.latitude.between(34.03, 34.08)].iloc[:40]
    homes = gpd.GeoDataFrame(h, geometry=gpd.points_from_xy(h.longitude, h.latitude), crs=4326)
    return homes, table, geos2vec.load_model("default")


def _embed(obj, table, model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the NaN count of rows whose cells have no features
        return obj.s2vec.embed(features=table, model=model, progress=False, **kw)


def test_awkward_index_joins_like_a_pandas_merge_on_s2sphere_cells(la):
    homes, table, model = la
    homes = homes.sample(frac=1, random_state=3)  # non-monotonic
    # duplicate labels, float labels with a NaN, and an index name that collides with a column
    homes.index = pd.Index(np.r_[homes.index[:-4].to_numpy(float), [np.nan, 1.5, 1.5, 2.0]], name="longitude")
    homes.attrs["source"] = "housing.csv"
    before = homes.copy()
    out = _embed(homes.to_crs(32611), table, model)  # a UTM zone
    ids = np.array([_s2(x, y) for x, y in zip(homes.longitude, homes.latitude)], np.uint64)
    cells = geos2vec.cell_embeddings(table, model=model, progress=False).drop(columns=["geometry", "token"])
    ref = homes.reset_index(drop=True).assign(s2_cell=ids).merge(cells, on="s2_cell", how="left")
    assert out.index.equals(homes.index) and out.index.name == "longitude"
    assert out["s2_cell"].to_numpy(np.uint64).tolist() == ids.tolist()
    emb = [f"s2vec_{k}" for k in range(model.embedding_dim)]
    np.testing.assert_allclose(out[emb].to_numpy(np.float64), ref[emb].to_numpy(np.float64), atol=1e-6)
    assert np.isfinite(out["s2vec_0"]).sum() > 0
    assert list(out.columns[:homes.shape[1]]) == list(homes.columns) and out.crs.to_epsg() == 32611
    pd.testing.assert_frame_equal(homes, before)  # the input is not mutated
    assert out.attrs["source"] == "housing.csv" and "geos2vec" in out.attrs and "geos2vec" not in homes.attrs


def test_embedding_twice_with_another_prefix_says_what_to_drop(la):
    homes, table, model = la
    first = _embed(homes.iloc[:5], table, model)
    # s2_cell does not take the prefix: the message must not send the user to prefix= for it
    with pytest.raises(InvalidInputError, match=r"'s2_cell'") as err:
        _embed(first, table, model, prefix="patch_", mode="patch")
    assert "prefix=" not in str(err.value)
    second = _embed(first.drop(columns="s2_cell"), table, model, prefix="patch_", mode="patch")
    assert second["s2_cell"].equals(first["s2_cell"]) and second.index.equals(first.index)


def test_a_named_geoseries_keeps_its_name_and_attrs(la):
    homes, table, model = la
    s = homes.geometry.iloc[:6].rename("home").to_crs(3857)
    s.attrs["source"] = "housing.csv"
    for out in (_embed(s, table, model),
                geos2vec.embed(s, table, model=model, progress=False)):
        assert out.geometry.name == "home" and list(out.columns[:2]) == ["home", "s2_cell"]
        assert out.crs.to_epsg() == 3857 and out.index.equals(s.index)
        assert out.attrs["source"] == "housing.csv"
        assert out["s2_cell"].tolist() == [_s2(p.x, p.y) for p in homes.geometry.iloc[:6]]
    unnamed = _embed(s.rename(None), table, model)
    assert unnamed.geometry.name == "geometry"


@pytest.mark.parametrize("geom", [None, shapely.Point(), shapely.LineString(), shapely.Polygon()],
                         ids=["none", "empty-point", "empty-line", "empty-polygon"])
def test_row_cells_names_missing_geometries(geom):
    # raw AttributeError / "All arrays must be of the same length" / "arange: cannot compute length" before
    s = gpd.GeoSeries([shapely.Point(-118.25, 34.05), geom], index=["a", "b"], crs=4326)
    with pytest.raises(InvalidInputError, match=r"missing or empty.*\['b'\]"):
        row_cells(s)


def test_row_cells_reads_the_crs_and_takes_a_frame():
    pts = gpd.GeoDataFrame({"k": [1, 2]}, geometry=gpd.points_from_xy([-118.25, 7.4], [34.05, 43.7]), crs=4326)
    ref = [_s2(-118.25, 34.05), _s2(7.4, 43.7)]
    for obj in (pts.geometry.to_crs(3857), pts.to_crs(3857), pts.geometry.to_crs(4269), pts.geometry):
        row, cell, weight = row_cells(obj)
        assert row.tolist() == [0, 1] and cell.tolist() == ref and weight.tolist() == [1.0, 1.0]
    with pytest.raises(InvalidTypeError, match="GeoDataFrame or GeoSeries"):
        row_cells(pd.Series([shapely.Point(0, 0)]))


def test_polygon_across_the_antimeridian_is_refused_not_wrapped_round_the_world():
    # its edges run 359.8 degrees the long way round: before, it was covered as a band round the globe
    wrapped = shapely.Polygon([(179.9, -17.0), (-179.9, -17.0), (-179.9, -16.9), (179.9, -16.9)])
    g = gpd.GeoDataFrame({"k": [1, 2]}, geometry=[shapely.Point(178.4, -18.1), wrapped], index=["suva", "x"],
                         crs=4326)
    with pytest.raises(InvalidInputError, match=r"antimeridian.*\['x'\]"):
        row_cells(g.geometry)
    table = pd.DataFrame({"road": [1]}, index=pd.Index([np.uint64(_s2(178.4, -18.1))], name="cell_id"))
    with pytest.raises(InvalidInputError, match=r"antimeridian.*\['x'\]"):
        geos2vec.embed(g, table, how="point", progress=False)
    # the same area split at 180: every cell lies within 0.15 degrees of the antimeridian
    split = shapely.MultiPolygon([shapely.box(179.9, -17.0, 180.0, -16.9), shapely.box(-180.0, -17.0, -179.9, -16.9)])
    _, cell, weight = row_cells(gpd.GeoSeries([split], crs=4326))
    lngs = [s2sphere.LatLng.from_point(s2sphere.Cell(s2sphere.CellId(int(c))).get_center()).lng().degrees
            for c in cell]
    assert np.all(np.abs(lngs) > 179.8) and weight.sum() == pytest.approx(1.0)
    # a band from -180 to 180 goes round the globe on purpose: its cells lie all round the band, not refused
    _, cell, _ = row_cells(gpd.GeoSeries([shapely.box(-180.0, 0.0, 180.0, 0.5)], crs=4326), level=6)
    lngs = [s2sphere.LatLng.from_point(s2sphere.Cell(s2sphere.CellId(int(c))).get_center()).lng().degrees
            for c in cell]
    assert np.histogram(lngs, bins=36, range=(-180, 180))[0].min() > 0
    # a projected polygon that crosses 180 in its own CRS (UTM zone 60S) becomes such a polygon in degrees ...
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 32760, always_xy=True).transform([179.9, -179.9, -179.9, 179.9],
                                                                       [-17.0, -17.0, -16.9, -16.9])
    utm = gpd.GeoSeries([shapely.Polygon(list(zip(x, y)))], crs=32760)
    assert utm.is_valid.all() and utm.area.iloc[0] < 3e8  # about 21 km x 11 km in its own CRS
    # ... and is split at ±180 into its two sides (before 0.3 it was refused): cells on both sides, none far off
    _, cell, weight = row_cells(utm)
    lngs = np.array([s2sphere.LatLng.from_point(s2sphere.Cell(s2sphere.CellId(int(c))).get_center()).lng().degrees
                     for c in cell])
    assert np.all(np.abs(lngs) > 179.8) and (lngs > 0).any() and (lngs < 0).any()
    assert weight.sum() == pytest.approx(1.0)
