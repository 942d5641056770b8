"""The report of one run of the method: ``report.md``, its figures and ``summary.json``.

It answers, at a glance: did the search find a better network than the published ones
(final mean loss and ADD recall, same budget, same data), how the search got there
(probability trends, predicted losses, fixed values), and how far the predictor can be
trusted (predicted vs real loss of the top-K, Kendall tau, the predictor's error).
"""

from __future__ import annotations

import datetime
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import matplotlib

from aae.errors import AAEError, MissingFileError

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import kendalltau

from aae.data.training_set import TrainingData
from aae.net.configs import SEARCH_SPACE
from aae.pose.evaluate import PoseEvaluation
from aae.visualize import save_reconstructions
from kt_predictive import SearchError
from kt_predictive.decisions import report_test_size
from kt_predictive.records import RecordBook, training_steps
from kt_predictive.report import SearchSummary, write_report
from kt_predictive.storage import write_json


@dataclass(frozen=True, eq=False)
class NetworkResult:
    """One fully trained network of a run and how well it estimates poses.

    Attributes:
        name: "searched best", "Sundermeyer", "BOP" or "trial <id>".
        kind: "top-K", "phase 1" or "benchmark".
        config: Its nine hyperparameters.
        model: The trained autoencoder.
        final_mean_loss: Mean training loss over the last final_window steps (inf if it
            diverged).
        seconds: Training time.
        evaluation: Pose errors and ADD(-S) recall on the test set.
    """

    name: str
    kind: str
    config: dict
    model: keras.Model
    final_mean_loss: float
    seconds: float
    evaluation: PoseEvaluation


def _value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))


def _config_cells(config: dict) -> str:
    return " | ".join(_value(config[name]) for name in SEARCH_SPACE)


CONFIG_HEADER = " | ".join(SEARCH_SPACE)
CONFIG_RULE = " | ".join("---" for _ in SEARCH_SPACE)


#: Kendall's tau of fewer pairs says nothing: with two it can only be +1 or -1.
MIN_TAU_POINTS = 3
#: A network whose reconstructions vary less than this across inputs (standard deviation
#: over the inputs, averaged over pixels, of images in [0, 1]) outputs one image whatever it
#: sees: it has collapsed to the mean target, and its loss says nothing about poses.
COLLAPSE_SPREAD = 0.01


def output_spread(model: keras.Model, inputs: np.ndarray) -> float:
    """How much ``model``'s reconstructions of ``inputs`` differ from one input to another:
    the standard deviation across the inputs, averaged over pixels and channels."""
    outputs = np.asarray(model.predict(inputs, verbose=0), dtype=np.float64)
    return float(outputs.std(axis=0).mean())


def is_collapsed(spread: float) -> bool:
    """Whether a network with this :func:`output_spread` gives the same output for any input."""
    return spread < COLLAPSE_SPREAD


def collapse_note(spreads: dict[str, float]) -> list[str]:
    """Report lines that flag every collapsed network among ``{name: output_spread}``
    (none if no network collapsed)."""
    collapsed = [name for name, spread in spreads.items() if is_collapsed(spread)]
    if not collapsed:
        return []
    return [
        "",
        f"**Collapsed: {', '.join(collapsed)}.** "
        + ("It outputs" if len(collapsed) == 1 else "They output")
        + " the same image whatever the input (reconstructions of 8 training images vary by "
        + ", ".join(f"{spreads[name]:.4f}" for name in collapsed)
        + f" on average, below {COLLAPSE_SPREAD:g}): its loss is about that of the mean target, so "
        'being "searched best" by that loss means nothing, and its codes carry at most what little '
        "the encoder learnt before the decoder did (its rotation error above says how much). Train "
        "longer (the profile's full_steps) or with another learning rate; see the reconstructions "
        "below.",
    ]


def top_k_table(summary: SearchSummary) -> tuple[list[dict], float | None]:
    """The explored trials continued to the full budget, by predicted loss, and Kendall's tau
    between their predicted and real final losses (None with fewer than three)."""
    rows = sorted(
        (r for r in summary.records if r.role == "continuation" and r.is_real),
        key=lambda r: r.predicted,
    )
    if len(rows) < MIN_TAU_POINTS:
        return rows, None
    tau = kendalltau([r.predicted for r in rows], [r.real_final for r in rows]).statistic
    return rows, float(tau)


#: Below this many test networks per split, the mean of per-split R² is not shown.
MIN_R2_TEST_NETWORKS = 5


def predictor_table(report: dict, test_size: int) -> list[str]:
    """Markdown lines of the predictor's accuracy over random splits of phase 1.

    A split's R² divides by the spread of its test networks' losses; with fewer than
    ``MIN_R2_TEST_NETWORKS`` of them that spread is often tiny and the mean R² over splits
    means nothing, so the table then shows only the pooled R² (all test predictions
    together) and says why.
    """
    with_mean = test_size >= MIN_R2_TEST_NETWORKS
    header = (
        "| model | MAE | STD of MAE | mean R² | pooled R² |"
        if with_mean
        else "| model | MAE | STD of MAE | pooled R² |"
    )
    lines = [header, "|" + " --- |" * (header.count("|") - 1)]
    for name, scores in report.items():
        cells = [f"{scores['mae']:.5f}", f"{scores['mae_std']:.5f}"]
        if with_mean:
            cells.append(f"{scores['r2']:.3f}")
        cells.append(f"{scores['r2_pooled']:.3f}")
        lines.append(f"| {name.upper()} | " + " | ".join(cells) + " |")
    if not with_mean:
        lines += [
            "",
            f"Each split tests {test_size} networks: the R² of so few losses divides by their "
            "often tiny spread, "
            "so the mean R² over splits is not shown; the pooled R² scores all test predictions "
            "together.",
        ]
    return lines


def plot_loss_vs_recall(results: list[NetworkResult], path: Path) -> Path:
    """Final mean loss vs ADD recall of every fully trained network (the paper's Fig. 17)."""
    figure, ax = plt.subplots(figsize=(6.5, 4.5))
    styles = {
        "phase 1": ("tab:blue", "o"),
        "top-K": ("tab:orange", "o"),
        "benchmark": ("black", "s"),
    }
    for kind, (colour, marker) in styles.items():
        chosen = [r for r in results if r.kind == kind and math.isfinite(r.final_mean_loss)]
        if chosen:
            ax.scatter(
                [r.final_mean_loss for r in chosen],
                [100 * r.evaluation.recall for r in chosen],
                c=colour,
                marker=marker,
                label=kind,
                alpha=0.8,
            )
    for r in results:
        if r.kind == "benchmark" or r.name == "searched best":
            ax.annotate(
                r.name,
                (r.final_mean_loss, 100 * r.evaluation.recall),
                fontsize=8,
                xytext=(4, 4),
                textcoords="offset points",
            )
    ax.set_xlabel("final mean training loss")
    ax.set_ylabel(f"{results[0].evaluation.metric} recall (%)")
    ax.set_title("Reconstruction loss vs pose accuracy of every fully trained network")
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_run_report(
    out_dir: str | os.PathLike,
    target,
    profile,
    oracle,
    results: list[NetworkResult],
    data: TrainingData,
    elapsed_seconds: float,
) -> Path:
    """Writes report.md, its figures, records.csv and summary.json into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = SearchSummary.from_oracle(oracle)
    write_report(summary, out)
    plot_loss_vs_recall(results, out / "loss_vs_recall.png")
    by_name = {r.name: r for r in results}
    inputs, targets = data.batches(8, seed=12345, workers=0)[0]
    for name, file in (
        ("searched best", "reconstructions_best.png"),
        ("Sundermeyer", "reconstructions_sundermeyer.png"),
    ):
        result = by_name[name]
        save_reconstructions(
            result.model,
            inputs,
            targets,
            out / file,
            f"{name}: final mean loss {result.final_mean_loss:.5f}",
        )
    # Only the pictured networks keep their model (the runner drops the others to bound memory).
    spreads = {r.name: output_spread(r.model, inputs) for r in results if r.model is not None}
    top_k, tau = top_k_table(summary)
    metric = results[0].evaluation.metric
    records = summary.records
    # Phase 1's networks trained fully (a screened phase 1 continues its best to full_steps).
    n_initial = len(RecordBook.of(records).phase1_networks())
    n_explored = sum(r.role == "explore" for r in records)
    total_steps = training_steps(records)
    # Training time of every network the run trained, whichever invocation trained it (a
    # continuation's seconds include its parent's, counted once here).
    own = {r.trial_id: r.seconds for r in records}
    search_seconds = sum(
        r.seconds - (own.get(r.parent_id, 0.0) if r.parent_id else 0.0) for r in records
    )
    benchmark_seconds = sum(r.seconds for r in results if r.kind == "benchmark")

    lines = [
        f"# AAE architecture search: {target.name} ({profile.name} profile)",
        "",
        f"Object: {target.describe()}. Written {datetime.datetime.now():%Y-%m-%d %H:%M}; the run "
        "took "
        f"{_duration(elapsed_seconds)} (cached steps from earlier runs not counted).",
        "",
        "## Result",
        "",
        "The search's best network against the published ones, each trained for "
        f"{profile.search.full_steps} "
        f"steps on the same data; {metric} recall at {results[0].evaluation.threshold:g}·diameter "
        "on "
        f"{len(results[0].evaluation.errors)} test instances with ground-truth boxes.",
        "",
        f"| network | {CONFIG_HEADER} | final mean loss | {metric} recall | median rotation error "
        "| training time |",
        f"| --- | {CONFIG_RULE} | --- | --- | --- | --- |",
    ]
    for name in ("searched best", "Sundermeyer", "BOP"):
        r = by_name[name]
        label = f"{name} (collapsed)" if is_collapsed(spreads.get(name, math.inf)) else name
        lines.append(
            f"| {label} | {_config_cells(r.config)} | {r.final_mean_loss:.5f} | "
            f"{100 * r.evaluation.recall:.1f}% | "
            f"{np.median(r.evaluation.rotation_errors):.1f}° | {_duration(r.seconds)} |"
        )
    lines += collapse_note(
        {name: spreads[name] for name in ("searched best", "Sundermeyer", "BOP") if name in spreads}
    )
    lines += [
        "",
        "![final loss vs recall](loss_vs_recall.png)",
        "",
        "## The search",
        "",
        f"{n_initial} configurations trained fully, {n_explored} explored to "
        f"{profile.search.early_steps} steps, "
        f"{len(top_k)} of them finished to {profile.search.full_steps}: {total_steps} optimizer "
        "steps in all "
        f"({total_steps / profile.search.full_steps:.1f} full trainings). Reward: "
        f"{profile.search.reward}"
        + (f" (beta {profile.search.beta:g})" if profile.search.reward == "exp" else "")
        + ".",
        "",
    ]
    if summary.fixed:
        fixed = ", ".join(
            f"{name} = {_value(value)} at iteration {iteration}"
            for name, (value, iteration) in sorted(
                summary.fixed.items(), key=lambda item: item[1][1]
            )
        )
        lines += [f"Values fixed: {fixed}.", ""]
    else:
        lines += ["No value reached its threshold.", ""]
    lines += [
        "![probabilities](probabilities.png)",
        "",
        "![predicted loss per iteration](predicted_loss.png)",
        "",
        "![final loss per value](loss_by_value.png)",
        "",
        "![values among the best](top_k_counts.png)",
        "",
        "## Top-K: predicted vs real final loss",
        "",
        f"| trial | {CONFIG_HEADER} | predicted | real |",
        f"| --- | {CONFIG_RULE} | --- | --- |",
    ]
    lines += [
        f"| {r.trial_id} | {_config_cells(r.values)} | {r.predicted:.5f} | {r.real_final:.5f} |"
        for r in top_k
    ]
    lines += [
        "",
        f"Kendall τ between predicted and real: {tau:.3f}"
        if tau is not None
        else f"Kendall τ needs {MIN_TAU_POINTS} or more finished top-K networks "
        f"({len(top_k)} here).",
        "",
    ]
    lines += ["## Predictor", ""]
    report = summary.predictor_report
    if report:
        n_networks = len(RecordBook.of(summary.records).phase1_networks())
        test_size = report_test_size(n_networks)
        lines += [
            f"The {n_networks} phase-1 trials, {profile.search.report_splits} random train/test "
            f"splits with {test_size} "
            "test networks each (the paper's Table 2 protocol: 100 networks, 20 tested per split).",
            "",
        ]
        lines += predictor_table(report, test_size)
    else:
        why = summary.predictor_report_missing or "too few phase-1 trials"
        lines.append(f"No predictor report: {why}.")
    lines += [
        "",
        "## Reconstructions",
        "",
        "Augmented input, reconstruction and target of the same eight training images.",
        "",
        "![best](reconstructions_best.png)",
        "",
        "![Sundermeyer](reconstructions_sundermeyer.png)",
        "",
        "## Settings",
        "",
        "```",
        profile.describe(),
        "```",
        "",
        "Per-trial data: [records.csv](records.csv); every number above: "
        "[summary.json](summary.json).",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    write_json(
        out / "summary.json",
        {
            "object": target.name,
            "object_description": target.describe(),
            "profile": profile.name,
            "written": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
            "cpu_cores": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "elapsed_seconds": elapsed_seconds,
            "training_seconds": search_seconds + benchmark_seconds,
            "total_steps": total_steps,
            "search": {
                "initial": n_initial,
                "explored": n_explored,
                "finished": len(top_k),
                "full_steps": profile.search.full_steps,
                "early_steps": profile.search.early_steps,
                "reward": profile.search.reward,
                "beta": profile.search.beta,
                "thresholds": profile.search.thresholds,
            },
            "test_instances": len(results[0].evaluation.errors),
            "threshold": results[0].evaluation.threshold,
            "networks": [
                {
                    "name": r.name,
                    "kind": r.kind,
                    "config": r.config,
                    "final_mean_loss": r.final_mean_loss
                    if math.isfinite(r.final_mean_loss)
                    else None,
                    "recall": r.evaluation.recall,
                    "metric": r.evaluation.metric,
                    "median_rotation_error": float(np.median(r.evaluation.rotation_errors)),
                    "seconds": r.seconds,
                    # None: the network's model was not kept, so it was not checked.
                    "output_spread": spreads.get(r.name),
                    "collapsed": is_collapsed(spreads[r.name]) if r.name in spreads else None,
                }
                for r in results
            ],
            "top_k": [
                {"trial_id": r.trial_id, "predicted": r.predicted, "real": r.real_final}
                for r in top_k
            ],
            "kendall_tau": tau,
            "fixed": {
                name: {"value": value, "iteration": iteration}
                for name, (value, iteration) in summary.fixed.items()
            },
            "predictor_report": report,
        },
    )
    return out / "report.md"


#: The README block that ``python -m aae.report`` rewrites from a run's summary.json.
README_START = "<!-- demo-result:start -->"
README_END = "<!-- demo-result:end -->"
#: Where the README's figures of the demo are copied to (relative to the README).
README_FIGURES = {
    "probabilities.png": "docs/demo_probabilities.png",
    "reconstructions_best.png": "docs/demo_reconstructions.png",
}


def _config_short(config: dict) -> str:
    return (
        f"NK {config['NK1']}/{config['NK2']}/{config['NK3']}/{config['NK4']}, KE {config['KE']}, "
        f"KD {config['KD']}, "
        f"{config['OPT']}, MB {config['MB']}, LR {_value(config['LR'])}"
    )


def _compare(best: dict, other: dict) -> str:
    """How the searched best compares with one benchmark network, in plain words."""
    loss = "lower" if best["final_mean_loss"] < other["final_mean_loss"] else "not lower"
    if best["recall"] > other["recall"]:
        recall = "higher"
    elif best["recall"] == other["recall"]:
        recall = "the same"
    else:
        recall = "lower"
    error = (
        "smaller"
        if best["median_rotation_error"] < other["median_rotation_error"]
        else "not smaller"
    )
    return (
        f"{loss} final loss, {recall} {best['metric']} recall and {error} median rotation error "
        f"than {other['name']}"
    )


def demo_markdown(summary: dict, figures: dict[str, str]) -> str:
    """The README's description of one run, from its ``summary.json`` alone.

    Args:
        summary: the parsed summary.json of ``write_run_report``.
        figures: report file name -> path the README links (see ``README_FIGURES``).
    """
    networks = {n["name"]: n for n in summary["networks"]}
    best = networks["searched best"]
    metric = best["metric"]
    search = summary["search"]
    written = summary["written"][:10]
    lines = [
        f"What `make demo` printed into its report on {written} ({summary['object_description']}; "
        f"{summary['cpu_cores']} CPU cores). Training every network of the run (search and "
        "benchmarks, "
        f"{summary['total_steps']} search steps) took {_duration(summary['training_seconds'])} in "
        "all; the "
        f"invocation that wrote the report took {_duration(summary['elapsed_seconds'])} (a rerun "
        "reuses "
        "every trained network):",
        "",
        f"| network | configuration | final mean loss | {metric} recall "
        f"({summary['test_instances']} test instances) | "
        "median rotation error | training time |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in ("searched best", "Sundermeyer", "BOP"):
        n = networks[name]
        loss = "diverged" if n["final_mean_loss"] is None else f"{n['final_mean_loss']:.4f}"
        lines.append(
            f"| {name} | {_config_short(n['config'])} | {loss} | {100 * n['recall']:.1f}% | "
            f"{n['median_rotation_error']:.1f}° | {_duration(n['seconds'])} |"
        )
    fixed = sorted(summary["fixed"].items(), key=lambda item: item[1]["iteration"])
    fixed_text = (
        "; values fixed: "
        + ", ".join(
            f"{name} = {_value(f['value'])} at iteration {f['iteration']}" for name, f in fixed
        )
        if fixed
        else "; no value reached its threshold"
    )
    lines += [
        "",
        f"The searched best has {_compare(best, networks['Sundermeyer'])}, and "
        f"{_compare(best, networks['BOP'])} "
        f"(all trained for {search['full_steps']} steps on the same data; {metric} at "
        f"{summary['threshold']:g}·diameter, ground-truth boxes). The search: {search['initial']} "
        "configurations "
        f"trained fully, {search['explored']} explored to {search['early_steps']} steps, "
        f"{search['finished']} "
        f"continued from their checkpoints to {search['full_steps']}{fixed_text}.",
        "",
    ]
    if "probabilities.png" in figures:
        lines += [
            "Each value's probability after phase 1 and at every exploration iteration; dotted: "
            "its fixing "
            "threshold; red: where it got fixed:",
            "",
            "![probabilities of every value of every "
            f"hyperparameter]({figures['probabilities.png']})",
            "",
        ]
    if "reconstructions_best.png" in figures:
        lines += [
            "Augmented inputs, the searched best network's reconstructions, and the targets:",
            "",
            "![reconstructions of the searched best "
            f"network]({figures['reconstructions_best.png']})",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def update_readme(report_dir: str | os.PathLike, readme: str | os.PathLike) -> Path:
    """Rewrites the README's demo block (between ``README_START`` and ``README_END``) from
    ``report_dir/summary.json`` and copies the run's figures next to it (``README_FIGURES``).

    Raises:
        FileNotFoundError: the report has no summary.json (the run has not finished).
        ValueError: the README lacks the two markers, in order.
    """
    import json
    import shutil

    from kt_predictive.storage import atomic_write

    report_dir, readme = Path(report_dir), Path(readme)
    summary_path = report_dir / "summary.json"
    if not summary_path.is_file():
        raise MissingFileError(f"{summary_path} does not exist: run the demo first (make demo)")
    text = readme.read_text()
    first, last = text.find(README_START), text.find(README_END)
    if first == -1 or last < first:
        raise AAEError(
            f"{readme} needs the lines {README_START} and {README_END}, in that order, around the "
            "demo block"
        )
    figures = {}
    for name, target in README_FIGURES.items():
        if (report_dir / name).is_file():
            (readme.parent / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(report_dir / name, readme.parent / target)
            figures[name] = target
    block = demo_markdown(json.loads(summary_path.read_text()), figures)
    data = (text[: first + len(README_START)] + "\n" + block + text[last:]).encode()
    atomic_write(readme, lambda file: file.write(data))
    return readme


def main(argv: list[str] | None = None) -> int:
    """``python -m aae.report REPORT_DIR --readme README.md``: the README block of a run."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m aae.report", description=update_readme.__doc__.split("\n\n")[0]
    )
    parser.add_argument("report_dir", help="a run's report folder, e.g. runs/ape-quick/report")
    parser.add_argument(
        "--readme", default="README.md", help="the README to update (default README.md)"
    )
    args = parser.parse_args(argv)
    try:
        path = update_readme(args.report_dir, args.readme)
    except (AAEError, SearchError) as error:
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return 2
    print(f"updated {path} from {args.report_dir}/summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
