"""The order of a categorical ``extra`` column's channels, the same in memory and on the dask path.

dask turns object columns into strings (its ``dataframe.convert-string`` option, on by default): an object
column of numbers 2, 10, 100 reaches ``count_features_dask`` as "2", "10", "100". Sorted as they came, pandas put
2 < 10 < 100 and the dask path "10" < "100" < "2": the same channels in another order. Here values of object and
string columns are sorted by what they say: numbers (and strings that write a finite number) by value, before
the other values, which sort as text. Both paths see the same names (``str`` of the value), so the same order.
Numeric, boolean and categorical columns keep pandas' sort (the same on both paths).
"""

from __future__ import annotations

import numbers
import re
from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _key(value):
    text = str(value)
    numeric = (isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_))) or (
        isinstance(value, str) and _NUMBER.fullmatch(value) is not None)
    if numeric:
        try:
            number = Decimal(text)  # exact: ids beyond 2**53 keep their order
        except InvalidOperation:  # a complex number, say
            number = None
        if number is not None and number.is_finite():
            return (0, number, text)
    return (1, text)


def sorted_categories(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(values, sort=True)``: codes (-1 for missing) and the distinct values, in channel order.

    Parameters
    ----------
    values : pandas.Series
        A categorical extra column (a categorical dtype already turned to object).

    Returns
    -------
    codes : numpy.ndarray of int
    uniques : array-like
        The distinct values, numbers by value before other values (as text) for object and string columns.
    """
    if not (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)):
        return pd.factorize(values, sort=True, use_na_sentinel=True)
    codes, uniques = pd.factorize(values, sort=False, use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    order = np.array(sorted(range(uniques.size), key=lambda k: _key(uniques[k])), dtype=np.int64)
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    codes = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1) if order.size else codes
    return codes, uniques[order]
