"""The MLP table's training noise, and what it does to the benchmark's ranking of methods.

The search benchmark replays the MLP table (bench/collect_mlp_curves.py), one run per
configuration with training seed 1; its real check trains the same grid with other seeds at
every query and ranks the methods differently (section search-efficiency: Spearman of the
method means near 0.1). Either the replay is wrong or the ranking is the training noise.
This script trains every configuration again with training seed 2 (the same code and
settings; ``bench/data/mlp_curves_seed2.npz``, resumable) and measures:

- how far the two seeds' final losses agree: Spearman over the grid and among seed 1's best
  configurations, and where each seed's best configuration ranks under the other;
- the benchmark's methods replayed on the seed-2 table at 10 full trainings, on search seeds
  1-10, against their stored replay on the seed-1 table (bench/data/search_benchmark/) and
  their real training (the same seeds): two tables that differ only in training noise ranking the
  methods as differently as the real check does would put that disagreement on the noise;
- the same methods replayed on both seeds' runs together, where each search seed draws one
  of a configuration's two runs (``CurveTable.curve``), as real training draws new noise:
  whether such a replay would rank the methods more like real training does.

Writes section ``mlp-seed-noise`` of bench/RESULTS.md; searches stored in
``bench/data/mlp_seed_noise.json`` are reused.

    python bench/mlp_seed_noise.py --jobs 2
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from collect_mlp_curves import FINAL_WINDOW, META, train
from results import environment, write_section
from scipy.stats import spearmanr
from search.methods import METHOD_VERSIONS, run_method
from search.problems import MLP_SETTINGS, TableProblem, mlp_problem
from search.runner import STORE, check_measured_on, load_outcomes
from search.spaces import DATA, MLP_EPOCHS, MLP_GRID, MLP_TABLE
from search.tables import CurveTable, collect
from search_efficiency import FIRST_REAL_SEEDS, REAL_CHECKS, REAL_LEVEL

from kt_predictive.storage import read_json, write_json

SECTION = "mlp-seed-noise"
SEED2_TABLE = DATA / "mlp_curves_seed2.npz"
SEARCHES = DATA / "mlp_seed_noise.json"
#: The MLP real check's budget, seeds and methods: the replays are compared with it.
LEVEL = REAL_LEVEL
SEEDS = REAL_CHECKS["mlp"].seeds
CHECKED = REAL_CHECKS["mlp"].methods
#: The real checks' first seeds: the comparisons are also given on them.
FEW = len(FIRST_REAL_SEEDS)
TOP = 20


#: The replayed tables this script searches: the seed-2 runs, and both seeds' runs together.
SEED2, BOTH = "seed 2", "both seeds"


def both_seeds() -> CurveTable:
    """The benchmark's table with the seed-2 runs added: two runs per configuration."""
    table = CurveTable.load(MLP_TABLE)
    second = CurveTable.load(SEED2_TABLE)
    for key, seed, curve, seconds in zip(
        second.hp_index, second.train_seed, second.curves, second.seconds, strict=True
    ):
        table.add(key, seed, curve[~np.isnan(curve)], seconds)  # add pads with NaN again
    return table


@functools.cache
def replayed(which: str) -> TableProblem:
    """The MLP problem replaying table ``which`` (SEED2 or BOTH); loaded once per worker
    process, since a search only reads the table."""
    if which == SEED2:
        return mlp_problem(SEED2_TABLE)
    return TableProblem("mlp", f"MLP, {BOTH}", MLP_SETTINGS, both_seeds())


def search_task(task: tuple[str, str, int]) -> tuple[str, str, int, float]:
    """One method's search on a replayed table, in a worker process."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    which, method, seed = task
    outcome = run_method(replayed(which), method, seed, LEVEL)
    return which, method, seed, outcome.best


def search_key(method: str, seed: int, which: str = SEED2) -> str:
    """The stored search's key; it names the method's version (METHOD_VERSIONS), so a search
    of an older version is run again rather than reported."""
    version = METHOD_VERSIONS.get(method)
    key = f"{method} | seed {seed}" if version is None else f"{method} v{version} | seed {seed}"
    return key if which == SEED2 else f"{which} | {key}"


def finals(table: CurveTable) -> dict[tuple[int, ...], float]:
    """Final loss per configuration (one run each)."""
    means = table.final_means(FINAL_WINDOW)
    return {tuple(c): float(m) for c, m in zip(table.hp_index, means, strict=True)}


def rank_of(key, losses: dict) -> int:
    """1-based rank of ``losses[key]`` among ``losses`` (1: the lowest)."""
    return 1 + sum(v < losses[key] for v in losses.values())


def noise_lines(first: dict, second: dict) -> list[str]:
    """How the two seeds' final losses agree."""
    configs = sorted(first)
    a = np.array([first[c] for c in configs])
    b = np.array([second[c] for c in configs])
    finite = np.isfinite(a) & np.isfinite(b)
    top = sorted(configs, key=first.get)[:TOP]
    ta = np.array([first[c] for c in top])
    tb = np.array([second[c] for c in top])
    best1, best2 = min(first, key=first.get), min(second, key=second.get)
    relative = np.abs(tb - ta) / ta
    return [
        f"- Spearman of the final losses, seed 1 vs seed 2, over the {int(finite.sum())} "
        f"configurations both finished: {spearmanr(a[finite], b[finite]).statistic:.3f}; over "
        f"seed 1's best {TOP}: {spearmanr(ta, tb).statistic:.3f}.",
        f"- Among seed 1's best {TOP}, the two seeds' final losses differ by "
        f"{100 * relative.mean():.1f}% on average ({100 * np.median(relative):.1f}% median); "
        f"seed 1's best and {TOP}th best differ by {100 * (ta[-1] / ta[0] - 1):.1f}%.",
        f"- Seed 1's best configuration ({first[best1]:.4g}) ranks {rank_of(best1, second)} of "
        f"{len(configs)} under seed 2 ({second[best1]:.4g}); seed 2's best ({second[best2]:.4g}) "
        f"ranks {rank_of(best2, first)} under seed 1 ({first[best2]:.4g}).",
    ]


def method_means(outcomes, methods, seeds) -> dict[str, list[float]]:
    """Each method's best losses on ``seeds``, for the methods that finished all of them."""
    by_method: dict[str, dict[int, float]] = {}
    for o in outcomes:
        by_method.setdefault(o.method, {})[o.seed] = o.best
    return {
        m: [by_method[m][s] for s in seeds]
        for m in methods
        if m in by_method and all(s in by_method[m] for s in seeds)
    }


def ranks(means: dict[str, float]) -> dict[str, int]:
    """Every method's :func:`rank_of` among ``means`` (ties share the better rank)."""
    return {m: rank_of(m, means) for m in means}


def rho(x: dict[str, float], y: dict[str, float]) -> float:
    shared = [m for m in x if m in y]
    return float(spearmanr([x[m] for m in shared], [y[m] for m in shared]).statistic)


def ranking_lines(seed2: dict[str, list[float]], both: dict[str, list[float]]) -> list[str]:
    """The methods on the tables and trained for real: the table and the Spearmans, on all
    SEEDS and on the first FEW (the real check's seeds before it had SEEDS)."""
    replay = method_means(load_outcomes(STORE, "mlp", [LEVEL], SEEDS), CHECKED, SEEDS)
    real = method_means(load_outcomes(STORE, "mlp-real", [LEVEL], SEEDS), CHECKED, SEEDS)
    methods = [m for m in CHECKED if m in replay and m in seed2 and m in both]

    def means(bests: dict[str, list[float]], n: int = len(SEEDS)) -> dict[str, float]:
        return {m: statistics.mean(bests[m][:n]) for m in methods if m in bests}

    first, second, pooled, real_means = means(replay), means(seed2), means(both), means(real)
    few = {name: means(b, FEW) for name, b in [("1", replay), ("2", seed2), ("both", both)]}
    real_few = means(real, FEW)
    r1, r2, rb, rr = ranks(first), ranks(second), ranks(pooled), ranks(real_means)
    lines = [
        f"Every column: search seeds 1-{SEEDS[-1]}; real training trains every network of a "
        "search with training seed 100 + the search seed (the tables': 1 and 2).",
        "",
        "| method | seed-1 table (mean ± std) | rank | seed-2 table (mean ± std) | rank | "
        "both seeds' runs (mean ± std) | rank | real training (mean ± std) | rank |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in methods:
        real_cell = (
            f"{real_means[m]:.4g} ± {statistics.stdev(real[m]):.2g} | {rr[m]}"
            if m in real_means
            else f"not trained for real on seeds 1-{SEEDS[-1]} | -"
        )
        lines.append(
            f"| {m} | {first[m]:.4g} ± {statistics.stdev(replay[m]):.2g} | {r1[m]} | "
            f"{second[m]:.4g} ± {statistics.stdev(seed2[m]):.2g} | {r2[m]} | "
            f"{pooled[m]:.4g} ± {statistics.stdev(both[m]):.2g} | {rb[m]} | {real_cell} |"
        )
    lines += [
        "",
        f"Spearman of the method means over the {len(methods)} methods, on seeds "
        f"1-{SEEDS[-1]} (on seeds 1-{FEW} only, as the real check first had, in brackets):",
        "",
        f"- seed-1 table vs seed-2 table: {rho(first, second):.2f} "
        f"({rho(few['1'], few['2']):.2f});",
        f"- real training vs the seed-1 table: {rho(real_means, first):.2f} "
        f"({rho(real_few, few['1']):.2f}); vs the seed-2 table: {rho(real_means, second):.2f} "
        f"({rho(real_few, few['2']):.2f}); vs both seeds' runs: {rho(real_means, pooled):.2f} "
        f"({rho(real_few, few['both']):.2f});",
        f"- both seeds' runs vs the seed-1 table: {rho(pooled, first):.2f}; vs the seed-2 "
        f"table: {rho(pooled, second):.2f}.",
        "",
        "The spread of the method means, best to worst: "
        f"{100 * (max(first.values()) / min(first.values()) - 1):.1f}% on the seed-1 table, "
        f"{100 * (max(second.values()) / min(second.values()) - 1):.1f}% on the seed-2 table.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    table2, _ = collect(
        SEED2_TABLE, MLP_GRID, MLP_EPOCHS, META, [2], train, save_every=20, log=print
    )
    stored = read_json(SEARCHES, "Delete it to rerun the searches.") if SEARCHES.is_file() else {}
    check_measured_on(SEARCHES, stored, {which: replayed(which) for which in (SEED2, BOTH)})
    write_json(SEARCHES, stored)
    tasks = [
        (which, m, s)
        for which in (SEED2, BOTH)
        for m in CHECKED
        for s in SEEDS
        if search_key(m, s, which) not in stored
    ]
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        for which, method, seed, best in pool.map(search_task, tasks):
            stored[search_key(method, seed, which)] = best
            write_json(SEARCHES, stored)
            print(f"[{which} | {method}] seed {seed}: {best:.5f}", flush=True)
    bests = {
        which: {m: [stored[search_key(m, s, which)] for s in SEEDS] for m in CHECKED}
        for which in (SEED2, BOTH)
    }
    first = finals(CurveTable.load(MLP_TABLE))
    second = finals(table2)
    lines = [
        "## MLP training noise: a second seed of the table (bench/mlp_seed_noise.py)",
        "",
        "Every configuration of the MLP grid trained again with training seed 2 (the "
        "benchmark's table has seed 1; same code and settings), to see whether the real "
        "check's disagreement with the replay (section search-efficiency) is training noise. "
        f"Final loss: the mean of the last {FINAL_WINDOW} epochs' validation log-loss.",
        "",
        environment(),
        f"- Reproduce: `python bench/mlp_seed_noise.py --jobs {args.jobs}` (stored searches "
        f"are reused; this invocation took {(time.perf_counter() - started) / 60:.1f} min).",
        "",
        "### The two seeds' final losses",
        "",
        *noise_lines(first, second),
        "",
        f"### The methods on each table at {LEVEL} full trainings",
        "",
        *ranking_lines(bests[SEED2], bests[BOTH]),
    ]
    write_section(SECTION, "\n".join(lines))
    print(f"wrote section {SECTION}")


if __name__ == "__main__":
    main()
