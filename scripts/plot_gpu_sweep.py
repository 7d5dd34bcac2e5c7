"""Training curves of the GPU sweeps: held-out (Keras ``val_loss``) and training loss per epoch, one line per run.

Reads the sweep reports kept in ``docs/training/`` (``scripts/gpu_session.sh`` / ``scripts/train_gpu.py``
output, gathered per lease) and writes one figure: left the held-out loss (a 5-epoch running mean beside the
raw values: Keras draws new masks every epoch; where a run logged it, the loss on fixed masks that chose its
checkpoint instead of the running mean), right the training loss; colour by setting (``+flips``: trained
with ``--augment``), line style by lease (a lease ran one schedule length). Marks each run's held-out reconstruction ratio (model ÷ visible-image mean) at its last epoch.

    python scripts/plot_gpu_sweep.py docs/training/gpu-sweep-2026-11-26b.json --out docs/img/training/gpu_sweep.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def runs(report: dict):
    """``(lease, run name, run dict)`` for every run with a history in a gathered sweep report."""
    for lease, body in report.get("leases", {"": report}).items():
        for name, run in body.get("configs", {}).items():
            if run.get("history"):
                yield lease, name, run


def main(argv=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("reports", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--exclude", default=None,
                    help="leave out runs whose name contains this (e.g. a loss on another scale: nonempty3)")
    args = ap.parse_args(argv)
    styles = {}
    fig, (ax_val, ax_train) = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    colours = {}
    for path in args.reports:
        for lease, name, run in runs(json.loads(path.read_text())):
            if args.exclude and args.exclude in name:
                continue
            setting = run.get("config", name.rsplit("-s", 1)[0]) + (" +flips" if run.get("augment") else "")
            colour = colours.setdefault(setting, f"C{len(colours)}")
            style = styles.setdefault((path, lease), ("-", "--", ":", "-.")[len(styles) % 4])  # one per lease
            val = np.array([h["val_loss"] for h in run["history"]])
            loss = np.array([h["loss"] for h in run["history"]])
            epochs = np.arange(1, len(val) + 1)
            smooth = np.convolve(val, np.ones(5) / 5, mode="valid")
            ax_val.plot(epochs, val, color=colour, alpha=0.15, lw=0.8)
            label = f"{setting} s{run.get('seed', '?')} ({lease or path.stem})"
            fixed = [(e, h["val_fixed"]) for e, h in zip(epochs, run["history"]) if "val_fixed" in h]
            if fixed:  # the checkpoint criterion: the same 4 masks after every fit call (less noisy)
                end_x, end_y = np.array(fixed).T
                ax_val.plot(end_x, end_y, color=colour, ls=style, lw=1.4, label=label + ", fixed masks")
            else:
                end_x, end_y = epochs[4:], smooth
                ax_val.plot(end_x, end_y, color=colour, ls=style, lw=1.4, label=label)
            ax_train.plot(epochs, loss, color=colour, ls=style, lw=1.2)
            ratio = ((run.get("holdout_covered") or {}).get("ratio_covered_to_visible_mean") or {}).get("model")
            if ratio is not None:
                ax_val.annotate(f"{ratio:.3f}×", (end_x[-1], end_y[-1]), fontsize=7, color=colour,
                                xytext=(3, 0), textcoords="offset points", va="center")
    ax_val.set(title="held-out loss (fixed masks, else 5-epoch mean)\nlabels: reconstruction ÷ visible mean",
               xlabel="epoch",
               ylabel="masked loss")
    ax_train.set(title="training loss (first epochs off the scale)", xlabel="epoch")
    low = min(line.get_ydata().min() for line in ax_train.get_lines())
    ax_train.set_ylim(low - 0.005, low + 0.05)
    ax_val.legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
