"""Reading the small JSON files geos2vec writes (configs, statistics, model metadata) with errors that name them."""

from __future__ import annotations

import json
from pathlib import Path


def read_json(path):
    """The parsed content of ``path``; ``ValueError`` naming the file when it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None


def read_json_object(path) -> dict:
    """:func:`read_json` of a file that must hold one JSON object."""
    d = read_json(path)
    if not isinstance(d, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return d
