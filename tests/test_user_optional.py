"""A minimal install (no keras/TensorFlow, no zarr) and a damaged numba cache: clear errors, or recovery."""

from __future__ import annotations

import importlib.util
import pickle
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import geos2vec
from geos2vec import _numba_cache
from geos2vec.model import S2VecConfig, S2VecModel, load_model
from geos2vec.model.io import default_model_path

TINY = S2VecConfig(embedding_dim=32, encoder_layers=2, decoder_dim=16, decoder_layers=1, num_heads=4,
                   dropout=0.0, batch_size=8, epochs=1, shuffle_buffer=64, validation_split=0.2, seed=1)
MODEL_EXTRA = r"pip install 'geos2vec\[model\]'"


@pytest.fixture(scope="module")
def sample():
    """Four points of the bundled sample and the count table of its first POIs and roads."""
    pois, roads = geos2vec.demo.load_sample()
    return pois.iloc[:4][["geometry"]], geos2vec.count_features(pois.iloc[:300], roads.iloc[:100])


def _hide(monkeypatch, *names):
    """As if ``names`` were not installed; geos2vec's modules that import keras are imported anew."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)
    for mod in [m for m in sys.modules if m.startswith("geos2vec.model.")]:
        if mod.rsplit(".", 1)[-1] in ("mae", "layers", "train", "optimizer", "distribute", "device_data", "resume",
                                      "reconstruction", "lock"):
            monkeypatch.delitem(sys.modules, mod)


# -- keras / TensorFlow missing ------------------------------------------------------------------------------------

def test_without_keras_the_model_calls_name_the_extra_and_the_bundled_model_still_embeds(monkeypatch, sample,
                                                                                           tmp_path):
    points, table = sample
    before = points.s2vec.embed(features=table, level=12, progress=False, mode="patch")
    model = load_model("default")
    da = geos2vec.rasterize(table[model.channels])
    _hide(monkeypatch, "keras", "tensorflow")
    # the NumPy encoder needs neither: the same vectors as with them installed
    after = points.s2vec.embed(features=table, level=12, progress=False, mode="patch")
    np.testing.assert_array_equal(after.filter(like="s2vec_").to_numpy(), before.filter(like="s2vec_").to_numpy())
    assert after.filter(like="s2vec_").shape == (4, 256)
    calls = {"S2VecModel.fit": lambda: S2VecModel(TINY).fit(da, verbose=0),
             "S2VecModel.evaluate": lambda: model.evaluate(da, n_masks=1),
             "S2VecModel.build": lambda: S2VecModel(TINY).build(da),
             "S2VecModel.ensure_keras": model.ensure_keras}
    for what, call in calls.items():
        with pytest.raises(ImportError, match=rf"^{what} needs keras, which is not installed: {MODEL_EXTRA}") as err:
            call()
        assert err.value.name == "keras"
    # a .keras save needs Keras (a compact save does not: tests/test_user_compact_save.py)
    with pytest.raises(ImportError, match=rf"^saving a model with compact=False \(compact=True needs neither\) "
                                          rf"needs keras, which is not installed: {MODEL_EXTRA}"):
        model.save(tmp_path / "m.zip")
    assert not (tmp_path / "m.zip").exists()
    from geos2vec.model.data import make_dataset  # documented in docs/model.md: a tf.data pipeline

    with pytest.raises(ImportError, match=rf"^geos2vec\.model\.data\.make_dataset needs tensorflow, which is not "
                                          rf"installed: {MODEL_EXTRA}"):
        make_dataset(da, model.stats)


def test_loading_a_keras_save_without_keras_names_the_extra_and_the_compact_format(monkeypatch, tmp_path):
    folder = tmp_path / "full"
    folder.mkdir()
    for name in ("config.json", "feature_stats.json", "metadata.json"):
        (folder / name).write_bytes((default_model_path() / name).read_bytes())
    (folder / "model.keras").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: never read without keras
    _hide(monkeypatch, "keras")
    with pytest.raises(ImportError, match=rf"model\.keras \(a model saved with compact=False; compact saves load "
                                          rf"without Keras\) needs keras, which is not installed: {MODEL_EXTRA}"):
        load_model(folder)


def test_keras_without_tensorflow_names_tensorflow(monkeypatch):
    """Keras 3 imports its backend (TensorFlow by default) at its own import: the error names what is missing."""
    from geos2vec import _optional

    def fake(name):
        raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")

    monkeypatch.setattr(_optional.importlib, "import_module", fake)
    with pytest.raises(ImportError, match=rf"^S2VecModel\.fit needs tensorflow, which is not installed: "
                                          rf"{MODEL_EXTRA}") as err:
        S2VecModel(TINY).fit(None)
    assert err.value.name == "tensorflow"


# -- zarr missing --------------------------------------------------------------------------------------------------

def test_zarr_functions_without_zarr_name_the_dask_extra(monkeypatch, sample, tmp_path):
    from geos2vec.raster import mark_zarr_complete, open_zarr, to_zarr

    da = geos2vec.rasterize(sample[1])
    monkeypatch.setitem(sys.modules, "zarr", None)
    for name, call in (("to_zarr", lambda: to_zarr(da, tmp_path / "x.zarr")),
                       ("open_zarr", lambda: open_zarr(tmp_path / "x.zarr")),
                       ("mark_zarr_complete", lambda: mark_zarr_complete(tmp_path / "x.zarr"))):
        with pytest.raises(ImportError, match=rf"^geos2vec\.raster\.{name} needs zarr, which is not installed: "
                                              r"pip install 'geos2vec\[dask\]' \(dask, dask-geopandas, distributed "
                                              r"and zarr\)") as err:
            call()
        assert err.value.name == "zarr"
    assert not (tmp_path / "x.zarr").exists()


def test_open_zarr_without_dask_names_the_dask_extra(monkeypatch, sample, tmp_path):
    """open_zarr opens lazily (dask): without dask xarray said "chunk manager 'dask' is not available"."""
    from geos2vec.raster import open_zarr, to_zarr

    da = geos2vec.rasterize(sample[1])
    to_zarr(da, tmp_path / "x.zarr")  # zarr alone writes
    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(ImportError, match=r"^geos2vec\.raster\.open_zarr needs dask, which is not installed: "
                                          r"pip install 'geos2vec\[dask\]'") as err:
        open_zarr(tmp_path / "x.zarr")
    assert err.value.name == "dask"


def test_an_import_error_of_something_else_is_not_blamed_on_an_extra(monkeypatch):
    from geos2vec._optional import require

    monkeypatch.setitem(sys.modules, "numba", None)  # a core dependency: not an extra, the error stays numba's
    with pytest.raises(ModuleNotFoundError, match="numba"):
        require("numba", what="x")


# -- the progress option -------------------------------------------------------------------------------------------

def test_fit_verbose_auto_follows_the_progress_option():
    from geos2vec.model.train import check_verbose

    with geos2vec.set_options(progress=False):
        assert check_verbose("auto") == 0  # Keras' bar printed although the one switch said no bars
        assert check_verbose(1) == 1 and check_verbose(2) == 2  # a function's own argument wins
    with geos2vec.set_options(progress=True):
        assert check_verbose("auto") == "auto"


# -- a damaged numba cache -----------------------------------------------------------------------------------------

KERNEL = "import numba\n\n\n@numba.njit(cache=True)\ndef affine(x):\n    return 2 * x + 1\n"


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cache_files(module, suffix):
    folder = module.affine._cache.cache_path
    return sorted(Path(folder).glob(f"{Path(module.__file__).stem}.affine-*{suffix}"))


@pytest.mark.parametrize("damaged, keep", [(".nbc", 0.5), (".nbi", 0.5), (".nbi", 0.0)])
def test_a_truncated_cache_file_of_a_geos2vec_kernel_is_compiled_anew(monkeypatch, tmp_path, damaged, keep):
    """A truncated index or data file (or an empty one: a full disk) made every call raise until deleted by hand."""
    monkeypatch.setattr(_numba_cache, "_DAMAGED", [], raising=False)  # the warning comes once per process
    _numba_cache.ensure_once()
    path = tmp_path / "kern.py"
    path.write_text(KERNEL)
    name = "geos2vec._user_optional_kernels"
    assert _load(path, name).affine(3) == 7  # compiled and cached
    (target,) = _cache_files(_load(path, name), damaged)
    target.write_bytes(target.read_bytes()[: int(target.stat().st_size * keep)])
    with pytest.raises((pickle.UnpicklingError, EOFError)):  # what numba met, and raised from every call
        with target.open("rb") as f:
            pickle.load(f) if damaged == ".nbi" else None  # the index: numba's version, then the pickled index
            pickle.loads(f.read())
    with pytest.warns(RuntimeWarning, match="damaged numba cache file was skipped.*compiled again and the file "
                                            "replaced"):
        assert _load(path, name).affine(3) == 7
    with warnings.catch_warnings():  # the file was replaced: read from the cache, silently
        warnings.simplefilter("error")
        again = _load(path, name)
        assert again.affine(3) == 7
        assert again.affine.stats.cache_hits and not again.affine.stats.cache_misses


def test_other_functions_keep_numbas_own_cache(tmp_path):
    from numba.core.caching import FunctionCache

    _numba_cache.ensure_once()
    path = tmp_path / "users_kern.py"
    path.write_text(KERNEL)
    mine = _load(path, "users_module")
    assert type(mine.affine._cache) is FunctionCache  # numba's behaviour, unchanged, for the user's kernels
    assert mine.affine(4) == 9
