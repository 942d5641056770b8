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
  their real training (seeds 1-5): two tables that differ only in training noise ranking the
  methods as differently as the real check does would put that disagreement on the noise.

Writes section ``mlp-seed-noise`` of bench/RESULTS.md; searches stored in
``bench/data/mlp_seed_noise.json`` are reused.

    python bench/mlp_seed_noise.py --jobs 2
"""

from __future__ import annotations

import argparse
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
from search.methods import METHOD_VERSIONS, METHODS, run_method
from search.problems import mlp_problem
from search.runner import STORE, load_outcomes
from search.spaces import DATA, MLP_EPOCHS, MLP_GRID, MLP_TABLE
from search.tables import CurveTable, collect

from kt_predictive import read_json, write_json

SECTION = "mlp-seed-noise"
SEED2_TABLE = DATA / "mlp_curves_seed2.npz"
SEARCHES = DATA / "mlp_seed_noise.json"
LEVEL = 10
SEEDS = tuple(range(1, 11))
REAL_SEEDS = tuple(range(1, 6))
#: The real check's methods: every method but BayesianOptimization.
CHECKED = tuple(m for m in METHODS if m != "BayesianOptimization")
TOP = 20


def search_task(task: tuple[str, int]) -> tuple[str, int, float]:
    """One method's search on the seed-2 table, in a worker process."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    method, seed = task
    outcome = run_method(mlp_problem(SEED2_TABLE), method, seed, LEVEL)
    return method, seed, outcome.best


def search_key(method: str, seed: int) -> str:
    """The stored search's key; it names the method's version (METHOD_VERSIONS), so a search
    of an older version is run again rather than reported."""
    version = METHOD_VERSIONS.get(method)
    return f"{method} | seed {seed}" if version is None else f"{method} v{version} | seed {seed}"


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


def ranking_lines(seed2: dict[str, list[float]]) -> list[str]:
    """The methods on the two tables and trained for real: the table and the Spearmans."""
    replay = method_means(load_outcomes(STORE, "mlp", [LEVEL], SEEDS), CHECKED, SEEDS)
    real = method_means(load_outcomes(STORE, "mlp-real", [LEVEL], REAL_SEEDS), CHECKED, REAL_SEEDS)
    methods = [m for m in CHECKED if m in replay and m in seed2]
    first = {m: statistics.mean(replay[m]) for m in methods}
    second = {m: statistics.mean(seed2[m]) for m in methods}
    k = len(REAL_SEEDS)
    first5 = {m: statistics.mean(replay[m][:k]) for m in methods}
    second5 = {m: statistics.mean(seed2[m][:k]) for m in methods}
    real_means = {m: statistics.mean(real[m]) for m in methods if m in real}
    r1, r2, rr = ranks(first), ranks(second), ranks(real_means)
    lines = [
        f"| method | seed-1 table, seeds 1-{SEEDS[-1]} (mean ± std) | rank | seed-2 table, seeds "
        f"1-{SEEDS[-1]} (mean ± std) | rank | real training, seeds 1-{k} (mean) | rank |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in methods:
        real_cell = (
            f"{real_means[m]:.4g} | {rr[m]}" if m in real_means else "not trained for real | -"
        )
        lines.append(
            f"| {m} | {first[m]:.4g} ± {statistics.stdev(replay[m]):.2g} | {r1[m]} | "
            f"{second[m]:.4g} ± {statistics.stdev(seed2[m]):.2g} | {r2[m]} | {real_cell} |"
        )
    lines += [
        "",
        f"Spearman of the method means over the {len(methods)} methods:",
        "",
        f"- seed-1 table vs seed-2 table, seeds 1-{SEEDS[-1]}: {rho(first, second):.2f}; on "
        f"seeds 1-{k} only: {rho(first5, second5):.2f};",
        f"- real training vs the seed-1 table (seeds 1-{k}): {rho(real_means, first5):.2f}; vs "
        f"the seed-2 table: {rho(real_means, second5):.2f}.",
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
    tasks = [(m, s) for m in CHECKED for s in SEEDS if search_key(m, s) not in stored]
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        for method, seed, best in pool.map(search_task, tasks):
            stored[search_key(method, seed)] = best
            write_json(SEARCHES, stored)
            print(f"[{method}] seed {seed}: {best:.5f}", flush=True)
    seed2 = {m: [stored[search_key(m, s)] for s in SEEDS] for m in CHECKED}
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
        *ranking_lines(seed2),
    ]
    write_section(SECTION, "\n".join(lines))
    print(f"wrote section {SECTION}")


if __name__ == "__main__":
    main()
