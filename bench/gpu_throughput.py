"""AAE training throughput on a GPU (JAX backend): ms per step, images/s, FLOP use.

For SUNDERMEYER, BOP, NAS-2 and the largest configuration of the space at 128², batch 64
(NAS-2 and the largest also at their MB of 128), in float32 and in mixed bfloat16 (the
network setting ``precision``, per-layer dtype policies): the median time of a compiled
training step on a fixed uint8 batch (what the pipeline yields), images/s, the model's FLOPs
per step (computed from the layer shapes: 2·k²·C_in·C_out per output pixel of a convolution,
2·in·out for a dense layer, backward = 2 x forward), the FLOP rate that implies, and the
time 40,000 steps would take. Then, unless ``--no-pipeline``, whether the augmentation
pipeline can feed that rate with the machine's cores (``TrainingData.batches`` with 1, 4, 8
and cores-1 worker processes; needs the ``aae`` extra: imgaug, pyrender with EGL).

Run on the device machine (JAX there, no TensorFlow); the network part imports only Keras
and this repository's ``aae/net/model.py``, so Keras' wheels are all it needs carried (see
README, "Benchmarks")::

    KERAS_BACKEND=jax python bench/gpu_throughput.py --no-pipeline

``--smoke`` runs a reduced set at 32², width 1/16 and 3 steps and only prints, to check the
script on a CPU (any backend; a test runs it in ``make test``'s JAX leg). Otherwise writes
section ``gpu-throughput`` of RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
# bench/ for results.py; the repository root for aae/, so that the GPU machine needs no
# installation of this project, only Keras.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import keras
import numpy as np
from results import environment, write_section

from aae.net.configs import BOP, NAS2, SUNDERMEYER
from aae.net.model import build_aae

LARGEST = {
    "NK1": 256,
    "NK2": 256,
    "NK3": 1024,
    "NK4": 1024,
    "KE": 7,
    "KD": 7,
    "OPT": "Adam",
    "MB": 128,
    "LR": 2e-3,
}
PAPER_STEPS = 40000
NETWORKS = (
    ("SUNDERMEYER", SUNDERMEYER, 64),
    ("BOP", BOP, 64),
    ("NAS-2", NAS2, 64),
    ("NAS-2", NAS2, 128),
    ("largest", LARGEST, 64),
    ("largest", LARGEST, 128),
)
PRECISIONS = ("float32", "mixed_bfloat16")
#: --smoke: one network in both precisions, one worker count: the code paths, in seconds.
SMOKE_NETWORKS = NETWORKS[:1]


def training_flops(model: keras.Model, batch: int) -> float:
    """FLOPs of one training step: forward from the layer shapes, backward twice that."""
    forward = 0.0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels_out = layer.output.shape
            kernel_h, kernel_w = layer.kernel_size
            channels_in = layer.input.shape[-1]
            forward += 2.0 * height * width * kernel_h * kernel_w * channels_in * channels_out
        elif isinstance(layer, keras.layers.Dense):
            forward += 2.0 * layer.input.shape[-1] * layer.units
    return 3.0 * forward * batch


def _layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def time_steps(model: keras.Model, batch: np.ndarray, steps: int) -> list[float]:
    """Seconds of each compiled training step after two warm-up steps (the first compiles)."""
    for _ in range(2):
        model.train_on_batch(batch, batch)
    durations = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = model.train_on_batch(batch, batch)
        float(np.asarray(loss))  # wait for the device
        durations.append(time.perf_counter() - start)
    return durations


def pipeline_rate(size: int, batch: int, workers: int, batches: int, n_images: int = 256) -> float:
    """Augmented images/s of the real pipeline, consumed by a no-op Keras model."""
    from aae.data.backgrounds import BackgroundPool
    from aae.data.settings import TrainingSetConfig
    from aae.data.synthetic import make_object
    from aae.data.training_set import TrainingData, build_training_set

    scale = size / 128
    K = tuple(
        tuple(v * (scale if row < 2 else 1.0) for v in values)
        for row, values in enumerate(
            ((1075.65, 0.0, 360.0), (0.0, 1073.90, 270.0), (0.0, 0.0, 1.0))
        )
    )
    config = TrainingSetConfig(
        n_images=max(n_images, batch),
        image_size=size,
        render_width=round(720 * scale),
        render_height=round(540 * scale),
        K=K,
    )
    data = TrainingData(
        build_training_set(make_object("bracket"), config, "/tmp/gpu_bench_cache", progress=False),
        BackgroundPool.builtin(size, max(n_images, batch)),
    )
    sink = keras.Sequential([keras.Input((size, size, 3)), keras.layers.Dense(3)])
    sink.compile(optimizer="sgd", loss="mse")
    stream = data.batches(batch, workers=workers, steps_per_epoch=batches)
    sink.fit(stream, epochs=1, verbose=0)  # warm-up: worker start, compilation
    start = time.perf_counter()
    sink.fit(stream, epochs=1, verbose=0)
    return batches * batch / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    """Measures and prints; writes section gpu-throughput of RESULTS.md unless --smoke."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, to check the script on a CPU"
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--no-pipeline",
        action="store_true",
        help="skip the augmentation pipeline (needs the aae extra)",
    )
    args = parser.parse_args(argv)
    size, width, steps = (32, 0.0625, 3) if args.smoke else (128, 1.0, args.steps)
    rows = []
    for name, config, batch in SMOKE_NETWORKS if args.smoke else NETWORKS:
        for precision in PRECISIONS:
            model = build_aae(
                {**config, "MB": batch}, image_size=size, width=width, precision=precision
            )
            # uint8, as the pipeline delivers batches: the network scales them itself.
            images = np.random.default_rng(0).integers(
                0, 256, (batch, size, size, 3), dtype=np.uint8
            )
            durations = time_steps(model, images, steps)
            step = statistics.median(durations)
            flops = training_flops(model, batch)
            rows.append((name, batch, precision, step, batch / step, flops, flops / step))
            print(
                f"{name} batch {batch} {precision}: {step * 1e3:.1f} ms/step, "
                f"{flops / step / 1e12:.1f} TFLOP/s",
                flush=True,
            )
            del model
            keras.backend.clear_session()
    cores = os.cpu_count() or 1
    feeds = []
    if not args.no_pipeline:
        counts = (1,) if args.smoke else sorted({1, 4, 8, max(1, cores - 1)})
        for workers in counts:
            rate = pipeline_rate(
                size,
                64,
                workers,
                batches=3 if args.smoke else 40,
                n_images=64 if args.smoke else 256,
            )
            feeds.append((workers, rate))
            print(f"pipeline, {workers} workers: {rate:.0f} images/s", flush=True)

    device = keras.backend.backend()
    if device == "jax":
        import jax

        device = f"{jax.devices()[0].device_kind}; JAX {jax.__version__}"
    lines = [
        "## AAE training throughput on a GPU (JAX)",
        "",
        environment(),
        f"- Device: {device}",
        "",
        "Reproduce: `KERAS_BACKEND=jax python "
        f"bench/gpu_throughput.py{' --smoke' if args.smoke else ''}`. "
        f"{size}², width {width:g}; median of {steps} compiled steps on a fixed batch after 2 "
        "warm-up steps.",
        "",
        "| network | batch | precision | ms/step | images/s | GFLOP/step | TFLOP/s achieved | "
        "40,000 steps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, batch, policy, step, rate, flops, achieved in rows:
        hours = PAPER_STEPS * step / 3600
        lines.append(
            f"| {name} | {batch} | {policy} | {step * 1e3:.1f} | {rate:,.0f} | {flops / 1e9:,.1f} "
            f"| {achieved / 1e12:.2f} | {hours:.2f} h |"
        )
    if feeds:
        lines += [
            "",
            f"Augmentation pipeline at {size}², batch 64, {cores} cores:",
            "",
            "| workers | images/s | feeds SUNDERMEYER float32? |",
            "|---|---|---|",
        ]
        needed = rows[0][4]
        for workers, rate in feeds:
            lines.append(
                f"| {workers} | {rate:,.0f} | {'yes' if rate >= needed else 'no'} "
                f"({rate / needed:.2f}x) |"
            )
    else:
        lines += [
            "",
            "Augmentation pipeline not measured here (--no-pipeline); see section aae-pipeline for "
            "the cores it needs.",
        ]
    lines += [
        "",
        "FLOPs count convolutions and dense layers only (the rest is negligible); "
        "compare the achieved rate with the device's peak for the precision used.",
    ]
    if args.smoke:  # a check of the script, not a measurement worth keeping
        print("\n".join(lines))
    else:
        write_section("gpu-throughput", "\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
