"""Bundle a model trained by ``scripts/train_gpu.py`` as geos2vec's default model, and write its model card.

Inputs: the run's ``report.json`` and ``<run>.npz`` (best weights by held-out loss), the packed data's metadata
(``gpu/data.npz``: channels, normalization, sources, held-out sources), the held-out comparison of
``scripts/compare_holdout.py`` (``--holdout-json``) and the downstream evaluation folders of
``geos2vec evaluate`` (``--eval``, ``paired.csv`` and ``summary.csv``). Writes into ``--out`` (default
``geos2vec/pretrained``): the compact model (float16 weights, config, statistics, metadata), ``training_report.json``,
``training_curve.png`` and ``MODEL_CARD.md`` (also copied to ``docs/model_card.md``).

    python scripts/bundle_model.py --run /work/train_full --name paper-activity-s0 \\
        --holdout-json holdout.json --eval eval_new [--out geos2vec/pretrained]
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


# scripts/train_gpu.py's defaults of --max-epochs and --batch-size (a run's report.json records its command line)
TRAIN_DEFAULTS = {"--max-epochs": 400, "--batch-size": 256}
# the shortest abbreviation argparse takes for each (train_gpu.py also has --masks)
_SHORTEST = {"--max-epochs": "--max", "--batch-size": "--b"}


def _train_args(report) -> tuple[int, int]:
    """``(planned epochs, batch size)`` of a ``scripts/train_gpu.py`` run: its recorded command's ``--max-epochs``
    and ``--batch-size`` (or their abbreviations), else train_gpu.py's defaults (the card's schedule and batch are
    those of the run)."""
    command = report.get("command", "")
    try:
        words = shlex.split(command)
    except ValueError:  # " ".join(sys.argv) quotes nothing: a path with an apostrophe ("No closing quotation")
        words = command.split()
    out = dict(TRAIN_DEFAULTS)
    for i, w in enumerate(words):
        name, eq, value = w.partition("=")
        full = next((f for f, short in _SHORTEST.items() if name.startswith(short) and f.startswith(name)), None)
        if full and (eq or i + 1 < len(words)):
            out[full] = int(value if eq else words[i + 1])
    return out["--max-epochs"], out["--batch-size"]


def _fixed(history):
    """``(epoch, held-out loss on fixed masks)`` where the run logged it (the checkpoint criterion), else []."""
    return [(e + 1, h["val_fixed"]) for e, h in enumerate(history) if "val_fixed" in h]


def _best_epoch(history):
    """The kept checkpoint's epoch: lowest fixed-mask held-out loss, or lowest ``val_loss`` for older runs."""
    fixed = _fixed(history)
    return min(fixed, key=lambda t: t[1])[0] if fixed else int(np.argmin([h["val_loss"] for h in history])) + 1


def _curve(history, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ep = np.arange(1, len(history) + 1)
    ax.plot(ep, [h["loss"] for h in history], label="training loss (masked, covered)")
    ax.plot(ep, [h["val_loss"] for h in history], label="held-out loss (KY, NM, San José)")
    fixed = _fixed(history)
    if fixed:  # the checkpoint was chosen on the same four masks after every fit call
        ax.plot(*zip(*fixed), marker=".", label="held-out loss, 4 fixed masks (chose the checkpoint)")
    best = _best_epoch(history)
    ax.axvline(best, color="grey", ls=":", label=f"kept: epoch {best}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (normalized units)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _wins(h):
    """``w/n **beats** (p ...)`` of one paired row."""
    p = f", p {h.p_corrected:.2g}" if np.isfinite(h.p_corrected) else ""
    p += f" (Holm {h.p_holm:.2g})" if np.isfinite(h.p_holm) else ""
    return f"{int(h.wins)}/{int(h.n_splits)}" + (" **beats**" if h.beats else "") + p


def _downstream(eval_dirs):
    """Markdown: S2Vec (contextual) against the strong baselines, per task and probe, from the scores."""
    from geos2vec.evaluate import paired_table

    lines = []
    for d in eval_dirs:
        paired = paired_table(pd.read_csv(Path(d) / "scores.csv"))  # recomputed: older runs lack p_corrected
        summary = pd.read_csv(Path(d) / "summary.csv")
        a = "S2Vec (contextual)"
        for (task, split, probe), g in paired.groupby(["task", "split", "probe"], sort=False):
            r2 = summary[(summary.task == task) & (summary.split == split) & (summary.probe == probe)]
            r2 = dict(zip(r2.method, r2.r2_mean))
            rows = []
            for b in ("smoothed counts", "region one-hot", "untrained encoder"):
                hit = g[(g.method_a == a) & (g.method_b == b)]
                if len(hit):
                    rows.append(f"{b} ({r2.get(b, float('nan')):.3f}): {_wins(hit.iloc[0])}")
            for b in ("location-only", "counts-Loc"):
                loc = g[(g.method_a == f"{a}-Loc") & (g.method_b == b)]
                if len(loc):
                    rows.append(f"S2Vec-Loc vs {b}: {_wins(loc.iloc[0])}")
            if rows:
                lines.append(f"| {task} | {split} | {probe} | {r2.get(a, float('nan')):.3f} | " + "; ".join(rows)
                             + " |")
    return "\n".join(["| task | split | probe | S2Vec R² | wins against (their R²) |", "|---|---|---|---:|---|"]
                     + lines)


def _evaluation_page(eval_dirs, docs: Path):
    """``docs/evaluation_retrained.md``: each evaluation's report.md, its figures copied to docs/img/evaluate."""
    parts = ["# Evaluation of the bundled model\n",
             "Written by `scripts/bundle_model.py` from the `geos2vec evaluate` reports of the bundled model "
             "(see the [model card](model_card.md)).\n"]
    img = docs / "img" / "evaluate"
    img.mkdir(parents=True, exist_ok=True)
    for k, d in enumerate(eval_dirs):
        text = (Path(d) / "report.md").read_text().replace("# geos2vec evaluation", f"## Run {k + 1}", 1)
        # the model was evaluated from its folder before it was bundled: it is "default" now
        text = re.sub(r"--model /\S+", "--model default", text)
        text = text.replace("\n## ", "\n### ").replace(f"\n### Run {k + 1}", f"\n## Run {k + 1}")
        for png in sorted(Path(d).glob("*.png")):
            name = f"retrained_{k + 1}_{png.name}"
            shutil.copy(png, img / name)
            text = text.replace(f"]({png.name})", f"](img/evaluate/{name})")
        parts.append(text)
    (docs / "evaluation_retrained.md").write_text("\n".join(parts))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--name", required=True, help="<config>-s<seed> of the run")
    ap.add_argument("--data", type=Path, default=ROOT / "gpu" / "data.npz")
    ap.add_argument("--holdout-json", type=Path, required=True)
    ap.add_argument("--eval", type=Path, nargs="+", required=True)
    ap.add_argument("--holdout-by-source", type=Path, default=None,
                    help="compare_holdout.py --by-source [--stats DATA] JSON: the per-source table of the card")
    ap.add_argument("--holdout-by-source-note", default="", help="Markdown after the per-source table")
    ap.add_argument("--out", type=Path, default=ROOT / "geos2vec" / "pretrained")
    ap.add_argument("--hardware", default=None, help="the card's hardware row (default: the run's report.json "
                    "device on a GPU, else 'x86_64, 2 cores, CPU only ...')")
    ap.add_argument("--gpu", action="store_true", help="the run was on a lent GPU (changes the card's wording; "
                    "also taken from the run's report.json when its device is a GPU)")
    ap.add_argument("--note", default="", help="Markdown added after the downstream tables (e.g. the comparison "
                    "with the previous model)")
    ap.add_argument("--eval-heldout", type=Path, nargs="*", default=[],
                    help="evaluation folders restricted to the held-out states (geos2vec evaluate --states ...)")
    ap.add_argument("--planned-epochs", type=int, default=None,
                    help="the --max-epochs of the run (the cosine schedule); default: from the run's report.json")
    ap.add_argument("--batch-size", type=int, default=None, help="default: from the run's report.json")
    ap.add_argument("--seeds-note", default="one seed", help="which of the setting's seeds this is (the card's limits)")
    ap.add_argument("--train-command", default=None, help="the scripts/train_gpu.py command of the run")
    ap.add_argument("--next-step", default="Longer runs are the next step.", help="the card's limits: what is next")
    args = ap.parse_args(argv)

    from train_gpu import to_model

    report = json.loads((args.run / "report.json").read_text())
    run = report["configs"][args.name]
    planned, batch = _train_args(report)
    args.planned_epochs = planned if args.planned_epochs is None else args.planned_epochs
    args.batch_size = batch if args.batch_size is None else args.batch_size
    args.gpu = args.gpu or str(report.get("device", "")).lower().startswith(("gpu", "cuda"))
    if args.hardware is None:
        args.hardware = (str(report["device"]) if args.gpu and report.get("device") else
                         "x86_64, 2 cores, CPU only (TensorFlow backend), shared with other jobs")
    meta = json.loads(str(np.load(args.data)["meta"]))
    tmp = args.out.with_name(args.out.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    model = to_model(args.run / f"{args.name}.npz", run["config"], data=args.data, out=tmp)
    _curve(run["history"], tmp / "training_curve.png")
    held = json.loads(args.holdout_json.read_text())
    (tmp / "training_report.json").write_text(json.dumps(
        {"run": args.name, "config": run["config"], "overrides": run["overrides"], "seed": run["seed"],
         "epochs": run["epochs"], "train_seconds": run["train_s"], "best_val_loss": run["best_val_loss"],
         "params": run["params"], "train_views": report["train_views"], "val_views": report["val_views"],
         "holdout": meta["holdout"], "sources": meta["sources"], "history": run["history"],
         "holdout_reconstruction": run["holdout_covered"], "holdout_comparison": held,
         "hardware": args.hardware}, indent=1))

    cfg = model.config
    heldout_text = ""
    if args.eval_heldout:
        states = ", ".join(h.split(":", 1)[1].upper() for h in meta["holdout"] if h.startswith("wof:"))
        heldout_text = (f"\n### Only the held-out states ({states}; `--states`), whose venues the model never saw\n\n"
                        + _downstream(args.eval_heldout) + "\n")
    pos_text = ("MAE's 2-D sine-cosine codes (`position_init='sincos'`), then learned"
                if cfg.position_init == "sincos" else "small random numbers, learned")
    hist = run["history"]
    stride = meta.get("stride", 8)
    data = args.data.resolve()
    data_rel = data.relative_to(ROOT) if data.is_relative_to(ROOT) else args.data
    prep_args = (f" --stride {stride}" if stride != 8 else "") + f" --out {data_rel}"
    data_arg = "" if data == (ROOT / "gpu" / "data.npz").resolve() else f" --data {data_rel}"
    cut = run["epochs"] < args.planned_epochs  # stopped by the time limit before the schedule finished
    fixed = _fixed(hist)
    best_epoch = _best_epoch(hist)
    src = meta["sources"]
    wof = {k[4:]: v for k, v in src.items() if k.startswith("wof:")}
    osm = {k.split(":", 1)[1]: v for k, v in src.items() if not k.startswith("wof:")}
    held_names = ", ".join(meta["holdout"])
    hc = run["holdout_covered"]
    rec_rows = "\n".join(
        f"| {p} | {hc['loss_covered'][p]:.4f} | {hc['ratio_covered_to_visible_mean'][p]:.3f} | "
        f"{hc['activity_ratio'][p]:.3f} |" for p in ("model", "zero", "empty", "visible_mean", "local_mean"))
    cmp_rows = "\n".join(
        f"| {name} | {v['loss_covered']['model']:.4f} | {v['ratio_covered_to_visible_mean']['model']:.3f} | "
        f"{v['ratio_covered_to_visible_mean']['local_mean']:.3f} |" for name, v in held.items())
    by_source = ""
    if args.holdout_by_source:
        bs = json.loads(args.holdout_by_source.read_text())
        rows = []
        for key, v in bs.items():
            name = key.split("[", 1)[1].rstrip("]") if "[" in key else "all held-out sources, pooled"
            r = v["ratio_covered_to_visible_mean"]
            rows.append(f"| {name} | {v['loss_covered']['model']:.4f} | {r['model']:.3f} | {r['local_mean']:.3f} |")
        by_source = ("\n**Per source** (`scripts/compare_holdout.py default --by-source --stats DATA`: the channels a "
                     "source lacks left out of the score, in the units of the training data's statistics):\n\n"
                     "| held-out images | masked loss | ÷ visible-image mean | `local_mean` ÷ visible-image mean |\n"
                     "|---|---:|---:|---:|\n" + "\n".join(rows) + "\n\n" + args.holdout_by_source_note + "\n")
    text = f"""# Model card: geos2vec bundled S2Vec model (`load_model("default")`, since 0.3)

## What it is
A ViT masked autoencoder (S2Vec; MAE as in He et al. 2022) over images of 16 × 16 level-12 S2 cells (one
level-8 cell), each pixel the feature vector of one level-12 cell: {len(model.channels)} channels = 115 POI categories of
the geos2vec OSM ontology v1 + `road` (road segments crossing the cell), normalized as log(1 + count), then
feature-wise mean/variance over the training cells (`feature_stats.json`). Output: a {cfg.embedding_dim}-d vector per level-12
cell; the default `mode="contextual"` encodes each cell in overlapping 16 × 16 windows around it (no seams at
level-8 borders).

| | |
|---|---|
| architecture | encoder {cfg.encoder_layers} × {cfg.embedding_dim}, decoder {cfg.decoder_layers} × {cfg.decoder_dim}, {cfg.num_heads} heads, MLP ratio {cfg.mlp_ratio}, dropout {cfg.dropout} (the paper's Table 1); position embeddings start as {pos_text} |
| parameters | {run['params']:,} (float16 `weights.npz`) |
| objective | masked-patch MSE ({cfg.mask_ratio} masked) on **covered pixels and available channels only** (`scripts/train_gpu.py`'s loss weights; the saved config's `ignore_unobserved=True` makes `S2VecModel.fit` count *observed* cells instead, so fine-tune with `ignore_unobserved=False` to keep this objective), plus an activity term (`activity_weight={run['overrides'].get('activity_weight', 0)}`: the MSE of each masked cell's mean over channels) |
| optimizer | AdamW, lr {cfg.learning_rate}, cosine decay to {cfg.cosine_alpha}× over {args.planned_epochs} planned epochs, weight decay {cfg.weight_decay}, clipnorm {cfg.clipnorm}, batch {args.batch_size} (`config.json`'s `batch_size` {cfg.batch_size} and `epochs` {cfg.epochs} are `S2VecModel.fit`'s defaults for fine-tuning, not this run's) |
| training | {run['epochs']} epochs in {run['train_s'] / 60:.1f} min{' (time limit; the schedule did not finish)' if cut else ''}, {report['train_views']:,} training windows (16 × 16 at stride {stride} on the level-12 grid{'; each window in a random one of its eight flips/rotations per batch, `--augment`' if run.get('augment') else ''}); the checkpoint with the lowest held-out loss kept (checked between fit calls; {'on four fixed masks, best at epoch' if fixed else 'best single epoch'} {best_epoch}) |
| hardware | {args.hardware}{"" if args.gpu else " — **not a GPU**: no GPU was lent to this task"} |
| configuration | `scripts/train_gpu.py` config `{run['config']}` (`SWEEP`), seed {run['seed']} |

## Data
* **Who's On First venues** (CC0) of {len(wof)} US states, read with `geos2vec.io.read_wof` and mapped to the ontology by the
  shipped SimpleGeo crosswalk (`geos2vec/data/crosswalk_simplegeo_v1.csv`; classes without an OSM
  equivalent — offices, trades, wholesale, manufacturing — are dropped and reported, not forced into a
  channel). Coverage: each state's venue hull; the `road` channel is *missing* there, not zero.
* **OpenStreetMap** (© OpenStreetMap contributors, ODbL 1.0): POIs and roads of New York, Chicago, San José and
  Los Angeles (coverage: their city boxes) and {sum(1 for k in osm if k not in ('nyc', 'chicago', 'san_jose', 'los_angeles'))} `.osm.pbf` extracts (coverage: each file's header box).
* Level-12 cells with features per source: {", ".join(f"{k} {v:,}" for k, v in sorted(wof.items()))} (WOF);
  {", ".join(f"{k} {v:,}" for k, v in osm.items())} (OSM).
* **Held out entirely** (never seen in training; their level-8 images are the validation set that chose the
  epoch): {held_names} ({report['val_views']} images).
* Missing is not empty: pixels outside every source's coverage carry no loss, so the model is no longer taught
  that places end where a data box ends.

## Reconstruction on the held-out sources (20 seeded masks, covered pixels, POI channels)

From the training run (`report.json`), the model against the parameter-free predictors on the same masks:

| predictor | masked loss | ÷ visible-image mean | cell activity ÷ visible-image mean |
|---|---:|---:|---:|
{rec_rows}

The same images through `S2VecModel.evaluate` (`scripts/compare_holdout.py`), next to the previous bundled
model:

| model | masked loss (its own units) | ÷ visible-image mean | `local_mean` ÷ visible-image mean |
|---|---:|---:|---:|
{cmp_rows}

**Target (≤ 0.85× the visible-image mean): {"met" if hc['ratio_covered_to_visible_mean']['model'] <= 0.85 else "not met"}**; against the 5 × 5 local smoother
(`local_mean`, the strongest parameter-free predictor): {"beaten" if hc['ratio_covered_to_visible_mean']['model'] < hc['ratio_covered_to_visible_mean']['local_mean'] else "not beaten"}
({hc['ratio_covered_to_visible_mean']['model']:.3f} against {hc['ratio_covered_to_visible_mean']['local_mean']:.3f}). See `docs/model.md` for the sweep.
{by_source}
## Downstream (blocked splits, 20 paired splits; `geos2vec evaluate`)

{_downstream(args.eval)}

"beats" = better R² in at least 15 of 20 paired splits and Holm ≤ 0.05; p = the corrected resampled t-test of the 20
differences, Holm = p adjusted (Holm-Bonferroni) for every pairwise comparison of the task and probe
(Nadeau & Bengio 2003: the splits overlap, so a win count overstates certainty). Full tables: `docs/evaluation_retrained.md`. The ZIP
areas of these tasks lie in all 22 Who's On First states, and the venues of 20 of them were the model's
(label-free) pretraining data; the labels never were.
{heldout_text}
{args.note}

## Limits — read before use
* {"Trained on a lent GPU" if args.gpu else "Trained on CPU"} for {run['epochs']} epochs (the paper: 50), {"stopped by a time limit before its learning-rate schedule finished" if cut else "its whole learning-rate schedule"}, the checkpoint of epoch {best_epoch} kept; {args.seeds_note}. {args.next_step}
* Who's On First venues are a 2012-era SimpleGeo snapshot; OSM sources are of different years. Counts are not
  comparable across sources the way a single OSM planet snapshot would be, and WOF states have no roads.
* Cells without any POI or road get NaN by default (`outside="nan"`).
* Out of distribution: places unlike US states and the shared cities (other continents beyond the small
  European and South American extracts).

Reproduce: `python scripts/prepare_training_data.py{prep_args}`, then
`{args.train_command or f"python scripts/train_gpu.py --out RUN --configs {run['config']} --max-epochs {args.planned_epochs}"}`,
`python scripts/compare_holdout.py default RUN_MODEL --json holdout.json`, the evaluation, and
`python scripts/bundle_model.py --run RUN --name {args.name}{data_arg} --holdout-json holdout.json --eval EVAL_DIR`.
"""
    (tmp / "MODEL_CARD.md").write_text(text)
    if args.out.exists():
        shutil.rmtree(args.out)
    tmp.rename(args.out)
    shutil.copy(args.out / "MODEL_CARD.md", ROOT / "docs" / "model_card.md")
    _evaluation_page(args.eval + list(args.eval_heldout), ROOT / "docs")
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 2**20
    print(f"bundled {args.name} into {args.out} ({size:.1f} MiB)")


if __name__ == "__main__":
    main()
