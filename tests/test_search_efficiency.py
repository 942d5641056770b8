"""The budget accounting of every method adapter of bench/search_efficiency.py.

A fake two-hyperparameter problem with analytic learning curves stands in for real training;
it counts every step it serves, which every method's own count must equal.
"""

import math
import sys
import tempfile
from pathlib import Path

import keras_tuner
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import search_efficiency as se

from kt_predictive import StepBudget

# keras-tuner's BayesianOptimization fits a Gaussian process to a handful of trials here; its
# length-scale hitting a bound is expected at that size and says nothing about the adapters.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SETTINGS = se.Settings(
    budget=StepBudget(full_steps=40, early_steps=10, window=5, final_window=10),
    initial_trials=4,
    max_iterations=6,
    top_k=2,
    tuning_trials=1,
    hyperband_chunk=5,
    bo_initial_points=3,
    seeds=2,
)
LRS = (0.3, 0.1, 0.03, 0.01)
WIDTHS = (8, 16, 32, 64)


def space() -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.Choice("lr", list(LRS))
    hp.Choice("width", list(WIDTHS))
    return hp


def curve(values, seed) -> np.ndarray:
    """Decays to a floor that is lowest at lr 0.1, width 32; lr 0.3 with width 64 diverges."""
    steps = np.arange(1, SETTINGS.budget.full_steps + 1)
    lr, width = values["lr"], values["width"]
    floor = 0.1 + abs(math.log10(lr / 0.1)) + 0.05 * abs(math.log2(width / 32))
    noise = np.random.default_rng([seed, LRS.index(lr), WIDTHS.index(width)]).normal(
        0, 0.01, len(steps)
    )
    losses = floor + 2.0 * np.exp(-lr * steps) + noise
    if lr == 0.3 and width == 64:
        losses[25:] = np.inf
    return losses


class CountingRun(se.CurveRun):
    def __init__(self, problem, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.problem = problem

    def train(self, steps, after_step=None):
        before = len(self.losses)
        super().train(steps, after_step)
        self.problem.served += len(self.losses) - before


class CountingProblem(se.CurveProblem):
    """The fake problem, counting every training step it serves."""

    def __init__(self):
        super().__init__("fake", "Fake problem", SETTINGS, curve, space)
        self.served = 0

    def start(self, values, seed):
        return CountingRun(self, curve(values, seed))

    def resume(self, values, checkpoint, seed):
        return CountingRun(self, curve(values, seed), trained=checkpoint)


def check_trace(outcome):
    steps = [s for s, _ in outcome.trace]
    bests = [b for _, b in outcome.trace]
    assert steps == sorted(steps) and bests == sorted(bests, reverse=True)
    assert not steps or steps[-1] <= outcome.steps
    assert outcome.finals == len(outcome.trace)
    assert outcome.best == (bests[-1] if bests else math.inf)


@pytest.mark.parametrize("reward", ["exp", "linear"])
def test_predictive_counts_every_step_once(reward):
    problem = CountingProblem()
    method = next(m for m, r in se.PREDICTIVE.items() if r == reward)
    outcome = se.run_method(problem, method, seed=1, limit=None)
    b = SETTINGS.budget
    # Continuations resume at early_steps: no step is trained twice.
    assert outcome.steps == problem.served == outcome.budget
    assert (
        outcome.steps
        <= SETTINGS.initial_trials * b.full_steps
        + SETTINGS.max_iterations * b.early_steps
        + SETTINGS.top_k * (b.full_steps - b.early_steps)
    )
    assert outcome.diagnostics["phase1_steps"] <= SETTINGS.initial_trials * b.full_steps
    assert set(outcome.fixed_iterations) <= {"lr", "width"}
    check_trace(outcome)


@pytest.mark.parametrize("method", ["RandomSearch", "BayesianOptimization"])
def test_full_trial_methods_stop_when_the_next_trial_does_not_fit(method):
    problem = CountingProblem()
    limit = 7 * SETTINGS.budget.full_steps + 25
    outcome = se.run_method(problem, method, seed=2, limit=limit)
    assert outcome.steps == problem.served <= limit
    assert limit - outcome.steps < SETTINGS.budget.full_steps
    check_trace(outcome)


def test_hyperband_counts_resumed_chunks_and_stays_in_budget():
    problem = CountingProblem()
    limit = 1500
    outcome = se.run_method(problem, "Hyperband", seed=3, limit=limit)
    assert outcome.steps == problem.served <= limit
    assert outcome.finals >= 1
    check_trace(outcome)


def test_hyperband_finishes_a_pick_it_did_not_train_fully():
    problem = CountingProblem()
    b = SETTINGS.budget
    # max_epochs 8, factor 3: the first bracket's trials train ceil(8 / 3) = 3 chunks. Room for
    # two of them and for finishing the better one; a third would leave too little.
    first = 3 * SETTINGS.hyperband_chunk
    limit = 2 * first + (b.full_steps - first)
    outcome = se.run_method(problem, "Hyperband", seed=3, limit=limit)
    assert outcome.diagnostics["finished_pick"]
    assert outcome.steps == problem.served == limit
    assert outcome.finals == 1 and math.isfinite(outcome.best)


def test_diverged_trials_get_a_finite_worst_score():
    problem = CountingProblem()
    ledger = se.StepLedger(len(LRS) * len(WIDTHS) * SETTINGS.budget.full_steps)
    with tempfile.TemporaryDirectory() as directory:
        tuner = se.BudgetedTuner(
            se.keras_tuner_oracle("RandomSearch", problem, seed=4),
            problem,
            4,
            ledger,
            directory=directory,
            project_name="kt",
        )
        tuner.search()
        order = [tuner.oracle.trials[t] for t in tuner.oracle.end_order]
        (position,) = [
            i for i, t in enumerate(order) if t.hyperparameters.values == {"lr": 0.3, "width": 64}
        ]
        assert len(order) == 16
        # The worst score so far, or an untrained network's loss if that is worse.
        score = order[position].score
        assert math.isfinite(score)
        assert score >= max(
            [t.score for t in order[:position]] + [curve({"lr": 0.3, "width": 64}, 4)[0]]
        )
    # Every configuration once; the diverged one stopped after its first non-finite loss.
    assert ledger.used == problem.served == 15 * SETTINGS.budget.full_steps + 26


def test_optuna_uses_the_whole_budget_and_prunes():
    problem = CountingProblem()
    limit = 20 * SETTINGS.budget.full_steps + 7
    outcome = se.run_method(problem, "Optuna TPE + MedianPruner", seed=5, limit=limit)
    assert outcome.steps == problem.served == limit
    # Pruned trials stop early, so more trials ran than full trainings fit.
    assert outcome.diagnostics["trials"] > outcome.finals
    check_trace(outcome)


def test_steps_to_reach():
    trace = [(40, 1.0), (80, 0.5), (120, 0.4)]
    assert se.steps_to_reach(trace, 0.5) == 80
    assert se.steps_to_reach(trace, 0.3) is None


def test_benchmark_report(tmp_path):
    problem = CountingProblem()
    outcomes = se.benchmark(problem, seeds=[1, 2], log=lambda line: None)
    assert [o.method for o in outcomes] == list(se.METHODS) * 2
    for seed in (1, 2):
        runs = [o for o in outcomes if o.seed == seed]
        limit = runs[0].steps
        assert all(o.budget == limit and o.steps <= limit for o in runs[2:])
    markdown = se.problem_markdown(
        problem, outcomes, [1, 2], 1.0, "python bench/search_efficiency.py", image_dir=tmp_path
    )
    assert (tmp_path / "search_efficiency_fake.png").stat().st_size > 0
    for method in se.METHODS:
        assert f"| {method} |" in markdown
    assert "| lr |" in markdown and "| width |" in markdown


def test_benchmark_store_resumes(tmp_path):
    problem = CountingProblem()
    first = se.benchmark(
        problem, seeds=[1], methods=se.METHODS[:3], log=lambda line: None, store=tmp_path
    )
    served = problem.served
    assert served > 0 and (tmp_path / "fake-seed1.json").is_file()
    # A rerun with one more method reuses the saved outcomes and the B they set.
    again = se.benchmark(
        problem, seeds=[1], methods=se.METHODS[:4], log=lambda line: None, store=tmp_path
    )
    assert again[:3] == first
    assert again[3].budget == first[0].steps
    assert problem.served > served
    rerun = problem.served
    se.benchmark(problem, seeds=[1], methods=se.METHODS[:4], log=lambda line: None, store=tmp_path)
    assert problem.served == rerun

    other = CountingProblem()
    other.settings = se.Settings(**{**vars(SETTINGS), "top_k": 3})
    with pytest.raises(ValueError, match="other settings"):
        se.benchmark(other, seeds=[1], log=lambda line: None, store=tmp_path)
