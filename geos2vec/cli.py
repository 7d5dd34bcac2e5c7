"""The ``geos2vec`` command line.

Sub-commands are registered by the stage modules that own them; each module
exposes ``add_parser(subparsers)`` which sets ``func`` on its parser.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import re
import sys
import warnings

# module path and one-line help of each sub-command; a module is imported only when its command runs (or its
# own --help is asked for), so `geos2vec --help` and `geos2vec cells` never pay for TensorFlow or the evaluation
_COMMANDS = {
    "cells": ("geos2vec.cli_cells", "S2 cell ids and tokens of lat/lng pairs"),
    "features": ("geos2vec.cli_features", "count POIs and roads per S2 cell (OSM .pbf or POI/road files -> Parquet)"),
    "embed": ("geos2vec.cli_embed", "add S2Vec embedding columns to a file of points/lines/polygons"),
    "demo": ("geos2vec.demo", "embed the bundled Los Angeles sample; write a table and a map"),
    "train": ("geos2vec.model.cli", "train an S2Vec masked autoencoder"),
    "precompile": ("geos2vec._precompile",
                   "compile the numba kernels into numba's cache (containers, read-only installs)"),
    "evaluate": ("geos2vec.cli_evaluate",
                 "downstream evaluation: tasks, spatial splits, strong baselines, ridge + MLP probes, report"),
}


# a comma-separated list of numbers that starts with a minus sign: a western box, "-118.5,34.0,-118.2,34.2"
_NUMBER_LIST = re.compile(r"^-\s*\d*\.?\d+(?:[eE][-+]?\d+)?(?:\s*,\s*[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)+$")


def _join_number_lists(argv: list[str]) -> list[str]:
    """``--opt -1,2,3,4`` -> ``--opt=-1,2,3,4``, so that boxes west of Greenwich can be written as they are.

    argparse reads a value that starts with ``-`` and is not a single number as an option of its own
    ("expected one argument").
    """
    out = []
    for arg in argv:
        if out and _NUMBER_LIST.match(arg) and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _version() -> str:
    """The imported package's version (an install's metadata may be older: an editable install, a source tree)."""
    from . import __version__

    return __version__


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr, ``geos2vec: warning: ...``.

    Python's default display added the file and the source line that raised it (``tables.append(count_features(
    ...))``), which means nothing to a command-line user; ``--debug`` keeps it.
    """
    print(f"geos2vec: warning: {message}", file=sys.stderr if file is None else file)


def _skip_exit_collection() -> None:
    """Spare the interpreter's garbage collections at exit, as the last exit handler (``gc.freeze``).

    Python collects its ~10^5 objects (pandas, geopandas, numba) several times while it shuts down: 0.3–1.6 s
    after every command, on the 2-core machine of ``benchmarks/RESULTS.md``, once the command's work is done.
    Frozen, they are left to the process' exit; every exit handler registered later (dask clusters, progress
    bars, logging) still runs first, and nothing a command writes depends on a collection (files are closed
    and renamed explicitly).
    """
    atexit.register(gc.freeze)


def main(argv=None) -> int:
    """Run the command line; user errors print ``geos2vec: error: ...`` (and a hint about ``--debug``), exit 1."""
    if argv is None:  # the program itself (the console script, ``python -m geos2vec``), not a call from Python
        _skip_exit_collection()
    argv = _join_number_lists(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    quiet = any(a.startswith("--q") and "--quiet".startswith(a) for a in argv)  # argparse takes --qu, --qui too
    if quiet:  # TensorFlow's C++ start-up lines too, if a step imports it
        from ._quiet_tf import quiet_tensorflow_import

        quiet_tensorflow_import()
    from .options import get_options, set_options

    try:
        # --quiet's bars off for the command only: main() called from Python (a notebook, a test) left them off
        # for the rest of the session; the option is restored whatever the command set
        with warnings.catch_warnings(), set_options(progress=False if quiet else get_options()["progress"]):
            if not debug:  # the default display is restored when the command returns
                warnings.showwarning = _show_warning
            return _main(argv)
    except KeyboardInterrupt:
        print("geos2vec: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError) as exc:
        if debug:
            raise
        print(f"geos2vec: error: {exc}{_extra_hint(exc)}", file=sys.stderr)
        print("(run again with --debug for the full traceback)", file=sys.stderr)
        return 1


def _extra_hint(exc) -> str:
    """``"; install it with pip install 'geos2vec[model]'"`` for a missing optional module, else ``""``.

    The extras are :data:`geos2vec._optional.EXTRAS`' (one table, pyproject.toml's optional-dependencies).
    """
    from ._optional import EXTRAS

    name = (getattr(exc, "name", None) or "").split(".")[0] if isinstance(exc, ModuleNotFoundError) else ""
    extra = EXTRAS.get(name)
    return f" (an optional dependency; install it with pip install 'geos2vec[{extra}]')" if extra else ""


def _main(argv) -> int:
    parser = argparse.ArgumentParser(prog="geos2vec", description="S2Vec embeddings of the built environment",
                                     epilog="--debug (anywhere): show full tracebacks instead of short error messages")
    parser.add_argument("--version", action="version", version=f"geos2vec {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    available = {}
    wanted = argv[0] if argv and argv[0] in _COMMANDS else None
    for name, (module, text) in _COMMANDS.items():
        if name != wanted:
            sub.add_parser(name, help=text)
            continue
        mod = importlib.import_module(module)
        mod.add_parser(sub)
        available[name] = mod
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
