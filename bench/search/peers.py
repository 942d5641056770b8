"""The LCBench benchmark's methods and its store of searches.

The methods are the default ``PredictiveOracle(search_budget=N)`` (built by
:func:`search.methods.make_predictive_oracle`) and the strongest peers a user would pick:
Optuna's TPE with a fixed study name and either pruner, i-epoch at i = 2 and 8 epochs,
keras-tuner's Hyperband and RandomSearch, and SMAC3's HyperbandFacade (optional).

The store is one JSON-lines file per problem, one search per line, appended as each search
ends: a rerun skips the (method, level, seed) searches already stored at the method's
current version.
"""

from __future__ import annotations

import fcntl
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

from scipy.stats import spearmanr

from kt_predictive import PredictiveOracle

from .lcbench import LCBenchProblem
from .ledger import Outcome, StepLedger
from .methods import (
    DEFAULT,
    I_EARLY,
    I_QUARTER,
    METHOD_VERSIONS,
    TPE_HYPERBAND,
    TPE_MEDIAN,
    run_method,
    run_optuna,
    serializable,
)
from .smac_peer import SMAC_HYPERBAND, run_smac, smac_available

#: Every Optuna study of this benchmark has this name: HyperbandPruner hashes the study name
#: into its brackets, so a drawn name would make TPE + HyperbandPruner irreproducible.
STUDY_NAME = "lcbench"
PEERS = (
    TPE_HYPERBAND,
    TPE_MEDIAN,
    I_QUARTER,
    I_EARLY,
    "Hyperband",
    "RandomSearch",
    SMAC_HYPERBAND,
)
LCBENCH_METHODS = (DEFAULT, *PEERS)
#: Names in the report: i-epoch at LCBench's early budget (8 epochs) and a quarter of it (2).
LABELS = {
    I_EARLY: "i-epoch, i = 8",
    I_QUARTER: "i-epoch, i = 2",
    TPE_HYPERBAND: "Optuna TPE (fixed name) + HyperbandPruner",
    TPE_MEDIAN: "Optuna TPE (fixed name) + MedianPruner",
    "Hyperband": "keras-tuner Hyperband",
}
STORE = Path(__file__).resolve().parents[1] / "data" / "lcbench_searches"
#: The store's record of the default oracle's own time per trial (``bench/lcbench.py
#: --oracle-time``).
ORACLE_TIME_FILE = "oracle_time.json"


def label(method: str) -> str:
    return LABELS.get(method, method)


def default_diagnostics(problem: LCBenchProblem) -> Callable[[PredictiveOracle], dict]:
    """What the default's search did, for the report: configurations trained, explored and
    predicted, and the Spearman correlation, over explored trials with a prediction, of the
    predicted final and of the last early window alone with the true final."""

    def inspect(oracle: PredictiveOracle) -> dict:
        records = oracle.records()
        trained = [r for r in records if r.role != "continuation"]
        predicted = [r for r in records if r.role == "explore" and r.predicted is not None]
        truth = [problem.true_final(r.values) for r in predicted]
        early = [r.early[-1] for r in predicted]
        return {
            "configurations": len({problem.row(r.values) for r in trained}),
            "predicted": len(predicted),
            "spearman_predicted": _spearman([r.predicted for r in predicted], truth),
            "spearman_early": _spearman(early, truth),
            "bias_predicted": (
                sum(r.predicted - t for r, t in zip(predicted, truth, strict=True)) / len(truth)
                if truth
                else None
            ),
            "best_row": (
                problem.row(min(oracle.records(), key=lambda r: r.score).values)
                if records
                else None
            ),
        }

    return inspect


def _spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 3:
        return None
    rho = spearmanr([x for x, _ in pairs], [y for _, y in pairs]).statistic
    return None if math.isnan(rho) else float(rho)


def run_search(problem: LCBenchProblem, method: str, seed: int, level: float) -> Outcome:
    """One method's search on an LCBench problem with ``level`` full trainings of budget."""
    if method == DEFAULT:
        return run_method(problem, method, seed, level, inspect=default_diagnostics(problem))
    if method not in (TPE_HYPERBAND, TPE_MEDIAN, SMAC_HYPERBAND):
        return run_method(problem, method, seed, level)
    limit = round(level * problem.settings.budget.full_steps)
    ledger = StepLedger(limit)
    started = time.perf_counter()
    if method == SMAC_HYPERBAND:
        diagnostics = run_smac(problem, seed, ledger)
    else:
        diagnostics = run_optuna(problem, method, seed, ledger, study_name=STUDY_NAME)
    diagnostics["version"] = METHOD_VERSIONS.get(method)
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
        diagnostics=diagnostics,
    )


class SearchStore:
    """The stored searches of one problem: ``<store>/<problem>.jsonl``, one outcome a line.

    Each line holds the problem's description; a line measured on another description (other
    settings or another table) is an error that names the file to move aside. Lines are
    appended under an exclusive lock, so several processes can add to one file.
    """

    def __init__(self, store: Path, problem: LCBenchProblem):
        self.path = Path(store) / f"{problem.name}.jsonl"
        self.problem = problem
        self.settings = problem.describe()

    def outcomes(self) -> list[Outcome]:
        """Every stored outcome, in the order stored (the last of a repeated key wins in
        :meth:`latest`); a line that is not JSON (cut by a killed writer) is skipped."""
        if not self.path.is_file():
            return []
        found = []
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a killed writer: that search is measured again
            if item.pop("settings") != self.settings:
                raise ValueError(
                    f"{self.path} line {number} was measured on other settings; move the file "
                    "aside to measure this problem's searches again"
                )
            item["trace"] = [tuple(point) for point in item["trace"]]
            item["best"] = math.inf if item["best"] is None else item["best"]
            found.append(Outcome(**item))
        return found

    def latest(self) -> dict[tuple[str, float, int], Outcome]:
        """The stored outcomes at their method's current version, by (method, level, seed)."""
        return {
            (o.method, float(o.level), o.seed): o
            for o in self.outcomes()
            if o.diagnostics.get("version") == METHOD_VERSIONS.get(o.method)
        }

    def add(self, outcome: Outcome) -> None:
        outcome.fixed_values = serializable(outcome.fixed_values)
        line = json.dumps({"settings": self.settings, **_json_safe(asdict(outcome))})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            try:
                # After a line cut by a killed writer, start a new line.
                file.seek(0, 2)
                if file.tell():
                    file.seek(file.tell() - 1)
                    if file.read(1) != "\n":
                        line = "\n" + line
                file.write(line + "\n")
                file.flush()
            finally:
                fcntl.flock(file, fcntl.LOCK_UN)


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def methods_available(methods: Iterable[str]) -> list[str]:
    """The methods that can run here (SMAC3 only where it is installed)."""
    return [m for m in methods if m != SMAC_HYPERBAND or smac_available()]


def run_missing(
    problems: Sequence[LCBenchProblem],
    levels: Sequence[float],
    seeds: Sequence[int],
    methods: Sequence[str],
    store: Path = STORE,
    log: Callable[[str], None] = print,
) -> int:
    """Runs every (problem, method, level, seed) search not stored yet, smallest level
    first, storing each as it ends; returns how many ran."""
    count = 0
    for level in sorted(levels):
        for seed in seeds:
            for problem in problems:
                saved = SearchStore(store, problem)
                done = saved.latest()
                for method in methods:
                    if (method, float(level), seed) in done:
                        continue
                    outcome = run_search(problem, method, seed, level)
                    saved.add(outcome)
                    count += 1
                    log(
                        f"[{problem.name} N={level:g} seed {seed}] {label(method)}: regret "
                        f"{problem.regret(outcome.best):.4g}, {outcome.steps}/{outcome.budget} "
                        f"steps, {outcome.seconds:.1f} s"
                    )
    return count
