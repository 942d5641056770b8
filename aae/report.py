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
from dataclasses import dataclass
from pathlib import Path

import keras
import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import kendalltau

from aae.configs import SEARCH_SPACE
from aae.data import TrainingData
from aae.evaluate import PoseEvaluation
from aae.visualize import save_reconstructions
from kt_predictive.oracle import report_test_size
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


def top_k_table(summary: SearchSummary) -> tuple[list[dict], float | None]:
    """The explored trials continued to the full budget, by predicted loss, and Kendall's tau
    between their predicted and real final losses (None with fewer than two)."""
    rows = sorted(
        (r for r in summary.records if r["phase"] == "finalize" and r["status"] == "complete"),
        key=lambda r: r["predicted"],
    )
    if len(rows) < 2:
        return rows, None
    tau = kendalltau([r["predicted"] for r in rows], [r["final"] for r in rows]).statistic
    return rows, float(tau)


def plot_loss_vs_recall(results: list[NetworkResult], path: Path) -> Path:
    """Final mean loss vs ADD recall of every fully trained network (the paper's Fig. 17)."""
    figure, ax = plt.subplots(figsize=(6.5, 4.5))
    styles = {"phase 1": ("tab:blue", "o"), "top-K": ("tab:orange", "o"), "benchmark": ("black", "s")}
    for kind, (colour, marker) in styles.items():
        chosen = [r for r in results if r.kind == kind and math.isfinite(r.final_mean_loss)]
        if chosen:
            ax.scatter([r.final_mean_loss for r in chosen], [100 * r.evaluation.recall for r in chosen],
                       c=colour, marker=marker, label=kind, alpha=0.8)
    for r in results:
        if r.kind == "benchmark" or r.name == "searched best":
            ax.annotate(r.name, (r.final_mean_loss, 100 * r.evaluation.recall), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
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
    for name, file in (("searched best", "reconstructions_best.png"), ("Sundermeyer", "reconstructions_sundermeyer.png")):
        result = by_name[name]
        save_reconstructions(result.model, inputs, targets, out / file,
                             f"{name}: final mean loss {result.final_mean_loss:.5f}")
    top_k, tau = top_k_table(summary)
    metric = results[0].evaluation.metric
    records = summary.records
    n_initial = sum(r["iteration"] is None for r in records)
    n_explored = sum(r["iteration"] is not None for r in records)
    total_steps = sum(r["steps"] for r in records)

    lines = [
        f"# AAE architecture search: {target.name} ({profile.name} profile)",
        "",
        f"Object: {target.describe()}. Written {datetime.datetime.now():%Y-%m-%d %H:%M}; the run took "
        f"{_duration(elapsed_seconds)} (cached steps from earlier runs not counted).",
        "",
        "## Result",
        "",
        f"The search's best network against the published ones, each trained for {profile.search.full_steps} "
        f"steps on the same data; {metric} recall at {results[0].evaluation.threshold:g}·diameter on "
        f"{len(results[0].evaluation.errors)} test instances with ground-truth boxes.",
        "",
        f"| network | {CONFIG_HEADER} | final mean loss | {metric} recall | median rotation error | training time |",
        f"| --- | {CONFIG_RULE} | --- | --- | --- | --- |",
    ]
    for name in ("searched best", "Sundermeyer", "BOP"):
        r = by_name[name]
        lines.append(
            f"| {name} | {_config_cells(r.config)} | {r.final_mean_loss:.5f} | {100 * r.evaluation.recall:.1f}% | "
            f"{np.median(r.evaluation.rotation_errors):.1f}° | {_duration(r.seconds)} |"
        )
    lines += [
        "",
        "![final loss vs recall](loss_vs_recall.png)",
        "",
        "## The search",
        "",
        f"{n_initial} configurations trained fully, {n_explored} explored to {profile.search.early_steps} steps, "
        f"{len(top_k)} of them finished to {profile.search.full_steps}: {total_steps} optimizer steps in all "
        f"({total_steps / profile.search.full_steps:.1f} full trainings). Reward: {profile.search.reward}"
        + (f" (beta {profile.search.beta:g})" if profile.search.reward == "exp" else "")
        + ".",
        "",
    ]
    if summary.fixed:
        fixed = ", ".join(f"{name} = {_value(value)} at iteration {iteration}"
                          for name, (value, iteration) in sorted(summary.fixed.items(), key=lambda item: item[1][1]))
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
    lines += [f"| {r['trial_id']} | {_config_cells(r['values'])} | {r['predicted']:.5f} | {r['final']:.5f} |" for r in top_k]
    lines += ["", f"Kendall τ between predicted and real: {tau:.3f}" if tau is not None else "Kendall τ needs two or more.", ""]
    lines += ["## Predictor", ""]
    report = summary.predictor_report
    if report:
        n_networks = sum(r["phase"] == "initial" and r["final"] is not None and r["status"] == "complete" for r in summary.records)
        test_size = report_test_size(n_networks)
        lines += [
            f"The {n_networks} phase-1 trials, {profile.search.report_splits} random train/test splits with {test_size} "
            "test networks each (the paper's Table 2 protocol: 100 networks, 20 tested per split).",
            "",
            "| model | MAE | STD of MAE | mean R² | pooled R² |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [f"| {name.upper()} | {s['mae']:.5f} | {s['mae_std']:.5f} | {s['r2']:.3f} | {s['r2_pooled']:.3f} |"
                  for name, s in report.items()]
        if test_size < 5:
            lines += [
                "",
                f"With {test_size} test networks, a split's R² divides by the spread of {test_size} losses, which is "
                "often tiny: the mean R² is then meaningless. Read the pooled R² (all test predictions together).",
            ]
    else:
        lines.append("Too few phase-1 trials for a report.")
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
        "Per-trial data: [records.csv](records.csv); every number above: [summary.json](summary.json).",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    write_json(
        out / "summary.json",
        {
            "object": target.name,
            "profile": profile.name,
            "elapsed_seconds": elapsed_seconds,
            "total_steps": total_steps,
            "networks": [
                {
                    "name": r.name,
                    "kind": r.kind,
                    "config": r.config,
                    "final_mean_loss": r.final_mean_loss if math.isfinite(r.final_mean_loss) else None,
                    "recall": r.evaluation.recall,
                    "metric": r.evaluation.metric,
                    "median_rotation_error": float(np.median(r.evaluation.rotation_errors)),
                    "seconds": r.seconds,
                }
                for r in results
            ],
            "top_k": [{"trial_id": r["trial_id"], "predicted": r["predicted"], "real": r["final"]} for r in top_k],
            "kendall_tau": tau,
            "fixed": {name: {"value": value, "iteration": iteration} for name, (value, iteration) in summary.fixed.items()},
            "predictor_report": report,
        },
    )
    return out / "report.md"
