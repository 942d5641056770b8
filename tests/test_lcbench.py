"""The LCBench benchmark: the replayed problem's arithmetic, the store's resume, tiny searches
of a peer and of the default, and the report on hand-made outcomes."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from search import lcbench, peers
from search.ledger import Outcome
from search.methods import DEFAULT, I_QUARTER, METHOD_VERSIONS, TPE_HYPERBAND
from search.smac_peer import SMAC_HYPERBAND, smac_available

from kt_predictive.budget import final_mean

needs_data = pytest.mark.skipif(
    not lcbench.available(),
    reason="the LCBench tables (shared/data/lcbench) are not beside the repository",
)
TASK = lcbench.TASKS[0]


@pytest.fixture(scope="module")
def problem():
    if not lcbench.available():
        pytest.skip("the LCBench tables (shared/data/lcbench) are not beside the repository")
    return lcbench.lcbench_problem(TASK)


def test_data_folder_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv(lcbench.DATA_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=lcbench.DATA_ENV):
        lcbench.data_folder()
    assert not lcbench.available()


@needs_data
def test_rows_and_configurations(problem):
    assert problem.sizes == (6, 5, 4, 5, 5, 5, 5)
    assert problem.curves.shape == (75_000, 52)
    # Row r is unravel_index(r, sizes), C order: the last hyperparameter varies fastest.
    assert problem.values(0) == {name: values[0] for name, values in problem.grid.items()}
    assert problem.values(1)["max_dropout"] == problem.grid["max_dropout"][1]
    assert problem.values(5)["max_units"] == problem.grid["max_units"][1]
    last = problem.values(74_999)
    assert last == {name: values[-1] for name, values in problem.grid.items()}
    for row in (0, 1, 5, 12_345, 74_999):
        assert problem.row(problem.values(row)) == row
    # 2 * (5*4*5*5*5*5) + 3 * (4*5*5*5*5) + 1 * (5*5*5*5) + 4 * 125 + 0 + 2 * 5 + 1
    values = {
        name: problem.grid[name][d]
        for name, d in zip(lcbench.GRID_ORDER, (2, 3, 1, 4, 0, 2, 1), strict=True)
    }
    assert problem.row(values) == 2 * 12_500 + 3 * 2_500 + 625 + 4 * 125 + 2 * 5 + 1
    with pytest.raises(KeyError, match="grid"):
        problem.row({**values, "batch_size": 17})


@needs_data
def test_steps_replay_the_table_and_regret_is_zero_at_the_optimum(problem):
    budget = problem.settings.budget
    assert (budget.full_steps, budget.early_steps, budget.window, budget.final_window) == (
        52,
        8,
        2,
        4,
    )
    best = problem.values(problem.best_row)
    run = problem.start(best, seed=3)
    run.train(8)
    assert run.losses == list(problem.curves[problem.best_row, :8])
    resumed = problem.resume(best, run.checkpoint(Path("unused")), seed=7)
    resumed.train(100)  # stops at full_steps
    assert len(resumed.losses) == 52
    final = final_mean(np.asarray(resumed.losses), budget)
    assert final == pytest.approx(np.mean(problem.curves[problem.best_row, -4:]))
    assert problem.regret(final) == pytest.approx(0.0, abs=1e-12)
    assert problem.best_known == pytest.approx(problem.finals.min())
    assert problem.true_final(best) == problem.best_known
    assert all(problem.regret(f) >= 0 for f in problem.finals[:1000])


def fake_outcome(problem, method: str, level: float, seed: int, regret: float) -> Outcome:
    steps = round(level * 52)
    return Outcome(
        method=method,
        level=level,
        seed=seed,
        best=problem.best_known + regret,
        steps=steps,
        budget=steps,
        finals=2,
        trace=[(steps // 2, problem.best_known + 2 * regret), (steps, problem.best_known + regret)],
        seconds=1.0,
        diagnostics={"version": METHOD_VERSIONS.get(method)},
    )


@needs_data
def test_store_appends_resumes_and_survives_a_cut_line(problem, tmp_path):
    store = peers.SearchStore(tmp_path, problem)
    assert store.outcomes() == []
    store.add(fake_outcome(problem, I_QUARTER, 3, 0, 0.5))
    with open(store.path, "a") as file:
        file.write('{"settings": "cut')  # a writer killed mid-line
    store.add(fake_outcome(problem, I_QUARTER, 3, 1, 0.25))
    assert store.path.read_text().count("\n") == 3
    assert sorted(store.latest()) == [(I_QUARTER, 3.0, 0), (I_QUARTER, 3.0, 1)]
    # A rerun runs only the searches not stored: seed 2.
    lines = []
    ran = peers.run_missing([problem], [3], [0, 1, 2], [I_QUARTER], tmp_path, log=lines.append)
    assert ran == 1 and "seed 2" in lines[0]
    assert peers.run_missing([problem], [3], [0, 1, 2], [I_QUARTER], tmp_path) == 0
    assert len(store.latest()) == 3
    other = lcbench.lcbench_problem(lcbench.TASKS[1])
    moved = tmp_path / f"{other.name}.jsonl"
    moved.write_text(store.path.read_text().splitlines()[0] + "\n")
    with pytest.raises(ValueError, match="move the file aside"):
        peers.SearchStore(tmp_path, other).outcomes()


@needs_data
@pytest.mark.parametrize("method", [TPE_HYPERBAND, SMAC_HYPERBAND, DEFAULT])
def test_a_tiny_search_stays_in_budget(problem, method):
    if method == SMAC_HYPERBAND and not smac_available():
        pytest.skip("SMAC3 is not installed (pip install 'smac>=2.4,<3')")
    level = 6 if method == DEFAULT else 3  # the default's smallest budget here is 6
    outcome = peers.run_search(problem, method, seed=0, level=level)
    assert outcome.steps <= outcome.budget == level * 52
    assert outcome.finals >= 1 and problem.regret(outcome.best) >= 0
    assert outcome.trace[-1][1] == outcome.best
    if method == DEFAULT:
        d = outcome.diagnostics
        assert d["configurations"] >= d["explored"] > 0
        assert d["version"] == METHOD_VERSIONS[DEFAULT]


@needs_data
def test_report_on_hand_made_outcomes(problem, tmp_path):
    from lcbench_report import readme_block, section

    store = peers.SearchStore(tmp_path, problem)
    for seed, (ours, theirs) in enumerate([(0.1, 0.2), (0.1, 0.3), (0.2, 0.1)]):
        store.add(fake_outcome(problem, DEFAULT, 10, seed, ours))
        store.add(fake_outcome(problem, TPE_HYPERBAND, 10, seed, theirs))
    store.add(fake_outcome(problem, TPE_HYPERBAND, 10, 1000, 0.0))  # held out: not shown
    text = section([problem], tmp_path, tmp_path / "figure.png")
    # Default: regrets 0.1, 0.1, 0.2: mean 0.133, sample std 0.0577, median 0.1.
    assert "0.133 ± 0.058 (0.1000)" in text
    assert "0.200 ± 0.100 (0.2000)" in text  # TPE: 0.2, 0.3, 0.1
    row = next(line for line in text.splitlines() if line.startswith("| 10 ") and "TPE" in line)
    assert "| 2/1/0 " in row
    assert (tmp_path / "figure.png").stat().st_size > 0
    assert not math.isnan(problem.best_known)
    # The README's block: the same comparison, one line per level (0.1333 vs TPE's 0.2).
    block = readme_block([problem], tmp_path)
    (line,) = [line for line in block.splitlines() if line.startswith("- N = 10 ")]
    assert "(3 searches), its mean regret is 0.1333" in line and "has 0.2000" in line
    assert "0 of 1 peers have a lower mean" in line
