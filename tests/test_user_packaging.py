"""Publishing to PyPI: the project page's links, the package's URLs, the built copy, the files the wheel must hold.

setup.py calls ``setup()`` when run; these tests run it with ``setuptools.setup`` replaced by a recorder, so
nothing is built. (Building wheels and installing them in fresh environments was checked by hand: too slow here.)
"""

from __future__ import annotations

import fnmatch
import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPO = "https://github.com/geos2vec/geos2vec"
LINK = re.compile(r"(!?)\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture()
def setup_py(monkeypatch):
    """``(namespace of setup.py, keyword arguments it passes to setup())``."""
    import setuptools

    seen: dict = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: seen.update(kw))
    ns = runpy.run_path(str(ROOT / "setup.py"), run_name="setup_under_test")
    return ns, seen


def _links(text: str) -> list[str]:
    return [m.group(2) for m in LINK.finditer(FENCE.sub("", text))]


def test_pypi_description_is_the_readme_with_links_into_the_repository(setup_py):
    _, kw = setup_py
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    text = kw["long_description"]
    assert kw["long_description_content_type"] == "text/markdown"
    # by hand: the README's first link, and one with an anchor
    assert "([docs/embed.md](https://github.com/geos2vec/geos2vec/blob/main/docs/embed.md))" in text
    assert "[seams](https://github.com/geos2vec/geos2vec/blob/main/docs/embed.md#seams)" in text
    before, after = _links(readme), _links(text)
    assert len(before) == len(after) > 10
    for old, new in zip(before, after):
        if re.match(r"https?://", old):
            assert new == old
            continue
        assert new == f"{REPO}/blob/main/{old}"
        assert (ROOT / old.split("#")[0]).is_file(), old  # the page it leads to is in the repository
    # nothing else changes: the text with the links put back is the README
    assert LINK.sub(lambda m: m.group(0).replace(f"{REPO}/blob/main/", ""), text) == readme
    assert FENCE.findall(text) == FENCE.findall(readme)


def test_long_description_leaves_urls_anchors_and_code_alone(setup_py):
    ns, _ = setup_py
    text = ("See [a](docs/a.md), [b](./docs/b.md#x), [web](https://example.org/a.md), [top](#use), "
            "[mail](mailto:x@example.org) and ![map](docs/map.png).\n\n"
            "```python\nf = d[\"k\"](docs/not_a_link.md)\n```\n\n[ref]: docs/ref.md\n")
    out = ns["long_description"](text)
    assert out == (f"See [a]({REPO}/blob/main/docs/a.md), [b]({REPO}/blob/main/docs/b.md#x), "
                   "[web](https://example.org/a.md), [top](#use), [mail](mailto:x@example.org) and "
                   f"![map]({REPO}/raw/main/docs/map.png).\n\n"
                   "```python\nf = d[\"k\"](docs/not_a_link.md)\n```\n\n"
                   f"[ref]: {REPO}/blob/main/docs/ref.md\n")


def test_project_urls_name_the_repository_and_its_pages(setup_py):
    ns, _ = setup_py
    project = _pyproject()["project"]
    urls = project["urls"]
    mkdocs_repo = re.search(r"^repo_url:\s*(\S+)", (ROOT / "mkdocs.yml").read_text(), re.M).group(1)
    assert urls["Source"] == ns["REPO"] == mkdocs_repo == REPO
    for name in ("Documentation", "Changelog"):
        assert urls[name].startswith(f"{REPO}/blob/main/")
        assert (ROOT / urls[name].removeprefix(f"{REPO}/blob/main/")).is_file(), name
    # the README reaches PyPI through setup.py (a static readme would ship the relative links)
    assert "readme" in project["dynamic"] and "readme" not in project


def test_build_starts_from_a_fresh_copy_of_the_package(setup_py, tmp_path, monkeypatch):
    """Files of an earlier build left in build/lib (a removed module, an old numba cache) stay out of the wheel."""
    from setuptools.command.build_py import build_py
    from setuptools.dist import Distribution

    ns, _ = setup_py
    built = tmp_path / "lib" / "geos2vec"
    (built / "__pycache__").mkdir(parents=True)
    (built / "removed_module.py").write_text("x = 1\n")
    (built / "__pycache__" / "_gone.kernel-1.py311.nbi").write_bytes(b"old")

    def fake_build(self):  # what setuptools copies: the current sources
        (Path(self.build_lib) / "geos2vec").mkdir(parents=True, exist_ok=True)
        (Path(self.build_lib) / "geos2vec" / "cells.py").write_text("y = 2\n")

    monkeypatch.setattr(build_py, "run", fake_build)
    monkeypatch.setenv("GEOS2VEC_PRECOMPILE", "0")
    cmd = ns["BuildPyWithKernels"](Distribution())
    cmd.build_lib = str(tmp_path / "lib")
    cmd.run()
    assert sorted(p.relative_to(built).as_posix() for p in built.rglob("*")) == ["cells.py"]

    # an editable build's folder is left alone
    (built / "keep.py").write_text("")
    cmd.editable_mode = True
    cmd.run()
    assert (built / "keep.py").is_file()


def _package_data_matches(relpath: str, globs: list[str]) -> bool:
    """Whether setuptools' package-data globs (``*`` within a folder, ``**`` across folders) take ``relpath``."""
    for glob in globs:
        pattern = re.escape(glob).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
        if re.fullmatch(pattern, relpath):
            return True
    return False


def test_package_data_holds_every_file_the_code_opens():
    from geos2vec.io import crosswalk
    from geos2vec import ontology

    globs = _pyproject()["tool"]["setuptools"]["package-data"]["geos2vec"]
    pkg = ROOT / "geos2vec"
    needed = ["py.typed", "pretrained/MODEL_CARD.md", "pretrained/config.json", "pretrained/weights.npz",
              "pretrained/feature_stats.json", "pretrained/metadata.json", "data/sample/los_angeles_pois.parquet",
              "data/sample/los_angeles_roads.parquet"]
    needed += [f"data/{name}" for name in ontology._VERSIONS.values()]
    needed += [f"data/{name}" for name in crosswalk._CROSSWALKS.values()]
    for rel in needed:
        assert (pkg / rel).is_file(), rel
        assert _package_data_matches(rel, globs), rel
    # and nothing of a developer's tree: no caches, no tests, no large stray files in the data folders
    for folder in ("data", "pretrained"):
        for path in (pkg / folder).rglob("*"):
            rel = path.relative_to(pkg).as_posix()
            if path.is_file() and _package_data_matches(rel, globs):
                assert not fnmatch.fnmatch(rel, "*__pycache__*") and path.stat().st_size < 20_000_000, rel


# (sys_platform, platform_machine) -> the TensorFlow distribution with wheels there (PyPI's files, 2026-11-28:
# tensorflow-cpu is built for x86-64 only; tensorflow also for macOS arm64 and Linux aarch64)
_PLATFORMS = {("linux", "x86_64"): "tensorflow-cpu", ("win32", "AMD64"): "tensorflow-cpu",
              ("darwin", "x86_64"): "tensorflow-cpu", ("darwin", "arm64"): "tensorflow",
              ("linux", "aarch64"): "tensorflow"}


@pytest.mark.parametrize("platform", sorted(_PLATFORMS))
def test_model_cpu_extra_installs_a_tensorflow_that_has_wheels_on_the_platform(platform):
    from packaging.requirements import Requirement

    env = {"sys_platform": platform[0], "platform_machine": platform[1], "extra": "model-cpu"}
    reqs = [Requirement(r) for r in _pyproject()["project"]["optional-dependencies"]["model-cpu"]]
    chosen = sorted(str(r.name) for r in reqs if r.marker is None or r.marker.evaluate(env))
    assert chosen == sorted(["keras", _PLATFORMS[platform]])
    assert all(str(r.specifier) == ">=2.16" for r in reqs if r.name.startswith("tensorflow"))


def _manifest_files() -> set[str]:
    """The files MANIFEST.in adds to the sdist (its ``graft``, ``include`` and ``global-exclude`` lines)."""
    manifest = ROOT / "MANIFEST.in"
    assert manifest.is_file(), "no MANIFEST.in: the sdist would hold tests/test*.py without conftest.py"
    files: set[str] = set()
    for line in manifest.read_text().splitlines():
        words = line.split("#")[0].split()
        if not words:
            continue
        command, args = words[0], words[1:]
        if command == "graft":
            files |= {p.relative_to(ROOT).as_posix() for a in args for p in (ROOT / a).rglob("*") if p.is_file()}
        elif command == "include":
            files |= {a for a in args if (ROOT / a).is_file()}
        elif command == "global-exclude":
            files = {f for f in files if not any(fnmatch.fnmatch(f.rsplit("/", 1)[-1], a) for a in args)}
        else:
            raise AssertionError(f"MANIFEST.in command this test does not know: {line}")
    return files


def test_sdist_holds_the_whole_test_suite_and_the_files_it_reads():
    files = _manifest_files()
    # the test suite's helpers: without them 30 test modules of an sdist fail to import
    assert {"tests/conftest.py", "tests/_http.py"} <= files
    assert {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("*.py")} <= files
    # what the tests read beside the package (tests/test_docs*.py, test_cli.py, the script tests)
    assert {"CHANGELOG.md", "mkdocs.yml", "docs/index.md", "benchmarks/RESULTS.md", "scripts/train_gpu.py"} <= files
    assert {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")} <= files
    # and no compiled leftovers of a developer's tree
    assert not [f for f in files if f.endswith((".pyc", ".nbi", ".nbc"))]


def test_gitignore_keeps_build_outputs_out_of_commits():
    """``mkdocs build`` (the docs extra) writes site/; ``python -m build`` build/ and dist/."""
    import subprocess

    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (an sdist)")
    paths = ["site/index.html", "build/lib/geos2vec/cells.py", "dist/geos2vec-0.3.0.tar.gz",
             "geos2vec/__pycache__/_s2.center_kernel_serial-1.py311.nbi"]
    out = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.split() == paths


def test_python_classifiers_agree_with_requires_python_and_the_lint_target():
    project, tool = _pyproject()["project"], _pyproject()["tool"]
    versions = sorted((int(c.split(".")[0][-1]), int(c.split(".")[1]))
                      for c in project["classifiers"] if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    assert versions == [(3, 10), (3, 11), (3, 12), (3, 13)]  # each checked by hand: the wheel's demo, same output
    assert project["requires-python"] == ">={}.{}".format(*versions[0])
    assert tool["ruff"]["target-version"] == "py{}{}".format(*versions[0])
    try:
        from trove_classifiers import classifiers as known
    except ModuleNotFoundError:
        known = None
    if known is not None:
        assert set(project["classifiers"]) <= known


def test_pytest_without_xdist_says_which_plugin_is_missing(tmp_path):
    """addopts passes ``-n``: without pytest-xdist, pytest must name the missing plugin, not fail on ``-n``."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # as if pytest-xdist were not installed
    out = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider",
                          str(root / "tests" / "test_lint.py")], cwd=root, env=env, capture_output=True,
                         text=True, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "Missing required plugins: pytest-xdist" in text, text[-2000:]
    assert "unrecognized arguments" not in text
