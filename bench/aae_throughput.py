"""Throughput of the AAE's parts on this machine's CPU, TensorFlow backend.

Measures (never estimates) rendering, training-set building, the augmentation pipeline and
training steps at the scales of the profiles, and writes the section ``aae-throughput`` of
bench/RESULTS.md: one markdown table per measurement, with the raw numbers.

    python bench/aae_throughput.py           # everything (tens of minutes on 2 cores)
    python bench/aae_throughput.py --quick   # without the paper-size training steps
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

# Keras picks its backend at import: these numbers are for TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
from results import environment, write_section
from scipy.spatial.transform import Rotation

from aae.data.backgrounds import BackgroundPool
from aae.data.render import Light, Renderer
from aae.data.settings import TrainingSetConfig
from aae.data.synthetic import make_object
from aae.data.training_set import TrainingData, TrainingSet, build_training_set
from aae.net.configs import BOP, SUNDERMEYER
from aae.net.settings import NetworkSettings
from aae.profiles import get_profile

SECTION = "aae-throughput"
OBJECT = "bracket"
#: The largest point of the search space: most filters, largest kernels and batch.
LARGEST = {
    "NK1": 256,
    "NK2": 256,
    "NK3": 1024,
    "NK4": 1024,
    "KE": 7,
    "KD": 7,
    "OPT": "Adam",
    "MB": 128,
    "LR": 2e-4,
}

RENDER_WARMUP, RENDERS = 20, 300
BUILD_PAIRS = 300
BACKGROUNDS = 512
PIPELINE_BATCH, PIPELINE_BATCHES, DIRECT_WARMUP = 64, 30, 2
PIPELINE_WORKERS = (0, 1, 2)
# Small networks: many steps for a stable median. Paper-size steps take tens of seconds
# to minutes each on 2 cores, so only a few are timed after the first (tracing) step.
SMALL_WARMUP, SMALL_STEPS = 5, 50
PAPER_WARMUP, PAPER_STEPS, LARGEST_STEPS = 1, 3, 2


@dataclass(frozen=True)
class StepTiming:
    """Training-step times of one network at one input size."""

    label: str
    config_name: str
    settings: NetworkSettings
    batch: int
    first_s: float
    warmup: int
    seconds: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def images_per_s(self) -> float:
        return self.batch / self.median_s


def main(argv: Sequence[str] | None = None) -> None:
    """Runs every measurement and writes the ``aae-throughput`` section of bench/RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the paper-size training steps")
    args = parser.parse_args(argv)
    quick, paper, tiny = get_profile("quick"), get_profile("paper"), get_profile("tiny")
    mesh = make_object(OBJECT)
    sections = [
        "## AAE throughput (CPU, TensorFlow)",
        environment(),
        f"Reproduce: `python bench/aae_throughput.py{' --quick' if args.quick else ''}` "
        f"(object `synthetic:{OBJECT}`; all times are wall-clock, measured in one process "
        "on a machine shared with other jobs).",
    ]

    sizes = {"paper": paper.training_set, "quick": quick.training_set}
    render_rows = []
    for name, camera in sizes.items():
        seconds = _time_renders(mesh, camera)
        render_rows.append(
            [
                name,
                f"{camera.render_width}x{camera.render_height}",
                RENDERS,
                _f(sum(seconds), 2),
                _f(RENDERS / sum(seconds), 1),
                _f(1000 * statistics.median(seconds), 2),
            ]
        )
        _log(f"render {name}: {RENDERS / sum(seconds):.1f} renders/s")
    sections.append(
        _table(
            "### Renderer.render (one object, random light, RGB + depth)",
            ["size", "render", "renders timed", "total s", "renders/s", "median ms/render"],
            render_rows,
            f"After {RENDER_WARMUP} warm-up renders; random rotations at 700 mm with the profile's "
            "camera.",
        )
    )

    training_sets, build_rows = {}, []
    for name, camera in sizes.items():
        camera = replace(camera, n_images=BUILD_PAIRS)
        training_sets[camera.image_size], seconds = _time_build(mesh, camera)
        build_rows.append(
            [
                name,
                f"{camera.render_width}x{camera.render_height}",
                f"{camera.image_size}²",
                BUILD_PAIRS,
                _f(seconds, 2),
                _f(BUILD_PAIRS / seconds, 1),
                _f(1000 * seconds / BUILD_PAIRS, 1),
            ]
        )
        _log(f"build {name}: {BUILD_PAIRS / seconds:.1f} pairs/s")
    sections.append(
        _table(
            "### build_training_set (two renders, crops and the cache file per pair)",
            ["size", "render", "crop", "pairs timed", "total s", "pairs/s", "s per 1000 pairs"],
            build_rows,
            "A fresh temporary cache folder each time, so nothing is loaded from a cache.",
        )
    )

    data = {
        size: TrainingData(training_set, BackgroundPool.builtin(size, BACKGROUNDS, seed=0))
        for size, training_set in training_sets.items()
    }
    pipeline, pipeline_rows = {}, []
    for size in sorted(data):
        seconds = _time_direct(data[size])
        pipeline_rows.append(_pipeline_row(size, "`batches[i]` in this process", "-", seconds))
        for workers in PIPELINE_WORKERS:
            seconds = _time_keras_feed(data[size], workers)
            pipeline[size, workers] = PIPELINE_BATCHES * PIPELINE_BATCH / seconds
            pipeline_rows.append(_pipeline_row(size, "Keras `fit`, no-op model", workers, seconds))
            _log(f"pipeline {size}² workers={workers}: {pipeline[size, workers]:.0f} images/s")
    overheads = [
        f"{size}²: {_f(1000 * _time_noop_steps(size), 2)} ms/step" for size in sorted(data)
    ]
    sections.append(
        _table(
            f"### Augmented batches (TrainingData.batches, batch {PIPELINE_BATCH})",
            ["crop", "driver", "workers", "batches timed", "total s", "batches/s", "images/s"],
            pipeline_rows,
            f"`batches[i]`: {PIPELINE_BATCHES} batches computed one after the other in the main "
            "process "
            f"after {DIRECT_WARMUP} warm-up batches (the cost of one batch on one core). Keras "
            "`fit`: the "
            "real pipeline, fed to a no-op model (one Dense(3) on the channels, MSE, SGD) by "
            "`fit`, "
            "which uses the PyDataset's OrderedEnqueuer with `workers` processes "
            "(use_multiprocessing) "
            "and, for workers=0, computes batches in a tf.data prefetch thread of this process. "
            "Two "
            f"epochs of {PIPELINE_BATCHES} batches; the second is timed from its start to its end, "
            "so "
            "it includes the worker pool start and stop that `fit` does every epoch. The no-op "
            f"model's own train step on an in-memory batch takes {', '.join(overheads)}.",
        )
    )

    paper_settings = paper.network
    small = [
        ("tiny", tiny.network),
        ("quick", quick.network),
    ]
    timings = [
        _time_steps(
            f"{label} profile",
            "SUNDERMEYER",
            SUNDERMEYER,
            settings,
            data[settings.image_size],
            SMALL_WARMUP,
            SMALL_STEPS,
        )
        for label, settings in small
    ]
    if not args.quick:
        for name, config, steps in (
            ("SUNDERMEYER", SUNDERMEYER, PAPER_STEPS),
            ("BOP", BOP, PAPER_STEPS),
            ("largest", LARGEST, LARGEST_STEPS),
        ):
            timings.append(
                _time_steps(
                    "paper size",
                    name,
                    config,
                    paper_settings,
                    data[paper_settings.image_size],
                    PAPER_WARMUP,
                    steps,
                )
            )
    step_rows, keeps_up_rows = [], []
    for timing in timings:
        size = timing.settings.image_size
        step_rows.append(
            [
                timing.label,
                timing.config_name,
                f"{size}²",
                timing.settings.width,
                timing.batch,
                f"{timing.warmup} + {len(timing.seconds)}",
                _f(timing.first_s, 2),
                _f(1000 * timing.median_s, 1),
                f"{_f(1000 * min(timing.seconds), 1)}, {_f(1000 * max(timing.seconds), 1)}",
                _f(timing.images_per_s, 1),
            ]
        )
        keeps_up_rows.append(
            [
                timing.label,
                timing.config_name,
                f"{size}²",
                _f(timing.images_per_s, 1),
                *(
                    f"{_f(pipeline[size, w], 0)} "
                    f"({_f(pipeline[size, w] / timing.images_per_s, 2)}x)"
                    for w in PIPELINE_WORKERS
                ),
            ]
        )
    sections.append(
        _table(
            "### Training steps (train_on_batch, the compiled step that `fit` runs)",
            [
                "network",
                "config",
                "image",
                "width",
                "batch",
                "warm-up + timed steps",
                "first step s",
                "median ms/step",
                "min, max ms",
                "images/s",
            ],
            step_rows,
            "One real augmented batch, fed again at every step (the content does not change the "
            "cost). Warm-up steps (the first traces the graph) are excluded from the median. "
            + (
                "Paper-size steps skipped (--quick)."
                if args.quick
                else f"Paper size: {PAPER_STEPS} timed steps each ({LARGEST_STEPS} for the "
                "largest network: "
                "NK 256,256,1024,1024, KE=KD=7, MB 128), since one step takes tens of seconds or "
                "more."
            ),
        )
    )
    sections.append(
        _table(
            "### Does augmentation keep up with training?",
            [
                "network",
                "config",
                "image",
                "training consumes images/s",
                *(f"pipeline images/s, workers={w} (ratio)" for w in PIPELINE_WORKERS),
            ],
            keeps_up_rows,
            "Training's rate is batch / median step time; the pipeline's is from the table above "
            "(ratio > 1: the pipeline is faster). On this 2-core machine the pipeline's workers "
            "and the training step compete for the same cores, so during real training both "
            "run slower than measured apart.",
        )
    )
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    sections.append(f"Peak resident memory of the benchmark process: {peak_gib:.1f} GiB.")
    path = write_section(SECTION, "\n\n".join(sections) + "\n")
    _log(f"wrote section {SECTION} of {path}")


def _time_renders(mesh, camera: TrainingSetConfig) -> list[float]:
    rng = np.random.default_rng(0)
    t = np.array([0.0, 0.0, camera.radius])
    seconds = []
    with Renderer(camera.render_width, camera.render_height) as renderer:
        for i in range(RENDER_WARMUP + RENDERS):
            R = Rotation.random(rng=rng).as_matrix()
            light = Light.random(rng)
            start = time.perf_counter()
            renderer.render(mesh, R, t, camera.camera_matrix, light)
            if i >= RENDER_WARMUP:
                seconds.append(time.perf_counter() - start)
    return seconds


def _time_build(mesh, camera: TrainingSetConfig) -> tuple[TrainingSet, float]:
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        training_set = build_training_set(mesh, camera, cache, progress=False)
        return training_set, time.perf_counter() - start


def _time_direct(data: TrainingData) -> float:
    batches = data.batches(
        PIPELINE_BATCH, seed=0, workers=0, steps_per_epoch=DIRECT_WARMUP + PIPELINE_BATCHES
    )
    for i in range(DIRECT_WARMUP):
        batches[i]
    start = time.perf_counter()
    for i in range(DIRECT_WARMUP, DIRECT_WARMUP + PIPELINE_BATCHES):
        batches[i]
    return time.perf_counter() - start


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _noop_model(size: int) -> keras.Model:
    images = keras.Input((size, size, 3))
    model = keras.Model(images, keras.layers.Dense(3)(images))
    model.compile(optimizer="sgd", loss="mse")
    return model


def _time_keras_feed(data: TrainingData, workers: int) -> float:
    """Seconds of the second of two `fit` epochs of the real pipeline into a no-op model."""
    batches = data.batches(
        PIPELINE_BATCH, seed=0, workers=workers, steps_per_epoch=PIPELINE_BATCHES
    )
    timer = _EpochTimer()
    _noop_model(data.training_set.image_size).fit(
        batches, epochs=2, callbacks=[timer], verbose=0, shuffle=False
    )
    return timer.seconds[1]


def _time_noop_steps(size: int) -> float:
    model = _noop_model(size)
    x = np.zeros((PIPELINE_BATCH, size, size, 3), np.float32)
    return statistics.median(
        _timed_calls(lambda: model.train_on_batch(x, x), SMALL_WARMUP, SMALL_STEPS)[1]
    )


def _time_steps(
    label: str,
    config_name: str,
    config: dict,
    settings: NetworkSettings,
    data: TrainingData,
    warmup: int,
    steps: int,
) -> StepTiming:
    model = settings.build(config)
    x, y = data.batches(config["MB"], seed=0, workers=0)[0]
    first, seconds = _timed_calls(lambda: model.train_on_batch(x, y), warmup, steps)
    timing = StepTiming(label, config_name, settings, config["MB"], first, warmup, tuple(seconds))
    _log(
        f"train step {label} {config_name}: {1000 * timing.median_s:.1f} ms/step, "
        f"{timing.images_per_s:.1f} images/s"
    )
    return timing


def _timed_calls(
    call: Callable[[], object], warmup: int, repeats: int
) -> tuple[float, list[float]]:
    """The first call's seconds and those of the calls after ``warmup`` warm-up calls."""
    seconds = []
    for _ in range(warmup + repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds[0], seconds[warmup:]


def _pipeline_row(size: int, driver: str, workers: int | str, seconds: float) -> list:
    return [
        f"{size}²",
        driver,
        workers,
        PIPELINE_BATCHES,
        _f(seconds, 2),
        _f(PIPELINE_BATCHES / seconds, 2),
        _f(PIPELINE_BATCHES * PIPELINE_BATCH / seconds, 0),
    ]


def _table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], note: str) -> str:
    lines = [title, "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join([*lines, "", note])


def _f(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def _log(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
