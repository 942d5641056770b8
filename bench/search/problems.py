"""The problems: a search space and a way to train its configurations step by step.

- ``digits``: the digits CNN's curves collected with real Keras training
  (bench/collect_digits_curves.py), replayed;
- ``mlp``: scikit-learn MLPClassifier curves (bench/collect_mlp_curves.py), replayed;
- ``aae``: the AAE space through ``bench/aae_surrogate.py`` (measured AAE curves, and a model
  of them for the configurations that were not measured);
- ``digits-real``: the digits CNN on the same grid, trained for real with Keras at every
  query (the replay-vs-real check).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras_tuner
import numpy as np

from kt_predictive import TrainingSteps
from kt_predictive.callbacks import StepLossRecorder
from kt_predictive.checkpoint import load_training_state, save_training_state

from .spaces import (
    DIGITS_FULL_STEPS,
    DIGITS_GRID,
    DIGITS_TABLE,
    MLP_EPOCHS,
    MLP_GRID,
    MLP_TABLE,
)
from .tables import CurveTable

#: Budgets of every problem, in full-training equivalents (networks trained to full_steps).
LEVELS = (10, 30, 100)


@dataclass(frozen=True)
class Settings:
    """The step budget of one problem and the methods' problem-specific settings.

    Attributes:
        budget: full, early, window and final-window steps (all methods).
        tuning_trials: Optuna trials per model when a PredictiveOracle tunes its predictor.
        hyperband_chunk: steps of one keras-tuner "epoch" for Hyperband; ``max_epochs`` is
            ``full_steps / hyperband_chunk``.
        bo_initial_points: random trials before BayesianOptimization fits its Gaussian
            process (keras-tuner's default, 3 per hyperparameter, would leave the GP few or
            no trials at the smallest budget).
    """

    budget: TrainingSteps
    tuning_trials: int
    hyperband_chunk: int
    bo_initial_points: int

    def __post_init__(self) -> None:
        if self.budget.full_steps % self.hyperband_chunk:
            raise ValueError(
                f"hyperband_chunk ({self.hyperband_chunk}) must divide full_steps "
                f"({self.budget.full_steps}) so Hyperband's last round trains fully"
            )

    @property
    def screen_steps(self) -> tuple[int, int]:
        """The two i of the i-epoch baseline: the early budget and a quarter of it."""
        return self.budget.early_steps, max(1, self.budget.early_steps // 4)

    def describe(self) -> str:
        b = self.budget
        return (
            f"full_steps {b.full_steps}, early_steps {b.early_steps}, window {b.window}, "
            f"final_window {b.final_window}; predictor tuned with {self.tuning_trials} Optuna "
            f"trials per model; Hyperband factor 3, one epoch = {self.hyperband_chunk} steps "
            f"(max_epochs {b.full_steps // self.hyperband_chunk}); BayesianOptimization "
            f"num_initial_points {self.bo_initial_points}; i-epoch i = "
            f"{' and '.join(map(str, self.screen_steps))}"
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
        settings: budgets and method settings.
        best_known: the best known final loss, or None to use the best one measured here.
        best_known_note: what ``best_known`` is, for the report.
    """

    name: str
    title: str
    settings: Settings
    best_known: float | None = None
    best_known_note: str = ""

    def describe(self) -> str:
        """What a stored outcome was measured with: outcomes of another description are not
        comparable (``runner.SeedOutcomes`` refuses them)."""
        return self.settings.describe()

    def space(self) -> keras_tuner.HyperParameters:
        """The search space (every hyperparameter a ``Choice``)."""
        raise NotImplementedError

    def start(self, values: Mapping, seed: int) -> Run:
        """A fresh training of configuration ``values``."""
        raise NotImplementedError

    def resume(self, values: Mapping, checkpoint: object, seed: int) -> Run:
        """The training of ``values`` continued from a ``Run.checkpoint``."""
        raise NotImplementedError


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
        source: str = "",
    ):
        self.name, self.title, self.settings = name, title, settings
        self._curve, self._space = curve, space
        self.best_known, self.best_known_note = best_known, best_known_note
        self.source = source

    def describe(self) -> str:
        """The settings and, where the curves come from measured runs, those runs: adding
        runs (another training seed, more configurations) changes the replayed curves, so
        outcomes measured before are not reused."""
        settings = super().describe()
        return f"{settings}; {self.source}" if self.source else settings

    def space(self):
        return self._space()

    def start(self, values, seed):
        return CurveRun(self._curve(dict(values), seed))

    def resume(self, values, checkpoint, seed):
        return CurveRun(self._curve(dict(values), seed), trained=int(checkpoint))


def grid_space(grid: Mapping[str, Sequence]) -> keras_tuner.HyperParameters:
    """A keras-tuner space with one ``Choice`` per entry of ``grid``, in its order."""
    hp = keras_tuner.HyperParameters()
    for name, values in grid.items():
        hp.Choice(name, list(values))
    return hp


class TableProblem(CurveProblem):
    """Replays the measured curves of a :class:`CurveTable`: every configuration of the space
    has at least one real run; the seed picks among several (``CurveTable.curve``)."""

    def __init__(self, name: str, title: str, settings: Settings, table: CurveTable):
        if table.full_steps != settings.budget.full_steps:
            raise ValueError(
                f"the table's curves have {table.full_steps} steps, the problem's budget "
                f"{settings.budget.full_steps}"
            )
        missing = len(table.grid()) - len(set(table.hp_index))
        if missing:
            raise ValueError(f"the table lacks {missing} configurations of its grid")
        finals = table.final_means(settings.budget.final_window)
        note = (
            f"the lowest final loss over the whole table ({len(set(table.hp_index))} "
            f"configurations, the exhaustive grid; {len(table)} runs, "
            f"{int(np.sum(~np.isfinite(finals)))} diverged)"
        )
        super().__init__(
            name,
            title,
            settings,
            table.curve,
            lambda: grid_space(table.space),
            best_known=table.best_final(settings.budget.final_window),
            best_known_note=note,
            source=table_source(table),
        )
        self.table = table


def table_source(table: CurveTable, model: str = "table") -> str:
    """What a problem replays, for ``Problem.describe``: its table's runs and training seeds."""
    return (
        f"{model} of {len(table)} runs, training seeds {sorted({int(s) for s in table.train_seed})}"
    )


DIGITS_SETTINGS = Settings(
    budget=TrainingSteps(full_steps=DIGITS_FULL_STEPS, early_steps=60, window=20, final_window=40),
    tuning_trials=10,
    hyperband_chunk=20,
    bo_initial_points=5,
)
MLP_SETTINGS = Settings(
    budget=TrainingSteps(full_steps=MLP_EPOCHS, early_steps=12, window=3, final_window=6),
    tuning_trials=10,
    hyperband_chunk=3,
    bo_initial_points=6,
)
AAE_SETTINGS = Settings(
    budget=TrainingSteps(full_steps=400, early_steps=60, window=10, final_window=40),
    tuning_trials=10,
    hyperband_chunk=10,
    bo_initial_points=10,
)


def digits_problem(path: Path = DIGITS_TABLE) -> TableProblem:
    return TableProblem(
        "digits",
        "Digits CNN (replayed real Keras curves, 192 configurations)",
        DIGITS_SETTINGS,
        CurveTable.load(path),
    )


def mlp_problem(path: Path = MLP_TABLE) -> TableProblem:
    return TableProblem(
        "mlp",
        "MLPClassifier (replayed real scikit-learn curves, 192 configurations)",
        MLP_SETTINGS,
        CurveTable.load(path),
    )


def aae_problem() -> CurveProblem:
    """The AAE space on the surrogate of measured AAE curves (``bench/aae_surrogate.py``)."""
    from aae_surrogate import AAESurrogate

    surrogate = AAESurrogate.load()
    budget = AAE_SETTINGS.budget
    if surrogate.full_steps != budget.full_steps:
        raise ValueError(
            f"the surrogate's curves have {surrogate.full_steps} steps, the benchmark expects "
            f"{budget.full_steps}"
        )
    table = surrogate.table
    finals = table.final_means(budget.final_window)
    note = (
        f"the lowest final loss (mean of the last {budget.final_window} steps) over all "
        f"{len(finals)} measured runs of the surrogate's table "
        f"({len(np.unique(table.config_id))} configurations, "
        f"{int((~np.isfinite(finals)).sum())} runs diverged), not over the whole space of 82,944"
    )
    return CurveProblem(
        "aae",
        "AAE search space (surrogate of measured AAE curves)",
        AAE_SETTINGS,
        surrogate.curve,
        surrogate.space,
        best_known=float(np.min(finals)),
        best_known_note=note,
        source=table_source(table, f"surrogate (version {AAESurrogate.VERSION}) of a table"),
    )


# ---------------------------------------------------------------------- real Keras training


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

    def __init__(self, model, fit: Callable[..., object], losses: Sequence[float] = ()):
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


class DigitsRealProblem(Problem):
    """The digits CNN on the replayed problem's grid, trained for real with Keras."""

    name = "digits-real"
    title = "Digits CNN (real Keras training, the replay's grid)"
    best_known_note = "the replayed table's best final loss"
    settings = DIGITS_SETTINGS

    def __init__(self):
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
        from digits_cnn import DigitsCNN, load_data

        self.hypermodel = DigitsCNN()
        self.x, _, self.y, _ = load_data()
        if DIGITS_TABLE.is_file():
            self.best_known = CurveTable.load(DIGITS_TABLE).best_final(
                self.settings.budget.final_window
            )

    def space(self):
        return grid_space(DIGITS_GRID)

    def _run(self, values: Mapping, losses: Sequence[float] = ()) -> KerasRun:
        import keras

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


# ---------------------------------------------------------------------- real scikit-learn training


class MLPRun(Run):
    """An MLPClassifier in training, one epoch per step (``search.mlp``)."""

    def __init__(self, model, losses: Sequence[float] = ()):
        self.model = model
        self.losses = [float(v) for v in losses]

    def train(self, steps, after_step=None):
        from .mlp import train_epoch

        for _ in range(steps):
            if self.diverged:
                return
            self.losses.append(train_epoch(self.model))
            if not math.isfinite(self.losses[-1]) or (after_step and after_step(self.losses[-1])):
                return

    def checkpoint(self, path):
        del path  # the whole training state (weights and optimizer) is one Python object
        return copy.deepcopy(self.model), list(self.losses)


#: The MLP check trains with seed 100 + the search's seed: never the table's training seed.
MLP_REAL_SEED_OFFSET = 100


class MLPRealProblem(Problem):
    """The MLP on the replayed problem's grid, trained for real with scikit-learn."""

    name = "mlp-real"
    title = "MLPClassifier (real scikit-learn training, the replay's grid)"
    best_known_note = "the replayed table's best final loss"
    settings = MLP_SETTINGS

    def __init__(self):
        if MLP_TABLE.is_file():
            self.best_known = CurveTable.load(MLP_TABLE).best_final(
                self.settings.budget.final_window
            )

    def space(self):
        return grid_space(MLP_GRID)

    def start(self, values, seed):
        from .mlp import make_model

        # Training seeds other than the table's (1): real training noise, where the replay
        # has one run per configuration.
        return MLPRun(make_model(values, MLP_REAL_SEED_OFFSET + seed))

    def resume(self, values, checkpoint, seed):
        model, losses = checkpoint
        return MLPRun(copy.deepcopy(model), losses)


PROBLEMS: dict[str, Callable[[], Problem]] = {
    "digits": digits_problem,
    "mlp": mlp_problem,
    "aae": aae_problem,
    "digits-real": DigitsRealProblem,
    "mlp-real": MLPRealProblem,
}
