"""Write ``docs/reliability.md``: bad inputs and what each gets, read from the tests that check them.

Each row is one test: the case (its docstring's first sentence, else its name) and what the test asserts the
input gets — the exception or warning it expects (``pytest.raises`` / ``pytest.warns`` and their ``match``),
or a correct result. ``tests/test_reliability_doc.py`` fails when the page is out of date.

    python scripts/reliability_table.py            # rewrite docs/reliability.md
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "reliability.md"

# (module, test-name filter: None = every test)
SOURCES = [
    ("tests/test_hostile_inputs.py", None),
    ("tests/test_model_files.py", None),
    ("tests/test_coverage.py", ("test_bad_coverage_raises_a_clear_error", "test_missing_pbf_is_file_not_found",
                                "test_unknown_coverage_stays_unknown_and_warns_when_mixed")),
    ("tests/test_raster.py", ("test_interrupted_zarr_write_does_not_open_as_valid",)),
    ("tests/test_context.py", ("test_nan_in_the_feature_table_is_a_clear_error_not_nan_embeddings",
                               "test_cells_outside_the_images_and_bad_options_raise")),
    ("tests/test_io_osm.py", ("test_read_osm_warns_on_a_file_cut_at_a_blob_boundary",)),
    ("tests/test_numba_cache.py", ("test_falls_back_to_a_temporary_folder_when_nothing_else_is_writable",
                                   "test_import_and_a_kernel_work_without_a_home")),
    ("tests/test_accessor.py", ("test_plain_dataframe_is_an_attribute_error_with_the_fix",)),
    ("tests/test_cli.py", ("test_user_error_is_one_line_with_status_1",)),
    ("tests/test_options.py", ("test_bad_options_raise",)),
    ("tests/test_user_interrupts.py", ("test_a_backup_cut_short_by_a_full_disk_resumes_like_the_uninterrupted_fit",
                                       "test_a_checkpoint_cut_short_leaves_the_previous_checkpoint",
                                       "test_a_resumed_log_drops_a_row_cut_short_and_keeps_earlier_runs",
                                       "test_a_fit_killed_while_writing_its_backup_resumes",
                                       "test_two_runs_writing_one_out_do_not_share_a_temporary_file",
                                       "test_an_interrupted_out_write_leaves_the_previous_file")),
    ("tests/test_model_save_race.py", None),
    ("tests/test_report_atomic.py", None),
    ("tests/test_demo_writes.py", ("test_a_map_write_cut_short_leaves_the_previous_file",)),
    ("tests/test_user_security.py", None),
    ("tests/test_checkpoint_lock.py", None),
    ("tests/test_suite_cache_damaged.py", None),
]


# exceptions a test raises itself to simulate a kill: how the test interrupts, not what the input gets
_SIMULATED = {"KeyboardInterrupt", "SystemExit"}


def _pattern(regex: str) -> str:
    """A ``match=`` regular expression as a reader sees the message: escapes dropped, ``.*`` as an ellipsis."""
    text = re.sub(r"\\d[+*]?", "N", regex.replace(".*", "…"))  # a run of digits
    return re.sub(r"\\(.)", r"\1", text).replace("|", "/")


def _case(doc: str | None, name: str) -> str:
    """The docstring's first sentence (its first paragraph up to the first full stop), else the test's name."""
    if not doc:
        return name.removeprefix("test_").replace("_", " ")
    para = " ".join(doc.split("\n\n")[0].split())
    m = re.search(r"\.(?=\s+[A-Z]|$)", para)
    return para[: m.start() + 1] if m else para


# tests of those modules that check the code's structure, not what an input gets
EXCLUDE = {"test_model_io_does_not_import_the_model_class"}


def _expectations(fn: ast.FunctionDef) -> list[str]:
    out = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Name) and node.func.value.id == "pytest" and \
                node.func.attr in ("raises", "warns") and node.args:
            what = ast.unparse(node.args[0])
            if what in _SIMULATED:
                continue
            match = next((k.value for k in node.keywords if k.arg == "match"), None)
            text = f"{'raises' if node.func.attr == 'raises' else 'warns'} `{what}`"
            if isinstance(match, ast.Constant):
                text += f" “{_pattern(str(match.value))}”"
            elif match is not None:
                text += " (message checked)"
            if text not in out:
                out.append(text)
    return out


def rows():
    for module, names in SOURCES:
        tree = ast.parse((ROOT / module).read_text())
        for fn in tree.body:
            if not isinstance(fn, ast.FunctionDef) or not fn.name.startswith("test_"):
                continue
            if (names is not None and fn.name not in names) or fn.name in EXCLUDE:
                continue
            doc = ast.get_docstring(fn)
            case = _case(doc, fn.name)
            got = _expectations(fn) or ["a correct result (values asserted)"]
            yield module, fn.name, case, "; ".join(got)


def render() -> str:
    lines = ["<!-- generated by scripts/reliability_table.py from the tests; do not edit -->",
             "# Reliability: bad inputs and what they get", "",
             "Every row is a test that fails if the behaviour changes. Errors are `geos2vec.errors` classes (which "
             "also subclass `ValueError` / `TypeError`) or built-in ones, with a message that says what was "
             "wrong and how to fix it.", "",
             "| case | what it gets | test |", "|---|---|---|"]
    for module, name, case, got in rows():
        lines.append(f"| {case} | {got} | `{module}::{name}` |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    OUT.write_text(render())
    print(f"wrote {OUT} ({len(list(rows()))} cases)")


if __name__ == "__main__":
    main(sys.argv[1:])
