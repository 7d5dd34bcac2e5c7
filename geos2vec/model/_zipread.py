"""Reading a model saved as one ``.zip`` (:func:`geos2vec.model.io.read_model`): only the model's own files, bounded.

A zip comes from someone else (a colleague's model, a download): its members are read by their fixed names only
(never a member's own path), and their sizes are checked from the zip's directory before anything is
decompressed, so that a small zip that inflates to gigabytes (a "zip bomb") is refused instead of filling the
memory (``metadata.json``) or the temporary folder (the weights).
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from .._jsonfile import parse_json
from ..errors import ModelFormatError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: the most a JSON file of a saved model may hold (a config, statistics and metadata take kilobytes)
MAX_JSON_BYTES = 64 << 20
#: the most a large member may inflate (model weights compress by under 2; deflate reaches ~1000 on zeros)
MAX_RATIO = 100
_LARGE = 64 << 20  # members smaller than this are never refused for their ratio
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


def check_sizes(zf: zipfile.ZipFile, path: Path, names: Sequence[str]) -> None:
    """Refuse (``ModelFormatError``) a member of ``names`` that ``zipfile`` cannot read or that inflates too much.

    Encrypted members and other compression methods (Deflate64) are named, as are members beyond the bounds above.
    """
    for name in names:
        try:
            info = zf.getinfo(name)
        except KeyError:
            continue
        if info.flag_bits & 0x1:  # zipfile raised a bare RuntimeError ("password required")
            raise ModelFormatError(f"{path}: {name} is encrypted (a zip with a password): unzip it yourself and load "
                                   "the folder")
        if info.compress_type not in _METHODS:  # e.g. Deflate64 (Windows, 7-Zip): a bare NotImplementedError
            raise ModelFormatError(f"{path}: {name} is compressed with method {info.compress_type}, which Python's "
                                   "zipfile cannot read (Deflate64?): unzip it yourself and load the folder, or zip it "
                                   "again with standard Deflate")
        size = info.file_size
        bomb = size > _LARGE and size > MAX_RATIO * max(info.compress_size, 1)
        if bomb or (name.endswith(".json") and size > MAX_JSON_BYTES):
            raise ModelFormatError(f"{path}: {name} would inflate from {info.compress_size:,} to {size:,} bytes, far "
                                   "more than a saved model holds (a zip bomb?); this zip was not saved by "
                                   "S2VecModel.save: ask for the model again")


def extract_model_zip(path: Path, tmp: Path, files: Sequence[str], compact_files: Sequence[str],
                      check_meta: Callable) -> None:
    """Extract the model files of zip ``path`` into ``tmp`` (``check_meta(read, path)`` checks metadata first)."""
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        check_sizes(zf, path, [*files, *compact_files])
        if "metadata.json" in names:  # a newer format (other files) is refused as such, not as incomplete
            check_meta(lambda: parse_json(zf.read("metadata.json"), f"{path}: metadata.json"), path)
        want = compact_files if "weights.npz" in names and "model.keras" not in names else files
        missing = [f for f in want if f not in names]
        if missing:
            raise ModelFormatError(f"{path} is not a complete saved S2Vec model: missing {missing}")
        for name in want:  # by its fixed name, into tmp: a member named "../x" or "/etc/x" is never written
            try:
                with zf.open(name) as src, open(tmp / name, "wb") as dst:
                    while block := src.read(1 << 20):
                        dst.write(block)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                raise ModelFormatError(f"{path}: {name} is damaged ({type(exc).__name__}: {exc}); "
                                       "save the model again or copy it anew") from None
