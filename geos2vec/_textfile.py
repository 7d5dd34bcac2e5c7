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
        if "sep" in kwargs or "delimiter" in kwargs or not _semicolon_header(path, kwargs.get("comment")):
            return pd.read_csv(path, **kwargs)
        df = pd.read_csv(path, sep=";", **kwargs)
        if "dtype" in kwargs or (kwargs.get("compression", "infer") in ("infer", None) and not _holds_comma(path)):
            return df  # no decimal comma to read: no second parse as text
        text = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False, **kwargs)
    except UnicodeDecodeError:
        raise InvalidInputError(_not_utf8(path, what, table_ok)) from None
    return _decimal_commas(df, text)


def _semicolon_header(path, comment) -> bool:
    """Whether the header (the first line that is not blank or a comment) holds ``;`` and no ``,``.

    Read as comma-separated first, a row with more decimal commas than the header has fields raised pandas'
    "Expected 3 fields in line 3, saw 4" before the semicolons were seen.
    """
    if not isinstance(path, (str, os.PathLike)):
        return False
    with open(path, encoding="utf-8-sig", newline="") as f:
        for line in f:
            if line.strip() and not (comment and line.lstrip().startswith(comment)):
                return ";" in line and "," not in line
    return False


def _holds_comma(path) -> bool:
    """Whether the file holds a ``,`` anywhere (a byte search, far cheaper than parsing it as text again).

    A compressed file (pandas decompresses by the suffix) is taken to hold one.
    """
    if os.fspath(path).lower().endswith((".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")):
        return True
    with open(path, "rb") as f:
        return any(b"," in block for block in iter(lambda: f.read(1 << 20), b""))


_NUMBER = r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*"  # 1234.5 (a decimal point)
# 1.234,5 / 45.000 / -46,63 / ,5 (a decimal comma; dots only between groups of three digits)
_DECIMAL_COMMA = r"\s*[+-]?(?:(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d*)?|,\d+)(?:[eE][+-]?\d+)?\s*"


def _decimal_commas(df, text):
    """A semicolon-separated table's numbers read the way its file writes them.

    ``text`` is the file read as text. A file with a decimal comma in any number column writes the convention of
    Excel in Germany or Brazil: its number columns are read with the comma as the decimal mark and dots as
    thousands separators (``45.000`` is 45000, which pandas read as 45.0, silently); a column of such a file
    whose dots are no thousands separators (``6.96``) is ambiguous and kept as text (an error where numbers are
    wanted, not a wrong number). A file without any decimal comma is read as pandas reads it.
    """
    import pandas as pd

    def cells(col):
        v = text[col]
        return v[v.str.strip() != ""]

    columns = [c for c in text.columns if not cells(c).empty]
    comma = [c for c in columns if cells(c).str.fullmatch(_DECIMAL_COMMA).all()
             and cells(c).str.contains(",", regex=False).any()]
    if not comma:
        return df
    for col in columns:
        v = cells(col)
        if v.str.fullmatch(_DECIMAL_COMMA).all():
            df[col] = pd.to_numeric(text[col].str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
                                    .where(text[col].str.strip() != ""))
        elif v.str.fullmatch(_NUMBER).all() and v.str.contains(".", regex=False).any():
            df[col] = text[col].where(text[col].str.strip() != "")  # 6.96 next to 6,96: which one? left as text
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
