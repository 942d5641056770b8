"""The `aae` command in-process: render -> train -> embed -> eval on a tiny synthetic object,
resuming, and one readable line with exit status 2 for every mistake in the input."""

import argparse
import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from aae import cli
from aae.cli import main
from aae.data.synthetic import make_bop_dataset
from aae.net.training import TrainedNetwork
from aae.pose.codebook import Codebook
from aae.profiles import get_profile

SMALL = [
    "--profile", "tiny",  # 20 training steps, 12 codebook views
    "--set", "training_set.n_images=96",
    "--set", "codebook.n_inplane=2",
]  # fmt: skip
N_TEST_IMAGES = 4


def run(argv):
    """main(argv)'s exit status and stdout."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = main([str(a) for a in argv])
    return status, stdout.getvalue()


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    bop = make_bop_dataset(
        root / "bop", ["bracket"], N_TEST_IMAGES, seed=1, image_size=(320, 240), occluders=False
    )
    cache, network, codebook, results = (
        root / "cache",
        root / "network",
        root / "codebook.npz",
        root / "results.json",
    )
    outputs = {
        "render": run(["render", "synthetic:bracket", "--cache", cache, *SMALL]),
        "train": run(
            [
                "train",
                "synthetic:bracket",
                "--out",
                network,
                "--cache",
                cache,
                "--workers",
                0,
                *SMALL,
            ]
        ),
        "embed": run(["embed", network, "synthetic:bracket", "--out", codebook, *SMALL]),
        "eval": run(
            [
                "eval",
                network,
                "--codebook",
                codebook,
                "--bop-root",
                bop,
                "--obj-id",
                1,
                "--json",
                results,
            ]
        ),
    }
    paths = {
        "root": root,
        "bop": bop,
        "cache": cache,
        "network": network,
        "codebook": codebook,
        "results": results,
    }
    return outputs, paths


def test_render_train_embed_eval_chain(chain):
    outputs, paths = chain
    assert all(status == 0 for status, _ in outputs.values()), outputs
    profile = get_profile("tiny").with_overrides(
        {"training_set.n_images": "96", "codebook.n_inplane": "2"}
    )
    # One line of profile by default; every setting in the network folder.
    assert outputs["render"][1].splitlines()[0] == (
        "profile tiny with training_set.n_images=96, codebook.n_inplane=2 (--verbose prints "
        "every setting)"
    )
    assert profile.describe() not in outputs["train"][1]
    assert (paths["network"] / "profile.txt").read_text() == profile.describe() + "\n"
    assert "pairs: 96 of 32x32 px" in outputs["render"][1]
    assert len(list(paths["cache"].glob("training_set_*.npz"))) == 1

    network = TrainedNetwork.load(paths["network"])
    assert len(network.losses) == 20 and np.all(np.isfinite(network.losses))
    final = np.mean(network.losses[-profile.search.final_window :])
    assert f"final loss (mean of the last 10 steps): {final:.6g}" in outputs["train"][1]
    # The progress bar counts the run's 20 steps, not a 1000-batch Keras epoch.
    assert "20/20" in outputs["train"][1] and "/1000" not in outputs["train"][1]
    assert "loaded from the cache" in outputs["train"][1]
    stored = json.loads((paths["network"] / "training_set.json").read_text())
    assert stored == json.loads(json.dumps(dataclasses.asdict(profile.training_set)))
    picture = np.asarray(Image.open(paths["network"] / "reconstructions.png"))
    assert picture.shape[0] > 200 and picture.shape[1] > 500 and picture.std() > 10

    codebook = Codebook.load(paths["codebook"])
    assert len(codebook) == 12 * 2
    codebook.check_encoder(network.encoder)
    assert codebook.camera == profile.training_set

    results = json.loads(paths["results"].read_text())
    assert results["metric"] == "ADD" and results["instances"] == N_TEST_IMAGES
    assert 0 <= results["recall_percent"] <= 100
    assert results["median_error_mm"] > 0 and 0 <= results["median_rotation_error_deg"] <= 180
    assert f"recall: {results['recall_percent']:.1f} %" in outputs["eval"][1]
    # Every instance: where it is, which view it matched, both poses and its errors.
    instances = results["per_instance"]
    assert len(instances) == N_TEST_IMAGES
    for instance in instances:
        assert 0 <= instance["view"] < len(codebook) and -1 <= instance["similarity"] <= 1
        assert np.asarray(instance["R_est"]).shape == (3, 3) and len(instance["t_gt"]) == 3
        moved = np.linalg.norm(np.subtract(instance["t_est"], instance["t_gt"]))
        assert instance["translation_error"] == pytest.approx(moved)
        assert 0 <= instance["rotation_error"] <= 180 and instance["error"] > 0
    assert np.median([i["error"] for i in instances]) == pytest.approx(results["median_error_mm"])
    errors = sorted(i["rotation_error"] for i in instances)
    assert np.median(errors) == pytest.approx(results["median_rotation_error_deg"])
    assert f"instances: {N_TEST_IMAGES}" in outputs["eval"][1]


def test_rerunning_train_loads_the_network(chain):
    outputs, paths = chain
    weights = paths["network"] / "network.weights.h5"
    before = weights.stat().st_mtime_ns
    status, stdout = run(
        [
            "train",
            "synthetic:bracket",
            "--out",
            paths["network"],
            "--cache",
            paths["cache"],
            "--workers",
            0,
            *SMALL,
        ]
    )
    assert status == 0
    assert "holds a network trained for 20 steps: loading it" in stdout
    assert weights.stat().st_mtime_ns == before
    assert stdout.splitlines()[-2] == outputs["train"][1].splitlines()[-2]  # the same final loss


def error_line(capsys, argv):
    """Runs a command that must fail on its input; returns its one line on stderr."""
    capsys.readouterr()
    status, _ = run(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(lines) == 1 and lines[0].startswith("aae: error: "), lines
    return lines[0]


def test_missing_mesh_file(chain, capsys):
    _, paths = chain
    line = error_line(
        capsys, ["render", paths["root"] / "missing.ply", "--cache", paths["cache"], *SMALL]
    )
    assert "missing.ply does not exist" in line and "synthetic:NAME" in line


def test_unknown_objects(chain, capsys):
    _, paths = chain
    line = error_line(capsys, ["render", "synthetic:teapot", "--cache", paths["cache"], *SMALL])
    assert "unknown synthetic object 'teapot'" in line
    evaluate = [
        "eval",
        paths["network"],
        "--codebook",
        paths["codebook"],
        "--bop-root",
        paths["bop"],
    ]
    assert "'teapot' is not a LineMOD object" in error_line(
        capsys, [*evaluate, "--object", "teapot"]
    )
    assert "object id 7 is not in" in error_line(capsys, [*evaluate, "--obj-id", 7])


def test_non_bop_folder(chain, capsys):
    _, paths = chain
    argv = [
        "eval",
        paths["network"],
        "--codebook",
        paths["codebook"],
        "--bop-root",
        paths["root"],
        "--obj-id",
        1,
    ]
    line = error_line(capsys, argv)
    assert "is not a BOP dataset folder" in line
    assert "depth/" not in line  # the evaluation does not need depth images


def test_codebook_of_another_network(chain, capsys):
    _, paths = chain
    other = paths["root"] / "other"
    status, _ = run(
        [
            "train",
            "synthetic:bracket",
            "--out",
            other,
            "--cache",
            paths["cache"],
            "--workers",
            0,
            "--steps",
            2,
            *SMALL,
        ]
    )
    assert status == 0
    argv = [
        "eval",
        other,
        "--codebook",
        paths["codebook"],
        "--bop-root",
        paths["bop"],
        "--obj-id",
        1,
    ]
    assert "built with another network" in error_line(capsys, argv)


def test_bad_settings(chain, capsys):
    _, paths = chain
    render = ["render", "synthetic:bracket", "--cache", paths["cache"]]
    assert "unknown setting 'foo.bar'" in error_line(capsys, [*render, "--set", "foo.bar=1"])
    assert "setting training_set.n_images needs a value of type int" in error_line(
        capsys, [*render, "--set", "training_set.n_images=many"]
    )
    assert "SECTION.FIELD=VALUE" in error_line(capsys, [*render, "--set", "search.full_steps"])
    train = ["train", "synthetic:bracket", "--out", paths["root"] / "unused", *SMALL]
    assert "unknown config 'BEST'" in error_line(capsys, [*train, "--config", "BEST"])


def test_errors_not_raised_on_purpose_keep_their_traceback(monkeypatch):
    # A KeyError from a failed lookup is a bug, not a message about the input.
    monkeypatch.setattr(cli, "get_profile", {}.__getitem__)
    with pytest.raises(KeyError):
        run(["render", "synthetic:bracket", "--cache", "unused"])


def train_argv(out, *extra):
    return ["train", "synthetic:bracket", "--out", out, "--workers", 0, *SMALL, *extra]


def test_train_finds_the_training_set_render_made(tmp_path, monkeypatch):
    # The README's chain: `aae render MESH` then `aae train MESH --out DIR`, no --cache.
    monkeypatch.setenv("AAE_CACHE", str(tmp_path / "shared"))
    status, rendered = run(
        ["render", "synthetic:bracket", *SMALL, "--set", "training_set.n_images=64"]
    )
    assert status == 0 and "rendered" in rendered
    argv = train_argv(tmp_path / "net", "--steps", 2, "--set", "training_set.n_images=64")
    status, trained = run(argv)
    assert status == 0
    assert f"training set {tmp_path / 'shared'}" in trained and "loaded from the cache" in trained
    assert len(list((tmp_path / "shared").glob("training_set_*.npz"))) == 1
    assert not (tmp_path / "net" / "cache").exists()


def test_rerunning_train_with_more_steps_continues_it(chain, tmp_path):
    _, paths = chain
    network = tmp_path / "network"
    shutil.copytree(paths["network"], network)
    before = TrainedNetwork.load(network).losses
    status, stdout = run([*train_argv(network, "--steps", 25), "--cache", paths["cache"]])
    assert status == 0, stdout
    assert "holds a network trained for 20 steps: continuing it to 25" in stdout
    after = TrainedNetwork.load(network)
    assert len(after.losses) == 25 and np.array_equal(after.losses[:20], before)
    assert "25/25" in stdout


def test_rerunning_train_with_other_settings_names_what_differs(chain, capsys):
    _, paths = chain
    network, cache = paths["network"], ["--cache", paths["cache"]]
    line = error_line(capsys, [*train_argv(network, "--config", "BOP"), *cache])
    assert "holds a network trained with other settings (config." in line
    assert "in the folder" in line and "{" not in line  # the fields, not two JSON dumps
    line = error_line(capsys, [*train_argv(network, "--steps", 10), *cache])
    assert "trained for 20 steps, more than the 10 asked for" in line
    line = error_line(capsys, [*train_argv(network, "--set", "training_set.n_images=64"), *cache])
    assert "training_set.n_images: 96 in the folder, 64 now" in line
    argv = ["train", "synthetic:duck", "--out", network, "--workers", 0, *SMALL, *cache]
    line = error_line(capsys, argv)
    assert "mesh: 'synthetic:bracket' in the folder, 'synthetic:duck' now" in line


def test_verbose_prints_every_setting(chain):
    _, paths = chain
    status, stdout = run(
        ["render", "synthetic:bracket", "--cache", paths["cache"], *SMALL, "--verbose"]
    )
    assert status == 0
    assert stdout.startswith(
        get_profile("tiny").with_overrides(dict(pair.split("=") for pair in SMALL[3::2])).describe()
    )


def test_readme_says_which_commands_take_a_profile():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    sentence = re.search(
        r"^`aae ([^.]*)` take `--profile \{paper,quick,tiny\}` and `--set", readme, re.M
    )
    assert sentence, "the README must say which aae commands take --profile and --set"
    claimed = set(re.findall(r"\w+", sentence.group(1).replace(" and ", " ")))
    commands = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    takes = {
        name for name, sub in commands.choices.items() if "--profile" in sub._option_string_actions
    }
    assert claimed == takes
    assert "eval" not in takes


def test_object_names_in_any_case(chain, capsys):
    _, paths = chain
    status, stdout = run(
        [
            "eval",
            paths["network"],
            "--codebook",
            paths["codebook"],
            "--bop-root",
            paths["bop"],
            "--object",
            "APE",
        ]
    )
    assert status == 0 and f"instances: {N_TEST_IMAGES}" in stdout
    status, stdout = run(["render", "synthetic:Bracket", "--cache", paths["cache"], *SMALL])
    assert status == 0 and "loaded from the cache" in stdout


def test_eval_warns_when_the_network_learnt_an_object_of_another_size(chain, tmp_path, capsys):
    _, paths = chain
    bop = tmp_path / "bop"
    shutil.copytree(paths["bop"], bop)
    info_path = bop / "models" / "models_info.json"
    info = json.loads(info_path.read_text())
    info["1"]["diameter"] *= 2  # as the real LineMOD duck is to a procedural one
    info_path.write_text(json.dumps(info))
    capsys.readouterr()
    status, _ = run(
        [
            "eval",
            paths["network"],
            "--codebook",
            paths["codebook"],
            "--bop-root",
            bop,
            "--obj-id",
            1,
        ]
    )
    err = capsys.readouterr().err
    assert status == 0
    warning = [line for line in err.splitlines() if line.startswith("aae: warning: ")]
    assert len(warning) == 1 and "trained on synthetic:bracket" in warning[0]
    assert "models_info.json gives object 1 a diameter of" in warning[0]
    status, _ = run(
        [
            "eval",
            paths["network"],
            "--codebook",
            paths["codebook"],
            "--bop-root",
            paths["bop"],
            "--obj-id",
            1,
        ]
    )
    assert "aae: warning" not in capsys.readouterr().err


def test_units_hint_names_the_flag(chain, tmp_path, capsys):
    _, paths = chain
    model = tmp_path / "box_in_metres.ply"
    trimesh.creation.box(extents=(0.1, 0.05, 0.02)).export(model)
    capsys.readouterr()
    run(["render", model, "--cache", paths["cache"], *SMALL, "--set", "training_set.n_images=4"])
    err = capsys.readouterr().err
    assert "pass --units m" in err and "units='m'" not in err


def test_eval_figure_shows_the_worst_instances(chain, tmp_path):
    _, paths = chain
    figure = tmp_path / "poses.png"
    status, stdout = run(
        [
            "eval",
            paths["network"],
            "--codebook",
            paths["codebook"],
            "--bop-root",
            paths["bop"],
            "--obj-id",
            1,
            "--figure",
            figure,
            "--max-instances",
            2,
        ]
    )
    assert status == 0 and f"figure of the worst instances: {figure}" in stdout
    picture = np.asarray(Image.open(figure).convert("RGB")).astype(int)
    assert picture.shape[0] > 300 and picture.shape[1] > 600 and picture.std() > 10
    # The estimated (red) and true (green) model points are drawn.
    red = (picture[..., 0] > 200) & (picture[..., 1] < 60) & (picture[..., 2] < 60)
    green = (picture[..., 1] > 200) & (picture[..., 0] < 60) & (picture[..., 2] < 60)
    assert red.sum() > 20 and green.sum() > 20


HELP_PROBE = """
import contextlib, io, json, sys
from aae.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    status = main(sys.argv[1:])
heavy = ("tensorflow", "keras", "trimesh", "kt_predictive")
loaded = [name for name in heavy if name in sys.modules]
print(json.dumps({"status": status, "help": out.getvalue(), "loaded": loaded}))
"""


@pytest.mark.parametrize("command", [[], ["render"], ["train"], ["embed"], ["eval"]])
def test_help_loads_neither_keras_nor_tensorflow(command):
    # `aae --help` must answer at once and print nothing of TensorFlow's start-up.
    root = Path(__file__).parents[1]
    path = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-c", HELP_PROBE, *command, "--help"],
        capture_output=True, text=True, cwd=root, env=env, check=True,
    )  # fmt: skip
    assert done.stderr == ""
    result = json.loads(done.stdout)
    assert result["status"] == 0 and result["loaded"] == []
    text = result["help"]
    if not command:
        assert all(name in text for name in ("render", "train", "embed", "eval"))
    else:
        parser = cli._parser()
        actions = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for action in actions.choices[command[0]]._actions:
            assert all(option in text for option in action.option_strings)
            assert action.metavar is None or action.metavar in text
    if command in (["render"], ["train"], ["embed"]):
        assert all(name in text for name in cli.SYNTHETIC_OBJECTS) and "{m,mm}" in text


def test_help_names_every_synthetic_object():
    from aae.data.synthetic import OBJECTS

    assert cli.SYNTHETIC_OBJECTS == OBJECTS
