"""The canonical column order of a feature table: what a random projection follows, not the table's layout."""

from __future__ import annotations

import numpy as np


def canonical_order(columns) -> np.ndarray:
    """Positions of ``columns`` in canonical order.

    The default ontology's channels and ``road`` come first, in the order :func:`geos2vec.count_features` writes
    them (so its tables keep their order, and their random projections their scores); every other column
    follows by name. A seeded Gaussian matrix applied in this order projects the same table the same way
    whatever the order of its columns (before, by position: another column order was another draw).

    Parameters
    ----------
    columns : sequence
        Column labels (compared as ``str``).

    Returns
    -------
    numpy.ndarray of int
        ``order`` such that ``table.iloc[:, order]`` is the canonical layout (equal labels keep their order).
    """
    from ..ontology import ROAD_CHANNEL, load_ontology

    known = {c: k for k, c in enumerate([*load_ontology("default").channels, ROAD_CHANNEL])}
    keys = [(0, known[c], "") if c in known else (1, 0, c) for c in map(str, columns)]
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.intp)
