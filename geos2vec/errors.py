"""Exceptions and warnings of geos2vec.

In the manner of h3-py: one base class, :class:`Geos2VecError`, and specific classes that also subclass the
built-in exception they stand for, so ``except ValueError`` (or ``TypeError``) keeps working while
``except geos2vec.errors.Geos2VecError`` catches everything geos2vec raises on purpose.
"""

from __future__ import annotations

__all__ = [
    "Geos2VecError", "InvalidInputError", "InvalidTypeError", "CoverageError", "ModelFormatError",
    "DownloadError", "ChecksumError", "NoExtractError", "ForkedTensorFlowError", "Geos2VecWarning", "CoverageWarning",
]


class Geos2VecError(Exception):
    """Base class of the errors geos2vec raises on purpose."""


class InvalidInputError(Geos2VecError, ValueError):
    """An argument has the right type but a value geos2vec cannot use; the message says how to fix it."""


class InvalidTypeError(Geos2VecError, TypeError):
    """An argument has a type geos2vec cannot use; the message says what it takes."""


class CoverageError(InvalidInputError):
    """A coverage (where a feature source has data) that is not a usable area."""


class ModelFormatError(Geos2VecError, ValueError):
    """A saved model that cannot be loaded as it is: missing or corrupt files, or files that disagree."""


class DownloadError(Geos2VecError, OSError):
    """A download that failed: the server could not be reached, or kept answering with errors."""


class ChecksumError(DownloadError):
    """A downloaded file whose MD5 differs from the one its server publishes (the file is deleted)."""


class NoExtractError(InvalidInputError):
    """No OpenStreetMap extract of the index covers the requested area."""


def foreign_frame(obj, series: bool = False) -> str:
    """``" (a polars.DataFrame: convert it with .to_pandas() first)"`` for a table of another library, else ``""``.

    polars and pyarrow tables are named ``DataFrame``/``Table`` like pandas' own, so "got DataFrame" read as a
    contradiction; NumPy reads some of them as a bare array, without their column names. ``series=True``: a
    one-column object too (a polars Series, a pyarrow Array), where a pandas Series is wanted.
    """
    module = type(obj).__module__.split(".")[0]
    if module in ("pandas", "geopandas", "numpy", "xarray", "dask") or not hasattr(obj, "to_pandas") \
            or not (series or hasattr(obj, "columns") or hasattr(obj, "column_names")):
        return ""
    return f" (a {module}.{type(obj).__name__}: convert it with .to_pandas() first)"


def check_ordered(value, what: str) -> None:
    """Refuse a set where an order matters (channels): a set of strings iterates in another order in every process.

    ``PYTHONHASHSEED`` salts the hashes of strings, so the channels' order changed from one run to the next.
    """
    if isinstance(value, (set, frozenset)):
        raise InvalidTypeError(
            f"{what} must be a list in the order you want, got a {type(value).__name__}, whose order changes from one "
            f"Python process to the next (string hashes are salted); pass sorted({what}) or a list")


class ForkedTensorFlowError(Geos2VecError, RuntimeError):
    """TensorFlow work asked of a process forked after TensorFlow ran in its parent, where it would hang."""


class Geos2VecWarning(UserWarning):
    """Base class of geos2vec's warnings."""


class CoverageWarning(Geos2VecWarning):
    """Something about coverage the user should know (e.g. combined tables whose coverage is unknown)."""
