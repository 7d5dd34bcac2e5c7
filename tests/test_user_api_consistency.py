"""A user who learned one geos2vec function expects the others to behave the same way.

The same concept (``level``, ``model``, ``mode``, ``progress``, ``prefix``, an ``area``, a category column) has
the same name, default, accepted values and error class everywhere: in the functions, the ``.s2vec`` accessor,
the docstrings and the command line. These tests compare them by introspection, so that drift fails here.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import warnings

import numpy as np
import pytest

import geos2vec


def _quiet(f, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kw)


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
