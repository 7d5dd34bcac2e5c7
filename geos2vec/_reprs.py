"""Short, bounded reprs of geos2vec's public objects: what a notebook shows when a cell ends with one.

The dataclass reprs printed every channel name and every value (50,000 characters for a 5,000-channel
:class:`~geos2vec.normalize.FeatureStats`) or whole DataFrames (an evaluation result, a method's tables).
These say what the object is in a line or a short table, whatever its size.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

#: rows of the summary table an :class:`~geos2vec.evaluate.EvaluationResult` shows
MAX_ROWS = 20


def short_list(items: Any, head: int = 3, tail: int = 1) -> str:
    """``['a', 'b', 'c', ..., 'z']``: the first ``head`` and last ``tail`` items of a long list.

    Parameters
    ----------
    items : iterable
        The items (their ``repr`` is shown).
    head, tail : int
        How many to show from each end when there are more than ``head + tail + 1``.

    Returns
    -------
    str
    """
    items = list(items)
    if len(items) <= head + tail + 1:
        return repr(items)
    shown = [repr(v) for v in items[:head]] + ["..."] + [repr(v) for v in items[len(items) - tail:]]
    return f"[{', '.join(shown)}]"


def _count(count: Any) -> str:
    values = np.asarray(count)
    if values.ndim == 0:
        return f"{int(values):,}"
    if values.size == 0:
        return "[]"
    lo, hi = int(values.min()), int(values.max())
    return f"{lo:,}" if lo == hi else f"{lo:,}..{hi:,} per channel"


def feature_stats_repr(stats: Any) -> str:
    """``FeatureStats(116 channels ['police', ..., 'road'], count=12,345, log1p=True)``.

    Parameters
    ----------
    stats : FeatureStats

    Returns
    -------
    str
    """
    channels = list(stats.channels)
    parts = [f"{len(channels)} channel{'s' * (len(channels) != 1)} {short_list(channels)}",
             f"count={_count(stats.count)}", f"log1p={bool(stats.log1p)}"]
    if stats.eps != 1e-6:
        parts.append(f"eps={stats.eps!r}")
    if stats.meta:
        parts.append(f"meta keys {short_list(sorted(map(str, stats.meta)))}")
    return f"FeatureStats({', '.join(parts)})"


def _block(block: Any) -> str:
    shape = getattr(block, "shape", None)
    return "x".join(str(n) for n in shape) if shape is not None else type(block).__name__


def method_repr(method: Any) -> str:
    """``Method(blocks=[180x116, 180x3], transform='pca', n_components=256, scale=[True, False], seed=0)``.

    Parameters
    ----------
    method : geos2vec.evaluate.Method

    Returns
    -------
    str
        Each block by its shape (rows x columns), not its values.
    """
    blocks = list(method.blocks)
    shown = ", ".join(_block(b) for b in blocks[:6]) + (f", ... ({len(blocks)} blocks)" if len(blocks) > 6 else "")
    scale = method.scale if method.scale is None or len(method.scale) <= 6 else short_list(method.scale)
    return (f"Method(blocks=[{shown}], transform={method.transform!r}, n_components={method.n_components}, "
            f"scale={scale}, seed={method.seed})")


def _names(scores: Any, column: str) -> list:
    return list(dict.fromkeys(scores[column])) if column in getattr(scores, "columns", ()) else []


def result_header(result: Any) -> str:
    """The first line of an evaluation result's repr: target, samples, splits, methods, probes, time.

    Parameters
    ----------
    result : geos2vec.evaluate.EvaluationResult

    Returns
    -------
    str
    """
    scores = result.scores
    splits, methods, probes = (_names(scores, c) for c in ("split", "method", "probe"))
    reps = scores["rep"].nunique() if "rep" in getattr(scores, "columns", ()) else 0
    return (f"EvaluationResult(target={result.target!r}, {result.n_cells:,} samples, "
            f"splits {short_list(splits)} x {reps} rep{'s' * (reps != 1)}, methods {short_list(methods)}, "
            f"probes {probes}, {result.wall_time_s:.1f} s)")


def _summary(result: Any):
    try:
        return result.summary()
    except Exception:  # noqa: BLE001 - a result built by hand without the score columns: the header only
        return None


def result_repr(result: Any) -> str:
    """The header line and the mean/std table of :meth:`EvaluationResult.summary` (at most 20 rows).

    Parameters
    ----------
    result : geos2vec.evaluate.EvaluationResult

    Returns
    -------
    str
    """
    table = _summary(result)
    head = result_header(result)
    if table is None or table.empty:
        return head
    return f"{head}\n{table.to_string(max_rows=MAX_ROWS, index=False)}"


def result_html(result: Any) -> str:
    """The header and the summary table as HTML (Jupyter's rich display).

    Parameters
    ----------
    result : geos2vec.evaluate.EvaluationResult

    Returns
    -------
    str
    """
    table = _summary(result)
    head = f"<p><code>{html.escape(result_header(result))}</code></p>"
    if table is None or table.empty:
        return head
    return head + table.to_html(max_rows=MAX_ROWS, index=False)
