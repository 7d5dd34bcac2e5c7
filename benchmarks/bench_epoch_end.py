"""The wait at the end of a Keras ``fit`` epoch: geos2vec's ``make_dataset`` against the same pipeline autotuned.

Keras deletes an epoch's ``tf.data`` iterator when the epoch ends. With tf.data's autotuning on, that deletion
waited for the autotuner's next wake-up (its period doubles: 10 ms, 20 ms, 40 ms, ...), so an epoch's end
stalled for up to the epoch's own length. ``make_dataset`` turns autotuning off; this benchmark times the same
``fit`` calls (small model, 128 synthetic images, batch 64) on the library's pipeline and on that pipeline with
autotuning switched back on, alternating, and prints the time between the last step's end and ``fit``'s return.

    python benchmarks/bench_epoch_end.py [--steps 5 10 20 40 80]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_model  # noqa: E402  (synthetic images)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 40, 80])
    args = ap.parse_args()

    import keras
    import tensorflow as tf

    from geos2vec.model import S2VecConfig, S2VecModel
    from geos2vec.model.data import make_dataset
    from geos2vec.model.train import make_optimizer

    cfg = S2VecConfig(encoder_layers=2, embedding_dim=128, decoder_layers=1, decoder_dim=64)
    da = bench_model.synthetic(128, 16, 64)
    model = S2VecModel(cfg.replace(epochs=1, validation_split=0.0, shuffle_buffer=128))
    model.build(da)
    km = model.keras_model
    km.compile(optimizer=make_optimizer(cfg, 10, 1))
    ours = make_dataset(da, model.stats, batch_size=64, shuffle_buffer=128, seed=0, drop_remainder=True)
    on = tf.data.Options()
    on.autotune.enabled = True
    pipelines = {"geos2vec (no autotuning)": ours.repeat(), "same pipeline, autotuned": ours.with_options(on).repeat()}

    class LastStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.t = time.perf_counter()

    for ds in pipelines.values():  # tracing, once per pipeline
        km.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'steps':>5} | " + " | ".join(f"{name}: steps s, wait s" for name in pipelines))
    for steps in args.steps:
        cells = []
        for ds in pipelines.values():
            cb = LastStep()
            t0 = time.perf_counter()
            km.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[cb])
            t1 = time.perf_counter()
            cells.append(f"{cb.t - t0:6.2f}, {t1 - cb.t:5.2f}")
        print(f"{steps:>5} | " + " | ".join(cells), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
