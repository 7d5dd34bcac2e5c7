"""The oldest supported stack: pyproject.toml's lower bounds, and the APIs that need them.

These run in any environment: on the newest stack they check the bounds and the version report; on an old one
(a venv pinned to the lower bounds) the behaviour tests fail where an installed version is too old.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest

import geos2vec
from geos2vec import _versions

ROOT = Path(__file__).resolve().parents[1]


def _bounds() -> dict:
    """``{package: lower bound}`` of pyproject.toml's dependencies and extras (Python 3.10 has no tomllib)."""
    text = (ROOT / "pyproject.toml").read_text()
    found = re.findall(r'"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?>=([0-9][0-9.]*)(?:;[^"]*)?"', text)  # ; markers
    return {name.lower(): bound for name, bound in found}


def test_pyproject_bounds_exclude_the_versions_found_broken():
    bounds = _bounds()
    # keras 3.6: ops.dot_product_attention on TensorFlow squares the logits (see the attention test below)
    assert _versions._release(bounds["keras"]) >= (3, 7)
    # pyosmium < 4.0 has no osmium.FileProcessor, which geos2vec.io.read_osm reads with
    assert _versions._release(bounds["osmium"]) >= (4, 0)


def test_show_versions_bounds_match_pyproject():
    bounds = _bounds()
    for name, minimum in _versions.MINIMUM.items():
        assert bounds.get(name) == minimum, name


def test_show_versions_marks_a_version_below_its_bound(monkeypatch):
    real = _versions.versions()
    monkeypatch.setattr(_versions, "versions", lambda: {**real, "keras": "3.6.0", "pandas": "2.0.3rc1"})
    buf = io.StringIO()
    geos2vec.show_versions(file=buf)
    text = buf.getvalue()
    assert "keras: 3.6.0  (older than the supported >=3.7: upgrade it)\n" in text
    assert "pandas: 2.0.3rc1  (older than the supported >=2.1: upgrade it)\n" in text
    assert f"numpy: {real['numpy']}\n" in text  # the current ones are not marked
    assert _versions.below_minimum({"keras": "3.7.0", "osmium": None, "pandas": "10.0"}) == {}
    assert _versions.below_minimum({"osmium": "3.7.0"}) == {"osmium": ("3.7.0", "4.0")}


def test_keras_attention_scales_the_logits_like_numpy():
    """``keras.ops.dot_product_attention(scale=s)`` is softmax(s * q k^T) v (keras 3.6 on TF used (q k^T)^2)."""
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=(2, 5, 3, 4)).astype(np.float32) for _ in range(3))  # (batch, tokens, heads, dim)
    out = keras.ops.convert_to_numpy(keras.ops.dot_product_attention(q, k, v, scale=0.5))
    logits = 0.5 * np.einsum("bthd,bshd->bhts", q.astype(np.float64), k.astype(np.float64))
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    expected = np.einsum("bhts,bshd->bthd", p, v.astype(np.float64))
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)


def test_osmium_has_the_file_processor_read_osm_uses():
    osmium = pytest.importorskip("osmium")
    assert hasattr(osmium, "FileProcessor") and hasattr(osmium.FileProcessor, "with_locations")
