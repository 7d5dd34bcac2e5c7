"""One ``fit`` at a time per checkpoint folder.

Two fits given the same ``checkpoint_dir`` (two notebooks, a job started twice) would write each other's best
and last weights, backup and records epoch by epoch, and a resume would then continue a mixture of the two runs.
:func:`checkpoint_lock` holds ``checkpoint_dir/.lock`` (created exclusively, holding the owner's host, process id
and start time) for the whole fit, and a second fit is refused with a message naming the owner. A lock left by a
process that no longer runs on this host (killed with ``kill -9``, a power cut) is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .._typing import StrPath

__all__ = ["checkpoint_lock", "LOCK_NAME"]

#: The lock file's name inside a checkpoint folder.
LOCK_NAME = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists, owned by another user (or cannot tell: assume it runs)
        return True
    return True


def _owner(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _stale(record: dict | None) -> bool:
    """A lock whose owner ran on this host and no longer runs (a lock we cannot read is not taken over)."""
    if record is None or record.get("host") != socket.gethostname():
        return False
    pid = record.get("pid")
    return isinstance(pid, int) and pid != os.getpid() and not _alive(pid)


@contextlib.contextmanager
def checkpoint_lock(checkpoint_dir: StrPath | None) -> Iterator[None]:
    """Hold ``checkpoint_dir/.lock`` while the block runs (nothing for ``None``).

    Parameters
    ----------
    checkpoint_dir : path or None
        The folder of a fit's checkpoints (created if missing).

    Raises
    ------
    InvalidInputError
        Another fit, in this or another process, holds the folder.
    """
    if checkpoint_dir is None:
        yield
        return
    folder = Path(checkpoint_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for _ in range(2):  # a stale lock is removed once, then taken
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            record = _owner(path)
            if _stale(record):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            who = (f"process {record.get('pid')} on {record.get('host')!r} since {record.get('since')}"
                   if record else "an unknown owner (the lock file is unreadable)")
            raise InvalidInputError(
                f"checkpoint_dir {str(folder)!r} is in use by another fit ({who}); two fits in one folder would "
                f"overwrite each other's checkpoints. Wait for it, or pass another checkpoint_dir; if no fit is "
                f"running, delete {str(path)!r}") from None
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(me))
        except BaseException as exc:  # a full disk left an empty lock: every later fit was refused ("unknown
            with contextlib.suppress(OSError):  # owner"), even with room again, until it was deleted by hand
                path.unlink()
            from .._jsonfile import write_error

            err = write_error(exc, path, False, state="the fit did not start; the checkpoints are as they were"
                              ) if isinstance(exc, OSError) else None
            if err is None:
                raise
            raise err from exc
        break
    else:
        raise InvalidInputError(f"could not take the lock {str(path)!r} (another fit took it at the same moment)")
    try:
        yield
    finally:
        if _owner(path) == me:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
