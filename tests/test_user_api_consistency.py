"""A user who learned one geos2vec function expects the others to behave the same way.

The same concept (``level``, ``model``, ``mode``, ``progress``, ``prefix``, an ``area``, a category column) has
the same name, default, accepted values and error class everywhere: in the functions, the ``.s2vec`` accessor,
the docstrings and the command line. These tests compare them by introspection, so that drift fails here.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import geos2vec
from geos2vec.errors import InvalidInputError

from conftest import SHARED_DATA

_PBF = SHARED_DATA / "osm" / "liechtenstein-latest.osm.pbf"


def _quiet(f, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kw)


def _public_callables():
    """``(name, function)`` of every public function and method (``__all__`` of the public modules) and of the
    ``.s2vec`` accessors, each once."""
    from geos2vec.accessor import DaskS2VecAccessor, S2VecAccessor

    names = ["geos2vec"] + [m.name for m in pkgutil.walk_packages(geos2vec.__path__, "geos2vec.")
                            if not any(part.startswith("_") for part in m.name.split("."))]
    seen, out, mods = set(), [], []
    # modules that need Keras are left out unless it is loaded already (importing TensorFlow takes ~10 s)
    blocked = [m for m in ("keras", "tensorflow") if m not in sys.modules]
    sys.modules.update(dict.fromkeys(blocked))
    try:
        for name in names:
            try:
                mods.append((name, importlib.import_module(name)))
            except ImportError:  # an optional extra that is not installed (or Keras, blocked)
                continue
    finally:
        for m in blocked:
            sys.modules.pop(m, None)
    for name, mod in mods:
        objs = [(f"{name}.{a}", getattr(mod, a, None)) for a in getattr(mod, "__all__", [])]
        for full, obj in objs + [("S2VecAccessor", S2VecAccessor), ("DaskS2VecAccessor", DaskS2VecAccessor)]:
            if obj is None or id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.isfunction(obj):
                out.append((full, obj))
            elif inspect.isclass(obj) and obj.__module__.startswith("geos2vec"):
                for meth, f in vars(obj).items():
                    f = f.__func__ if isinstance(f, (classmethod, staticmethod)) else f
                    if (not meth.startswith("_") or meth == "__init__") and inspect.isfunction(f) and id(f) not in seen:
                        seen.add(id(f))
                        out.append((f"{full}.{meth}", f))
    return out


def _defaults(f) -> dict:
    return {p.name: p.default for p in inspect.signature(f).parameters.values() if p.default is not p.empty}


# ------------------------------------------------------------------ the command line and the Python API
@pytest.fixture(scope="module")
def cli():
    """Each sub-command's parser, by name (built as ``geos2vec <command>`` builds it)."""
    from geos2vec import cli as cli_mod

    sub = argparse.ArgumentParser().add_subparsers(dest="command")
    for module, _ in cli_mod._COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return {name: {a.dest: a for a in p._actions} for name, p in sub.choices.items()}


def test_cli_defaults_are_the_python_defaults(cli):
    """A flag and the parameter it sets start from the same value: the CLI runs what the Python API runs."""
    from geos2vec.demo import run_demo
    from geos2vec.evaluate import DEFAULT_SWEEP, run_suite
    from geos2vec.location import encode_location

    embed = _defaults(geos2vec.embed)
    assert cli["cells"]["level"].default == _defaults(geos2vec.latlng_to_cell)["level"] == 12
    assert cli["features"]["level"].default == _defaults(geos2vec.count_features)["level"] == 12
    for flag in ("level", "model", "mode", "context", "how", "outside"):
        assert cli["embed"][flag].default == embed[flag], flag
    demo = _defaults(run_demo)
    for flag in ("out", "model", "mode"):
        assert cli["demo"][flag].default == demo[flag], flag
    suite = _defaults(run_suite)
    ev = cli["evaluate"]
    for flag in ("n_splits", "seed", "max_epochs", "patience", "batch_size", "target_scale", "fusion",
                 "block_level", "location", "untrained"):
        assert ev[flag].default == suite[flag], flag
    for flag in ("splits", "probes", "modes"):  # comma-separated on the command line
        assert ev[flag].default.split(",") == list(suite[flag]), flag
    assert ev["model"].default == suite["model"]
    for flag, key in (("lr", "lr"), ("hidden", "hidden"), ("dropout", "dropout")):
        assert [float(v) for v in ev[flag].default.split(",")] == [float(v) for v in DEFAULT_SWEEP[key]]
    loc = _defaults(encode_location)
    assert ev["location_scales"].default == loc["frequency_num"]
    assert ev["min_radius"].default == loc["min_radius"] and ev["max_radius"].default == loc["max_radius"]


def test_cli_choices_are_what_the_functions_accept(cli):
    from geos2vec.evaluate import TARGET_SCALES
    from geos2vec.fusion import KINDS
    from geos2vec.model.context import CONTEXTS
    from geos2vec.model.embed import MODES

    assert tuple(cli["embed"]["mode"].choices) == MODES
    assert sorted(cli["embed"]["context"].choices) == sorted(CONTEXTS)
    assert sorted(cli["embed"]["how"].choices) == ["auto", "point", "weighted"]
    assert sorted(cli["embed"]["outside"].choices) == ["embed", "nan"]
    assert set(cli["demo"]["mode"].choices) <= set(MODES)
    assert tuple(cli["evaluate"]["target_scale"].choices) == TARGET_SCALES
    assert tuple(cli["evaluate"]["fusion"].choices) == KINDS


def test_evaluate_category_flag_finds_the_column_as_features_does(cli, tmp_path):
    """``geos2vec evaluate --features pois.gpkg`` counted a POI file with a ``category`` column (no ``fclass``)
    as ``geos2vec features`` does, not with "category_column 'fclass' is not a column of pois"."""
    from geos2vec._cli_evaluate_inputs import _load_counts

    assert cli["evaluate"]["category"].default == cli["features"]["category"].default is None
    pois, _ = geos2vec.demo.load_sample()
    pois = pois.iloc[:400][["fclass", "geometry"]].rename(columns={"fclass": "category"})
    path = tmp_path / "pois.parquet"
    pois.to_parquet(path)
    got = _quiet(_load_counts, [path], cli["evaluate"]["category"].default)
    ref = _quiet(geos2vec.count_features, pois)
    # the same counts as count_features' own detection of the column (an independent crosstab below)
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got.loc[ref.index, ref.columns].to_numpy(), ref.to_numpy())
    cells = pois.s2vec.cell_ids(12)
    known = pois["category"].isin(geos2vec.load_ontology().table["osm_value"])
    assert got.to_numpy().sum() == known.sum()
    assert got.loc[cells[known].value_counts().index].sum(axis=1).to_numpy().tolist() == \
        cells[known].value_counts().to_numpy().astype(float).tolist()


# ------------------------------------------------------------------ progress=
@pytest.fixture(scope="module")
def small():
    pois, _ = geos2vec.demo.load_sample()
    pois = pois.iloc[:150]
    return pois, _quiet(geos2vec.count_features, pois), geos2vec.load_model("default")


def test_progress_takes_what_set_options_takes(small, capsys):
    """``progress="no"`` (a true string) showed the bars; ``set_options(progress="no")`` was refused. Every
    function's ``progress=`` now takes True, False, 0, 1 or None and refuses the rest the same way."""
    from geos2vec.evaluate import evaluate, run_suite
    from geos2vec.io import download_osm, osm_features, read_osm

    pois, table, model = small
    cells = table.index[:3]
    y = pd.Series(np.arange(len(table), dtype=float), index=table.index)
    box = (9.50, 47.10, 9.52, 47.12)
    calls = {
        "embed_cells": lambda v: geos2vec.embed_cells(cells, table, model=model, progress=v),
        "cell_embeddings": lambda v: geos2vec.cell_embeddings(table.iloc[:3], model=model, progress=v),
        "embed": lambda v: geos2vec.embed(pois.iloc[:3], table, model=model, progress=v),
        ".s2vec.embed": lambda v: pois.iloc[:3].s2vec.embed(table, model=model, progress=v),
        "evaluate": lambda v: evaluate(y, {"counts": table}, n_splits=2, probes="ridge", progress=v),
        "run_suite": lambda v: run_suite(("ca-housing",), data_dir="/nonexistent", progress=v),
        "download_osm": lambda v: download_osm(box, index_url="/nonexistent/index.json", progress=v),
    }
    if importlib.util.find_spec("osmium") is not None and _PBF.exists():
        calls["read_osm"] = lambda v: read_osm(_PBF, area=box, pois=False, progress=v)
        calls["osm_features"] = lambda v: osm_features(box, index_url="/nonexistent/index.json", progress=v)
    for bad in ("no", 2, 1.0, None):  # what set_options refuses (it takes bools only; functions 0/1 too)
        with pytest.raises(InvalidInputError, match="progress must be True or False"):
            geos2vec.set_options(progress=bad)
    for name, call in calls.items():
        for bad in ("no", "false", 2, 0.5) if name == "embed_cells" else ("no",):
            with pytest.raises(InvalidInputError, match=r"progress must be True, False or None"):
                _quiet(call, bad)
    assert "it/s" not in capsys.readouterr().err  # refused before any bar was drawn
    # the valid values still work, and a bar shows only when asked for
    for ok in (False, 0, np.False_):
        out = _quiet(geos2vec.embed_cells, cells, table, model=model, progress=ok)
        assert out.shape == (3, 256)
    assert capsys.readouterr().err == ""
    with geos2vec.set_options(progress=False):
        _quiet(geos2vec.embed_cells, cells, table, model=model, progress=np.True_)
    assert "embedding" in capsys.readouterr().err  # the argument wins over the option


def test_progress_defaults_follow_the_option():
    """Every public ``progress=`` defaults to None (the ``progress`` option), but read_osm: False, as documented."""
    found = {}
    for full, f in _public_callables():
        params = inspect.signature(f).parameters
        if "progress" in params:
            found[full] = params["progress"].default
    assert len(found) >= 8, found
    odd = {k: v for k, v in found.items() if v is not None}
    assert odd == {"geos2vec.io.read_osm": False}
    assert "progress : bool or None, default False" in inspect.getdoc(geos2vec.io.read_osm)


# ------------------------------------------------------------------ area=
def test_a_lon_lat_box_is_an_area_everywhere(small):
    """read_osm(area=...), download_osm, osm_features and as_coverage take a (min_lon, min_lat, max_lon, max_lat)
    box; rasterize(area=...), .s2vec.rasterize and image_cells raised "area must be a shapely geometry" for it."""
    from geos2vec.coverage import as_coverage
    from geos2vec.raster import image_cells

    pois, table, _ = small
    box = (-118.30, 34.00, -118.20, 34.10)
    poly = shapely.box(*box)
    assert as_coverage(box).equals(poly)  # what the box means elsewhere
    ref = image_cells(poly, 8)
    # an independent reference: the level-8 cells of a dense grid of points in the box, all among the covering
    lat, lng = np.meshgrid(np.linspace(34.0, 34.1, 41), np.linspace(-118.3, -118.2, 41))
    inside = np.unique(geos2vec.latlng_to_cell(lat.ravel(), lng.ravel(), 8))
    assert set(inside) <= set(ref) and len(ref) == 2
    for form in (box, list(box), np.array(box)):
        np.testing.assert_array_equal(image_cells(form, 8), ref)
        got = geos2vec.rasterize(table, area=form)
        want = geos2vec.rasterize(table, area=poly)
        np.testing.assert_array_equal(got["image"].values, want["image"].values)
        assert set(ref) <= set(got["image"].values.tolist())
    acc = _quiet(pois.s2vec.rasterize, area=box)
    np.testing.assert_array_equal(acc["image"].values, _quiet(pois.s2vec.rasterize, area=poly)["image"].values)
    with pytest.raises(InvalidInputError, match=r"\(min_lon, min_lat, max_lon, max_lat\)"):
        image_cells((-118.2, 34.0, -118.3, 34.1))  # min and max swapped
    with pytest.raises(TypeError, match="box"):
        geos2vec.rasterize(table, area="Los Angeles")


# ------------------------------------------------------------------ docstrings and signatures
def _doc_params(doc: str) -> list[str] | None:
    """The names a numpydoc ``Parameters`` section documents, in order (``a, b : int`` gives a and b)."""
    lines = inspect.cleandoc(doc).splitlines()
    start = next((k for k in range(len(lines) - 1) if lines[k].strip() == "Parameters"
                  and set(lines[k + 1].strip()) == {"-"}), None)
    if start is None:
        return None
    names = []
    for k in range(start + 2, len(lines)):
        line = lines[k]
        if k + 1 < len(lines) and line.strip() and set(lines[k + 1].strip()) == {"-"}:
            break  # the next section
        if line.strip() and not line.startswith(" "):
            head = line.split(" : ")[0].rstrip(" :")
            names += [n.strip().lstrip("*") for n in head.split(",")]
    return names


def _documented():
    """``(name, signature parameters, documented names, docstring)`` of every public callable with a Parameters section
    (a class's constructor as its class docstring documents it)."""
    for full, f in _public_callables():
        doc = inspect.getdoc(f) or ""
        if full.endswith(".__init__"):
            cls = vars(inspect.getmodule(f)).get(f.__qualname__.split(".")[0])
            doc = (cls.__doc__ or "") if "Parameters" not in doc and cls is not None else doc
        names = _doc_params(doc)
        if names is not None:
            params = list(inspect.signature(f).parameters.values())
            if "." in f.__qualname__ and params and params[0].name in ("self", "cls"):  # a method's own
                params = params[1:]
            yield full, params, names, doc


def test_docstrings_document_exactly_the_parameters():
    """Each public function documents every parameter it has and none it lacks, and its positional parameters
    in the order they are passed (``Method(blocks, "pca", 64, [True])``: the docs put ``seed`` before
    ``scale``, the fourth positional argument)."""
    wrong, checked = [], 0
    for full, params, names, _ in _documented():
        checked += 1
        sig = [p.name for p in params]
        if sorted(set(names)) != sorted(sig):
            wrong.append(f"{full}: documented {sorted(set(names) - set(sig))}, undocumented "
                         f"{sorted(set(sig) - set(names))}")
            continue
        positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if [n for n in names if n in positional] != positional:
            wrong.append(f"{full}: positional order {positional}, documented {names}")
    assert checked > 150
    assert not wrong, "\n".join(wrong)


def _doc_defaults(doc: str) -> dict:
    """``{name: text}`` of the ``name : type, default text`` lines of a Parameters section."""
    out = {}
    for line in inspect.cleandoc(doc).splitlines():
        m = re.match(r"^([\w*, ]+) : .*\bdefault[: ]\s*(.+?)\.?$", line)
        if m:
            for name in m.group(1).split(","):
                out[name.strip().lstrip("*")] = m.group(2).strip().strip("`")
    return out


def test_defaults_in_docstrings_are_the_signatures():
    """``level : int, default 12`` says what the function does when ``level`` is not given."""
    wrong, checked = [], 0
    for full, params, _, doc in _documented():
        f_params = {p.name: p.default for p in params}
        for name, text in _doc_defaults(doc).items():
            if name not in f_params or f_params[name] is inspect.Parameter.empty:
                continue
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):  # prose ("the bundled model", "the progress option")
                continue
            checked += 1
            if value != f_params[name] and not (value is None and f_params[name] is None):
                wrong.append(f"{full}({name}=...): documented default {text}, is {f_params[name]!r}")
    assert checked > 40
    assert not wrong, "\n".join(wrong)


def test_signatures_written_in_the_docs_are_the_functions():
    """A code span in docs/*.md that names every parameter of a public function in order (``rasterize(features,
    *, image_level=8, ...)``, ``latlng_to_cell(lat, lng, level=12)``) shows its signature: the defaults it gives
    are the function's."""
    from conftest import ROOT

    functions = {}
    for full, f in _public_callables():
        if "." not in f.__qualname__:  # functions, not methods: "embed" is the function's name
            functions.setdefault(f.__name__, []).append(f)
    wrong, checked = [], 0
    for page in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        for name, args in re.findall(r"`(?:geos2vec\.[\w.]*?)?(\w+)\(([^`()]*)\)`", page.read_text()):
            if len(functions.get(name, [])) != 1:
                continue
            f = functions[name][0]
            try:
                call = ast.parse(f"f({args.replace('*, ', '').replace('*,', '')})", mode="eval").body
            except SyntaxError:
                continue
            shown = [a.id for a in call.args if isinstance(a, ast.Name)] + [k.arg for k in call.keywords]
            params = [p for p in inspect.signature(f).parameters.values() if p.kind not in (p.VAR_POSITIONAL,
                                                                                             p.VAR_KEYWORD)]
            if len(shown) != len(call.args) + len(call.keywords) or shown != [p.name for p in params]:
                continue  # a call with values, not the signature
            checked += 1
            for k in call.keywords:
                try:
                    value = ast.literal_eval(k.value)
                except ValueError:
                    continue
                default = inspect.signature(f).parameters[k.arg].default
                if default is inspect.Parameter.empty or value != default:
                    wrong.append(f"{page.name}: {name}({k.arg}={ast.unparse(k.value)}), the function's default is "
                                 f"{'none' if default is inspect.Parameter.empty else repr(default)}")
    assert checked >= 5
    assert not wrong, "\n".join(wrong)


# ------------------------------------------------------------------ model= and mode(s)=
def test_run_demo_takes_a_loaded_model_as_embed_does(small, tmp_path):
    """Every ``model=`` takes "default", a path or a loaded model; run_demo refused a loaded one ("path must be
    'default' or the path of a saved model")."""
    from geos2vec.demo import run_demo

    model = small[2]
    got = run_demo(tmp_path / "loaded", model=model, mode="patch", quiet=True)
    table = _quiet(geos2vec.count_features, *geos2vec.demo.load_sample())
    ref = geos2vec.embed_cells(table.index, table, model=model, mode="patch", progress=False)
    assert got["cells"] == len(table) == 180 and got["embedding_dim"] == 256
    a = gpd.read_parquet(got["parquet"]).set_index("s2_cell")
    np.testing.assert_array_equal(a.loc[ref.index.to_numpy(np.uint64), ref.columns].to_numpy(), ref.to_numpy())
    with pytest.raises(TypeError, match="model must be"):
        run_demo(tmp_path / "bad", model=3, quiet=True)


def test_modes_are_checked_like_mode_before_any_work(small, monkeypatch):
    """``model_embeddings`` / ``run_suite`` take the modes ``embed(mode=...)`` takes and refuse others with its
    error class before any work: ``modes=("patch", "tile")`` failed after the patch embedding (run_suite: after
    loading the tasks), ``modes=None`` with an AttributeError or TypeError."""
    import geos2vec.embedding
    from geos2vec.evaluate import model_embeddings, run_suite

    _, table, model = small
    calls = []
    real = geos2vec.embedding.embed_cells
    monkeypatch.setattr(geos2vec.embedding, "embed_cells", lambda *a, **k: calls.append(k["mode"]) or real(*a, **k))
    for bad in (("patch", "tile"), "Contextual", None, 3, (), ("contextual:wide",)):
        with pytest.raises(InvalidInputError, match="modes must be one or more of"):
            model_embeddings(table.index[:5], table, model, modes=bad)
        with pytest.raises(InvalidInputError, match="modes must be one or more of"):
            run_suite(("ca-housing",), model=model, modes=bad, data_dir="/nonexistent")
    assert calls == []
    with pytest.raises(InvalidInputError, match="mode must be one of"):  # embed's own message, for comparison
        geos2vec.embed_cells(table.index[:5], table, model=model, mode="tile")
    out = _quiet(model_embeddings, table.index[:5], table, model, modes=("patch", "contextual:centred"))
    assert list(out) == ["S2Vec (patch)", "S2Vec (contextual:centred)"] and calls == ["patch", "contextual"]
    np.testing.assert_allclose(out["S2Vec (patch)"].to_numpy(),
                               geos2vec.embed_cells(out["S2Vec (patch)"].index, table, model=model, mode="patch",
                                                    progress=False).to_numpy(np.float64), rtol=1e-6)


# ------------------------------------------------------------------ the accessor and the dask functions
def _keywords(f, drop=()) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()
            if p.name not in ("self", *drop) and p.kind != p.VAR_KEYWORD]


def test_accessor_methods_are_their_functions():
    """``gdf.s2vec.embed(...)`` is ``geos2vec.embed(gdf, ...)``: same parameters, kinds and defaults; the other
    methods forward what they do not name to the function, and share its defaults where they name them."""
    from geos2vec.accessor import DaskS2VecAccessor, S2VecAccessor
    from geos2vec.partitioned import count_features_dask

    assert _keywords(S2VecAccessor.embed) == _keywords(geos2vec.embed, drop=("gdf",))
    raster = {p.name: p for p in inspect.signature(geos2vec.rasterize).parameters.values()}
    for name, kind, default in _keywords(S2VecAccessor.rasterize, drop=("roads",)):
        assert kind is inspect.Parameter.KEYWORD_ONLY and raster[name].kind is kind and raster[name].default == default
    level = _defaults(geos2vec.count_features)["level"]
    for meth in (S2VecAccessor.cell_ids, S2VecAccessor.tokens, S2VecAccessor.cells):
        assert _defaults(meth) == {"level": level, "errors": "raise"} == {
            "level": level, "errors": _defaults(geos2vec.count_features)["errors"]}
    # count_features_dask: count_features' parameters and defaults, plus split_every
    dask = {n: (k, d) for n, k, d in _keywords(count_features_dask) if n != "split_every"}
    assert dask == {n: (k, d) for n, k, d in _keywords(geos2vec.count_features)}
    for meth in (S2VecAccessor.count_features, DaskS2VecAccessor.count_features, DaskS2VecAccessor.embed):
        assert any(p.kind is p.VAR_KEYWORD for p in inspect.signature(meth).parameters.values())


# ------------------------------------------------------------------ seed=
def test_seed_is_checked_as_the_cli_and_the_model_config_check_it(small):
    """``--seed -1`` and ``S2VecConfig(seed=-1)`` say "seed must be a non-negative integer"; ``evaluate(seed=-1)``
    said NumPy's "expected non-negative integer", ``seed=None`` "object of type 'NoneType' has no len()", and
    ``run_suite`` said so only after loading its tasks."""
    from geos2vec.evaluate import blocked_splits, evaluate, holdout_splits, random_splits, region_splits, run_suite
    from geos2vec.model import S2VecConfig

    _, table, _ = small
    y = pd.Series(np.arange(len(table), dtype=float), index=table.index)
    for bad in (None, -1, 1.5, "1", True):
        with pytest.raises(InvalidInputError, match="seed must be a non-negative integer"):
            S2VecConfig(seed=bad)
        with pytest.raises(InvalidInputError, match="seed must be a non-negative integer"):
            evaluate(y, {"counts": table}, n_splits=2, probes="ridge", seed=bad, progress=False)
        with pytest.raises(InvalidInputError, match="seed must be a non-negative integer"):
            run_suite(("ca-housing",), model=None, seed=bad, data_dir="/nonexistent")
        for split in (lambda: random_splits(30, 2, seed=bad), lambda: blocked_splits(np.arange(30) % 10, 2, seed=bad),
                      lambda: holdout_splits(np.arange(30) < 10, 2, seed=bad),
                      lambda: region_splits(np.arange(30) % 2, 2, seed=bad)):
            with pytest.raises(InvalidInputError, match="seed must be a non-negative integer"):
                split()
    a = evaluate(y, {"counts": table}, n_splits=2, probes="ridge", seed=np.int64(3), progress=False)
    b = evaluate(y, {"counts": table}, n_splits=2, probes="ridge", seed=3, progress=False)
    pd.testing.assert_frame_equal(a.scores, b.scores)
    for x, y_ in zip(random_splits(30, 2, seed=np.int64(3)), random_splits(30, 2, seed=3)):
        for p, q in zip(x, y_):
            np.testing.assert_array_equal(p, q)


def test_one_function_under_two_names_has_one_signature():
    """``geos2vec.load_model()`` loads the bundled model; ``geos2vec.model.load_model()`` raised "missing 1
    required positional argument: 'path'"."""
    from geos2vec import model as model_pkg

    assert inspect.signature(geos2vec.load_model) == inspect.signature(model_pkg.load_model)
    a, b = geos2vec.load_model(), model_pkg.load_model()
    assert a.channels == b.channels and a.embedding_dim == b.embedding_dim == 256
    assert _defaults(geos2vec.load_model)["path"] == _defaults(geos2vec.embed)["model"] == "default"


def test_a_path_object_gets_the_hint_a_path_string_gets(small):
    """``count_features("pois.parquet")`` says "(a path: geos2vec.io.read_pois(path) reads it)"; the same file as
    a ``pathlib.Path`` got no hint (a path is ``str | os.PathLike`` everywhere else)."""
    import pathlib

    pois, table, model = small
    for path in ("pois.parquet", pathlib.Path("pois.parquet")):
        for call in (lambda: geos2vec.count_features(path), lambda: geos2vec.embed(pois.iloc[:3], path, model=model),
                     lambda: geos2vec.embed_cells(table.index[:3], path, model=model),
                     lambda: geos2vec.cell_embeddings(path, model=model)):
            with pytest.raises(TypeError, match=r"\(a path: .*read_pois"):
                call()
    for path in ("my_tags.csv", pathlib.Path("my_tags.csv")):  # an ontology file: how to make it a dict
        with pytest.raises(ValueError, match=r"for a file: dict\(zip\(df\['tag'\], df\['channel'\]\)\)"):
            geos2vec.load_ontology(path)
        with pytest.raises(ValueError, match="for a file"):
            geos2vec.count_features(pois, ontology=path)


def test_cli_synopses_in_the_docs_show_the_defaults(cli):
    """``[--n-splits 20]`` in a docs synopsis is the flag's default (a value list such as ``a|b`` is not)."""
    from conftest import ROOT

    checked, wrong = 0, []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for block in re.findall(r"```text\n(.*?)```", page.read_text(), flags=re.S):
            for command, body in re.findall(r"^geos2vec (\w+)(.*?)(?=^geos2vec |\Z)", block, flags=re.S | re.M):
                flags = cli.get(command, {})
                for flag, shown in re.findall(r"\[(--[\w-]+) ([^\]\[\s|]+)\]", body):
                    action = flags.get(flag[2:].replace("-", "_"))
                    if action is None or action.default in (None, [], False) or shown.isupper():
                        continue
                    checked += 1
                    default = str(action.default)
                    try:
                        same = [float(v) for v in shown.split(",")] == [float(v) for v in default.split(",")]
                    except ValueError:
                        same = shown.rstrip("/") == default
                    if not same:
                        wrong.append(f"{page.name}: geos2vec {command} {flag} {shown}, the default is {default}")
    assert checked >= 6
    assert not wrong, "\n".join(wrong)


def test_model_embed_takes_progress_as_its_other_methods_and_functions_do(small, capsys):
    """``S2VecModel.evaluate(progress=...)`` and ``geos2vec.embed(progress=...)``, but ``S2VecModel.embed`` took only
    ``verbose=``: ``model.embed(da, progress=False)`` was a TypeError."""
    _, table, model = small
    da = geos2vec.rasterize(table).isel(image=[0])
    ref = model.embed(da, verbose=False)
    capsys.readouterr()
    got = model.embed(da, progress=False)
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(got.values, ref.values)
    model.embed(da, progress=True)  # the bar shows when asked for
    assert "embedding" in capsys.readouterr().err
    with pytest.raises(TypeError, match="not both"):
        model.embed(da, progress=False, verbose=False)
    with pytest.raises(InvalidInputError, match="progress must be True, False or None"):
        model.embed(da, progress="no")


# ------------------------------------------------------------------ coverage=
def test_evaluation_coverage_takes_what_count_features_coverage_takes(small):
    """``count_features(coverage=...)`` takes WKT and a ``.osm.pbf`` path; the evaluation's ``coverage=``
    (covered_mask, log1p_counts, smoothed_counts, standard_methods) refused both ("got the string ...")."""
    from geos2vec.coverage import pbf_bounds
    from geos2vec.evaluate import covered_mask, log1p_counts

    _, table, _ = small
    poly = shapely.box(-118.30, 34.00, -118.20, 34.10)
    cells = table.index.to_numpy(np.uint64)
    lat, lng = geos2vec.cell_to_latlng(cells)
    ref = (lng >= -118.30) & (lng <= -118.20) & (lat >= 34.0) & (lat <= 34.1)  # cell centres in the box
    assert 0 < ref.sum() < len(cells)
    np.testing.assert_array_equal(covered_mask(cells, poly.wkt), ref)
    np.testing.assert_array_equal(covered_mask(cells, poly), ref)
    pd.testing.assert_frame_equal(log1p_counts(table, coverage=poly.wkt), log1p_counts(table, coverage=poly))
    if _PBF.exists():
        x0, y0, x1, y1 = pbf_bounds(_PBF)
        grid = geos2vec.latlng_to_cell(*np.meshgrid(np.linspace(y0 - 0.2, y1 + 0.2, 12),
                                                    np.linspace(x0 - 0.2, x1 + 0.2, 12)), 12).ravel()
        glat, glng = geos2vec.cell_to_latlng(grid)
        inside = (glng >= x0) & (glng <= x1) & (glat >= y0) & (glat <= y1)
        assert 0 < inside.sum() < len(grid)
        for form in (str(_PBF), _PBF):
            np.testing.assert_array_equal(covered_mask(grid, form), inside)
    with pytest.raises(InvalidInputError, match="count_features"):
        covered_mask(cells, "infer")  # the hull of counted POIs: there are none here


def test_flags_the_docs_give_a_command_exist(cli):
    """``geos2vec <command> ... --flag`` in docs/*.md and README.md names a flag that command has."""
    from conftest import ROOT

    options = {name: {o for a in flags.values() for o in a.option_strings} for name, flags in cli.items()}
    checked, wrong = 0, []
    for page in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        for command, rest in re.findall(r"geos2vec (\w+)\b([^`\n]*)", page.read_text()):
            for flag in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", rest) if command in options else ():
                checked += 1
                if flag not in options[command]:
                    wrong.append(f"{page.name}: geos2vec {command} {flag}")
    assert checked >= 30
    assert not wrong, "\n".join(wrong)


def test_run_suite_checks_its_options_before_loading_tasks_as_the_cli_does():
    """``geos2vec evaluate --splits Random`` is refused at once; ``run_suite(splits="Random")`` (or a bad
    ``probes``, ``n_splits``, ``fusion``, ``target_scale``, ``sweep``, ``block_level``, location parameters)
    failed only when the first task, loaded and embedded, reached ``evaluate``. A missing data folder is
    the error when the options are good."""
    from geos2vec.evaluate import evaluate, run_suite

    bad = [dict(splits="Random"), dict(splits=None), dict(probes="Ridge"), dict(probes=None), dict(n_splits=0),
           dict(fusion="Concat"), dict(target_scale="minmax "), dict(sweep={"lr": 0.1}), dict(max_epochs=0),
           dict(block_level=31), dict(location="nowhere"), dict(location_params={"frequency_num": 0})]
    for kw in bad:
        with pytest.raises(InvalidInputError):
            run_suite(("ca-housing",), model=None, data_dir="/nonexistent", **kw)
    with pytest.raises(FileNotFoundError):
        run_suite(("ca-housing",), model=None, data_dir="/nonexistent", splits=("random", "blocked"),
                  probes="ridge", fusion="project", location="sphereC", location_params={"frequency_num": 4})
    # evaluate's own messages, which the suite's match
    y = pd.Series(np.arange(30.0), index=geos2vec.latlng_to_cell(np.linspace(34, 34.3, 30), np.full(30, -118.2), 12))
    with pytest.raises(InvalidInputError, match="probes must be a non-empty subset"):
        evaluate(y, {"m": pd.DataFrame({"a": np.ones(30)}, index=y.index)}, probes="Ridge")


def test_join_labels_takes_lon_as_the_cli_and_holdout_mask_name_it():
    """``--lat``/``--lon`` on the command line and ``holdout_mask(lon=...)``; ``join_labels(lon="x")`` was a
    TypeError (it said ``lng=``)."""
    from geos2vec.evaluate import join_labels

    labels = pd.DataFrame({"y": [1.0, 3.0, 5.0], "north": [34.05, 34.05, 40.7], "east": [-118.25, -118.25, -74.0]})
    got = join_labels(labels, "y", lat="north", lon="east")
    pd.testing.assert_frame_equal(got, join_labels(labels, "y", lat="north", lng="east"))
    cells = geos2vec.latlng_to_cell(labels["north"].to_numpy(), labels["east"].to_numpy(), 12)
    assert sorted(got.index.tolist()) == sorted(set(cells.tolist()))
    assert got.loc[cells[0], "y"] == 2.0 and got.loc[cells[0], "n_points"] == 2  # the median of 1 and 3
    with pytest.raises(InvalidInputError, match="not both"):
        join_labels(labels, "y", lat="north", lng="east", lon="east")


def test_model_embed_takes_keras_verbose_values(small, capsys):
    """``S2VecModel.embed(verbose=2)`` / ``verbose="auto"`` (the values ``fit`` takes) worked before fbe523c and were
    then refused as "progress must be ..."; they mean a bar (2) and the option's default ("auto")."""
    _, table, model = small
    da = geos2vec.rasterize(table)
    ref = model.embed(da, verbose=False)
    capsys.readouterr()
    np.testing.assert_array_equal(model.embed(da, verbose=2).values, ref.values)
    assert "embedding" in capsys.readouterr().err
    model.embed(da, verbose=0)
    assert capsys.readouterr().err == ""
    with geos2vec.set_options(progress=False):
        model.embed(da, verbose="auto")
    assert capsys.readouterr().err == ""
    with pytest.raises(InvalidInputError, match="verbose/progress must be True, False or None"):
        model.embed(da, verbose=-1)
