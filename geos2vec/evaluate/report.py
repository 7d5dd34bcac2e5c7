"""Report: the files of an evaluation, its figures and a Markdown report (:func:`write_report`).

* ``summary.csv``: ``task, split, method, probe, n_cells, r2_mean, r2_std, mae_mean, mae_std, n_splits``
  (:mod:`~geos2vec.evaluate.summary`);
* ``paired.csv``: per task, split and probe, method A against method B on the same splits, and whether "A beats
  B" (a share of the splits won, a one-sided sign test and the Holm-adjusted corrected t-test;
  :mod:`~geos2vec.evaluate.paired`);
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
# the paired comparisons (paired.csv) and the summary (summary.csv) have modules of their own; their names stay
# importable from here
from .paired import (  # noqa: F401
    BEATS_P,
    BEATS_SHARE,
    PAIRED_COLUMNS,
    TIE,
    _beats,
    _check_paired,
    _differences,
    _names,
    _one_test_set,
    paired_table,
    sign_test_p,
    verdict,
)
from .summary import SUMMARY_COLUMNS, _scores, summary_table  # noqa: F401
from .significance import corrected_resampled_ttest as corrected_resampled_ttest  # importable here before

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .._typing import StrPath
    from .result import EvaluationResult

__all__ = ["summary_table", "paired_table", "verdict", "summary_markdown", "write_report", "BEATS_SHARE", "BEATS_P",
           "sign_test_p"]

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
    lines = ["| method | " + " | ".join(map(_md_cell, cols)) + " |", "|---|" + "---|" * len(cols)]
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
        lines.append(f"| {_md_cell(m)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _md_cell(name) -> str:
    """``name`` as one Markdown table cell: a ``|`` in a method, region or task name split the row (escaped)."""
    return " ".join(str(name).split("\n")).replace("|", "\\|")


def _paired_markdown(paired: pd.DataFrame, task, embeddings) -> str:
    loc = paired.method_a.str.endswith("-Loc") & paired.method_b.isin(STRONG_LOC)
    p = paired[(paired.task == task) & paired.method_a.isin(embeddings) & (paired.method_b.isin(STRONG) | loc)]
    if p.empty:
        return ""
    lines = ["| A | B | split / probe | mean ΔR² | A wins / B wins | corrected p | Holm p | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for r in p.itertuples():
        v = verdict(r)
        pc = "" if not np.isfinite(r.p_corrected) else f"{r.p_corrected:.2g}"
        ph = "" if not np.isfinite(r.p_holm) else f"{r.p_holm:.2g}"
        nan = int(getattr(r, "n_r2_nan", 0) or 0)
        ties = int(getattr(r, "ties", 0) or 0)  # said: "0 / 0 of 20" of two copies read as 20 unexplained splits
        counts = (f"{r.wins} / {r.losses} of {r.n_splits}" + (f" ({nan} without R²)" if nan else "")
                  + (f", {ties} tied" if ties else ""))
        lines.append(f"| {_md_cell(r.method_a)} | {_md_cell(r.method_b)} | {_md_cell(r.split)} / {_md_cell(r.probe)} | "
                     f"{r.delta_r2_mean:+.3f} | "
                     f"{counts} | {pc} | {ph} | {'**' + v + '**' if v == 'A beats B' else v} |")
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
    from .._jsonfile import atomic_path, write_lock, write_text_atomic

    out = Path(out).expanduser()  # "~/report": pandas expands it, mkdir did not (OSError after a "./~" folder)
    out.mkdir(parents=True, exist_ok=True)
    scores = _scores(results)
    summary = summary_table(scores)
    paired = paired_table(scores)
    # one writer at a time (two runs given one --out, a notebook and a cron job): the other waits, else the folder
    # held one run's report.md beside the other's scores.csv, summary.csv and config.json
    with write_lock(out / ".report.lock"):
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
                 f"different test sets; R² equal up to round-off, {TIE:g}, are ties, counted for neither), and the "
                 f"Holm p is ≤ {BEATS_P:g}: the repeated splits overlap, so the corrected p (Nadeau & Bengio's "
                 "corrected resampled t-test) says how sure one difference is, and the Holm p adjusts it "
                 "(Holm-Bonferroni) for all the pairwise comparisons of the task and probe in `paired.csv`.", ""]
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
