"""Plots and a CSV from a finished or running search, read from its ``oracle.json``.

- ``probabilities.png``: the probability of every value of every hyperparameter over the
  exploration iterations (the paper's Figs. 6-8, 12), with the uniform baseline, the fixing
  threshold and the iteration where a value got fixed;
- ``predicted_loss.png``: the predicted final loss of each exploration trial, with the
  iterations at which values got fixed (Figs. 9-11);
- ``loss_by_value.png``: box plots of the final loss of all trials per value;
- ``top_k_counts.png``: how often each value occurs among the best fully trained trials;
- ``records.csv``: one row per trial.

Command line: ``kt-predictive-report PROJECT_DIR [--out DIR]``.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt

from kt_predictive.storage import read_json


@dataclass(frozen=True)
class SearchSummary:
    """What the reports need from a search, as stored in its ``oracle.json``."""

    phase: str
    grids: dict[str, list]
    records: list[dict]
    history: list[dict]
    fixed: dict[str, tuple[object, int]]
    thresholds: dict[str, float]
    top_k: int
    predictor_report: dict | None

    @classmethod
    def from_state(cls, state: dict) -> SearchSummary:
        saved = state["predictive"]
        return cls(
            phase=saved["phase"],
            grids=saved["grids"],
            records=list(saved["records"].values()),
            history=saved["history"],
            fixed={name: (value, iteration) for name, (value, iteration) in saved["fixed"].items()},
            thresholds=saved["thresholds"],
            top_k=saved["top_k"],
            predictor_report=saved["predictor_report"],
        )

    @classmethod
    def from_project(cls, project_dir: str | Path) -> SearchSummary:
        """Reads ``project_dir/oracle.json`` (keras-tuner's ``directory/project_name``)."""
        path = Path(project_dir) / "oracle.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist; pass the folder of a search (directory/project_name)"
            )
        return cls.from_state(read_json(path, "Reports need a readable search state."))

    @classmethod
    def from_oracle(cls, oracle) -> SearchSummary:
        """The summary of a live ``PredictiveOracle``."""
        return cls.from_state(oracle.get_state())

    def explored(self) -> list[dict]:
        """Exploration trials in iteration order."""
        return sorted((r for r in self.records if r["iteration"] is not None), key=lambda r: r["iteration"])

    def best_real(self, k: int | None = None) -> list[dict]:
        """Completed trials with a real final loss, best first."""
        real = [r for r in self.records if r["status"] == "complete" and r["source"] == "real"]
        return sorted(real, key=lambda r: r["final"])[: k if k is not None else len(real)]


def _subplots(n: int, size: float = 3.2):
    columns = min(3, n)
    rows = math.ceil(n / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(size * 1.4 * columns, size * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return figure, list(axes.flat[:n])


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _label(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def plot_probabilities(summary: SearchSummary, path: Path) -> Path:
    """Probability trend of every value of every hyperparameter over iterations."""
    figure, axes = _subplots(len(summary.grids))
    iterations = [entry["iteration"] for entry in summary.history]
    for ax, (name, values) in zip(axes, summary.grids.items(), strict=True):
        for j, value in enumerate(values):
            trend = [entry["probabilities"][name][j] for entry in summary.history]
            ax.plot(iterations, trend, label=_label(value), lw=1.5)
        ax.axhline(1 / len(values), color="black", ls="--", lw=1, label="uniform")
        ax.axhline(summary.thresholds[name], color="grey", ls=":", lw=1, label="threshold")
        if name in summary.fixed:
            value, iteration = summary.fixed[name]
            ax.axvline(iteration, color="red", lw=1)
            ax.set_title(f"{name} (fixed to {_label(value)} at {iteration})", fontsize=9)
        else:
            ax.set_title(name, fontsize=9)
        ax.set_ylim(0, 1)
        ax.set_xlabel("iteration")
        ax.legend(fontsize=6, loc="upper left")
    axes[0].set_ylabel("probability")
    return _save(figure, path)


def plot_predicted_losses(summary: SearchSummary, path: Path) -> Path:
    """Predicted final loss per exploration iteration, with the iterations of fixing."""
    explored = [r for r in summary.explored() if r["predicted"] is not None]
    figure, ax = plt.subplots(figsize=(8, 4))
    ax.plot([r["iteration"] for r in explored], [r["predicted"] for r in explored], ".-", lw=0.8)
    for name, (value, iteration) in sorted(summary.fixed.items(), key=lambda item: item[1][1]):
        ax.axvline(iteration, color="red", lw=0.8, ls="--")
        ax.annotate(f"{name}={_label(value)}", (iteration, 1), xycoords=("data", "axes fraction"),
                    rotation=90, va="top", ha="right", fontsize=7, color="red")
    failed = [r for r in summary.explored() if r["status"] == "failed"]
    if failed:
        ax.plot([r["iteration"] for r in failed], [r["final"] for r in failed], "x", color="black", label="failed (M)")
        ax.legend(fontsize=8)
    ax.set_xlabel("iteration")
    ax.set_ylabel("predicted final loss")
    ax.set_title("Exploration: predicted final loss of each sampled configuration")
    return _save(figure, path)


def plot_loss_by_value(summary: SearchSummary, path: Path) -> Path:
    """Box plot of the final loss (real or predicted) of every trial per value."""
    settled = [r for r in summary.records if r["final"] is not None and r["status"] != "running"]
    figure, axes = _subplots(len(summary.grids))
    for ax, (name, values) in zip(axes, summary.grids.items(), strict=True):
        groups = [[r["final"] for r in settled if r["values"].get(name) == value] for value in values]
        ax.boxplot(groups, showfliers=False)
        ax.set_xticks(range(1, len(values) + 1), [_label(v) for v in values], fontsize=7)
        ax.set_title(name, fontsize=9)
    axes[0].set_ylabel("final loss")
    return _save(figure, path)


def plot_top_k_counts(summary: SearchSummary, path: Path) -> Path:
    """How often each value occurs among the best fully trained trials."""
    best = summary.best_real(summary.top_k or None)
    figure, axes = _subplots(len(summary.grids))
    for ax, (name, values) in zip(axes, summary.grids.items(), strict=True):
        counts = [sum(r["values"].get(name) == value for r in best) for value in values]
        ax.bar(range(len(values)), counts)
        ax.set_xticks(range(len(values)), [_label(v) for v in values], fontsize=7)
        ax.set_title(name, fontsize=9)
    axes[0].set_ylabel(f"count among the best {len(best)}")
    return _save(figure, path)


CSV_COLUMNS = ("trial_id", "phase", "iteration", "status", "source", "final", "predicted", "steps", "diverged_at")


def write_records_csv(summary: SearchSummary, path: Path) -> Path:
    """One row per trial: its hyperparameters, early window means and outcome."""
    n_windows = max((len(r["early"]) for r in summary.records), default=0)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*CSV_COLUMNS, *summary.grids, *(f"window_{i + 1}" for i in range(n_windows))])
        for r in summary.records:
            writer.writerow(
                [*(r[c] for c in CSV_COLUMNS), *(r["values"].get(n) for n in summary.grids), *r["early"]]
            )
    return path


def write_report(summary: SearchSummary, out_dir: str | Path) -> list[Path]:
    """Writes every plot and the CSV into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_records_csv(summary, out / "records.csv")]
    if summary.history:  # probabilities exist once phase 1 is over
        paths += [
            plot_probabilities(summary, out / "probabilities.png"),
            plot_predicted_losses(summary, out / "predicted_loss.png"),
            plot_loss_by_value(summary, out / "loss_by_value.png"),
        ]
    if summary.best_real():
        paths.append(plot_top_k_counts(summary, out / "top_k_counts.png"))
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    """``kt-predictive-report PROJECT_DIR [--out DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project_dir", help="the search folder: directory/project_name")
    parser.add_argument("--out", help="where to write (default: PROJECT_DIR/report)")
    args = parser.parse_args(argv)
    summary = SearchSummary.from_project(args.project_dir)
    for path in write_report(summary, args.out or Path(args.project_dir) / "report"):
        print(path)


if __name__ == "__main__":
    main()
