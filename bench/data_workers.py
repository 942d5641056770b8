"""How Keras' PyDataset worker processes start and feed a fit, per start method and backend.

Keras starts a new worker pool at every epoch, and a trial stopped mid-epoch (an explored
trial at its early budget) starts one per trial, so a pool's start-up is paid once per trial.
``fork`` copies the training process (its data shared copy-on-write), which JAX warns can
deadlock; ``forkserver`` forks the workers from a server process started once (each pool's
workers import the dataset's module and receive the dataset pickled); ``spawn`` starts fresh
interpreters. ``forkserver+keras`` is a fork server that imported Keras before forking
(``multiprocessing.set_forkserver_preload``), so its workers need not import it again.

Each configuration runs in a fresh process: a fit of ``EPOCHS`` epochs of ``BATCHES`` batches
with ``WORKERS`` workers, each batch ``BATCH_ROWS`` random rows of an in-memory float32 array
(``megabytes`` of it) put through a few NumPy operations, into a one-layer model. Measured:
the first epoch's seconds (with the compilation of the training step and, with a fork
server, the server's start), a later epoch's (the median over the later epochs: a new pool's
start and the epoch's batches), batches per second in later epochs from the 5th batch to the
last, how often the training process forked, and JAX's fork warnings. Writes section
``data-workers`` of RESULTS.md (results so far in ``bench/data/data_workers.json``, reused by
a rerun: delete it to measure again).

    python bench/data_workers.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS_JSON = BENCH / "data" / "data_workers.json"
METHODS = ("fork", "forkserver", "forkserver+keras", "spawn")
# (backend, start method, megabytes of data): every method on JAX, where fork warns, with a
# small and a large dataset (pickled to every worker of every pool but with fork); on
# TensorFlow, Keras' own (fork) against the fork server that imported Keras.
CONFIGS = [
    *(("jax", method, megabytes) for megabytes in (4, 256) for method in METHODS),
    *(("tensorflow", method, 4) for method in ("fork", "forkserver+keras")),
]
ROUNDS = 1
EPOCHS = 3
BATCHES = 40
WORKERS = 2
BATCH_ROWS = 64
FEATURES = 256
WORK = 60  # NumPy passes over each batch: a few milliseconds of a worker's CPU


def _dataset_class():
    import keras
    import numpy as np

    class Batches(keras.utils.PyDataset):
        """Random rows of an in-memory array, computed in worker processes."""

        def __init__(self, data, batches: int, workers: int):
            super().__init__(workers=workers, use_multiprocessing=True, max_queue_size=8)
            self.data, self.batches = data, batches

        def __len__(self):
            return self.batches

        def __getitem__(self, index):
            rng = np.random.default_rng(index)
            x = self.data[rng.integers(len(self.data), size=BATCH_ROWS)]
            for _ in range(WORK):
                x = np.sqrt(x * x + 1.0) - 0.5
            return x.astype("float32"), x.mean(axis=1, keepdims=True)

    Batches.__qualname__ = "Batches"  # pickled by reference: data_workers.Batches
    return Batches


# Defined at import, so that worker processes that import this module find it.
if os.environ.get("DATA_WORKERS_BENCH_CHILD"):
    Batches = _dataset_class()


def measure(method: str, megabytes: int) -> dict:
    """One fit in this process with ``method``'s workers (run in a fresh process)."""
    import multiprocessing
    import warnings

    import keras
    import numpy as np

    from kt_predictive.data_workers import use_data_worker_start_method

    forks = []
    os.register_at_fork(before=lambda: forks.append(1))
    use_data_worker_start_method(method.split("+")[0])
    if method.startswith("forkserver"):  # Python's default preload, or Keras too
        multiprocessing.set_forkserver_preload(["__main__", *(["keras"] * ("+" in method))])
    rows = megabytes * 2**20 // (4 * FEATURES)
    data = np.random.default_rng(0).random((rows, FEATURES), dtype="float32")
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    times: list[list[float]] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            times.append([time.perf_counter()])

        def on_train_batch_end(self, batch, logs=None):
            times[-1].append(time.perf_counter())

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(Batches(data, BATCHES, WORKERS), epochs=EPOCHS, verbose=0, callbacks=[Clock()])
    epochs = [epoch[-1] - epoch[0] for epoch in times]
    rates = [(len(epoch) - 5) / (epoch[-1] - epoch[4]) for epoch in times[1:]]
    return {
        "first_epoch_s": epochs[0],
        "later_epoch_s": statistics.median(epochs[1:]),
        "batches_per_s": statistics.median(rates),
        "forks": len(forks),
        "fork_warnings": sum("os.fork()" in str(w.message) for w in caught),
        "load": os.getloadavg()[0],
    }


def run_child(backend: str, method: str, megabytes: int) -> dict:
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "DATA_WORKERS_BENCH_CHILD": "1",
        "PYTHONPATH": os.pathsep.join([str(BENCH), str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    code = (
        "import json, data_workers; "
        f"print(json.dumps(data_workers.measure({method!r}, {megabytes})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise RuntimeError(f"{backend} {method} {megabytes} MB failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: dict) -> str:
    lines = [
        "| backend | start method | data | first epoch (s) | later epoch (s) "
        "| batches/s | training-process forks | JAX fork warnings |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, method, megabytes in CONFIGS:
        runs = results.get(f"{backend} {method} {megabytes}", [])
        if not runs:
            continue

        def med(key, runs=runs):
            return statistics.median(r[key] for r in runs)

        lines.append(
            f"| {backend} | {method} | {megabytes} MB | {med('first_epoch_s'):.2f} "
            f"| {med('later_epoch_s'):.2f} | {med('batches_per_s'):.3g} "
            f"| {max(r['forks'] for r in runs)} | {max(r['fork_warnings'] for r in runs)} |"
        )
    return "\n".join(lines)


def ratios(results: dict) -> str:
    """Each row's later epoch against fork's with the same backend and data, in words."""

    def later(key):
        runs = results.get(key, [])
        return statistics.median(r["later_epoch_s"] for r in runs) if runs else None

    parts = []
    for backend, method, megabytes in CONFIGS:
        fork = later(f"{backend} fork {megabytes}")
        other = later(f"{backend} {method} {megabytes}")
        if method != "fork" and fork and other:
            parts.append(f"{backend} {method} at {megabytes} MB {other / fork:.1f}x")
    loads = [r["load"] for runs in results.values() for r in runs if "load" in r]
    load = (
        f" The machine's 1-minute load average after the runs: {min(loads):.0f} to "
        f"{max(loads):.0f} on {os.cpu_count()} cores (other work ran meanwhile)."
        if loads
        else ""
    )
    return f"A later epoch (a new pool and its batches) against fork's: {'; '.join(parts)}.{load}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH))
    from results import environment, write_section

    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.is_file() else {}
    for round_ in range(args.rounds):
        for backend, method, megabytes in CONFIGS:  # a round measures each row once, in turn
            key = f"{backend} {method} {megabytes}"
            if len(results.get(key, [])) > round_:
                continue
            results.setdefault(key, []).append(run_child(backend, method, megabytes))
            RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
            RESULTS_JSON.write_text(json.dumps(results, indent=1))
            print(key, results[key][-1], flush=True)
    os.environ["KERAS_BACKEND"] = os.environ.get("KERAS_BACKEND", "tensorflow")
    text = "\n\n".join(
        [
            "## Data worker start methods (`bench/data_workers.py`)",
            f"A fit of {EPOCHS} epochs of {BATCHES} batches ({BATCH_ROWS} rows of {FEATURES} "
            f"float32 features, {WORK} NumPy passes each) from a `keras.utils.PyDataset` with "
            f"{WORKERS} worker processes, in a fresh process per run; Keras starts a new pool "
            "every epoch (and a trial stopped mid-epoch one per trial). *first epoch*: its "
            "seconds, with the training step's compilation (and a fork server's start); "
            "*later epoch*: the median of the later epochs' seconds, each with a new pool's "
            "start; *batches/s*: from the 5th batch to the epoch's last in later epochs "
            "(median). Median of "
            f"{args.rounds} round(s) per row; rounds measure every row in turn. "
            "*forkserver*: Python's fork server (it imports only `__main__`); *forkserver+keras*: "
            "one that imports Keras too (`set_forkserver_preload`), what kt_predictive's data "
            "workers use on JAX (`kt_predictive.data_workers.FORKSERVER_PRELOAD`).",
            table(results),
            ratios(results),
            environment(),
        ]
    )
    write_section("data-workers", text)


if __name__ == "__main__":
    main()
