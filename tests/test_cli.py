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
