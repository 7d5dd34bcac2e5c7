"""A user upgrading geos2vec: models saved in another format version than this geos2vec reads.

Saves made by older versions (5ed5241, a078fa3, d7bee48: Keras, compact and zip saves, FeatureStats JSON,
zarr images) were checked by hand against their own code and load with identical embeddings; these tests
cover what a format *newer* than this geos2vec's, or a malformed version number, gives.
"""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest

import geos2vec
from geos2vec.errors import ModelFormatError
from geos2vec.model import io as mio

_MODEL = ("config.json", "feature_stats.json", "metadata.json", "weights.npz")


def _bundled_copy(dst):
    """The bundled (compact) model's files in ``dst``."""
    dst.mkdir()
    for name in _MODEL:
        shutil.copy2(mio.default_model_path() / name, dst / name)
    return dst


def _edit_meta(folder, **changes):
    meta = json.loads((folder / "metadata.json").read_text())
    meta.update(changes)
    (folder / "metadata.json").write_text(json.dumps(meta))


def _zip(folder, target):
    with zipfile.ZipFile(target, "w") as zf:
        for item in folder.iterdir():
            zf.write(item, item.name)
    return target


def test_newer_format_with_other_files_is_refused_as_newer(tmp_path):
    # a later format may store the weights (or the statistics) under another name: the user must be told to
    # upgrade, not that the model is incomplete (which reads as a damaged download)
    newer = _bundled_copy(tmp_path / "newer")
    _edit_meta(newer, format_version=mio.FORMAT_VERSION + 1, geos2vec_version="9.1.0")
    (newer / "weights.npz").rename(newer / "weights.safetensors")
    stats = _bundled_copy(tmp_path / "stats_renamed")
    _edit_meta(stats, format_version=mio.FORMAT_VERSION + 1, geos2vec_version="9.1.0")
    (stats / "feature_stats.json").rename(stats / "normalization.json")
    for path in (newer, _zip(newer, tmp_path / "newer.zip"), stats, _zip(stats, tmp_path / "stats.zip")):
        with pytest.raises(ModelFormatError, match=r"saved by a newer geos2vec \(9\.1\.0\); upgrade geos2vec") as err:
            geos2vec.load_model(path)
        assert str(err.value).startswith(str(path))
        assert f"model format {mio.FORMAT_VERSION + 1}" in str(err.value)


def test_newer_format_is_refused_before_its_grid_is_read(tmp_path):
    newer = _bundled_copy(tmp_path / "newer")
    _edit_meta(newer, format_version=mio.FORMAT_VERSION + 1, grid={"rows": 16, "cols": 16})  # another layout
    with pytest.raises(ModelFormatError, match="newer geos2vec") as err:
        geos2vec.load_model(newer)
    assert "grid" not in str(err.value)


@pytest.mark.parametrize("version", [1.5, -1, 0.5, True, "1.0"])
def test_format_version_that_is_not_a_whole_number_is_refused(tmp_path, version):
    # int() made 1.5 a format 1 and -1 an old format: both loaded as if this version had written them
    odd = _bundled_copy(tmp_path / "odd")
    _edit_meta(odd, format_version=version)
    with pytest.raises(ModelFormatError, match="must be integers"):
        geos2vec.load_model(odd)


def test_known_format_versions_still_load_with_the_same_weights(tmp_path):
    reference = geos2vec.load_model("default")
    for k, version in enumerate((mio.FORMAT_VERSION, str(mio.FORMAT_VERSION), 0)):
        folder = _bundled_copy(tmp_path / f"v{k}")
        _edit_meta(folder, format_version=version)
        model = geos2vec.load_model(folder)
        with np.load(mio.default_model_path() / "weights.npz") as ref:  # the file itself is the reference
            for name in ("pos_embed", "patch_embed/kernel"):
                np.testing.assert_array_equal(model.numpy_weights[name].astype(np.float32),
                                              ref[name].astype(np.float32))
        assert model.channels == reference.channels
    meta = json.loads((mio.default_model_path() / "metadata.json").read_text())
    assert meta["format_version"] == mio.FORMAT_VERSION  # the bundled model is this version's format


_LOCALE_SCRIPT = r"""
import json, locale, sys
from pathlib import Path
from geos2vec._jsonfile import write_text_atomic
from geos2vec.normalize import FeatureStats
folder = Path(sys.argv[1])
stats = {"channels": ["caf\u00e9", "road"], "count": 3, "mean": [1.0, 2.0], "m2": [0.5, 0.5]}
(folder / "stats.json").write_bytes(json.dumps(stats, ensure_ascii=False).encode("utf-8"))
print(ascii(FeatureStats.load(folder / "stats.json").channels))
write_text_atomic(folder / "report.md", "R\u00b2 mean \u00b1 std")
print(locale.getpreferredencoding(False))
"""


def test_json_and_reports_are_utf8_whatever_the_locale(tmp_path):
    # under an ASCII locale (LANG=C without UTF-8 coercion), valid UTF-8 JSON was "not valid JSON" and an evaluation
    # report with "R²" / "±" failed to write (UnicodeEncodeError); JSON is UTF-8 by its spec (RFC 8259)
    import os
    import subprocess
    import sys

    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0")
    run = subprocess.run([sys.executable, "-c", _LOCALE_SCRIPT, str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.splitlines()[0] == ascii(["caf\u00e9", "road"])
    assert (tmp_path / "report.md").read_bytes() == "R\u00b2 mean \u00b1 std".encode("utf-8")


def test_a_newer_release_in_the_same_format_is_named_when_its_files_do_not_read(tmp_path):
    # a later release may add a config field, or a weight array, without a new format version: the refusal must
    # say the model comes from a newer geos2vec, not only that a field or an array is unknown
    import hashlib

    fielded = _bundled_copy(tmp_path / "field")
    config = json.loads((fielded / "config.json").read_text())
    config["patch_size"] = 2
    (fielded / "config.json").write_text(json.dumps(config))
    _edit_meta(fielded, geos2vec_version="99.1.0",
               config_sha256=hashlib.sha256((fielded / "config.json").read_bytes()).hexdigest())
    arrays = _bundled_copy(tmp_path / "arrays")
    with np.load(arrays / "weights.npz") as f:
        weights = {k: f[k] for k in f.files}
    np.savez(arrays / "weights.npz", **weights, register_tokens=np.zeros((1, 4, 256), np.float16))
    meta = json.loads((arrays / "metadata.json").read_text())
    meta["files_sha256"]["weights.npz"] = hashlib.sha256((arrays / "weights.npz").read_bytes()).hexdigest()
    _edit_meta(arrays, geos2vec_version="99.1.0", files_sha256=meta["files_sha256"])
    for folder, what in ((fielded, "patch_size"), (arrays, "register_tokens")):
        with pytest.raises(ModelFormatError, match=r"saved by geos2vec 99\.1\.0, newer than this .*upgrade geos2vec") \
                as err:
            geos2vec.load_model(folder)
        assert what in str(err.value)
    _edit_meta(fielded, geos2vec_version="0.1.0")  # an older release's unknown field: no upgrade advice
    with pytest.raises(ModelFormatError, match="patch_size") as err:
        geos2vec.load_model(fielded)
    assert "upgrade" not in str(err.value)
