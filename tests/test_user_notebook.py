"""A Jupyter user: cells run twice and out of order, objects looked at by typing their name, Ctrl-C mid-call.

Every public object shows a short repr that says what it is; an options block run again sets its options again;
registering the accessor again (a re-run cell, ``importlib.reload``) does not warn; an interrupted demo closes
its progress bar.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import geos2vec
from geos2vec.errors import InvalidInputError
from geos2vec.evaluate import EvaluationResult, Method, evaluate
from geos2vec.io.osm import OSMData
from geos2vec.normalize import FeatureStats


@pytest.fixture(autouse=True)
def _options_kept():
    before = geos2vec.get_options()
    yield
    geos2vec.set_options(**before)


# ------------------------------------------------------------------ options
def test_set_options_repr_says_what_it_changed():
    geos2vec.set_options(progress=True, threads=1)
    assert repr(geos2vec.set_options(progress=False)) == "<set_options: progress=False (was True)>"
    assert repr(geos2vec.set_options(threads=3, progress=True)) == \
        "<set_options: threads=3 (was 1), progress=True (was False)>"
    assert repr(geos2vec.set_options()) == "<set_options: no change>"


def test_an_options_block_run_again_sets_its_options_again():
    geos2vec.set_options(progress=True)
    quiet = geos2vec.set_options(progress=False)  # cell 1
    with quiet:                                   # cell 2
        assert geos2vec.get_options()["progress"] is False
    assert geos2vec.get_options()["progress"] is True
    with quiet:                                   # cell 2 run again: the bars stayed on here
        assert geos2vec.get_options()["progress"] is False
    assert geos2vec.get_options()["progress"] is True
    quiet.__exit__(None, None, None)  # a second exit restores nothing (it undid settings made in between)
    geos2vec.set_options(progress=False)
    quiet.__exit__(None, None, None)
    assert geos2vec.get_options()["progress"] is False


def test_numpy_scalars_are_valid_option_values():
    geos2vec.set_options(threads=np.int64(2), progress=np.False_)
    opts = geos2vec.get_options()
    assert opts == {"threads": 2, "progress": False}
    assert type(opts["threads"]) is int and type(opts["progress"]) is bool
    for bad in ({"threads": np.int64(0)}, {"threads": np.True_}, {"threads": 2.0}, {"progress": 1}):
        with pytest.raises(InvalidInputError, match=next(iter(bad))):
            geos2vec.set_options(**bad)
    assert geos2vec.get_options() == {"threads": 2, "progress": False}


# ------------------------------------------------------------------ accessor registration
def test_registering_the_accessor_again_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        geos2vec.accessor._register()  # what re-running the module does
        geos2vec.accessor._register()
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(-118.25, 34.05)], crs="EPSG:4326")
    assert pts.s2vec.cell_ids(12).tolist() == [geos2vec.latlng_to_cell(34.05, -118.25, 12)]
    assert isinstance(pts.geometry.s2vec, geos2vec.accessor.S2VecAccessor)


def test_registering_the_dask_accessor_twice_does_not_warn():
    pytest.importorskip("dask_geopandas")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        geos2vec.register_dask_accessor()
        geos2vec.register_dask_accessor()


def test_another_librarys_s2vec_attribute_is_still_warned_about():
    class Foreign:
        def __init__(self, obj):
            self.obj = obj

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd.api.extensions.register_series_accessor("s2vec")(Foreign)
    try:
        with pytest.warns(UserWarning, match="overriding a preexisting attribute"):
            geos2vec.accessor._register()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            geos2vec.accessor._register()
    assert isinstance(gpd.GeoSeries([shapely.Point(0, 0)], crs=4326).s2vec, geos2vec.accessor.S2VecAccessor)


def test_reloading_geos2vec_and_its_accessor_module_does_not_warn():
    code = ("import importlib, warnings, geopandas as gpd, shapely, geos2vec, geos2vec.accessor\n"
            "warnings.simplefilter('error')\n"
            "importlib.reload(geos2vec.accessor); importlib.reload(geos2vec)\n"
            "g = gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)], crs=4326)\n"
            "print(g.s2vec.tokens(3).tolist())\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str([geos2vec.cell_to_token(geos2vec.latlng_to_cell(0.0, 0.0, 3))])


# ------------------------------------------------------------------ reprs
def test_feature_stats_repr_is_one_short_line_whatever_the_channels():
    wide = FeatureStats.fit(pd.DataFrame(np.ones((4, 5000)), columns=[f"ch{i}" for i in range(5000)]))
    assert repr(wide) == "FeatureStats(5000 channels ['ch0', 'ch1', 'ch2', ..., 'ch4999'], count=4, log1p=False)"
    gaps = FeatureStats.fit(pd.DataFrame({"cafe": [0.0, 2.0, np.nan], "road": [1.0, 1.0, 1.0]}), log1p=True)
    assert gaps.count.tolist() == [2, 3]
    assert repr(gaps) == "FeatureStats(2 channels ['cafe', 'road'], count=2..3 per channel, log1p=True)"
    model_stats = geos2vec.load_model().stats
    assert repr(model_stats).startswith(f"FeatureStats({len(model_stats.channels)} channels ['police', ")
    assert len(repr(model_stats)) < 150


@pytest.fixture(scope="module")
def small_eval():
    rng = np.random.default_rng(0)
    cells = np.unique(geos2vec.latlng_to_cell(34 + rng.random(60) * 0.2, -118 + rng.random(60) * 0.2, 12))
    x = pd.DataFrame(rng.random((len(cells), 40)), index=pd.Index(cells, name="cell_id"),
                     columns=[f"c{i}" for i in range(40)])
    y = pd.Series(3 * x["c0"] + rng.random(len(cells)), index=x.index, name="y")
    methods = {f"m{k:02d}": x.iloc[:, : k + 1] for k in range(30)}
    return evaluate(y, methods, probes="ridge", n_splits=2, progress=False), len(cells), x


def test_evaluation_result_repr_is_a_header_and_a_bounded_summary(small_eval):
    res, n, _ = small_eval
    text = repr(res)
    lines = text.splitlines()
    assert lines[0] == (f"EvaluationResult(target='y', {n} samples, splits ['random'] x 2 reps, methods "
                        f"['m00', 'm01', 'm02', ..., 'm29'], probes ['ridge'], {res.wall_time_s:.1f} s)")
    assert "r2_mean" in lines[1] and len(lines) <= 2 + 20 + 1  # header, column names, <= 20 rows and "..."
    first = res.summary().iloc[0]
    assert lines[2].split()[:3] == [first["split"], first["method"], first["probe"]]
    html = res._repr_html_()
    assert html.startswith("<p><code>EvaluationResult(target=&#x27;y&#x27;") and html.count("<tr") <= 22
    bare = EvaluationResult(scores=pd.DataFrame(), predictions=pd.DataFrame(), target="t")
    assert repr(bare) == "EvaluationResult(target='t', 0 samples, splits [] x 0 reps, methods [], probes [], 0.0 s)"


def test_method_repr_shows_block_shapes_not_values(small_eval):
    _, n, x = small_eval
    m = Method([x, x.iloc[:, :3]], transform="pca", n_components=8, scale=[True, False])
    assert repr(m) == f"Method(blocks=[{n}x40, {n}x3], transform='pca', n_components=8, scale=[True, False], seed=0)"


def test_osm_data_repr_counts_rows_instead_of_printing_both_frames():
    pois = gpd.GeoDataFrame({"osm_id": [1, 2, 3]}, geometry=[shapely.Point(0, 0)] * 3, crs=4326)
    roads = gpd.GeoDataFrame({"osm_id": []}, geometry=[], crs=4326)
    roads.attrs["not_read"] = True
    assert repr(OSMData(pois, roads)) == "OSMData(pois: 3 rows x 2 columns, roads: not read)"


# ------------------------------------------------------------------ interrupts
def test_an_interrupted_demo_closes_its_progress_bar(tmp_path, monkeypatch, capsys):
    from tqdm.auto import tqdm

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(geos2vec.demo, "load_sample", interrupted)
    geos2vec.set_options(progress=True)
    with pytest.raises(KeyboardInterrupt) as caught:  # keeps the frames alive, as a notebook's last traceback does
        geos2vec.demo.run_demo(tmp_path / "out")
    assert caught.traceback  # (still referenced here)
    assert [bar.desc for bar in list(tqdm._instances)] == []
    assert geos2vec.get_options()["progress"] is True
    assert "geos2vec demo" in capsys.readouterr().err


# ------------------------------------------------------------------ provenance
def test_a_numpy_level_is_recorded_as_a_number_not_a_string():
    pois = gpd.GeoDataFrame({"fclass": ["cafe", "school"]}, geometry=[shapely.Point(-118.25, 34.05)] * 2,
                            crs="EPSG:4326")
    level = pd.Series([12]).iloc[0]  # a level read from a frame: np.int64
    table = geos2vec.count_features(pois, level=level)
    record = table.attrs["geos2vec"]
    assert record["level"] == 12 and type(record["level"]) is int
    from geos2vec.provenance import provenance

    p = provenance(stage="x", flag=np.True_, share=np.float32(0.5), name=np.str_("a"), pair=(1, 2))
    assert p == {"geos2vec_version": geos2vec.__version__, "stage": "x", "flag": True, "share": 0.5, "name": "a",
                 "pair": "(1, 2)"}
    assert [type(p[k]) for k in ("flag", "share", "name")] == [bool, float, str]


def test_the_accessor_repr_says_what_it_is_on_and_what_it_offers():
    pts = gpd.GeoDataFrame({"a": [1, 2]}, geometry=[shapely.Point(0, 0)] * 2, crs="EPSG:4326")
    methods = "cell_ids, tokens, cells, count_features, rasterize, embed"
    assert repr(pts.s2vec) == f"<.s2vec on a GeoDataFrame of 2 rows (geometry 'geometry', EPSG:4326): {methods}>"
    assert repr(pts.to_crs(3857).rename_geometry("geom").iloc[:1].s2vec) == \
        f"<.s2vec on a GeoDataFrame of 1 row (geometry 'geom', EPSG:3857): {methods}>"
    assert repr(gpd.GeoSeries([shapely.Point(0, 0)]).s2vec) == \
        f"<.s2vec on a GeoSeries of 1 row (unnamed geometry, no CRS): {methods}>"
    assert repr(gpd.GeoDataFrame({"a": [1]}).s2vec) == \
        f"<.s2vec on a GeoDataFrame of 1 row (no active geometry column): {methods}>"
    dask_geopandas = pytest.importorskip("dask_geopandas")
    geos2vec.register_dask_accessor()
    assert repr(dask_geopandas.from_geopandas(pts, npartitions=2).s2vec) == \
        "<.s2vec on a dask GeoDataFrame of 2 partitions: embed, count_features>"
