"""ruff (pyflakes, pycodestyle, pydocstyle with numpy rules; configured in pyproject.toml) is clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    pytest.importorskip("ruff")
    exe = shutil.which("ruff") or sys.executable
    cmd = [exe, "check", "--no-cache", str(ROOT)] if exe != sys.executable else \
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_modules_stay_small():
    """Modules named for what they do, none over 500 lines (split by concern past that)."""
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines())
             for p in (ROOT / "geos2vec").rglob("*.py")}
    big = {k: v for k, v in sizes.items() if v > 500}
    assert not big, big


def test_public_modules_declare_all():
    """Every public module (not ``_private``, not a CLI entry module) says what it exports."""
    missing = []
    for p in (ROOT / "geos2vec").rglob("*.py"):
        rel = p.relative_to(ROOT)
        if any(part.startswith("_") and part != "__init__.py" for part in rel.parts) or "cli" in p.stem:
            continue
        if "\n__all__ = [" not in "\n" + p.read_text():
            missing.append(rel.as_posix())
    assert not missing, missing


def _module_imports(path: Path, name: str, is_pkg: bool, modules: set) -> set:
    """geos2vec modules imported when ``name`` is imported: module level, not in functions or TYPE_CHECKING."""
    import ast

    found = set()

    def target(level, module, alias):
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        if level:
            base = base[:len(base) - level + 1]
            prefix = ".".join(base + ([module] if module else []))
        else:
            prefix = module or ""
        return [m for m in (prefix, f"{prefix}.{alias}") if m in modules]

    def walk(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name in modules)
            elif isinstance(child, ast.ImportFrom):
                for a in child.names:
                    found.update(target(child.level, child.module, a.name))
            else:
                walk(child)

    walk(ast.parse(path.read_text()))
    found.discard(name)
    return found


def test_no_import_cycles():
    """The package's module-level imports form no cycle (a submodule may import its own package's names)."""
    paths = {}
    for p in (ROOT / "geos2vec").rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph = {m: _module_imports(p, m, p.name == "__init__.py", set(paths)) for m, p in paths.items()}
    assert graph["geos2vec.cells"] >= {"geos2vec._cells_core", "geos2vec.cell_neighbours"}  # the walk sees imports
    cycles, state, stack = [], {}, []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if u.startswith(v + "."):  # a submodule importing from its parent package
                continue
            if state.get(v) == 1:
                cycles.append(stack[stack.index(v):] + [v])
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, [" -> ".join(c) for c in cycles]


def test_refusals_raise_geos2vec_error_classes():
    """Every deliberate refusal raises a ``geos2vec.errors`` class (``InvalidInputError`` subclasses
    ``ValueError``, ``InvalidTypeError`` ``TypeError``), so callers can catch geos2vec's errors apart from the
    libraries' underneath: no ``raise ValueError(...)`` / ``raise TypeError(...)`` in the package."""
    import ast

    # the Keras model's own modules import only keras and NumPy (tests/test_backends.py: they train where
    # geos2vec's other dependencies are absent), so they cannot import geos2vec.errors
    standalone = {"geos2vec/model/layers.py", "geos2vec/model/mae.py"}
    bare = []
    for p in sorted((ROOT / "geos2vec").rglob("*.py")):
        if p.relative_to(ROOT).as_posix() in standalone:
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                    isinstance(node.exc.func, ast.Name) and node.exc.func.id in ("ValueError", "TypeError"):
                bare.append(f"{p.relative_to(ROOT).as_posix()}:{node.lineno} {node.exc.func.id}")
    assert not bare, "\n".join(bare)
