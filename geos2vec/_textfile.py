"""Reading users' CSV files: UTF-8 (with or without a byte-order mark), else a clear error naming the file."""

from __future__ import annotations

import codecs
import os

from .errors import InvalidInputError


def read_csv_utf8(path, what: str, *, table_ok: bool = True, **kwargs):
    """``pandas.read_csv(path, **kwargs)`` of a UTF-8 file; another encoding raises an ``InvalidInputError``.

    A Latin-1 or Windows-1252 file (what Excel writes as "CSV" in much of Europe and Brazil) raised pandas'
    bare ``UnicodeDecodeError`` ("'utf-8' codec can't decode byte 0xe9 in position 3"), naming neither the file
    nor the line. Now the error says which file (``what`` and ``path``), the line and byte, and how to convert it
    (``table_ok``: the caller takes a DataFrame too, read with another encoding).
    A UTF-8 byte-order mark and CRLF line ends are read as pandas reads them (ignored).
    """
    import pandas as pd

    try:
        return pd.read_csv(path, **kwargs)
    except UnicodeDecodeError:
        raise InvalidInputError(_not_utf8(path, what, table_ok)) from None


def _not_utf8(path, what: str, table_ok: bool) -> str:
    with open(path, "rb") as f:
        raw = f.read()
    bom = next((name for mark, name in ((codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
                if raw.startswith(mark)), None)
    where = ""
    if bom is None:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            where = f" (byte 0x{raw[exc.start]:02x} on line {line})"
    found = f"is {bom} text" if bom else f"is not UTF-8 text{where}; it is probably Latin-1 / Windows-1252"
    return (f"{what} {os.fspath(path)!r} {found}: save it as UTF-8 (e.g. 'CSV UTF-8' in Excel, or `iconv -f "
            f"{'UTF-16' if bom else 'latin1'} -t utf-8`)"
            + (", or read it with pandas.read_csv(path, encoding=...) and pass the table" if table_ok else ""))
