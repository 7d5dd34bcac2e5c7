"""Saving and loading models: damaged, mismatched or misplaced files, interrupted saves, the compact format.

Complements tests/test_model_files.py (which damages copies of the bundled model): here the save side
(unbuilt models, a file in the way, a folder with the user's files, a zip save cut short), zips, the
metadata's format checks and the NumPy encoder's pieces.
"""

from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pandas as pd
import pytest

import geos2vec
from geos2vec import cells as C
from geos2vec import raster as R
from geos2vec.errors import ModelFormatError
from geos2vec.model import S2VecModel
from geos2vec.model import io as mio
from geos2vec.model.io import default_model_path, read_model
from geos2vec.model.numpy_encoder import load_weights, patch_project
from conftest import edit_json as _edit_json  # the copy fixture (of the bundled model) is conftest's too

BUNDLED = default_model_path()
COMPACT = ("weights.npz", "config.json", "feature_stats.json", "metadata.json")
TINY = dict(encoder_layers=1, embedding_dim=8, decoder_dim=8, decoder_layers=1, num_heads=2, seed=1)


def _images(seed=0):
    rng = np.random.default_rng(seed)
    cells = np.unique(C.latlng_to_cell(40.75 + rng.uniform(-0.2, 0.2, 60), -73.98 + rng.uniform(-0.2, 0.2, 60), 12))
    table = pd.DataFrame(rng.integers(0, 9, (cells.size, 3)), index=pd.Index(cells, name="cell_id"),
                         columns=["a", "b", "c"])
    return R.rasterize(table, image_level=10)  # 4 x 4 pixels


@pytest.fixture(scope="module")
def tiny():
    """A built (untrained) model with a missing token: 4 x 4 images, 3 channels."""
    pytest.importorskip("tensorflow")
    return S2VecModel(missing_token=True, **TINY).build(_images())




def _zip(folder, target, names=COMPACT):
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            zf.write(folder / name, name)
    return target


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------- saving
def test_saving_an_unbuilt_model_is_refused_and_writes_nothing(tmp_path):
    pytest.importorskip("tensorflow")
    for target, compact in ((tmp_path / "m", False), (tmp_path / "m.zip", True)):
        with pytest.raises(ValueError, match=r"cannot save an unbuilt model: call fit\(\) or build\(\) first"):
            S2VecModel(**TINY).save(target, compact=compact)
        assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_saving_over_a_file_is_refused_and_keeps_the_file(tiny, tmp_path):
    target = tmp_path / "m"
    target.write_text("my notes")
    with pytest.raises(FileExistsError, match=rf"{target} exists and is not a directory; choose another path"):
        tiny.save(target)
    assert target.read_text() == "my notes"
    assert _hidden(tmp_path) == []  # the partial folder of the refused save is gone


def test_saving_into_a_folder_with_other_files_replaces_only_the_model_files(tiny, tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    tiny.save(folder)  # Keras format, next to the user's file
    assert sorted(p.name for p in folder.iterdir()) == sorted(["notes.txt", "model.keras", "config.json",
                                                               "feature_stats.json", "metadata.json"])
    tiny.save(folder, compact=True)  # the old model.keras goes: a folder never mixes two saves
    assert sorted(p.name for p in folder.iterdir()) == sorted(["notes.txt", *COMPACT])
    assert (folder / "notes.txt").read_text() == "mine" and _hidden(tmp_path) == []
    loaded = geos2vec.load_model(folder)
    from geos2vec.model.numpy_encoder import weights_from_keras

    want = weights_from_keras(tiny.keras_model)
    assert loaded.numpy_weights.keys() == want.keys()
    for name, value in want.items():  # float16 in the file
        np.testing.assert_array_equal(loaded.numpy_weights[name], value.astype(np.float16).astype(np.float32)
                                      if value.dtype.kind == "f" else value)


def test_an_interrupted_zip_save_keeps_the_earlier_zip_and_leaves_no_partial_file(tiny, tmp_path, monkeypatch):
    target = tmp_path / "m.zip"
    tiny.save(target, compact=True)
    before = target.read_bytes()
    real = zipfile.ZipFile.write
    calls = []

    def dies(self, *args, **kwargs):  # killed while writing the second member
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "write", dies)
    with pytest.raises(KeyboardInterrupt):
        tiny.save(target, compact=True)
    monkeypatch.undo()
    assert len(calls) == 2 and target.read_bytes() == before
    assert _hidden(tmp_path) == []  # no .m.zip.partial-<pid> left
    assert geos2vec.load_model(target).channels == tiny.channels


# --------------------------------------------------------------------------- reading: what is at the path
def test_a_missing_bundled_model_says_reinstall(tmp_path, monkeypatch):
    monkeypatch.setattr(mio, "default_model_path", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match=rf"the bundled model is missing from {tmp_path}; reinstall geos2vec"):
        read_model("default", S2VecModel)


@pytest.mark.parametrize("name,content", [("m.zip", b"PK but not a zip"), ("model.bin", b"\x00" * 64)])
def test_a_file_that_is_not_a_saved_model_is_named(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ModelFormatError, match=rf"{name} is neither a model directory nor a \.zip saved by "
                                               r"S2VecModel\.save"):
        geos2vec.load_model(tmp_path / name)


def test_an_incomplete_zip_names_the_missing_files(tmp_path):
    target = _zip(BUNDLED, tmp_path / "m.zip", names=("weights.npz", "config.json", "metadata.json"))
    with pytest.raises(ModelFormatError, match=r"m\.zip is not a complete saved S2Vec model: missing "
                                               r"\['feature_stats\.json'\]"):
        geos2vec.load_model(target)


def test_errors_inside_a_zip_name_the_zip_not_a_temporary_folder(copy, tmp_path):
    _edit_json(copy / "metadata.json", format="someone.else")
    target = _zip(copy, tmp_path / "m.zip")
    with pytest.raises(ModelFormatError) as err:
        geos2vec.load_model(target)
    assert str(err.value) == f"{target}: unknown format 'someone.else' (expected 'geos2vec.s2vec')"


# --------------------------------------------------------------------------- reading: metadata
def test_metadata_that_is_not_an_object_is_an_unknown_format(copy):
    (copy / "metadata.json").write_text("[1, 2]")
    with pytest.raises(ModelFormatError, match=r"unknown format None \(expected 'geos2vec\.s2vec'\)"):
        geos2vec.load_model(copy)


def test_a_model_of_a_newer_format_asks_for_an_upgrade(copy):
    _edit_json(copy / "metadata.json", format_version=mio.FORMAT_VERSION + 1, geos2vec_version="9.9")
    with pytest.raises(ModelFormatError, match=r"was saved by a newer geos2vec \(9\.9\); upgrade geos2vec"):
        geos2vec.load_model(copy)


def test_channels_of_metadata_and_statistics_must_agree(copy):
    """Reordered channels in metadata.json would feed every channel's counts to another channel's weights."""
    channels = json.loads((copy / "metadata.json").read_text())["channels"]
    _edit_json(copy / "metadata.json", channels=channels[::-1])
    with pytest.raises(ModelFormatError, match="feature_stats.json and metadata.json disagree on the channels"):
        geos2vec.load_model(copy)


# --------------------------------------------------------------------------- reading: weights
def test_weights_damaged_past_their_headers_are_a_model_format_error(copy):
    """A flipped byte deep in the largest array: the headers read fine (shapes match), the data does not."""
    npz = copy / "weights.npz"
    info = max(zipfile.ZipFile(npz).infolist(), key=lambda i: i.compress_size)
    assert info.compress_size > 100_000
    data = bytearray(npz.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # the member's compressed data
    data[start + int(info.compress_size * 0.9)] ^= 0xFF
    npz.write_bytes(bytes(data))
    mio._check_weight_shapes(npz, geos2vec.load_model("default").config, 116, 256)  # headers intact
    with pytest.raises(ModelFormatError, match=r"weights\.npz is damaged \((BadZipFile|error): .*\); save the "
                                               r"model again or copy it anew"):
        geos2vec.load_model(copy)


@pytest.mark.parametrize("dtype", [np.complex64, np.bool_])
def test_weights_of_another_kind_are_refused_by_their_header(copy, dtype):
    """A weight array of the right shape but not of numbers (complex, bool) is named, not loaded."""
    w = dict(np.load(copy / "weights.npz"))
    w["pos_embed"] = w["pos_embed"].astype(dtype)
    np.savez_compressed(copy / "weights.npz", **w)
    with pytest.raises(ModelFormatError) as err:
        geos2vec.load_model(copy)
    assert str(err.value) == f"{copy / 'weights.npz'}: array pos_embed.npy has dtype {np.dtype(dtype)}"


def test_a_keras_file_that_is_a_zip_but_not_a_keras_model_is_named(tiny, tmp_path):
    target = tmp_path / "k"
    tiny.save(target)
    with zipfile.ZipFile(target / "model.keras", "w") as zf:
        zf.writestr("hello.txt", "not a model")
    with pytest.raises(ModelFormatError, match=r"model\.keras could not be loaded \(KeyError: .*config\.json"):
        geos2vec.load_model(target)


# --------------------------------------------------------------------------- the NumPy encoder's pieces
def test_patch_project_is_the_affine_map_in_float32():
    rng = np.random.default_rng(0)
    w = {"patch_embed/kernel": rng.normal(size=(5, 8)).astype(np.float32),
         "patch_embed/bias": rng.normal(size=8).astype(np.float32)}
    x = rng.normal(size=(2, 3, 5))  # float64, any leading dims
    got = patch_project(w, x)
    ref = x @ w["patch_embed/kernel"].astype(np.float64) + w["patch_embed/bias"]
    assert got.dtype == np.float32 and got.shape == (2, 3, 8)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_a_compact_model_rebuilt_for_keras_keeps_its_missing_token(tiny, tmp_path):
    """``ensure_keras`` of a compact model (fit, evaluate, save) puts every weight back, the missing token too."""
    from geos2vec.model.numpy_encoder import weights_from_keras

    tiny.save(tmp_path / "m", compact=True)
    want = load_weights(tmp_path / "m" / "weights.npz")  # float16 in the file, read back as float32
    assert "missing_embed" in want and np.abs(want["missing_embed"]).max() > 0
    loaded = geos2vec.load_model(tmp_path / "m")
    assert loaded.keras_model is None
    got = weights_from_keras(loaded.ensure_keras())
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_gelu_kernels_compute_their_formulas():
    """The Python bodies of the compiled GELUs (what numba compiles): exact GELU in float64, and Eigen's rational
    ``erf`` in float32 within 1.5e-6 of it, saturating beyond |x / sqrt 2| = 4."""
    from geos2vec.model.numpy_encoder import _gelu32, _gelu64

    exact = [0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in np.linspace(-8.0, 8.0, 321)]
    f64, f32 = _gelu64._dispatcher.py_func, _gelu32._dispatcher.py_func
    got64 = [f64(float(v)) for v in np.linspace(-8.0, 8.0, 321)]
    got32 = [f32(np.float32(v)) for v in np.linspace(-8.0, 8.0, 321)]
    np.testing.assert_allclose(got64, exact, rtol=1e-15, atol=1e-15)
    assert all(isinstance(v, np.float32) for v in got32)
    np.testing.assert_allclose(np.asarray(got32, np.float64), exact, rtol=1e-6, atol=1.5e-6)
    assert f32(np.float32(-7.0)) == 0.0 and f32(np.float32(7.0)) == np.float32(7.0)


def test_saving_a_zip_onto_a_folder_named_like_it_is_refused_first(tiny, tmp_path):
    """x.zip an existing folder: os.replace failed with a raw IsADirectoryError after the whole save, leaving a
    hidden partial zip behind."""
    model = tiny
    target = tmp_path / "m.zip"
    target.mkdir()
    (target / "keep.txt").write_text("user file")
    with pytest.raises(FileExistsError, match="m.zip is a folder"):
        model.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.zip"]  # no hidden partial zip
    assert (target / "keep.txt").read_text() == "user file"
