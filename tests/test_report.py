"""Reports from a real finished search, read from its oracle.json."""

import csv
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import keras_tuner
import matplotlib.pyplot as plt
import pytest
from matplotlib.text import Text
from PIL import Image

from kt_predictive import report
from kt_predictive.records import TrialRecord, configuration
from kt_predictive.report import SearchSummary, main, report_notes, write_report

from tiny_problem import SEARCH, build_model, flat_search, regression_data


@pytest.fixture
def project(tiny_search):
    """The session's finished tiny search (conftest.py): its project folder and oracle."""
    tuner, directory = tiny_search
    return directory / "tiny", tuner.oracle


def test_report_files_from_the_state_file(project, tmp_path):
    project_dir, oracle = project
    paths = write_report(SearchSummary.from_project(project_dir), tmp_path)
    names = sorted(p.name for p in paths)
    assert names == [
        "README.txt",
        "loss_by_value.png",
        "predicted_loss.png",
        "probabilities.png",
        "records.csv",
        "top_k_counts.png",
    ]
    for path in paths:
        if path.suffix == ".png":
            width, height = Image.open(path).size
            assert width > 300 and height > 200
    with open(tmp_path / "records.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["trial_id"] for row in rows] == [r.trial_id for r in oracle.records()]
    assert {"units", "opt", "lr", "window_1", "window_2", "real_final", "predicted", "role"} <= set(
        rows[0]
    )


def test_summary_matches_the_oracle(project):
    project_dir, oracle = project
    summary = SearchSummary.from_project(project_dir)
    assert summary.records == oracle.records()
    assert summary.fixed == {
        name: (oracle.fixed_values[name], oracle.fixed_iterations[name])
        for name in oracle.fixed_values
    }
    assert summary.best_real(1)[0].values == configuration(
        oracle.get_best_trials()[0].hyperparameters.values
    )
    assert summary.thresholds == oracle.get_state()["predictive"]["thresholds"]


def test_command_line(project, tmp_path, capsys):
    project_dir, _ = project
    assert main([str(project_dir), "--out", str(tmp_path / "out")]) == 0
    assert "probabilities.png" in capsys.readouterr().out
    assert main([str(tmp_path / "nothing")]) == 2
    assert "pass the folder of a search" in capsys.readouterr().err


# --- What a reader of the report needs (issue 15, item 10) -----------------------------


@pytest.fixture
def figures(monkeypatch):
    """Every figure the report writes, by file name, kept open for inspection."""
    captured = {}

    def keep(figure, path):
        figure.canvas.draw()
        captured[Path(path).name] = figure
        return Path(path)

    monkeypatch.setattr(report, "_save", keep)
    yield captured
    for figure in captured.values():
        plt.close(figure)


def overlapping_texts(figure):
    """Pairs of visible, non-empty texts of ``figure`` whose boxes overlap on the canvas."""
    renderer = figure.canvas.get_renderer()
    texts = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [
        (a, b)
        for i, (a, box_a) in enumerate(boxes)
        for b, box_b in boxes[i + 1 :]
        if box_a.overlaps(box_b)
    ]


def all_fixed_at_once(summary):
    """``summary`` with every hyperparameter fixed at iteration 0, as a 10-trial phase 1 often
    does."""
    return dataclasses.replace(
        summary, fixed={name: (values[0], 0) for name, values in summary.grids.items()}
    )


def test_labels_of_values_fixed_at_the_same_iteration_do_not_overlap(project, tmp_path, figures):
    summary = all_fixed_at_once(SearchSummary.from_project(project[0]))
    write_report(summary, tmp_path)
    figure = figures["predicted_loss.png"]
    assert overlapping_texts(figure) == []
    shown = " ".join(t.get_text() for t in figure.findobj(Text))
    assert all(f"{name}=" in shown for name in summary.grids)


def test_iteration_and_count_axes_have_whole_ticks(project, tmp_path, figures):
    write_report(SearchSummary.from_project(project[0]), tmp_path)

    def whole(ticks):
        return all(float(t) == int(t) for t in ticks)

    for ax in figures["probabilities.png"].axes:
        if ax.get_visible():
            assert whole(ax.get_xticks()), ax.get_xticks()
    assert whole(figures["predicted_loss.png"].axes[0].get_xticks())
    for ax in figures["top_k_counts.png"].axes:
        if ax.get_visible():
            assert whole(ax.get_yticks()), ax.get_yticks()


def test_loss_by_value_keeps_real_and_predicted_losses_apart(project, tmp_path, figures):
    summary = SearchSummary.from_project(project[0])
    assert any(r.is_real for r in summary.records) and any(
        r.is_predicted_only for r in summary.records
    )
    write_report(summary, tmp_path)
    legend = figures["loss_by_value.png"].axes[0].get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == [
        "real (trained fully)",
        "predicted (explored)",
    ]


def test_records_csv_has_the_training_seconds(project, tmp_path):
    project_dir, oracle = project
    write_report(SearchSummary.from_project(project_dir), tmp_path)
    with open(tmp_path / "records.csv") as file:
        rows = list(csv.DictReader(file))
    assert [float(row["seconds"]) for row in rows] == pytest.approx(
        [r.seconds for r in oracle.records()]
    )
    assert all(float(row["seconds"]) > 0 for row in rows if row["status"] == "complete")


def test_a_search_that_crashed_in_phase_1_gets_an_explanation(tmp_path, capsys):
    builds = []

    def crashing(hp):
        builds.append(hp)
        if len(builds) == 3:  # the second trial: the first one finished
            raise keras_tuner.errors.FatalError("simulated crash")
        return build_model(hp)

    tuner = flat_search(
        crashing, directory=tmp_path, project_name="crashed", **{**SEARCH, "seed": 3}
    )
    x, y = regression_data()
    with pytest.raises(keras_tuner.errors.FatalError):
        tuner.search(x, y, batch_size=32, verbose=0)
    assert main([str(tmp_path / "crashed")]) == 0
    out = capsys.readouterr().out
    notes = (tmp_path / "crashed" / "report" / "README.txt").read_text()
    assert all(line in out for line in notes.splitlines())  # printed too, not only written
    assert "2 phase-1 configurations drawn, 1 of 5 of them trained fully" in notes
    assert "Missing probabilities.png, predicted_loss.png and loss_by_value.png" in notes
    assert "not finished phase 1" in notes and "run the same search again" in notes


TENSORFLOW_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IW]\d{4} \d\d:\d\d:)")


def test_a_missing_folder_is_one_line_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "kt_predictive.report", str(tmp_path / "nothing")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    # TensorFlow's own start-up lines (absl, oneDNN) are not ours to remove.
    lines = [
        line for line in result.stderr.strip().splitlines() if not TENSORFLOW_NOISE.match(line)
    ]
    assert len(lines) == 1 and lines[0].startswith("kt-predictive-report: error: "), lines
    assert "pass the folder of a search" in lines[0]


def test_report_notes_count_a_screened_phase_1_as_its_records_do():
    # A screened phase 1: 12 configurations drawn and screened, the best 3 continued to the
    # full budget. The notes once said "3 of 3 phase-1 trials complete".
    drawn = [
        TrialRecord(f"i{i}", {}, "initial", [0.5], status="complete", steps=8) for i in range(12)
    ]
    continued = [
        TrialRecord(
            f"c{i}",
            {},
            "continuation",
            [0.5],
            real_final=0.3,
            status="complete",
            steps=40,
            parent_id=f"i{i}",
        )
        for i in range(3)
    ]
    summary = SearchSummary(
        phase="explore",
        grids={},
        records=drawn + continued,
        history=[],
        fixed={},
        thresholds={},
        top_k=1,
        predictor_report=None,
        initial_trials=3,
    )
    first = report_notes(summary)[0]
    assert "15 trials: 12 phase-1 configurations drawn, 3 of 3 of them trained fully" in first
