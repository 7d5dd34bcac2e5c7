"""``~`` in a path is the home folder, as pandas, xarray and Keras read it, in every reader and writer.

Before: read_osm, read_wof, read_pois/read_roads and coverage="<~/x.osm.pbf>" raised FileNotFoundError, the demo
and ``--out=~/x`` (the shell leaves a "~" after "=" alone) wrote into a folder named "~" in the working directory.
Reference: the same call with the expanded path.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.geometry


_OSM = ('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="test">\n'
        '<node id="1" version="1" lat="47.11" lon="9.51"><tag k="amenity" v="cafe"/></node>\n'
        '<node id="2" version="1" lat="47.12" lon="9.52"/>\n<node id="3" version="1" lat="47.13" lon="9.53"/>\n'
        '<way id="10" version="1"><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/></way>\n</osm>\n')


def _frames_equal(a, b):
    pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry")))
    assert a.geometry.geom_equals(b.geometry).all()


def test_read_osm_reads_a_file_in_the_home_folder(home):
    pytest.importorskip("osmium")
    from geos2vec.io import read_osm

    (home / "x.osm").write_text(_OSM)
    got, ref = read_osm("~/x.osm"), read_osm(home / "x.osm")  # (pois, roads)
    for g, r in zip(got, ref):
        assert len(r) == 1
        _frames_equal(g, r)


def test_read_wof_reads_a_folder_in_the_home_folder(home):
    from geos2vec.io import read_wof

    rng = np.random.default_rng(0)
    n = 20
    (home / "wof").mkdir()
    pd.DataFrame({"wof_id": np.arange(1000, 1000 + n, dtype=np.int64), "name": [f"v{i}" for i in range(n)],
                  "lon": -71.4 + rng.uniform(0, 0.05, n), "lat": 41.8 + rng.uniform(0, 0.05, n),
                  "sg_type": pd.Categorical(["Food & Drink"] * n), "sg_category": ["Restaurant"] * n,
                  "sg_subcategory": [None] * n, "tags": [None] * n, "mz_categories": [None] * n,
                  "is_current": [1.0] * n}).to_parquet(home / "wof" / "us-zz.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, ref = read_wof("~/wof"), read_wof(home / "wof")
    assert len(ref) == n
    _frames_equal(got, ref)


def test_read_pois_reads_a_file_in_the_home_folder(home):
    from geos2vec.io import read_pois

    pois = gpd.GeoDataFrame({"fclass": ["cafe", "bank"]}, geometry=gpd.points_from_xy([9.51, 9.52], [47.1, 47.2]),
                            crs=4326)
    pois.to_parquet(home / "pois.parquet")
    _frames_equal(read_pois("~/pois.parquet"), read_pois(home / "pois.parquet"))


def test_a_pbf_coverage_in_the_home_folder_is_its_header_box(home):
    pytest.importorskip("osmium")
    from geos2vec.coverage import as_coverage

    import osmium

    header = osmium.io.Header()
    header.add_box(osmium.osm.Box(osmium.osm.Location(9.4, 47.0), osmium.osm.Location(9.6, 47.3)))
    with osmium.SimpleWriter(str(home / "x.osm.pbf"), header=header) as w:
        w.add_node(osmium.osm.mutable.Node(id=1, location=(9.51, 47.11)))
    ref = as_coverage(str(home / "x.osm.pbf"))
    assert shapely.equals(ref, shapely.box(9.4, 47.0, 9.6, 47.3))
    assert shapely.equals(as_coverage("~/x.osm.pbf"), ref)


def test_the_demo_writes_into_the_home_folder(home):
    from geos2vec.demo import run_demo

    run_demo("~/demo-out", "default", "patch", True)
    assert (home / "demo-out" / "embeddings.parquet").exists()


def test_cli_features_reads_and_writes_home_paths_after_an_equals_sign(home):
    """``--out=~/counts.parquet``: the shell expands no "~" after "=", so the CLI must."""
    from geos2vec.cli import main
    from geos2vec.features import count_features

    pois = gpd.GeoDataFrame({"fclass": ["cafe", "bank", "cafe"]},
                            geometry=gpd.points_from_xy([9.51, 9.52, 9.53], [47.1, 47.2, 47.3]), crs=4326)
    pois.to_parquet(home / "pois.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["features", "~/pois.parquet", "--out=~/counts.parquet", "--coverage=infer"]) == 0
        ref = count_features(pois, level=12, coverage="infer")
    got = pd.read_parquet(home / "counts.parquet")
    pd.testing.assert_frame_equal(got.loc[:, (got != 0).any()], ref.loc[:, (ref != 0).any()], check_index_type=False,
                                  check_dtype=False)


def test_fit_checkpoints_and_logs_into_the_home_folder(home):
    """fit(checkpoint_dir="~/ckpt", log_dir="~/logs") wrote into "./~/ckpt" and "./~/logs"."""
    pytest.importorskip("keras")
    from geos2vec.features import count_features
    from geos2vec.model import S2VecConfig, S2VecModel
    from geos2vec.raster import rasterize

    rng = np.random.default_rng(0)
    pois = gpd.GeoDataFrame({"fclass": rng.choice(["cafe", "bank", "school"], 300)},
                            geometry=gpd.points_from_xy(rng.uniform(-74.0, -73.9, 300), rng.uniform(40.6, 40.7, 300)),
                            crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        images = rasterize(count_features(pois, level=12), image_level=10)
        cfg = S2VecConfig(embedding_dim=8, encoder_layers=1, decoder_dim=8, decoder_layers=1, num_heads=2,
                          batch_size=8, epochs=1, shuffle_buffer=16, validation_split=0.0, seed=1)
        S2VecModel(cfg).fit(images, checkpoint_dir="~/ckpt", log_dir="~/logs", verbose=0)
    assert (home / "ckpt" / "last.weights.h5").exists()
    assert (home / "logs" / "training.csv").exists()


def test_open_images_reads_a_store_in_the_home_folder(home):
    pytest.importorskip("zarr")
    from geos2vec.features import count_features
    from geos2vec.model.data import open_images
    from geos2vec.raster import rasterize, to_zarr

    pois = gpd.GeoDataFrame({"fclass": ["cafe", "bank"]}, geometry=gpd.points_from_xy([-73.95, -73.96], [40.65, 40.66]),
                            crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        images = rasterize(count_features(pois, level=12), image_level=10)
    to_zarr(images, home / "imgs.zarr")
    got = open_images("~/imgs.zarr")
    np.testing.assert_array_equal(np.asarray(got.values), np.asarray(images.values))


def _labels_csv(path):
    rng = np.random.default_rng(0)
    n = 60
    pd.DataFrame({"lat": rng.uniform(40.6, 40.75, n), "lon": rng.uniform(-74.05, -73.85, n),
                  "y": rng.normal(size=n)}).to_csv(path, index=False)
    return path


def test_cli_evaluate_refuses_to_write_over_the_earlier_report_named_with_a_tilde(home, capsys):
    """--config <abs>/r/config.json --out=~/r passed the guard (it compared "~/r" unexpanded) and overwrote ~/r."""
    from geos2vec.cli import main

    (home / "r").mkdir()
    (home / "r" / "config.json").write_text('{"cli": {}}')
    (home / "r" / "report.md").write_text("OLD REPORT")
    args = ["evaluate", "--labels", str(_labels_csv(home / "labels.csv")), "--target", "y", "--model", "none",
            "--probes", "ridge", "--n-splits", "2", "--splits", "random", "--quiet"]
    assert main(args + ["--config", str(home / "r" / "config.json"), "--out=~/r"]) == 1
    assert "would write over that earlier report" in capsys.readouterr().err
    assert (home / "r" / "report.md").read_text() == "OLD REPORT"
    # --config=~/r/config.json is read (it said "cannot read it (No such file or directory)")
    assert main(args + ["--config=~/r/config.json", "--out=~/r2"]) == 0
    assert (home / "r2" / "report.md").exists()


def test_data_dir_and_the_osm_cache_take_a_tilde(home, monkeypatch):
    import io
    import json

    from geos2vec.evaluate.tasks import data_dir
    from geos2vec.io import download

    (home / "data" / "labels").mkdir(parents=True)
    assert data_dir("~/data") == home / "data"
    monkeypatch.setenv("GEOS2VEC_DATA", "~/data")
    assert data_dir() == home / "data"

    class Reply(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    index = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "liechtenstein", "name": "Liechtenstein",
                                           "urls": {"pbf": "http://127.0.0.1/liechtenstein-latest.osm.pbf"}},
         "geometry": shapely.geometry.mapping(shapely.box(9.4, 47.0, 9.7, 47.3))}]}
    monkeypatch.setattr(download, "_get", lambda *a, **k: Reply(json.dumps(index).encode()))
    got = download.read_index("http://127.0.0.1/index-v1.json", cache_dir="~/osmcache", retries=0)
    assert [e["id"] for e in got] == ["liechtenstein"]
    assert len(list((home / "osmcache" / "index").iterdir())) == 1  # the cached index, in the home folder
    monkeypatch.setenv("GEOS2VEC_CACHE", "~/c")
    assert download.default_cache_dir() == home / "c" / "osm"


def test_cli_train_reads_a_config_named_with_a_tilde(home, capsys):
    pytest.importorskip("keras")
    from geos2vec.cli import main

    (home / "cfg.json").write_text('{"epochs": 1}')
    main(["train", "--data", str(home / "none.zarr"), "--out", str(home / "m"), "--config=~/cfg.json"])
    err = capsys.readouterr().err
    assert "--config" not in err and "no data at" in err  # past the config check, stopped at the missing data
