"""The CLI's help gives each default once: "(default: X)" only where the help text does not already say it."""

import re
import subprocess
import sys

import pytest


@pytest.mark.parametrize("command", ["features", "embed", "evaluate"])
def test_each_default_is_written_once(command):
    out = subprocess.run([sys.executable, "-m", "geos2vec", command, "--help"], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    options = re.split(r"\n  (?=-)", out)  # one chunk per option
    assert "(default: None)" not in out
    for chunk in options:
        text = " ".join(chunk.split())
        assert len(re.findall(r"default", text, flags=re.IGNORECASE)) <= 1, text
    if command == "features":
        level = next(c for c in options if c.startswith("--level"))
        assert "(default: 12)" in " ".join(level.split())
