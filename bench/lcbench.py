"""The LCBench benchmark: every method on the six LCBench development tasks, then the report.

    python bench/lcbench.py --levels 10 30 100 300 --seeds 0-9

runs the (task, method, level, seed) searches not stored yet in
bench/data/lcbench_searches/<problem>.jsonl (appended as each ends, so a stopped run resumes),
then writes the LCBench section of bench/RESULTS.md and its figure from everything stored.
``--report-only`` writes the section without running anything; ``--oracle-time`` measures
the default oracle's own time per trial at N = 300 (one search) and stores it with the rest.
The development seeds of the report are 0..9; seeds from 1000 are held out for tuning.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import write_section
from search.lcbench import TASKS, lcbench_problem
from search.peers import (
    LCBENCH_METHODS,
    ORACLE_TIME_FILE,
    STORE,
    label,
    methods_available,
    run_missing,
)

LEVELS = (10, 30, 100, 300)
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
README = Path(__file__).resolve().parents[1] / "README.md"


def seeds_of(texts: list[str]) -> list[int]:
    """Seeds from ``0-9``-style ranges and single numbers."""
    seeds: list[int] = []
    for text in texts:
        first, _, last = text.partition("-")
        seeds.extend(range(int(first), int(last or first) + 1))
    return seeds


def oracle_time(store: Path, level: float = 300, seed: int = 0, task: int = TASKS[0]) -> dict:
    """The default oracle's own time per trial in one search of ``level`` full trainings.

    A replayed trial trains in microseconds, so the search's time is the oracle's (and the
    tuner loop's). Wall and CPU seconds are written after every trial to
    ``<store>/oracle_time.json`` (a stopped measurement keeps the trials it timed); CPU
    seconds of this process are the figure a loaded machine distorts least.
    """
    from search import methods

    problem = lcbench_problem(task)
    path = Path(store) / ORACLE_TIME_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    started, cpu = time.perf_counter(), time.process_time()
    ends: list[tuple[float, float]] = []
    measured: dict = {"problem": problem.name, "level": level, "seed": seed, "finished": False}
    tuner_class = methods.RunPredictiveTuner
    trial_end = tuner_class.on_trial_end

    def timed_trial_end(tuner, trial):
        trial_end(tuner, trial)
        ends.append((time.perf_counter() - started, time.process_time() - cpu))
        if len(ends) % 10 == 0:
            write(tuner.oracle.training_steps())

    def write(steps: int) -> None:
        wall, used = ends[-1]
        measured.update(
            trials=len(ends),
            steps=steps,
            seconds=wall,
            cpu_seconds=used,
            seconds_per_trial=wall / len(ends),
            cpu_seconds_per_trial=used / len(ends),
            # The per-trial cost late in the search (its last tenth of trials).
            late_cpu_seconds_per_trial=_late_rate(ends),
            load=os.getloadavg()[0],
        )
        path.write_text(json.dumps(measured, indent=1) + "\n")

    tuner_class.on_trial_end = timed_trial_end
    try:
        outcome = methods.run_method(problem, methods.DEFAULT, seed, level)
    finally:
        tuner_class.on_trial_end = trial_end
    measured["finished"] = True
    measured["regret"] = problem.regret(outcome.best)
    write(outcome.steps)
    return measured


def _late_rate(ends: list[tuple[float, float]]) -> float:
    """CPU seconds per trial over the last tenth of the trials timed."""
    first = max(0, len(ends) - max(2, len(ends) // 10))
    start = ends[first - 1][1] if first else 0.0
    return (ends[-1][1] - start) / (len(ends) - first)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=float, nargs="+", default=list(LEVELS))
    parser.add_argument("--seeds", nargs="+", default=["0-9"], help="e.g. 0-9 or 0 1 2")
    parser.add_argument("--tasks", type=int, nargs="+", default=list(TASKS))
    parser.add_argument(
        "--methods", nargs="+", default=list(LCBENCH_METHODS), help="method names (default all)"
    )
    parser.add_argument("--store", type=Path, default=STORE)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true", help="run nothing; report")
    parser.add_argument(
        "--readme",
        type=Path,
        default=README,
        help="README whose lcbench-summary block is rewritten (default: the project's)",
    )
    parser.add_argument("--no-report", action="store_true", help="run; do not report")
    parser.add_argument("--oracle-time", action="store_true", help="time the default at N=300")
    args = parser.parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    unknown = sorted(set(args.methods) - set(LCBENCH_METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; they are {list(LCBENCH_METHODS)}")
    problems = [lcbench_problem(task) for task in args.tasks]
    if args.oracle_time:
        print(json.dumps(oracle_time(args.store), indent=1))
    elif not args.report_only:
        methods = methods_available(args.methods)
        for missing in sorted(set(args.methods) - set(methods)):
            print(f"{label(missing)} cannot run here: pip install 'smac>=2.4,<3'")
        run_missing(problems, args.levels, seeds_of(args.seeds), methods, args.store)
    if not args.no_report:
        from lcbench_report import README_BLOCK, readme_block, write_report

        write_report(problems, args.store, args.results)
        print(f"wrote the LCBench section of {args.results}")
        if args.readme is not None:
            write_section(README_BLOCK, readme_block(problems, args.store), args.readme)
            print(f"wrote the {README_BLOCK} block of {args.readme}")


if __name__ == "__main__":
    main()
