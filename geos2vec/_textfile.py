"""Reading users' CSV files: UTF-8 (a byte-order mark allowed), else a clear error; Excel's European CSV too.

Semicolon-separated files with decimal commas, as Excel saves CSV in much of Europe and South America, are read
as such.
"""

from __future__ import annotations

import codecs
import os

from .errors import InvalidInputError


def read_csv_utf8(path, what: str | None, *, table_ok: bool = True, **kwargs):
    """``pandas.read_csv(path, **kwargs)`` of a UTF-8 file; another encoding raises an ``InvalidInputError``.

    A Latin-1 or Windows-1252 file (what Excel writes as "CSV" in much of Europe and Brazil) raised pandas'
    bare ``UnicodeDecodeError`` ("'utf-8' codec can't decode byte 0xe9 in position 3"), naming neither the file
    nor the line. Now the error says which file (``what`` and ``path``), the line and byte, and how to convert it
    (``table_ok``: the caller takes a DataFrame too, read with another encoding).
    A UTF-8 byte-order mark and CRLF line ends are read as pandas reads them (ignored).

    Without ``sep``, a file whose header is one field holding ``;`` is read as semicolon-separated, Excel's "CSV"
    where the comma is the decimal mark (Germany, Brazil, ...), and its columns of numbers with a decimal comma
    (``-46,63``) as numbers; before, it was one column named ``"Nome;lon;lat"``.
    """
    import pandas as pd

    try:
        df = pd.read_csv(path, **kwargs)
        if "sep" in kwargs or "delimiter" in kwargs or df.shape[1] != 1 or ";" not in str(df.columns[0]):
            return df
        df = pd.read_csv(path, sep=";", **kwargs)
    except UnicodeDecodeError:
        raise InvalidInputError(_not_utf8(path, what, table_ok)) from None
    return df if "dtype" in kwargs else _decimal_commas(df)


_DECIMAL_COMMA = r"\s*[+-]?(?:\d+,?\d*|,\d+)(?:[eE][+-]?\d+)?\s*"


def _decimal_commas(df):
    """The text columns of a semicolon-separated table that are numbers with a decimal comma, as floats."""
    import pandas as pd

    for col in df.columns:
        values = df[col]
        if not (values.dtype == object or isinstance(values.dtype, pd.StringDtype)):  # pandas 3: str
            continue
        text = values.dropna()
        if text.empty or not all(isinstance(v, str) for v in text):
            continue
        if text.str.fullmatch(_DECIMAL_COMMA).all() and text.str.contains(",", regex=False).any():
            df[col] = pd.to_numeric(values.str.replace(",", ".", regex=False))
    return df


def _not_utf8(path, what: str | None, table_ok: bool) -> str:
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
    subject = "it" if what is None else f"{what} {os.fspath(path)!r}"  # None: the caller names the file
    return (f"{subject} {found}: save it as UTF-8 (e.g. 'CSV UTF-8' in Excel, or `iconv -f "
            f"{'UTF-16' if bom else 'latin1'} -t utf-8`)"
            + (", or read it with pandas.read_csv(path, encoding=...) and pass the table" if table_ok else ""))


def lookalike_names(missing: list, present: list, wanted: str = "fitted", have: str = "data",
                    kind: str = "channel") -> str:
    r"""A sentence naming the ``missing`` and ``present`` names that print alike, else ``""``.

    One name in two Unicode normal forms (``café`` composed, ``'caf\xe9'``, and decomposed, ``'cafe\u0301'``,
    shown escaped since they print the same), or in two cases; ``wanted`` and ``have`` say whose names they are,
    ``kind`` what they name (``"channel"``, ``"column"``).
    Channel mismatches listed such names on both sides ("missing ['café'], unexpected ['café']").
    """
    import unicodedata

    def nfc(name):
        return unicodedata.normalize("NFC", str(name))

    forms = [(m, p) for m in missing for p in present if nfc(m) == nfc(p)]
    cases = [(m, p) for m in missing for p in present if nfc(m) != nfc(p) and nfc(m).casefold() == nfc(p).casefold()]
    text = ""
    if forms:
        text += (" " + "; ".join(f"{ascii(m)} ({wanted}) and {ascii(p)} ({have})" for m, p in forms[:3])
                 + f" are one name in two Unicode normal forms (composed and decomposed accents): rename the {have}'s "
                 f"{kind}s to match.")
    if cases:
        text += (" " + "; ".join(f"{m!r} ({wanted}) and {p!r} ({have})" for m, p in cases[:3])
                 + f" differ only in case ({kind} names are case-sensitive).")
    return text


def column_hint(name, columns) -> str:
    """:func:`lookalike_names` of a column ``name`` not found among ``columns`` (a NFD ``Küche`` of macOS)."""
    if not isinstance(name, str):
        return ""
    text = lookalike_names([name], [c for c in columns if isinstance(c, str) and c != name], "asked", "data",
                           kind="column")
    return ";" + text if text else ""


def columns_differ(first: list, other: list):
    """The error for tables to combine whose columns differ: which ones, and those that print alike."""
    missing, extra = [c for c in first if c not in other], [c for c in other if c not in first]
    return InvalidInputError(
        "all tables must have the same columns in the same order; " + (
            f"the first has {missing[:10]} that another lacks, and that one {extra[:10]}."
            + lookalike_names(missing, extra, "first table", "other table") if missing or extra else
            "one has them in another order: reorder it, t[tables[0].columns]"))
