"""Where a small model's trial time goes, PredictiveSearch against keras-tuner's RandomSearch.

A diabetes-size problem (scikit-learn's ``load_diabetes``: 442 samples, 10 features; an MLP
of 1-3 dense layers tuned on ``val_loss``) searched twice in one process at (nearly) the same
total optimizer steps: ``PredictiveSearch(search_budget=B)`` with ``full_steps=300`` trains
about ``B·300`` steps over many short trials; ``RandomSearch(max_trials=B)`` trains ``B``
trials of 300 steps (25 epochs of 12 batches). The wall times are compared as a ratio
measured in the same run, so the machine's load affects both alike.

Each search's time is split, by exclusive timers around the library's entry points, into
model build (``hypermodel.build`` and compile, and the garbage collection before it), fit
(Keras' ``fit`` itself: set-up, tracing, the training steps, the callbacks' own work),
validation (``model.evaluate`` calls, or the plugin's eager validation loss; a RandomSearch
validates inside ``fit``), state writes (checkpoints, final weights, the oracle's and
tuner's JSON), the oracle (its decisions), the predictor (fitting and tuning it) and the
rest (keras-tuner's own bookkeeping). Writes section ``trial-overhead`` of RESULTS.md
unless ``--no-write``; ``--ablate`` also searches without each of the plugin's levers
against this overhead (``LEVERS``), checks that each search chose the same trials and got
the same scores, and writes section ``trial-overhead-levers`` instead. ``--profile FILE``
writes the PredictiveSearch run's cProfile statistics (cumulative, top 60) to FILE.

    python bench/trial_overhead.py                 # search_budget=10, both searches
    python bench/trial_overhead.py --budget 5 --ablate  # each lever's share
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras
import keras_tuner
import numpy as np
from results import environment, write_section
from sklearn.datasets import load_diabetes

import kt_predictive.tuner as tuner_module
from kt_predictive import PredictiveSearch, TrainingSteps
from kt_predictive.oracle import PredictiveOracle
from kt_predictive.predictor import HybridPredictor

FULL_STEPS = 300
BATCH_SIZE = 32
SECTION = "trial-overhead"
PARTS = ("build", "fit", "validation", "state writes", "oracle", "predictor", "other")


def diabetes() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The diabetes data, standardised, split 353 / 89 (training / validation) at random."""
    x, y = load_diabetes(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    y = ((y - y.mean()) / y.std()).astype("float32")[:, None]
    order = np.random.default_rng(0).permutation(len(x))
    train, val = order[:353], order[353:]
    return (x[train], y[train]), (x[val], y[val])


def build(hp: keras_tuner.HyperParameters) -> keras.Model:
    """An MLP on the diabetes features: 1-3 ReLU layers, Adam, MSE."""
    model = keras.Sequential([keras.Input((10,))])
    for _ in range(hp.Int("layers", 1, 3)):
        model.add(keras.layers.Dense(hp.Choice("units", [16, 32, 64, 128]), activation="relu"))
    model.add(keras.layers.Dense(1))
    model.compile(keras.optimizers.Adam(hp.Choice("learning_rate", [1e-3, 3e-3, 1e-2])), "mse")
    return model


# Optimizer steps trained by every fit of the process (a module global: keras-tuner deep-copies
# the search's callbacks for each trial).
STEPS = {"count": 0}


class StepCounter(keras.callbacks.Callback):
    """Counts training batches (optimizer steps) into ``STEPS``."""

    def on_train_batch_end(self, batch, logs=None):
        STEPS["count"] += 1


@dataclass
class Timers:
    """Exclusive wall time per part: a timed call's time minus that of timed calls inside it."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    _stack: list[list] = field(default_factory=list)

    def wrap(self, part: str, function):
        def timed(*args, **kwargs):
            frame = [part, time.perf_counter(), 0.0]  # part, start, children's time
            self._stack.append(frame)
            try:
                return function(*args, **kwargs)
            finally:
                self._stack.pop()
                elapsed = time.perf_counter() - frame[1]
                self.seconds[part] += elapsed - frame[2]
                if self._stack:
                    self._stack[-1][2] += elapsed

        return timed


class _Patches:
    """Wraps methods of classes and modules in timers for the duration of a ``with`` block."""

    def __init__(self, timers: Timers, targets: list[tuple[object, str, str]]):
        self.timers, self.targets, self.saved = timers, targets, []

    def __enter__(self):
        for owner, name, part in self.targets:
            original = getattr(owner, name)
            self.saved.append((owner, name, original))
            setattr(owner, name, self.timers.wrap(part, original))
        return self

    def __exit__(self, *exc):
        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)


@dataclass
class RunResult:
    """One search's wall time, steps, trials, per-part seconds and best validation loss."""

    name: str
    seconds: float
    steps: int
    trials: int
    parts: dict[str, float]
    best: float
    outcome: dict = field(default_factory=dict, repr=False)  # trial id -> values, status, score


#: The plugin's levers against per-trial overhead, each with how to switch it off (for
#: ``--ablate``: a search without it, in the same run, must give the same trials and scores).
LEVERS = {
    "gc-freeze": (tuner_module, "_free_last_model", lambda: None),
    "eager-validation": (tuner_module, "_eager_loss_applies", lambda *args: False),
    "optimizer-prebuild": (tuner_module, "_build_optimizer", lambda model: None),
}


def _common_targets(tuner_class) -> list[tuple[object, str, str]]:
    return [
        (tuner_class, "_try_build", "build"),
        (keras_tuner.HyperModel, "fit", "fit"),
        (keras.Model, "evaluate", "validation"),
        (tuner_class, "save", "state writes"),
        (tuner_class, "save_model", "state writes"),
        (keras_tuner.Oracle, "create_trial", "oracle"),
        (keras_tuner.Oracle, "update_trial", "oracle"),
        (keras_tuner.Oracle, "end_trial", "oracle"),
    ]


def run_search(name: str, tuner, data, profile: cProfile.Profile | None = None) -> RunResult:
    """Runs ``tuner.search`` on the diabetes data and splits its time into ``PARTS``."""
    (x, y), validation = data
    timers = Timers()
    targets = _common_targets(type(tuner))
    if isinstance(tuner, PredictiveSearch):
        targets += [
            (PredictiveOracle, "create_trial", "oracle"),
            (PredictiveOracle, "update_trial", "oracle"),
            (PredictiveOracle, "end_trial", "oracle"),
            (PredictiveOracle, "save", "state writes"),
            (PredictiveOracle, "_save_record", "state writes"),
            (tuner_module, "save_training_state", "state writes"),
            (type(tuner), "_save_final_weights", "state writes"),
            (tuner_module, "_eager_loss", "validation"),
            (tuner_module, "_free_last_model", "build"),
            (HybridPredictor, "fit", "predictor"),
            (HybridPredictor, "tune", "predictor"),
            (HybridPredictor, "evaluate_splits", "predictor"),
        ]
    else:
        targets += [(keras_tuner.Oracle, "save", "state writes")]
    STEPS["count"] = 0
    gc.collect()
    with _Patches(timers, targets):
        started = time.perf_counter()
        if profile is not None:
            profile.enable()
        tuner.search(
            x,
            y,
            batch_size=BATCH_SIZE,
            validation_data=validation,
            callbacks=[StepCounter()],
            # Both silent: the plugin's default prints one line per trial, RandomSearch's bars.
            verbose=0,
            **({} if isinstance(tuner, PredictiveSearch) else {"epochs": _epochs()}),
        )
        if profile is not None:
            profile.disable()
        seconds = time.perf_counter() - started
    parts = {part: timers.seconds.get(part, 0.0) for part in PARTS[:-1]}
    parts["other"] = seconds - sum(parts.values())
    trials = tuner.oracle.trials
    best = tuner.oracle.get_best_trials(1)[0].score
    outcome = {
        trial_id: (
            {k: v for k, v in trial.hyperparameters.values.items()},
            trial.status,
            trial.score,
        )
        for trial_id, trial in trials.items()
    }
    return RunResult(name, seconds, STEPS["count"], len(trials), parts, float(best), outcome)


def _epochs() -> int:
    batches = -(-353 // BATCH_SIZE)
    return FULL_STEPS // batches


def predictive(budget: float, folder: str, project_name: str = "predictive") -> PredictiveSearch:
    """The plugin's search: ``search_budget`` full trainings of 300 steps, 60 early ones."""
    tuner = PredictiveSearch(
        build,
        objective="val_loss",
        search_budget=budget,
        steps=TrainingSteps(full_steps=FULL_STEPS, early_steps=60, window=20, final_window=60),
        seed=1,
        directory=folder,
        project_name=project_name,
    )
    return tuner


def random_search(budget: float, folder: str) -> keras_tuner.RandomSearch:
    """keras-tuner's RandomSearch with as many full trainings as the plugin's budget."""
    return keras_tuner.RandomSearch(
        build,
        objective="val_loss",
        max_trials=round(budget),
        seed=1,
        directory=folder,
        project_name="random",
    )


def table(results: list[RunResult]) -> str:
    """The comparison as markdown: totals, then per-part seconds and shares."""
    ours, theirs = results
    lines = [
        "| search | wall s | optimizer steps | trials | s per trial | s per 1000 steps |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.seconds:.1f} | {r.steps} | {r.trials} | {r.seconds / r.trials:.2f} "
            f"| {1000 * r.seconds / r.steps:.1f} |"
        )
    per_step = (ours.seconds / ours.steps) / (theirs.seconds / theirs.steps)
    lines += [
        "",
        f"Wall-time ratio {ours.seconds / theirs.seconds:.2f}x "
        f"({per_step:.2f}x per optimizer step); best val_loss {ours.best:.4f} vs "
        f"{theirs.best:.4f}.",
        "",
        "| part | " + " | ".join(f"{r.name} s (share)" for r in results) + " |",
        "|---|" + "---:|" * len(results),
    ]
    for part in PARTS:
        cells = [f"{r.parts[part]:.1f} ({100 * r.parts[part] / r.seconds:.0f}%)" for r in results]
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ablation(budget: float, folder: str, data, full: RunResult, random: RunResult) -> str:
    """Searches again without each lever; the table of what each saves, and a check that
    the searches chose the same trials and got the same scores."""
    lines = [
        "| PredictiveSearch | wall s | vs RandomSearch | same trials and scores |",
        "|---|---:|---:|---|",
        f"| all levers | {full.seconds:.1f} | {full.seconds / random.seconds:.2f}x | — |",
    ]
    for lever, (owner, name, off) in LEVERS.items():
        original = getattr(owner, name)
        setattr(owner, name, off)
        try:
            tuner = predictive(budget, folder, project_name=f"without-{lever}")
            result = run_search(f"without {lever}", tuner, data)
        finally:
            setattr(owner, name, original)
        print(result, flush=True)
        same = "yes" if result.outcome == full.outcome else "**no**"
        lines.append(
            f"| without {lever} | {result.seconds:.1f} | "
            f"{result.seconds / random.seconds:.2f}x | {same} |"
        )
    # The machine's load drifts: the full search again, last, shows by how much.
    again = run_search("PredictiveSearch", predictive(budget, folder, "again"), data)
    print(again, flush=True)
    same = "yes" if again.outcome == full.outcome else "**no**"
    lines.append(
        f"| all levers, again (drift) | {again.seconds:.1f} | "
        f"{again.seconds / random.seconds:.2f}x | {same} |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=10.0, help="full trainings (10)")
    parser.add_argument("--only", choices=("predictive", "random"), help="run one search")
    parser.add_argument(
        "--ablate", action="store_true", help="also search without each lever (LEVERS)"
    )
    parser.add_argument("--profile", type=Path, help="write the plugin run's cProfile here")
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md as it is")
    args = parser.parse_args(argv)
    data = diabetes()
    load_before = os.getloadavg()[0]
    results = []
    ablated = ""
    with tempfile.TemporaryDirectory() as folder:
        if args.only != "random":
            profile = cProfile.Profile() if args.profile else None
            results.append(
                run_search("PredictiveSearch", predictive(args.budget, folder), data, profile)
            )
            if profile is not None:
                out = io.StringIO()
                pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(60)
                args.profile.write_text(out.getvalue())
            print(results[-1], flush=True)
        if args.only != "predictive":
            results.append(run_search("RandomSearch", random_search(args.budget, folder), data))
            print(results[-1], flush=True)
        if len(results) == 2 and args.ablate:
            ablated = ablation(args.budget, folder, data, *results)
    if len(results) < 2:
        return
    markdown = table(results) + (
        f"\n\nEach lever's share, searching again without it:\n\n{ablated}" if ablated else ""
    )
    print(markdown)
    if not args.no_write:
        flags = (f" --budget {args.budget:g}" if args.budget != 10 else "") + (
            " --ablate" if args.ablate else ""
        )
        write_section(
            f"{SECTION}-levers" if args.ablate else SECTION,
            "## Per-trial overhead: PredictiveSearch vs RandomSearch (diabetes MLP)\n\n"
            f"Generated by `python bench/trial_overhead.py{flags}`: one process, both searches, "
            f"`val_loss`, `search_budget={args.budget:g}` (`full_steps={FULL_STEPS}`, "
            f"`early_steps=60`, `window=20`) against `RandomSearch(max_trials="
            f"{round(args.budget)})` of {_epochs()} epochs x 12 batches, both `verbose=0`. "
            "Parts are exclusive wall time. Levers: `gc-freeze` (the collection before each "
            "trial's build scans only what the last trial allocated), `eager-validation` "
            "(`val_loss` on array data computed eagerly, as `evaluate` batches it, instead of "
            "an `evaluate` call per window and a traced test function per trial), "
            "`optimizer-prebuild` (the optimizer's variables made before `fit`, so its training "
            "step is traced once, not twice). RandomSearch scores a trial by its best epoch, "
            "the plugin by its final value. Measured on a shared machine: load average "
            f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; the times "
            "are inflated alike, the ratios are what to read.\n\n"
            f"{markdown}\n\n{environment()}",
        )


if __name__ == "__main__":
    main()
