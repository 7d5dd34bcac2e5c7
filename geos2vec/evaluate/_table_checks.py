"""The checks of the tables the baselines take: cell-indexed, numeric, finite; and their ``n_components``.

Private helpers of :mod:`geos2vec.evaluate.baselines` (``_check_table`` is used by the protocol and the methods too).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._cells_core import _cell_id_index
from ..errors import InvalidInputError, InvalidTypeError, foreign_frame


def _check_table(table, name):
    if not isinstance(table, pd.DataFrame):
        raise InvalidTypeError(f"{name} must be a pandas DataFrame indexed by cell_id, got {type(table).__name__}"
                               f"{foreign_frame(table)}")
    if table.shape[1] == 0 or len(table) == 0:
        raise InvalidInputError(f"{name} is empty (shape {table.shape})")
    if not table.index.is_unique:
        raise InvalidInputError(f"{name} has duplicate cell ids in its index; give one row per cell (counts add up: "
                                "table.groupby(level=0).sum(); embedding vectors do not: .mean(), or one of them)")
    real = table.select_dtypes("number", exclude=["bool", "complex"]).shape[1] == table.shape[1]  # Int64, Float32 too
    # pd.NA: NaN, refused below; a new array (to_numpy can return the table's own float64 block): the result's
    values = table.to_numpy(np.float64, na_value=np.nan, copy=True) if real else table.to_numpy()
    if not np.issubdtype(values.dtype, np.number):
        raise InvalidTypeError(f"{name} must have numeric columns only, got dtypes {sorted(map(str, {*table.dtypes}))}")
    if not np.isfinite(values.astype(float, copy=False)).all():
        raise InvalidInputError(f"{name} contains NaN or inf; fill or drop those cells first")
    # S2 cell ids (signed 64-bit storage of the same bits is read); a float index was truncated (1.5 -> 1) and
    # a RangeIndex taken for cells 0, 1, 2, ... silently
    index = _cell_id_index(table.index, f"{name} must be indexed by S2 cell ids (uint64)")
    out = frame(values.astype(np.float64, copy=False), index, [str(c) for c in table.columns])
    if isinstance(table.attrs.get("coverage"), dict):  # the source's coverage (channel names are str there too)
        out.attrs["coverage"] = table.attrs["coverage"]
    return out


def frame(values: np.ndarray, index, columns) -> pd.DataFrame:
    """``pd.DataFrame(values, index, columns)`` of a new array of the caller's, without pandas 3's copy of it.

    Its block laid out as that copy lays it out (channels by rows, C order), so later reductions add in the same
    order: a copy only where ``values`` is not already so (C-ordered rows).
    """
    return pd.DataFrame(np.ascontiguousarray(values.T).T, index=index, columns=columns, copy=False)


def _components(n_components) -> int:
    """``n_components`` checked: 0 gave an empty embedding, 2.7 two dimensions and -3 a pandas shape error."""
    import numbers

    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral) or n_components < 1:
        raise InvalidInputError(f"n_components must be a positive integer, got {n_components!r}")
    return int(n_components)
