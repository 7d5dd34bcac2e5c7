"""A command-line user who never writes Python: every ``geos2vec`` subcommand with real and awkward inputs.

Exit codes, one-line errors (no traceback) for user mistakes, outputs refused *before* the work, options that
were ignored without a word, and what ``config.json`` records.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import s2sphere

from geos2vec import evaluate as ev
from geos2vec.cli import main
from geos2vec.evaluate import protocol

FAST = ["--model", "none", "--probes", "ridge", "--n-splits", "3", "--location-scales", "2", "--quiet"]


def _s2(lat, lng, level=12):
    """Cell ids from s2sphere (the reference, independent of geos2vec's kernels)."""
    return np.array([s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(a, b)).parent(level).id()
                     for a, b in zip(lat, lng)], dtype=np.uint64)


@pytest.fixture
def grid(tmp_path):
    """Labels on 100 level-12 cells near San José and a count table of 5 channels on them."""
    lat, lng = np.meshgrid(37.30 + 0.02 * np.arange(10), -121.95 + 0.02 * np.arange(10), indexing="ij")
    lat, lng = lat.ravel(), lng.ravel()
    cells = _s2(lat, lng)
    rng = np.random.default_rng(0)
    counts = pd.DataFrame(rng.poisson(2.0, (len(cells), 5)).astype(float), columns=[f"c{i}" for i in range(5)],
                          index=pd.Index(cells, name="cell_id")).groupby(level=0).sum()
    counts.to_parquet(tmp_path / "counts.parquet")
    y = np.log1p(counts.reindex(cells).to_numpy()) @ np.arange(1.0, 6.0) + 0.1 * rng.standard_normal(len(cells))
    pd.DataFrame({"lat": lat, "lon": lng, "v": y}).to_csv(tmp_path / "labels.csv", index=False)
    return dict(dir=tmp_path, cells=cells, counts=counts)


def _labels_argv(grid, out, *extra):
    return ["evaluate", "--labels", str(grid["dir"] / "labels.csv"), "--target", "v", "--features",
            str(grid["dir"] / "counts.parquet"), *FAST, "--out", str(grid["dir"] / out), *extra]


def _error_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.splitlines()[0]


# ------------------------------------------------------------------ evaluate: config.json
def test_labels_config_records_every_split_kind(grid):
    """Two split kinds: config.json had only the first's settings ("split": "random", "block_level": null)."""
    assert main(_labels_argv(grid, "r", "--splits", "random,blocked", "--block-level", "9")) == 0
    config = json.loads((grid["dir"] / "r" / "config.json").read_text())
    scores = pd.read_csv(grid["dir"] / "r" / "scores.csv")
    assert config["split"] == ["random", "blocked"] == list(dict.fromkeys(scores.split))
    assert config["block_level"] == 9
    assert set(config["split_sizes"]) == {"random", "blocked"}
    # the sizes of the blocked splits are those of the blocked protocol itself, not of the random ones
    test_sizes = scores[(scores.split == "blocked") & (scores.method == "counts")].n_test
    assert config["split_sizes"]["blocked"][2] == int(np.mean(test_sizes))
    assert config["n_splits"] == 3 and config["probes"] == ["ridge"]          # shared settings: once


def test_config_records_the_width_the_probe_sees(grid):
    """``random projection`` was recorded with its input width (the count channels), not its components."""
    assert main(_labels_argv(grid, "w", "--splits", "random")) == 0
    config = json.loads((grid["dir"] / "w" / "config.json").read_text())
    methods = ev.standard_methods(grid["cells"], grid["counts"], {}, location_params=dict(frequency_num=2))
    train = np.arange(50)
    for name in ("random projection", "PCA", "counts", "counts-Loc"):
        method = protocol._as_method(methods[name], name)
        blocks = [b.reindex(np.unique(grid["cells"])).to_numpy() for b in method.blocks]
        seen = [x.shape[1] for x in protocol._features(method, blocks, train, 0)]
        assert config["methods"][name] == seen, name
    assert config["methods"]["random projection"] == [256] and config["methods"]["PCA"] == [5]


def test_modes_without_a_model_are_refused(grid, capsys):
    """--modes with --model none was dropped without a word."""
    assert main(_labels_argv(grid, "m", "--splits", "random", "--modes", "tiled")) == 1
    assert "--modes tiled needs a model" in _error_line(capsys)
    assert not (grid["dir"] / "m").exists()


def test_quiet_task_run_prints_no_data_notes(shared_data, tmp_path, capsys):
    """--quiet still printed read_wof's UserWarning (with its source line) on the --task path."""
    argv = ["evaluate", "--task", "zcta:total_pop", "--states", "ri", "--data-dir", str(shared_data), "--model",
            "none", "--splits", "random", "--n-splits", "2", "--location-scales", "2"]
    assert main([*argv, "--out", str(tmp_path / "a"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "read_wof" not in err and "Warning" not in err
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "read_wof kept" in line]
    assert len(notes) == 1 and notes[0].startswith("geos2vec: warning: read_wof kept")
    assert "venues = read_wof(" not in err                                # no source line of the library


@pytest.mark.parametrize("extra, message", [
    (["--config", "nosuch.json"], "--config nosuch.json: cannot read it"),
    (["--config", "LABELS"], "is not JSON: give the config.json of an earlier"),
    (["--within=1,2,3,4"], "no label of .*labels.csv lies inside --within 1,2,3,4"),
    (["--seed", "-1"], "--seed must be a non-negative integer, got -1"),
])
def test_evaluate_user_mistakes_are_one_clear_line(grid, capsys, extra, message):
    extra = [str(grid["dir"] / "labels.csv") if e == "LABELS" else e for e in extra]
    assert main(_labels_argv(grid, "x", "--splits", "random", *extra)) == 1
    import re

    assert re.search(message, _error_line(capsys))


# ------------------------------------------------------------------ outputs refused before the work
def test_outputs_that_cannot_be_written_are_refused_before_the_work(grid, capsys, monkeypatch):
    """A file where a folder is wanted, a missing folder: refused at once, not after the run."""
    import geos2vec.cli_evaluate as C
    import geos2vec.cli_features as F

    def boom(*a, **k):
        raise AssertionError("the work ran before --out was checked")

    monkeypatch.setattr(F, "count_inputs", boom)
    monkeypatch.setattr(C, "evaluate", boom)
    a_file = grid["dir"] / "labels.csv"
    pois = str(grid["dir"] / "counts.parquet")
    cases = [
        (["features", pois, "--out", str(grid["dir"] / "nodir" / "t.parquet")], "the folder .*nodir does not exist"),
        (["features", pois, "--out", str(grid["dir"])], "is a folder; give a file name"),
        (_labels_argv(grid, "x")[:-2] + ["--out", str(a_file)], "labels.csv is a file; give a folder"),
        (_labels_argv(grid, "x")[:-2] + ["--out", str(a_file / "sub")], "labels.csv is a file, so no folder"),
        (["demo", "--out", str(a_file), "--quiet"], "labels.csv is a file; give a folder"),
        (["embed", str(a_file), "--features", pois, "--out", str(grid["dir"] / "rows.txt")],
         r"write \.parquet \(GeoParquet\), \.gpkg, \.geojson or \.csv \(geos2vec does not write \.txt files\)"),
        (["embed", str(a_file), "--features", pois, "--out", str(grid["dir"] / "nodir" / "r.parquet")],
         "the folder .*nodir does not exist"),
    ]
    import re

    for argv, message in cases:
        assert main(argv) == 1, argv
        assert re.search(message, _error_line(capsys)), argv
    assert not (grid["dir"] / "x").exists()


def test_embed_missing_features_file_is_named(grid, capsys):
    """A missing --features table said only "geos2vec: error: t.parquet"."""
    argv = ["embed", str(grid["dir"] / "labels.csv"), "--features", str(grid["dir"] / "nosuch.parquet"), "--out",
            str(grid["dir"] / "o.parquet")]
    assert main(argv) == 1
    assert _error_line(capsys) == f"geos2vec: error: --features: no file at {grid['dir'] / 'nosuch.parquet'}"


def test_features_coverage_box_of_words_names_the_option(grid, capsys):
    """--coverage a,b,c,d said "could not convert string to float: 'a'"."""
    argv = ["features", str(grid["dir"] / "labels.csv"), "--coverage", "a,b,c,d", "--out", str(grid["dir"] / "t.pq")]
    assert main(argv) == 1
    assert "--coverage 'a,b,c,d': a box is four numbers min_lon,min_lat,max_lon,max_lat" in _error_line(capsys)


# ------------------------------------------------------------------ warnings: one line, and the output agrees
def test_features_warnings_are_one_line_and_the_table_matches_the_api(shared_data, tmp_path, capsys):
    """Warnings showed the library's file and source line (``tables.append(count_features(...))``)."""
    import geopandas as gpd

    from geos2vec import count_features

    pois = gpd.read_parquet(shared_data / "pois" / "los_angeles.parquet")   # 6 categories outside the ontology
    pois.to_parquet(tmp_path / "pois.parquet")
    assert main(["features", str(tmp_path / "pois.parquet"), "--out", str(tmp_path / "t.parquet")]) == 0
    err = capsys.readouterr().err
    assert "tables.append" not in err and ".py:" not in err
    notes = [line for line in err.splitlines() if line.strip()]
    assert notes and all(line.startswith("geos2vec: warning: ") for line in notes)
    with pytest.warns(UserWarning):
        ref = count_features(pois=pois)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), ref, check_freq=False)


def test_train_missing_config_names_the_option(tmp_path, capsys):
    """``train --config nosuch.json`` said "[Errno 2] No such file or directory: 'nosuch.json'"."""
    argv = ["train", "--data", str(tmp_path / "t.parquet"), "--out", str(tmp_path / "m"), "--config",
            str(tmp_path / "nosuch.json"), "--quiet"]
    assert main(argv) == 1
    assert _error_line(capsys) == (f"geos2vec: error: --config {tmp_path / 'nosuch.json'}: no such file (a JSON file "
                                   "of S2VecConfig fields)")
    assert not (tmp_path / "m").exists()


def test_features_without_a_category_column_names_the_command_line_option(tmp_path):
    """The message named only the Python argument ``category_column=``; on the command line it is ``--category``."""
    import geopandas as gpd
    import shapely

    from geos2vec.cli import main

    rows = gpd.GeoDataFrame({"kind": ["cafe", "bar"]}, geometry=[shapely.Point(1.52, 42.5), shapely.Point(1.53, 42.5)],
                            crs="EPSG:4326")
    rows.to_parquet(tmp_path / "places.parquet")
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["features", str(tmp_path / "places.parquet"), "--out", str(tmp_path / "t.parquet")])
    assert code != 0 and "--category" in err.getvalue() and "looked for" in err.getvalue()
    assert main(["features", str(tmp_path / "places.parquet"), "--category", "kind", "--out",
                 str(tmp_path / "t.parquet")]) == 0
