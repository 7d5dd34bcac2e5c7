"""A researcher's own labels: points and polygons joined to cells, tasks by name, the CLI's --labels path.

Every join is checked against an independent reference (s2sphere cells, pandas groupby medians, shapely hulls).
"""

from __future__ import annotations

import argparse
import itertools
import json
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import s2sphere
import shapely

from geos2vec import cli_evaluate as C
from geos2vec import evaluate as ev
from geos2vec.cli import main
from geos2vec.errors import InvalidInputError, InvalidTypeError

SJ_BOX = (-122.080, 37.250, -121.840, 37.428)
LA_BOX = (-118.536, 34.043, -118.183, 34.221)


def _s2(lat, lng, level=12):
    return np.array([s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(a, b)).parent(level).id()
                     for a, b in zip(lat, lng)], dtype=np.uint64)


def _in_box(df, box):
    return df[df.longitude.between(box[0], box[2]) & df.latitude.between(box[1], box[3])]


@pytest.fixture(scope="module")
def housing(shared_data):
    return pd.read_csv(shared_data / "labels" / "housing.csv")


# ------------------------------------------------------------------ join_labels
def test_rows_without_a_target_are_left_out_before_their_coordinates_are_checked(housing):
    """A row with neither target nor coordinates raised "1 coordinate(s) are NaN"; it is one unused row."""
    rows = _in_box(housing, SJ_BOX).head(40).copy()
    rows.index = [f"house-{i}" for i in range(len(rows))]                   # not a RangeIndex
    rows.iloc[[3, 7], rows.columns.get_loc("median_house_value")] = [np.nan, np.inf]
    rows.iloc[3, rows.columns.get_loc("latitude")] = np.nan                  # no target, no coordinates
    got = ev.join_labels(rows, "median_house_value")
    used = rows.drop(index=rows.index[[3, 7]])
    ref = used.assign(c=_s2(used.latitude, used.longitude)).groupby("c")["median_house_value"].median()
    np.testing.assert_array_equal(got.index.to_numpy(), ref.index.to_numpy(np.uint64))
    np.testing.assert_allclose(got["median_house_value"].to_numpy(), ref.to_numpy())
    assert got.attrs["n_missing_target"] == 2
    # the same with point geometries in a projected CRS, one of them missing on a row without a target
    gdf = gpd.GeoDataFrame(rows[["median_house_value"]], crs=4326,
                           geometry=gpd.points_from_xy(rows.longitude, rows.latitude)).to_crs(3310)
    gdf.loc[gdf.index[3], "geometry"] = None
    got2 = ev.join_labels(gdf, "median_house_value")
    np.testing.assert_array_equal(got2.index.to_numpy(), ref.index.to_numpy(np.uint64))
    np.testing.assert_allclose(got2["median_house_value"].to_numpy(), ref.to_numpy())
    # a row with a target keeps being checked
    rows.iloc[5, rows.columns.get_loc("longitude")] = np.nan
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        ev.join_labels(rows, "median_house_value")


def test_a_two_valued_target_is_evaluated_as_a_number_with_a_warning(housing):
    rows = _in_box(housing, SJ_BOX)
    rows = rows.assign(expensive=rows.median_house_value > 300_000)
    with pytest.warns(UserWarning, match="'expensive' has two values .*not as a classification"):
        got = ev.join_labels(rows, "expensive")
    ref = rows.assign(c=_s2(rows.latitude, rows.longitude)).groupby("c")["expensive"].median()
    np.testing.assert_allclose(got["expensive"].to_numpy(), ref.to_numpy(float))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                       # a continuous target: no warning
        ev.join_labels(rows, "median_house_value")


# ------------------------------------------------------------------ tasks
def test_a_task_column_that_is_not_numeric_is_refused_by_name(shared_data):
    """``ca-tracts:county_name`` was coerced to NaN: a task of 0 samples, refused later as "only 0 samples"."""
    for name, column in (("ca-tracts:county_name", "county_name"), ("ca-housing:ocean_proximity", "ocean_proximity"),
                         ("zcta:zcta", "zcta")):
        with pytest.raises(InvalidTypeError, match=f"column '{column}' is not numeric.*numeric columns: "):
            ev.load_task(name, shared_data)


def test_zcta_states_as_a_string_and_an_empty_list(shared_data):
    """``states="ks"`` was iterated into letters ("no venues for states ['k', 's']"); ``[]`` said "labels is empty"."""
    z = pd.read_csv(shared_data / "labels" / "us_zcta_acs2018.csv", dtype={"zcta": str})
    z = z[z.state_fips.isin([20, 19]) & z.per_capita_income.notna()]        # Kansas and Iowa
    ref = z.assign(c=_s2(z.lat, z.lon)).groupby("c")["per_capita_income"].median()
    for states in ("ks,ia", ["KS", "ia"]):
        task = ev.load_task("zcta:per_capita_income", shared_data, states=states)
        assert task.features == "wof:ks,ia"
        np.testing.assert_array_equal(task.target.index.to_numpy(), ref.index.to_numpy(np.uint64))
        np.testing.assert_allclose(task.target.to_numpy(), ref.to_numpy())
    with pytest.raises(InvalidInputError, match="states= is empty"):
        ev.load_task("zcta:per_capita_income", shared_data, states=[])


def test_run_suite_scores_a_task_named_twice_once(shared_data):
    """``--task default --task ca-housing`` scored ca-housing twice into the same rows: 2 splits read as 4."""
    scores, info = ev.run_suite(["ca-housing", "ca-housing:median_house_value"], splits=["random"], n_splits=2,
                                model=None, data_dir=shared_data, progress=False, log=None)
    assert set(scores["task"]) == {"ca-housing:median_house_value"} and list(info) == list(set(scores["task"]))
    per_method = scores.groupby(["method", "probe"]).size()
    assert (per_method == 2).all(), per_method
    assert scores.groupby("method")["split_id"].nunique().eq(2).all()
    assert C._kinds("random,blocked,random", ev.SPLITS, "--splits") == ["random", "blocked"]
    with pytest.raises(InvalidInputError, match="unknown task 'ca-housingg'"):   # a str is one task, not letters
        ev.run_suite("ca-housingg", splits="random", model=None, data_dir=shared_data, log=None)


# ------------------------------------------------------------------ the command line
def test_cli_features_files_leave_labels_beyond_their_area_out(housing, shared_data, tmp_path, capsys):
    """San José POIs with labels in San José and Los Angeles: the LA cells have no data, not zero counts.

    Before, a POI file's counts recorded no coverage, so every LA cell was scored as a cell with no POI.
    """
    sj, la = _in_box(housing, SJ_BOX), _in_box(housing, LA_BOX)
    pd.concat([sj, la]).to_csv(tmp_path / "labels.csv", index=False)
    pois = gpd.read_parquet(shared_data / "pois" / "san_jose.parquet")
    hull = shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(pois.to_crs(4326).geometry.values)))
    main(["evaluate", "--labels", str(tmp_path / "labels.csv"), "--target", "median_house_value", "--features",
          str(shared_data / "pois" / "san_jose.parquet"), "--model", "none", "--n-splits", "2", "--splits",
          "random", "--location-scales", "2", "--quiet", "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err
    both = pd.concat([sj, la])
    la_cells, all_cells = np.unique(_s2(la.latitude, la.longitude)), np.unique(_s2(both.latitude, both.longitude))
    scores = pd.read_csv(tmp_path / "report" / "scores.csv")
    config = json.loads((tmp_path / "report" / "config.json").read_text())
    n = int(scores["n_cells"].iloc[0])
    assert n == config["n_samples"]
    sj_cells = np.unique(_s2(sj.latitude, sj.longitude))
    lat, lng = _centres(sj_cells)
    inside = shapely.contains_xy(hull.buffer(0.03), lng, lat)               # the hull, give or take a cell
    assert n <= inside.sum() and n >= 0.8 * shapely.contains_xy(hull, lng, lat).sum()
    assert n < len(all_cells) - len(la_cells) + 1                            # no LA cell is evaluated
    assert f"note: {len(all_cells) - n} of {len(all_cells)} labelled samples left out" in err


def _centres(cells):
    """Latitude and longitude of cell centres, from s2sphere."""
    pts = [s2sphere.CellId(int(c)).to_lat_lng() for c in cells]
    return np.array([p.lat().degrees for p in pts]), np.array([p.lng().degrees for p in pts])


def test_cli_polygon_labels_leave_rows_without_a_target_out(shared_data, capsys):
    """NYC tracts in EPSG:2263 as the user's polygons: an inf row no longer makes its polygon's median inf, a row
    without target and geometry is left out instead of raising, and the rows' order does not number the samples
    (shuffled rows gave other sample ids, hence other random splits and scores)."""
    tracts = gpd.read_parquet(shared_data / "labels" / "nyc_tracts_acs2012.parquet").head(60).to_crs(2263)
    tracts = tracts[["medianinco", "geometry"]].dropna()
    tracts.index = tracts.index * 3 + 11                                     # not a RangeIndex
    dup = tracts.iloc[[0, 1]].assign(medianinco=[np.inf, 1.0])               # the same polygons again
    empty = gpd.GeoDataFrame({"medianinco": [np.nan]}, geometry=[None], crs=2263, index=[5])
    labels = pd.concat([tracts, dup, empty])
    args = argparse.Namespace(target="medianinco", lat=None, lon=None)
    target, pooling = C._samples(labels, args)
    assert f"note: 2 of {len(labels)} label rows have no finite target" in capsys.readouterr().err
    ref = tracts["medianinco"].copy()
    ref.iloc[1] = np.median([ref.iloc[1], 1.0])                              # two rows of the second polygon
    assert ref.is_unique
    np.testing.assert_allclose(np.sort(target.to_numpy()), np.sort(ref.to_numpy()))
    # each sample pools its own polygon (found by its target): weights = the cells' shares of its area (s2sphere
    # cell corners; planar lon/lat areas, fine at this size)
    geom_of = pd.Series(tracts.to_crs(4326).geometry.to_numpy(), index=ref.to_numpy())
    geoms = geom_of.loc[target.loc[pooling["sample"]].to_numpy()].to_numpy()
    cells = [s2sphere.Cell(s2sphere.CellId(int(c))) for c in pooling["cell_id"]]
    squares = [shapely.Polygon([(s2sphere.LatLng.from_point(c.get_vertex(k)).lng().degrees,
                                 s2sphere.LatLng.from_point(c.get_vertex(k)).lat().degrees) for k in range(4)])
               for c in cells]
    share = shapely.area(shapely.intersection(geoms, squares)) / shapely.area(geoms)
    np.testing.assert_allclose(pooling["weight"].to_numpy(), share, atol=0.02)
    # the same rows in another order: the same samples, numbered the same
    target2, pooling2 = C._samples(labels.sample(frac=1, random_state=4), args)
    pd.testing.assert_series_equal(target2, target)
    pd.testing.assert_frame_equal(pooling2, pooling)


def test_cli_block_level_zero_is_used_not_read_as_unset(tmp_path):
    """``--block-level 0`` (cube faces as blocks) became level 10: ``args.block_level or 10``."""
    rng = np.random.default_rng(0)
    lat, lng = rng.uniform(-60, 60, 300), rng.uniform(-180, 180, 300)
    pd.DataFrame({"lat": lat, "lon": lng, "y": rng.normal(size=300)}).to_csv(tmp_path / "world.csv", index=False)
    main(["evaluate", "--labels", str(tmp_path / "world.csv"), "--target", "y", "--model", "none", "--n-splits", "3",
          "--splits", "blocked", "--block-level", "0", "--location-scales", "2", "--quiet", "--out",
          str(tmp_path / "report")])
    config = json.loads((tmp_path / "report" / "config.json").read_text())
    assert config["block_level"] == 0
    # with faces as blocks, each part is a union of whole faces: its sizes are sums of the faces' point counts
    faces = pd.Series(_s2(lat, lng, 0)).value_counts().to_numpy()
    sums = {int(faces[np.array(mask, bool)].sum()) for mask in itertools.product([0, 1], repeat=len(faces))}
    scores = pd.read_csv(tmp_path / "report" / "scores.csv")
    assert set(scores["n_test"]) <= sums and set(scores["n_fit"]) <= sums


def test_read_table_tsv_and_unreadable_files(tmp_path):
    """A .tsv went to GDAL (text columns: "target column 'y' must be numeric, got dtype str"); an Excel or plain
    JSON file raised pyogrio's DataSourceError with a traceback, a binary .csv a bare codec error."""
    df = pd.DataFrame({"lat": [37.3, 37.31], "lon": [-121.9, -121.91], "y": [1.5, 2.5]})
    df.to_csv(tmp_path / "labels.tsv", sep="\t", index=False)
    pd.testing.assert_frame_equal(C._read_table(tmp_path / "labels.tsv"), df)
    (tmp_path / "records.json").write_text(df.to_json(orient="records"))
    (tmp_path / "book.xlsx").write_bytes(b"PK\x03\x04" + bytes(range(256)))
    (tmp_path / "bin.csv").write_bytes(bytes(range(128, 256)))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    for name in ("records.json", "book.xlsx", "bin.csv", "bad.parquet"):
        with pytest.raises(InvalidInputError, match=f"cannot read .*{name}: .*give a CSV/TSV, Parquet"):
            C._read_table(tmp_path / name)


def test_blocked_splits_warn_when_most_samples_are_alone_in_their_block(shared_data):
    """ZIP centroids in the --labels default level-10 blocks: most blocks hold one ZCTA, so "blocked" splits are
    nearly random (a test ZIP's neighbours train) without a word."""
    z = pd.read_csv(shared_data / "labels" / "us_zcta_acs2018.csv", dtype={"zcta": str})
    z = z[z.state_fips.isin([20, 19]) & z.per_capita_income.notna()]        # Kansas and Iowa
    cells = np.unique(_s2(z.lat, z.lon))
    for level, warns in ((10, True), (6, False)):
        parents = np.array([s2sphere.CellId(int(c)).parent(level).id() for c in cells], dtype=np.uint64)
        counts = pd.Series(parents).map(pd.Series(parents).value_counts())
        alone = float((counts == 1).mean())
        assert (alone > 0.5) == warns, alone
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            splits = ev.blocked_splits(parents, n_splits=2)
        messages = [str(w.message) for w in caught if "alone in their block" in str(w.message)]
        assert len(messages) == warns
        if warns:
            assert f"{alone:.0%} of the {len(cells)} samples are alone" in messages[0]
        for tr, va, te in splits:                                            # still whole blocks per part
            assert not set(parents[te]) & (set(parents[tr]) | set(parents[va]))
