"""The search benchmark (bench/search/): every method's budget accounting, the i-epoch
baseline, the replay of curve tables and the report's tables, by hand-checkable arithmetic.

A fake two-hyperparameter problem with analytic learning curves stands in for real training;
it counts every step it serves, which every method's own count must equal.
"""

import math
import sys
from pathlib import Path

import keras_tuner
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from search import methods, report, runner
from search.ledger import Outcome, StepLedger, steps_to_reach
from search.problems import CurveProblem, CurveRun, Settings, TableProblem, table_source
from search.tables import CurveTable

from kt_predictive import TrainingSteps

# keras-tuner's BayesianOptimization fits a Gaussian process to a handful of trials here; its
# length-scale hitting a bound is expected at that size and says nothing about the adapters.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SETTINGS = Settings(
    budget=TrainingSteps(full_steps=40, early_steps=10, window=5, final_window=10),
    tuning_trials=1,
    hyperband_chunk=5,
    bo_initial_points=3,
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


class CountingRun(CurveRun):
    def __init__(self, problem, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.problem = problem

    def train(self, steps, after_step=None):
        before = len(self.losses)
        super().train(steps, after_step)
        self.problem.served += len(self.losses) - before


class CountingProblem(CurveProblem):
    """The fake problem, counting every training step it serves."""

    def __init__(self):
        super().__init__("fake", "Fake problem", SETTINGS, curve, space, best_known=0.1)
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


# ---------------------------------------------------------------------- accounting


@pytest.mark.parametrize("method", methods.PREDICTIVE)
def test_predictive_counts_every_step_once_within_the_budget(method):
    problem = CountingProblem()
    outcome = methods.run_method(problem, method, seed=1, level=10)
    # Continuations resume at early_steps: no step is trained twice.
    assert outcome.steps == problem.served <= outcome.budget == 400
    initial, explored, top_k = outcome.diagnostics["sizes"]
    # A screened phase 1 trains its configurations to early_steps (10) at most and continues
    # initial_trials of them (30 more steps each); otherwise phase 1 trains fully (40).
    screen = outcome.diagnostics["initial_screen"]
    phase1 = screen * 10 + initial * 30 if screen else initial * 40
    # The default and its ablation without uniform draws screen phase 1; the older ones and
    # the paper preset do not.
    assert (screen > 0) == (method in (methods.DEFAULT, methods.NO_UNIFORM))
    assert outcome.diagnostics["phase1_steps"] <= phase1
    assert outcome.steps <= phase1 + explored * 10 + top_k * 30
    assert set(outcome.fixed_iterations) <= {"lr", "width"}
    check_trace(outcome)


def test_paper_sizes_scale_the_papers_proportions():
    # e = 60/300: the paper's schedule costs 100 + 400 * 0.2 + 20 * 0.8 = 196 full trainings.
    # Level 10: 100 * 10/196 = 5.1 -> 5, 20 * 10/196 = 1.02 -> 1, (10 - 5 - 0.8) / 0.2 = 21.
    budget = TrainingSteps(full_steps=300, early_steps=60, window=20, final_window=40)
    assert methods.paper_sizes(10, budget) == (5, 21, 1)
    # Level 98 = half the paper: 50, 10 and (98 - 50 - 8) / 0.2 = 200.
    assert methods.paper_sizes(98, budget) == (50, 200, 10)


@pytest.mark.parametrize("method", ["RandomSearch", "BayesianOptimization"])
def test_full_trial_methods_stop_when_the_next_trial_does_not_fit(method):
    problem = CountingProblem()
    outcome = methods.run_method(problem, method, seed=2, level=7.6)
    # 7.6 * 40 = 304 steps: a trial starts only while 40 steps are left (a diverged one
    # stops early and leaves its unused steps to the next).
    assert outcome.budget == 304
    assert outcome.steps == problem.served <= 304
    assert 304 - outcome.steps < 40
    check_trace(outcome)


def test_hyperband_counts_resumed_chunks_and_stays_in_budget():
    problem = CountingProblem()
    outcome = methods.run_method(problem, "Hyperband", seed=3, level=37.5)
    assert outcome.steps == problem.served <= 1500
    assert outcome.finals >= 1
    check_trace(outcome)


def test_hyperband_finishes_a_pick_it_did_not_train_fully():
    problem = CountingProblem()
    # max_epochs 8, factor 3: the first bracket's trials train ceil(8 / 3) = 3 chunks = 15
    # steps. Room for two of them and for finishing the better one (25 more steps): 55 steps.
    outcome = methods.run_method(problem, "Hyperband", seed=3, level=55 / 40)
    assert outcome.diagnostics["finished_pick"]
    assert outcome.steps == problem.served == 55
    assert outcome.finals == 1 and math.isfinite(outcome.best)


def test_diverged_trials_get_a_finite_worst_score(tmp_path):
    problem = CountingProblem()
    ledger = StepLedger(len(LRS) * len(WIDTHS) * SETTINGS.budget.full_steps)
    tuner = methods.BudgetedTuner(
        methods.keras_tuner_oracle("RandomSearch", problem, seed=4),
        problem,
        4,
        ledger,
        directory=str(tmp_path),
        project_name="kt",
    )
    tuner.search()
    order = [tuner.oracle.trials[t] for t in tuner.oracle.end_order]
    (position,) = [
        i for i, t in enumerate(order) if t.hyperparameters.values == {"lr": 0.3, "width": 64}
    ]
    assert len(order) == 16
    score = order[position].score
    assert math.isfinite(score)
    assert score >= max(
        [t.score for t in order[:position]] + [curve({"lr": 0.3, "width": 64}, 4)[0]]
    )
    # Every configuration once; the diverged one stopped after its first non-finite loss.
    assert ledger.used == problem.served == 15 * 40 + 26


@pytest.mark.parametrize("method", [methods.TPE_MEDIAN, methods.TPE_HYPERBAND])
def test_optuna_uses_the_whole_budget_and_prunes(method):
    problem = CountingProblem()
    outcome = methods.run_method(problem, method, seed=5, level=20.175)
    # 20.175 * 40 = 807 steps: every one is spent; the last trial is cut by the budget.
    assert outcome.budget == 807
    assert outcome.steps == problem.served == 807
    # Pruned trials stop early, so more trials ran than full trainings fit.
    assert outcome.diagnostics["pruned"] > 0
    assert outcome.diagnostics["trials"] > outcome.finals
    check_trace(outcome)


def test_hyperband_pruner_spans_window_to_full_steps():
    pruner = methods.optuna_pruner(methods.TPE_HYPERBAND, SETTINGS.budget)
    assert (pruner._min_resource, pruner._max_resource, pruner._reduction_factor) == (5, 40, 3)


# ---------------------------------------------------------------------- i-epoch


def early_loss(values, i):
    return float(np.mean(curve(values, 6)[i - min(5, i) : i]))


def final_loss(values):
    return float(np.mean(curve(values, 6)[-10:]))


def test_i_epoch_screens_half_the_budget_and_finishes_the_best(tmp_path):
    problem = CountingProblem()
    ledger = StepLedger(400)
    counts = methods.run_i_epoch(problem, 6, ledger, i=10, directory=tmp_path)
    # B = 400: (400 // 2) // 10 = 20 screens, capped at the 16 configurations: 160 steps
    # (lr 0.3 x width 64 diverges only at step 26). Left 240: 240 // (40 - 10) = 8 finished.
    assert counts == {"screened": 16, "finished": 8, "i": 10}
    configs = [{"lr": lr, "width": w} for lr in LRS for w in WIDTHS]
    top = sorted(configs, key=lambda v: early_loss(v, 10))[:8]
    # The diverging configuration screens well (its lr is the fastest) and is among the
    # eight: it stops at step 26, 16 steps into its continuation, and gives no final loss.
    assert {"lr": 0.3, "width": 64} in top
    assert ledger.used == problem.served == 16 * 10 + 7 * 30 + 16 == 386
    assert ledger.finals == 7
    assert ledger.best == pytest.approx(min(final_loss(v) for v in top))


def test_i_epoch_with_a_short_screen(tmp_path):
    problem = CountingProblem()
    ledger = StepLedger(400)
    counts = methods.run_i_epoch(problem, 6, ledger, i=2, directory=tmp_path)
    # 16 configurations screened for 2 steps: 32 steps; 368 // 38 = 9 finished, one of them
    # the diverging configuration (24 steps, to step 26).
    assert counts == {"screened": 16, "finished": 9, "i": 2}
    assert ledger.used == problem.served == 32 + 8 * 38 + 24 == 360


def test_i_epoch_screens_fewer_than_the_space_when_half_the_budget_is_less(tmp_path):
    problem = CountingProblem()
    ledger = StepLedger(120)
    counts = methods.run_i_epoch(problem, 7, ledger, i=10, directory=tmp_path)
    # (120 // 2) // 10 = 6 screened (60 steps); 60 // 30 = 2 finished (60 steps).
    assert counts == {"screened": 6, "finished": 2, "i": 10}
    assert ledger.used == problem.served == 120


def test_bayesian_optimization_runs_at_the_smallest_level_only():
    assert "BayesianOptimization" in methods.methods_at(10)
    assert methods.methods_at(30) == [m for m in methods.METHODS if m != "BayesianOptimization"]


def test_the_methods_i_values():
    assert SETTINGS.screen_steps == (10, 2)
    outcome = methods.run_method(CountingProblem(), methods.I_QUARTER, seed=1, level=10)
    assert outcome.diagnostics["i"] == 2


# ---------------------------------------------------------------------- replayed tables


def small_table() -> CurveTable:
    """A 2 x 2 grid, 4 steps per run; (a=1, b="x") has two runs, (a=2, b="y") diverges."""
    table = CurveTable({"a": [1, 2], "b": ["x", "y"]}, {"made": "by hand"}, full_steps=4)
    table.add((0, 0), 1, [4.0, 3.0, 2.0, 1.0], 1.0)
    table.add((0, 0), 2, [4.0, 3.0, 2.0, 1.5], 1.0)
    table.add((0, 1), 1, [5.0, 4.0, 3.0, 2.0], 1.0)
    table.add((1, 0), 1, [3.0, 2.0, 1.0, 0.5], 1.0)
    table.add((1, 1), 1, [3.0, math.inf], 1.0)
    return table


def test_table_curve_lookup():
    table = small_table()
    np.testing.assert_array_equal(table.curve({"a": 2, "b": "x"}, 7), [3.0, 2.0, 1.0, 0.5])
    diverged = table.curve({"a": 2, "b": "y"}, 7)
    assert diverged[0] == 3.0 and diverged[1] == math.inf and np.isnan(diverged[2:]).all()
    # Two runs: the seed picks one, always the same for the same seed, both over seeds.
    picks = {float(table.curve({"a": 1, "b": "x"}, seed)[-1]) for seed in range(1, 21)}
    assert picks == {1.0, 1.5}
    for seed in range(1, 6):
        first = table.curve({"a": 1, "b": "x"}, seed)
        np.testing.assert_array_equal(first, table.curve({"a": 1, "b": "x"}, seed))
    with pytest.raises(KeyError, match="not in the table's grid"):
        table.curve({"a": 3, "b": "x"}, 1)


def test_table_round_trip_and_final_means(tmp_path):
    table = small_table()
    table.save(tmp_path / "t.npz")
    loaded = CurveTable.load(tmp_path / "t.npz")
    assert loaded.space == table.space and loaded.meta == table.meta
    assert loaded.hp_index == table.hp_index and loaded.train_seed == [1, 2, 1, 1, 1]
    # Final means over the last 2 steps: 1.5, 1.75, 2.5, 0.75 and inf (diverged).
    np.testing.assert_array_equal(loaded.final_means(2), [1.5, 1.75, 2.5, 0.75, math.inf])
    assert loaded.best_final(2) == 0.75


def test_table_problem_replays_exact_curves():
    settings = Settings(
        TrainingSteps(4, 2, 1, 2), tuning_trials=1, hyperband_chunk=2, bo_initial_points=2
    )
    problem = TableProblem("small", "Small", settings, small_table())
    assert problem.best_known == 0.75
    assert [hp.name for hp in problem.space().space] == ["a", "b"]
    run = problem.start({"a": 2, "b": "x"}, seed=3)
    run.train(2)
    assert run.losses == [3.0, 2.0]
    resumed = problem.resume({"a": 2, "b": "x"}, run.checkpoint(None), seed=3)
    resumed.train(5)
    assert resumed.losses == [3.0, 2.0, 1.0, 0.5]
    stopped = problem.start({"a": 2, "b": "y"}, seed=3)
    stopped.train(4)
    assert stopped.losses == [3.0, math.inf] and stopped.diverged


def test_stored_outcomes_of_a_table_are_refused_after_another_seed_is_merged(tmp_path):
    settings = Settings(
        TrainingSteps(4, 2, 1, 2), tuning_trials=1, hyperband_chunk=2, bo_initial_points=2
    )
    table = small_table()
    problem = TableProblem("small", "Small", settings, table)
    assert problem.describe().endswith("; table of 5 runs, training seeds [1, 2]")
    stored = runner.SeedOutcomes(tmp_path / "small.json", problem, 10, 1)
    stored.add(outcome(methods.METHODS[0], 1, 0.75))
    assert runner.SeedOutcomes(tmp_path / "small.json", problem, 10, 1).get(methods.METHODS[0])
    table.add((1, 1), 3, [3.0, 2.0, 1.0, 0.4], 1.0)  # a third training seed: other curves
    merged = TableProblem("small", "Small", settings, table)
    with pytest.raises(ValueError, match="other settings"):
        runner.SeedOutcomes(tmp_path / "small.json", merged, 10, 1)


def test_table_problem_needs_the_whole_grid():
    table = CurveTable({"a": [1, 2]}, {}, full_steps=2)
    table.add((0,), 1, [1.0, 0.5], 1.0)
    settings = Settings(
        TrainingSteps(2, 1, 1, 1), tuning_trials=1, hyperband_chunk=1, bo_initial_points=2
    )
    with pytest.raises(ValueError, match="lacks 1 configurations"):
        TableProblem("t", "T", settings, table)


# ---------------------------------------------------------------------- report


def outcome(method, seed, best, level=10.0):
    return Outcome(method, level, seed, best, 380, 400, 3, [(200, best + 1), (380, best)], 2.0)


def test_paired_comparison_by_hand():
    ours = {1: 0.10, 2: 0.30, 3: 0.30, 4: 0.30}
    theirs = {1: 0.20, 2: 0.10, 3: 0.30, 4: 0.60}
    c = report.paired(ours, theirs)
    # Differences -0.1, +0.2, 0, -0.3: two wins, one loss, one tie; mean -0.05.
    assert (c["seeds"], c["wins"], c["losses"], c["ties"]) == (4, 2, 1, 1)
    assert c["mean_diff"] == pytest.approx(-0.05)
    # Their sample std: sqrt((0.05² + 0.25² + 0.05² + 0.25²)/3) = sqrt(0.13/3) = 0.2082, so a
    # test at 0.05 with 80% power needs ((1.960 + 0.842)·0.2082/0.05)² = 136.05 -> 137 seeds.
    assert c["sd_diff"] == pytest.approx(math.sqrt(0.13 / 3))
    assert c["seeds_needed"] == 137
    assert report.seeds_for_power(0.0, 0.1) is None
    # The zero dropped; |d| ranks 1, 2, 3, the positive one has rank 2: W+ = 2. Of the 8
    # equally likely sign patterns, W+ <= 2 in 3 ({}, {1}, {2}): p = 2 * 3/8 = 0.75.
    assert c["p"] == pytest.approx(0.75)
    # All three negative: W+ = 0, p = 2 * 1/8.
    assert report.paired({1: 0.1, 2: 0.1, 3: 0.1}, {1: 0.2, 2: 0.3, 3: 0.4})["p"] == 0.25
    # A seed where a method found nothing counts against it.
    assert report.paired({1: math.inf}, {1: 0.5})["losses"] == 1


def test_mean_std_and_table_rendering():
    assert report.mean_std([0.1, 0.3]) == "0.2 ± 0.14"
    assert report.mean_std([0.1, 0.3, math.inf]) == "0.2 ± 0.14 (1 seeds found none)"
    outcomes = [
        *(outcome(methods.DEFAULT, s, b) for s, b in [(1, 0.1), (2, 0.3), (3, 0.2)]),
        *(outcome("RandomSearch", s, b) for s, b in [(1, 0.2), (2, 0.4), (3, 0.1)]),
    ]
    frame = report.level_table(outcomes, best_known=0.1)
    text = report.markdown(frame)
    lines = text.splitlines()
    assert lines[0].startswith("| method") and set(lines[1]) <= set("|-: ")
    default = next(line for line in lines if "PredictiveOracle (default)" in line)
    rival = next(line for line in lines if "RandomSearch" in line)
    # Default 0.1, 0.3, 0.2: mean 0.2, std 0.1; RandomSearch mean 0.2333, std 0.153.
    assert "0.2 ± 0.1 " in default and "| 1 " in default
    assert "0.2333 ± 0.15" in rival and "| 2 " in rival
    # Default - RandomSearch per seed: -0.1, -0.1, +0.1: 2 wins, 1 loss, mean -0.0333.
    assert "2/1/0" in rival and "-0.0333" in rival
    # Steps to within 5% of 0.1 (0.105): only seeds reaching 0.1 or less, at 380 steps.
    assert "380 (1/3)" in default and "380 (1/3)" in rival
    row = report.summary_rows(outcomes, "fake", 10)
    assert row["best other method"] == "RandomSearch"
    assert row["default's rank"] == "1 of 2" and row["default W/L/T vs it"] == "2/1/0"
    assert row["default (median)"] == "0.2" and row["its median"] == "0.2"
    assert row["default vs it"] == "-14.3%"  # (0.2 - 0.2333) / 0.2333
    assert report.losses_text(outcomes, "fake", 10) == []


def test_holm_adjustment_by_hand():
    # Three tested p-values, sorted 0.01, 0.03, 0.04: 3·0.01 = 0.03, 2·0.03 = 0.06, then
    # 1·0.04 = 0.04 is raised to the running maximum 0.06; NaN (no test) is not counted.
    assert report.holm([0.01, 0.04, math.nan, 0.03])[:2] == [0.03, 0.06]
    assert math.isnan(report.holm([0.01, 0.04, math.nan, 0.03])[2])
    assert report.holm([0.5, 0.9]) == [1.0, 1.0]  # capped at 1
    assert report.holm([]) == []


def test_confirmation_rows_pair_the_seeds_every_method_has():
    outcomes = [
        *(outcome(methods.DEFAULT, s, b) for s, b in [(1, 0.1), (2, 0.3), (3, 0.2), (4, 0.9)]),
        *(outcome("RandomSearch", s, b) for s, b in [(1, 0.2), (2, 0.4), (3, 0.1)]),
        *(outcome("Hyperband", s, b) for s, b in [(1, 0.1), (2, 0.3), (3, 0.2), (4, 0.1)]),
    ]
    rows = report.confirmation_rows(outcomes, "fake", 10, ["RandomSearch", "Hyperband"])
    # Seed 4 lacks RandomSearch, so every row pairs seeds 1-3 only.
    assert [r["seeds"] for r in rows] == ["3", "3"]
    random_row, hyperband_row = rows
    # Default 0.2 mean vs RandomSearch 0.2333: -14.3%, W/L/T 2/1/0, the default lower.
    assert random_row["default vs it"] == "-14.3%" and random_row["default W/L/T"] == "2/1/0"
    assert random_row["lower"] == "default"
    # The same losses as the default on seeds 1-3: all tied, no test.
    assert hyperband_row["default W/L/T"] == "0/0/3" and hyperband_row["lower"] == "tie"
    assert math.isnan(hyperband_row["p (Wilcoxon)"])


def test_tied_methods_share_a_rank():
    outcomes = [outcome(m, 1, b) for m, b in [(methods.DEFAULT, 0.2), ("A", 0.1), ("B", 0.2)]]
    assert [report.rank(outcomes, m) for m in (methods.DEFAULT, "A", "B")] == [2, 1, 2]


def test_losses_are_reported():
    outcomes = [
        *(outcome(methods.DEFAULT, s, 0.3) for s in (1, 2, 3)),
        *(outcome("Hyperband", s, 0.2) for s in (1, 2, 3)),
    ]
    (line,) = report.losses_text(outcomes, "fake", 30)
    assert line.startswith("fake, 30 full trainings: Hyperband has the lower mean, 0.2 vs 0.3")
    assert "50.0% worse" in line and "wins 0 and loses 3 of 3 seeds" in line


def test_real_check_compares_the_methods_finished_on_the_same_seeds():
    real = [
        outcome(methods.DEFAULT, 1, 0.1),
        outcome("RandomSearch", 1, 0.3),
        outcome("Hyperband", 1, 0.2),
        outcome("RandomSearch", 2, 0.3),  # seed 2: the default did not finish, left out
    ]
    replay = [
        outcome(m, s, b)
        for s in (1, 2)
        for m, b in [(methods.DEFAULT, 0.15), ("RandomSearch", 0.25), ("Hyperband", 0.35)]
    ]
    frame, rho, seeds = report.real_check(real, replay)
    assert seeds == [1]
    assert list(frame["method"]) == [methods.DEFAULT, "RandomSearch", "Hyperband"]
    assert list(frame["rank (real)"]) == ["1", "3", "2"]
    assert list(frame["rank (replay)"]) == ["1", "2", "3"]
    # Rank differences 0, 1, -1: Spearman 1 - 6 * 2 / (3 * (9 - 1)) = 0.5.
    assert rho == pytest.approx(0.5)


# ---------------------------------------------------------------------- runner and figures


def test_run_seed_stores_and_resumes(tmp_path):
    problem = CountingProblem()
    first = runner.run_seed(problem, 10, 1, methods.METHODS[:3], tmp_path, log=lambda _: None)
    served = problem.served
    assert served > 0 and (tmp_path / "fake-b10-seed1.json").is_file()
    again = runner.run_seed(problem, 10, 1, methods.METHODS[:4], tmp_path, log=lambda _: None)
    assert again[:3] == first and problem.served > served
    rerun = problem.served
    runner.run_seed(problem, 10, 1, methods.METHODS[:4], tmp_path, log=lambda _: None)
    assert problem.served == rerun
    loaded = runner.load_outcomes(tmp_path, "fake", [10], [1, 2])
    assert [o.method for o in loaded] == list(methods.METHODS[:4])
    other = CountingProblem()
    other.settings = Settings(**{**vars(SETTINGS), "tuning_trials": 2})
    with pytest.raises(ValueError, match="other settings"):
        runner.run_seed(other, 10, 1, methods.METHODS[:1], tmp_path, log=lambda _: None)


def test_plot_writes_a_figure(tmp_path):
    outcomes = [outcome(m, s, 0.1 * s) for m in methods.METHODS[:3] for s in (1, 2)]
    report.plot("Fake", {10.0: outcomes, 30.0: outcomes}, 0.1, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0


def test_steps_to_reach():
    trace = [(40, 1.0), (80, 0.5), (120, 0.4)]
    assert steps_to_reach(trace, 0.5) == 80
    assert steps_to_reach(trace, 0.3) is None


def test_the_real_mlp_resumes_its_training_where_the_checkpoint_left_it():
    # The replay-vs-real check trains scikit-learn's MLP for real; a resumed run (Hyperband,
    # i-epoch, continuations) must continue the same optimisation, not restart it.
    from search.problems import MLPRealProblem

    problem = MLPRealProblem()
    values = {
        "hidden": "32",
        "activation": "relu",
        "solver": "adam",
        "learning_rate_init": 0.001,
        "alpha": 1e-05,
        "batch_size": 64,
    }
    straight = problem.start(values, seed=1)
    straight.train(6)
    first = problem.start(values, seed=1)
    seen = []
    first.train(10, after_step=lambda loss: seen.append(loss) or len(seen) == 4)
    assert len(first.losses) == 4  # stopped by after_step
    resumed = problem.resume(values, first.checkpoint(None), seed=1)
    first.train(3)  # training the original on does not change the checkpoint
    resumed.train(2)
    assert resumed.losses == pytest.approx(straight.losses)
    assert all(math.isfinite(v) for v in resumed.losses) and resumed.losses[-1] < resumed.losses[0]


def test_mlp_seed_noise_ranks_configurations_and_methods_by_hand():
    import mlp_seed_noise as noise

    losses = {(0,): 0.3, (1,): 0.1, (2,): 0.2}
    assert [noise.rank_of(c, losses) for c in [(0,), (1,), (2,)]] == [3, 1, 2]
    assert noise.ranks({"a": 0.2, "b": 0.1, "c": 0.2}) == {"a": 2, "b": 1, "c": 2}
    # Spearman of (1, 2, 3) against (1, 3, 2): 1 - 6 * (0 + 1 + 1) / (3 * 8) = 0.5.
    assert noise.rho({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 3, "c": 2}) == pytest.approx(0.5)
    outcomes = [
        Outcome("a", 10, 1, 0.5, 0, 0, 0, [], 0.0),
        Outcome("a", 10, 2, 0.7, 0, 0, 0, [], 0.0),
        Outcome("b", 10, 1, 0.4, 0, 0, 0, [], 0.0),  # no seed 2: left out
    ]
    assert noise.method_means(outcomes, ["a", "b"], [1, 2]) == {"a": [0.5, 0.7]}


def test_mlp_seed_noise_compares_two_seeds_finals_by_hand():
    import mlp_seed_noise as noise

    first = {(i,): 0.1 * (i + 1) for i in range(25)}  # 0.1 .. 2.5: (0,) is the best
    second = dict(first)
    second[(0,)], second[(1,)] = 0.2, 0.1  # the two best swap
    lines = noise.noise_lines(first, second)
    assert "ranks 2 of 25 under seed 2 (0.2)" in lines[2]
    assert "seed 2's best (0.1) ranks 2 under seed 1 (0.2)" in lines[2]
    # Among seed 1's best 20 only the first two differ, each by 100% or 50%: 7.5% on average.
    assert "differ by 7.5% on average" in lines[1]
    assert "best and 20th best differ by 1900.0%" in lines[1]


def test_mlp_seed_noise_replays_both_seeds_runs_of_every_configuration():
    import mlp_seed_noise as noise

    first, second = CurveTable.load(noise.MLP_TABLE), CurveTable.load(noise.SEED2_TABLE)
    both = noise.both_seeds()
    assert len(both) == len(first) + len(second) and sorted(set(both.train_seed)) == [1, 2]
    values = first.values(first.hp_index[0])
    runs = [first.curves[first.runs_of(values)[0]], second.curves[second.runs_of(values)[0]]]
    drawn = [both.curve(values, seed) for seed in range(1, 21)]
    # Every draw is one of the two measured runs, and search seeds draw both.
    assert all(any(np.array_equal(d, r, equal_nan=True) for r in runs) for d in drawn)
    assert {np.array_equal(d, runs[0], equal_nan=True) for d in drawn} == {True, False}


def test_a_surrogate_problem_describes_what_it_replays():
    settings = Settings(
        TrainingSteps(4, 2, 1, 2), tuning_trials=1, hyperband_chunk=2, bo_initial_points=2
    )
    space = TableProblem("small", "Small", settings, small_table()).space
    flat = CurveProblem("flat", "Flat", settings, lambda values, seed: np.ones(4), space)
    assert flat.describe() == settings.describe()
    table = small_table()
    source = table_source(table, "surrogate (version 3) of a table")
    assert source == "surrogate (version 3) of a table of 5 runs, training seeds [1, 2]"
    modelled = CurveProblem(
        "modelled", "Modelled", settings, lambda values, seed: np.ones(4), space, source=source
    )
    assert modelled.describe() == f"{settings.describe()}; {source}"


def test_a_store_of_searches_refuses_searches_of_changed_curves(tmp_path):
    settings = Settings(
        TrainingSteps(4, 2, 1, 2), tuning_trials=1, hyperband_chunk=2, bo_initial_points=2
    )
    table = small_table()
    stored = {"round 3 | small | 10 | a candidate | seed 101": 0.75}
    runner.check_measured_on(
        tmp_path / "store.json", stored, {"small": TableProblem("s", "S", settings, table)}
    )
    assert stored[runner.MEASURED_ON] == {
        "small": f"{settings.describe()}; table of 5 runs, training seeds [1, 2]"
    }
    runner.check_measured_on(
        tmp_path / "store.json", stored, {"small": TableProblem("s", "S", settings, table)}
    )
    table.add((1, 1), 3, [3.0, 2.0, 1.0, 0.4], 1.0)  # a third training seed: other curves
    with pytest.raises(ValueError, match="move the file aside") as refused:
        runner.check_measured_on(
            tmp_path / "store.json", stored, {"small": TableProblem("s", "S", settings, table)}
        )
    assert "training seeds [1, 2, 3]" in str(refused.value)
    assert stored["round 3 | small | 10 | a candidate | seed 101"] == 0.75  # nothing lost


def test_summary_blocks_are_written_into_the_benchmarks_page_not_the_readme(tmp_path):
    # search_efficiency.py rewrites its two generated blocks in bench/README.md; the page
    # holds each block's markers once, in order, and the top-level README holds neither.
    import search_efficiency
    from results import write_section

    bench = Path(search_efficiency.__file__).resolve().parent
    assert bench / "README.md" == search_efficiency.README_PATH
    page = search_efficiency.README_PATH.read_text()
    readme = (bench.parent / "README.md").read_text()
    for block in (search_efficiency.README_BLOCK, search_efficiency.CONFIRM_README_BLOCK):
        start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
        assert page.count(start) == page.count(end) == 1 and page.index(start) < page.index(end)
        assert start not in readme
        # The writer replaces only that block of a copy of the page.
        copy = tmp_path / "README.md"
        copy.write_text(page)
        write_section(block, "new summary", path=copy)
        text = copy.read_text()
        assert f"{start}\nnew summary\n{end}" in text
        assert text.replace(f"{start}\nnew summary\n{end}", "") == page.replace(
            page[page.index(start) : page.index(end) + len(end)], ""
        )
