"""Every public function and method has numpydoc ``Parameters`` (when it takes any) and ``Returns`` sections."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import geos2vec

KERAS_OVERRIDES = {"call", "build", "compute_output_shape", "get_config"}


def _public_modules():
    names = ["geos2vec"]
    for m in pkgutil.walk_packages(geos2vec.__path__, "geos2vec."):
        if not any(part.startswith("_") for part in m.name.split(".")):
            names.append(m.name)
    return names


def _targets():
    seen = set()
    for name in _public_modules():
        try:
            mod = importlib.import_module(name)
        except ImportError:  # an optional extra that is not installed
            continue
        for attr in getattr(mod, "__all__", []):
            obj = getattr(mod, attr, None)
            if obj is None or id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.isfunction(obj):
                yield f"{name}.{attr}", obj
            elif inspect.isclass(obj):
                for meth, f in vars(obj).items():
                    if not meth.startswith("_") and meth not in KERAS_OVERRIDES and inspect.isfunction(f):
                        yield f"{name}.{attr}.{meth}", f


def test_public_functions_have_numpydoc_sections():
    pytest.importorskip("keras")
    missing = []
    for full, f in _targets():
        doc = inspect.getdoc(f) or ""
        params = [p for p in inspect.signature(f).parameters if p not in ("self", "cls")]
        if params and "Parameters" not in doc:
            missing.append(f"{full}: Parameters")
        if "Returns" not in doc and "Yields" not in doc and "return " in inspect.getsource(f):
            missing.append(f"{full}: Returns")
    assert not missing, missing
