"""The LCBench section of bench/RESULTS.md, generated from the stored searches
(bench/data/lcbench_searches) by ``python bench/lcbench.py --report-only``."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from results import write_section
from search.lcbench import LCBenchProblem
from search.ledger import Outcome
from search.methods import DEFAULT, METHOD_VERSIONS
from search.peers import LCBENCH_METHODS, ORACLE_TIME_FILE, PEERS, SearchStore, label
from search.report import ALPHA, holm, markdown, paired

SECTION = "lcbench"
FIGURE = Path(__file__).resolve().parent / "lcbench_regret.png"
#: The seeds the report shows (the development seeds; seeds from 1000 are held out for tuning).
REPORT_SEEDS = range(0, 1000)


def regrets(outcomes: Sequence[Outcome], problem: LCBenchProblem) -> dict:
    """{(method, level): {seed: regret}} of one problem (inf where a search found nothing)."""
    table: dict = {}
    for o in outcomes:
        if o.seed in REPORT_SEEDS:
            table.setdefault((o.method, float(o.level)), {})[o.seed] = problem.regret(o.best)
    return table


def cell(values: Sequence[float]) -> str:
    """``mean ± std (median)`` of regrets; the seeds that found nothing are named."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "-"
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    text = f"{np.mean(finite):.3f} ± {std:.3f} ({np.median(finite):.4f})"
    if len(finite) < len(values):
        text += f", {len(values) - len(finite)} found none"
    return text


def level_frame(data: dict, names: Sequence[str], level: float) -> pd.DataFrame:
    """One level: each method's regret on each task and over all tasks (mean of the tasks'
    means; rank by it)."""
    rows = []
    for method in LCBENCH_METHODS:
        per_task = [data[name].get((method, level), {}) for name in names]
        if not any(per_task):
            continue
        row = {"method": label(method)}
        for name, seeds in zip(names, per_task, strict=True):
            row[name.removeprefix("lcbench-")] = cell(list(seeds.values())) if seeds else "-"
        means = [np.mean(list(s.values())) for s in per_task if s]
        medians = [np.median(list(s.values())) for s in per_task if s]
        row["mean over tasks"] = f"{np.mean(means):.4f}" if len(means) == len(names) else "-"
        row["median (mean over tasks)"] = (
            f"{np.mean(medians):.4f}" if len(medians) == len(names) else "-"
        )
        row["seeds per task"] = "/".join(str(len(s)) for s in per_task)
        rows.append(row)
    frame = pd.DataFrame(rows)
    scores = pd.to_numeric(frame["mean over tasks"], errors="coerce")
    frame.insert(
        1, "rank", scores.rank(method="min").map(lambda r: "-" if math.isnan(r) else f"{r:.0f}")
    )
    return frame


def verdict(data: dict, names: Sequence[str], level: float) -> str:
    """One line: the default's mean regret over the tasks against the best peer's, on the
    tasks and seeds the default has searched."""
    tasks = [n for n in names if (DEFAULT, level) in data[n]]
    if not tasks:
        return "The default has no search at this level."

    def over_tasks(method: str) -> float:
        # On the seeds the default has, so that both means cover the same searches.
        found = [data[n].get((method, level), {}) for n in tasks]
        ours_seeds = [set(data[n][(DEFAULT, level)]) for n in tasks]
        common = [a & set(f) for a, f in zip(ours_seeds, found, strict=True)]
        if not all(common):
            return math.nan
        return np.mean([np.mean([f[s] for s in c]) for f, c in zip(found, common, strict=True)])

    means = {p: over_tasks(p) for p in PEERS}
    means = {p: v for p, v in means.items() if math.isfinite(v)}
    ours = over_tasks(DEFAULT)
    seeds = sum(len(data[n][(DEFAULT, level)]) for n in tasks)
    if not means:
        return f"The default's mean regret: {ours:.4f} ({seeds} searches); no peer to compare."
    best = min(means, key=means.get)
    beaten = sum(v < ours for v in means.values())
    return (
        f"On the {len(tasks)} task(s) and seeds the default has searched ({seeds} searches), "
        f"its mean regret is {ours:.4f}; the best peer there, {label(best)}, has {means[best]:.4f} "
        f"(the default {(ours - means[best]) / means[best]:+.0%}); {beaten} of {len(means)} "
        "peers have a lower mean."
    )


def paired_frames(data: dict, names: Sequence[str], levels: Sequence[float]) -> pd.DataFrame:
    """The default against each peer, seed by seed on each (task, level), and pooled over the
    tasks: wins/losses/ties (lower regret wins) and the Wilcoxon p, Holm-adjusted over every
    test of the table."""
    rows, tests = [], []
    for level in levels:
        for peer in PEERS:
            row = {"N": f"{level:g}", "peer": label(peer)}
            pooled_ours: dict = {}
            pooled_theirs: dict = {}
            for task_number, name in enumerate(names):
                ours = data[name].get((DEFAULT, level), {})
                theirs = data[name].get((peer, level), {})
                if not ours or not theirs:
                    row[name.removeprefix("lcbench-")] = "-"
                    continue
                c = paired(ours, theirs)
                row[name.removeprefix("lcbench-")] = f"{c['wins']}/{c['losses']}/{c['ties']}"
                tests.append((len(rows), name.removeprefix("lcbench-"), c["p"]))
                for seed in set(ours) & set(theirs):
                    pooled_ours[(task_number, seed)] = ours[seed]
                    pooled_theirs[(task_number, seed)] = theirs[seed]
            if not pooled_ours:
                continue
            c = paired(pooled_ours, pooled_theirs)
            row["all tasks W/L/T"] = f"{c['wins']}/{c['losses']}/{c['ties']}"
            row["p (all tasks)"] = c["p"]
            rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    adjusted = holm(list(frame["p (all tasks)"]))
    frame["p (all tasks)"] = [_p(p) for p in frame["p (all tasks)"]]
    frame["p Holm (all tasks)"] = [_p(p) for p in adjusted]
    per_task = holm([p for _, _, p in tests])
    for (index, task, _), p in zip(tests, per_task, strict=True):
        if math.isfinite(p) and p < ALPHA:
            frame.loc[index, task] += f" (p {_p(p)})"
    return frame


def _p(p: float) -> str:
    return "-" if not math.isfinite(p) else f"{p:.2g}"


def diagnostics_frame(outcomes: dict, levels: Sequence[float]) -> pd.DataFrame:
    """The default's searches: what they trained, what they fixed, how well they predicted."""
    rows = []
    for level in levels:
        runs = [
            o
            for found in outcomes.values()
            for o in found
            if o.method == DEFAULT and float(o.level) == level and o.seed in REPORT_SEEDS
        ]
        if not runs:
            continue
        d = [o.diagnostics for o in runs]
        fixed = [len(o.fixed_values) for o in runs]
        when = [i for o in runs for i in o.fixed_iterations.values() if i is not None]
        rows.append(
            {
                "N": f"{level:g}",
                "searches": str(len(runs)),
                "configurations trained": _mean(x.get("configurations") for x in d),
                "explored": _mean(x.get("explored") for x in d),
                "screened out": _mean(x.get("screened_out") for x in d),
                "predicted": _mean(x.get("predicted") for x in d),
                "full trainings": _mean(o.finals for o in runs),
                "values fixed (of 7)": f"{np.mean(fixed):.1f}",
                "fixed at iteration (median)": f"{statistics.median(when):.0f}" if when else "-",
                "Spearman predicted vs true final": _mean(
                    (x.get("spearman_predicted") for x in d), 2
                ),
                "Spearman last early window vs true final": _mean(
                    (x.get("spearman_early") for x in d), 2
                ),
                "prediction bias": _mean((x.get("bias_predicted") for x in d), 3),
                "s per search": _mean(o.seconds for o in runs),
            }
        )
    return pd.DataFrame(rows)


def _mean(values, digits: int = 1) -> str:
    found = [v for v in values if v is not None and math.isfinite(v)]
    return f"{np.mean(found):.{digits}f}" if found else "-"


def plot(data: dict, names: Sequence[str], outcomes: dict, problems: dict, path: Path) -> None:
    """Mean regret of the best so far (over tasks and seeds) against steps, a panel per level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted({float(o.level) for found in outcomes.values() for o in found})
    fig, axes = plt.subplots(1, len(levels), figsize=(5 * len(levels), 4.4), squeeze=False)
    for ax, level in zip(axes[0], levels, strict=True):
        for number, method in enumerate(LCBENCH_METHODS):
            curves = []
            for name in names:
                problem = problems[name]
                for o in outcomes[name]:
                    if o.method != method or float(o.level) != level or o.seed not in REPORT_SEEDS:
                        continue
                    grid = np.linspace(0, o.budget, 200)
                    steps = np.array([p[0] for p in o.trace] + [math.inf])
                    bests = np.array([math.inf] + [problem.regret(p[1]) for p in o.trace])
                    curves.append(bests[np.searchsorted(steps, grid, side="right")])
            if not curves:
                continue
            with np.errstate(invalid="ignore"):
                mean = np.mean(curves, axis=0)
            mean[~np.isfinite(mean)] = np.nan
            ax.plot(
                np.linspace(0, 1, 200) * level,
                mean,
                label=label(method),
                linewidth=2.4 if method == DEFAULT else 1.2,
                linestyle="-" if method == DEFAULT else "--",
                color=f"C{number}",
            )
        ax.set_yscale("log")
        ax.set_xlabel("budget used (full trainings)")
        ax.set_title(f"N = {level:g}")
    axes[0][0].set_ylabel("regret of the best so far (mean over tasks and seeds)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("LCBench: best-so-far regret")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def oracle_time_text(store: Path) -> list[str]:
    """The default oracle's own time per trial at N = 300 (``bench/lcbench.py --oracle-time``)."""
    path = Path(store) / ORACLE_TIME_FILE
    if not path.is_file():
        return ["- Oracle time at N = 300: not measured (`python bench/lcbench.py --oracle-time`)."]
    m = json.loads(path.read_text())
    done = (
        f"the whole search ({m['steps']} steps, regret {m['regret']:.4f})"
        if m["finished"]
        else f"stopped after {m['trials']} trials and {m['steps']} of {52 * m['level']:g} steps"
    )
    return [
        f"- The default oracle's own time at N = {m['level']:g} ({m['problem']}, seed "
        f"{m['seed']}; a replayed trial trains in microseconds, so this is the oracle's and the "
        f"tuner loop's time): {done}: {m['trials']} trials, {m['seconds']:.0f} s wall, "
        f"{m['cpu_seconds']:.0f} s CPU: **{m['cpu_seconds_per_trial']:.2f} CPU s per trial** "
        f"({m['late_cpu_seconds_per_trial']:.2f} over its last tenth of trials; "
        f"{m['seconds_per_trial']:.2f} s wall at load average {m['load']:.1f} on 2 shared "
        "cores).",
    ]


def section(problems: Sequence[LCBenchProblem], store: Path, figure: Path = FIGURE) -> str:
    """The section's markdown (and its figure, written to ``figure``)."""
    names = [p.name for p in problems]
    by_name = {p.name: p for p in problems}
    outcomes = {p.name: list(SearchStore(store, p).latest().values()) for p in problems}
    data = {p.name: regrets(outcomes[p.name], p) for p in problems}
    levels = sorted({level for d in data.values() for _, level in d})
    b = problems[0].settings.budget
    lines = [
        "## LCBench: 75,000 configurations, six development tasks (issue 24)",
        "",
        "- Reproduce: `python bench/lcbench.py --levels 10 30 100 300 --seeds 0-9` (runs the "
        "searches not stored yet in bench/data/lcbench_searches/<problem>.jsonl, then writes "
        "this section); `--report-only` rewrites it from the store. Generated, not edited.",
        "- Problems: the YAHPO Gym LCBench surrogate's validation cross-entropy of funnel MLPs "
        f"on OpenML tasks {', '.join(n.removeprefix('lcbench-') for n in names)}, tabulated at "
        "every configuration of a grid of 7 hyperparameters (75,000) and every epoch 1..52 "
        "(shared/data/lcbench). One epoch is one step: full_steps "
        f"{b.full_steps}, early_steps {b.early_steps}, window {b.window}, final_window "
        f"{b.final_window}; a budget of N full trainings is {b.full_steps}·N epochs for every "
        "method.",
        "- Regret: the final (mean of the last 4 epochs of the replayed curve) of the best "
        "configuration a method trained fully, minus the lowest final of the whole table "
        "(exhaustive). Lower is better. Cells: mean ± std (median) over seeds.",
        "- Methods as they are today: the default is `PredictiveOracle(search_budget=N)` with "
        "the problem's step budget and nothing else (method version "
        f"{METHOD_VERSIONS.get(DEFAULT)}); every Optuna study is named `lcbench` (its "
        "HyperbandPruner hashes the study name into brackets); i-epoch screens half the "
        "budget at i epochs; keras-tuner Hyperband runs factor 3 on 4-epoch chunks; SMAC3 "
        "2.4's HyperbandFacade searches the grid's value indices, budgets 2..52 epochs, eta "
        "3. Settings were fixed before any result; nothing was tuned. The default's search "
        "folders lay on tmpfs for most of its searches, on disk for the first few (its "
        "seconds per search mix both; regrets do not depend on it). Seeds 0..9 are the "
        "development seeds shown here; seeds from 1000 are held out for tuning.",
        "",
    ]
    for level in levels:
        lines += [f"### N = {level:g} full trainings", "", verdict(data, names, level)]
        lines += ["", markdown(level_frame(data, names, level)), ""]
    frame = paired_frames(data, names, levels)
    if not frame.empty:
        lines += [
            "### The default against each peer, seed by seed",
            "",
            "W/L/T: the default's wins / losses / ties in regret per task (and pooled over the "
            "tasks' seeds); p: two-sided Wilcoxon signed-rank. A task's cell shows its p only "
            f"where it is below {ALPHA} after Holm's adjustment over every per-task test of this "
            "table; the pooled p's are Holm-adjusted over the pooled column.",
            "",
            markdown(frame),
            "",
        ]
    diag = diagnostics_frame(outcomes, levels)
    if not diag.empty:
        lines += [
            "### What the default's searches did",
            "",
            "Means over its searches (all tasks). Configurations trained: distinct "
            "configurations that trained at all (phase 1 and exploration); predicted: explored "
            "trials the predictor ranked; values fixed: hyperparameters the allocation fixed; "
            "Spearman: over each search's predicted trials, of the predicted final and of the "
            "last early window's mean with the true final; bias: predicted minus true final.",
            "",
            markdown(diag),
            "",
        ]
    lines += oracle_time_text(store)
    if levels:
        plot(data, names, outcomes, by_name, figure)
        lines += [
            "",
            "The figure: the regret of the best network trained fully so far, against the budget "
            "used, the mean over tasks and seeds; a method's line starts where every one of its "
            "searches has trained one network fully.",
            "",
            f"![LCBench best-so-far regret]({figure.name})",
        ]
    return "\n".join(lines)


#: The README's generated block of the comparison (its markers are in README.md).
README_BLOCK = "lcbench-summary"


def readme_block(problems: Sequence[LCBenchProblem], store: Path) -> str:
    """The README's few lines: per level, the default against the best peer (:func:`verdict`)."""
    names = [p.name for p in problems]
    outcomes = {p.name: list(SearchStore(store, p).latest().values()) for p in problems}
    data = {p.name: regrets(outcomes[p.name], p) for p in problems}
    levels = sorted({level for d in data.values() for _, level in d})
    lines = [
        "On LCBench (75,000 MLP configurations of six OpenML tasks, regret of the returned "
        "configuration; [bench/RESULTS.md](bench/RESULTS.md#lcbench-75000-configurations-six-"
        "development-tasks-issue-24), generated by `python bench/lcbench.py --report-only`):",
        "",
    ]
    lines += [f"- N = {level:g} full trainings: {verdict(data, names, level)}" for level in levels]
    return "\n".join(lines)


def write_report(problems: Sequence[LCBenchProblem], store: Path, results: Path) -> Path:
    """Writes the section into ``results`` (its figure beside it)."""
    return write_section(SECTION, section(problems, store, results.parent / FIGURE.name), results)
