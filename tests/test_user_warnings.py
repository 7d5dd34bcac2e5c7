"""A data scientist in loops and notebooks: warnings name the user's line, bars close on Ctrl-C.

Every warning the public entry points emit points at the line of the user's call (``w.filename`` is this file,
``w.lineno`` the line of the call), from the ``.s2vec`` accessor as from the plain function, so Python's default
filter shows it once per line of the user's code (not once per line of geos2vec for the whole session), and an
interrupted download or embedding leaves no open progress bar behind.
"""

from __future__ import annotations

import inspect
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import geos2vec
from geos2vec.features import combine_counts, count_features

HERE = __file__


@pytest.fixture(autouse=True)
def _options_kept():
    before = geos2vec.get_options()
    yield
    geos2vec.set_options(**before)


@pytest.fixture(scope="module")
def model():
    return geos2vec.load_model("default")


def _pois(categories=("restaurant",) * 5 + ("no_such_category",)):
    return gpd.GeoDataFrame({"category": list(categories)},
                            geometry=[shapely.Point(-118.25 + 0.002 * i, 34.05) for i in range(len(categories))],
                            crs=4326)


@pytest.fixture(scope="module")
def table():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return count_features(_pois(), category_column="category")


HOMES = gpd.GeoDataFrame({"name": ["LA", "Kansas"]}, index=[7, 3],
                         geometry=[shapely.Point(-118.25, 34.05), shapely.Point(-100.0, 40.0)], crs=4326)


def _record(call):
    """The warnings of ``call()`` (all shown) and the line of this file that made the call."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return caught


def _line_of(func) -> int:
    """The line of the (one-line) lambda ``func``: where the user's call is."""
    return func.__code__.co_firstlineno


def _assert_at_caller(caught, call, n, match):
    hits = [w for w in caught if match in str(w.message)]
    assert len(hits) == n, [str(w.message)[:60] for w in caught]
    for w in hits:
        assert (w.filename, w.lineno) == (HERE, _line_of(call)), (w.filename, w.lineno, str(w.message)[:60])


# ---------------------------------------------------------------------------------------- where warnings point
def test_count_features_warnings_name_the_users_line_from_the_accessor_too():
    pois = _pois()
    for call in (lambda: count_features(pois, category_column="category"),
                 lambda: pois.s2vec.count_features(category_column="category"),
                 lambda: pois.s2vec.rasterize(category_column="category")):
        caught = _record(call)
        _assert_at_caller(caught, call, 1, "1 POIs with 1 categories outside the ontology")


def test_coverage_warnings_of_count_features_name_the_users_line(shared_data):
    pois = _pois(("restaurant",) * 4)
    far = (10.0, 40.0, 11.0, 41.0)  # all four POIs outside: another CRS or (lat, lon) order?
    for call in (lambda: count_features(pois, category_column="category", coverage=far),
                 lambda: pois.s2vec.count_features(category_column="category", coverage=far)):
        _assert_at_caller(_record(call), call, 1, "4 of 4 input coordinates")
    pbf = shared_data / "osm" / "heidelberg.test.pbf"  # header box (0, 0, 180, 90): a placeholder
    hd = gpd.GeoDataFrame({"fclass": ["cafe", "bank"]}, geometry=gpd.points_from_xy([8.69, 8.70], [49.40, 49.41]),
                          crs=4326)
    call = lambda: hd.s2vec.count_features(coverage=pbf)  # noqa: E731
    _assert_at_caller(_record(call), call, 1, "header box of")
    tagged = _pois(("restaurant",) * 4)
    tagged.attrs["source_tags"] = ["amenity=bank"]  # tags that do not describe the counted column
    call = lambda: tagged.s2vec.count_features(category_column="category", coverage=(-119, 33, -117, 35))  # noqa: E731
    _assert_at_caller(_record(call), call, 1, "that none of pois.attrs['source_tags'] reaches")


def test_roads_and_combine_counts_warnings_name_the_users_line():
    roads = gpd.GeoDataFrame({"highway": ["bus_stop", "residential"]},
                             geometry=[shapely.LineString([(-118.25, 34.05), (-118.24, 34.06)])] * 2, crs=4326)
    call = lambda: count_features(roads=roads, ontology={"restaurant": "food"})  # noqa: E731
    _assert_at_caller(_record(call), call, 1, "whose highway value is not a road class")
    pois = _pois(("restaurant",) * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = [count_features(pois, category_column="category", coverage=(-119, 33, -117, 35)),
                 count_features(pois, category_column="category")]
    call = lambda: combine_counts(parts)  # noqa: E731
    _assert_at_caller(_record(call), call, 1, "combine_counts: 1 of 2 tables have no coverage")


def test_embed_nan_warning_names_the_users_line_from_accessor_and_function(model, table):
    for call in (lambda: HOMES.s2vec.embed(table, model=model, mode="patch", progress=False),
                 lambda: geos2vec.embed(HOMES, table, model=model, mode="patch", progress=False)):
        _assert_at_caller(_record(call), call, 1, "1 of 2 rows got NaN embeddings")
    cells = np.asarray(geos2vec.latlng_to_cell([34.05, 40.0], [-118.25, -100.0], 12), np.uint64)
    call = lambda: geos2vec.embed_cells(cells, table, model=model, mode="patch", progress=False)  # noqa: E731
    _assert_at_caller(_record(call), call, 1, "1 of 2 cells have no features")


def test_count_features_warning_inside_embed_names_the_users_line(model):
    pois = _pois()
    for call in (lambda: HOMES.s2vec.embed({"pois": pois}, model=model, mode="patch", progress=False),
                 lambda: geos2vec.cell_embeddings(pois, model=model, mode="patch", progress=False)):
        # was embedding.py's _feature_table, whichever way the user called
        _assert_at_caller(_record(call), call, 1, "1 POIs with 1 categories outside the ontology")


def _nan_warnings(caught):
    return [w for w in caught if "rows got NaN embeddings" in str(w.message)]


def test_a_warning_in_a_loop_shows_once_per_line_of_the_users_code(model, table):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own action for UserWarning: once per line it points at
        for _ in range(4):  # a loop over frames or parameters; GeoPandas' catch_warnings in every GeoSeries(...)
            HOMES.s2vec.embed(table, model=model, mode="patch", progress=False)  # made Python forget: 4 warnings
        geos2vec.embed(HOMES, table, model=model, mode="patch", progress=False)  # another line: warned again
    nan = _nan_warnings(caught)
    assert len(nan) == 2 and {w.filename for w in nan} == {HERE} and nan[0].lineno == nan[1].lineno - 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(2):
            count_features(_pois(), category_column="category")
    assert len([w for w in caught if "counted these in no channel" in str(w.message)]) == 1


def test_always_error_and_changed_filters_still_show_every_warning(model, table):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            HOMES.s2vec.embed(table, model=model, mode="patch", progress=False)
    assert len(_nan_warnings(caught)) == 2
    shown = []
    with warnings.catch_warnings(record=True) as caught:
        for filters in (["default"], ["default"], ["ignore"], ["default", "once"], ["default", "once"]):
            warnings.resetwarnings()
            warnings.simplefilter(filters[0])
            if len(filters) > 1:  # other filters than those it was shown under: shown again, then once there
                warnings.filterwarnings(filters[1], category=DeprecationWarning)
            before = len(_nan_warnings(caught))
            HOMES.s2vec.embed(table, model=model, mode="patch", progress=False)
            shown.append(len(_nan_warnings(caught)) - before)
    assert shown == [1, 0, 0, 1, 0]
    for _ in range(2):  # a new recording block (pytest's around each test) records it again
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            HOMES.s2vec.embed(table, model=model, mode="patch", progress=False)
        assert len(_nan_warnings(caught)) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="1 of 2 rows got NaN embeddings"):
            HOMES.s2vec.embed(table, model=model, mode="patch", progress=False)


def test_a_module_filter_on_the_users_code_silences_the_warning(table, model):
    module = inspect.getmodule(test_a_module_filter_on_the_users_code_silences_the_warning).__name__
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=".*rows got NaN embeddings", module=module)
        HOMES.s2vec.embed(table, model=model, mode="patch", progress=False)
    assert [str(w.message)[:30] for w in caught if "NaN" in str(w.message)] == []


def test_find_stack_level_counts_out_of_the_package():
    from geos2vec._stacklevel import find_stack_level

    assert find_stack_level() == 1  # called from outside geos2vec: the caller itself
    # from a geos2vec frame two calls deep: the level of this test's frame
    ns = {"__name__": "geos2vec._probe", "find_stack_level": find_stack_level}
    exec("def inner():\n    return find_stack_level()\ndef outer():\n    return inner()\n", ns)
    assert ns["outer"]() == 3


# ---------------------------------------------------------------------------------------- progress bars
def _open_bars():
    from tqdm.auto import tqdm

    return [bar.desc for bar in list(tqdm._instances)]


def test_an_interrupted_embedding_closes_its_progress_bar(monkeypatch, model, table):
    import geos2vec.model.embed as model_embed

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    geos2vec.set_options(progress=True)
    for mode, encoder in (("contextual", "contextual_tokens"), ("tiled", "contextual_tokens"),
                          ("patch", "patch_vectors")):  # each mode has its own bar
        with monkeypatch.context() as m:
            m.setattr(model_embed, encoder, interrupted)
            with pytest.raises(KeyboardInterrupt) as caught:  # the frames kept alive, as a notebook's traceback
                HOMES.s2vec.embed(table, model=model, mode=mode)
        assert caught.traceback
        assert _open_bars() == [], mode


def test_an_interrupted_download_closes_its_progress_bar(monkeypatch, tmp_path):
    from geos2vec.io import download

    class Response:
        status, headers = 200, {"Content-Length": str(3 << 20)}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, n):
            raise KeyboardInterrupt

    monkeypatch.setattr(download, "_get", lambda *a, **k: Response())
    with pytest.raises(KeyboardInterrupt) as caught:
        download._fetch("http://127.0.0.1/x.osm.pbf", tmp_path / "x.osm.pbf.part", progress=True, retries=0,
                        backoff=0, timeout=1)
    assert caught.traceback
    assert _open_bars() == []


def test_progress_false_turns_off_the_embedding_bar(model, table, capsys):
    geos2vec.set_options(progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        HOMES.s2vec.embed(table, model=model, mode="patch")
    assert "embedding" not in capsys.readouterr().err
    geos2vec.set_options(progress=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = HOMES.s2vec.embed(table, model=model, mode="patch")
    assert "embedding (patch)" in capsys.readouterr().err
    assert list(out.index) == [7, 3] and out["s2vec_0"].isna().tolist() == [False, True]
    assert isinstance(out, pd.DataFrame)


@pytest.mark.parametrize("progress", [False, True, None])
def test_embed_features_osm_passes_progress_to_the_download_and_read(monkeypatch, model, table, progress):
    # embed(features="osm", progress=False) showed the download's and read_osm's bars anyway
    from geos2vec.io import download

    seen = []

    def osm_features(area, **kwargs):
        seen.append(kwargs.get("progress", "not given"))
        return table

    monkeypatch.setattr(download, "osm_features", osm_features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = HOMES.s2vec.embed(features="osm", model=model, mode="patch", progress=progress)
    assert seen == [progress]  # None: the progress option decides there, as for the embedding's own bar
    assert out["s2vec_0"].isna().tolist() == [False, True]


def test_geos2vec_warning_filters_every_warning_of_embed_and_count_features(model, table):
    # errors.Geos2VecWarning is "the base class of geos2vec's warnings", but these were plain UserWarnings, so
    # filterwarnings("ignore", category=Geos2VecWarning) left them on screen
    from geos2vec.errors import Geos2VecWarning

    roads = gpd.GeoDataFrame({"highway": ["bus_stop"]}, geometry=[shapely.LineString([(-118.25, 34.05),
                                                                                       (-118.24, 34.06)])], crs=4326)
    cells = np.asarray(geos2vec.latlng_to_cell([40.0], [-100.0], 12), np.uint64)
    calls = [lambda: HOMES.s2vec.embed(table, model=model, mode="patch", progress=False),
             lambda: geos2vec.embed_cells(cells, table, model=model, mode="patch", progress=False),
             lambda: count_features(_pois(), category_column="category"),
             lambda: count_features(roads=roads, ontology={"restaurant": "food"})]
    for call in calls:
        caught = _record(call)
        assert len(caught) == 1 and issubclass(caught[0].category, Geos2VecWarning), caught[0].category
        assert issubclass(caught[0].category, UserWarning)  # pytest.warns(UserWarning) still matches
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", category=Geos2VecWarning)
            call()
        assert caught == []


_LEFT = r"{}: 100%[^\r\n\x1b]*\n"  # a finished bar left on its own line (a cleared one ends in a cursor move)


def test_the_embedding_bar_inside_a_users_loop_bar_is_cleared_not_left(model, table, capsys):
    # for frame in tqdm(frames): frame.s2vec.embed(...) left one finished "embedding" line per frame under the
    # user's bar; now it is cleared when inside another bar and left when on its own (tqdm's leave=None)
    import re

    from tqdm.auto import tqdm

    geos2vec.set_options(progress=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with tqdm(total=2, desc="frames") as outer:
            for _ in range(2):
                HOMES.s2vec.embed(table, model=model, mode="patch")
                outer.update()
        inside = capsys.readouterr().err
        HOMES.s2vec.embed(table, model=model, mode="patch")
    alone = capsys.readouterr().err
    assert "embedding (patch)" in inside and re.search(_LEFT.format(r"embedding \(patch\)"), inside) is None
    assert re.search(_LEFT.format(r"embedding \(patch\)"), alone)


def test_the_download_bar_inside_a_users_bar_is_cleared_not_left(monkeypatch, tmp_path, capsys):
    import re

    from tqdm.auto import tqdm

    from geos2vec.io import download

    class Response:
        status, headers = 200, {"Content-Length": "3"}
        blocks = [b"abc", b""]

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, n):
            return self.blocks.pop(0)

    for outer in (True, False):
        monkeypatch.setattr(download, "_get", lambda *a, **k: Response())
        Response.blocks = [b"abc", b""]
        bar = tqdm(total=1, desc="areas") if outer else None
        download._fetch("http://127.0.0.1/x.osm.pbf", tmp_path / f"{outer}.part", progress=True, retries=0,
                        backoff=0, timeout=1)
        if bar is not None:
            bar.close()
        err = capsys.readouterr().err
        assert (tmp_path / f"{outer}.part").read_bytes() == b"abc"
        assert bool(re.search(_LEFT.format(r"x\.osm\.pbf"), err)) is not outer, err
