"""The public API is annotated (``geos2vec/py.typed``), and every annotation resolves.

For each module below, every function in ``__all__`` and every public method (and ``__init__``) of a class in
``__all__`` must annotate each parameter (``self``/``cls``, ``*args`` and ``**kwargs`` excepted) and its return.
The annotations are then resolved with :func:`typing.get_type_hints`, with the names the module imports under
``if TYPE_CHECKING:`` (executed here from the module's source), so a misspelled or unimported name fails.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import subprocess
import sys
import typing

MODULES = [
    "geos2vec.cells", "geos2vec.cell_neighbours", "geos2vec.cell_polygons", "geos2vec.cell_rowcol",
    "geos2vec.geometry_cells", "geos2vec.features", "geos2vec.normalize", "geos2vec.coverage",
    "geos2vec.ontology", "geos2vec.embedding", "geos2vec.accessor", "geos2vec.partitioned",
    "geos2vec.provenance", "geos2vec.options", "geos2vec.errors", "geos2vec.fusion", "geos2vec.location",
    "geos2vec.io", "geos2vec.io.crosswalk", "geos2vec.io.download", "geos2vec.io.osm", "geos2vec.io.wof",
    "geos2vec.evaluate", "geos2vec.evaluate.baselines", "geos2vec.evaluate.labels",
    "geos2vec.evaluate.methods", "geos2vec.evaluate.mlp_layers", "geos2vec.evaluate.probes",
    "geos2vec.evaluate.protocol", "geos2vec.evaluate.report", "geos2vec.evaluate.seams",
    "geos2vec.evaluate.splits", "geos2vec.evaluate.suite", "geos2vec.evaluate.tasks",
    "geos2vec", "geos2vec.demo", "geos2vec.raster", "geos2vec.raster.plot", "geos2vec.raster.storage",
    "geos2vec.raster.transform", "geos2vec.raster.views",
    "geos2vec.model", "geos2vec.model.config", "geos2vec.model.s2vec", "geos2vec.model.io", "geos2vec.model.data",
    "geos2vec.model.train", "geos2vec.model.reconstruction", "geos2vec.model.mae", "geos2vec.model.layers",
]
# packages of the optional extras ([model], [dask]): a module (or annotation) needing a missing one is skipped
OPTIONAL = {"keras", "tensorflow", "dask", "dask_geopandas", "distributed"}


def _optional_missing(exc: ImportError) -> bool:
    return (exc.name or "").split(".")[0] in OPTIONAL


def _modules():
    out = []
    for name in MODULES:
        try:
            out.append(importlib.import_module(name))
        except ImportError as exc:
            if not _optional_missing(exc):
                raise
    return out


def _methods(cls):
    """Public methods (and ``__init__``) defined on ``cls`` itself; properties give their getter."""
    for name, value in vars(cls).items():
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        elif isinstance(value, property):
            value = value.fget
        if inspect.isfunction(value):
            yield f"{cls.__name__}.{name}", value


def _targets():
    """``(module, qualified name, function)`` of every public callable, each once."""
    seen = set()
    for mod in _modules():
        for attr in mod.__all__:
            obj = getattr(mod, attr)
            if inspect.isfunction(obj):
                items = [(attr, obj)]
            elif inspect.isclass(obj):
                items = list(_methods(obj))
            else:
                continue
            for qual, f in items:
                if id(f) not in seen:
                    seen.add(id(f))
                    yield sys.modules[f.__module__], f"{f.__module__}.{qual}", f


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _type_checking_names(mod) -> dict:
    """The names ``mod`` imports under ``if TYPE_CHECKING:`` (the blocks executed in the module's package)."""
    ns = {"__name__": mod.__name__, "__package__": mod.__package__, "__builtins__": builtins}
    for node in ast.parse(inspect.getsource(mod)).body:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            exec(compile(ast.Module(body=node.body, type_ignores=[]), mod.__file__, "exec"), ns)
    return ns


def test_targets_found():
    names = {qual for _, qual, _ in _targets()}
    assert len(names) > 100
    assert {"geos2vec._cells_core.latlng_to_cell", "geos2vec.normalize.FeatureStats.fit",
            "geos2vec.normalize.FeatureStats.var", "geos2vec.accessor.S2VecAccessor.__init__",
            "geos2vec.io.osm.read_osm", "geos2vec.evaluate.splits.random_splits", "geos2vec.load_model",
            "geos2vec.raster.transform.rasterize", "geos2vec.raster._common.image_cells", "geos2vec.demo.run_demo",
            "geos2vec.model.config.S2VecConfig.replace", "geos2vec.model.s2vec.S2VecModel.fit",
            "geos2vec.model.reconstruction.LossAccumulator.add"} <= names


def test_public_api_is_annotated():
    missing = []
    for _, qual, f in _targets():
        sig = inspect.signature(f)
        for p in sig.parameters.values():
            if p.name in ("self", "cls") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.annotation is p.empty:
                missing.append(f"{qual}: parameter {p.name!r}")
        if sig.return_annotation is sig.empty:
            missing.append(f"{qual}: return")
    assert not missing, f"{len(missing)} annotation(s) missing:\n" + "\n".join(missing)


def test_annotations_resolve():
    namespaces, errors = {}, []
    for mod, qual, f in _targets():
        if mod.__name__ not in namespaces:
            try:
                namespaces[mod.__name__] = _type_checking_names(mod)
            except ImportError as exc:
                if not _optional_missing(exc):
                    raise
                namespaces[mod.__name__] = None
        ns = namespaces[mod.__name__]
        if ns is None:  # an optional extra is not installed
            continue
        try:
            typing.get_type_hints(f, localns=ns)
        except Exception as exc:  # noqa: BLE001 - every failure is reported together
            errors.append(f"{qual}: {type(exc).__name__}: {exc}")
    assert not errors, f"{len(errors)} annotation(s) do not resolve:\n" + "\n".join(errors)


def test_annotation_imports_stay_out_of_import_geos2vec():
    code = ("import sys, geos2vec; "
            "print(sorted(m for m in ('geos2vec._typing', 'keras', 'tensorflow', 'dask') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
