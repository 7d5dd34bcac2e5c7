"""The command line: --version, one-line user errors, --debug tracebacks."""

from __future__ import annotations

import pytest

from geos2vec.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("geos2vec ")


def test_user_error_is_one_line_with_status_1(capsys):
    assert main(["cells", "95", "0"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("geos2vec: error: 1 latitude(s) outside [-90, 90]")
    assert "Traceback" not in "\n".join(err) and "--debug" in err[1]
    assert main(["train", "--data", "/nonexistent/images.zarr", "--out", "/tmp/unused-model"]) == 1
    assert "no data at /nonexistent/images.zarr" in capsys.readouterr().err


def test_debug_shows_the_exception():
    with pytest.raises(ValueError, match="outside"):
        main(["cells", "95", "0", "--debug"])


def test_usage_errors_keep_argparse_status_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["cells", "--level", "x"])
    assert info.value.code == 2
