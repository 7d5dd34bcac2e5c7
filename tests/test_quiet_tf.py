"""``--quiet`` commands leave TensorFlow's C++ start-up lines out of standard error, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from geos2vec import _quiet_tf


def test_filtered_stderr_drops_only_the_start_up_lines(capfd):
    lines = [b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
             b"I0000 00:00:1795824595.401533    1198 port.cc:153] oneDNN custom operations are on. You may see\n",
             b"W0000 00:00:1795824595.401533    1198 gpu_device.cc:2] Cannot dlopen some GPU libraries.\n",
             b"I0000 00:00:1795824595.571075    1198 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n",
             b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
             b"appropriate compiler flags.\n",
             b"a user's own line\n"]
    with _quiet_tf.filtered_stderr():
        for line in lines:
            os.write(2, line)
    err = capfd.readouterr().err
    assert err == lines[2].decode() + lines[5].decode()


def test_the_first_tensorflow_import_is_quiet_and_errors_still_show():
    pytest.importorskip("tensorflow")
    code = ("import os, sys\n{setup}\nimport keras\nos.write(2, b'after\\n')\n"
            "import tensorflow as tf\nprint(float(tf.constant(1.0) + 1))\n")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    run = [sys.executable, "-c"]
    loud = subprocess.run(run + [code.format(setup="")], capture_output=True, text=True, timeout=300, env=env)
    quiet = subprocess.run(run + [code.format(setup="from geos2vec._quiet_tf import quiet_tensorflow_import\n"
                                                    "assert quiet_tensorflow_import()")],
                           capture_output=True, text=True, timeout=300, env=env)
    assert quiet.returncode == 0 and quiet.stdout.strip() == "2.0", quiet.stderr
    noisy = [line for line in loud.stderr.splitlines() if _quiet_tf.NOISE.fullmatch(line)]
    assert not [line for line in quiet.stderr.splitlines() if _quiet_tf.NOISE.fullmatch(line)]
    assert quiet.stderr.splitlines()[-1:] == ["after"]
    assert set(quiet.stderr.splitlines()) == set(loud.stderr.splitlines()) - set(noisy)


def test_the_cli_installs_it_for_quiet_commands(monkeypatch):
    from geos2vec import cli

    calls = []
    monkeypatch.setattr(_quiet_tf, "quiet_tensorflow_import", lambda: calls.append(1))
    monkeypatch.setattr(cli, "_main", lambda argv: 0)
    assert cli.main(["evaluate", "--quiet"]) == 0 and calls == [1]
    assert cli.main(["evaluate"]) == 0 and calls == [1]
