"""How long the ``geos2vec`` program takes to exit once a command is done: ``gc.freeze`` at exit against Python's
own collections.

Both run the same command in fresh processes, alternating: ``python -m geos2vec ARGS`` (the program: ``main()``
registers ``gc.freeze`` as the last exit handler) against ``python -c "...main(sys.argv[1:])" ARGS`` (the same
command called from Python: nothing registered, Python collects as it shuts down). Each process writes the time
at which its exit handlers start; the rest of its wall time is the exit. Best of ``--repeat``; prints the load.

    python benchmarks/bench_cli_exit.py [--repeat 5] [-- ARGS]   (ARGS default: cells 34.05 -118.25)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

# the exit handler that stamps the time is registered first, so it runs after the command's own handlers and
# before gc.freeze (registered by main, runs last): what follows it is the interpreter's shutdown
_STAMP = ("import atexit, os, sys, time; "
          "atexit.register(lambda: open(os.environ['EXIT_STAMP'], 'w').write(repr(time.time()))); ")
PROGRAM = _STAMP + "sys.argv[0] = 'geos2vec'; from geos2vec.cli import main; " \
                   "sys.exit(main())"
CALL = _STAMP + "from geos2vec.cli import main; sys.exit(main(sys.argv[1:]))"


def exit_time(code: str, args: list[str]) -> tuple[float, float]:
    """``(wall s, exit s)`` of one fresh process running ``code`` with ``args``."""
    with tempfile.NamedTemporaryFile("r", suffix=".t") as stamp:
        t0 = time.time()
        subprocess.run([sys.executable, "-c", code, *args], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "EXIT_STAMP": stamp.name})
        t1 = time.time()
        return t1 - t0, t1 - float(stamp.read())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("args", nargs="*", default=["cells", "34.05", "-118.25"])
    a = ap.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}; command: geos2vec {' '.join(a.args)}")
    best = {"program (gc.freeze at exit)": [float("inf")] * 2, "call from Python (reference)": [float("inf")] * 2}
    for _ in range(a.repeat):
        for name, code in zip(best, (PROGRAM, CALL)):
            wall, ex = exit_time(code, a.args)
            best[name] = [min(best[name][0], wall), min(best[name][1], ex)]
    for name, (wall, ex) in best.items():
        print(f"{name:30s} wall {wall:6.2f} s   exit {ex:5.2f} s")
    (w1, e1), (w0, e0) = best.values()
    print(f"ratio (ours / reference): wall {w1 / w0:.2f}, exit {e1 / e0:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
