"""TensorFlow's start-up lines, left out of a ``--quiet`` command's standard error.

TensorFlow 2.21 writes INFO lines from C++ while it is imported (``oneDNN custom operations are on``, the CPU
instructions it was built for, absl's note that it logs before ``InitializeLog``), and ignores
``TF_CPP_MIN_LOG_LEVEL`` for them. :func:`quiet_tensorflow_import` makes the first ``import tensorflow`` (by
Keras or by us) write its standard error to a temporary file and passes every other line on, so warnings and
errors still show; nothing is imported early (commands that never need TensorFlow stay fast).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

#: the start-up lines left out, whole lines only
NOISE = re.compile(r"(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                   r"|I\d{4} [\d:. ]+\d+ (port|cpu_feature_guard)\.cc:\d+\] .*"
                   r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler "
                   r"flags\.)")


@contextlib.contextmanager
def filtered_stderr():
    """Standard error (file descriptor 2, where C++ writes) without the lines :data:`NOISE` matches."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().decode(errors="replace").splitlines(True)
                    if not NOISE.fullmatch(line.rstrip("\r\n"))]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, and runs its import inside :func:`filtered_stderr`."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            with filtered_stderr():
                run(module)

        spec.loader.exec_module = exec_module
        return spec


def quiet_tensorflow_import() -> bool:
    """Leave TensorFlow's start-up lines out of its first import; False when it is imported already."""
    if "tensorflow" in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _Finder())
    return True
