"""Every relative link and ``#anchor`` in README.md and docs/*.md resolves (files only, no network).

Anchors are the ids the documentation site gives headings (Python-Markdown's ``toc`` slugs, as mkdocs builds
them); GitHub's slugs of the same headings are accepted too, since README.md and the pages render there as well.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "CHANGELOG.md"] + sorted(f"docs/{p.relative_to(ROOT / 'docs')}"
                                               for p in (ROOT / "docs").rglob("*.md"))
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code spans (links there are not links)."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _heading_text(raw: str) -> str:
    """A heading as rendered: links to their text, emphasis and code markers and HTML tags dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", raw.strip().rstrip("#").strip())
    text = re.sub(r"<[^>]+>", "", text)
    return text.replace("`", "").replace("*", "")


def mkdocs_slug(text: str) -> str:
    """Python-Markdown ``toc``'s default slug (what mkdocs uses for heading ids)."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def github_slug(text: str) -> str:
    """GitHub's heading id: lower case, punctuation dropped, each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading id of a Markdown file (both slug styles, with ``_1``/``-1`` for repeats) and explicit ids."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", path.read_text(), flags=re.S | re.M)
    for raw in re.findall(r"^#{1,6}\s+(.+)$", text, re.M):
        explicit = re.search(r"\{\s*#([\w-]+)[^}]*\}\s*$", raw)
        if explicit:
            found.add(explicit.group(1))
            raw = raw[: explicit.start()]
        heading = _heading_text(raw)
        for slug, sep in ((mkdocs_slug(heading), "_"), (github_slug(heading), "-")):
            n = seen.get(sep + slug, 0)
            seen[sep + slug] = n + 1
            found.add(slug if n == 0 else f"{slug}{sep}{n}")
    found.update(re.findall(r"""<a\s+(?:name|id)=["']([^"']+)["']""", text))
    found.update(re.findall(r"""\sid=["']([^"']+)["']""", text))
    return found


def links(page: str) -> list[str]:
    text = _prose((ROOT / page).read_text())
    return LINK.findall(text) + IMAGE.findall(text)


def _is_external(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I))


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_and_anchors_resolve(page):
    source = ROOT / page
    broken = []
    for target in links(page):
        if _is_external(target):
            continue
        path, _, anchor = target.partition("#")
        dest = (source.parent / path).resolve() if path else source
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with id #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, f"{page}: broken links\n" + "\n".join(broken)


def test_docs_pages_link_only_inside_the_site():
    """Pages of the site (docs/) link to files in docs/ only: mkdocs cannot serve a link out of docs_dir."""
    outside = []
    for page in PAGES:
        if not page.startswith("docs/"):
            continue
        for target in links(page):
            path = target.partition("#")[0]
            if path and not _is_external(target):
                dest = ((ROOT / page).parent / path).resolve()
                if not dest.is_relative_to(ROOT / "docs"):
                    outside.append(f"{page}: {target}")
    assert not outside, outside


def test_slugs_match_python_markdown():
    """The slug rule above is Python-Markdown's (the one mkdocs uses), checked on headings of these docs."""
    toc = pytest.importorskip("markdown.extensions.toc")
    for heading in ("Rows outside the feature coverage", "Coverage: missing is not empty", "`embed` — options (0.2)",
                    "Seams", "What the bundled model is — and is not"):
        assert mkdocs_slug(_heading_text(heading)) == toc.slugify(_heading_text(heading), "-")


def test_anchor_finder():
    """Repeated headings get numbered ids; code blocks hold no headings; explicit ids count."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.md"
        p.write_text("# A b\n\n## A b\n\n```bash\n# not a heading\n```\n\n## C {#custom}\n\n### `embed` — options\n")
        ids = anchors(p)
    assert {"a-b", "a-b_1", "a-b-1", "custom", "embed-options", "embed--options"} <= ids
    assert "not-a-heading" not in ids
