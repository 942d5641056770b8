"""The augmented-batch pipeline: float32 vs uint8 batches, 0/1/2 worker processes, and the
cores a GPU run needs.

Measures ``TrainingData.batches`` at 32² and 128², batch 64, as Keras ``fit`` consumes it
(a sink model whose own step costs little, and is measured apart), once with the
batches the pipeline yields now (uint8, scaled inside the network) and once with the
batches it yielded before (the same batches converted to float32 in [0, 1] in the worker,
4x the bytes through the worker pipe). The single-process rate (``batches[i]`` in a loop)
is the per-core rate. From it and the FLOP counts of bench/gpu_throughput.py, it works out
how many cores keep a GPU fed at the step time it is expected to reach. Writes section
``aae-pipeline`` of bench/RESULTS.md.

    nice -n 10 python bench/aae_pipeline.py            # ~10 min on 2 cores
    nice -n 10 python bench/aae_pipeline.py --batches 20 --sizes 32   # a quick look
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing
import os
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# The pipeline is backend-independent numpy; the consumer is Keras' fit on the backend
# chosen (JAX: the GPU machine's training process; TensorFlow by default here).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras
import numpy as np
from keras import ops
from results import environment, write_section

from aae.data.backgrounds import BackgroundPool
from aae.data.synthetic import make_object
from aae.data.training_set import (
    EPOCH_STEPS,
    AugmentedBatches,
    TrainingData,
    build_training_set,
)
from aae.net.configs import BOP, NAS2, SUNDERMEYER
from aae.net.settings import NetworkSettings
from aae.profiles import get_profile

SECTION = "aae-pipeline"
OBJECT = "bracket"
BATCH = 64
PAIRS, BACKGROUNDS = 256, 256
WORKERS = (0, 1, 2)
#: Batches at the start of an epoch left out of the steady-state rate (worker start-up).
SKIP = 4
#: The GPU step time the arithmetic assumes for SUNDERMEYER at batch 64 (bench/gpu_throughput.py
#: measures it on the device; other networks scale with their FLOPs per step).
GPU_SUNDERMEYER_S = 0.015
GPU_CORES, GPU_WORKERS = 16, 15


class Float32Batches(AugmentedBatches):
    """The pipeline as it was: the same batches, float32 in [0, 1], through the worker pipe."""

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        # np.asarray: plain arrays, which Keras' pool pickles through its pipe.
        inputs, targets = (np.asarray(a) for a in super().__getitem__(index))
        return inputs.astype(np.float32) / np.float32(255), targets.astype(np.float32) / np.float32(
            255
        )


class PipeBatches(AugmentedBatches):
    """uint8 batches through the worker pipe, as plain arrays (no shared memory)."""

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return tuple(np.asarray(a) for a in super().__getitem__(index))


class _SpatialMean(keras.layers.Layer):
    """(B, S, S, 3) -> (B, 3): all the sink computes, so its step costs little."""

    def call(self, images):
        return ops.mean(ops.cast(images, "float32"), axis=(1, 2))


class _SinkLoss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return ops.mean(ops.square(y_pred - ops.mean(y_true, axis=(1, 2))), axis=-1)


def sink_model(size: int) -> keras.Model:
    """A model that takes the pipeline's batches and does almost no work on them."""
    images = keras.Input((size, size, 3))
    model = keras.Model(images, keras.layers.Dense(3)(_SpatialMean()(images)))
    model.compile(optimizer="sgd", loss=_SinkLoss())
    return model


def sink_cpu(size: int, dtype: str) -> float:
    """CPU seconds per image of the sink's own train step on an in-memory batch: the part of
    the training process's cost that is not receiving batches (on a GPU machine the device
    does it)."""
    model = sink_model(size)
    x = np.zeros((BATCH, size, size, 3), dtype)
    for _ in range(3):  # the first traces the step
        model.train_on_batch(x, x)
    start, steps = time.process_time(), 20
    for _ in range(steps):
        model.train_on_batch(x, x)
    return (time.process_time() - start) / (steps * BATCH)


class _EpochMeter(keras.callbacks.Callback):
    """Wall time and this process's CPU time at every batch end and over the last epoch,
    and the CPU time of the worker processes that started during it (read from /proc while
    they run: Keras closes its pool at every epoch end without waiting for the workers, so
    RUSAGE_CHILDREN would charge their time to whichever measurement reaps them)."""

    def __init__(self) -> None:
        super().__init__()
        self.earlier_workers: set[int] = set()
        self.workers: dict[int, float] = {}

    def on_epoch_begin(self, epoch, logs=None):
        self.earlier_workers |= set(self.workers)
        self.workers = {}
        self.start = time.perf_counter()
        self.cpu_start = _cpu(resource.RUSAGE_SELF)
        self.ends: list[float] = []
        self.cpu_ends: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())
        self.cpu_ends.append(_cpu(resource.RUSAGE_SELF))
        for pid, cpu in _children_cpu().items():
            if pid not in self.earlier_workers:
                self.workers[pid] = cpu

    def on_epoch_end(self, epoch, logs=None):
        self.cpu = _cpu(resource.RUSAGE_SELF) - self.cpu_start


def _children_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of this process's live child processes, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for child in multiprocessing.active_children():
        try:
            with open(f"/proc/{child.pid}/stat") as file:
                fields = file.read().rpartition(")")[2].split()
        except OSError:  # it exited meanwhile
            continue
        # After the command name: state, ppid, ..., utime and stime are fields 12 and 13.
        found[child.pid] = (int(fields[11]) + int(fields[12])) / tick
    return found


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


@dataclasses.dataclass(frozen=True)
class FitMeasurement:
    """One `fit` of the pipeline into the sink.

    Attributes:
        steady: images/s of the second epoch after its first SKIP batches (wall clock).
        whole: images/s of the whole second epoch, worker start included (wall clock).
        main_cpu: CPU seconds per image of the training process (all its threads) over
            the second epoch: receiving, unpickling and converting batches, the sink's step,
            and for workers = 0 the augmentation itself.
        worker_cpu: CPU seconds per image of the second epoch's worker processes (their
            augmentation and pickling) up to its last batch, None for workers = 0.
        main_steady: the training process's CPU seconds per image from the first batch
            end to the last (the epoch's start and end are outside), counting the batches
            received meanwhile: all but the first max(W, 1), which the W workers deliver at
            once at the start.
        main_start: the training process's CPU seconds of the epoch that ``main_steady``
            does not explain: its start (Keras forks a new worker pool every epoch) and end.
    """

    steady: float
    whole: float
    main_cpu: float
    worker_cpu: float | None
    main_steady: float
    main_start: float

    def main_per_image(self, epoch_batches: int = EPOCH_STEPS) -> float:
        """The training process's CPU seconds per image in epochs of ``epoch_batches``
        batches: the steady cost plus the epoch's start spread over its images."""
        return self.main_steady + self.main_start / (epoch_batches * BATCH)


def fit_rate(batches: AugmentedBatches, size: int, workers: int) -> FitMeasurement:
    """Two epochs of ``batches`` into the sink; the second is the one measured (the sink's
    train function is traced in the first: while it traces, workers would fill the queue
    and flatter the next batches' rate).

    Worker CPU: the second epoch's worker processes, read at every batch end.
    """
    meter = _EpochMeter()
    sink_model(size).fit(batches, epochs=2, verbose=0, shuffle=False, callbacks=[meter])
    n = len(meter.ends)
    worker_cpu = sum(meter.workers.values()) / (n * BATCH)
    main_steady = (meter.cpu_ends[-1] - meter.cpu_ends[0]) / ((n - max(workers, 1)) * BATCH)
    return FitMeasurement(
        steady=(n - SKIP) * BATCH / (meter.ends[-1] - meter.ends[SKIP - 1]),
        whole=n * BATCH / (meter.ends[-1] - meter.start),
        main_cpu=meter.cpu / (n * BATCH),
        worker_cpu=worker_cpu if workers else None,
        main_steady=main_steady,
        main_start=max(0.0, meter.cpu - main_steady * n * BATCH),
    )


def stage_costs(data: TrainingData, n: int = 20) -> tuple[list[tuple[str, float]], float]:
    """(stage, CPU seconds per image) of the work of one batch in one process, stage by stage
    as ``AugmentedBatches.__getitem__`` does it: drawing the pairs, pasting the backgrounds,
    each augmenter of the chain (with its probability), and building the chain; ``n``
    batches each. Also the CPU seconds per image of the paste as it was before (boolean
    indexing)."""
    from aae.data.augment import make_augmenter

    training_set, size = data.training_set, data.training_set.image_size
    rng = np.random.default_rng(0)
    picks = [rng.choice(len(training_set), BATCH, replace=False) for _ in range(n)]
    drawn = [rng.choice(len(data.backgrounds), BATCH, replace=False) for _ in range(n)]

    def timed(work) -> float:
        work(0)  # warm-up
        start = time.process_time()
        for i in range(n):
            work(i)
        return (time.process_time() - start) / (n * BATCH)

    def select(i):
        return (
            training_set.inputs[picks[i]],
            training_set.masks[picks[i]],
            training_set.targets[picks[i]],
            data.backgrounds.sample(drawn[i]),
        )

    selected = [select(i) for i in range(n)]

    def paste(i):
        inputs, masks, _, backgrounds = selected[i]
        return np.where(masks[..., None], backgrounds, inputs)

    def paste_before(i):
        inputs, masks, _, backgrounds = selected[i]
        inputs = inputs.copy()
        inputs[masks] = backgrounds[masks]
        return inputs

    pasted = [paste(i) for i in range(n)]
    assert all(np.array_equal(pasted[i], paste_before(i)) for i in range(n))
    rows = [
        ("draw the pairs and backgrounds (copies)", timed(select)),
        ("paste the backgrounds where the mask says (`np.where`)", timed(paste)),
        ("build the imgaug chain (once per batch)", timed(lambda i: make_augmenter(i, size))),
    ]
    for child in make_augmenter(0, size):
        name = f"{type(child.then_list[0]).__name__} (p = {child.p.p.value:g})"
        rows.append((name, timed(lambda i, c=child: c(images=pasted[i]))))
    return rows, timed(paste_before)


def direct_cost(batches: AugmentedBatches, n: int) -> tuple[float, float]:
    """(images/s, CPU seconds per image) of ``batches[i]`` computed one after another in
    this process: one core's work. The CPU time does not grow when other jobs share the
    core, the wall-clock rate does."""
    batches[0]  # warm-up: imgaug builds its chain, pages are touched
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(1, n + 1):
        batches[i]
    return n * BATCH / (time.perf_counter() - start), (time.process_time() - cpu) / (n * BATCH)


def projected_rate(workers: int, fit: FitMeasurement, sink: float) -> float:
    """images/s with ``workers`` worker processes, each on a core of its own and the
    training process on another: the slower of the workers' and the training process's
    per-image CPU costs, the latter without the sink's step (``sink``), which is not the
    pipeline's (workers = 0: one core does all the pipeline's work)."""
    receive = receive_cpu(fit.main_cpu, sink)
    if workers == 0:
        return 1.0 / receive if receive else math.inf
    return min(workers / fit.worker_cpu, 1.0 / receive if receive else math.inf)


def receive_cpu(main_cpu: float, sink: float) -> float:
    """The training process's CPU per image less the sink's step, never below 0: the sink is
    measured apart, so on a busy machine it can come out above the whole."""
    return max(main_cpu - sink, 0.0)


def training_data(size: int, cache: Path) -> TrainingData:
    """PAIRS pre-rendered pairs of the stand-in object at ``size``² (cached in ``cache``)."""
    profile = get_profile("paper" if size == 128 else "quick")
    config = dataclasses.replace(profile.training_set, n_images=PAIRS)
    mesh = make_object(OBJECT)
    return TrainingData(
        build_training_set(mesh, config, cache, progress=False),
        BackgroundPool.builtin(size, BACKGROUNDS, seed=0),
    )


def gpu_consumption() -> list[tuple[str, int, float, float]]:
    """(network, batch, expected GPU s/step, images/s) at 128², scaled from SUNDERMEYER's
    step time by FLOPs per step (bench/gpu_throughput.py's count)."""
    from gpu_throughput import training_flops

    flops = {}
    for name, config in (("SUNDERMEYER", SUNDERMEYER), ("BOP", BOP), ("NAS-2", NAS2)):
        model = NetworkSettings(image_size=128).build(config)
        flops[name] = (config["MB"], training_flops(model, config["MB"]))
        del model
        keras.backend.clear_session()
    reference = flops["SUNDERMEYER"][1]
    rows = []
    for name, (batch, f) in flops.items():
        step = GPU_SUNDERMEYER_S * f / reference
        rows.append((name, batch, step, batch / step))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=60, help="batches per measured epoch")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 128])
    parser.add_argument(
        "--rounds", type=int, default=3, help="measurements of each figure (median)"
    )
    parser.add_argument("--cache", default="/tmp/aae_pipeline_cache")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    rows, measured = [], {}
    for size in args.sizes:
        data = training_data(size, Path(args.cache))
        if size == 128:
            measured["stages"] = stage_costs(data)
        kinds = {"float32": Float32Batches, "uint8 pipe": PipeBatches, "uint8": AugmentedBatches}
        # Rounds alternate float32 and uint8 so that a burst of the machine's other load
        # does not land on one of them only; each figure is the median over the rounds.
        samples: dict[tuple, list] = {}
        for _ in range(args.rounds):
            for dtype, kind in kinds.items():
                stream = kind(
                    data.training_set,
                    data.backgrounds,
                    BATCH,
                    workers=0,
                    steps_per_epoch=args.batches + 1,
                )
                samples.setdefault((dtype, "direct"), []).append(direct_cost(stream, args.batches))
                # The sink's step, in every round beside the fits it is subtracted from: the
                # machine's load changes from minute to minute.
                samples.setdefault((dtype, "sink"), []).append(sink_cpu(size, dtype.split()[0]))
                for workers in WORKERS:
                    stream = kind(
                        data.training_set,
                        data.backgrounds,
                        BATCH,
                        workers=workers,
                        steps_per_epoch=args.batches,
                    )
                    fit = fit_rate(stream, size, workers)
                    samples.setdefault((dtype, workers), []).append(fit)
                    print(f"{size}² {dtype} workers={workers}: {fit}", flush=True)
        for dtype in kinds:
            wall, direct_cpu = (
                statistics.median(v) for v in zip(*samples[dtype, "direct"], strict=True)
            )
            rows.append(
                [
                    f"{size}²",
                    dtype,
                    "`batches[i]`, one core",
                    "-",
                    f"{wall:,.0f}",
                    f"{1e3 * direct_cpu:.2f}",
                    "-",
                    "-",
                    f"{1 / direct_cpu:,.0f}",
                    "1.00",
                ]
            )
            measured[size, dtype, "direct_cpu"] = direct_cpu
            measured[size, dtype, "sink_cpu"] = sink = statistics.median(samples[dtype, "sink"])
            for workers in WORKERS:
                fits = samples[dtype, workers]
                fit = FitMeasurement(
                    steady=statistics.median(f.steady for f in fits),
                    whole=statistics.median(f.whole for f in fits),
                    main_cpu=statistics.median(f.main_cpu for f in fits),
                    worker_cpu=statistics.median(f.worker_cpu for f in fits) if workers else None,
                    main_steady=statistics.median(f.main_steady for f in fits),
                    main_start=statistics.median(f.main_start for f in fits),
                )
                measured[size, dtype, workers] = fit
                projected = projected_rate(workers, fit, sink)
                goal = f"{projected / (max(workers, 1) / direct_cpu):.2f}"
                rows.append(
                    [
                        f"{size}²",
                        dtype,
                        "Keras `fit`",
                        workers,
                        f"{fit.steady:,.0f}",
                        f"{1e3 * fit.main_cpu:.2f} ({1e3 * sink:.2f})",
                        f"{1e3 * fit.main_steady:.2f} ({1e3 * fit.main_start:.0f} ms)",
                        "-" if fit.worker_cpu is None else f"{1e3 * fit.worker_cpu:.2f}",
                        f"{projected:,.0f}",
                        goal,
                    ]
                )
    load_after = os.getloadavg()

    lines = [
        "## Augmented-batch pipeline: float32 vs uint8 batches, worker processes",
        "",
        environment(),
        f"- Load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f} on "
        f"{len(os.sched_getaffinity(0))} cores shared with other jobs; run under "
        f"`nice -n {os.nice(0)}`",
        "",
        f"Reproduce: `KERAS_BACKEND={keras.backend.backend()} nice -n {os.nice(0)} python "
        "bench/aae_pipeline.py "
        f"--batches {args.batches} --rounds {args.rounds}` "
        f"({(time.perf_counter() - started) / 60:.1f} min). Object `synthetic:{OBJECT}`, {PAIRS} "
        f"pre-rendered pairs, {BACKGROUNDS} built-in background crops, batch {BATCH}.",
        "",
        "| crop | batch dtype | driver | workers | images/s measured (wall, steady) | training "
        "process CPU ms/image (of which the sink's step) | of which steady, first to last batch "
        "(start and end of the epoch, CPU ms) | worker CPU ms/image | images/s "
        "projected on free cores | projected / (max(W, 1) x one core) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    lines += [
        "",
        f"`batches[i]`: {args.batches} batches computed one after another in this process after "
        "one "
        "warm-up batch: one core's work; its CPU time per image gives the *one core* rate "
        "(1 / CPU time). Keras `fit`: two epochs of "
        f"{args.batches} batches into a sink model (per-image spatial mean, Dense(3); its own "
        "step's CPU cost, measured on an in-memory batch, in parentheses); the second epoch is "
        "measured, its wall-clock rate after the first "
        f"{SKIP} batches; the training process's CPU time is split into its steady cost per "
        "image (from the epoch's first batch end to its last, over the batches received "
        "meanwhile: all but the first max(W, 1)) and the rest of the epoch's (its start, where "
        "Keras forks a new worker pool, and its end). workers = 0 computes batches in a prefetch "
        "thread of the training process. "
        "float32: the pipeline before this change (each worker converted its batch to float32 in "
        "[0, 1], 4x the bytes through the pipe: 25 MB per batch at 128²); uint8 pipe: uint8 "
        "batches (6.3 MB at 128²; the network divides by 255 in its first layer) pickled through "
        "Keras' worker pipe; uint8: now, uint8 handed over through a file in /dev/shm per "
        "array (`aae.data.training_set._SharedBatchArray`: one copy in the worker, one in the "
        "training "
        "process). Each figure is the median of "
        f"{args.rounds} round(s); rounds alternate float32 and uint8, and each measures the "
        "sink's step again. The training process's cost less the sink's step is taken as 0 "
        "where the sink, measured apart, comes out above the whole (noise of the shared "
        "machine; at 32² the two are close).",
        "",
        "**Why CPU time.** The cores were shared with other agents' jobs during the run (load "
        "average above), so wall-clock rates here measure the machine's load more than the "
        "pipeline, and adding a worker cannot show its speed-up when no core is free. CPU time per "
        "image does not depend on how long a process waits for a core: the *projected* rate is "
        "what W workers deliver with a core each and the training process on its own core, the "
        "slower of W / (worker CPU per image) and 1 / (training-process CPU per image less the "
        "sink's step). The last "
        "column is the issue's goal, >= 0.8 x W x the single-process rate, for W = 1, 2.",
    ]
    measured["batches"] = args.batches
    lines += _interpretation(measured, args.sizes)
    lines += _stages(measured)
    lines += _cores_needed(measured)
    write_section(SECTION, "\n".join(lines))
    print(f"wrote section {SECTION} of bench/RESULTS.md", flush=True)


def _interpretation(measured: dict, sizes: Sequence[int]) -> list[str]:
    lines = [
        "",
        "float32 through the pipe -> uint8 through the pipe -> uint8 through shared memory, "
        "within this run (per-image CPU costs; the training process's without the sink's step):",
        "",
    ]
    for size in sizes:
        for workers in WORKERS[1:]:
            fits = [measured[size, kind, workers] for kind in ("float32", "uint8 pipe", "uint8")]
            sinks = [
                measured[size, kind, "sink_cpu"] for kind in ("float32", "uint8 pipe", "uint8")
            ]
            main = " -> ".join(
                f"{1e3 * receive_cpu(f.main_cpu, k):.2f}" for f, k in zip(fits, sinks, strict=True)
            )
            work = " -> ".join(f"{1e3 * f.worker_cpu:.2f}" for f in fits)
            wall = " -> ".join(f"{f.steady:,.0f}" for f in fits)
            lines.append(
                f"- {size}², {workers} worker(s): training process {main} ms/image; workers {work} "
                f"ms/image; wall clock {wall} images/s"
            )
    return lines


def _stages(measured: dict) -> list[str]:
    if "stages" not in measured:
        return []
    stages, paste_before = measured["stages"]
    total = sum(cost for _, cost in stages)
    lines = [
        "",
        "### Where a batch's CPU time goes (128², one process)",
        "",
        "Each stage of `AugmentedBatches.__getitem__` timed alone on 20 batches of 64 (CPU "
        "time; each augmenter of the chain applied with its probability, as in the chain):",
        "",
        "| stage | CPU ms/image | share |",
        "|---|---|---|",
    ]
    for name, cost in stages:
        lines.append(f"| {name} | {1e3 * cost:.3f} | {cost / total:.0%} |")
    lines.append(f"| **sum** | **{1e3 * total:.2f}** | |")
    lines += [
        "",
        "Until this run the paste was boolean indexing (`inputs[masks] = backgrounds[masks]`): "
        f"{1e3 * paste_before:.3f} ms per image here, the same pixels (checked on these "
        "batches). At 128² the background covers about three quarters of a crop, and boolean "
        "indexing gathers and scatters every such pixel one by one; `np.where` over the mask "
        "broadcast to the channels writes the same result in one pass.",
    ]
    direct = measured.get((128, "uint8", "direct_cpu"))
    if direct is not None:
        lines += [
            "",
            f"The whole `batches[i]` costs {1e3 * direct:.2f} ms per image in the table above "
            "(the same stages one after another, measured at another moment of the shared "
            "machine's load).",
        ]
    return lines


def _cores_needed(measured: dict) -> list[str]:
    if (128, "uint8", "direct_cpu") not in measured:
        return [
            "",
            "(The cores-needed arithmetic needs the 128² measurement: run without --sizes.)",
        ]
    direct_cpu = measured[128, "uint8", "direct_cpu"]
    per_core = 1.0 / direct_cpu
    fits = [measured[128, "uint8", w] for w in WORKERS if w]
    # A worker's CPU per image (augmentation + pickling) and the training process's (receiving
    # and unpickling): the worst measured of 1 and 2 workers, to be safe.
    worker_cpu = max(f.worker_cpu for f in fits)
    # The training process's cost of receiving a batch: its CPU time less the sink's step,
    # which the GPU does instead, in epochs as long as a training run's (EPOCH_STEPS
    # batches; Keras starts a new worker pool every epoch, and the measured epochs are short).
    sink = measured[128, "uint8", "sink_cpu"]
    main_measured = receive_cpu(max(f.main_cpu for f in fits), sink)
    main_cpu = receive_cpu(max(f.main_per_image() for f in fits), sink)
    start = max(f.main_start for f in fits)
    measured_batches = measured["batches"]
    worker_rate = 1.0 / worker_cpu
    main_ceiling = 1.0 / main_cpu if main_cpu else math.inf
    lines = [
        "",
        "### Cores the GPU machine needs to feed a paper-size run (128²)",
        "",
        f"Measured above (uint8, 128²): one core augments {per_core:,.0f} images/s; a worker "
        "process "
        f"costs {1e3 * worker_cpu:.2f} ms of CPU per image ({worker_rate:,.0f} images/s per "
        "worker, "
        f"{worker_rate / per_core:.2f} of a core's rate), and the training process "
        f"{1e3 * main_cpu:.2f} ms per image to receive the batches (its CPU time less the sink's "
        f"step, in epochs of {EPOCH_STEPS:,} batches as `AugmentedBatches` makes them: on one "
        f"core it can take {main_ceiling:,.0f} images/s). The table above charges the training "
        f"process {1e3 * main_measured:.2f} ms per image because each measured epoch of "
        f"{measured_batches} batches starts a new worker pool (Keras forks one every epoch) and "
        f"ends it: {1e3 * start:.0f} ms of the training process's CPU per epoch (the most "
        "measured with 1 or 2 workers; the rest of the epoch, from its first batch to its last, "
        "is the steady cost per image). Spread over the "
        f"{measured_batches} batches that start adds "
        f"{1e3 * start / (measured_batches * BATCH):.3f} ms per image, over {EPOCH_STEPS:,} "
        f"{1e3 * start / (EPOCH_STEPS * BATCH):.3f}. GPU step times: SUNDERMEYER "
        "batch 64 at "
        f"{GPU_SUNDERMEYER_S * 1e3:.0f} ms (the expected device rate), the others scaled by their "
        "FLOPs "
        "per training step (`bench/gpu_throughput.training_flops`). The machine: 1 GPU and "
        f"{GPU_CORES} cores, so {GPU_WORKERS} workers and the training process. Assumes the GPU "
        "machine's cores are as fast as these.",
        "",
        "| network | batch | expected GPU ms/step | GPU consumes images/s | cores of augmentation "
        f"needed (one-core rate) | workers needed | {GPU_WORKERS} workers supply images/s | "
        f"training process load | {GPU_WORKERS} workers suffice? |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    supply = min(GPU_WORKERS * worker_rate, main_ceiling)
    verdicts = []
    for name, batch, step, rate in gpu_consumption():
        ok = supply >= rate
        verdicts.append((name, ok, supply / rate))
        lines.append(
            f"| {name} | {batch} | {step * 1e3:.1f} | {rate:,.0f} | {rate / per_core:.1f} | "
            f"{math.ceil(rate / worker_rate)} | {supply:,.0f} | {rate / main_ceiling:.0%} of a "
            "core | "
            f"{'yes' if ok else 'no'} ({supply / rate:.1f}x) |"
        )
    short = [name for name, ok, _ in verdicts if not ok]
    margins = ", ".join(f"{name} {margin:.1f}x" for name, _, margin in verdicts)
    if main_ceiling < GPU_WORKERS * worker_rate:
        limit = (
            f"The limit is the training process, which receives every batch ({main_ceiling:,.0f} "
            f"images/s on one core), not the workers ({GPU_WORKERS} supply "
            f"{GPU_WORKERS * worker_rate:,.0f} images/s; "
            f"{math.ceil(main_ceiling / worker_rate)} would match the training process). A GPU "
            "step faster than these would first need the training process to receive less per "
            "image: the targets, for one, are rows of the training set it already holds, and "
            "could be gathered there (or on the device) from indices instead of travelling "
            "with every batch (half its bytes); not done here."
        )
    else:
        limit = (
            f"The limit is the workers ({GPU_WORKERS} supply {GPU_WORKERS * worker_rate:,.0f} "
            f"images/s), not the training process ({main_ceiling:,.0f} images/s on one core)."
        )
    lines += [
        "",
        f"{GPU_WORKERS} workers feed every one of these networks at the expected GPU rate "
        f"(margins: {margins})."
        if not short
        else f"{GPU_WORKERS} workers do not feed {', '.join(short)} at the expected GPU rate "
        f"(margins: {margins}).",
        limit,
        "Note: `aae.data.training_set.default_workers()` caps at 8 workers; on the GPU machine "
        "pass `--workers "
        f"{GPU_WORKERS}`.",
    ]
    return lines


if __name__ == "__main__":
    main(sys.argv[1:])
