"""One optimizer step: geos2vec's ``FusedAdamW`` against Keras' ``AdamW`` on the paper-size model's variables.

The 109 trainable variables (5.3 M parameters) of the paper-size masked autoencoder, fixed random gradients,
the library's settings (cosine schedule, weight decay 0.001, clipnorm 1.0). Per optimizer, alternating in one
process, best of ``--repeat``:

* ``build``: creating the optimizer's variables;
* eager ``apply``: one step as a short ``fit`` (``run_eagerly="auto"``) runs it;
* tracing: the first call of ``tf.function(apply)`` (the graph a long ``fit`` builds once);
* traced ``apply``: later calls of that function.

    python benchmarks/bench_optimizer.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import time


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf

    from geos2vec.model.config import S2VecConfig
    from geos2vec.model.mae import build_mae
    from geos2vec.model.optimizer import FusedAdamW

    cfg = S2VecConfig()
    model = build_mae(cfg, 256, 116, dtype="float32")
    variables = model.trainable_variables
    rng = np.random.default_rng(0)
    grads = [tf.constant(rng.normal(size=v.shape).astype("float32") * 1e-3) for v in variables]
    print(f"{len(variables)} variables, {sum(int(np.prod(v.shape)) for v in variables):,} parameters; "
          f"{os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}; best of {args.repeat}")

    def make(cls):
        schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, 1000, alpha=cfg.cosine_alpha)
        return cls(learning_rate=schedule, weight_decay=cfg.weight_decay, clipnorm=cfg.clipnorm)

    classes = {"Keras AdamW": keras.optimizers.AdamW, "FusedAdamW": FusedAdamW}
    res = {name: {} for name in classes}
    for _ in range(2):  # alternate, keep the best of both rounds
        for name, cls in classes.items():
            r = res[name]
            r["build"] = min(r.get("build", 1e9), best(lambda: make(cls).build(variables), args.repeat))
            opt = make(cls)
            opt.build(variables)
            r["eager"] = min(r.get("eager", 1e9), best(lambda: opt.apply(grads, variables), args.repeat))
            traces = []
            for _ in range(max(1, args.repeat // 2)):
                fn = tf.function(lambda: opt.apply(grads, variables))
                t0 = time.perf_counter()
                fn()
                traces.append(time.perf_counter() - t0)
            r["trace"] = min(r.get("trace", 1e9), min(traces))
            r["graph"] = min(r.get("graph", 1e9), best(fn, args.repeat))
    print(f"load after: {os.getloadavg()[0]:.2f}\n")
    print(f"{'stage':34s}{'Keras AdamW':>14s}{'FusedAdamW':>14s}{'fused / Keras':>15s}")
    for key, label in (("build", "build (variables), s"), ("eager", "eager apply, s"),
                       ("trace", "first traced call (tracing), s"), ("graph", "traced apply, s")):
        a, b = res["Keras AdamW"][key], res["FusedAdamW"][key]
        print(f"{label:34s}{a:14.4f}{b:14.4f}{b / a:15.2f}")


if __name__ == "__main__":
    main()
