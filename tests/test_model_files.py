"""Hostile and broken model files: every one fails fast with a message that names the problem."""

from __future__ import annotations

import json
import shutil
import time
import zipfile

import numpy as np
import pytest

import geos2vec
from geos2vec.errors import InvalidTypeError, ModelFormatError
from conftest import edit_json as _edit_json  # the copy fixture (of the bundled model) is conftest's too
from geos2vec.model.io import default_model_path, expected_shapes

BUNDLED = default_model_path()




def test_bundled_weights_match_the_expected_shapes():
    model = geos2vec.load_model("default")
    want = expected_shapes(model.config, len(model.channels), 256)
    assert {k: tuple(v.shape) for k, v in model.numpy_weights.items()} == want


def test_edited_config_is_refused(copy):
    _edit_json(copy / "config.json", num_heads=16)  # same shapes, different attention: would embed wrongly
    with pytest.raises(ModelFormatError, match="changed after the model was saved"):
        geos2vec.load_model(copy)


def test_config_without_an_architecture_field_is_refused(copy):
    _edit_json(copy / "config.json", num_heads=None)
    _edit_json(copy / "metadata.json", config_sha256=None)  # an older save without the checksum
    with pytest.raises(ModelFormatError, match=r"lacks the architecture field\(s\) \['num_heads'\]"):
        geos2vec.load_model(copy)


def test_huge_config_fails_fast_before_allocating(copy):
    _edit_json(copy / "config.json", embedding_dim=10**12 - 10**12 % 8)
    _edit_json(copy / "metadata.json", config_sha256=None)
    t0 = time.perf_counter()
    with pytest.raises(ModelFormatError, match="does not match config.json"):
        geos2vec.load_model(copy)
    assert time.perf_counter() - t0 < 2


def test_weights_with_a_bomb_header_are_refused_unread(copy):
    # a member whose header claims 2**30 elements, with no data behind it: only the header may be read
    with zipfile.ZipFile(copy / "weights.npz", "a") as zf, zf.open("bomb.npy", "w") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f2", "fortran_order": False, "shape": (2**15, 2**15)})
    with pytest.raises(ModelFormatError, match=r"unexpected \['bomb'\]"):
        geos2vec.load_model(copy)


def test_wrong_weight_shape_is_named(copy):
    w = dict(np.load(copy / "weights.npz"))
    w["patch_embed/kernel"] = w["patch_embed/kernel"][:, :128]
    np.savez_compressed(copy / "weights.npz", **w)
    with pytest.raises(ModelFormatError, match=r"patch_embed/kernel is \(116, 128\), config says \(116, 256\)"):
        geos2vec.load_model(copy)


@pytest.mark.parametrize("name", ["metadata.json", "config.json", "feature_stats.json"])
def test_corrupt_json_names_the_file(copy, name):
    (copy / name).write_text("{not json")
    if name == "config.json":
        _edit_json(copy / "metadata.json", config_sha256=None)
    with pytest.raises(ModelFormatError, match=name.replace(".", r"\.")):
        geos2vec.load_model(copy)


def test_negative_variance_in_stats_is_refused(copy):
    d = json.loads((copy / "feature_stats.json").read_text())
    d["m2"][3] = -1.0
    (copy / "feature_stats.json").write_text(json.dumps(d))
    with pytest.raises(ModelFormatError, match="m2"):
        geos2vec.load_model(copy)


def test_missing_files_and_mixed_saves(copy):
    (copy / "weights.npz").unlink()
    with pytest.raises(ModelFormatError, match="missing weights.npz"):
        geos2vec.load_model(copy)
    (copy / "weights.npz").write_bytes((BUNDLED / "weights.npz").read_bytes())
    (copy / "model.keras").write_bytes(b"an old save")
    with pytest.raises(ModelFormatError, match="both model.keras and weights.npz"):
        geos2vec.load_model(copy)
    _edit_json(copy / "metadata.json", channels=None)
    (copy / "model.keras").unlink()
    with pytest.raises(ModelFormatError, match="lacks \\['channels'\\]"):
        geos2vec.load_model(copy)


def test_model_that_is_not_a_model_is_a_type_error():
    from geos2vec.demo import load_sample

    pois, _ = load_sample()
    with pytest.raises(InvalidTypeError, match="model must be"):
        pois.iloc[:3].s2vec.embed(features=pois, model=None)
    with pytest.raises(TypeError, match="model must be 'default', the path of a saved model"):
        geos2vec.embed_cells(np.array([], np.uint64), pois, model=42)


def test_saving_replaces_an_earlier_save_as_a_whole(tmp_path):
    pytest.importorskip("tensorflow")
    model = geos2vec.load_model("default")
    target = tmp_path / "saved"
    model.save(target)  # Keras format
    assert (target / "model.keras").exists()
    model.save(target, compact=True)  # the compact save must not leave the old model.keras behind
    assert not (target / "model.keras").exists() and (target / "weights.npz").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial folders left
    again = geos2vec.load_model(target)
    assert again.numpy_weights is not None and again.channels == model.channels
    model.save(tmp_path / "m.zip", compact=True)
    from_zip = geos2vec.load_model(tmp_path / "m.zip")
    assert from_zip.config == model.config
    # provenance names what the user loaded: the zip and the folder, not a temporary extraction folder
    assert from_zip.source == str(tmp_path / "m.zip") and again.source == str(target)


def test_a_save_killed_midway_leaves_the_earlier_model_intact(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    import geos2vec.model.io as mio

    model = geos2vec.load_model("default")
    target = tmp_path / "saved"
    model.save(target, compact=True)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    calls = []
    real = mio.shutil.copy2

    def dies(src, dst, *a, **k):  # the process dies while copying the second file
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(src, dst, *a, **k)

    monkeypatch.setattr(mio.shutil, "copy2", dies)
    with pytest.raises(KeyboardInterrupt):
        model.save(target)  # the Keras format this time
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # untouched
    assert geos2vec.load_model(target).numpy_weights is not None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".saved.partial")]  # cleaned up


def test_truncated_keras_file_is_named(tmp_path):
    pytest.importorskip("tensorflow")
    model = geos2vec.load_model("default")
    target = tmp_path / "k"
    model.save(target)
    data = (target / "model.keras").read_bytes()
    (target / "model.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match="model.keras is not a readable Keras file"):
        geos2vec.load_model(target)


def test_damaged_weights_and_metadata_are_model_format_errors(copy, tmp_path):
    # one flipped byte inside the largest compressed array (bad disk, bad copy): zlib.error before
    npz = copy / "weights.npz"
    info = max(zipfile.ZipFile(npz).infolist(), key=lambda i: i.compress_size)
    data = bytearray(npz.read_bytes())
    data[info.header_offset + 200] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="weights.npz is damaged"):
        geos2vec.load_model(copy)
    # the same inside a .zip: zipfile's CRC error before
    shutil.copytree(BUNDLED, tmp_path / "ok")
    with zipfile.ZipFile(tmp_path / "m.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("weights.npz", "config.json", "feature_stats.json", "metadata.json"):
            zf.write(tmp_path / "ok" / name, name)
    raw = bytearray((tmp_path / "m.zip").read_bytes())
    where = zipfile.ZipFile(tmp_path / "m.zip").getinfo("weights.npz").header_offset + 4000
    raw[where] ^= 0xFF
    (tmp_path / "m.zip").write_bytes(bytes(raw))
    with pytest.raises(ModelFormatError, match=r"m.zip: weights.npz is damaged"):
        geos2vec.load_model(tmp_path / "m.zip")
    _edit_json(tmp_path / "ok" / "metadata.json", grid=[8, 32, 1])
    with pytest.raises(ModelFormatError, match="grid must be two positive integers"):
        geos2vec.load_model(tmp_path / "ok")
    _edit_json(tmp_path / "ok" / "metadata.json", grid=[16, 16], format_version="x")
    with pytest.raises(ModelFormatError, match="must be integers"):
        geos2vec.load_model(tmp_path / "ok")


def test_files_of_another_save_are_refused(tmp_path):
    model = geos2vec.load_model("default")
    model.save(tmp_path / "run1", compact=True)
    model.stats.mean = model.stats.mean + 1.0        # a second save with other statistics (another training run)
    model.save(tmp_path / "run2", compact=True)
    meta = json.loads((tmp_path / "run1" / "metadata.json").read_text())
    assert set(meta["files_sha256"]) == {"weights.npz", "feature_stats.json"}
    shutil.copy(tmp_path / "run2" / "feature_stats.json", tmp_path / "run1" / "feature_stats.json")
    with pytest.raises(ModelFormatError, match="feature_stats.json differ"):
        geos2vec.load_model(tmp_path / "run1")
    np.testing.assert_allclose(geos2vec.load_model(tmp_path / "run2").stats.mean, model.stats.mean)


def test_an_interrupted_resave_names_where_the_old_model_is(tmp_path, monkeypatch):
    import os

    import geos2vec.model.io as mio

    model = geos2vec.load_model("default")
    target = tmp_path / "saved"
    model.save(target, compact=True)
    assert (target.stat().st_mode & 0o777) == 0o777 & ~_umask()   # an ordinary folder, not mkdtemp's 0700
    real = os.replace

    def dies(src, dst):  # killed between moving the old folder aside and moving the new one in
        if os.fspath(dst) == os.fspath(target):
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(mio.os, "replace", dies)
    with pytest.raises(KeyboardInterrupt):
        model.save(target, compact=True)
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError, match=r"previous model in .*\.saved\.\d+@.*\.old: rename that folder"):
        geos2vec.load_model(target)


def _umask():
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_model_io_does_not_import_the_model_class():
    """Loading is one-way (keras-hub style): io knows the file layout, s2vec builds on it, never the reverse."""
    import ast

    import geos2vec.model.io as io_mod

    tree = ast.parse(open(io_mod.__file__).read())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(m.endswith("s2vec") for m in imported), imported
    from geos2vec.model import S2VecModel, load_model

    m = load_model("default")
    assert type(m) is S2VecModel and m.channels == S2VecModel.load("default").channels

    class Mine(S2VecModel):
        pass

    assert type(Mine.load("default")) is Mine   # the class decides what is built


@pytest.mark.parametrize("log1p", [True, False])
def test_patch_vectors_blocks_match_the_plain_product(log1p):
    """Block-by-block patch projection (int64, column-major input) equals normalize-then-project in float64."""
    import pandas as pd

    from geos2vec.model.embed import patch_vectors
    from geos2vec.normalize import FeatureStats

    rng = np.random.default_rng(3)
    table = pd.DataFrame(rng.poisson(0.7, (1000, 5)), columns=list("abcde"))
    stats = FeatureStats.fit(table, log1p=log1p)
    w = {"patch_embed/kernel": rng.normal(size=(5, 8)).astype(np.float32),
         "patch_embed/bias": rng.normal(size=8).astype(np.float32)}
    values = table.to_numpy()                       # int64, column-major view of the frame
    got = patch_vectors(None, stats, values, w, block=7)
    x = np.log1p(values.astype(np.float64)) if log1p else values.astype(np.float64)
    ref = (x - np.asarray(stats.mean)) / np.asarray(stats.std) @ w["patch_embed/kernel"] + w["patch_embed/bias"]
    assert got.dtype == np.float32 and got.shape == (1000, 8)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(got, patch_vectors(None, stats, values, w, block=100000))
    if log1p:
        with pytest.raises(ValueError, match="> -1"):
            patch_vectors(None, stats, values - 5, w)
