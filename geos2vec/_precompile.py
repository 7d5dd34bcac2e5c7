"""Compile geos2vec's numba kernels ahead of their first call, into numba's cache.

A fresh install otherwise compiles each kernel the first time it runs: ~8 s of a first ``geos2vec demo``.
Building the package from source (``pip install .``, ``python -m build``) runs this module on the built copy
(``setup.py``; ``GEOS2VEC_PRECOMPILE=0`` turns it off), so the kernels arrive compiled in the package's
``__pycache__`` folders, the place numba looks first. numba keys every cached kernel on its bytecode, the
numba version, the Python version and the CPU (name and features), and since numba 0.68 on the source
file's content rather than its time stamp (older numba: the install's new file times void the shipped
cache). On another CPU or numba version the shipped code is not used and the kernels compile at their first
call, as without it. Nothing here changes what a kernel computes.

Run it yourself where the package folder is read-only at run time (a container image), with the same
``NUMBA_CACHE_DIR`` the programs will use::

    geos2vec precompile        # or: python -m geos2vec._precompile

Which kernels and signatures: those the public functions call on small and large inputs (the serial and
``parallel=True`` twins of :class:`geos2vec._s2.SizedKernel`), with the argument types they pass.
``tests/test_precompile.py`` runs typical first calls after this module and checks that nothing compiles.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

_PACKAGES = ("geos2vec", "geos2vec.raster", "geos2vec.model")
#: the commands' description: the docstring's first line, which ``python -OO`` (PYTHONOPTIMIZE=2) strips
_SUMMARY = "Compile geos2vec's numba kernels ahead of their first call, into numba's cache."


def _array(dtype, ndim=1, layout="C"):
    from numba import types

    return types.Array(getattr(types, dtype), ndim, layout)


def _signatures() -> list[tuple[str, str, str, list[tuple]]]:
    """``(module, kernel, twins, [argument types, ...])``; twins: ``"both"`` for a SizedKernel, else ``"one"``."""
    from numba import types

    i8, f8_1, i8_1, u8_1 = types.int64, _array("float64"), _array("int64"), _array("uint64")
    cells_in = (u8_1,)
    s2 = [
        ("latlng_to_cell_kernel", [(f8_1, f8_1, i8, i8_1, u8_1)]),
        ("xyz_to_cell_kernel", [(f8_1, f8_1, f8_1, i8, i8_1, u8_1)]),
        ("parent_kernel", [cells_in + (i8, u8_1)]),
        ("level_kernel", [cells_in + (i8_1,)]),
        ("is_valid_kernel", [cells_in + (_array("boolean"),)]),
        ("children_kernel", [cells_in + (i8, _array("uint64", 2))]),
        ("center_kernel", [cells_in + (i8_1, f8_1, f8_1)]),
        ("vertices_kernel", [cells_in + (i8_1, _array("float64", 2), _array("float64", 2))]),
        ("face_ij_kernel", [cells_in + (i8_1, i8_1, i8_1, i8_1)]),
        ("face_ij_to_cell_kernel", [(i8_1, i8_1, i8_1, i8, i8_1, u8_1)]),
    ]
    table = [("geos2vec._s2", name, "both", sigs) for name, sigs in s2]
    table.append(("geos2vec.cell_neighbours", "_grid_disk_kernel", "both",
                  [cells_in + (i8, i8, i8_1, i8_1, _array("int64", 3), _array("uint64", 2))]))
    table += [
        ("geos2vec._cover", "cover_lines_kernel", "one", [(f8_1, f8_1, i8_1, i8_1, i8, i8, i8_1)]),
        ("geos2vec._cover", "dense_rows_kernel", "one", [(u8_1,)]),
        ("geos2vec._cover", "scatter_count_kernel", "one", [(i8_1, i8_1, _array("int32"), i8, _array("int64", 2))]),
        ("geos2vec._cover", "reduce_numeric_kernel", "one", [(i8_1, i8_1, f8_1, i8, i8)]),
        ("geos2vec._value_sums", "_sums_kernel", "one", [(i8_1, _array("float64", 2), i8, types.boolean)]),
    ]
    scatter = []
    for dtype in ("int64", "int32", "float32", "float64"):
        for layout in ("C", "F"):
            scatter.append((_array(dtype, 2), i8_1, _array(dtype, 2, layout)))
    table.append(("geos2vec.raster._kernels", "scatter_rows", "one", scatter))
    # the NumPy encoder's ufuncs (numba.vectorize with signatures) compile when their module is imported
    table.append(("geos2vec.model.numpy_encoder", "", "one", []))
    return table


def _targets(parallel: bool) -> list[tuple[str, object, list[tuple]]]:
    out = []
    for module, name, twins, sigs in _signatures():
        mod = importlib.import_module(module)
        if not name:
            out.append((module, None, []))
            continue
        kernel = getattr(mod, name)
        targets = [kernel]
        if twins == "both":
            targets = [kernel.serial] + ([kernel.parallel] if parallel else [])
            if len(out) % 2:  # alternate the (cheap) serial and (costly) parallel twins between workers
                targets.reverse()
        out += [(module, target, sigs) for target in targets]
    return out


def compile_kernels(*, parallel: bool = True, verbose: bool = False, part: tuple[int, int] = (0, 1)) -> list[str]:
    """Compile (or load from numba's cache) every kernel signature geos2vec's public functions use.

    Parameters
    ----------
    parallel : bool
        Also the ``parallel=True`` twins (used for inputs of 32,768 elements and more); they take most of
        the time.
    verbose : bool
        Print each kernel and its time.
    part : (k, n)
        Only every ``n``-th kernel, starting at the ``k``-th (``n`` processes share the work).

    Returns
    -------
    list of str
        ``"module.kernel"`` of every kernel compiled or loaded.
    """
    k, n = part
    done = []
    for module, target, sigs in _targets(parallel)[k::n]:
        if target is None:
            done.append(module)
            continue
        t0 = time.perf_counter()
        for sig in sigs:
            target.compile(sig)
        label = f"{module}.{target.py_func.__qualname__}"
        done.append(label)
        if verbose:
            print(f"{time.perf_counter() - t0:6.2f} s  {label} ({len(sigs)} signature(s))", flush=True)
    return done


def _stub_packages(package_dir: Path) -> None:
    """Make ``geos2vec`` (and its sub-packages) importable without running their ``__init__``.

    The build environment of a wheel has numba and NumPy but not pandas, geopandas or xarray, which the
    package's ``__init__`` imports; the kernel modules need only numba and NumPy.
    """
    import types

    for name in _PACKAGES:
        parts = name.split(".")[1:]
        mod = types.ModuleType(name)
        mod.__path__ = [str(package_dir.joinpath(*parts))]
        sys.modules[name] = mod


def _run_workers(args: argparse.Namespace, argv: list[str]) -> list[str]:
    """Run ``--jobs`` worker processes, each compiling every ``jobs``-th kernel.

    numba caches each kernel in its own files, so the workers do not collide.
    """
    import subprocess

    argv = list(argv or [])
    if args.package_dir:  # build time: the workers also import the kernels without the package __init__
        code = _STUB_CODE
        head = [sys.executable, "-c", code, str(Path(args.package_dir).resolve())]
    else:
        head = [sys.executable, "-m", "geos2vec._precompile"]
    procs = [subprocess.Popen(head + argv + ["--part", f"{k}/{args.jobs}"], stdout=subprocess.PIPE, text=True)
             for k in range(args.jobs)]
    done = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"geos2vec._precompile: a worker failed (exit status {proc.returncode})")
        done += [line for line in out.splitlines() if line.strip()]
    if not args.quiet:
        print("\n".join(sorted(done)), flush=True)
    return done


#: ``python -c`` code that imports this module from a package folder (``sys.argv[1]``) without running the
#: package's ``__init__`` and calls :func:`main` with the remaining arguments (setup.py uses it).
_STUB_CODE = ("import sys, types; pkg = sys.argv[1]; m = types.ModuleType('geos2vec'); m.__path__ = [pkg]; "
              "sys.modules['geos2vec'] = m; import geos2vec._precompile as p; "
              "sys.exit(p.main(['--package-dir', pkg] + sys.argv[2:]))")


def _positive(text: str) -> int:
    """``--jobs``: a positive whole number (0 or -2 ran serially without a word)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--jobs must be a positive whole number of processes, got {text!r}")
    return value


def _arguments(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    ap.add_argument("--serial-only", action="store_true", help="skip the parallel twins (faster)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--jobs", type=_positive, default=min(2, os.cpu_count() or 1),
                    help="processes that share the work (default: 2, or 1 on a one-core machine)")
    ap.add_argument("--package-dir", help=argparse.SUPPRESS)  # build time: the built copy, without its __init__
    ap.add_argument("--part", help=argparse.SUPPRESS)  # K/N: one of --jobs worker processes
    return ap


def add_parser(subparsers) -> argparse.ArgumentParser:
    """``geos2vec precompile``: the same as ``python -m geos2vec._precompile``."""
    p = _arguments(subparsers.add_parser(
        "precompile", help="compile the numba kernels into numba's cache (containers, read-only installs)",
        description=_SUMMARY))
    p.set_defaults(func=lambda args: _run(args, ["--serial-only"] * args.serial_only + ["--quiet"] * args.quiet
                                          + ["--jobs", str(args.jobs)]))
    return p


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m geos2vec._precompile [--serial-only] [--quiet] [--jobs N]``."""
    ap = _arguments(argparse.ArgumentParser(prog="python -m geos2vec._precompile",
                                            description=_SUMMARY))
    argv = list(sys.argv[1:] if argv is None else argv)
    return _run(ap.parse_args(argv), argv)


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    if args.package_dir:
        _stub_packages(Path(args.package_dir).resolve())
    from . import _numba_cache

    _numba_cache.ensure_once()
    if _numba_cache.REJECTED:  # compiling elsewhere would report success and leave the programs' cache empty
        from .errors import InvalidInputError

        raise InvalidInputError(f"NUMBA_CACHE_DIR={_numba_cache.REJECTED!r} is not a writable folder; make it "
                                "writable (or choose another) and run geos2vec precompile again")
    t0 = time.perf_counter()
    if args.part:  # a worker: one line per kernel for the parent to count (and print unless --quiet)
        k, n = (int(x) for x in args.part.split("/"))
        for label in compile_kernels(parallel=not args.serial_only, verbose=False, part=(k, n)):
            print(label, flush=True)
        return 0
    if args.jobs <= 1:
        done = compile_kernels(parallel=not args.serial_only, verbose=not args.quiet)
    else:
        done = _run_workers(args, argv)
    if not args.quiet:
        print(f"geos2vec: {len(done)} kernels ready in {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
