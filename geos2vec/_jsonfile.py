"""The small JSON files geos2vec writes (configs, statistics, model metadata).

Read with errors that name the file; written so that an interrupted write leaves the previous file.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Iterator


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


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write; moved onto ``path`` (``os.replace``) when the block ends.

    An interrupted write (a full disk, an exception) leaves the previous file unchanged and no temporary file;
    a killed process leaves only a hidden ``.<name>.*.tmp``, never a partial ``path``. The name is unique (the
    process id and a random part), so concurrent writers, processes or threads, never share one; the writer
    creates the file, with the usual permissions (``tempfile.mkstemp`` would make it private to its owner).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` through :func:`atomic_path`: an interrupted write leaves the previous file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
