"""Every search method, run on a Problem within a budget of optimizer steps.

A method's result is the best *real* final loss it found: the mean training loss over the
last ``final_window`` steps of a network trained for the full ``full_steps`` (predicted
losses never count). Every step a method trains counts, including the steps that finish the
configuration it picked when its search did not train it fully (Hyperband).
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import keras_tuner
import numpy as np
import optuna
from keras_tuner.engine import trial as trial_module
from keras_tuner.engine.base_tuner import BaseTuner

from kt_predictive import (
    AllocationRule,
    PredictiveOracle,
    PredictorSettings,
    Schedule,
    Screening,
    TrainingSteps,
)
from kt_predictive.budget import final_mean, window_mean
from kt_predictive.callbacks import StepBudgetCallback
from kt_predictive.checkpoint import training_state_path
from kt_predictive.records import PARENT_VALUE, RecordBook, configuration, training_steps
from kt_predictive.screening import resolve_reduction_factor

from .ledger import Outcome, StepLedger
from .problems import Problem, Run

TrialStatus = trial_module.TrialStatus
OBJECTIVE = keras_tuner.Objective("loss", direction="min")
HYPERBAND_FACTOR = 3

DEFAULT = "PredictiveOracle (default)"
PAPER = "PredictiveOracle (paper preset)"
#: The default without screening (``reduction_factor=None``): the default before screening,
#: kept as the ablation that shows what screening changes.
NO_SCREENING = "PredictiveOracle (default without screening)"
#: The default with phase 1 not screened (``initial_screen=False``): the default before the
#: screened phase 1 (its stored searches are that default's), the ablation that shows what
#: the screened phase 1 changes.
RANDOM_PHASE1 = "PredictiveOracle (default with a random phase 1)"
#: The default without uniform draws (``AllocationRule(uniform_share=0)``): the default
#: before round 12 (its stored searches are that default's, version 5), the ablation that
#: shows what drawing a third of exploration uniformly changes.
NO_UNIFORM = "PredictiveOracle (default without uniform draws)"
#: Variants of the default, shown beside it but never counted as its competitors. The two
#: older ones draw no configuration uniformly either, as the defaults they were.
ABLATIONS = (NO_UNIFORM, NO_SCREENING, RANDOM_PHASE1)
I_EARLY = "i-epoch, i = early_steps"
I_QUARTER = "i-epoch, i = early_steps/4"
TPE_MEDIAN = "Optuna TPE + MedianPruner"
TPE_HYPERBAND = "Optuna TPE + HyperbandPruner"
METHODS = (
    DEFAULT,
    NO_UNIFORM,
    RANDOM_PHASE1,
    NO_SCREENING,
    PAPER,
    "RandomSearch",
    "BayesianOptimization",
    "Hyperband",
    TPE_MEDIAN,
    TPE_HYPERBAND,
    I_EARLY,
    I_QUARTER,
)
PREDICTIVE = (DEFAULT, NO_UNIFORM, RANDOM_PHASE1, NO_SCREENING, PAPER)
#: What each method's stored outcomes were measured with: a stored outcome of another version
#: is measured again (the runner) and never reported (the report). Raise it when a method's
#: own behaviour changes; unlisted methods are version None.
METHOD_VERSIONS = {
    # 6: a third of exploration drawn uniformly (AllocationRule.uniform_share = 1/3).
    # 5: a screened phase 1 trains initial_trials networks even when fewer of its trials
    # reach early_steps (the best screened out at the last rung go on too).
    # 4: initial_screen="auto" (a screened phase 1 in every budget-sized search).
    # 3: reduction_factor="auto" (screening, eta 3, below 20 full trainings), the budget
    # enforced in steps and, with screening, ending exploration (2: max_iterations ended it
    # and left budget unused); version None trained every explored trial to early_steps.
    DEFAULT: 6,
    # The default's version 5, renamed: its searches are this method's.
    NO_UNIFORM: 5,
    # The default's version 3, renamed: its searches are this method's.
    RANDOM_PHASE1: 3,
}


def same_search(method: str, level: float) -> str | None:
    """The method whose search ``method`` runs identically at ``level``, if another does:
    at a budget where ``reduction_factor="auto"`` screens no explored trial, the default with
    a random phase 1 builds the same oracle, with the same arguments and seed, as the default
    without screening."""
    if method == RANDOM_PHASE1 and resolve_reduction_factor("auto", level) is None:
        return NO_SCREENING
    return None


def current(outcome: Outcome) -> bool:
    """Whether a stored outcome was measured with its method's current version."""
    return outcome.diagnostics.get("version") == METHOD_VERSIONS.get(outcome.method)


#: keras-tuner's BayesianOptimization fits its Gaussian process (20 optimizer restarts) and
#: maximises the acquisition from 50 starting points at every trial: measured 15-30 s per
#: trial on the AAE space on this shared 2-core machine, over 10 minutes per search at 30
#: full trainings. It runs at the smallest budget only; larger budgets leave it out.
BO_MAX_LEVEL = 10

# The paper's proportions: 100 phase-1 networks, 400 explored, 20 continued.
PAPER_INITIAL, PAPER_ITERATIONS, PAPER_TOP_K = 100, 400, 20


def methods_at(level: float, methods=METHODS) -> list[str]:
    """The methods run at a budget level (BayesianOptimization only up to BO_MAX_LEVEL)."""
    return [m for m in methods if m != "BayesianOptimization" or level <= BO_MAX_LEVEL]


# ------------------------------------------------------------------------ predictive


def paper_sizes(level: float, budget: TrainingSteps) -> tuple[int, int, int]:
    """The paper's 100 / 400 / 20 scaled to cost ``level`` full-training equivalents.

    Phase 1 and the continuations are scaled (rounded, at least 2 and 1), and exploration
    gets whatever the level leaves at the early budget (rounded down), as in the paper the
    most trials.
    """
    e = budget.early_steps / budget.full_steps
    scale = level / (PAPER_INITIAL + PAPER_ITERATIONS * e + PAPER_TOP_K * (1 - e))
    initial = max(2, round(PAPER_INITIAL * scale))
    top_k = max(1, round(PAPER_TOP_K * scale))
    iterations = math.floor((level - initial - top_k * (1 - e)) / e + 1e-9)
    return initial, max(iterations, top_k), top_k


def oracle_arguments(problem: Problem, seed: int) -> dict:
    """The PredictiveOracle arguments every benchmarked oracle of ``problem`` shares."""
    return dict(
        objective=OBJECTIVE.name,
        steps=problem.settings.budget,
        # The predictor report is not part of this benchmark.
        predictor=PredictorSettings(tuning_trials=problem.settings.tuning_trials, report_splits=0),
        hyperparameters=problem.space(),
        seed=seed,
    )


def make_predictive_oracle(problem: Problem, method: str, seed: int, level: float):
    """The default oracle sized by ``search_budget``, or the paper preset scaled to it."""
    b = problem.settings.budget
    common = oracle_arguments(problem, seed)
    if method == DEFAULT:
        return PredictiveOracle(search_budget=level, **common)
    no_uniform = AllocationRule(uniform_share=0.0)
    if method == NO_UNIFORM:
        return PredictiveOracle(search_budget=level, allocation=no_uniform, **common)
    if method == NO_SCREENING:
        return PredictiveOracle(
            search_budget=level,
            screening=Screening(reduction_factor=None, initial_screen=False),
            allocation=no_uniform,
            **common,
        )
    if method == RANDOM_PHASE1:
        return PredictiveOracle(
            search_budget=level,
            screening=Screening(initial_screen=False),
            allocation=no_uniform,
            **common,
        )
    initial, iterations, top_k = paper_sizes(level, b)
    tuning = common["predictor"].tuning_trials
    return PredictiveOracle.paper(
        reward="exp",
        **{
            **common,
            "schedule": Schedule(initial_trials=initial, max_iterations=iterations, top_k=top_k),
            "predictor": PredictorSettings.paper(seed, tuning_trials=tuning, report_splits=0),
        },
    )


class _ErrorsPropagate:
    """keras-tuner turns any exception in a trial into a failed trial; a benchmark must crash."""

    def _try_run_and_update_trial(self, trial, *fit_args, **fit_kwargs):
        self._run_and_update_trial(trial, *fit_args, **fit_kwargs)
        trial.status = TrialStatus.COMPLETED


class RunPredictiveTuner(_ErrorsPropagate, BaseTuner):
    """Runs a PredictiveOracle's trials on a Problem's runs, with PredictiveTuner's protocol.

    The same ``StepBudgetCallback`` logic as PredictiveTuner: the mean of every window up to
    ``early_steps`` is reported with ``oracle.update_trial(trial_id, metrics, step)``, the
    trial stops when the oracle answers STOPPED, the final mean is reported at ``full_steps``
    and inf at a divergence. A phase-4 continuation (a new trial whose
    ``values["tuner/trial_id"]`` names its parent) resumes from the parent's checkpoint at
    ``early_steps``. After every trial the oracle's step count and real results go to the
    ledger.
    """

    def __init__(
        self, oracle: PredictiveOracle, problem: Problem, seed: int, ledger: StepLedger, **kwargs
    ):
        self.problem, self.seed, self.ledger = problem, seed, ledger
        self.budget = oracle.steps
        self._checkpoints: dict[str, object] = {}
        self._counted: set[str] = set()
        super().__init__(oracle=oracle, **kwargs)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)  # the oracle settles the trial's record here
        self.ledger.spend(self.oracle.training_steps() - self.ledger.used)
        for record in self.oracle.records():
            if record.is_real and record.trial_id not in self._counted:
                self._counted.add(record.trial_id)
                self.ledger.real_final(record.real_final)

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
            metrics = {self.oracle.objective.name: value}
            status = self.oracle.update_trial(trial.trial_id, metrics, step=step).status
            return status == TrialStatus.STOPPED

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


def predictive_diagnostics(oracle: PredictiveOracle) -> dict:
    """Where the predictive method spent its steps, how its picks did, how it explored."""
    records = oracle.records()
    book = RecordBook.of(records)
    real = [r for r in records if r.is_real]
    best = min(real, key=lambda r: r.real_final) if real else None
    # Phase 4's continuations (a screened phase 1 continues its best networks too).
    finalized = [r for r in real if r.role == "continuation" and not book.in_phase1(r)]
    initial_finals = [r.real_final for r in book.phase1_networks()]
    return {
        "sizes": [oracle.initial_trials, oracle.max_iterations, oracle.top_k],
        "initial_screen": oracle.initial_screen,
        "phase1_steps": training_steps([r for r in records if book.in_phase1(r)]),
        "explored": sum(r.role == "explore" for r in records),
        "screened_out": sum(r.screened_out for r in records),
        "best_phase": ("initial" if book.in_phase1(best) else best.role) if best else None,
        "finalized_real": [r.real_final for r in finalized],
        "finalized_abs_error": [abs(r.real_final - r.predicted) for r in finalized],
        "initial_median": statistics.median(initial_finals) if initial_finals else None,
        "exploration_end": oracle.exploration_end,
        "hyperparameters": len(oracle.grids),
    }


# ------------------------------------------------------------------------ keras-tuner


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

    def __init__(self, oracle, problem: Problem, seed: int, ledger: StepLedger, chunk=None, **kw):
        self.problem, self.seed, self.ledger, self.chunk = problem, seed, ledger, chunk
        self.budget = problem.settings.budget
        self._checkpoints: dict[str, object] = {}
        self._trained: dict[str, int] = {}
        self._diverged: set[str] = set()
        self._worst = -math.inf
        self.finished_pick = False
        super().__init__(oracle=oracle, **kw)

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
            after = max(self._finish_cost(self._pick()), self.budget.full_steps - end)
            if (end - start) + after > self.ledger.left:
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
        values = {k: v for k, v in hp_values.items() if not k.startswith("tuner/")}
        start, end = self._span(trial)
        parent = hp_values.get("tuner/trial_id")
        if parent is None:
            run = self.problem.start(values, self.seed)
        else:
            run = self.problem.resume(values, self._checkpoints[parent], self.seed)
        if len(run.losses) != start and not run.diverged:
            raise RuntimeError(
                f"trial {trial.trial_id} should start at step {start}, its run is at "
                f"{len(run.losses)}"
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
            return worst if math.isfinite(worst) else float(np.finfo(np.float32).max)
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
    settings = problem.settings
    if method == "RandomSearch":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=None, **common)
    if method == "BayesianOptimization":
        return keras_tuner.oracles.BayesianOptimizationOracle(
            max_trials=None, num_initial_points=settings.bo_initial_points, **common
        )
    if method == "Hyperband":
        return keras_tuner.oracles.HyperbandOracle(
            max_epochs=settings.budget.full_steps // settings.hyperband_chunk,
            factor=HYPERBAND_FACTOR,
            hyperband_iterations=None,  # as many brackets as the budget allows
            **common,
        )
    raise ValueError(f"unknown keras-tuner method {method!r}")


# ------------------------------------------------------------------------ Optuna


def optuna_pruner(method: str, budget: TrainingSteps) -> optuna.pruners.BasePruner:
    """MedianPruner with its defaults, or HyperbandPruner over [window, full_steps] steps."""
    if method == TPE_MEDIAN:
        return optuna.pruners.MedianPruner()
    if method == TPE_HYPERBAND:
        return optuna.pruners.HyperbandPruner(
            min_resource=budget.window,
            max_resource=budget.full_steps,
            reduction_factor=HYPERBAND_FACTOR,
        )
    raise ValueError(f"unknown Optuna method {method!r}")


class OptunaPruning:
    """Reports each window's mean loss (at steps window, 2·window, ...) to an Optuna trial and
    says when to prune it. Passed as ``after_step`` to a run."""

    def __init__(self, trial: optuna.Trial, budget: TrainingSteps):
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


def run_optuna(
    problem: Problem, method: str, seed: int, ledger: StepLedger, study_name: str | None = None
) -> dict:
    """Optuna's TPE with a pruner until the budget is used; returns trial counts.

    A trial cut short by the end of the budget counts its steps and gives no result.
    ``study_name`` None lets Optuna draw one; HyperbandPruner assigns trials to brackets by
    hashing it, so only a fixed name makes its searches reproducible.
    """
    budget = problem.settings.budget
    space = problem.space()
    study = optuna.create_study(
        study_name=study_name,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna_pruner(method, budget),
    )
    pruned = 0
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
            pruned += 1
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif run.diverged:
            study.tell(trial, math.inf)
        elif len(run.losses) < budget.full_steps:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            value = final_mean(np.asarray(run.losses), budget)
            ledger.real_final(value)
            study.tell(trial, value)
    return {"trials": len(study.trials), "pruned": pruned}


# ------------------------------------------------------------------------ i-epoch


def space_values(problem: Problem) -> list[tuple[str, list]]:
    """Each hyperparameter's name and values, in the space's order."""
    return [(hp.name, list(hp.values)) for hp in problem.space().space]


def run_i_epoch(
    problem: Problem, seed: int, ledger: StepLedger, i: int, directory: str | Path
) -> dict:
    """The i-epoch baseline (Egele et al. 2023): screen, then finish the best by early loss.

    Half the budget screens ``n = min(space size, (B // 2) // i)`` distinct configurations,
    drawn uniformly, each trained for ``i`` steps (a diverged one stops where it diverged
    and is dropped). The early loss of a screened configuration is the mean of its last
    ``min(window, i)`` steps. Then the ``K = (B - steps used) // (full_steps - i)``
    configurations with the lowest early loss (at most as many as were screened) resume
    from step ``i`` to ``full_steps``, best first. Returns the counts.
    """
    budget = problem.settings.budget
    if not 0 < i < budget.full_steps:
        raise ValueError(f"i must be between 1 and full_steps - 1, got {i}")
    grid = space_values(problem)
    sizes = [len(values) for _, values in grid]
    size = math.prod(sizes)
    n = min(size, (ledger.limit // 2) // i)
    rng = np.random.default_rng(seed)
    flat = rng.choice(size, size=n, replace=False)
    screened = []
    for position, index in enumerate(flat):
        digits = np.unravel_index(int(index), sizes)
        values = {name: vals[int(d)] for (name, vals), d in zip(grid, digits, strict=True)}
        run = problem.start(values, seed)
        run.train(i)
        ledger.spend(len(run.losses))
        if run.diverged:
            continue
        early = window_mean(np.asarray(run.losses), i, min(budget.window, i))
        checkpoint = run.checkpoint(Path(directory) / f"screen-{position}.weights.h5")
        screened.append((early, position, values, checkpoint))
    screened.sort(key=lambda item: item[:2])
    k = min(len(screened), ledger.left // (budget.full_steps - i))
    for _, _, values, checkpoint in screened[:k]:
        run = problem.resume(values, checkpoint, seed)
        before = len(run.losses)
        run.train(budget.full_steps - before)
        ledger.spend(len(run.losses) - before)
        if not run.diverged:
            ledger.real_final(final_mean(np.asarray(run.losses), budget))
    return {"screened": int(n), "finished": int(k), "i": int(i)}


# ------------------------------------------------------------------------ one search


def run_method(
    problem: Problem,
    method: str,
    seed: int,
    level: float,
    inspect: Callable[[PredictiveOracle], dict] | None = None,
) -> Outcome:
    """One method's search on one seed with ``level`` full-training equivalents of steps.

    ``inspect(oracle)``, for the predictive methods, adds to the outcome's diagnostics what
    it returns about the finished search's oracle.
    """
    import keras

    keras.utils.set_random_seed(seed)
    limit = round(level * problem.settings.budget.full_steps)
    ledger = StepLedger(limit)
    started = time.perf_counter()
    extra: dict = {}
    with tempfile.TemporaryDirectory(prefix=f"search-{problem.name}-") as directory:
        if method in PREDICTIVE:
            oracle = make_predictive_oracle(problem, method, seed, level)
            tuner = RunPredictiveTuner(
                oracle, problem, seed, ledger, directory=directory, project_name="predictive"
            )
            tuner.search(verbose=0)
            extra = dict(
                fixed_iterations=oracle.fixed_iterations,
                fixed_values=oracle.fixed_values,
                diagnostics=predictive_diagnostics(oracle),
            )
            if inspect is not None:
                extra["diagnostics"].update(inspect(oracle))
        elif method in (TPE_MEDIAN, TPE_HYPERBAND):
            extra = dict(diagnostics=run_optuna(problem, method, seed, ledger))
        elif method in (I_EARLY, I_QUARTER):
            i = problem.settings.screen_steps[method == I_QUARTER]
            extra = dict(diagnostics=run_i_epoch(problem, seed, ledger, i, directory))
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
    extra.setdefault("diagnostics", {})["version"] = METHOD_VERSIONS.get(method)
    return Outcome(
        method,
        level,
        seed,
        ledger.best,
        ledger.used,
        limit,
        ledger.finals,
        ledger.trace,
        time.perf_counter() - started,
        **extra,
    )


def serializable(values: Mapping) -> dict:
    """JSON-safe copy of fixed values (numpy scalars become Python ones)."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in values.items()}
