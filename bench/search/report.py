"""The report: tables through pandas, paired tests through scipy, figures through matplotlib.

Everything here reads stored outcomes (``search.ledger.Outcome``); nothing trains.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm, spearmanr, wilcoxon

from .ledger import Outcome, steps_to_reach
from .methods import ABLATIONS, DEFAULT, METHODS, PREDICTIVE

#: "Within 5% of the best known configuration": best so far <= (1 + TOLERANCE) * best known.
TOLERANCE = 0.05
ALPHA = 0.05
POWER = 0.8


def markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table (pandas through tabulate), index left out."""
    return frame.to_markdown(index=False, disable_numparse=True)


def mean_std(values: Sequence[float]) -> str:
    """``mean ± std`` of the finite values (sample std), noting seeds that found nothing."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "none found"
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    text = f"{np.mean(finite):.4g} ± {std:.2g}"
    if len(finite) < len(values):
        text += f" ({len(values) - len(finite)} seeds found none)"
    return text


def paired(ours: dict[int, float], theirs: dict[int, float]) -> dict:
    """Seed-by-seed comparison of two methods' best losses (lower is better).

    Returns the seeds both have, ``ours``'s wins, losses and ties, the mean and sample std
    of ``ours - theirs``, the two-sided Wilcoxon signed-rank p of those differences (scipy;
    zero differences dropped; NaN when every difference is zero or fewer than 2 remain), and
    the seeds a test would need to tell the two apart (:func:`seeds_for_power`). A seed where
    one method found no fully trained network counts as a loss for it.
    """
    seeds = sorted(set(ours) & set(theirs))
    big = 1e300
    diffs = [min(ours[s], big) - min(theirs[s], big) for s in seeds]
    wins, losses = sum(d < 0 for d in diffs), sum(d > 0 for d in diffs)
    nonzero = [d for d in diffs if d != 0]
    p = float(wilcoxon(nonzero).pvalue) if len(nonzero) > 1 else math.nan
    finite = [d for d in diffs if abs(d) < 1e299]
    mean = float(np.mean(finite)) if finite else math.nan
    sd = float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan
    return {
        "seeds": len(seeds),
        "wins": wins,
        "losses": losses,
        "ties": len(seeds) - wins - losses,
        "mean_diff": mean,
        "sd_diff": sd,
        "p": p,
        "seeds_needed": seeds_for_power(mean, sd),
    }


def seeds_for_power(mean: float, sd: float, alpha: float = ALPHA, power: float = POWER):
    """Paired seeds a two-sided test at ``alpha`` needs to detect a mean difference ``mean``
    with probability ``power`` when differences spread by ``sd`` (normal approximation:
    ((z_{1-alpha/2} + z_power) sd / mean)^2, rounded up); None without a difference."""
    if not (math.isfinite(mean) and math.isfinite(sd)) or mean == 0:
        return None
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return math.ceil((z * sd / abs(mean)) ** 2)


def _bests(outcomes: Sequence[Outcome], method: str) -> dict[int, float]:
    return {o.seed: o.best for o in outcomes if o.method == method}


def methods_in(outcomes: Sequence[Outcome]) -> list[str]:
    present = {o.method for o in outcomes}
    return [m for m in METHODS if m in present] + sorted(present - set(METHODS))


def mean_best(outcomes: Sequence[Outcome], method: str) -> float:
    """Mean best loss over seeds (inf when a seed found nothing)."""
    values = list(_bests(outcomes, method).values())
    return float(np.mean(values)) if values else math.nan


def rank(outcomes: Sequence[Outcome], method: str) -> int:
    """1 + the number of methods with a strictly lower mean (tied methods share a rank)."""
    mine = mean_best(outcomes, method)
    return 1 + sum(mean_best(outcomes, m) < mine for m in methods_in(outcomes))


def level_table(outcomes: Sequence[Outcome], best_known: float) -> pd.DataFrame:
    """One problem and level: every method's numbers and the default's paired comparison."""
    ours = _bests(outcomes, DEFAULT)
    target = (1 + TOLERANCE) * best_known
    rows = []
    for method in methods_in(outcomes):
        runs = [o for o in outcomes if o.method == method]
        reached = [s for s in (steps_to_reach(o.trace, target) for o in runs) if s is not None]
        row = {
            "method": method,
            "rank": str(rank(outcomes, method)),
            "best real final loss (mean ± std)": mean_std([o.best for o in runs]),
            "median": f"{np.median([o.best for o in runs]):.4g}",
        }
        if method == DEFAULT or not ours:
            row.update({"default W/L/T": "", "default - method (mean)": "", "p": ""})
        else:
            c = paired(ours, _bests(outcomes, method))
            row.update(
                {
                    "default W/L/T": f"{c['wins']}/{c['losses']}/{c['ties']}",
                    "default - method (mean)": f"{c['mean_diff']:+.3g}",
                    "p": f"{c['p']:.2g}",
                }
            )
        row.update(
            {
                "steps used (mean)": f"{np.mean([o.steps for o in runs]):,.0f}",
                "full trainings (mean)": f"{np.mean([o.finals for o in runs]):.1f}",
                f"steps to within {TOLERANCE:.0%} of best known (median; seeds)": (
                    f"{np.median(reached):,.0f} ({len(reached)}/{len(runs)})"
                    if reached
                    else f"never (0/{len(runs)})"
                ),
                "s per search": f"{np.mean([o.seconds for o in runs]):.1f}",
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def summary_rows(outcomes: Sequence[Outcome], problem: str, level: float) -> dict:
    """One problem and level in one line: the default against its best competitor."""
    # The ablations are variants of the default, not competitors.
    others = [m for m in methods_in(outcomes) if m != DEFAULT and m not in ABLATIONS]
    rival = min(others, key=lambda m: mean_best(outcomes, m))
    ours = _bests(outcomes, DEFAULT)
    c = paired(ours, _bests(outcomes, rival))
    comparisons = {m: paired(ours, _bests(outcomes, m)) for m in others}
    better = sum(x["p"] < ALPHA and x["wins"] > x["losses"] for x in comparisons.values())
    worse = sum(x["p"] < ALPHA and x["losses"] > x["wins"] for x in comparisons.values())
    d, r = mean_best(outcomes, DEFAULT), mean_best(outcomes, rival)
    return {
        "problem": problem,
        "budget (full trainings)": f"{level:g}",
        "seeds": str(len(ours)),
        "default (mean ± std)": mean_std(list(ours.values())),
        "default (median)": f"{np.median(list(ours.values())):.4g}",
        "default's rank": f"{rank(outcomes, DEFAULT)} of {len(methods_in(outcomes))}",
        "best other method": rival,
        "its mean": f"{r:.4g}",
        "its median": f"{np.median(list(_bests(outcomes, rival).values())):.4g}",
        "default vs it": f"{(d - r) / r:+.1%}",
        "default W/L/T vs it": f"{c['wins']}/{c['losses']}/{c['ties']}",
        "p (Wilcoxon)": f"{c['p']:.2g}",
        f"seeds to tell them apart ({POWER:.0%} power)": (
            "-" if c["seeds_needed"] is None else f"{c['seeds_needed']:,}"
        ),
        f"methods the default beats / loses to at p < {ALPHA}": f"{better} / {worse}",
    }


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``pvalues`` (family-wise error at the nominal level).

    The k-th smallest of m tested p-values becomes max over j <= k of min(1, (m - j + 1) p_j);
    NaN (no test: every difference zero) stays NaN and does not count in m.

    Example:
        >>> holm([0.01, 0.04, float("nan"), 0.03])
        [0.03, 0.06, nan, 0.06]
    """
    tested = sorted((p, i) for i, p in enumerate(pvalues) if math.isfinite(p))
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for k, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - k) * p))
        adjusted[i] = round(running, 12)
    return adjusted


def confirmation_rows(
    outcomes: Sequence[Outcome], problem: str, level: float, rivals: Sequence[str]
) -> list[dict]:
    """The default against each of ``rivals`` on one problem and level, paired over the seeds
    every one of them has (a row per rival; ``p (Holm)`` is left for the caller, who knows
    the whole family of tests)."""
    everyone = [DEFAULT, *rivals]
    seeds = set.intersection(*(set(_bests(outcomes, m)) for m in everyone))
    common = [o for o in outcomes if o.seed in seeds]
    ours = _bests(common, DEFAULT)
    d = mean_best(common, DEFAULT)
    rows = []
    for method in rivals:
        c = paired(ours, _bests(common, method))
        m = mean_best(common, method)
        rows.append(
            {
                "problem": problem,
                "budget (full trainings)": f"{level:g}",
                "seeds": str(c["seeds"]),
                "default (mean ± std)": mean_std(list(ours.values())),
                "method": method,
                "its mean ± std": mean_std(list(_bests(common, method).values())),
                "default vs it": f"{(d - m) / m:+.1%}" if m else "-",
                "default W/L/T": f"{c['wins']}/{c['losses']}/{c['ties']}",
                "p (Wilcoxon)": c["p"],
                f"seeds to tell them apart ({POWER:.0%} power)": (
                    "-" if c["seeds_needed"] is None else f"{c['seeds_needed']:,}"
                ),
                "lower": "default" if d < m else (method if m < d else "tie"),
            }
        )
    return rows


def losses_text(outcomes: Sequence[Outcome], problem: str, level: float) -> list[str]:
    """A sentence per method whose mean is lower than the default's, with the paired test."""
    d = mean_best(outcomes, DEFAULT)
    ours = _bests(outcomes, DEFAULT)
    lines = []
    for method in methods_in(outcomes):
        m = mean_best(outcomes, method)
        if method == DEFAULT or not m < d:
            continue
        c = paired(ours, _bests(outcomes, method))
        verdict = "significant" if c["p"] < ALPHA else "not significant"
        lines.append(
            f"{problem}, {level:g} full trainings: {method} has the lower mean, {m:.4g} vs "
            f"{d:.4g} (the default is {(d - m) / m:.1%} worse); the default wins {c['wins']} "
            f"and loses {c['losses']} of {c['seeds']} seeds (p = {c['p']:.2g}, {verdict} at "
            f"{ALPHA})."
        )
    return lines


def fixed_table(outcomes: Sequence[Outcome], names: Sequence[str]) -> pd.DataFrame:
    """Per hyperparameter: when the default and the paper preset fixed it (mean iteration)."""
    rows = []
    for name in names:
        row = {"hyperparameter": name}
        for method in PREDICTIVE:
            runs = [o for o in outcomes if o.method == method]
            iterations = [o.fixed_iterations[name] for o in runs if name in o.fixed_iterations]
            explored = [o.diagnostics["explored"] for o in runs if name in o.fixed_iterations]
            row[f"{method}: mean iteration fixed (seeds fixing it)"] = (
                f"{np.mean(iterations):.1f} ({len(iterations)}/{len(runs)}); "
                f"{np.mean([i / max(e, 1) for i, e in zip(iterations, explored, strict=True)]):.0%}"
                " of exploration"
                if iterations
                else f"never (0/{len(runs)})"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def exploration_summary(outcomes: Sequence[Outcome]) -> pd.DataFrame:
    """Per predictive method: phase sizes, exploration length and early fixing."""
    rows = []
    for method in PREDICTIVE:
        runs = [o for o in outcomes if o.method == method]
        if not runs:
            continue
        sizes = [str(n) for n in runs[0].diagnostics["sizes"]]
        if runs[0].diagnostics.get("initial_screen"):  # a screened phase 1
            sizes[0] = f"best {sizes[0]} of {runs[0].diagnostics['initial_screen']}"
        hps = runs[0].diagnostics["hyperparameters"]
        early = [
            sum(it < max(1, 0.1 * o.diagnostics["explored"]) for it in o.fixed_iterations.values())
            for o in runs
        ]
        at_zero = [sum(it == 0 for it in o.fixed_iterations.values()) for o in runs]
        ends: dict[str, int] = {}
        for o in runs:
            end = o.diagnostics["exploration_end"] or "did not end"
            ends[end] = ends.get(end, 0) + 1
        best_from = {}
        for o in runs:
            best_from[o.diagnostics["best_phase"]] = (
                best_from.get(o.diagnostics["best_phase"], 0) + 1
            )
        rows.append(
            {
                "method": method,
                "phases (initial / max explored / continued)": "/".join(map(str, sizes)),
                "explored (mean)": f"{np.mean([o.diagnostics['explored'] for o in runs]):.1f}",
                "screened out at a rung (mean)": (
                    f"{np.mean([o.diagnostics.get('screened_out', 0) for o in runs]):.1f}"
                ),
                "continued (mean)": (
                    f"{np.mean([len(o.diagnostics['finalized_real']) for o in runs]):.1f}"
                ),
                f"fixed in the first 10% of exploration (mean of {hps})": f"{np.mean(early):.1f}",
                "fixed at iteration 0 (mean)": f"{np.mean(at_zero):.1f}",
                "fixed by the end (mean)": (
                    f"{np.mean([len(o.fixed_iterations) for o in runs]):.1f}"
                ),
                "exploration ended by": "; ".join(f"{k} x{v}" for k, v in ends.items()),
                "best network from": "; ".join(
                    f"{k} x{v}" for k, v in sorted(best_from.items(), key=str)
                ),
            }
        )
    return pd.DataFrame(rows)


def plot(title: str, by_level: dict[float, Sequence[Outcome]], best: float, path: Path) -> None:
    """Best real final loss so far vs cumulative steps (mean over seeds), one panel per level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted(by_level)
    fig, axes = plt.subplots(1, len(levels), figsize=(5.5 * len(levels), 4.8), squeeze=False)
    for ax, level in zip(axes[0], levels, strict=True):
        outcomes = by_level[level]
        end = max(o.budget for o in outcomes)
        grid = np.linspace(0, end, 400)
        for method in methods_in(outcomes):
            curves = []
            for o in (o for o in outcomes if o.method == method):
                steps = np.array([p[0] for p in o.trace] + [math.inf])
                bests = np.array([math.inf] + [p[1] for p in o.trace])
                # The best so far at x is that of the last full training finished at or before x.
                curve = bests[np.searchsorted(steps, grid, side="right")]
                curve[grid > o.steps] = np.nan
                curves.append(curve)
            with np.errstate(invalid="ignore"):
                mean = np.mean(curves, axis=0)
            mean[~np.isfinite(mean)] = np.nan
            style = "-" if method in PREDICTIVE else ("-." if method.startswith("i-") else "--")
            width = 2.2 if method == DEFAULT else 1.2
            # One colour per method in every panel (a level without a method must not shift
            # the others' colours).
            color = f"C{METHODS.index(method) % 10}" if method in METHODS else None
            ax.plot(grid, mean, label=method, linestyle=style, linewidth=width, color=color)
        ax.axhline(best, color="grey", linewidth=0.8, linestyle=":", label="best known")
        ax.set_yscale("log")
        ax.set_xlabel("cumulative training steps")
        ax.set_title(f"{level:g} full trainings")
    axes[0][0].set_ylabel("best real final loss so far (mean over seeds)")
    axes[0][0].legend(fontsize=7)  # the smallest level runs every method
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def real_check(
    real: Sequence[Outcome], replay: Sequence[Outcome]
) -> tuple[pd.DataFrame, float, list[int]]:
    """Methods' means with real training vs the replay (same seeds); Spearman of the means;
    the seeds compared."""
    # The seeds every method finished, real and replayed; if there are none, the seeds the
    # default finished and the methods finished on all of them. A partial check still
    # compares like with like.
    both = {(o.seed, o.method) for o in real} & {(o.seed, o.method) for o in replay}
    methods = methods_in(real)
    seeds = sorted(s for s in {o.seed for o in real} if all((s, m) in both for m in methods))
    if not seeds and both:
        # The seeds on which the most methods finished, and the methods finished on all.
        finished = {s: sum((s, m) in both for m in methods) for s, _ in both}
        most = max(finished.values())
        seeds = sorted(s for s, n in finished.items() if n == most)
        methods = [m for m in methods if all((s, m) in both for s in seeds)]
    real = [o for o in real if o.seed in seeds]
    replay = [o for o in replay if o.seed in seeds]
    real_means = [mean_best(real, m) for m in methods]
    replay_means = [mean_best(replay, m) for m in methods]
    real_rank = pd.Series(real_means).rank(method="min").astype(int).tolist()
    replay_rank = pd.Series(replay_means).rank(method="min").astype(int).tolist()
    frame = pd.DataFrame(
        {
            "method": methods,
            "real training (mean ± std)": [
                mean_std(list(_bests(real, m).values())) for m in methods
            ],
            "rank (real)": [str(r) for r in real_rank],
            "replayed curves (mean ± std)": [
                mean_std(list(_bests(replay, m).values())) for m in methods
            ],
            "rank (replay)": [str(r) for r in replay_rank],
            "s per search (real)": [
                f"{np.mean([o.seconds for o in real if o.method == m]):.0f}" for m in methods
            ],
        }
    )
    rho = float(spearmanr(real_means, replay_means).statistic) if len(methods) > 2 else math.nan
    return frame, rho, seeds
