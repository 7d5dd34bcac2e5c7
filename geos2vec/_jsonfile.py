"""The small JSON files geos2vec writes (configs, statistics, model metadata).

Read with errors that name the file; written so that an interrupted write leaves the previous file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import InvalidInputError


def read_json(path):
    """The parsed content of ``path``; ``ValueError`` naming the file when it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # also a binary file
        raise InvalidInputError(f"{path} is not valid JSON ({exc})") from None


def read_json_object(path) -> dict:
    """:func:`read_json` of a file that must hold one JSON object."""
    d = read_json(path)
    if not isinstance(d, dict):
        raise InvalidInputError(f"{path} does not hold a JSON object")
    return d


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    An interrupted write (a full disk, a kill) leaves the previous file unchanged, never a partial one.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
