"""The command line: --version, one-line user errors, --debug tracebacks."""

from __future__ import annotations

import pytest

from geos2vec.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("geos2vec ")


def test_user_error_is_one_line_with_status_1(capsys):
    assert main(["cells", "95", "0"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("geos2vec: error: 1 latitude(s) outside [-90, 90]")
    assert "Traceback" not in "\n".join(err) and "--debug" in err[1]
    assert main(["train", "--data", "/nonexistent/images.zarr", "--out", "/tmp/unused-model"]) == 1
    assert "no data at /nonexistent/images.zarr" in capsys.readouterr().err


def test_debug_shows_the_exception():
    with pytest.raises(ValueError, match="outside"):
        main(["cells", "95", "0", "--debug"])


def test_usage_errors_keep_argparse_status_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["cells", "--level", "x"])
    assert info.value.code == 2


def test_features_and_embed_commands_round_trip(tmp_path):
    import warnings

    import geopandas as gpd
    import numpy as np
    import pandas as pd

    import geos2vec
    from geos2vec.coverage import has_coverage
    from geos2vec.demo import load_sample

    pois, roads = load_sample()
    pois.to_parquet(tmp_path / "pois.parquet")
    roads.to_parquet(tmp_path / "roads.parquet")
    homes = pois.sample(40, random_state=1)[["name", "geometry"]].to_crs(3857)
    homes.index = homes.index * 10  # a non-default index must survive
    homes.to_parquet(tmp_path / "homes.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["features", str(tmp_path / "pois.parquet"), str(tmp_path / "roads.parquet"),
                     "--coverage", "infer", "--out", str(tmp_path / "table.parquet")]) == 0
        table = pd.read_parquet(tmp_path / "table.parquet")
        ref = geos2vec.count_features(pois, roads)
        pd.testing.assert_frame_equal(table.sort_index(), ref.sort_index(), check_dtype=False,
                                      check_names=False)
        assert has_coverage(table)
        assert main(["embed", str(tmp_path / "homes.parquet"), "--features", str(tmp_path / "table.parquet"),
                     "--out", str(tmp_path / "out.parquet"), "--quiet"]) == 0
        out = gpd.read_parquet(tmp_path / "out.parquet")
        direct = homes.s2vec.embed(features=ref)
    assert out.index.equals(homes.index) and out.crs == homes.crs
    np.testing.assert_allclose(out.filter(like="s2vec_").to_numpy(), direct.filter(like="s2vec_").to_numpy(),
                               atol=1e-6)


def test_embed_command_names_a_missing_file(capsys):
    assert main(["embed", "/nonexistent/rows.parquet", "--features", "x.parquet", "--out", "o.parquet"]) == 1
    assert "no file at /nonexistent/rows.parquet" in capsys.readouterr().err


def test_cells_command_prints_s2sphere_cells(capsys):
    """`geos2vec cells LAT LNG ... --level L`: one line per pair, the cell id and token s2sphere gives."""
    s2sphere = pytest.importorskip("s2sphere")
    coords = [34.05, -118.25, -33.8688, 151.2093, 0.0, 0.0]
    for level in (12, 30, 0):
        assert main(["cells", *map(str, coords), "--level", str(level)]) == 0
        lines = capsys.readouterr().out.splitlines()[1:]
        assert len(lines) == 3
        for (lat, lng), line in zip(zip(coords[0::2], coords[1::2]), lines):
            ref = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lng)).parent(level)
            _, _, cell_id, token, *_ = line.split()
            assert (int(cell_id), token) == (ref.id(), ref.to_token())
    assert main(["cells", "34.05"]) == 1
    assert "latitude/longitude pairs" in capsys.readouterr().err


def _sample_files(tmp_path):
    from geos2vec.demo import load_sample

    pois, roads = load_sample()
    pois.to_parquet(tmp_path / "pois.parquet")
    roads.to_parquet(tmp_path / "roads.parquet")
    return pois, roads


def test_features_command_coverage_forms(tmp_path, capsys):
    """--coverage as a box and as a polygon file give count_features(..., coverage=) of the same geometry;
    'header' without a .osm.pbf input and unreadable text are one-line errors."""
    import warnings

    import geopandas as gpd
    import pandas as pd
    import shapely

    import geos2vec
    from geos2vec.coverage import get_coverage

    pois, roads = _sample_files(tmp_path)
    x0, y0, x1, y1 = pois.total_bounds
    box = (x0, y0, (x0 + x1) / 2, y1)  # the western half: cells east of it are outside the coverage
    poly = shapely.Polygon([(x0, y0), (x1, y0), (x0, y1)])  # a triangle
    gpd.GeoDataFrame(geometry=[poly], crs=4326).to_file(tmp_path / "cov.geojson")
    inputs = [str(tmp_path / "pois.parquet"), str(tmp_path / "roads.parquet")]
    for text, geom in ((",".join(str(float(v)) for v in box), box), (str(tmp_path / "cov.geojson"), poly)):
        out = tmp_path / "table.parquet"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert main(["features", *inputs, "--coverage", text, "--out", str(out)]) == 0
            ref = geos2vec.count_features(pois, roads, coverage=geom)
        table = pd.read_parquet(out)
        pd.testing.assert_frame_equal(table.sort_index(), ref.sort_index(), check_dtype=False, check_names=False)
        want = shapely.box(*geom) if isinstance(geom, tuple) else geom
        got = get_coverage(table)[0]
        assert got is not None and shapely.equals(got, get_coverage(ref)[0]) and shapely.equals(got, want)
    capsys.readouterr()
    assert main(["features", *inputs, "--coverage", "header", "--out", str(tmp_path / "t.parquet")]) == 1
    assert "needs exactly one .osm.pbf input" in capsys.readouterr().err
    assert main(["features", *inputs, "--coverage", "1,2,3", "--out", str(tmp_path / "t.parquet")]) == 1
    assert "--coverage must be" in capsys.readouterr().err
    assert not (tmp_path / "t.parquet").exists()


def test_embed_command_writes_geojson(tmp_path):
    """--out x.geojson: GeoJSON in WGS 84 with the same embeddings as the GeoParquet output, rows in order."""
    import warnings

    import geopandas as gpd
    import numpy as np

    pois, _ = _sample_files(tmp_path)
    homes = pois.sample(25, random_state=2)[["name", "geometry"]]
    homes.to_parquet(tmp_path / "homes.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["features", str(tmp_path / "pois.parquet"), str(tmp_path / "roads.parquet"), "--out",
                     str(tmp_path / "table.parquet")]) == 0
        for out in ("out.parquet", "out.geojson"):
            assert main(["embed", str(tmp_path / "homes.parquet"), "--features", str(tmp_path / "table.parquet"),
                         "--out", str(tmp_path / out), "--quiet"]) == 0
    a = gpd.read_parquet(tmp_path / "out.parquet")
    b = gpd.read_file(tmp_path / "out.geojson")
    assert len(b) == len(homes) and list(b["name"]) == list(homes["name"])
    cols = [c for c in a.columns if c.startswith("s2vec_")]
    assert len(cols) == 256
    np.testing.assert_allclose(b[cols].to_numpy(float), a[cols].to_numpy(float), rtol=1e-6, atol=1e-6)
    assert shapely_equal(a.geometry, b.geometry)
    assert list(b["s2_cell"]) == [str(v) for v in a["s2_cell"]]  # GDAL has no uint64: decimal strings
    assert not list(tmp_path.glob(".*.partial"))


def shapely_equal(a, b):
    import numpy as np
    import shapely

    return bool(np.all(shapely.equals_exact(a.values, b.set_crs(a.crs, allow_override=True).values, 1e-9)))


@pytest.mark.parametrize("argv, want", [
    (["features", "a.pbf", "--coverage", "-118.5,34.0,-118.2,34.2"],
     ["features", "a.pbf", "--coverage=-118.5,34.0,-118.2,34.2"]),
    (["evaluate", "--holdout-bbox", "-1e2, 30,-90,40.5", "--x"],
     ["evaluate", "--holdout-bbox=-1e2, 30,-90,40.5", "--x"]),
    (["features", "--coverage=-1,2,3,4"], ["features", "--coverage=-1,2,3,4"]),  # already joined
    (["cells", "-33.8", "151.2"], ["cells", "-33.8", "151.2"]),  # single numbers: argparse reads them
    (["features", "--coverage", "-h"], ["features", "--coverage", "-h"]),  # not a number list
])
def test_option_values_that_are_negative_number_lists_are_joined(argv, want):
    """argparse takes "-118.5,34.0,..." after an option for an option of its own ("expected one argument")."""
    from geos2vec.cli import _join_number_lists

    assert _join_number_lists(argv) == want


def test_embed_command_refuses_a_table_whose_cell_ids_are_floats(tmp_path, capsys):
    import pandas as pd

    pois, _ = _sample_files(tmp_path)
    pois.iloc[:5].to_parquet(tmp_path / "rows.parquet")
    pd.DataFrame({"cell_id": [1.5, float("nan")], "cafe": [1, 2]}).to_parquet(tmp_path / "table.parquet")
    assert main(["embed", str(tmp_path / "rows.parquet"), "--features", str(tmp_path / "table.parquet"),
                 "--out", str(tmp_path / "out.parquet"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "table.parquet: its cell_id values are not S2 cell ids" in err
    assert not (tmp_path / "out.parquet").exists()


def test_embed_command_reads_an_upper_case_parquet_name(tmp_path):
    """ROWS.PARQUET went to GDAL ("libduckdb.so"), as io.read_pois did before it read suffixes case-blind."""
    import warnings

    import geopandas as gpd

    pois, _ = _sample_files(tmp_path)
    pois.iloc[:5][["name", "geometry"]].to_parquet(tmp_path / "ROWS.PARQUET")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["features", str(tmp_path / "pois.parquet"), "--out", str(tmp_path / "table.parquet")]) == 0
        assert main(["embed", str(tmp_path / "ROWS.PARQUET"), "--features", str(tmp_path / "table.parquet"),
                     "--out", str(tmp_path / "out.parquet"), "--quiet"]) == 0
    out = gpd.read_parquet(tmp_path / "out.parquet")
    assert list(out["name"]) == list(pois.iloc[:5]["name"]) and out.filter(like="s2vec_").shape[1] == 256


def test_the_program_skips_the_collections_at_exit_and_a_call_from_python_does_not(monkeypatch, capsys):
    """``main()`` as the program registers ``gc.freeze`` as an exit handler (Python's shutdown collections cost
    0.3–2 s after every command, benchmarks/bench_cli_exit.py); ``main(argv)`` from Python changes nothing at exit."""
    import gc
    import subprocess
    import sys

    import geos2vec.cli as cli

    registered = []
    monkeypatch.setattr(cli.atexit, "register", registered.append)
    monkeypatch.setattr(sys, "argv", ["geos2vec", "cells", "0", "0"])
    assert main() == 0
    assert registered[0] is gc.freeze  # first registered: it runs after every later handler (last in, first out)
    program = capsys.readouterr().out
    registered.clear()
    assert main(["cells", "0", "0"]) == 0
    assert gc.freeze not in registered
    assert capsys.readouterr().out == program
    # the program itself: the same output and status with the handler in place
    run = subprocess.run([sys.executable, "-m", "geos2vec", "cells", "0", "0"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout == program
