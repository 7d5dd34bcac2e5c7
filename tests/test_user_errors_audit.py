"""Errors audit: wrong input through the public API gets a geos2vec.errors class whose message names the
argument and a fix that works (the fix is tried), and the command line ends with a message, not a traceback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

import geos2vec
from geos2vec import coverage, errors
from geos2vec.errors import InvalidInputError, InvalidTypeError

pytestmark = pytest.mark.filterwarnings("ignore::geos2vec.errors.Geos2VecWarning")
POIS = "/work/shared/data/pois/los_angeles.parquet"


@pytest.fixture(scope="module")
def sample():
    pois, roads = geos2vec.demo.load_sample()
    return pois, roads, geos2vec.count_features(pois, roads)


@pytest.mark.parametrize("name, text", [
    ("notes.md", "# not geodata\n"),
    ("cut.geojson", '{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point",'),
])
def test_cli_unreadable_rows_file_is_an_error_message_not_a_traceback(tmp_path, capsys, name, text):
    """A file GDAL cannot open raised pyogrio's DataSourceError (a RuntimeError) out of main: a traceback."""
    from geos2vec.cli import main

    bad = tmp_path / name
    bad.write_text(text)
    rc = main(["features", str(bad), "--out", str(tmp_path / "f.parquet")])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("geos2vec: error: ") and str(bad) in err and "Traceback" not in err
    assert "GDAL cannot read it" in err and ".parquet" in err and not (tmp_path / "f.parquet").exists()


def test_covered_mask_features_as_one_string_is_that_channel(sample):
    """features="road" was list("road") = ['r', 'o', 'a', 'd']: no channel of the table, available came back None."""
    pois, roads, feats = sample
    table = coverage.set_coverage(feats, shapely.box(-118.40, 34.0, -118.3, 34.3), missing_channels=["road"])
    cells = feats.index.to_numpy()
    covered, available = coverage.covered_mask(cells, table, features="road")
    ref_covered, ref_available = coverage.covered_mask(cells, table, features=["road"])
    assert available is not None and available.shape == (len(cells), 1)
    np.testing.assert_array_equal(available, ref_available)
    np.testing.assert_array_equal(covered, ref_covered)
    # road is missing everywhere: a cell has it only where it holds a road count
    np.testing.assert_array_equal(available[:, 0], feats["road"].to_numpy() != 0)


def test_read_osm_given_a_geodataframe_names_path_and_the_function_that_takes_frames(sample):
    pois, roads, feats = sample
    pytest.importorskip("osmium")
    with pytest.raises(InvalidTypeError, match=r"path must be the path of an OpenStreetMap file .*got GeoDataFrame"
                                               r".*count_features\(pois, roads\)"):
        geos2vec.io.read_osm(pois)
    pd.testing.assert_frame_equal(geos2vec.count_features(pois, roads), feats)  # the suggested call works


def test_read_pois_columns_one_string_and_unknown_columns(tmp_path):
    """columns="name" was read letter by letter; an unknown column dumped pyarrow's schema."""
    from geos2vec.io import read_pois

    got = read_pois(POIS, columns="fclass")
    assert list(got.columns) == ["fclass", "geometry"] and len(got) == 1731
    with pytest.raises(InvalidInputError, match=r"columns \['zzz'\] are not columns of .*its columns are "
                                                r"\['osm_id', 'name', 'fclass', 'other_tags', 'geometry'\]") as ei:
        read_pois(POIS, columns=["zzz", "fclass"])
    assert "FieldRef" not in str(ei.value)


@pytest.fixture(scope="module")
def eval_data(sample):
    pois, roads, feats = sample
    rng = np.random.default_rng(0)
    idx = feats.index[:150]
    lat, lng = geos2vec.cell_to_latlng(idx.to_numpy())
    y = pd.Series(lng + rng.normal(scale=0.01, size=idx.size), index=idx)
    x = pd.DataFrame({"lng": lng, "lat": lat}, index=idx)
    return y, x, float(np.median(lng))


def test_evaluate_holdout_of_a_wrong_type_says_what_it_takes(eval_data):
    """holdout="CA" raised "holdout_mask() argument after ** must be a mapping, not str"."""
    from geos2vec.evaluate import evaluate

    y, x, mid = eval_data
    with pytest.raises(InvalidTypeError, match=r"holdout= takes a boolean Series .* holdout_mask keywords, "
                                               r"e\.g\. holdout=\{'bbox': .*got str 'CA'"):
        evaluate(y, {"xy": x}, holdout="CA", probes="ridge", n_splits=1)
    res = evaluate(y, {"xy": x}, holdout={"bbox": (mid, 30, -110, 40)}, probes="ridge", n_splits=1)  # the fix
    assert set(res.scores["method"]) == {"xy"}


def test_evaluate_method_that_is_not_a_table(eval_data):
    """{"m": model} raised "'S2VecModel' object is not iterable"; a Series became a list of floats."""
    from geos2vec.evaluate import evaluate

    y, x, _ = eval_data
    with pytest.raises(InvalidTypeError, match=r"a method is a DataFrame indexed by cell_id .* got S2VecModel"):
        evaluate(y, {"m": geos2vec.load_model()}, probes="ridge", n_splits=1)
    with pytest.raises(InvalidTypeError, match=r"got Series \(series\.to_frame\(\) makes it a one-column"):
        evaluate(y, {"m": x["lng"]}, probes="ridge", n_splits=1)
    res = evaluate(y, {"m": x["lng"].to_frame()}, probes="ridge", n_splits=1)  # the fix
    assert set(res.scores["method"]) == {"m"}


def test_s2vec_model_unknown_field_names_the_fields_and_the_close_one():
    from geos2vec.model.config import S2VecConfig  # what S2VecModel(**overrides) applies (without Keras' import)

    with pytest.raises(InvalidTypeError, match=r"unknown S2VecConfig fields: \['embed_dim'\]; 'embed_dim': did you "
                                               r"mean 'embedding_dim'\?; the fields are \[.*'encoder_layers'"):
        S2VecConfig().replace(embed_dim=64)
    assert S2VecConfig().replace(embedding_dim=64).embedding_dim == 64  # the suggested name works


def test_rasterize_reset_index_says_to_index_by_cell_id(sample):
    """The message listed row positions read as cell ids, without saying how to fix the table."""
    _, _, feats = sample
    flat = feats.reset_index()
    with pytest.raises(InvalidInputError, match=r"the feature table index: invalid S2 cell id.*"
                                                r"df\.set_index\('cell_id'\)") as ei:
        geos2vec.rasterize(flat)
    assert isinstance(ei.value, errors.Geos2VecError)
    fixed = geos2vec.rasterize(flat.set_index("cell_id"))  # the suggested fix
    ref = geos2vec.rasterize(feats)
    np.testing.assert_array_equal(fixed.values, ref.values)
    assert fixed.shape == (4, 16, 16, 116)


def test_evaluate_target_of_words_and_regions_as_an_array(eval_data):
    """A target of words raised NumPy's "could not convert string to float: 'low'"; regions as an array
    raised "'numpy.ndarray' object has no attribute 'index'"."""
    from geos2vec.evaluate import evaluate

    y, x, mid = eval_data
    words = pd.Series(np.where(y > mid, "high", "low"), index=y.index)
    with pytest.raises(InvalidTypeError, match=r"target must be numbers .*got dtype (object|str) .*'(low|high)'.*"
                                               r"\(target == 'high'\)\.astype\(float\)"):
        evaluate(words, {"xy": x}, probes="ridge", n_splits=1)
    res = evaluate((words == "high").astype(float), {"xy": x}, probes="ridge", n_splits=1)  # the first fix
    assert res.scores["n_test"].sum() > 0
    mixed = y.astype(object).where(y > mid, "n/a")  # numbers and a word: to_numeric(errors='coerce') leaves it out
    with pytest.raises(InvalidTypeError, match="target must be numbers"):
        evaluate(mixed, {"xy": x}, probes="ridge", n_splits=1)
    res = evaluate(pd.to_numeric(mixed, errors="coerce"), {"xy": x}, probes="ridge", n_splits=1)  # the second fix
    assert res.config["n_samples"] == int((y > mid).sum())
    labels = np.where(x["lat"] > float(np.median(x["lat"])), "north", "south")
    with pytest.raises(InvalidTypeError, match=r"regions must be a pandas Series .* got ndarray; e\.g\. "
                                               r"pd\.Series\(labels, index=target\.index\)"):
        evaluate(y, {"xy": x}, split="region", regions=labels, probes="ridge", n_splits=1)
    res = evaluate(y, {"xy": x}, split="region", regions=pd.Series(labels, index=y.index), probes="ridge",
                   n_splits=1)
    assert set(res.scores["method"]) == {"xy"}


@pytest.mark.parametrize("bad", [3, None])
def test_load_model_of_a_non_path(bad):
    """load_model(3) raised pathlib's "expected str, bytes or os.PathLike object, not int"."""
    with pytest.raises(InvalidTypeError, match=r"path must be 'default' or the path of a saved model .*got "
                                               + type(bad).__name__):
        geos2vec.load_model(bad)


def test_a_path_where_a_frame_is_expected_says_to_read_it(sample):
    """count_features("pois.parquet") gave no way to read it; roads as a path (or a frame of another type) were told
    to build points from df.lon/df.lat, which roads are not."""
    import geopandas as gpd

    from geos2vec.io import read_pois

    pois, roads, _ = sample
    with pytest.raises(InvalidTypeError, match=r"got str \(a path: geos2vec\.io\.read_pois\(path\) reads it\)"):
        geos2vec.count_features(POIS)
    got = geos2vec.count_features(read_pois(POIS))  # the fix: the file's POIs are the bundled sample's
    pd.testing.assert_frame_equal(got, geos2vec.count_features(pois))
    road_file = "/work/shared/data/roads/los_angeles.parquet"
    with pytest.raises(InvalidTypeError, match=r"roads must be a GeoDataFrame or GeoSeries, got str; read the file "
                                               r"first: geopandas\.read_parquet\('/work/shared/.*los_angeles.parquet'\)"
                       ) as ei:
        geos2vec.count_features(roads=road_file)
    assert "points_from_xy" not in str(ei.value)
    assert geos2vec.count_features(roads=gpd.read_parquet(road_file))["road"].sum() > 0  # the fix works
    with pytest.raises(InvalidTypeError, match=r"roads must be .*got DataFrame; build one with geopandas\."
                                               r"GeoDataFrame\(df, geometry=<shapely geometries>") as ei:
        geos2vec.count_features(roads=pd.DataFrame(roads))
    assert "points_from_xy" not in str(ei.value)


def test_feature_stats_constructor_refuses_mismatched_shapes(sample):
    """FeatureStats(2 channels, mean of 3) was accepted; transform then failed with NumPy's broadcast error."""
    with pytest.raises(InvalidInputError, match=r"FeatureStats: 2 channels but mean \(3,\), m2 \(3,\) and count \(\)"
                                                r"; give one mean and m2 per channel .*FeatureStats\.fit\(table\)"):
        geos2vec.FeatureStats(["a", "b"], 3, np.zeros(3), np.zeros(3))
    with pytest.raises(InvalidInputError, match=r"count \(3,\)"):
        geos2vec.FeatureStats(["a", "b"], np.array([3, 3, 3]), np.zeros(2), np.zeros(2))
    stats = geos2vec.FeatureStats(["a", "b"], 3, np.array([1.0, 2.0]), np.array([2.0, 8.0]))  # consistent: fine
    out = stats.transform(pd.DataFrame({"a": [2.0], "b": [4.0]}))
    np.testing.assert_allclose(out.to_numpy(), [[1 / np.sqrt(2 / 3 + 1e-6), 2 / np.sqrt(8 / 3 + 1e-6)]], rtol=1e-6)


def test_read_wof_states_by_name_says_to_use_codes():
    """states="Rhode Island" was a FileNotFoundError ("no venue file for state(s) ['rhode island']") naming no
    argument, as if a file were missing."""
    from geos2vec.io import read_wof

    wof = "/work/shared/data/wof"
    with pytest.raises(InvalidInputError, match=r"states takes two-letter state codes .*got \['rhode island'\]; "
                                                r"available: \['ak', .*'ri'"):
        read_wof(wof, states="Rhode Island")
    with pytest.raises(FileNotFoundError, match=r"no venue file for state\(s\) \['ca'\]"):  # a code without a file
        read_wof(wof, states=["ri", "ca"])
    a, b = read_wof(wof, states="ri"), read_wof(wof, states="US-RI")  # the fix, in both spellings
    assert len(a) == len(b) > 0 and a["wof_id"].tolist() == b["wof_id"].tolist()


def test_accessor_keywords_are_checked_naming_the_method(sample):
    """pois.s2vec.rasterize(roads, lvl=3) raised "count_features() got an unexpected keyword argument 'lvl'" (a
    function not called); roads.s2vec.count_features(pois=pois) "got multiple values for argument 'pois'"."""
    pois, roads, feats = sample
    with pytest.raises(InvalidTypeError, match=r"\.s2vec\.rasterize\(\) got unknown keyword\(s\) \['lvl'\]; 'lvl': "
                                               r"did you mean 'level'\?; it takes roads and \[.*'image_level'"):
        pois.s2vec.rasterize(roads, lvl=12)
    with pytest.raises(InvalidTypeError, match=r"\.s2vec\.count_features\(\) got unknown keyword\(s\) \['levle'\]; "
                                               r"'levle': did you mean 'level'\?"):
        pois.s2vec.count_features(roads, levle=12)
    with pytest.raises(InvalidTypeError, match=r"counts the POIs of the frame it is called on: call it on the POIs, "
                                               r"pois\.s2vec\.count_features\(roads\)"):
        roads.s2vec.count_features(pois=pois)
    pd.testing.assert_frame_equal(pois.s2vec.count_features(roads, level=12), feats)  # the suggested calls work
    np.testing.assert_array_equal(pois.s2vec.rasterize(roads, level=12).values, geos2vec.rasterize(feats).values)


@pytest.mark.parametrize("as_object", [False, True])
def test_plain_dataframe_with_a_geometry_column_names_it(sample, as_object):
    """pd.DataFrame(gdf) (or a pd.concat of frames) was told to "pass a GeoDataFrame" without naming the column of
    geometries it holds or the call that makes one."""
    import geopandas as gpd

    pois, _, _ = sample
    df = pd.DataFrame(pois)
    if as_object:
        df["geometry"] = df["geometry"].astype(object)
    with pytest.raises(InvalidInputError, match=r"its column 'geometry' holds geometries: geopandas\.GeoDataFrame"
                                                r"\(df, geometry='geometry', crs=<their CRS"):
        geos2vec.count_features(df)
    fixed = gpd.GeoDataFrame(df, geometry="geometry", crs="EPSG:4326")  # the suggested call
    pd.testing.assert_frame_equal(geos2vec.count_features(fixed), geos2vec.count_features(pois))


def test_embed_features_as_a_path_says_how_to_read_it(sample, tmp_path, capsys):
    """features="counts.parquet" listed what features takes, but not that a file must be read first."""
    from geos2vec.cli import main

    pois, roads, feats = sample
    homes = pois.head(5)[["name", "geometry"]]
    out = tmp_path / "counts.parquet"
    assert main(["features", POIS, "/work/shared/data/roads/los_angeles.parquet", "--out", str(out)]) == 0
    with pytest.raises(InvalidTypeError, match=r"got str \(a path: read it first: geos2vec\.io\.read_osm, read_pois, "
                                               r"read_roads or pandas\.read_parquet\)"):
        homes.s2vec.embed(features=str(out), progress=False)
    got = homes.s2vec.embed(features=pd.read_parquet(out), progress=False)  # the suggested reading works
    ref = homes.s2vec.embed(features=feats, progress=False)
    np.testing.assert_allclose(got.filter(like="s2vec_").to_numpy(), ref.filter(like="s2vec_").to_numpy(), atol=1e-6)


def test_embed_cells_with_arguments_swapped(sample):
    """embed_cells(features, cell_ids) read the table's counts as cell ids: "invalid S2 cell id(s) at positions
    [0, 1, ...] and 20216 more", with no word of the order; a DataFrame is refused wherever cell ids go."""
    _, _, feats = sample
    ids = feats.index.to_numpy()[:3]
    with pytest.raises(InvalidTypeError, match=r"cell ids must be an array, Series or Index of ids, got a "
                                               r"DataFrame \(columns \['police', .* \.\.\.\); pass its cell ids .*"
                                               r"takes it after them: embed_cells\(cell_ids, features\)"):
        geos2vec.embed_cells(feats, ids)
    with pytest.raises(InvalidTypeError, match="got a DataFrame"):
        geos2vec.cell_polygons(feats.reset_index()[["cell_id"]])
    got = geos2vec.embed_cells(ids, feats, progress=False)  # the order the message gives
    assert got.shape == (3, 256) and got.index.tolist() == ids.tolist()
    assert geos2vec.cell_polygons(feats.reset_index()["cell_id"]).size == len(feats)  # df['cell_id']


@pytest.mark.parametrize("bad", [50, -0.1, "0.5", float("nan")])
def test_evaluate_min_known_out_of_range(sample, bad):
    """min_known=50 (a percentage) dropped every sample: "only 0 samples ... 'm' lacks 75 of 75", naming no
    argument; "0.5" failed inside NumPy (UFuncTypeError)."""
    from geos2vec.evaluate import evaluate

    _, _, feats = sample
    idx = feats.index[:150]
    pool = pd.DataFrame({"sample": np.arange(150) // 2, "cell_id": idx, "weight": 1.0})
    rng = np.random.default_rng(0)
    y = pd.Series(rng.normal(size=75))
    x = feats.iloc[:150, :4].astype(float) + rng.normal(size=(150, 4))
    with pytest.raises(InvalidInputError, match=r"min_known is the share of a sample's weight that must have data, "
                                                r"a number in \[0, 1\]; got .* \(for 50 %: min_known=0\.5\)"):
        evaluate(y, {"m": x}, pooling=pool, min_known=bad, probes="ridge", n_splits=1)
    res = evaluate(y, {"m": x}, pooling=pool, min_known=0.5, probes="ridge", n_splits=1)  # the fix
    assert res.config["n_samples"] == 75


def test_coverage_as_a_polygon_file_path_says_to_read_it(sample, tmp_path):
    """coverage="area.geojson" said "coverage string is not WKT nor a .osm.pbf path", with no way on."""
    import geopandas as gpd

    pois, _, _ = sample
    box = shapely.box(-118.6, 34.0, -118.1, 34.3)
    path = tmp_path / "area.geojson"
    gpd.GeoDataFrame(geometry=[box], crs="EPSG:4326").to_file(path)
    with pytest.raises(errors.CoverageError, match=r"not WKT nor a \.osm\.pbf path: '.*area\.geojson'; pass WKT "
                                                   r".*geopandas\.read_file\(path\)"):
        geos2vec.count_features(pois, coverage=str(path))
    got = geos2vec.count_features(pois, coverage=gpd.read_file(path))  # the fix
    ref = geos2vec.count_features(pois, coverage=box)
    assert coverage.get_coverage(got)[0].equals(coverage.get_coverage(ref)[0])
    pd.testing.assert_frame_equal(got, ref)


def test_ontology_given_a_file_path_says_how_to_give_ones_own(sample, tmp_path):
    """ontology="my_categories.csv" said only "unknown ontology ...; packaged versions: [...]"."""
    pois, _, _ = sample
    path = tmp_path / "my_categories.csv"
    pd.DataFrame({"tag": ["cafe", "restaurant", "amenity=school"], "channel": ["food", "food", "education"]}).to_csv(
        path, index=False)
    with pytest.raises(InvalidInputError, match=r"unknown ontology .*my_categories\.csv'; packaged versions: "
                                                r"\['default', 'v1'\]; your own is a dict \{tag: channel\} .*"
                                                r"for a file: dict\(zip\(df\['tag'\], df\['channel'\]\)\)"):
        geos2vec.count_features(pois, ontology=str(path))
    df = pd.read_csv(path)
    got = geos2vec.count_features(pois, ontology=dict(zip(df["tag"], df["channel"])))  # the suggested fix
    counts = pois["fclass"].value_counts()
    assert got.sum().to_dict() == {"food": counts["cafe"] + counts["restaurant"], "education": counts["school"],
                                   "road": 0}


def test_download_osm_checks_the_area_before_the_network(tmp_path):
    """download_osm("Los Angeles") fetched the extract index first and failed there (offline: a DownloadError about
    the network); a place name is refused at once, saying to give its box."""
    from geos2vec.io import download_osm

    index = tmp_path / "missing-index.json"  # never read for a bad area
    with pytest.raises(InvalidInputError, match=r"got str 'Los Angeles': a place's name is not looked up; give its "
                                                r"box in degrees"):
        download_osm("Los Angeles", cache_dir=tmp_path, index_url=str(index), retries=0)
    with pytest.raises(InvalidInputError, match=r"an area box is \(min_lon, min_lat, max_lon, max_lat\) in degrees; "
                                                r"got \(34\.0, -118\.5, 34\.2, -118\.2\)"):
        download_osm((34.0, -118.5, 34.2, -118.2), cache_dir=tmp_path, index_url=str(index), retries=0)
    with pytest.raises(Exception) as ei:  # a good box gets past the area, to the (missing) index
        download_osm((-118.5, 34.0, -118.2, 34.2), cache_dir=tmp_path, index_url=str(index), retries=0)
    assert "missing-index.json" in str(ei.value) and "area" not in str(ei.value)
