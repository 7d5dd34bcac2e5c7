"""docs/reliability.md is generated from the tests; it must be current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_reliability_page_is_up_to_date():
    spec = importlib.util.spec_from_file_location("reliability_table", ROOT / "scripts" / "reliability_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert len(list(mod.rows())) >= 30
    assert (ROOT / "docs" / "reliability.md").read_text() == mod.render(), \
        "docs/reliability.md is stale: run python scripts/reliability_table.py"
