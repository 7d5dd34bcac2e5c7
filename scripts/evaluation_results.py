"""Write ``docs/evaluation_results.md`` from ``geos2vec evaluate`` output folders (their summary/paired CSVs).

    python scripts/evaluation_results.py RIDGE_DIR [MLP_DIR ...] --out docs/evaluation_results.md

Every table is copied from the CSVs of the runs, next to the command that produced them (from the run's
``report.md``); figures are copied to ``docs/img/evaluate/``.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import pandas as pd

from geos2vec.evaluate.report import paired_table, verdict

ROOT = Path(__file__).resolve().parents[1]
STRONG = ["smoothed counts", "region one-hot", "location-only", "untrained encoder"]


def _command(folder: Path) -> str:
    m = re.search(r"```bash\n(.*?)\n```", (folder / "report.md").read_text(), re.S)
    return m.group(1) if m else "(command not recorded)"


def _table(summary: pd.DataFrame, task: str) -> list[str]:
    s = summary[summary.task == task].copy()
    s["col"] = s["split"] + " / " + s["probe"]
    cols = list(dict.fromkeys(s["col"]))
    lines = ["| method | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for method, g in s.groupby("method", sort=False):
        cells = [g[g.col == c] for c in cols]
        lines.append(f"| {method} | " + " | ".join(
            f"{r.r2_mean.iloc[0]:.3f} ± {r.r2_std.iloc[0]:.3f}" if len(r) else "" for r in cells) + " |")
    return lines


def _verdicts(paired: pd.DataFrame, task: str) -> list[str]:
    loc = paired.method_a.str.endswith("-Loc") & (paired.method_b == "counts-Loc")
    p = paired[(paired.task == task) & paired.method_a.str.startswith("S2Vec") & (paired.method_b.isin(STRONG) | loc)]
    if p.empty:
        return []
    lines = ["| A | B | " + " | ".join(dict.fromkeys(p["split"] + " / " + p["probe"])) + " |"]
    cols = list(dict.fromkeys(p["split"] + " / " + p["probe"]))
    lines.append("|---|---|" + "---|" * len(cols))
    for (a, b), g in p.groupby(["method_a", "method_b"], sort=False):
        g = g.assign(col=g["split"] + " / " + g["probe"]).set_index("col")
        cells = []
        for c in cols:
            if c not in g.index:
                cells.append("")
                continue
            r = g.loc[c]
            mark = {"A beats B": "**beats**", "B beats A": "loses", "no clear winner": "tie",
                    "A ahead on one test set": "ahead (one test set)",
                    "B ahead on one test set": "behind (one test set)"}[verdict(r)]
            cells.append(f"{r.delta_r2_mean:+.3f}, {r.wins}/{r.n_splits} {mark}")
        lines.append(f"| {a} | {b} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "evaluation_results.md")
    ap.add_argument("--intro", type=Path, default=None, help="Markdown placed before the tables")
    args = ap.parse_args(argv)
    img = args.out.parent / "img" / "evaluate"
    img.mkdir(parents=True, exist_ok=True)
    text = [args.intro.read_text() if args.intro else "# Evaluation results", ""]
    for run in args.runs:
        summary = pd.read_csv(run / "summary.csv")
        paired = paired_table(pd.read_csv(run / "scores.csv"))  # recomputed: runs of older versions lack columns
        probes = "+".join(dict.fromkeys(summary["probe"]))
        text += [f"## Probe: {probes} (`{run.name}`)", "", "```bash", _command(run), "```", ""]
        for task in dict.fromkeys(summary["task"]):
            n = summary[summary.task == task]["n_cells"]
            text += [f"### {task} ({probes}; {int(n.max())} samples)", ""] + _table(summary, task) + [""]
            v = _verdicts(paired, task)
            if v:
                text += ["S2Vec against the strong baselines (mean ΔR², splits won of the paired splits):", ""] + v + [""]
            slug = "".join(ch if ch.isalnum() else "_" for ch in task)
            fig = run / f"r2_{slug}.png"
            if fig.exists():
                target = img / f"{run.name}_{slug}.png"
                shutil.copyfile(fig, target)
                text += [f"![{task}](img/evaluate/{target.name})", ""]
    args.out.write_text("\n".join(text))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
