"""The Python blocks of the docs pages this suite owns run as written (from the repository root).

Each page's blocks run in order in one namespace, as a reader would paste them. Pages whose blocks read
``../shared/data`` are skipped where it is absent.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/evaluate.md", "docs/data.md", "docs/model.md", "docs/embed.md", "docs/raster.md",
         "docs/osm.md", "docs/large_areas.md", "docs/features.md", "docs/cells.md"]


def test_every_docs_page_with_python_blocks_is_run():
    """Every Python block in README.md and docs/ is run by the tests: no page is left out of PAGES."""
    pages = {"README.md"} | {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    with_blocks = {p for p in pages if python_blocks(ROOT / p)}
    assert with_blocks <= set(PAGES), sorted(with_blocks - set(PAGES))


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), re.S | re.M)


@pytest.mark.parametrize("page", PAGES)
def test_docs_python_blocks_run(page, shared_data, monkeypatch, tmp_path, request):
    blocks = python_blocks(ROOT / page)
    assert blocks, f"{page} has no python block"
    # run where files the blocks write cannot land in the repository; ../shared/data resolves as from the root
    work = tmp_path / "repo"
    work.mkdir()
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    monkeypatch.chdir(work)
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    save = Figure.savefig
    saved = []

    def to_tmp(self, fname, *args, **kwargs):  # figures the docs write go to a temporary folder, not the repo
        saved.append(Path(fname).name)
        return save(self, work / Path(fname).name, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", to_tmp)
    if page == "docs/osm.md":  # Geofabrik's role played by a local mirror of the Liechtenstein extract
        from _http import mirror

        body = (ROOT.parent / "shared" / "data" / "osm" / "liechtenstein-latest.osm.pbf").read_bytes()
        server = mirror(body, (9.4710780, 47.0477400, 9.6362170, 47.2712800))
        request.addfinalizer(server.close)
        monkeypatch.setenv("GEOS2VEC_OSM_INDEX", server.url + "/index-v1.json")
        monkeypatch.setenv("GEOS2VEC_CACHE", str(tmp_path / "cache"))
    namespace = {"__name__": "__docs__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, code in enumerate(blocks):
            try:
                exec(compile(code, f"{page}[block {i}]", "exec"), namespace)
            except Exception as exc:  # name the block in the failure
                raise AssertionError(f"{page}, python block {i} failed: {exc!r}\n{code}") from exc
    assert os.getcwd() == str(work)
    for name in saved:
        assert (work / name).stat().st_size > 0
