"""The city tract tasks (polygons pooled over cells) with and without purging shared cells; bundled model, ridge.

    python scripts/purge_effect.py [--out DIR] [--data ../shared/data]

Prints R² per task, split and method, and S2Vec's verdicts against the strong baselines, for ``purge=True``
and ``False`` (docs/evaluate.md "Polygon samples are purged"); writes each run's scores to ``DIR``. About 6
minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["nyc-tracts:medianinco", "chicago-tracts:EP_PCI"]
SHOWN = ["S2Vec (contextual)", "smoothed counts", "counts", "region one-hot", "location-only"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("purge_effect"))
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--n-splits", type=int, default=20)
    args = ap.parse_args(argv)

    from geos2vec.evaluate import paired_table, run_suite, verdict
    from geos2vec.options import set_options

    set_options(progress=False)
    args.out.mkdir(parents=True, exist_ok=True)
    for purge in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores, _ = run_suite(TASKS, splits=["blocked", "region"], probes=["ridge"], model="default",
                                  data_dir=args.data, n_splits=args.n_splits, seed=0, purge=purge,
                                  cache_dir=args.out / "cache", progress=False, log=print)
        scores.to_csv(args.out / f"scores_purge{int(purge)}.csv", index=False)
        r2 = scores.groupby(["task", "split", "method"]).r2.mean().unstack("method")
        print(f"\npurge={purge}\n{r2[SHOWN].round(3).to_string()}")
        p = paired_table(scores)
        p = p[(p.method_a == SHOWN[0]) & p.method_b.isin(["smoothed counts", "region one-hot", "untrained encoder"])]
        for r in p.itertuples():
            print(f"  {r.task} {r.split} vs {r.method_b}: {r.delta_r2_mean:+.3f}, "
                  f"{r.wins}/{r.losses} of {r.n_splits}, {verdict(r)}")


if __name__ == "__main__":
    main()
