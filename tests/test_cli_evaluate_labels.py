"""``geos2vec evaluate --labels``: reading tables, count tables and embeddings, and the geographic hold-outs."""

from __future__ import annotations

import json
import shlex
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geos2vec import cell_to_latlng, latlng_to_cell
from geos2vec import cli_evaluate as C
from geos2vec.cli import main
from geos2vec.errors import InvalidInputError

FAST = ["--model", "none", "--probes", "ridge", "--n-splits", "2", "--location-scales", "2", "--quiet"]


# ------------------------------------------------------------------ reading tables
def test_read_table_by_suffix_and_a_missing_file(tmp_path):
    df = pd.DataFrame({"lat": [37.3, 37.31], "lon": [-121.9, -121.91], "v": [1.5, 2.5], "tag": ["a", "b"]})
    for name in ("labels.csv", "labels.txt", "LABELS.CSV"):                  # upper case is the same CSV
        df.to_csv(tmp_path / name, index=False)
        pd.testing.assert_frame_equal(C._read_table(tmp_path / name), pd.read_csv(tmp_path / name))
        assert C._read_table(tmp_path / name)["v"].dtype == np.float64, name
    df.to_parquet(tmp_path / "plain.parquet")                                # no geo metadata: a plain table
    got = C._read_table(tmp_path / "plain.parquet")
    assert not isinstance(got, gpd.GeoDataFrame)
    pd.testing.assert_frame_equal(got, df)
    gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs="EPSG:4326")
    gdf.to_parquet(tmp_path / "points.parquet")
    gdf.to_file(tmp_path / "points.geojson")
    for name in ("points.parquet", "points.geojson"):
        got = C._read_table(tmp_path / name)
        assert isinstance(got, gpd.GeoDataFrame) and got.crs.to_epsg() == 4326, name
        np.testing.assert_allclose(shapely.get_coordinates(got.geometry.values), np.c_[df.lon, df.lat])
        np.testing.assert_array_equal(got["v"].to_numpy(), df["v"].to_numpy())
    with pytest.raises(InvalidInputError, match="file not found: .*nowhere.csv"):
        C._read_table(tmp_path / "nowhere.csv")


def test_as_cell_table_takes_cell_id_from_a_column_or_the_index():
    cells = latlng_to_cell(np.array([37.3, 37.32, 37.34]), np.array([-121.9, -121.9, -121.9]), 12)
    df = pd.DataFrame({"cell_id": cells.astype(np.int64), "a": [1.0, 2.0, 3.0], "b": [1, 0, 2], "name": list("xyz")})
    for table in (df, df.set_index("cell_id")):
        got = C._as_cell_table(table, "t")
        assert got.index.name == "cell_id" and got.index.dtype == np.uint64
        np.testing.assert_array_equal(got.index.to_numpy(), cells)           # int64 storage: the same 64 bits
        assert list(got.columns) == ["a", "b"]                               # the text column is not a feature
        np.testing.assert_array_equal(got.to_numpy(), df[["a", "b"]].to_numpy())
    with pytest.raises(InvalidInputError, match="emb.parquet needs a cell_id column or index"):
        C._as_cell_table(df.rename(columns={"cell_id": "cell"}), "emb.parquet")


# ------------------------------------------------------------------ count tables
def _points(n=60, seed=0):
    rng = np.random.default_rng(seed)
    lng, lat = rng.uniform(-121.95, -121.85, n), rng.uniform(37.30, 37.40, n)
    return gpd.GeoDataFrame({"fclass": rng.choice(["police", "post_box", "cafe"], n)},
                            geometry=gpd.points_from_xy(lng, lat), crs="EPSG:4326")


def _crosstab(points):
    cells = latlng_to_cell(points.geometry.y.to_numpy(), points.geometry.x.to_numpy(), 12)
    return pd.crosstab(pd.Index(cells, name="cell_id"), points["fclass"].to_numpy()).astype(float)


def test_load_counts_sums_points_roads_and_cell_tables(tmp_path):
    pts = _points()
    pts.to_crs("EPSG:3857").to_parquet(tmp_path / "pois.parquet")          # another CRS: reprojected
    # a road along a meridian (a great circle): it crosses exactly the cells of the points on it
    lat = np.linspace(37.30, 37.33, 3001)
    road = gpd.GeoDataFrame({"highway": ["primary"]}, geometry=[shapely.LineString([(-121.9, 37.30),
                                                                                    (-121.9, 37.33)])],
                            crs="EPSG:4326")
    road.to_parquet(tmp_path / "roads.parquet")
    road_cells = np.unique(latlng_to_cell(lat, np.full(len(lat), -121.9), 12))
    # a plain count table sharing cells with the points (and a channel of its own)
    ref_pts = _crosstab(pts)
    shared = ref_pts.index[:4]
    plain = pd.DataFrame({"cell_id": shared, "police": [1.0, 2.0, 3.0, 4.0], "extra": 5.0})
    plain.to_csv(tmp_path / "plain.csv", index=False)

    out = C._load_counts([tmp_path / "pois.parquet", tmp_path / "roads.parquet", tmp_path / "plain.csv"], "fclass")
    ref = (ref_pts.add(pd.DataFrame({"road": 1.0}, index=pd.Index(road_cells, name="cell_id")), fill_value=0)
           .add(plain.set_index("cell_id"), fill_value=0).fillna(0.0))
    assert out.index.dtype == np.uint64 and out.index.is_unique
    assert set(out.index) == set(ref.index.to_numpy(np.uint64))
    assert set(ref.columns) <= set(out.columns)
    assert not out.isna().any().any()
    got = out.loc[ref.index.to_numpy(np.uint64)]
    np.testing.assert_array_equal(got[ref.columns].to_numpy(float), ref.to_numpy(float))
    assert (out.drop(columns=list(ref.columns)).to_numpy() == 0).all()      # the other channels: no count


def test_load_counts_without_the_features_stage(tmp_path, monkeypatch):
    """Without ``geos2vec.features``: points are a crosstab of their categories; roads cannot be counted."""
    pts = _points(seed=1)
    pts.to_parquet(tmp_path / "pois.parquet")
    road = gpd.GeoDataFrame(geometry=[shapely.LineString([(-121.9, 37.3), (-121.88, 37.31)])], crs="EPSG:4326")
    road.to_parquet(tmp_path / "roads.parquet")
    monkeypatch.setitem(sys.modules, "geos2vec.features", None)             # the import now fails
    out = C._load_counts([tmp_path / "pois.parquet"], "fclass")
    ref = _crosstab(pts)
    assert sorted(out.columns) == sorted(ref.columns) == ["cafe", "police", "post_box"]
    pd.testing.assert_frame_equal(out[ref.columns].sort_index(), ref.sort_index(), check_names=False,
                                  check_index_type=False, check_column_type=False)
    with pytest.raises(InvalidInputError, match="roads.parquet: counting roads needs geos2vec.features"):
        C._load_counts([tmp_path / "roads.parquet"], "fclass")


# ------------------------------------------------------------------ the --labels run
@pytest.fixture
def labelled(tmp_path):
    """Labels at the centroids of 91 level-12 cells, a target linear in a 2-column embedding file."""
    lat, lng = np.meshgrid(37.30 + 0.02 * np.arange(10), -121.95 + 0.02 * np.arange(10), indexing="ij")
    cells = np.unique(latlng_to_cell(lat.ravel(), lng.ravel(), 12))
    clat, clng = cell_to_latlng(cells)
    rng = np.random.default_rng(0)
    sig = rng.standard_normal((len(cells), 2))
    y = 3 * sig[:, 0] - 2 * sig[:, 1] + 0.1 * rng.standard_normal(len(cells))
    pd.DataFrame({"latitude": clat, "longitude": clng, "v": y}).to_csv(tmp_path / "labels.csv", index=False)
    pd.DataFrame({"cell_id": cells, "s0": sig[:, 0], "s1": sig[:, 1], "note": "text"}).to_parquet(
        tmp_path / "emb.parquet")
    return dict(dir=tmp_path, cells=cells, lat=clat, lng=clng,
                argv=["evaluate", "--labels", str(tmp_path / "labels.csv"), "--target", "v",
                      "--embedding", f"sig={tmp_path / 'emb.parquet'}", *FAST])


def _run(labelled, *extra, out="rep"):
    out = labelled["dir"] / out
    assert main([*labelled["argv"], "--out", str(out), "--debug", *extra]) == 0
    return pd.read_csv(out / "scores.csv"), json.loads((out / "config.json").read_text())


def test_an_embedding_file_is_a_method_and_region_splits_are_left_out_with_a_note(labelled, capsys):
    scores, config = _run(labelled)
    err = capsys.readouterr().err
    assert "note: region splits need a --task's regions" in err
    assert set(scores.split) == {"random", "blocked"}                        # the default kinds but region
    assert set(scores.method) == {"sig", "sig-Loc", "region one-hot", "location-only"}
    assert config["methods"]["sig"] == [2]                                   # s0, s1; the text column dropped
    assert (scores.n_cells == len(labelled["cells"])).all()
    # the target is 3 s0 - 2 s1 plus noise of SD 0.1: R² = 1 - 0.01 / 13 on average
    r2 = scores[(scores.method == "sig") & (scores.split == "random")].r2
    assert (r2 > 0.99).all()
    with pytest.raises(InvalidInputError, match="--embedding needs NAME=FILE, got 'emb.parquet'"):
        main([*labelled["argv"][:-len(FAST)], "--embedding", "emb.parquet", *FAST, "--debug"])


def test_holdout_bbox_tests_on_the_cells_inside(labelled, capsys):
    bbox = (-121.95, 37.30, -121.87, 37.36)
    scores, config = _run(labelled, "--holdout-bbox=" + ",".join(map(str, bbox)))
    lat, lng = labelled["lat"], labelled["lng"]
    inside = (lng >= bbox[0]) & (lng <= bbox[2]) & (lat >= bbox[1]) & (lat <= bbox[3])
    assert 0 < inside.sum() < len(inside) / 2
    assert set(scores.split) == {"holdout"} and (scores.n_test == inside.sum()).all()
    assert config["split"] == "holdout" and config["holdout"] == {"bbox": list(bbox)}
    assert config["split_sizes"]["holdout"][2] == inside.sum()
    assert sum(config["split_sizes"]["holdout"][:2]) == (~inside).sum()
    assert "note:" not in capsys.readouterr().err                            # a hold-out is not a region split
    with pytest.raises(InvalidInputError, match=r"a bbox needs 4 numbers MINLON,MINLAT,MAXLON,MAXLAT, got '1,2,3'"):
        main([*labelled["argv"], "--holdout-bbox=1,2,3", "--out", str(labelled["dir"] / "x"), "--debug"])


@pytest.mark.parametrize("side", ["east", "west"])
def test_holdout_lon_tests_on_one_side(labelled, side):
    lon = -121.83
    scores, config = _run(labelled, "--holdout-lon", str(lon), "--holdout-side", side)
    test = labelled["lng"] >= lon if side == "east" else labelled["lng"] < lon
    assert 0 < test.sum() < len(test) and test.sum() != (~test).sum()
    assert (scores.n_test == test.sum()).all() and set(scores.split) == {"holdout"}
    assert config["holdout"] == {"lon": lon, "side": side}


def test_holdout_polygon_tests_on_the_cells_in_the_union_of_the_file(labelled):
    boxes = [shapely.box(-121.865, 37.295, -121.795, 37.335), shapely.box(-121.815, 37.38, -121.745, 37.45)]
    gpd.GeoDataFrame(geometry=boxes, crs="EPSG:4326").to_crs("EPSG:3857").to_file(labelled["dir"] / "zone.geojson")
    union = shapely.union_all(boxes)
    lat, lng = labelled["lat"], labelled["lng"]
    assert shapely.distance(union.boundary, shapely.points(lng, lat)).min() > 1e-3  # no centroid on an edge
    inside = shapely.contains_xy(union, lng, lat)
    assert inside.sum() > 2
    scores, config = _run(labelled, "--holdout-polygon", str(labelled["dir"] / "zone.geojson"))
    assert (scores.n_test == inside.sum()).all() and set(scores.split) == {"holdout"}
    # the union in degrees (its EPSG:3857 edges densified: vertices added along them)
    assert shapely.hausdorff_distance(shapely.from_wkt(config["holdout"]["polygon"]), union) < 1e-6


def test_holdout_errors(labelled, capsys):
    d = labelled["dir"]
    # no labelled cell in the region: said, not a traceback
    pd.DataFrame({"latitude": [37.3], "longitude": [-121.9]}).to_csv(d / "not_polygons.csv", index=False)
    gpd.GeoDataFrame(geometry=[shapely.Point(-121.9, 37.3)], crs="EPSG:4326").to_file(d / "point.geojson")
    cases = [
        (["--holdout-bbox=-100,30,-99,31"], f"hold-out leaves 0 test and {len(labelled['cells'])} train/val cells"),
        (["--holdout-bbox=-122,37,-121,38", "--holdout-lon", "-121.9"], "--holdout-bbox, --holdout-lon"),
        (["--holdout-lon", "-121.9", "--holdout-polygon", str(d / "point.geojson")],
         "--holdout-lon, --holdout-polygon"),
        (["--holdout-polygon", str(d / "not_polygons.csv")], "not_polygons.csv has no geometry"),
        (["--holdout-polygon", str(d / "point.geojson")], "must be polygons (the area); 1 of its geometries are not"),
    ]
    for extra, message in cases:
        assert main([*labelled["argv"], "--out", str(d / "x"), *extra]) == 1, extra
        err = capsys.readouterr().err
        assert err.startswith("geos2vec: error: ") and message in err, (extra, err)


def test_labels_path_refuses_missing_or_conflicting_sources(labelled, capsys):
    d = labelled["dir"]
    assert main(["evaluate", "--labels", str(d / "labels.csv"), *FAST, "--out", str(d / "x")]) == 1
    assert "--labels FILE with --target COLUMN" in capsys.readouterr().err
    assert main([*labelled["argv"], "--task", "ca-housing", "--out", str(d / "x")]) == 1
    assert "give either --task or --labels, not both" in capsys.readouterr().err
    assert main(["evaluate", "--labels", str(d / "nowhere.csv"), "--target", "v", *FAST, "--out", str(d / "x")]) == 1
    assert "file not found" in capsys.readouterr().err and not (d / "x").exists()


# ------------------------------------------------------------------ the reproducing command of --task runs
def test_task_report_command_reproduces_the_options(tmp_path, monkeypatch):
    """The command in report.md, parsed again, gives the options of the run (MLP options and --no-untrained)."""
    import argparse

    seen = []

    def fake_suite(tasks, **kw):
        seen.append(kw)
        scores = pd.DataFrame({"task": "t", "split": "blocked", "method": ["a", "b"], "probe": "ridge", "rep": 0,
                               "r2": [0.5, 0.4], "mae": [1.0, 1.1], "n_cells": 10})
        return scores, {"t": {"samples": 10, "dropped": 0}}

    monkeypatch.setattr(C, "run_suite", fake_suite)
    argv = ["--task", "ca-housing", "--model", "none", "--probes", "ridge,mlp", "--lr", "0.05", "--hidden", "8,16",
            "--dropout", "0.1", "--max-epochs", "7", "--patience", "3", "--batch-size", "32",
            "--target-scale", "minmax", "--no-untrained", "--fusion", "weighted", "--quiet"]
    assert main(["evaluate", *argv, "--out", str(tmp_path / "a")]) == 0
    text = (tmp_path / "a" / "report.md").read_text()
    command = text.split("```bash\n", 1)[1].split("\n```", 1)[0]
    words = shlex.split(command)
    assert words[:2] == ["geos2vec", "evaluate"]
    parser = argparse.ArgumentParser()
    C.add_parser(parser.add_subparsers())
    original = parser.parse_args(["evaluate", *argv])
    again = parser.parse_args(["evaluate", *words[2:]])
    for key in ("task", "model", "probes", "lr", "hidden", "dropout", "max_epochs", "patience", "batch_size",
                "target_scale", "untrained", "fusion", "splits", "n_splits", "seed", "modes"):
        assert getattr(again, key) == getattr(original, key), key
    assert not again.untrained and seen[0]["untrained"] is False
    assert seen[0]["sweep"] == {"lr": [0.05], "hidden": [8, 16], "dropout": [0.1]}


def test_holdout_side_without_holdout_lon_is_refused(labelled):
    """--holdout-side west alone was ignored: the run used the default splits without a word."""
    with pytest.raises(InvalidInputError, match="--holdout-side only applies with --holdout-lon"):
        main([*labelled["argv"], "--holdout-side", "west", "--out", str(labelled["dir"] / "x"), "--debug"])
    assert not (labelled["dir"] / "x").exists()


def test_a_model_without_features_is_named_not_dropped_silently(labelled, capsys):
    """--labels with a model (the default) but no --features: the model cannot embed, the run says so."""
    argv = [a for a in labelled["argv"] if a not in ("--model", "none")]
    assert argv.count("--model") == 0 and len(argv) == len(labelled["argv"]) - 2
    out = labelled["dir"] / "m"
    assert main([*argv, "--out", str(out), "--debug"]) == 0
    err = capsys.readouterr().err
    assert "note: --model default embeds from cell counts: give --features" in err
    scores = pd.read_csv(out / "scores.csv")
    assert not scores.method.str.startswith("S2Vec").any()
    _run(labelled)  # with --model none: no such note
    assert "--model" not in capsys.readouterr().err


@pytest.mark.parametrize("ids, error", [
    ([np.nan, 1.0], "not S2 cell ids: cell ids must be an integer array"),   # a float column (a NaN somewhere)
    ([-5, 3], "not S2 cell ids: invalid S2 cell id"),                       # negative: no cell
])
def test_cell_id_values_that_are_no_cells_are_refused(tmp_path, ids, error):
    """astype(uint64) made NaN 9223372036854775808 and -5 18446744073709551611: rows of cells nobody gave."""
    from geos2vec.cli_evaluate import _as_cell_table

    df = pd.DataFrame({"cell_id": ids, "x": [1.0, 2.0]})
    with pytest.raises((InvalidInputError, TypeError), match=error) as info:
        _as_cell_table(df, "emb.parquet")
    assert str(info.value).startswith("emb.parquet: its cell_id values")
    ok = pd.DataFrame({"cell_id": latlng_to_cell(np.array([37.3, 37.4]), np.array([-121.9, -121.8]), 12),
                       "x": [1.0, 2.0]})
    ok["cell_id"] = ok["cell_id"].astype(np.int64)  # signed storage of the same bits (Parquet, Arrow)
    got = _as_cell_table(ok, "emb.parquet")
    assert got.index.dtype == np.uint64 and (got.index.to_numpy() == ok["cell_id"].to_numpy().view(np.uint64)).all()
