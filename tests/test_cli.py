"""The `aae` command in-process: render -> train -> embed -> eval on a tiny synthetic object,
resuming, and one readable line with exit status 2 for every mistake in the input."""

import contextlib
import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image

from aae import cli
from aae.cli import main
from aae.codebook import Codebook
from aae.profiles import get_profile
from aae.synthetic import make_bop_dataset
from aae.training import TrainedNetwork

SMALL = [
    "--profile", "tiny",
    "--set", "training_set.n_images=96",
    "--set", "search.full_steps=20",
    "--set", "codebook.n_views=12",
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
        {
            "training_set.n_images": "96",
            "search.full_steps": "20",
            "codebook.n_views": "12",
            "codebook.n_inplane": "2",
        }
    )
    assert outputs["render"][1].startswith(profile.describe())
    assert "pairs: 96 of 32x32 px" in outputs["render"][1]
    assert len(list(paths["cache"].glob("training_set_*.npz"))) == 1

    network = TrainedNetwork.load(paths["network"])
    assert len(network.losses) == 20 and np.all(np.isfinite(network.losses))
    final = np.mean(network.losses[-profile.search.final_window :])
    assert f"final loss (mean of the last 10 steps): {final:.6g}" in outputs["train"][1]
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
    assert "holds a trained network: loading it" in stdout
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
    assert "is not a BOP dataset folder" in error_line(capsys, argv)


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
