"""The whole method for one object at the tiny profile: search (all four phases), benchmark
networks, codebooks, ADD recall and the report, then a rerun that continues from the files."""

import gc
import json
import weakref

import numpy as np
import pytest
from PIL import Image

import aae.net.hypermodel
import aae.net.model
import aae.report
from aae.profiles import get_profile
from aae.search import RunPaths, main, run
from kt_predictive.records import read_search, training_steps


class LiveModels:
    """Counts the AAE models alive at once: every build_aae call records how many built
    models are still reachable (after a garbage collection) plus the one being built, and
    so does the report, which runs while the pictured models are held."""

    def __init__(self) -> None:
        self.models: weakref.WeakSet = weakref.WeakSet()
        self.peak = 0
        self.builds = 0

    def _count(self, extra: int) -> None:
        gc.collect()
        self.peak = max(self.peak, len(self.models) + extra)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # The hypermodel builds with its own reference; NetworkSettings.build (training,
        # evaluation) looks build_aae up in aae.net.model when it builds.
        for module in (aae.net.hypermodel, aae.net.model):
            monkeypatch.setattr(module, "build_aae", self._counted(module.build_aae))
        write_run_report = aae.report.write_run_report

        def counted_report(*args, **kwargs):
            self._count(0)
            return write_run_report(*args, **kwargs)

        monkeypatch.setattr(aae.report, "write_run_report", counted_report)

    def _counted(self, build):
        def counted(*args, **kwargs):
            self._count(1)
            model = build(*args, **kwargs)
            self.models.add(model)
            self.builds += 1
            return model

        return counted


@pytest.fixture(scope="module")
def live_models():
    counter = LiveModels()
    with pytest.MonkeyPatch.context() as monkeypatch:
        counter.install(monkeypatch)
        yield counter


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, live_models):
    out = tmp_path_factory.mktemp("run")
    run("ape", get_profile("tiny"), out, stand_in=True)
    return out


@pytest.mark.slow  # the whole run of finished_run
def test_at_most_two_models_in_memory(finished_run, live_models):
    # A paper run fully trains 120 searched networks: holding each for the report would take
    # tens of GB. The run built many (search trials, reloads for evaluation, benchmarks)...
    assert live_models.builds >= 8
    # ...but never held more than two at once.
    assert live_models.peak <= 2


@pytest.mark.slow  # the whole run of finished_run
def test_all_phases_and_every_network_evaluated(finished_run):
    snapshot = read_search(finished_run / "search" / "ape")
    assert snapshot.phase == "done"
    records = list(snapshot.records.values())
    assert sum(r.role == "initial" for r in records) == 4
    assert any(r.role == "explore" and r.is_predicted_only for r in records)
    assert sum(r.role == "continuation" for r in records) >= 1
    summary = json.loads((finished_run / "report" / "summary.json").read_text())
    names = [n["name"] for n in summary["networks"]]
    assert names[0] == "searched best" and {"Sundermeyer", "BOP"} <= set(names)
    paths = RunPaths(finished_run)
    for network in summary["networks"]:
        assert network["metric"] == "ADD"
        assert network["final_mean_loss"] > 0 and network["seconds"] > 0
        # The recall is the share of test instances within 0.1 d, recomputed here from the
        # per-instance rotations and errors the evaluation kept.
        evaluation = json.loads(paths.evaluation(network["name"]).read_text())["evaluation"]
        instances = evaluation["instances"]
        assert len(instances) == len(evaluation["errors"]) > 0
        limit = evaluation["threshold"] * evaluation["diameter"]
        assert network["recall"] == pytest.approx(np.mean([i["error"] <= limit for i in instances]))
        for instance in instances:
            relative = np.asarray(instance["R_est"]).T @ np.asarray(instance["R_gt"])
            angle = np.degrees(np.arccos(np.clip((np.trace(relative) - 1) / 2, -1, 1)))
            assert angle == pytest.approx(instance["rotation_error"], abs=1e-3)
    best = min(r.real_final for r in records if r.is_real)
    assert summary["networks"][0]["final_mean_loss"] == pytest.approx(best)
    # Every fully trained network is evaluated, though the search kept the weights of only
    # search.keep_models of them (and the best finalized one): the others were evaluated
    # during the search, before their weights were deleted.
    real = [r for r in records if r.is_real]
    assert len(names) == len(real) + 2
    keep = get_profile("tiny").search.keep_models
    weights = list((finished_run / "search" / "ape").rglob("checkpoint.weights.h5"))
    assert keep <= len(weights) <= keep + 1 < len(real)
    assert summary["total_steps"] == training_steps(records) and summary["top_k"]


@pytest.mark.slow  # the whole run of finished_run
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


@pytest.mark.slow  # the whole run of finished_run
def test_rerun_continues_from_the_files(finished_run, capsys):
    before = (finished_run / "search" / "ape" / "oracle.json").read_text()
    assert (
        main(["--profile", "tiny", "--stand-in", "--out", str(finished_run)], object_name="ape")
        == 0
    )
    assert (
        finished_run / "search" / "ape" / "oracle.json"
    ).read_text() == before  # nothing retrained
    assert "report:" in capsys.readouterr().out


@pytest.mark.slow  # the whole run of finished_run
def test_other_settings_in_the_same_folder_are_refused(finished_run, capsys):
    status = main(
        ["--profile", "tiny", "--out", str(finished_run), "--set", "search.full_steps=60"],
        object_name="ape",
    )
    assert status == 2
    assert "holds a run with other settings" in capsys.readouterr().err


def test_a_run_folder_from_before_a_new_setting_continues(tmp_path):
    # run.json written before network.precision existed: the same run at the default
    # precision continues; at another precision, or with a changed setting, it is refused.
    from aae.search import RunPaths, claim_run_folder, resolve_target
    from kt_predictive.storage import write_json

    profile, target = get_profile("tiny"), resolve_target("ape", None, stand_in=True)
    lines = profile.describe().splitlines()[1:]
    old = [line for line in lines if "network.precision" not in line]
    assert len(old) == len(lines) - 1
    write_json(tmp_path / "run.json", {"object": target.describe(), "settings": old})
    claim_run_folder(RunPaths(tmp_path), target, profile)
    for changed in ({"network.precision": "mixed_bfloat16"}, {"search.full_steps": "60"}):
        with pytest.raises(ValueError, match="holds a run with other settings"):
            claim_run_folder(RunPaths(tmp_path), target, profile.with_overrides(changed))
