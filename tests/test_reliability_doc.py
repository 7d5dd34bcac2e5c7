"""docs/reliability.md is generated from the tests; it must be current."""

from __future__ import annotations

from pathlib import Path
from conftest import load_script  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_reliability_page_is_up_to_date():
    mod = load_script("reliability_table")
    assert len(list(mod.rows())) >= 30
    assert (ROOT / "docs" / "reliability.md").read_text() == mod.render(), \
        "docs/reliability.md is stale: run python scripts/reliability_table.py"
