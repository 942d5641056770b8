"""Reports from a real finished search, read from its oracle.json."""

import csv

import pytest
from PIL import Image

from kt_predictive import PredictiveSearch
from kt_predictive.report import SearchSummary, main, write_report

from tiny_problem import SEARCH, build_model, regression_data


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    directory = tmp_path_factory.mktemp("report")
    tuner = PredictiveSearch(build_model, directory=directory, project_name="tiny", **{**SEARCH, "seed": 3})
    x, y = regression_data()
    tuner.search(x, y, batch_size=32, verbose=0)
    return directory / "tiny", tuner.oracle


def test_report_files_from_the_state_file(project, tmp_path):
    project_dir, oracle = project
    paths = write_report(SearchSummary.from_project(project_dir), tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["loss_by_value.png", "predicted_loss.png", "probabilities.png", "records.csv", "top_k_counts.png"]
    for path in paths:
        if path.suffix == ".png":
            width, height = Image.open(path).size
            assert width > 300 and height > 200
    with open(tmp_path / "records.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["trial_id"] for row in rows] == [r["trial_id"] for r in oracle.records()]
    assert {"units", "opt", "lr", "window_1", "window_2", "final", "source"} <= set(rows[0])


def test_summary_matches_the_oracle(project):
    project_dir, oracle = project
    summary = SearchSummary.from_project(project_dir)
    assert summary.records == oracle.records()
    assert summary.fixed == {name: (oracle.fixed_values[name], oracle.fixed_iterations[name]) for name in oracle.fixed_values}
    assert summary.best_real(1)[0]["values"] == oracle.get_best_trials()[0].hyperparameters.values
    assert summary.thresholds == {"units": 1.0, "opt": 1.0, "lr": 2 / 3}


def test_command_line(project, tmp_path, capsys):
    project_dir, _ = project
    main([str(project_dir), "--out", str(tmp_path / "out")])
    assert "probabilities.png" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="pass the folder of a search"):
        main([str(tmp_path / "nothing")])
