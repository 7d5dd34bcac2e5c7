"""The last warnings outside geos2vec's machinery: read_osm, read_wof, resumed fits, LocationEncoder, coverage='infer',
dask counts and to_frame warn with :class:`~geos2vec.errors.Geos2VecWarning` (or its CoverageWarning) and name the
line of the user's call, however deep inside geos2vec (or behind Keras, dask, xarray) it was raised.

They were plain ``UserWarning`` with hand-counted ``stacklevel``: right for one path, pointing into geos2vec,
Keras or pytest for another (read_wof inside ``load_features``: tasks.py; the backup seal: resume.py; the
isolated-coordinates warning of ``infer_coverage``: one frame beyond the caller).
"""

from __future__ import annotations

import dis
from pathlib import Path
import json
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geos2vec.errors import CoverageWarning, Geos2VecWarning

HERE = __file__


def _caught(call, match):
    """The warnings ``call()`` raises whose message contains ``match`` (every warning shown: "always")."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        call()
    return [w for w in seen if match in str(w.message)]


def _check(call, match, category=Geos2VecWarning, n=1):
    """``call()``'s ``n`` warnings matching ``match``: of ``category`` (a UserWarning), at ``call``'s own line.

    ``call`` is a lambda written in a test: the warning names this file and a line of the lambda, not a line
    of this helper (a level one too far) nor one inside geos2vec, Keras, dask or xarray.
    """
    found = _caught(call, match)
    lines = {line for _, line in dis.findlinestarts(call.__code__) if line}
    assert len(found) == n, [str(w.message)[:80] for w in found]
    for w in found:
        assert issubclass(w.category, category) and issubclass(w.category, UserWarning), w.category
        assert w.filename == HERE and w.lineno in lines, (w.filename, w.lineno, sorted(lines), str(w.message)[:60])
    return found


# ------------------------------------------------------------------------------------------------- read_osm
def _osm(path, body):
    head = '<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="test">\n'
    path.write_text(head + body + "</osm>\n")
    return path


def _node(i, tag=""):
    return f'<node id="{i}" version="1" lat="47.1{i}" lon="9.5{i}">{tag}</node>\n'


def _way(i, refs):
    return (f'<way id="{i}" version="1">' + "".join(f'<nd ref="{r}"/>' for r in refs)
            + '<tag k="highway" v="residential"/></way>\n')


def test_read_osm_warnings_name_the_users_line(tmp_path):
    pytest.importorskip("osmium")
    from geos2vec.io import read_osm

    cafe = _node(1, '<tag k="amenity" v="cafe"/>')
    cut = _osm(tmp_path / "cut.osm", "".join(f'<node id="{i}" version="1" lat="47.1" lon="9.5"/>\n'
                                             for i in range(1, 1102)))  # nodes only: a cut-short download
    _check(lambda: read_osm(cut), "no way and no relation")
    ok = _osm(tmp_path / "ok.osm", cafe + _node(2) + _node(3) + _way(10, [2, 3]))
    _check(lambda: read_osm(ok, area=(0, 0, 1, 1)), "none of the 2 POIs and roads")
    # ways out of id order: read_osm warns and reads again without areas, and the second read (read_osm inside
    # read_osm) warns about the area: both name this line (the second named the outer read_osm's line in osm.py)
    unsorted = _osm(tmp_path / "unsorted.osm", cafe + _node(2) + _node(3) + _way(20, [1, 2]) + _way(10, [2, 3]))
    found = _check(lambda: read_osm(unsorted, area=(0, 0, 1, 1)), "unsorted.osm", n=2)
    assert ["not sorted by id" in str(w.message) for w in found] == [True, False]


# ------------------------------------------------------------------------------------------------- read_wof
def _wof(path, n_current=30, n_closed=3):
    """A us-zz.parquet of restaurants around Providence, ``n_closed`` of them closed (read_wof drops them)."""
    rng = np.random.default_rng(0)
    n = n_current + n_closed
    frame = pd.DataFrame({
        "wof_id": np.arange(1000, 1000 + n, dtype=np.int64), "name": [f"v{i}" for i in range(n)],
        "lon": -71.4 + rng.uniform(0, 0.05, n), "lat": 41.8 + rng.uniform(0, 0.05, n),
        "sg_type": pd.Categorical(["Food & Drink"] * n), "sg_category": ["Restaurant"] * n,
        "sg_subcategory": [None] * n, "tags": [None] * n, "mz_categories": [None] * n,
        "is_current": [1.0] * n_current + [0.0] * n_closed})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    return path


def test_read_wof_warning_names_the_users_line_directly_and_inside_load_features(tmp_path):
    from geos2vec.evaluate.tasks import load_features
    from geos2vec.io import read_wof

    path = _wof(tmp_path / "wof" / "us-zz.parquet")
    (tmp_path / "labels").mkdir()  # what load_features' data folder holds
    found = _check(lambda: read_wof(path), "read_wof kept 30 of 33 venues")
    assert "3 not current" in str(found[0].message)  # the closed ones, as the file holds them
    # read_wof called by geos2vec's load_features: pointed at evaluate/tasks.py
    _check(lambda: load_features("wof:zz", tmp_path), "read_wof kept 30 of 33 venues")


# --------------------------------------------------------------------------------------- coverage="infer"
def _stretched():
    """30 POIs in a 0.05-degree square and 2 of them 5 degrees away: the 2 stretch the hull far past the rest."""
    rng = np.random.default_rng(1)
    lon = np.r_[-74.0 + rng.uniform(0, 0.05, 30), -69.0, -69.0]
    lat = np.r_[40.7 + rng.uniform(0, 0.05, 30), 45.7, 35.7]
    return gpd.GeoDataFrame({"fclass": ["cafe"] * 32}, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


def test_the_isolated_coordinates_warning_names_the_users_line_from_infer_coverage_and_count_features():
    from geos2vec.coverage import infer_coverage
    from geos2vec.features import count_features

    pois = _stretched()
    hull = shapely.convex_hull(shapely.multipoints(np.c_[pois.geometry.x, pois.geometry.y]))
    core = shapely.convex_hull(shapely.multipoints(np.c_[pois.geometry.x[:30], pois.geometry.y[:30]]))
    assert hull.area > 2 * core.area  # the input is what the warning is about
    # directly: stacklevel=4 named the frame beyond this one (pytest's)
    _check(lambda: infer_coverage(pois), "2 isolated coordinates", CoverageWarning)
    _check(lambda: count_features(pois, coverage="infer"), "2 isolated coordinates", CoverageWarning)


# ------------------------------------------------------------------------------------------ dask counts
def test_dask_coverage_warnings_name_the_users_line_from_the_accessor_and_count_features():
    dgpd = pytest.importorskip("dask_geopandas")
    import dask

    import geos2vec  # noqa: F401  (registers the dask accessor)
    from geos2vec.accessor import register_dask_accessor
    from geos2vec.features import count_features

    register_dask_accessor()
    pois = dgpd.from_geopandas(_stretched(), npartitions=2)
    away = (10.0, 10.0, 11.0, 11.0)  # every POI lies outside: "another CRS, or (lat, lon) order?"
    with dask.config.set(scheduler="sync"):
        _check(lambda: pois.s2vec.count_features(coverage=away), "lie outside", CoverageWarning)
        _check(lambda: count_features(pois, coverage=away), "lie outside", CoverageWarning)


# --------------------------------------------------------------------------------------------- to_frame
def test_to_frame_coverage_warning_names_the_users_line_through_xarray_pipe():
    from geos2vec.features import count_features
    from geos2vec.raster import rasterize, to_frame

    table = count_features(_stretched().iloc[:30], coverage=(-74.1, 40.6, -73.9, 40.8))
    da = rasterize(table, image_level=10)
    assert "covered" in da.coords
    da.attrs.pop("coverage")
    _check(lambda: to_frame(da), "no attrs['coverage']", CoverageWarning)
    # xarray's pipe between this line and to_frame: stacklevel=3 named xarray's line
    _check(lambda: da.pipe(to_frame), "no attrs['coverage']", CoverageWarning)


# ------------------------------------------------------------------------------------------ Keras paths
def test_location_encoder_float32_warning_names_the_users_line(monkeypatch):
    keras = pytest.importorskip("keras")
    from geos2vec.location_layers import LocationEncoder

    x = np.array([[40.7128, -74.0060], [37.3, -121.9]])
    enc = LocationEncoder("theory", frequency_num=4)
    assert _caught(lambda: enc(x), "LocationEncoder") == []  # this backend has float64
    # a backend without float64 (JAX without x64): Keras' Layer.__call__ runs call(); pointed at Keras' line
    monkeypatch.setattr(keras.backend, "standardize_dtype", lambda dtype: "float32")
    _check(lambda: enc(x), "the backend has no float64")


def test_the_backup_seal_warning_of_guard_resume_names_the_users_line(tmp_path):
    h5py = pytest.importorskip("h5py")
    from geos2vec.model.resume import guard_resume

    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "training_metadata.json").write_text(json.dumps({"epoch": 2, "batch": 0}))
    with h5py.File(backup / "latest.weights.h5", "w") as f:
        f["w"] = np.arange(3.0)
    (backup / "seal.json").write_text(json.dumps({"epoch": 2, "sha256": "0" * 64}))  # other weights were sealed
    fingerprint = {"config": {"seed": 1}}
    (tmp_path / "run.json").write_text(json.dumps(fingerprint))
    # guard_resume -> _check_backup -> _reconcile_seal: stacklevel=3 named resume.py
    _check(lambda: guard_resume(tmp_path, fingerprint), "newer than its metadata")
    assert json.loads((backup / "training_metadata.json").read_text()) == {"epoch": 3, "batch": 0}


def _nyc_counts(seed, n, west, south, side):
    """Level-12 counts of ``n`` random cafes/banks/schools in a square box (warnings of the set-up ignored)."""
    from geos2vec.features import count_features

    rng = np.random.default_rng(seed)
    pois = gpd.GeoDataFrame({"fclass": rng.choice(["cafe", "bank", "school"], n)},
                            geometry=gpd.points_from_xy(rng.uniform(west, west + side, n),
                                                        rng.uniform(south, south + side, n)),
                            crs="EPSG:4326")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return count_features(pois, level=12)


def test_resume_warnings_name_the_users_fit_line_through_keras(tmp_path):
    keras = pytest.importorskip("keras")
    from geos2vec.model import S2VecConfig, S2VecModel
    from geos2vec.model.resume import TrainingState
    from geos2vec.raster import rasterize

    class StopAt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    images = rasterize(_nyc_counts(seed=0, n=400, west=-74.0, south=40.6, side=0.1), image_level=10)
    cfg = S2VecConfig(embedding_dim=8, encoder_layers=1, decoder_dim=8, decoder_layers=1, num_heads=2, batch_size=8,
                      epochs=2, shuffle_buffer=16, validation_split=0.0, early_stopping_patience=3, seed=1)
    model = S2VecModel(cfg)
    with pytest.raises(KeyboardInterrupt):
        model.fit(images, checkpoint_dir=tmp_path, callbacks=[StopAt()], verbose=0)
    record = tmp_path / "state.json"
    kept = record.read_bytes()
    record.unlink()  # no record of the epoch it resumes at
    # Keras' CallbackList calls TrainingState inside fit: stacklevel=2 named Keras' callback_list.py
    _check(lambda: S2VecModel(cfg).fit(images, checkpoint_dir=tmp_path, verbose=0), "no usable record of epoch 1")
    # early stopping's best weights unreadable at a resume, TrainingState called by Keras' CallbackList
    record.write_bytes(kept)
    best = tmp_path / "best.weights.h5"
    best.write_bytes(b"not an HDF5 file")
    es = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    callbacks = keras.callbacks.CallbackList([es, TrainingState(tmp_path, 1, es)], model=model.keras_model)
    _check(lambda: callbacks.on_train_begin(), "best.weights.h5 could not be read")
    assert es.best is not None  # the counters were still restored from the record


# --------------------------------------------------------------------------------------------- evaluate
def _cells(n, seed=0):
    """``n`` distinct level-12 cells in distinct level-10 blocks (scattered over a few degrees)."""
    from geos2vec.cells import cell_to_parent, latlng_to_cell

    rng = np.random.default_rng(seed)
    cells = latlng_to_cell(rng.uniform(35.0, 40.0, 4 * n), rng.uniform(-100.0, -95.0, 4 * n), 12)
    _, first = np.unique(cell_to_parent(cells, 10), return_index=True)
    return np.sort(cells[first][:n])


def test_evaluation_warnings_name_the_users_line_through_evaluate():
    from geos2vec.evaluate import evaluate

    cells = _cells(60)
    rng = np.random.default_rng(2)
    index = pd.Index(cells, name="cell_id")
    target = pd.Series(rng.normal(size=60), index=index)
    full = pd.DataFrame(rng.normal(size=(60, 3)), index=index, columns=["a", "b", "c"])
    run = lambda: evaluate(target, {"full": full, "part": full.iloc[:50]}, split="blocked", n_splits=2,  # noqa: E731
                           probes="ridge", progress=False)
    # every sample alone in its level-10 block; evaluate -> _split_groups -> blocked_splits: stacklevel=2 named
    # splits.py's _split_groups
    _check(run, "alone in their block")
    _check(run, "10 of 60 samples are left out for every method")


def test_split_and_label_warnings_name_the_users_line():
    from geos2vec.evaluate import check_test_sets, join_labels

    y = np.arange(10.0)
    splits = [(np.arange(2, 8), np.array([8, 9]), np.array([0])), (np.arange(3, 10), np.array([2]), np.array([0, 1]))]
    found = _check(lambda: check_test_sets(y, {"random": splits}), "R² is undefined on 1 of 2 repetitions")
    assert "repetitions [0]" in str(found[0].message)  # the one-sample test set, counted by hand
    labels = pd.DataFrame({"lat": [40.0, 40.1, 40.2, 40.3], "lon": [-74.0, -74.1, -74.2, -74.3],
                           "open": [0, 1, 1, 0]})
    _check(lambda: join_labels(labels, "open"), "target column 'open' has two values (0, 1)")


def test_a_damaged_evaluation_cache_entry_warning_names_the_users_line(tmp_path):
    pytest.importorskip("keras")
    from geos2vec.evaluate.suite import _embeddings
    from geos2vec.model import load_model

    model = load_model("default")
    counts = _nyc_counts(seed=3, n=200, west=-74.0, south=40.7, side=0.05)
    cells = np.asarray(counts.index[:5], dtype=np.uint64)
    first = _embeddings(cells, counts, model, ("patch",), "S2Vec", tmp_path)
    (entry,) = tmp_path.glob("embeddings-*.parquet")
    entry.write_bytes(b"damaged")
    found = {}
    _check(lambda: found.update(_embeddings(cells, counts, model, ("patch",), "S2Vec", tmp_path)),
           "does not read")  # run_suite -> _embeddings: stacklevel=3 named this helper's caller's caller
    pd.testing.assert_frame_equal(found["S2Vec (patch)"], first["S2Vec (patch)"])  # computed again, the same


def test_another_installed_package_calling_geos2vec_is_the_user():
    """Skipping every site-packages frame pinned a warning of a package built on geos2vec onto that package's
    caller, so ``filterwarnings("ignore", module="mylib")`` no longer silenced the package's own calls."""
    import sysconfig

    from geos2vec._stacklevel import warn as g2v_warn

    inside = {"__name__": "geos2vec.fake"}
    exec(compile("def inner(w):\n    w('from geos2vec', UserWarning)\n", "geos2vec/fake.py", "exec"), inside)
    site_file = str(Path(sysconfig.get_paths()["purelib"]) / "mylib" / "core.py")
    lib = {"__name__": "mylib.core", "inner": inside["inner"], "W": g2v_warn}
    exec(compile("def api():\n    inner(W)\n", site_file, "exec"), lib)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        lib["api"]()
    assert [(r.filename, r.lineno) for r in rec] == [(site_file, 2)]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", module="mylib")
        lib["api"]()
    assert rec == []
