"""The small JSON files geos2vec writes (configs, statistics, model metadata).

Read with errors that name the file; written so that an interrupted write leaves the previous file.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import re
import secrets
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Iterator


def parse_json(text, name):
    """``json.loads(text)``; an ``InvalidInputError`` naming ``name`` when it is not JSON geos2vec can read."""
    try:  # JSON is UTF-8 (RFC 8259), whatever the locale
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except (ValueError, UnicodeDecodeError) as exc:  # also a binary file, an integer of over 4300 digits
        raise InvalidInputError(f"{name} is not valid JSON ({exc})") from None
    except RecursionError:  # e.g. [[[[...]]]] nested 100,000 deep: no file geos2vec writes
        raise InvalidInputError(f"{name} is not valid JSON for geos2vec (nested too deeply)") from None


def read_json(path):
    """The parsed content of ``path``; ``ValueError`` naming the file when it is not valid JSON."""
    path = Path(path).expanduser()  # "~/config.json", as pandas and xarray read it
    if path.exists() and not path.is_file():  # a folder, or a link to /dev/zero or a FIFO (read for ever)
        raise InvalidInputError(f"{path} is not a regular file (a folder, device or pipe?); replace it with the "
                                "JSON file")
    return parse_json(path.read_bytes(), path)


def read_json_object(path) -> dict:
    """:func:`read_json` of a file that must hold one JSON object."""
    d = read_json(path)
    if not isinstance(d, dict):
        raise InvalidInputError(f"{path} does not hold a JSON object")
    return d


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary file beside ``path`` to write; moved onto ``path`` (``os.replace``) when the block ends.

    An interrupted write (a full disk, an exception) leaves the previous file unchanged and no temporary file;
    a killed process leaves only a hidden ``.<name>.<pid>@<host>.*.tmp``, never a partial ``path``, and the next
    write of ``path`` removes the ones of processes of this host that no longer run, so they do not pile up. The
    name is unique (the process id and a random part), so concurrent writers, processes or threads, never share
    one; the writer creates the file, with the usual permissions (``tempfile.mkstemp`` would make it private to
    its owner). ``suffix`` ends the temporary name (Keras and GDAL pick a format by it).
    """
    path = Path(path).expanduser()  # "~/x.json" is the home folder's, not a "./~" folder's
    # said before the write: os.replace failed after it with a raw IsADirectoryError, and a missing folder
    # raised FileNotFoundError naming the hidden temporary file
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder; give the path of a file (in that folder, or elsewhere)")
    if not path.parent.is_dir():
        raise InvalidInputError(f"cannot write {path}: {path.parent} is not an existing folder"
                                f"{' (it is a file)' if path.parent.exists() else ''}; create the folder first")
    tmp = temporary_name(path, suffix)
    existed = path.exists()
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # a read-only file system refuses even the unlink of a missing file
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and (err := write_error(exc, path, existed)) is not None:
            raise err from exc
        raise
    _remove_stale(path, suffix)


_WHY = {errno.ENOSPC: "free some space on the device of {folder}, or write elsewhere",
        errno.EDQUOT: "your disk quota on {folder} is used up: free some space, or write elsewhere",
        errno.EFBIG: "the file system of {folder} cannot hold a file that large: write elsewhere",
        errno.EROFS: "{folder} is on a read-only file system: write elsewhere",
        errno.EACCES: "you may not write in {folder}: write elsewhere, or change its permissions",
        errno.EPERM: "you may not write in {folder}: write elsewhere, or change its permissions"}


def write_error(exc: OSError, path: Path, existed: bool, state: str | None = None) -> OSError | None:
    """An ``OSError`` (of ``exc``'s errno) naming ``path`` and what to do, for a full disk or a read-only folder.

    The error of a full disk named no file (``[Errno 28] No space left on device``), one of a read-only folder
    the hidden temporary file; ``None`` for other errors (kept as they are).
    """
    why = _WHY.get(getattr(exc, "errno", None))
    if why is None:
        return None
    if state is None:  # what the write left
        state = f"the previous {path.name} is unchanged" if existed else f"no {path.name} was written"
    return OSError(exc.errno, f"cannot write {path} ({os.strerror(exc.errno)}): {why.format(folder=path.parent)}; "
                   f"{state}")


#: this machine's name as it appears in temporary names (a shared folder may be written from several machines)
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def temporary_name(path: Path, suffix: str) -> Path:
    """A unique hidden name beside ``path`` that :func:`_remove_stale` recognises once its process has ended."""
    return path.with_name(f".{path.name}.{os.getpid()}@{_HOST}.{secrets.token_hex(4)}{suffix}")


def _remove_stale(path: Path, suffix: str) -> None:
    """Remove the temporary files (or folders) for ``path`` that killed processes of this host left."""
    if os.name != "posix":  # os.kill(pid, 0) would end the process on Windows
        return
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)@{re.escape(_HOST)}\.[0-9a-f]{{8}}{re.escape(suffix)}")
    try:
        names = list(path.parent.glob(f".{glob.escape(path.name)}.*{glob.escape(suffix)}"))
    except OSError:  # pragma: no cover - an unreadable folder: nothing to tidy
        return
    for stale in names:
        m = pattern.fullmatch(stale.name)
        if m is None or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:  # its writer is gone: the file (or a model's folder) is a leftover
            with contextlib.suppress(OSError):  # e.g. another user's, in a shared folder
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale)
                else:
                    stale.unlink(missing_ok=True)
        except (OverflowError, OSError):  # a live process of another user (PermissionError), or not a pid
            continue


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`: an interrupted write leaves the previous file."""
    with atomic_path(path) as tmp:  # UTF-8 whatever the locale (reports hold "±" and "R²")
        tmp.write_text(text, encoding="utf-8")
    return Path(path).expanduser()


@contextlib.contextmanager
def write_lock(path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created, removed at the end) while the block runs.

    Another process or thread holding it is waited for (``flock``, released by the system when its holder dies,
    so a killed writer blocks no one); its file is removed when the block ends. Where the system or file system
    has no ``flock`` (Windows, some network file systems) or the folder is not writable, the block runs unlocked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        fcntl = None
    fd = None
    while fcntl is not None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
            fcntl.flock(fd, fcntl.LOCK_EX)  # waits for the holder
            # the holder removes the file before it lets go: a lock of a removed file is no lock, take the new one
            if os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False)):
                break
        except FileNotFoundError:
            if fd is None:  # no such folder: nothing to lock (the write itself says so)
                break
        except OSError:  # no flock here, or a folder we cannot write a lock in: unlocked, as before
            if fd is not None:  # a lock file nobody can lock: not left in the user's folder
                with contextlib.suppress(OSError):
                    os.unlink(path)
                os.close(fd)
                fd = None
            break
        os.close(fd)
        fd = None
    try:
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)
            os.close(fd)
