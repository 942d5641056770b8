"""The whole method for one object at the tiny profile: search (all four phases), benchmark
networks, codebooks, ADD recall and the report, then a rerun that continues from the files."""

import json

import pytest
from PIL import Image

from aae.profiles import get_profile
from aae.search import main, run


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    run("ape", get_profile("tiny"), out)
    return out


def test_all_phases_and_every_network_evaluated(finished_run):
    state = json.loads((finished_run / "search" / "ape" / "oracle.json").read_text())["predictive"]
    assert state["phase"] == "done"
    records = list(state["records"].values())
    assert sum(r["phase"] == "initial" for r in records) == 4
    assert any(r["phase"] == "explore" and r["source"] == "predicted" for r in records)
    assert sum(r["phase"] == "finalize" for r in records) >= 1
    summary = json.loads((finished_run / "report" / "summary.json").read_text())
    names = [n["name"] for n in summary["networks"]]
    assert names[0] == "searched best" and {"Sundermeyer", "BOP"} <= set(names)
    for network in summary["networks"]:
        assert 0.0 <= network["recall"] <= 1.0 and network["metric"] == "ADD"
        assert network["final_mean_loss"] > 0 and network["seconds"] > 0
    assert summary["total_steps"] > 0 and summary["top_k"]


def test_report_files_present_and_not_empty(finished_run):
    report = finished_run / "report"
    text = (report / "report.md").read_text()
    for heading in ("## Result", "## The search", "## Top-K", "## Predictor", "## Reconstructions"):
        assert heading in text
    for name in (
        "probabilities.png",
        "predicted_loss.png",
        "loss_by_value.png",
        "top_k_counts.png",
        "reconstructions_best.png",
        "reconstructions_sundermeyer.png",
        "loss_vs_recall.png",
    ):
        assert f"({name})" in text
        width, height = Image.open(report / name).size
        assert width > 300 and height > 200
    assert len((report / "records.csv").read_text().splitlines()) > 5


def test_rerun_continues_from_the_files(finished_run, capsys):
    before = (finished_run / "search" / "ape" / "oracle.json").read_text()
    assert main(["--profile", "tiny", "--out", str(finished_run)], object_name="ape") == 0
    assert (finished_run / "search" / "ape" / "oracle.json").read_text() == before  # nothing retrained
    assert "report:" in capsys.readouterr().out


def test_other_settings_in_the_same_folder_are_refused(finished_run, capsys):
    status = main(["--profile", "tiny", "--out", str(finished_run), "--set", "search.full_steps=60"], object_name="ape")
    assert status == 2
    assert "holds a run with other settings" in capsys.readouterr().err
