"""The checks of a saved model's ``metadata.json`` (:mod:`geos2vec.model.io`), done before any other file is read.

A model saved in a newer format may name its files differently (weights in another file, statistics renamed):
its format version is read first, so that such a save is refused as "newer, upgrade geos2vec", not as a damaged
or incomplete model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ModelFormatError

if TYPE_CHECKING:
    from pathlib import Path

FORMAT = "geos2vec.s2vec"
FORMAT_VERSION = 1


def check_metadata(meta: object, folder: Path) -> tuple[int, tuple[int, int] | None]:
    """``(format_version, grid)`` of a model's parsed ``metadata.json``, checked.

    Parameters
    ----------
    meta : object
        The parsed ``metadata.json``.
    folder : pathlib.Path
        The model folder (for the messages).

    Returns
    -------
    tuple
        The format version (0 when the file records none) and the image grid ``(rows, cols)`` (None when
        the file records none).

    Raises
    ------
    ModelFormatError
        Another format; a format version that is not a whole number >= 0, or newer than this geos2vec
        reads (checked before everything else in the file); a bad or missing grid, missing channels or channels
        that are not a list of names; levels that are not S2 levels; ``files_sha256`` that is not a mapping of the
        names of files beside ``metadata.json`` to strings.
    """
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else None
        raise ModelFormatError(f"{folder}: unknown format {fmt!r} (expected {FORMAT!r})")
    raw = meta.get("format_version", 0)
    # a whole number (1.5 was read as 1 and -1 as an old format); a digit string, as int() read it before
    if isinstance(raw, bool) or not isinstance(raw, (int, str)) or not str(raw).strip().isdecimal():
        raise ModelFormatError(f"{folder / 'metadata.json'}: format_version {raw!r} and grid {meta.get('grid')!r} "
                               "must be integers (a format version >= 0, two positive grid sizes)")
    version = int(raw)
    if version > FORMAT_VERSION:  # before the grid and the other files: a newer format may store them otherwise
        by = meta.get("geos2vec_version") or "version not recorded"
        raise ModelFormatError(f"{folder} was saved by a newer geos2vec ({by}); upgrade geos2vec to load it (it is "
                               f"in model format {version}; this geos2vec reads format {FORMAT_VERSION} and older)")
    try:
        grid = tuple(int(g) for g in meta["grid"]) if "grid" in meta else None
    except (TypeError, ValueError):
        raise ModelFormatError(f"{folder / 'metadata.json'}: grid must be two positive integers, got "
                               f"{meta.get('grid')!r}") from None
    if grid is not None and (len(grid) != 2 or min(grid) < 1):
        raise ModelFormatError(f"{folder / 'metadata.json'}: grid must be two positive integers, got {meta['grid']!r}")
    lacking = [k for k in ("channels", "grid") if k not in meta]
    if lacking:
        raise ModelFormatError(f"{folder / 'metadata.json'} lacks {lacking}")
    channels = meta["channels"]  # 5 or null raised a bare TypeError
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise ModelFormatError(f"{folder / 'metadata.json'}: channels must be a list of channel names, got "
                               f"{str(channels)[:120]}; copy the model again")
    levels = [meta.get("image_level"), meta.get("patch_level")]  # "12" was "embeds level-12 cells only" for 12
    if not all(v is None or (type(v) is int and 0 <= v <= 30) for v in levels) or (None not in levels and
                                                                                  levels[0] > levels[1]):
        raise ModelFormatError(f"{folder / 'metadata.json'}: image_level and patch_level must be S2 levels (integers "
                               f"0 to 30, the image's <= the pixels'), got {levels}; copy the model again")
    sums = meta.get("files_sha256", {})
    # names of files beside metadata.json only: "/dev/zero" or "../x" had any file read (for ever) to check it
    if not isinstance(sums, dict) or not all(isinstance(k, str) and isinstance(v, str) and k not in ("", ".", "..")
                                             and "/" not in k and "\\" not in k for k, v in sums.items()):
        raise ModelFormatError(f"{folder / 'metadata.json'}: files_sha256 must map the names of the model's files "
                               f"to their SHA-256 sums, got {str(sums)[:120]}; copy the model again")
    return version, grid


def newer_release_hint(meta: dict) -> str:
    """``"; it was saved by geos2vec X, newer than this Y: upgrade geos2vec"`` when ``meta`` names a newer release.

    A newer geos2vec may add fields (a config option, a statistic) without a new format version; a file this
    version cannot read then says where it came from instead of only what it lacks.
    """
    import re

    import geos2vec

    def release(text):
        m = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", str(text))
        return tuple(int(x or 0) for x in m.groups()) if m else None

    saved, ours = release(meta.get("geos2vec_version")), release(geos2vec.__version__)
    if saved is None or ours is None or saved <= ours:
        return ""
    return (f"; it was saved by geos2vec {meta['geos2vec_version']}, newer than this {geos2vec.__version__}: upgrade "
            "geos2vec to load it")
