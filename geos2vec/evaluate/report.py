"""Report: the summary table, paired comparisons, figures and a Markdown report.

* ``summary.csv``: ``task, split, method, probe, n_cells, r2_mean, r2_std, mae_mean, mae_std, n_splits``;
* ``paired.csv``: per task, split and probe, method A against method B on the same splits: mean ΔR²
  (A − B), the splits A wins and loses, the ties (equal up to round-off: neither), their number, the corrected
  t-test; "A beats B" is written only
  when A wins at least 3/4 of them (15 of 20) and a one-sided sign test over them gives p <= 0.05 (so never
  from fewer than 5 splits: 3 of 4 is p = 0.31), and only where the splits have different test sets: the
  repetitions of a ``region`` or ``holdout`` split share one test set (they differ in validation draws and
  MLP seeds), so there the verdict says which method is *ahead on that test set*;
* ``scores.csv``: every split's score; ``report.md`` with one figure per task.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from .significance import corrected_resampled_ttest

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from .._typing import StrPath
    from .protocol import EvaluationResult

__all__ = ["summary_table", "paired_table", "verdict", "summary_markdown", "write_report", "BEATS_SHARE", "BEATS_P",
           "sign_test_p"]

SUMMARY_COLUMNS = ["task", "split", "method", "probe", "n_cells", "r2_mean", "r2_std", "mae_mean", "mae_std",
                   "n_splits", "n_r2_nan"]
PAIRED_COLUMNS = ["task", "split", "probe", "method_a", "method_b", "delta_r2_mean", "delta_r2_std", "wins", "losses",
                  "ties", "n_splits", "n_r2_nan", "one_test_set", "t_corrected", "p_corrected", "beats"]
BEATS_SHARE = 0.75  # "A beats B": A wins at least this share of the paired splits (15 of 20)
#: R² differences up to ``TIE * max(1, |R²(A)|, |R²(B)|)`` are ties (round-off: the same fit through other BLAS
#: sums), counted as neither a win nor a loss and taken as 0 in the mean ΔR² and the t-test
TIE = 1e-9
#: ... and "A beats B" also needs P(at least that many wins of n_splits | a fair coin) <= BEATS_P (one-sided sign
#: test): 15 of 20 is 0.021, but 3 of 4 (75 %) is 0.31 and 4 of 4 is 0.063, so fewer than 5 splits never "beat"
BEATS_P = 0.05
# the baselines an embedding has to beat, in the order the report lists them
STRONG = ("smoothed counts", "region one-hot", "location-only", "counts", "untrained encoder")
# a method with location fused in ("...-Loc") also faces the counts with the same location encoding
STRONG_LOC = ("counts-Loc",)
# the baselines of standard_methods: every other method (an S2Vec mode, your own table) is compared with STRONG
BASELINES = ("counts", "smoothed counts", "PCA", "random projection", "region one-hot", "location-only", "counts-Loc")


def method_widths(methods: dict) -> dict[str, list[int]]:
    """``config["methods"]``: per method the widths of the blocks its probe sees.

    A transform replaces the blocks by one: ``pca`` keeps at most ``n_components`` (and at most the input
    width), ``random projection`` always has ``n_components`` columns. Before, the input width was recorded
    (116 for a 256-d random projection of 116 count channels).
    """
    out = {}
    for name, m in methods.items():
        widths = [int(b.shape[1]) for b in m.blocks]
        if m.transform == "pca":
            widths = [min(int(m.n_components), sum(widths))]
        elif m.transform == "random projection":
            widths = [int(m.n_components)]
        out[name] = widths
    return out


def merge_configs(configs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One ``config.json`` for the results of several split kinds (one :func:`evaluate` each).

    Settings shared by every kind are kept once; ``split`` becomes the list of kinds; per-kind dicts
    (``split_sizes``, ``purged``) are merged; a setting that only one kind has (``block_level`` of the
    ``blocked`` kind) keeps that value; any other difference is recorded per kind. Before, the first kind's
    config was written alone (``"split": "random", "block_level": null`` for a run that also had blocked splits).
    """
    configs = [dict(c) for c in configs]
    if len(configs) == 1:
        return configs[0]
    kinds = [c.get("split") for c in configs]
    merged: dict[str, Any] = {}
    for key in dict.fromkeys(k for c in configs for k in c):
        values = [c.get(key) for c in configs]
        known = [v for v in values if v is not None]
        if key == "split":
            merged[key] = kinds
        elif all(v == values[0] for v in values):
            merged[key] = values[0]
        elif all(isinstance(v, dict) for v in values):
            merged[key] = {k: v for d in values for k, v in d.items()}
        elif known and all(v == known[0] for v in known):
            merged[key] = known[0]
        else:
            merged[key] = dict(zip(map(str, kinds), values))
    return merged


def _scores(results) -> pd.DataFrame:
    if isinstance(results, pd.DataFrame):
        scores = results
    else:
        results = [results] if hasattr(results, "scores") else list(results)
        scores = pd.concat([r.scores if "task" in r.scores else r.scores.assign(task=r.config.get("task") or r.target)
                            for r in results], ignore_index=True)
    if "task" not in scores:
        scores = scores.assign(task="task")
    lost = [c for c in ("task", "split", "method", "probe") if c in scores and scores[c].isna().any()]
    if lost:  # pd.read_csv reads a method "NA", "None" or "null" as NaN, and groupby dropped its rows silently
        raise InvalidInputError(f"the scores have rows without a {lost[0]} (pd.read_csv reads the names 'NA', 'None',"
                                " 'null' as missing); read scores.csv with pd.read_csv(path, keep_default_na=False, "
                                "na_values=[''], dtype={'task': str, 'split': str, 'method': str, 'probe': str})")
    return scores


def summary_table(results: EvaluationResult | Iterable[EvaluationResult] | pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over splits per (task, split, method, probe), with exactly :data:`SUMMARY_COLUMNS`.

    Parameters
    ----------
    results : EvaluationResult, list of EvaluationResult or pandas.DataFrame
        Evaluation results, or their concatenated ``scores`` (a missing ``task`` column is filled with the
        result's ``config["task"]`` or target name, or with ``"task"`` for a bare table).

    Returns
    -------
    pandas.DataFrame
        Columns ``task, split, method, probe, n_cells, r2_mean, r2_std, mae_mean, mae_std, n_splits,
        n_r2_nan``, one row per (task, split, method, probe) in the order they first appear. ``n_splits``
        counts the repetitions, ``n_r2_nan`` those without an R² (a test set of one sample or of one label
        value): ``r2_mean`` and ``r2_std`` cover the other ``n_splits - n_r2_nan`` only.
    """
    scores = _scores(results)
    keys = ["task", "split", "method", "probe"]
    g = scores.groupby(keys, sort=False)
    out = pd.DataFrame({
        "n_cells": g["n_cells"].first(), "r2_mean": g["r2"].mean(), "r2_std": g["r2"].std(),
        "mae_mean": g["mae"].mean(), "mae_std": g["mae"].std(), "n_splits": g.size(),
        "n_r2_nan": g["r2"].apply(lambda r: int(r.isna().sum())),
    }).reset_index()
    return out[SUMMARY_COLUMNS]


def paired_table(results: EvaluationResult | Iterable[EvaluationResult] | pd.DataFrame,
                 methods: str | Collection[str] | None = None) -> pd.DataFrame:
    """Every pair of methods on the same splits: mean ΔR² (A − B), splits A wins, splits, "A beats B".

    ``methods`` (optional) restricts side A to these methods; side B is every other method.

    Parameters
    ----------
    results : EvaluationResult, list of EvaluationResult or pandas.DataFrame
        As for :func:`summary_table`.
    methods : str or collection of str, optional
        The methods of side A (one name as a str: before, a str was searched for substrings, so
        ``methods="counts-Loc"`` also put ``counts`` on side A).

    Returns
    -------
    pandas.DataFrame
        One row per (task, split, probe, A, B): ``delta_r2_mean`` and ``delta_r2_std`` of ``R²(A) - R²(B)``
        over the repetitions both have an R² on, ``wins`` (repetitions where A is higher), ``losses`` (where B
        is higher), ``ties`` (equal up to round-off: ``|ΔR²| <= TIE * max(1, |R²(A)|, |R²(B)|)``, :data:`TIE`
        = 1e-9; neither a win nor a loss, and a difference of 0 in the mean, SD and t-test), ``n_splits`` (the
        repetitions both were scored on: ``wins + losses + ties + n_r2_nan``), ``n_r2_nan`` (those of them
        without an R², a test set of one sample or one label value: neither a win nor a loss, and left out of
        the mean and the t-test), ``one_test_set`` (a
        ``region:...`` or ``holdout`` split: every repetition has the same test set), ``t_corrected`` and
        ``p_corrected`` (Nadeau & Bengio's corrected resampled t-test of the differences, two-sided, with the
        samples trained and validated on as the training size (``n_fit``; older scores: all not tested on):
        :func:`~geos2vec.evaluate.significance.corrected_resampled_ttest`; NaN where the repetitions share one
        test set or the scores lack ``n_cells``/``n_test``) and ``beats`` (A wins at least :data:`BEATS_SHARE`
        of the ``n_splits`` repetitions, those without R² included, with a one-sided sign test p <=
        :data:`BEATS_P`, and they have different test sets).

    Raises
    ------
    InvalidInputError
        Two methods' repetition ``k`` are not the same split (scores of ``evaluate`` runs with other seeds or
        samples: their ``split_id``, ``n_cells`` or ``n_test`` differ); before, they were paired silently.
    """
    scores = _scores(results)
    side_a = None if methods is None else _names(methods)
    rows = []
    for (task, split, probe), g in scores.groupby(["task", "split", "probe"], sort=False):
        _check_paired(g, task, split, probe)
        wide = g.pivot_table(index="rep", columns="method", values="r2", sort=False, dropna=False)
        have = g.groupby(["rep", "method"], sort=False).size().unstack().reindex(index=wide.index) > 0
        n_test = float(g["n_test"].mean()) if "n_test" in g else math.nan
        # the samples fitted on (training + validation; purged samples are neither); older scores: all but test
        n_fit = float(g["n_fit"].mean()) if "n_fit" in g else (
            float(g["n_cells"].mean()) - n_test if "n_cells" in g else math.nan)
        names = list(dict.fromkeys(g["method"]))
        for a in names if side_a is None else [m for m in names if m in side_a]:
            for b in names:
                if a == b:
                    continue
                both = have[a] & have[b]  # the repetitions both methods were scored on
                d, tie = _differences(wide[a][both], wide[b][both])
                n_both, n_nan = int(both.sum()), int(both.sum()) - len(d)  # NaN: a test set without R² (one value)
                # a repetition without R² is neither, but counts in n_splits: 6 wins of 8 scored of 20 are no "beats"
                wins, losses, one = int((d > 0).sum()), int((d < 0).sum()), _one_test_set(split)
                t, p = (math.nan, math.nan) if one else corrected_resampled_ttest(d, n_fit, n_test)
                rows.append(dict(task=task, split=split, probe=probe, method_a=a, method_b=b,
                                 delta_r2_mean=float(d.mean()) if len(d) else math.nan,
                                 delta_r2_std=float(d.std()), wins=wins, losses=losses, ties=tie, n_splits=n_both,
                                 n_r2_nan=n_nan, one_test_set=one, t_corrected=t, p_corrected=p,
                                 beats=bool(not one and _beats(wins, n_both))))
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)  # its columns also without pairs (one method: was none)


def _differences(r2_a: pd.Series, r2_b: pd.Series) -> tuple[pd.Series, int]:
    """``R²(A) - R²(B)`` of the repetitions both have an R² on, ties (round-off, :data:`TIE`) set to 0; the ties.

    Equal up to round-off is a tie: the same fit through other sums (a copy with its columns in another order,
    PCA or a rotation of the same table) scores 1e-16 off. Before, such differences went into the t-test as
    they were: 0 wins and 0 losses of 20 read ``p_corrected = 0.008`` when the round-off leaned one way.
    """
    d = (r2_a - r2_b).dropna()
    scale = np.maximum(1.0, np.maximum(np.abs(r2_a), np.abs(r2_b))).reindex(d.index)  # R² of -5e7: ulps of 7e-9
    tie = (d.abs() <= TIE * scale).to_numpy()
    return d.mask(tie, 0.0), int(tie.sum())


def _names(methods) -> list:
    """Method names: one name as a str (``list("mine")`` was ``["m", "i", "n", "e"]``), else each of them."""
    return [methods] if isinstance(methods, str) else list(methods)


def _check_paired(g: pd.DataFrame, task, split, probe) -> None:
    """Refuse to pair methods whose repetition ``k`` is not the same split (other seeds, samples: other runs)."""
    for col in ("split_id", "n_cells", "n_test"):
        if col not in g:
            continue
        known = g[g[col].notna()]
        per = known.groupby("rep")[col].nunique()
        if (per > 1).any():
            rep = per.index[(per > 1).to_numpy()][0]
            seen = known[known.rep == rep].drop_duplicates(col)
            raise InvalidInputError(
                f"task {task!r}, split {split!r}, probe {probe!r}: methods {sorted(set(seen.method))} were not scored "
                f"on the same splits (repetition {rep} differs in {col}: other seeds, samples or sample order, i.e. "
                "other evaluate() runs), so they cannot be paired. Evaluate them in one evaluate() call, or with the "
                "same seed on the same samples; or give the runs different task names")


def _one_test_set(split: str) -> bool:
    return split == "holdout" or split.startswith("region")


def sign_test_p(wins: int, n: int) -> float:
    """One-sided sign test: the probability of at least ``wins`` wins in ``n`` fair coin flips.

    Parameters
    ----------
    wins : int
        Paired splits that one method wins.
    n : int
        Paired splits (ties and splits without R² included: they are no wins).

    Returns
    -------
    float
        ``P(X >= wins)`` for ``X ~ Binomial(n, 1/2)``; ``"A beats B"`` needs it ``<= BEATS_P``.

    Examples
    --------
    >>> sign_test_p(15, 20), sign_test_p(3, 4)
    (0.020694732666015625, 0.3125)
    """
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n


def _beats(wins: int, n: int) -> bool:
    return bool(n) and wins >= math.ceil(BEATS_SHARE * n) and sign_test_p(wins, n) <= BEATS_P


def verdict(row: Any) -> str:
    """The report's verdict on one row of :func:`paired_table` (a row, or any object with its fields).

    ``"A beats B"`` / ``"B beats A"``: that side wins at least :data:`BEATS_SHARE` of the paired repetitions,
    and so many that a one-sided sign test gives p <= :data:`BEATS_P` (:func:`sign_test_p`; never from fewer
    than 5 repetitions)
    (ties, equal up to round-off, and repetitions without R² count for neither but are in ``n_splits``); where
    the repetitions share one test set (``one_test_set``) the same counts give
    ``"A ahead on one test set"`` / ``"B ahead on one test set"`` instead; otherwise ``"no clear winner"``.

    Parameters
    ----------
    row : pandas row or namedtuple
        With ``wins``, ``losses``, ``n_splits`` and ``one_test_set`` (lacking or NaN: from ``split``).

    Returns
    -------
    str
    """
    n, wins, losses = int(row.n_splits), int(row.wins), int(row.losses)  # a CSV may hold them as floats
    one = getattr(row, "one_test_set", None)  # a paired.csv from before 0.3 lacks it: NaN where concatenated
    one = _one_test_set(str(getattr(row, "split", ""))) if pd.isna(one) else str(one).strip().lower() in ("true", "1")
    if one:  # one comparison repeated: a sign test over it means nothing
        need = math.ceil(BEATS_SHARE * n)
        side = "A" if n and wins >= need else ("B" if n and losses >= need else None)
    else:
        side = "A" if _beats(wins, n) else ("B" if _beats(losses, n) else None)
    if side is None:
        return "no clear winner"
    return f"{side} ahead on one test set" if one else f"{side} beats {'B' if side == 'A' else 'A'}"


def _fmt(mean, std, digits=3):
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if np.isfinite(std) else f"{mean:.{digits}f}"


def summary_markdown(results: EvaluationResult | Iterable[EvaluationResult] | pd.DataFrame,
                     task: str | None = None) -> str:
    """The R² table: a row per method, a column per (split, probe), mean ± std over the splits.

    Parameters
    ----------
    results : EvaluationResult, list of EvaluationResult or pandas.DataFrame
        As for :func:`summary_table`.
    task : str, optional
        Only this task's rows (default: every row; give it when the results hold several tasks).

    Returns
    -------
    str
        A Markdown table; an empty cell where a method has no score, and "(k of n splits without R²)" where
        k repetitions had none (their test set held one label value), so the mean covers the other n - k.
    """
    s = summary_table(results)
    if task is not None:
        s = s[s.task == task]
    s = s.assign(col=s["split"] + " / " + s["probe"])
    cols = list(dict.fromkeys(s["col"]))
    methods = list(dict.fromkeys(s["method"]))
    lines = ["| method | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for m in methods:
        cells = []
        for c in cols:
            r = s[(s.method == m) & (s.col == c)]
            if not len(r):
                cells.append("")
                continue
            nan = int(r.n_r2_nan.iloc[0])  # the mean covers the repetitions with an R² only: say so
            cells.append(_fmt(r.r2_mean.iloc[0], r.r2_std.iloc[0])
                         + (f" ({nan} of {int(r.n_splits.iloc[0])} splits without R²)" if nan else ""))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _paired_markdown(paired: pd.DataFrame, task, embeddings) -> str:
    loc = paired.method_a.str.endswith("-Loc") & paired.method_b.isin(STRONG_LOC)
    p = paired[(paired.task == task) & paired.method_a.isin(embeddings) & (paired.method_b.isin(STRONG) | loc)]
    if p.empty:
        return ""
    lines = ["| A | B | split / probe | mean ΔR² | A wins / B wins | corrected p | verdict |",
             "|---|---|---|---|---|---|---|"]
    for r in p.itertuples():
        v = verdict(r)
        pc = "" if not np.isfinite(r.p_corrected) else f"{r.p_corrected:.2g}"
        nan = int(getattr(r, "n_r2_nan", 0) or 0)
        ties = int(getattr(r, "ties", 0) or 0)  # said: "0 / 0 of 20" of two copies read as 20 unexplained splits
        counts = (f"{r.wins} / {r.losses} of {r.n_splits}" + (f" ({nan} without R²)" if nan else "")
                  + (f", {ties} tied" if ties else ""))
        lines.append(f"| {r.method_a} | {r.method_b} | {r.split} / {r.probe} | {r.delta_r2_mean:+.3f} | "
                     f"{counts} | {pc} | {'**' + v + '**' if v == 'A beats B' else v} |")
    return "\n".join(lines)


def _test_sizes(scores: pd.DataFrame, task) -> str:
    """" Test samples per repetition: blocked 1–65, random 33." (whole blocks make blocked test sets uneven)."""
    if "n_test" not in scores:
        return ""
    g = scores[(scores.task == task) & scores["n_test"].notna()].groupby("split", sort=False)["n_test"]
    lo, hi = g.min().astype(int), g.max().astype(int)
    sizes = [f"{k} {a}" if a == b else f"{k} {a}–{b}" for k, a, b in zip(lo.index, lo, hi)]
    return " Test samples per repetition: " + ", ".join(sizes) + "." if sizes else ""


def plot_task(scores: pd.DataFrame, task: str, path):
    """R² (mean ± std over splits) of every method, one panel per (split, probe)."""
    from matplotlib.figure import Figure  # drawn without pyplot: the user's backend (e.g. Jupyter's) stays as it is

    s = summary_table(scores)
    s = s[s.task == task]
    if s.empty:
        tasks = sorted(set(summary_table(scores)["task"]))
        raise InvalidInputError(f"no scores for task {task!r}; the scores hold {tasks}")
    panels = list(dict.fromkeys(zip(s["split"], s["probe"])))
    methods = list(dict.fromkeys(s["method"]))
    cols = min(3, len(panels))
    rows = int(math.ceil(len(panels) / cols))
    fig = Figure(figsize=(4.2 * cols, 0.28 * len(methods) * rows + 1.5 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (split, probe) in zip(axes.ravel(), panels):
        r = s[(s.split == split) & (s.probe == probe)].set_index("method").reindex(methods)
        colors = ["tab:orange" if m.startswith(("S2Vec", "untrained")) else "tab:blue" for m in methods]
        y = np.arange(len(methods))
        ax.barh(y, r["r2_mean"].clip(lower=-0.5), xerr=r["r2_std"].fillna(0), color=colors, alpha=0.85)
        ax.set_yticks(y, methods if ax in axes[:, 0] else [""] * len(methods), fontsize=7)
        # every panel the same rows, top to bottom: a method without scores here (NaN) shrank the axis, and the
        # bars of unlabelled panels no longer lined up with the labels of the panel on their left
        ax.set_ylim(len(methods) - 0.5, -0.5)
        for yi, v in zip(y, r["r2_mean"].to_numpy()):
            if v < -0.5:  # drawn at the clip: its value is written next to it
                ax.text(-0.47, yi, f"{v:.2f}", va="center", ha="left", fontsize=7, color="white")
        ax.axvline(0, color="k", lw=0.5)
        top = float(np.nanmax(np.r_[r["r2_mean"].to_numpy(), 0.0]))
        ax.set_xlim(-0.55, max(0.1, top) + 0.15)  # extrapolation failures (R² of -100) would hide the rest
        ax.set_title(f"{split} / {probe}", fontsize=9)
        ax.set_xlabel("test R² (clipped at -0.5)", fontsize=8)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    fig.suptitle(task, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_report(results: EvaluationResult | Iterable[EvaluationResult] | pd.DataFrame, out: StrPath, *,
                 title: str = "geos2vec evaluation", config: dict[str, Any] | None = None,
                 command: str | None = None, embeddings: str | Iterable[str] | None = None) -> Path:
    """Write the report files into the folder ``out``; returns the path of ``report.md``.

    Files: ``summary.csv``, ``paired.csv``, ``scores.csv``, ``config.json``, one figure per task and
    ``report.md``. Each file is replaced whole, and ``report.md`` is removed first and written last: a folder
    that an interrupted run left without it holds an unfinished report (files of two runs), never one that
    reads as complete.

    ``embeddings``: the methods whose comparisons with the strong baselines the report lists (default: every
    method but the baselines of :func:`~geos2vec.evaluate.methods.standard_methods` and the ``untrained``
    controls, i.e. the S2Vec modes and your own tables; before, only names starting with ``S2Vec``).

    Parameters
    ----------
    results : EvaluationResult, list of EvaluationResult or pandas.DataFrame
        As for :func:`summary_table`.
    out : str or path-like
        The folder (created if needed; existing files of the same names are overwritten).
    title : str
        The report's heading.
    config : dict, optional
        Written to ``config.json``.
    command : str, optional
        The command that reproduces the run, quoted in the report.
    embeddings : str or list of str, optional
        As above.

    Returns
    -------
    pathlib.Path
        ``out / "report.md"``.
    """
    from .._jsonfile import atomic_path, write_text_atomic

    out = Path(out).expanduser()  # "~/report": pandas expands it, mkdir did not (OSError after a "./~" folder)
    out.mkdir(parents=True, exist_ok=True)
    scores = _scores(results)
    summary = summary_table(scores)
    paired = paired_table(scores)
    (out / "report.md").unlink(missing_ok=True)  # written last: a folder without it is an unfinished report
    for name, table in (("scores.csv", scores), ("summary.csv", summary), ("paired.csv", paired)):
        with atomic_path(out / name, suffix=".csv") as tmp:
            table.to_csv(tmp, index=False)
    write_text_atomic(out / "config.json", json.dumps(config or {}, indent=2, default=str))
    names = list(dict.fromkeys(scores["method"]))
    embeddings = [m for m in names if m not in BASELINES and not m.startswith("untrained")
                  ] if embeddings is None else _names(embeddings)
    text = [f"# {title}", ""]
    if command:
        text += ["Reproduce with:", "", "```bash", command, "```", ""]
    text += ["R² on the test samples (around their own mean), mean ± std over the splits. `random`: 60/20/20 at "
             "random; `blocked`: whole spatial blocks in train, validation or test; `region:A->B`: trained and "
             "validated on A, tested on B. "
             f"\"A beats B\" means A has the higher R² in at least {BEATS_SHARE:.0%} of the paired splits, and "
             f"a one-sided sign test over them gives p ≤ {BEATS_P:g} (with "
             f"different test sets; R² equal up to round-off, {TIE:g}, are ties, counted for neither); the repeated "
             "splits overlap, so the corrected p (Nadeau & Bengio's corrected resampled t-test) says how sure a "
             "difference is.", ""]
    slugs: set[str] = set()
    for task in dict.fromkeys(scores["task"]):
        slug = base = "".join(ch if ch.isalnum() else "_" for ch in str(task))
        while slug.lower() in slugs:  # "income a" and "income/a" shared r2_income_a.png: one figure for two tasks
            slug = f"{base}_{len(slugs) + 1}"
        slugs.add(slug.lower())
        with atomic_path(out / f"r2_{slug}.png", suffix=".png") as tmp:
            plot_task(scores, task, tmp)
        n = summary[summary.task == task]["n_cells"]
        text += [f"## {task}", "", f"{int(n.min())}–{int(n.max())} samples.{_test_sizes(scores, task)}", "",
                 summary_markdown(scores, task), "",
                 f"![R² per method]({f'r2_{slug}.png'})", ""]
        pm = _paired_markdown(paired, task, embeddings)
        if pm:
            text += ["Paired comparisons with the strong baselines:", "", pm, ""]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(text))
    return path
