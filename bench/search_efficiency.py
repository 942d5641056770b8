"""Search efficiency at an equal number of training steps: the headline benchmark.

Six methods search the same space with the same total number of optimizer steps, over
several seeds: the PredictiveOracle with the paper's exponential reward and with the original
linear one, keras-tuner's RandomSearch, BayesianOptimization and Hyperband, and Optuna's TPE
sampler with its MedianPruner. Per seed the PredictiveOracle runs first; the steps it used
(the sum of ``record["steps"]`` over its records) are the budget B of every other method.

A method's result is the best *real* final loss it found: the mean training loss over the
last ``final_window`` steps of a network trained for the full ``full_steps`` (predicted
losses never count). Every step a method trains counts, including the steps that finish the
configuration it picked when its search did not train it fully (Hyperband).

Two problems:

- ``digits``: the small CNN of ``examples/digits_cnn.py`` trained with Keras on
  scikit-learn's bundled digits (real training, so each training is a new random draw);
- ``aae``: the paper's AAE search space, through ``bench/aae_surrogate.py``, which replays
  learning curves measured on real AAE trainings (a lookup, so many seeds are cheap).

Writes section ``search-efficiency`` of ``bench/RESULTS.md`` and
``bench/search_efficiency_<problem>.png``.

    python bench/search_efficiency.py                          # both problems
    python bench/search_efficiency.py --problem digits --seeds 5
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

import keras
import keras_tuner
import numpy as np
import optuna
from digits_cnn import DigitsCNN, load_data
from keras_tuner.engine import trial as trial_module
from keras_tuner.engine.base_tuner import BaseTuner
from results import RESULTS_PATH, environment, write_section

from kt_predictive import (
    AllocationRule,
    PredictiveOracle,
    PredictiveSearch,
    StepBudget,
    StepBudgetCallback,
    StepLossRecorder,
    final_mean,
    load_training_state,
    read_json,
    save_training_state,
    training_state_path,
    window_mean,
    write_json,
)
from kt_predictive.records import PARENT_VALUE, configuration
from kt_predictive.reporting import TRAIN_SECONDS

TrialStatus = trial_module.TrialStatus
BENCH = Path(__file__).resolve().parent
SECTION = "search-efficiency"
OBJECTIVE = keras_tuner.Objective("loss", direction="min")
METHODS = (
    "PredictiveOracle (exp)",
    "PredictiveOracle (linear)",
    "PredictiveOracle (default)",
    "RandomSearch",
    "BayesianOptimization",
    "Hyperband",
    "Optuna TPE + MedianPruner",
)
# The paper's rule with either reward (its own schedule: its steps set B), and the plugin's
# default: evidence-aware allocation, predictor refitted with phase-4 results, phases sized
# from B by search_budget.
PREDICTIVE = {
    "PredictiveOracle (exp)": "exp",
    "PredictiveOracle (linear)": "linear",
    "PredictiveOracle (default)": "default",
}
# Predictive variants that run on B rather than defining it.
BUDGETED_PREDICTIVE = {"PredictiveOracle (default)"}
#: "Within 5% of the best known configuration": best so far <= (1 + TOLERANCE) * best known.
TOLERANCE = 0.05
HYPERBAND_FACTOR = 3


# ---------------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Settings:
    """The step budget and the search sizes of one problem.

    Attributes:
        budget: full, early, window and final-window steps (all methods).
        initial_trials, max_iterations, top_k: the PredictiveOracle's phases 1, 3 and 4.
        tuning_trials: Optuna trials per model when the PredictiveOracle tunes its predictor.
        hyperband_chunk: steps of one keras-tuner "epoch" for Hyperband; ``max_epochs`` is
            ``full_steps / hyperband_chunk``.
        bo_initial_points: random trials before BayesianOptimization fits its Gaussian
            process. keras-tuner's default, 3 per hyperparameter, would leave the GP few or
            no trials within B.
        seeds: default number of seeds.
    """

    budget: StepBudget
    initial_trials: int
    max_iterations: int
    top_k: int
    tuning_trials: int
    hyperband_chunk: int
    bo_initial_points: int
    seeds: int

    def __post_init__(self) -> None:
        if self.budget.full_steps % self.hyperband_chunk:
            raise ValueError(
                f"hyperband_chunk ({self.hyperband_chunk}) must divide full_steps "
                f"({self.budget.full_steps}) so Hyperband's last round trains fully"
            )

    def describe(self) -> str:
        b = self.budget
        return (
            f"full_steps {b.full_steps}, early_steps {b.early_steps}, window {b.window}, "
            f"final_window {b.final_window}; PredictiveOracle initial_trials "
            f"{self.initial_trials}, max_iterations {self.max_iterations}, top_k {self.top_k}, "
            f"beta 5, predictor tuned with {self.tuning_trials} Optuna trials per model; "
            f"Hyperband factor {HYPERBAND_FACTOR}, one epoch = {self.hyperband_chunk} steps "
            f"(max_epochs {b.full_steps // self.hyperband_chunk}); BayesianOptimization "
            f"num_initial_points {self.bo_initial_points}; Optuna TPESampler and MedianPruner "
            f"with their defaults, a report every {b.window} steps"
        )


class Run:
    """One network's training so far: the loss of every optimizer step."""

    losses: list[float]

    @property
    def diverged(self) -> bool:
        """Whether the last step's loss is not finite (training stops there)."""
        return bool(self.losses) and not math.isfinite(self.losses[-1])

    def train(self, steps: int, after_step: Callable[[float], bool] | None = None) -> None:
        """Trains up to ``steps`` more steps.

        Stops early after a step whose loss is not finite, or after a step for which
        ``after_step(loss)`` returns True.
        """
        raise NotImplementedError

    def checkpoint(self, path: Path) -> object:
        """Saves the training state (to ``path`` if it needs a file) for ``Problem.resume``."""
        raise NotImplementedError


class Problem:
    """A search space and a way to train its configurations step by step.

    Attributes:
        name: short name (``--problem``, file names).
        title: heading in RESULTS.md.
        settings: budgets and search sizes.
        best_known: the best known final loss, or None to use the best one measured here.
        best_known_note: what ``best_known`` is, for the report.
    """

    name: str
    title: str
    settings: Settings
    best_known: float | None = None
    best_known_note: str = ""

    def space(self) -> keras_tuner.HyperParameters:
        """The search space (every hyperparameter a ``Choice``)."""
        raise NotImplementedError

    def start(self, values: Mapping, seed: int) -> Run:
        """A fresh training of configuration ``values``."""
        raise NotImplementedError

    def resume(self, values: Mapping, checkpoint: object, seed: int) -> Run:
        """The training of ``values`` continued from a ``Run.checkpoint``."""
        raise NotImplementedError

    def run_predictive(
        self, variant: str, seed: int, directory: str, ledger: StepLedger
    ) -> PredictiveOracle:
        """Runs the PredictiveOracle ``variant`` (see predictive_arguments); returns it finished."""
        tuner = RunPredictiveTuner(
            make_predictive_oracle(self, variant, seed, ledger.limit),
            self,
            seed,
            ledger,
            directory=directory,
            project_name="predictive",
        )
        tuner.search(verbose=0)
        return tuner.oracle


class CurveRun(Run):
    """Training replayed from a known curve: step t's loss is ``curve[t - 1]``."""

    def __init__(self, curve: np.ndarray, trained: int = 0):
        self.curve = np.asarray(curve, dtype=np.float64)
        self.losses = [float(v) for v in self.curve[:trained]]

    def train(self, steps, after_step=None):
        for _ in range(steps):
            if len(self.losses) >= len(self.curve) or self.diverged:
                return
            value = float(self.curve[len(self.losses)])
            self.losses.append(value)
            if (after_step is not None and after_step(value)) or not math.isfinite(value):
                return

    def checkpoint(self, path):
        del path  # the state is the number of steps replayed
        return len(self.losses)


class CurveProblem(Problem):
    """A problem whose training is a lookup: ``curve(values, seed)`` gives every step's loss.

    The same configuration always replays the same curve for a given seed, so all methods of
    one seed search the same world.
    """

    def __init__(
        self,
        name: str,
        title: str,
        settings: Settings,
        curve: Callable[[Mapping, int], np.ndarray],
        space: Callable[[], keras_tuner.HyperParameters],
        best_known: float | None = None,
        best_known_note: str = "",
    ):
        self.name, self.title, self.settings = name, title, settings
        self._curve, self._space = curve, space
        self.best_known, self.best_known_note = best_known, best_known_note

    def space(self):
        return self._space()

    def start(self, values, seed):
        return CurveRun(self._curve(dict(values), seed))

    def resume(self, values, checkpoint, seed):
        return CurveRun(self._curve(dict(values), seed), trained=int(checkpoint))


class _StepTarget(StepLossRecorder):
    """Stops a Keras training after a number of steps, at a non-finite loss, or on request."""

    def __init__(self, losses, steps: int, after_step: Callable[[float], bool] | None):
        super().__init__(losses)
        self.target = len(self.losses) + steps
        self.hook = after_step

    def after_step(self, value: float) -> bool:
        stop = self.hook(value) if self.hook is not None else False
        return stop or not math.isfinite(value) or self.steps >= self.target


class KerasRun(Run):
    """A Keras model in training; ``fit(**kwargs)`` calls the hypermodel's fit on the data."""

    def __init__(
        self, model: keras.Model, fit: Callable[..., object], losses: Sequence[float] = ()
    ):
        self.model, self._fit = model, fit
        self.losses = [float(v) for v in losses]

    def train(self, steps, after_step=None):
        if steps <= 0 or self.diverged:
            return
        recorder = _StepTarget(self.losses, steps, after_step)
        # Every epoch has at least one step, so this many epochs always reach the target.
        self._fit(epochs=steps, callbacks=[recorder], verbose=0)
        self.losses = [float(v) for v in recorder.losses]

    def checkpoint(self, path):
        # Weights *and* optimizer state: a resumed trial continues the same optimisation.
        save_training_state(path, self.model, np.asarray(self.losses))
        return path


class _DeclareOnly:
    """Stands in for a model in ``HyperModel.fit`` to declare the hyperparameters it uses."""

    def fit(self, *args, **kwargs) -> None:
        del args, kwargs


class DigitsProblem(Problem):
    """The digits CNN of ``examples/digits_cnn.py``, trained for real with Keras."""

    name = "digits"
    title = "Digits CNN (real Keras training on scikit-learn's digits)"
    best_known_note = (
        "the lowest real final loss measured anywhere in this benchmark (all methods, all "
        "seeds): the space has no exhaustive table and every training is a new random draw"
    )
    settings = Settings(
        budget=StepBudget(full_steps=300, early_steps=60, window=20, final_window=40),
        initial_trials=10,
        max_iterations=20,
        top_k=3,
        tuning_trials=10,
        hyperband_chunk=20,
        bo_initial_points=5,
        seeds=5,
    )

    def __init__(self):
        self.hypermodel = DigitsCNN()
        self.x, _, self.y, _ = load_data()

    def space(self):
        hp = keras_tuner.HyperParameters()
        self.hypermodel.build(hp)
        # DigitsCNN declares the batch size in fit(); every method needs it up front.
        self.hypermodel.fit(hp, _DeclareOnly())
        return hp

    def _run(self, values: Mapping, losses: Sequence[float] = ()) -> KerasRun:
        hp = self.space()
        hp.values.update(values)
        # As keras-tuner's Tuner does before every build: drop the previous models' state.
        keras.backend.clear_session()
        model = self.hypermodel.build(hp)
        return KerasRun(
            model, lambda **kwargs: self.hypermodel.fit(hp, model, self.x, self.y, **kwargs), losses
        )

    def start(self, values, seed):
        del seed  # the method's run seeds Keras once, at its start
        return self._run(values)

    def resume(self, values, checkpoint, seed):
        run = self._run(values)
        losses, _ = load_training_state(checkpoint, run.model)
        run.losses = [float(v) for v in losses]
        return run

    def run_predictive(self, variant, seed, directory, ledger):
        # The plugin itself, as a user runs it: PredictiveSearch on the Keras hypermodel.
        tuner = TracedPredictiveSearch(
            self.hypermodel,
            ledger=ledger,
            hyperparameters=self.space(),
            directory=directory,
            project_name="predictive",
            **predictive_arguments(self.settings, variant, seed, ledger.limit),
        )
        tuner.search(self.x, self.y, verbose=0)
        return tuner.oracle


def aae_problem() -> CurveProblem:
    """The AAE search space on the surrogate of measured AAE curves (``bench/aae_surrogate.py``)."""
    from aae_surrogate import AAESurrogate

    surrogate = AAESurrogate.load()
    settings = Settings(
        budget=StepBudget(full_steps=400, early_steps=60, window=10, final_window=40),
        initial_trials=20,
        max_iterations=80,
        top_k=5,
        tuning_trials=10,
        hyperband_chunk=10,
        bo_initial_points=10,
        seeds=20,
    )
    if surrogate.full_steps != settings.budget.full_steps:
        raise ValueError(
            f"the surrogate's curves have {surrogate.full_steps} steps, the benchmark expects {settings.budget.full_steps}"
        )
    best, note = surrogate_best_known(surrogate, settings.budget)
    return CurveProblem(
        "aae",
        "AAE search space (surrogate of measured AAE curves)",
        settings,
        surrogate.curve,
        surrogate.space,
        best_known=best,
        best_known_note=note,
    )


def surrogate_best_known(surrogate, budget: StepBudget) -> tuple[float, str]:
    """The lowest final loss over every run measured in the surrogate's table."""
    table = surrogate.table
    finals = table.final_means(budget.final_window)
    note = (
        f"the lowest final loss (mean of the last {budget.final_window} steps) over all {len(finals)} "
        f"measured runs of the surrogate's table ({len(np.unique(table.config_id))} configurations, "
        f"{int((~np.isfinite(finals)).sum())} runs diverged), not over the whole space of 82,944"
    )
    return float(np.min(finals)), note


# ---------------------------------------------------------------------------------- accounting


class StepLedger:
    """The training steps a method used, and its best real final loss as they accumulate.

    Args:
        limit: the budget B, or None for the PredictiveOracle (whose steps define B).
    """

    def __init__(self, limit: int | None = None):
        self.limit = limit
        self.used = 0
        self.best = math.inf
        self.finals = 0
        #: ``(cumulative steps, best real final loss so far)`` after each full training.
        self.trace: list[tuple[int, float]] = []

    @property
    def left(self) -> int:
        return self.limit - self.used

    def spend(self, steps: int) -> None:
        self.used += steps
        if self.limit is not None and self.used > self.limit:
            raise RuntimeError(
                f"a method used {self.used} steps, more than its budget of {self.limit}"
            )

    def real_final(self, loss: float) -> None:
        """Records the real final loss of a network just trained to ``full_steps``."""
        if math.isfinite(loss):
            self.finals += 1
            self.best = min(self.best, loss)
            self.trace.append((self.used, self.best))


@dataclass
class Outcome:
    """One method's search on one seed."""

    method: str
    seed: int
    best: float
    steps: int
    budget: int
    finals: int
    trace: list[tuple[int, float]]
    seconds: float
    fixed_iterations: dict[str, int] = field(default_factory=dict)
    fixed_values: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)


def steps_to_reach(trace: Sequence[tuple[int, float]], target: float) -> int | None:
    """The cumulative steps at which the best-so-far first got to ``target`` or below."""
    return next((steps for steps, best in trace if best <= target), None)


# ---------------------------------------------------------------------------------- methods


class _ErrorsPropagate:
    """keras-tuner turns any exception in a trial into a failed trial; a benchmark must crash."""

    def _try_run_and_update_trial(self, trial, *fit_args, **fit_kwargs):
        self._run_and_update_trial(trial, *fit_args, **fit_kwargs)
        trial.status = TrialStatus.COMPLETED


class _TracedPredictive:
    """Feeds a PredictiveOracle's step count and real final losses to a ledger after each trial."""

    ledger: StepLedger

    def on_trial_end(self, trial):
        super().on_trial_end(trial)  # the oracle settles the trial's record here
        self.ledger.spend(self.oracle.training_steps() - self.ledger.used)
        record = next(r for r in self.oracle.records() if r.trial_id == trial.trial_id)
        if record.is_real:
            self.ledger.real_final(record.real_final)


class TracedPredictiveSearch(_TracedPredictive, PredictiveSearch):
    """PredictiveSearch that feeds a ledger (the digits problem)."""

    def __init__(self, *args, ledger: StepLedger, **kwargs):
        self.ledger = ledger
        super().__init__(*args, **kwargs)


class RunPredictiveTuner(_ErrorsPropagate, _TracedPredictive, BaseTuner):
    """Runs a PredictiveOracle's trials on a Problem's runs, with PredictiveTuner's protocol.

    The same ``StepBudgetCallback`` logic as PredictiveTuner: the mean of every window up to
    ``early_steps`` is reported with ``oracle.update_trial(trial_id, metrics, step)``, the
    trial stops when the oracle answers STOPPED, the final mean is reported at ``full_steps``
    and inf at a divergence. A phase-4 continuation (a new trial whose
    ``values["tuner/trial_id"]`` names its parent) resumes from the parent's checkpoint at
    ``early_steps``.
    """

    def __init__(
        self, oracle: PredictiveOracle, problem: Problem, seed: int, ledger: StepLedger, **kwargs
    ):
        self.problem, self.seed, self.ledger = problem, seed, ledger
        self.budget = oracle.budget
        self._checkpoints: dict[str, object] = {}
        super().__init__(oracle=oracle, **kwargs)

    def _run_and_update_trial(self, trial, *fit_args, **fit_kwargs):
        # The reports reach the oracle while the run trains; nothing is left to report after.
        self.run_trial(trial)

    def run_trial(self, trial, *fit_args, **fit_kwargs):
        """Trains the trial's configuration until the oracle or the budget stops it."""
        values = configuration(trial.hyperparameters.values)
        parent = trial.hyperparameters.values.get(PARENT_VALUE)
        saved = self._checkpoints.get(trial.trial_id) or self._checkpoints.get(parent)
        run = (
            self.problem.start(values, self.seed)
            if saved is None
            else self.problem.resume(values, saved, self.seed)
        )
        path = training_state_path(self.get_trial_dir(trial.trial_id))

        def report(step: int, value: float) -> bool:
            metrics = {self.oracle.objective.name: value, TRAIN_SECONDS: 0.0}
            return (
                self.oracle.update_trial(trial.trial_id, metrics, step=step).status
                == TrialStatus.STOPPED
            )

        def save(curve) -> None:
            del curve  # the run holds the same curve
            self._checkpoints[trial.trial_id] = run.checkpoint(path)

        callback = StepBudgetCallback(
            self.budget, run.losses, report, save, checkpoint_every=self.budget.full_steps
        )

        def after_step(value: float) -> bool:
            callback.losses.append(value)
            return callback.after_step(value)

        run.train(self.budget.full_steps - len(run.losses), after_step)


def predictive_arguments(
    settings: Settings, variant: str, seed: int, limit: int | None = None
) -> dict:
    """The PredictiveOracle's arguments for a problem's settings.

    ``variant`` "exp" or "linear": the paper's allocation rule with that reward and the
    problem's phase sizes; "default": the plugin's defaults with phases sized from the
    budget ``limit`` (steps).
    """
    b = settings.budget
    common = dict(
        objective=OBJECTIVE.name,
        full_steps=b.full_steps,
        early_steps=b.early_steps,
        window=b.window,
        final_window=b.final_window,
        tuning_trials=settings.tuning_trials,
        report_splits=0,  # the predictor report is not part of this benchmark
        seed=seed,
    )
    if variant == "default":
        if limit is None:
            raise ValueError("the default PredictiveOracle runs on the budget B of its seed")
        return dict(common, search_budget=limit / b.full_steps)
    return dict(
        common,
        initial_trials=settings.initial_trials,
        max_iterations=settings.max_iterations,
        top_k=settings.top_k,
        allocation=AllocationRule.paper(variant),
        refit_predictor=False,
    )


def make_predictive_oracle(
    problem: Problem, variant: str, seed: int, limit: int | None = None
) -> PredictiveOracle:
    return PredictiveOracle(
        hyperparameters=problem.space(),
        **predictive_arguments(problem.settings, variant, seed, limit),
    )


class BudgetedTuner(_ErrorsPropagate, BaseTuner):
    """Runs a keras-tuner oracle's trials on a Problem within a budget of training steps.

    Without ``chunk`` every trial trains to ``full_steps`` (RandomSearch, BayesianOptimization)
    and a trial starts only if it fits in what is left of the budget. With ``chunk``
    (Hyperband) a trial trains from ``tuner/initial_epoch`` to ``tuner/epochs`` chunks,
    continuing the training of ``tuner/trial_id`` from its checkpoint; it starts only if,
    after it, the budget can still train whichever trial is then the best to ``full_steps``,
    which happens at the end of the search if the pick is not fully trained.

    A trial's score is the mean loss of its last ``final_window`` steps (or of all its steps
    when it has fewer). A diverged trial scores the worst finite score seen in the run (or its
    own first loss, an untrained network's, if that is worse): not inf, because
    BayesianOptimization's Gaussian process maps inf to 0, the best possible loss.
    """

    def __init__(
        self,
        oracle,
        problem: Problem,
        seed: int,
        ledger: StepLedger,
        chunk: int | None = None,
        **kwargs,
    ):
        self.problem, self.seed, self.ledger, self.chunk = problem, seed, ledger, chunk
        self.budget = problem.settings.budget
        self._checkpoints: dict[str, object] = {}
        self._trained: dict[str, int] = {}
        self._diverged: set[str] = set()
        self._worst = -math.inf
        self.finished_pick = False
        super().__init__(oracle=oracle, **kwargs)

    def search(self, *fit_args, **fit_kwargs):
        """Runs trials until the oracle stops or the next trial does not fit in the budget."""
        self.oracle.verbose = 0
        while True:
            trial = self.oracle.create_trial(self.tuner_id)
            if trial.status == TrialStatus.STOPPED:
                break
            if trial.status == TrialStatus.IDLE:
                continue
            start, end = self._span(trial)
            if (end - start) + max(
                self._finish_cost(self._pick()), self.budget.full_steps - end
            ) > self.ledger.left:
                break  # the created trial stays unrun and never counts
            self.on_trial_begin(trial)
            self._try_run_and_update_trial(trial)
            self.on_trial_end(trial)
        self._finish_pick()

    def _span(self, trial) -> tuple[int, int]:
        values = trial.hyperparameters.values
        if self.chunk is None:
            return 0, self.budget.full_steps
        return values["tuner/initial_epoch"] * self.chunk, values["tuner/epochs"] * self.chunk

    def _pick(self):
        best = [t for t in self.oracle.get_best_trials(1) if t.status == TrialStatus.COMPLETED]
        return best[0] if best else None

    def _finish_cost(self, trial) -> int:
        if trial is None or trial.trial_id in self._diverged:
            return 0
        return self.budget.full_steps - self._trained[trial.trial_id]

    def run_trial(self, trial, *fit_args, **fit_kwargs):
        """Trains the trial's span of steps; returns its score."""
        hp_values = trial.hyperparameters.values
        values = {name: value for name, value in hp_values.items() if not name.startswith("tuner/")}
        start, end = self._span(trial)
        parent = hp_values.get("tuner/trial_id")
        if parent is None:
            run = self.problem.start(values, self.seed)
        else:
            run = self.problem.resume(values, self._checkpoints[parent], self.seed)
        if len(run.losses) != start and not run.diverged:
            raise RuntimeError(
                f"trial {trial.trial_id} should start at step {start}, its run is at {len(run.losses)}"
            )
        before = len(run.losses)
        run.train(end - before)
        self.ledger.spend(len(run.losses) - before)
        self._trained[trial.trial_id] = len(run.losses)
        if self.chunk is not None:
            self._checkpoints[trial.trial_id] = run.checkpoint(
                training_state_path(self.get_trial_dir(trial.trial_id))
            )
        return {OBJECTIVE.name: self._score(trial.trial_id, run)}

    def _score(self, trial_id: str, run: Run) -> float:
        if run.diverged:
            self._diverged.add(trial_id)
            first = run.losses[0] if math.isfinite(run.losses[0]) else -math.inf
            worst = max(self._worst, first)
            return worst if math.isfinite(worst) else np.finfo(np.float32).max
        steps = len(run.losses)
        score = window_mean(np.asarray(run.losses), steps, min(self.budget.final_window, steps))
        self._worst = max(self._worst, score)
        if steps == self.budget.full_steps:
            self.ledger.real_final(score)
        return score

    def _finish_pick(self) -> None:
        """Trains the method's pick to ``full_steps`` if the search left it short."""
        pick = self._pick()
        if self._finish_cost(pick) == 0:
            return
        values = {
            k: v for k, v in pick.hyperparameters.values.items() if not k.startswith("tuner/")
        }
        run = self.problem.resume(values, self._checkpoints[pick.trial_id], self.seed)
        before = len(run.losses)
        run.train(self.budget.full_steps - before)
        self.ledger.spend(len(run.losses) - before)
        self.finished_pick = True
        if not run.diverged:
            self.ledger.real_final(final_mean(np.asarray(run.losses), self.budget))


def keras_tuner_oracle(method: str, problem: Problem, seed: int):
    """keras-tuner's own oracle for ``method``, on the problem's space, without a trial limit."""
    common = dict(objective=OBJECTIVE, hyperparameters=problem.space(), seed=seed)
    if method == "RandomSearch":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=None, **common)
    if method == "BayesianOptimization":
        return keras_tuner.oracles.BayesianOptimizationOracle(
            max_trials=None, num_initial_points=problem.settings.bo_initial_points, **common
        )
    if method == "Hyperband":
        return keras_tuner.oracles.HyperbandOracle(
            max_epochs=problem.settings.budget.full_steps // problem.settings.hyperband_chunk,
            factor=HYPERBAND_FACTOR,
            hyperband_iterations=None,  # as many brackets as the budget allows
            **common,
        )
    raise ValueError(f"unknown keras-tuner method {method!r}")


class OptunaPruning:
    """Reports each window's mean loss to an Optuna trial and says when to prune it.

    Passed as ``after_step`` to a run (for Keras, inside a batch-level callback).
    """

    def __init__(self, trial: optuna.Trial, budget: StepBudget):
        self.trial, self.budget = trial, budget
        self.losses: list[float] = []
        self.pruned = False

    def after_step(self, value: float) -> bool:
        self.losses.append(value)
        step = len(self.losses)
        if step % self.budget.window or not math.isfinite(value):
            return False
        self.trial.report(window_mean(np.asarray(self.losses), step, self.budget.window), step)
        self.pruned = step < self.budget.full_steps and self.trial.should_prune()
        return self.pruned


def run_optuna(problem: Problem, seed: int, ledger: StepLedger) -> int:
    """Optuna's TPE with the MedianPruner until the budget is used; returns the trial count.

    A trial cut short by the end of the budget counts its steps and gives no result.
    """
    budget = problem.settings.budget
    space = problem.space()
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(),
    )
    while ledger.left > 0:
        trial = study.ask()
        values = {
            hp.name: trial.suggest_categorical(hp.name, list(hp.values)) for hp in space.space
        }
        run = problem.start(values, seed)
        pruning = OptunaPruning(trial, budget)
        run.train(min(budget.full_steps, ledger.left), pruning.after_step)
        ledger.spend(len(run.losses))
        if pruning.pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif run.diverged:
            study.tell(trial, math.inf)
        elif len(run.losses) < budget.full_steps:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            value = final_mean(np.asarray(run.losses), budget)
            ledger.real_final(value)
            study.tell(trial, value)
    return len(study.trials)


def predictive_diagnostics(oracle: PredictiveOracle) -> dict:
    """Where the predictive method spent its steps and how its picks did."""
    records = oracle.records()
    real = [r for r in records if r.is_real]
    best = min(real, key=lambda r: r.real_final) if real else None
    finalized = [r for r in real if r.role == "continuation"]
    initial_finals = [r.real_final for r in real if r.role == "initial"]
    return {
        "phase1_steps": sum(r.steps for r in records if r.role == "initial"),
        "explored": sum(r.role == "explore" for r in records),
        # "initial" or "finalize", as the stored outcomes of earlier runs name them.
        "best_phase": ("initial" if best.role == "initial" else "finalize") if best else None,
        "finalized_real": [r.real_final for r in finalized],
        "finalized_abs_error": [abs(r.real_final - r.predicted) for r in finalized],
        "initial_median": statistics.median(initial_finals) if initial_finals else None,
        "exploration_end": oracle.exploration_end,
    }


def run_method(problem: Problem, method: str, seed: int, limit: int | None) -> Outcome:
    """One method's search on one seed; ``limit`` is B (None for the PredictiveOracle)."""
    keras.utils.set_random_seed(seed)
    ledger = StepLedger(limit)
    started = time.perf_counter()
    extra: dict = {}
    with tempfile.TemporaryDirectory(prefix=f"search-efficiency-{problem.name}-") as directory:
        if method in PREDICTIVE:
            oracle = problem.run_predictive(PREDICTIVE[method], seed, directory, ledger)
            extra = dict(
                fixed_iterations=oracle.fixed_iterations,
                fixed_values=oracle.fixed_values,
                diagnostics=predictive_diagnostics(oracle),
            )
        elif method == "Optuna TPE + MedianPruner":
            extra = dict(diagnostics={"trials": run_optuna(problem, seed, ledger)})
        else:
            chunk = problem.settings.hyperband_chunk if method == "Hyperband" else None
            tuner = BudgetedTuner(
                keras_tuner_oracle(method, problem, seed),
                problem,
                seed,
                ledger,
                chunk=chunk,
                directory=directory,
                project_name="kt",
            )
            tuner.search()
            extra = dict(
                diagnostics={
                    "trials": len(tuner.oracle.trials),
                    "finished_pick": tuner.finished_pick,
                }
            )
    seconds = time.perf_counter() - started
    return Outcome(
        method,
        seed,
        ledger.best,
        ledger.used,
        limit if limit is not None else ledger.used,
        ledger.finals,
        ledger.trace,
        seconds,
        **extra,
    )


def benchmark(
    problem: Problem,
    seeds: Sequence[int],
    methods: Sequence[str] = METHODS,
    log=print,
    store: Path | None = None,
) -> list[Outcome]:
    """Every method on every seed; the first predictive method's steps set B per seed.

    With ``store``, each outcome is saved there as it finishes (one JSON file per seed) and
    outcomes already saved are reused: an interrupted benchmark continues where it stopped,
    and a rerun with more seeds only runs the new ones.
    """
    outcomes = []
    for seed in seeds:
        saved = (
            SeedOutcomes(store / f"{problem.name}-seed{seed}.json", problem, seed)
            if store is not None
            else None
        )
        limit = None
        for method in methods:
            outcome = saved.get(method) if saved is not None else None
            if outcome is None:
                budgeted = method not in PREDICTIVE or method in BUDGETED_PREDICTIVE
                outcome = run_method(problem, method, seed, limit if budgeted else None)
                if saved is not None:
                    saved.add(outcome)
                log(
                    f"[{problem.name} seed {seed}] {method}: best {outcome.best:.5g}, {outcome.steps} steps of B {outcome.budget}, "
                    f"{outcome.finals} full trainings, {outcome.seconds:.1f} s"
                )
            if limit is None:
                limit = outcome.steps
            outcomes.append(outcome)
    return outcomes


class SeedOutcomes:
    """The outcomes of one problem and seed saved so far, in a JSON file (written atomically).

    The file records the problem's settings; outcomes measured under other settings are not
    comparable, so a mismatch is an error that says which file to remove.
    """

    def __init__(self, path: Path, problem: Problem, seed: int):
        self.path, self.seed = path, seed
        self.settings = problem.settings.describe()
        self.outcomes: dict[str, Outcome] = {}
        if path.is_file():
            stored = read_json(path, "delete it to measure this seed again")
            if stored["settings"] != self.settings:
                raise ValueError(
                    f"{path} holds outcomes measured with other settings ({stored['settings']}); "
                    "delete it (or pass another --store) to measure this seed again"
                )
            for item in stored["outcomes"]:
                item["trace"] = [tuple(point) for point in item["trace"]]
                self.outcomes[item["method"]] = Outcome(**item)

    def get(self, method: str) -> Outcome | None:
        return self.outcomes.get(method)

    def add(self, outcome: Outcome) -> None:
        self.outcomes[outcome.method] = outcome
        write_json(
            self.path,
            {
                "seed": self.seed,
                "settings": self.settings,
                "outcomes": [asdict(o) for o in self.outcomes.values()],
            },
        )


# ---------------------------------------------------------------------------------- report


def _std(values: Sequence[float]) -> float:
    values = [v for v in values if math.isfinite(v)]
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _mean_std(values: Sequence[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "none found"
    text = f"{statistics.mean(finite):.4g} ± {_std(finite):.2g}"
    if len(finite) < len(values):
        text += f" ({len(values) - len(finite)} seeds found none)"
    return text


def best_known(problem: Problem, outcomes: Sequence[Outcome]) -> float:
    """The problem's best known final loss, or the best measured here."""
    if problem.best_known is not None:
        return problem.best_known
    return min(o.best for o in outcomes)


def summarize(problem: Problem, outcomes: Sequence[Outcome]) -> dict[str, dict]:
    """Per method: the numbers of the results table."""
    target = (1 + TOLERANCE) * best_known(problem, outcomes)
    summary = {}
    for method in dict.fromkeys(o.method for o in outcomes):
        runs = [o for o in outcomes if o.method == method]
        reached = [s for s in (steps_to_reach(o.trace, target) for o in runs) if s is not None]
        summary[method] = {
            "runs": runs,
            "best": [o.best for o in runs],
            "steps": [o.steps for o in runs],
            "budget": [o.budget for o in runs],
            "finals": [o.finals for o in runs],
            "reached": reached,
            "seconds": [o.seconds for o in runs],
        }
    return summary


def results_table(summary: dict[str, dict]) -> str:
    lines = [
        "| method | best real final loss (mean ± std) | steps used (mean; B) | full trainings per run (mean) "
        f"| steps to within {TOLERANCE:.0%} of best known (median; seeds reaching it) | wall time per run (mean s) | wall time, all seeds (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, s in summary.items():
        n = len(s["runs"])
        reached = (
            f"{statistics.median(s['reached']):,.0f} ({len(s['reached'])}/{n})"
            if s["reached"]
            else f"not reached (0/{n})"
        )
        lines.append(
            f"| {method} | {_mean_std(s['best'])} | {statistics.mean(s['steps']):,.0f}; "
            f"{statistics.mean(s['budget']):,.0f} | {statistics.mean(s['finals']):.1f} | {reached} "
            f"| {statistics.mean(s['seconds']):.1f} | {sum(s['seconds']):.0f} |"
        )
    return "\n".join(lines)


def _learning_rate(names: Sequence[str]) -> str | None:
    return next((name for name in names if name.lower() in ("lr", "learning_rate")), None)


def fixed_table(problem: Problem, summary: dict[str, dict]) -> str:
    """Mean iteration at which each hyperparameter got fixed, exp vs linear reward."""
    names = [hp.name for hp in problem.space().space]
    rewards = [m for m in PREDICTIVE if m in summary]
    lines = [
        "| hyperparameter | "
        + " | ".join(f"{m}: mean iteration fixed (seeds fixing it; values)" for m in rewards)
        + " |",
        "|---" * (len(rewards) + 1) + "|",
    ]
    means: dict[tuple[str, str], float | None] = {}
    for name in names:
        cells = []
        for method in rewards:
            runs = summary[method]["runs"]
            iterations = [o.fixed_iterations[name] for o in runs if name in o.fixed_iterations]
            values = [o.fixed_values[name] for o in runs if name in o.fixed_values]
            means[name, method] = statistics.mean(iterations) if iterations else None
            if iterations:
                counts = {v: values.count(v) for v in dict.fromkeys(values)}
                shown = ", ".join(f"{v} x{c}" for v, c in counts.items())
                cells.append(
                    f"{statistics.mean(iterations):.1f} ({len(iterations)}/{len(runs)}; {shown})"
                )
            else:
                cells.append(f"never (0/{len(runs)})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    max_iterations = problem.settings.max_iterations
    lines += [
        "",
        f"Iterations count finished exploration trials (0 = fixed right after phase 1, at most {max_iterations}); "
        "a seed that never fixed a hyperparameter is left out of its mean.",
    ]
    lines.append(
        "Exploration trials run per seed (mean; it ends early once every hyperparameter is fixed): "
        + ", ".join(
            f"{m} {statistics.mean(o.diagnostics['explored'] for o in summary[m]['runs']):.1f}"
            for m in rewards
        )
        + ". On a seed both rewards share phase 1 (same seed, same uniform draws), so they differ only from exploration on."
    )
    lr = _learning_rate(names)
    paper = ["PredictiveOracle (exp)", "PredictiveOracle (linear)"]
    if lr is not None and all(m in rewards for m in paper):
        exp_mean, linear_mean = means[lr, paper[0]], means[lr, paper[1]]
        if exp_mean is not None and linear_mean:
            faster = (linear_mean - exp_mean) / linear_mean
            direction = "sooner" if faster >= 0 else "later"
            lines.append(
                f"Learning rate ({lr}): fixed at iteration {exp_mean:.1f} with exp vs {linear_mean:.1f} with "
                f"linear (means over the seeds that fixed it): exp {abs(faster):.0%} {direction} "
                "(the paper: 71% sooner, 100 vs 350 iterations, one run of 400)."
            )
        else:
            lines.append(
                f"Learning rate ({lr}): no % comparison; a reward never fixed it, or linear fixed it right after phase 1."
            )
    return "\n".join(lines)


def plot(problem: Problem, summary: dict[str, dict], best: float, path: Path) -> None:
    """Best-so-far real final loss vs cumulative steps, mean over seeds, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = max(max(s["steps"]) for s in summary.values())
    grid = np.linspace(0, end, 500)
    fig, ax = plt.subplots(figsize=(8, 5))
    for method, s in summary.items():
        curves = []
        for outcome in s["runs"]:
            steps = np.array([p[0] for p in outcome.trace] + [math.inf])
            bests = np.array([math.inf] + [p[1] for p in outcome.trace])
            # The best so far at x is that of the last full training finished at or before x.
            curve = bests[np.searchsorted(steps, grid, side="right")]
            curve[grid > outcome.steps] = np.nan
            curves.append(curve)
        with np.errstate(invalid="ignore"):
            mean = np.mean(curves, axis=0)
        mean[~np.isfinite(mean)] = np.nan
        ax.plot(grid, mean, label=method, linestyle="-" if method in PREDICTIVE else "--")
    ax.axhline(
        (1 + TOLERANCE) * best,
        color="grey",
        linewidth=0.8,
        linestyle=":",
        label=f"best known + {TOLERANCE:.0%}",
    )
    ax.set_yscale("log")
    ax.set_xlabel("cumulative training steps")
    ax.set_ylabel(
        f"best real final loss so far (mean over {len(next(iter(summary.values()))['runs'])} seeds)"
    )
    ax.set_title(problem.title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def discussion(problem: Problem, summary: dict[str, dict]) -> str:
    """Measured facts on where the predictive method wins or loses, and why."""
    means = {
        m: statistics.mean([v for v in s["best"] if math.isfinite(v)] or [math.inf])
        for m, s in summary.items()
    }
    order = sorted(means, key=means.get)
    ours = "PredictiveOracle (exp)"
    if ours not in summary:
        return ""
    baselines = [m for m in order if m not in PREDICTIVE]
    rival = baselines[0]
    gap = (means[ours] - means[rival]) / means[rival]
    spread = max(_std(summary[ours]["best"]), _std(summary[rival]["best"]))
    runs = summary[ours]["runs"]
    d = [o.diagnostics for o in runs]
    phase1 = statistics.mean(x["phase1_steps"] / o.steps for x, o in zip(d, runs, strict=True))
    from_phase1 = sum(x["best_phase"] == "initial" for x in d)
    finalized = [v for x in d for v in x["finalized_real"]]
    errors = [v for x in d for v in x["finalized_abs_error"]]
    initial_medians = [x["initial_median"] for x in d if x["initial_median"] is not None]
    rs_trials = (
        statistics.mean(summary["RandomSearch"]["finals"]) if "RandomSearch" in summary else None
    )
    settings = problem.settings
    parts = [
        "Ranking by mean best real final loss: "
        + " < ".join(f"{m} ({means[m]:.4g})" for m in order)
        + ".",
        f"The exp-reward PredictiveOracle is {abs(gap):.0%} {'worse' if gap > 0 else 'better'} than the best "
        f"baseline, {rival}; that difference of means ({abs(means[ours] - means[rival]):.2g}) is "
        f"{'smaller' if spread > abs(means[ours] - means[rival]) else 'larger'} than the larger of their "
        f"standard deviations over seeds ({spread:.2g}).",
        f"Phase 1 (uniformly random configurations, fully trained) used {phase1:.0%} of B on average; "
        f"the method's best network came from phase 1 in {from_phase1}/{len(runs)} seeds and from the "
        f"{settings.top_k} finalized candidates in the others.",
    ]
    if finalized and initial_medians:
        parts.append(
            f"The finalized candidates' real final losses had median {statistics.median(finalized):.4g}, "
            f"against {statistics.median(initial_medians):.4g} for the random phase-1 networks (median of the "
            f"per-seed medians); the predictor's absolute error on them averaged {statistics.mean(errors):.3g}."
        )
    if rs_trials is not None:
        parts.append(
            f"With the same B, RandomSearch fully trained {rs_trials:.1f} networks per run, the predictive "
            f"method {statistics.mean(summary[ours]['finals']):.1f} ({settings.initial_trials} in phase 1, "
            f"up to {settings.top_k} in phase 4): its early-stopped exploration only pays if the predictor "
            "steers phase 4 to configurations better than the extra random ones it gave up."
        )
    paragraphs = [" ".join(parts)]
    if "PredictiveOracle (default)" in summary:
        paragraphs.append(paired_comparison(summary, "PredictiveOracle (default)"))
    return "\n\n".join(paragraphs)


def paired_comparison(summary: dict[str, dict], method: str) -> str:
    """``method`` against every other method, seed by seed: wins, losses, and a two-sided
    Wilcoxon signed-rank test of the paired differences (scipy; exact for few seeds)."""
    from scipy.stats import wilcoxon

    ours = {o.seed: o.best for o in summary[method]["runs"]}
    lines = [
        f"**{method}, paired by seed** (lower is better; Wilcoxon signed-rank, two-sided):",
        "",
        "| against | seeds | wins | losses | ties | mean difference | p |",
        "|---|---|---|---|---|---|---|",
    ]
    for other, data in summary.items():
        if other == method:
            continue
        theirs = {o.seed: o.best for o in data["runs"]}
        seeds = sorted(set(ours) & set(theirs))
        diffs = [
            ours[s] - theirs[s]
            for s in seeds
            if math.isfinite(ours[s]) and math.isfinite(theirs[s])
        ]
        wins, losses = sum(d < 0 for d in diffs), sum(d > 0 for d in diffs)
        p = wilcoxon(diffs).pvalue if any(diffs) and len(diffs) > 1 else float("nan")
        lines.append(
            f"| {other} | {len(diffs)} | {wins} | {losses} | {len(diffs) - wins - losses} | "
            f"{statistics.mean(diffs):+.4f} | {p:.2g} |"
        )
    n = len(ours)
    lines += [
        "",
        f"With {n} seeds the smallest two-sided p a Wilcoxon test can give is {2 / 2**n:.3g}"
        + (
            ": no difference here can be significant at 0.05, wins included."
            if 2 / 2**n > 0.05
            else "."
        ),
    ]
    return "\n".join(lines)


def problem_markdown(
    problem: Problem,
    outcomes: Sequence[Outcome],
    seeds: Sequence[int],
    seconds: float,
    command: str,
    image_dir: Path = BENCH,
) -> str:
    """The RESULTS.md block of one problem; writes its figure into ``image_dir``."""
    summary = summarize(problem, outcomes)
    best = best_known(problem, outcomes)
    image = image_dir / f"search_efficiency_{problem.name}.png"
    plot(problem, summary, best, image)
    return "\n".join(
        [
            f"### {problem.title}",
            "",
            environment(),
            f"- Reproduce: `{command}` ({len(seeds)} seeds: {seeds[0]}..{seeds[-1]}; this problem took {seconds / 60:.1f} min of wall time)",
            f"- Settings: {problem.settings.describe()}.",
            f"- Best known final loss {best:.5g}: {problem.best_known_note}.",
            "",
            results_table(summary),
            "",
            fixed_table(problem, summary),
            "",
            f"![best real final loss so far vs cumulative steps](search_efficiency_{problem.name}.png)",
            "",
            "Mean over seeds of the best real final loss found so far; a line starts once every seed has a fully trained network.",
            "",
            f"**Reading.** {discussion(problem, summary)}",
        ]
    )


INTRO = """## Search efficiency at an equal number of training steps

Reproduce: `python bench/search_efficiency.py [--problem digits|aae|both] [--seeds N]`.

Per seed the PredictiveOracle with the exp reward runs first; the optimizer steps it used
(the sum of `record["steps"]` over its records) are the budget B of every other method on
that seed (the linear reward uses its own, similar, total). A method's score is the best
*real* final loss it found: the mean training loss over the last `final_window` steps of a
network trained for the full `full_steps`. RandomSearch and BayesianOptimization train
trials fully while one more fits in B; Hyperband trains in chunks, resumes its trials from
full checkpoints (weights and optimizer state, which is kinder to it than keras-tuner's
weights-only checkpoint), starts a trial only if B can still fully train its pick afterwards,
and counts the steps that finish its pick; Optuna's trials report every window's mean loss
to the MedianPruner and may be pruned, until B is used (a trial cut by the end of B counts
its steps and gives nothing). A diverged training stops at its first non-finite loss and
counts the steps it ran. "Steps to within 5%": the cumulative steps after which a run's best
real final loss so far was within 5% of the best known one."""


def _block(name: str, text: str) -> str:
    return f"<!-- {SECTION}.{name}:start -->\n{text.strip()}\n<!-- {SECTION}.{name}:end -->"


def _previous_blocks() -> dict[str, str]:
    """The problem blocks already in RESULTS.md, so that one problem can be rerun alone."""
    text = RESULTS_PATH.read_text() if RESULTS_PATH.is_file() else ""
    pattern = re.compile(
        rf"<!-- {SECTION}\.(\w+):start -->\n(.*?)\n<!-- {SECTION}\.\1:end -->", re.S
    )
    return {match.group(1): match.group(2) for match in pattern.finditer(text)}


def wait_for_surrogate(poll_seconds: float = 120.0, log=print) -> None:
    """Waits until ``bench/aae_surrogate.py`` and its table of curves exist."""
    needed = [BENCH / "aae_surrogate.py", BENCH / "data" / "aae_curves.npz"]
    while missing := [p for p in needed if not p.exists()]:
        log(f"waiting for {', '.join(str(p.relative_to(BENCH.parent)) for p in missing)}")
        time.sleep(poll_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", choices=("digits", "aae", "both"), default="both")
    parser.add_argument("--seeds", type=int, help="seeds per problem (default: 5 digits, 20 aae)")
    parser.add_argument(
        "--store",
        type=Path,
        default=BENCH / "data" / "search_efficiency",
        help="folder of the raw outcomes, one JSON file per problem and seed; outcomes already there are reused",
    )
    args = parser.parse_args()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # Two cores shared with other jobs: one thread per op trains these small networks
        # as fast as more, and leaves the other core free.
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    command = shlex.join(["python", "bench/search_efficiency.py", *sys.argv[1:]])
    blocks = _previous_blocks()
    for name in ("digits", "aae"):
        if args.problem not in (name, "both"):
            continue
        if name == "aae":
            wait_for_surrogate()
        problem = DigitsProblem() if name == "digits" else aae_problem()
        seeds = list(
            range(1, (args.seeds or problem.settings.seeds) + 1)
        )  # keras-tuner treats seed 0 as "random"
        started = time.perf_counter()
        outcomes = benchmark(problem, seeds, store=args.store)
        blocks[name] = problem_markdown(
            problem, outcomes, seeds, time.perf_counter() - started, command
        )
        write_section(
            SECTION,
            "\n\n".join([INTRO, *(_block(n, blocks[n]) for n in ("digits", "aae") if n in blocks)]),
        )
        print(f"wrote section {SECTION} of {RESULTS_PATH}")
    write_section(README_BLOCK, readme_summary(args.store), path=README_PATH)
    print(f"wrote the {README_BLOCK} block of {README_PATH}")


README_PATH = BENCH.parent / "README.md"
README_BLOCK = "search-efficiency-summary"
PROBLEM_TITLES = {
    "digits": "digits CNN (real training)",
    "aae": "AAE space (surrogate of 252 real AAE curves)",
}


def readme_summary(store: Path) -> str:
    """The README's table: mean ± std of the best real final loss per method and problem,
    read from the stored outcomes (so it always matches RESULTS.md)."""
    bests: dict[str, dict[str, list[float]]] = {}
    seeds: dict[str, set[int]] = {}
    for path in sorted(store.glob("*-seed*.json")):
        problem = path.name.split("-seed")[0]
        saved = read_json(path, "Delete it to run that seed again.")
        for outcome in saved["outcomes"]:
            bests.setdefault(outcome["method"], {}).setdefault(problem, []).append(outcome["best"])
            seeds.setdefault(problem, set()).add(outcome["seed"])
    problems = [p for p in PROBLEM_TITLES if p in seeds]
    means = {(m, p): statistics.mean(v) for m, per in bests.items() for p, v in per.items() if v}
    lines = [
        "| best real final loss at an equal number of steps (mean ± std over seeds) | "
        + " | ".join(f"{PROBLEM_TITLES[p]}, {len(seeds[p])} seeds" for p in problems)
        + " |",
        "| --- |" + " --- |" * len(problems),
    ]
    for method in [m for m in METHODS if m in bests]:
        cells = []
        for problem in problems:
            values = bests[method].get(problem, [])
            if not values:
                cells.append("-")
                continue
            best = min(means[m, problem] for m in bests if (m, problem) in means)
            text = f"{statistics.mean(values):.4g} ± {_std(values):.2g}"
            cells.append(f"**{text}**" if means[method, problem] == best else text)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "PredictiveOracle (exp) and (linear) are the paper's rule with its own schedule (their steps "
        "set the budget B of each seed); PredictiveOracle (default) is this plugin's default, "
        "`search_budget` = B. Bold: the lowest mean per problem. Paired per-seed comparisons and "
        "Wilcoxon tests are in bench/RESULTS.md.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
