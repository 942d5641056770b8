"""Plots and a CSV from a finished or running search, read from its ``oracle.json``.

- ``probabilities.png``: the probability of every value of every hyperparameter over the
  exploration iterations (the paper's Figs. 6-8, 12), with the uniform baseline, the fixing
  threshold and the iteration where a value got fixed;
- ``predicted_loss.png``: the predicted final loss of each exploration trial, with the
  iterations at which values got fixed (Figs. 9-11);
- ``loss_by_value.png``: box plots of the final loss per value, the real losses of fully
  trained trials and the predicted ones of explored trials side by side;
- ``top_k_counts.png``: how often each value occurs among the best fully trained trials;
- ``records.csv``: one row per trial, with its training seconds;
- ``README.txt``: what the folder holds and, for a search that has not got that far (or
  crashed in phase 1), which files are missing and why.

Command line: ``kt-predictive-report PROJECT_DIR [--out DIR]``; a missing or unreadable
search folder ends it with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from kt_predictive.errors import SearchError
from kt_predictive.records import RecordBook, TrialRecord, read_search

#: Exit status of a report stopped by a missing or unreadable search folder (as argparse's).
INPUT_ERROR_STATUS = 2


@dataclass(frozen=True)
class SearchSummary:
    """What the reports need from a search: its ``oracle.json`` and its trial records.

    ``records`` are the oracle's :class:`~kt_predictive.records.TrialRecord` objects, as
    ``PredictiveOracle.records()`` returns them. ``predictor_report_missing`` says why
    ``predictor_report`` is ``None`` (known for a summary of a live oracle only).
    """

    phase: str
    grids: dict[str, list]
    records: list[TrialRecord]
    history: list[dict]
    fixed: dict[str, tuple[object, int]]
    thresholds: dict[str, float]
    top_k: int
    predictor_report: dict | None
    initial_trials: int | None = None
    predictor_report_missing: str | None = None

    @classmethod
    def from_state(cls, state: dict, records: list[TrialRecord]) -> SearchSummary:
        """The summary of an oracle state (``PredictiveOracle.get_state()`` or its file) and
        the search's records; the only place that knows the layout of the state."""
        saved = state["predictive"]
        return cls(
            phase=saved["phase"],
            grids=saved["grids"],
            records=list(records),
            history=saved["history"],
            fixed={name: (value, iteration) for name, (value, iteration) in saved["fixed"].items()},
            thresholds=saved["thresholds"],
            top_k=saved["top_k"],
            predictor_report=saved["predictor_report"],
            initial_trials=saved.get("settings", {}).get("initial_trials"),
        )

    @classmethod
    def from_project(cls, project_dir: str | Path) -> SearchSummary:
        """Reads the search in ``project_dir`` (keras-tuner's ``directory/project_name``)."""
        snapshot = read_search(project_dir)
        return cls.from_state({"predictive": snapshot.state}, list(snapshot.records.values()))

    @classmethod
    def from_oracle(cls, oracle) -> SearchSummary:
        """The summary of a live ``PredictiveOracle``."""
        summary = cls.from_state(oracle.get_state(), oracle.records())
        # The oracle computes its predictor report on first request, not in its state; a
        # summary without one says why itself, so the oracle's warning is not repeated.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = oracle.predictor_report
        why = str(caught[-1].message) if report is None and caught else None
        return dataclasses.replace(summary, predictor_report=report, predictor_report_missing=why)

    def explored(self) -> list[TrialRecord]:
        """Exploration trials in iteration order."""
        return sorted((r for r in self.records if r.role == "explore"), key=lambda r: r.iteration)

    def best_real(self, k: int | None = None) -> list[TrialRecord]:
        """Completed trials with a real (measured) final loss, best first."""
        real = sorted((r for r in self.records if r.is_real), key=lambda r: r.real_final)
        return real[: k if k is not None else len(real)]


def _subplots(n: int, size: float = 3.2):
    columns = min(3, n)
    rows = math.ceil(n / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(size * 1.4 * columns, size * rows), squeeze=False
    )
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


def _whole_numbers(axis) -> None:
    """Ticks at whole numbers only: iterations and counts have no fractions."""
    axis.set_major_locator(MaxNLocator(integer=True))


def fixings_by_iteration(summary: SearchSummary) -> dict[int, list[str]]:
    """``{iteration: ["name=value", ...]}``: the values fixed at each iteration, in order.

    Several values often get fixed at the same iteration (with few phase-1 trials, most at
    iteration 0); the plots label each iteration once instead of stacking one label per
    value on the same spot.
    """
    grouped: dict[int, list[str]] = {}
    for name, (value, iteration) in sorted(
        summary.fixed.items(), key=lambda item: (item[1][1], item[0])
    ):
        grouped.setdefault(iteration, []).append(f"{name}={_label(value)}")
    return grouped


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
        _whole_numbers(ax.xaxis)
        ax.legend(fontsize=6, loc="upper left")
    axes[0].set_ylabel("probability")
    return _save(figure, path)


def plot_predicted_losses(summary: SearchSummary, path: Path) -> Path:
    """Predicted final loss per exploration iteration, with the iterations of fixing.

    One dashed line per iteration at which values got fixed; the legend (outside the plot,
    one entry per such iteration) names the values, so labels never overlap however many
    values are fixed at once.
    """
    explored = [r for r in summary.explored() if r.predicted is not None]
    figure, ax = plt.subplots(figsize=(9, 4))
    ax.plot(
        [r.iteration for r in explored],
        [r.predicted for r in explored],
        ".-",
        lw=0.8,
        label="predicted final loss",
    )
    colours = plt.get_cmap("autumn")
    fixings = fixings_by_iteration(summary)
    for k, (iteration, labels) in enumerate(fixings.items()):
        ax.axvline(
            iteration,
            color=colours(k / max(1, len(fixings))),
            lw=1,
            ls="--",
            label=f"fixed at {iteration}: " + ", ".join(labels),
        )
    failed = [r for r in summary.explored() if r.failed]
    if failed:
        # A failed trial has no loss: marked at the top of the plot.
        ax.plot(
            [r.iteration for r in failed],
            [0.97] * len(failed),
            "x",
            color="black",
            label="failed",
            transform=ax.get_xaxis_transform(),
        )
    screened = [r for r in summary.explored() if r.screened_out]
    if screened:
        # Stopped at a screening rung: no prediction; marked at the bottom of the plot.
        ax.plot(
            [r.iteration for r in screened],
            [0.03] * len(screened),
            "|",
            color="grey",
            label=f"screened out at a rung ({len(screened)})",
            transform=ax.get_xaxis_transform(),
        )
    iterations = [r.iteration for r in summary.explored() if r.iteration is not None]
    if iterations:
        ax.set_xlim(min(iterations) - 0.5, max(iterations) + 0.5)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_xlabel("iteration")
    _whole_numbers(ax.xaxis)
    ax.set_ylabel("predicted final loss")
    ax.set_title("Exploration: predicted final loss of each sampled configuration")
    return _save(figure, path)


def plot_loss_by_value(summary: SearchSummary, path: Path) -> Path:
    """Box plots of the final loss per value: real losses and predicted ones side by side.

    A fully trained trial has a real final loss, an explored one only a prediction; the two
    are different measurements and get separate boxes (blue: real, orange: predicted).
    """
    losses = (
        (
            "tab:blue",
            "real (trained fully)",
            [(r.values, r.real_final) for r in summary.records if r.is_real],
        ),
        (
            "tab:orange",
            "predicted (explored)",
            [(r.values, r.predicted) for r in summary.records if r.is_predicted_only],
        ),
    )
    figure, axes = _subplots(len(summary.grids))
    for ax, (name, values) in zip(axes, summary.grids.items(), strict=True):
        for offset, (colour, label, pairs) in zip((-0.18, 0.18), losses, strict=True):
            groups = [
                [loss for config, loss in pairs if config.get(name) == value] for value in values
            ]
            shown = [(j, group) for j, group in enumerate(groups) if group]
            if not shown:
                continue
            parts = ax.boxplot(
                [group for _, group in shown],
                positions=[j + offset for j, _ in shown],
                widths=0.3,
                showfliers=False,
                patch_artist=True,
            )
            for box in parts["boxes"]:
                box.set(facecolor=colour, alpha=0.5)
            parts["boxes"][0].set_label(label)
        ax.set_xticks(range(len(values)), [_label(v) for v in values], fontsize=7)
        ax.set_xlim(-0.6, len(values) - 0.4)
        ax.set_title(name, fontsize=9)
    axes[0].set_ylabel("final loss")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(handles, labels, fontsize=6)
    return _save(figure, path)


def plot_top_k_counts(summary: SearchSummary, path: Path) -> Path:
    """How often each value occurs among the best fully trained trials."""
    best = summary.best_real(summary.top_k or None)
    figure, axes = _subplots(len(summary.grids))
    for ax, (name, values) in zip(axes, summary.grids.items(), strict=True):
        counts = [sum(r.values.get(name) == value for r in best) for value in values]
        ax.bar(range(len(values)), counts)
        ax.set_xticks(range(len(values)), [_label(v) for v in values], fontsize=7)
        _whole_numbers(ax.yaxis)
        ax.set_title(name, fontsize=9)
    axes[0].set_ylabel(f"count among the best {len(best)}")
    return _save(figure, path)


#: Every field of a record but the configuration and the window means, which get one
#: column each: trial_id, role, ..., real_final, predicted, status, steps, seconds, ...
CSV_COLUMNS = tuple(
    f.name for f in dataclasses.fields(TrialRecord) if f.name not in ("values", "early")
)


def write_records_csv(summary: SearchSummary, path: Path) -> Path:
    """One row per trial: its outcome, training seconds, hyperparameters and early window means."""
    n_windows = max((len(r.early) for r in summary.records), default=0)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            [*CSV_COLUMNS, *summary.grids, *(f"window_{i + 1}" for i in range(n_windows))]
        )
        for r in summary.records:
            writer.writerow(
                [
                    *(getattr(r, c) for c in CSV_COLUMNS),
                    *(r.values.get(n) for n in summary.grids),
                    *r.early,
                ]
            )
    return path


def report_notes(summary: SearchSummary) -> list[str]:
    """What a report of ``summary`` holds, and for each plot it lacks, why."""
    records = summary.records
    done = RecordBook.of(records).phase1_networks()
    failed = [r for r in records if r.failed]
    running = [r for r in records if r.running]
    planned = f" of {summary.initial_trials}" if summary.initial_trials is not None else ""
    drawn = [r for r in records if r.role == "initial"]  # a screened phase 1 draws more
    notes = [
        f"Search phase: {summary.phase}. {len(records)} trials: {len(drawn)} phase-1 "
        f"configurations drawn, {len(done)}{planned} of them trained fully; "
        f"{len(failed)} failed, {len(running)} running or interrupted.",
        "records.csv: one row per trial (role, status, real and predicted final loss, steps, "
        "training "
        "seconds, why it failed, hyperparameters, window means).",
    ]
    if not summary.history:
        why = (
            "the search has not finished phase 1 (its networks trained fully): the "
            "probabilities, "
            "and with them the exploration, start after it"
        )
        if failed or running:
            why += (
                "; it stopped (or crashed) there - the failed and unfinished trials are in "
                "records.csv, "
                "the error in the search's own output; run the same search again to continue it"
            )
        notes.append(f"Missing probabilities.png, predicted_loss.png and loss_by_value.png: {why}.")
    else:
        notes.append(
            "probabilities.png, predicted_loss.png (values fixed per iteration in the legend), "
            "loss_by_value.png "
            "(real and predicted final losses in separate boxes)."
        )
    if summary.predictor_report_missing:
        notes.append(f"No predictor report: {summary.predictor_report_missing}.")
    if summary.best_real():
        notes.append("top_k_counts.png: values among the best fully trained trials.")
    else:
        notes.append("Missing top_k_counts.png: no trial has a real final loss yet.")
    return notes


def write_report(summary: SearchSummary, out_dir: str | Path) -> list[Path]:
    """Writes every plot the search's progress allows, the CSV and README.txt into ``out_dir``
    (README.txt says what is there and why the rest is missing); returns their paths."""
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
    notes = out / "README.txt"
    notes.write_text("\n".join(report_notes(summary)) + "\n")
    paths.append(notes)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``kt-predictive-report PROJECT_DIR [--out DIR]``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="kt-predictive-report", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("project_dir", help="the search folder: directory/project_name")
    parser.add_argument("--out", help="where to write (default: PROJECT_DIR/report)")
    args = parser.parse_args(argv)
    try:
        summary = SearchSummary.from_project(args.project_dir)
    except SearchError as error:
        # A wrong folder is a mistake in the input, not a bug: one line, no traceback.
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return INPUT_ERROR_STATUS
    out = Path(args.out) if args.out else Path(args.project_dir) / "report"
    paths = write_report(summary, out)
    print("\n".join(report_notes(summary)))
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
