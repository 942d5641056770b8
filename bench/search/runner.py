"""Methods x problems x budget levels x seeds, each outcome stored as it finishes.

One JSON file per (problem, level, seed) under the store holds that search's outcomes of
every method; an outcome already stored is reused, so an interrupted benchmark continues
where it stopped and a rerun with more seeds runs only the new ones. Independent
(problem, level, seed) tasks can run in several processes (``jobs``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

from kt_predictive.storage import read_json, write_json

from .ledger import Outcome
from .methods import (
    METHOD_VERSIONS,
    METHODS,
    current,
    methods_at,
    run_method,
    same_search,
    serializable,
)
from .problems import PROBLEMS, Problem

STORE = Path(__file__).resolve().parents[1] / "data" / "search_benchmark"


def outcome_path(store: Path, problem: str, level: float, seed: int) -> Path:
    return Path(store) / f"{problem}-b{level:g}-seed{seed}.json"


class SeedOutcomes:
    """The outcomes of one problem, level and seed saved so far (a JSON file, atomic writes).

    The file records the problem's description (its settings, and a replayed table's runs);
    outcomes measured under another are not comparable, so a mismatch is an error that says
    which file to remove.
    """

    def __init__(self, path: Path, problem: Problem, level: float, seed: int):
        self.path, self.level, self.seed = Path(path), level, seed
        self.settings = problem.describe()
        self.outcomes: dict[str, Outcome] = {}
        if self.path.is_file():
            stored = read_json(self.path, "delete it to measure this seed again")
            if stored["settings"] != self.settings:
                raise ValueError(
                    f"{self.path} holds outcomes measured with other settings "
                    f"({stored['settings']}); delete it (or pass another --store) to measure "
                    "this seed again"
                )
            for item in stored["outcomes"]:
                item["trace"] = [tuple(point) for point in item["trace"]]
                self.outcomes[item["method"]] = Outcome(**item)

    def get(self, method: str) -> Outcome | None:
        return self.outcomes.get(method)

    def add(self, outcome: Outcome) -> None:
        outcome.fixed_values = serializable(outcome.fixed_values)
        self.outcomes[outcome.method] = outcome
        write_json(
            self.path,
            {
                "level": self.level,
                "seed": self.seed,
                "settings": self.settings,
                "outcomes": [_json_safe(asdict(o)) for o in self.outcomes.values()],
            },
        )


#: The entry of a store of searches (a JSON object) that records what each problem's searches
#: were measured on.
MEASURED_ON = "problems measured"


def check_measured_on(store: Path, stored: dict, problems: Mapping[str, Problem]) -> None:
    """Records in ``stored``, the contents of ``store``, what each problem's searches are
    measured on (``Problem.describe``: settings, and the table or surrogate replayed), or
    refuses a store measured on another: other curves would mix old and new searches.

    Raises:
        ValueError: a problem's description differs from the stored one.
    """
    measured = stored.setdefault(MEASURED_ON, {})
    for name, problem in problems.items():
        now = problem.describe()
        before = measured.setdefault(name, now)
        if before != now:
            raise ValueError(
                f"{store} holds searches of {name!r} measured on '{before}', but the problem "
                f"is now '{now}'; move the file aside to run every search again on the new "
                "curves, or restore the old table"
            )


def _json_safe(value):
    """inf stays a number in Python's JSON (``Infinity``); numpy scalars become Python ones."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def run_seed(
    problem: Problem,
    level: float,
    seed: int,
    methods: Sequence[str] = METHODS,
    store: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[Outcome]:
    """Every method on one problem, level and seed (stored outcomes are reused)."""
    saved = (
        SeedOutcomes(outcome_path(store, problem.name, level, seed), problem, level, seed)
        if store is not None
        else None
    )
    outcomes = []
    for method in methods_at(level, methods):
        outcome = saved.get(method) if saved is not None else None
        twin = same_search(method, level)
        if (outcome is None or not current(outcome)) and twin is not None:
            # The same search was (or is now) run under the other name: its outcome is this
            # method's, to the last digit (the oracles are built from equal arguments).
            twin_outcome = saved.get(twin) if saved is not None else None
            if twin_outcome is None or not current(twin_outcome):
                twin_outcome = run_method(problem, twin, seed, level)
                if saved is not None:
                    saved.add(twin_outcome)
            outcome = dataclasses.replace(
                twin_outcome,
                method=method,
                diagnostics={
                    **twin_outcome.diagnostics,
                    "version": METHOD_VERSIONS.get(method),
                    "same_search_as": twin,
                },
            )
            if saved is not None:
                saved.add(outcome)
        if outcome is None or not current(outcome):
            outcome = run_method(problem, method, seed, level)
            if saved is not None:
                saved.add(outcome)
            log(
                f"[{problem.name} {level:g}x seed {seed}] {method}: best {outcome.best:.5g}, "
                f"{outcome.steps} of {outcome.budget} steps, {outcome.finals} full trainings, "
                f"{outcome.seconds:.1f} s"
            )
        outcomes.append(outcome)
    return outcomes


_PROBLEM_CACHE: dict[str, Problem] = {}


def problem_named(name: str) -> Problem:
    """The problem ``name``, built once per process."""
    if name not in _PROBLEM_CACHE:
        _PROBLEM_CACHE[name] = PROBLEMS[name]()
    return _PROBLEM_CACHE[name]


def _quiet_worker() -> None:
    """One thread per process for TensorFlow; Optuna's per-trial log off."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)


def _task(name: str, level: float, seed: int, methods: Sequence[str], store: Path) -> str:
    lines: list[str] = []
    run_seed(problem_named(name), level, seed, methods, store, log=lines.append)
    return "\n".join(lines)


def benchmark(
    names: Sequence[str],
    levels: Sequence[float],
    seeds: Sequence[int],
    methods: Sequence[str] = METHODS,
    store: Path = STORE,
    jobs: int = 1,
    log: Callable[[str], None] = print,
) -> None:
    """Runs every (problem, level, seed) not fully stored yet, smallest levels first (an
    interrupted run then leaves whole levels)."""
    tasks = [(name, level, seed) for level in sorted(levels) for name in names for seed in seeds]
    if jobs <= 1:
        _quiet_worker()
        for name, level, seed in tasks:
            run_seed(problem_named(name), level, seed, methods, store, log=log)
        return
    context = get_context("spawn")  # TensorFlow and fork do not mix
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_quiet_worker) as pool:
        futures = [pool.submit(_task, *task, tuple(methods), store) for task in tasks]
        for future in as_completed(futures):
            text = future.result()
            if text:
                log(text)


def load_outcomes(
    store: Path, name: str, levels: Sequence[float], seeds: Sequence[int]
) -> list[Outcome]:
    """Every stored outcome of a problem at these levels and seeds."""
    outcomes = []
    for level in levels:
        for seed in seeds:
            path = outcome_path(store, name, level, seed)
            if not path.is_file():
                continue
            for item in read_json(path, "delete it to measure this seed again")["outcomes"]:
                item["trace"] = [tuple(point) for point in item["trace"]]
                if item["best"] is None:
                    item["best"] = math.inf
                outcome = Outcome(**item)
                if current(outcome):
                    outcomes.append(outcome)
    return outcomes
