"""Coverage areas given in a projected CRS (a GIS analyst's frames come in many CRSs)."""

import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely

import geos2vec
from geos2vec.coverage import as_coverage, get_coverage

# a Fiji area across the antimeridian, in EPSG:4326 as the two parts either side of ±180
FIJI = shapely.MultiPolygon([shapely.box(178.5, -18.5, 180, -16), shapely.box(-180, -18.5, -179.5, -16)])


def _projected_box(geom, crs):
    """The bounding box of ``geom`` in ``crs``: what a user draws around data held in that CRS."""
    return gpd.GeoSeries([shapely.box(*gpd.GeoSeries([geom], crs=4326).to_crs(crs).total_bounds)], crs=crs)


def _reference(box_series, spacing):
    """The projected box in lon/lat: densified before the transform, then unwrapped across ±180 by hand."""
    dense = shapely.segmentize(box_series.iloc[0], spacing)
    xy = shapely.get_coordinates(gpd.GeoSeries([dense], crs=box_series.crs).to_crs(4326).iloc[0])
    return xy


@pytest.mark.parametrize("crs", [3832, 3460])
def test_projected_coverage_across_antimeridian_covers_its_area(crs):
    box = _projected_box(FIJI, crs)
    xy = _reference(box, 1000.0)
    xy[:, 0] = np.where(xy[:, 0] < 0, xy[:, 0] + 360, xy[:, 0])  # one piece in [0, 360)
    ref_area = shapely.Polygon(xy).area
    pois = gpd.GeoDataFrame({"fclass": ["restaurant", "cafe", "school", "bank"]},
                            geometry=gpd.points_from_xy([178.6, 179.5, -179.8, -179.6], [-17.5, -17, -17.2, -18]),
                            crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("error", geos2vec.errors.CoverageWarning)  # none lies "outside the coverage"
        table = geos2vec.count_features(pois.to_crs(crs), coverage=box)
    geom = get_coverage(table)[0]
    assert shapely.covers(geom, pois.geometry.values).all()
    assert not geom.covers(shapely.Point(0, -17))  # was a band round the globe that left out Fiji itself
    assert geom.area == pytest.approx(ref_area, rel=1e-3)
    assert -180 <= geom.bounds[0] and geom.bounds[2] <= 180


def test_projected_coverage_box_keeps_its_curved_edges():
    california = shapely.box(-124.4, 32.5, -114.1, 42.0)
    box = _projected_box(california, 5070)  # a straight edge in Albers is a curve in lon/lat
    ref = shapely.Polygon(_reference(box, 1000.0))
    geom = as_coverage(box)
    assert shapely.hausdorff_distance(geom, ref) < 1e-3  # was 0.19 degrees (about 20 km) off
    # a point 0.1 degrees inside the box's northern edge, at its middle, is covered
    top = ref.exterior.interpolate(ref.exterior.project(shapely.Point(-119.3, 50)))
    assert geom.covers(shapely.Point(top.x, top.y - 0.1))


def test_geographic_coverage_unchanged_and_a_utm_box_densified():
    b = shapely.box(-118.5, 34.0, -118.2, 34.2)
    assert shapely.equals_exact(as_coverage(gpd.GeoSeries([b], crs=4326)), b, 1e-9)
    assert shapely.equals_exact(as_coverage(gpd.GeoSeries([b], crs=4326).to_crs(4269)).normalize(),
                                gpd.GeoSeries([b], crs=4326).to_crs(4269).to_crs(4326).iloc[0].normalize(), 1e-9)
    utm = gpd.GeoSeries([None, shapely.box(400000, 3700000, 420000, 3720000)], crs=32611)
    ref = shapely.Polygon(_reference(utm.iloc[1:], 50.0))
    assert shapely.hausdorff_distance(as_coverage(utm), ref) < 1e-6


def test_read_osm_area_in_a_projected_crs_across_antimeridian(tmp_path):
    osmium = pytest.importorskip("osmium")
    from geos2vec.io import read_osm

    path = tmp_path / "fiji.osm.pbf"
    writer = osmium.SimpleWriter(str(path))
    nodes = [(178.6, -17.5, "amenity=cafe"), (-179.8, -17.2, "shop=bakery"), (0.0, -17.0, "amenity=bank")]
    for i, (lon, lat, tag) in enumerate(nodes, start=1):
        writer.add_node(osmium.osm.mutable.Node(id=i, location=(lon, lat), tags=dict([tag.split("=")])))
    writer.close()
    pois, _ = read_osm(path, area=_projected_box(FIJI, 3832))
    # the two Fiji POIs are kept (were dropped), the one at longitude 0 is not (was kept)
    assert sorted(pois["fclass"]) == ["bakery", "cafe"]


# a Fiji building across the antimeridian, larger east of it; given in the Fiji Map Grid as its bounding box there
BUILDING = shapely.MultiPolygon([shapely.box(179.999, -16.8, 180, -16.7995),
                                 shapely.box(-180, -16.8, -179.9995, -16.7995)])


def _building(crs=3460):
    box = _projected_box(BUILDING, crs)
    return gpd.GeoDataFrame({"fclass": ["school"]}, geometry=box.values, crs=crs)


def _near_the_building(cells):
    lat, lng = geos2vec.cell_to_latlng(np.asarray(cells, dtype=np.uint64))
    return (np.abs(lat + 16.8) < 0.05) & (np.abs(lng) > 179.9)  # within a level-12 cell of it, either side of ±180


def test_projected_polygon_across_antimeridian_is_counted_where_it_is():
    pois = _building()
    table = geos2vec.count_features(pois)
    assert table.to_numpy().sum() == 1
    assert _near_the_building(table.index.to_numpy()).all()  # was longitude 0, in the South Atlantic
    assert _near_the_building(pois.s2vec.cell_ids().to_numpy()).all()
    # its cells, weighted by area: the parts east and west of ±180 (raised "cross the antimeridian")
    row, cell, weight = geos2vec.geometry_cells.row_cells(pois)
    assert _near_the_building(cell).all() and weight.sum() == pytest.approx(1.0)
    lat, lng = geos2vec.cell_to_latlng(cell)
    assert (lng > 0).any() and (lng < 0).any()


def test_projected_polygon_around_a_pole_is_the_polar_area():
    antarctica = gpd.GeoDataFrame({"fclass": ["cafe"]}, geometry=[shapely.box(-1e6, -1e6, 1e6, 1e6)], crs=3031)
    table = geos2vec.count_features(antarctica)  # raised "encloses a pole": now the area closed along lat -90
    assert table.to_numpy().sum() == 1
    lat, _ = geos2vec.cell_to_latlng(table.index.to_numpy())
    assert (lat < -80).all()  # inside the square (its edges lie at about -81 degrees)
