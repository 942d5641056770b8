"""bench/gpu_throughput.py stays runnable: its CPU smoke mode, on JAX (the GPU machine's
backend), through every code path of the real run but the RESULTS.md write."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu_throughput.py"

pytestmark = [
    pytest.mark.jax,
    pytest.mark.skipif(
        keras.backend.backend() != "jax",
        reason="runs in make test's JAX leg: the GPU machine has JAX and no TensorFlow",
    ),
]


def test_smoke_mode_measures_every_precision_and_the_pipeline(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke"],
        cwd=tmp_path,  # it must not depend on the working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for precision in ("float32", "mixed_bfloat16"):
        assert f"SUNDERMEYER batch 64 {precision}:" in out
    assert "pipeline, 1 workers:" in out
    assert "| SUNDERMEYER | 64 | mixed_bfloat16 |" in out
    assert "## AAE training throughput on a GPU" in out  # printed, not written (smoke)
