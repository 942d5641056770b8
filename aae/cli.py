"""The ``aae`` command: render a training set, train a network, build its codebook, evaluate.

A typical run on a synthetic object, with nothing to download::

    aae render synthetic:bracket --cache runs/bracket/cache
    aae train synthetic:bracket --out runs/bracket
    aae embed runs/bracket synthetic:bracket --out runs/bracket/codebook.npz
    aae eval runs/bracket --codebook runs/bracket/codebook.npz --bop-root BOP --obj-id 1

Every number comes from a profile (``--profile paper|quick|tiny``, default ``quick``) and
can be changed with ``--set section.field=value``. A mesh is a .ply/.obj file (``--units``
says whether it is in mm or m) or ``synthetic:NAME`` for a procedural object. Mistakes in
the input (a missing file, a bad value, an unknown object) end the command with one line
``aae: error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import trimesh

from aae.backgrounds import BackgroundPool
from aae.bop import BopDataset, object_id
from aae.codebook import Codebook
from aae.configs import NAMED_CONFIGS, validate_config
from aae.data import TrainingData, TrainingSetConfig, build_training_set, training_set_path
from aae.errors import run_command
from aae.evaluate import evaluate_on_bop
from aae.mesh import UNITS, load_mesh
from aae.profiles import PROFILES, Profile, get_profile
from aae.search import parse_overrides
from aae.synthetic import OBJECTS, make_object
from aae.training import NETWORK_FILE, TrainedNetwork, train_network
from aae.visualize import save_reconstructions
from kt_predictive import read_json, training_state_path, write_json

SYNTHETIC_PREFIX = "synthetic:"
#: Written by ``aae train`` next to the network: the camera that ``aae embed`` renders with.
TRAINING_SET_FILE = "training_set.json"
RECONSTRUCTIONS_FILE = "reconstructions.png"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``aae`` with ``argv`` (default: the process's arguments); returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # usage errors and --help: argparse has printed its message
        return int(stop.code or 0)
    return run_command(lambda: args.run(args), "aae")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aae",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    profile = argparse.ArgumentParser(add_help=False)
    profile.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="quick",
        help="scale of every setting (default: quick; paper = the paper's numbers)",
    )
    profile.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override one profile setting, e.g. search.full_steps=1000 (repeatable)",
    )
    render = commands.add_parser(
        "render",
        parents=[profile],
        help="render (or load from the cache) the training set of a mesh",
        description="Renders the profile's training set of MESH, or loads it from the cache.",
    )
    _add_mesh_arguments(render)
    render.add_argument(
        "--cache", required=True, metavar="DIR", help="folder of cached training sets"
    )
    render.set_defaults(run=_render)

    train = commands.add_parser(
        "train",
        parents=[profile],
        help="train an autoencoder on a mesh (resumable)",
        description="Trains one AAE configuration on MESH into --out; rerunning continues an "
        "interrupted run or loads the finished network.",
    )
    _add_mesh_arguments(train)
    train.add_argument("--out", required=True, metavar="DIR", help="the network folder")
    train.add_argument(
        "--config",
        default="SUNDERMEYER",
        metavar="NAME|FILE.json",
        help=f"one of {', '.join(NAMED_CONFIGS)} or a JSON file with the nine hyperparameters "
        "(default: SUNDERMEYER)",
    )
    train.add_argument(
        "--steps",
        type=_positive_int,
        metavar="N",
        help="optimizer steps (default: search.full_steps)",
    )
    train.add_argument(
        "--backgrounds",
        metavar="DIR",
        help="folder of background photos, e.g. VOC2012/JPEGImages (default: built-in images)",
    )
    train.add_argument(
        "--cache", metavar="DIR", help="folder of cached training sets (default: OUT/cache)"
    )
    train.add_argument(
        "--workers",
        type=_non_negative_int,
        metavar="N",
        help="augmentation worker processes (0: in this process; default: cores - 1)",
    )
    train.add_argument(
        "--seed", type=_non_negative_int, default=0, help="seed of the run (default: 0)"
    )
    train.set_defaults(run=_train)

    embed = commands.add_parser(
        "embed",
        parents=[profile],
        help="build the codebook of a trained network",
        description="Renders the codebook views of MESH with the camera the network was trained "
        "with and encodes them.",
    )
    embed.add_argument("network_dir", metavar="NETWORK_DIR", help="a folder written by `aae train`")
    _add_mesh_arguments(embed)
    embed.add_argument(
        "--out", required=True, metavar="FILE.npz", help="where to write the codebook"
    )
    embed.set_defaults(run=_embed)

    evaluate = commands.add_parser(
        "eval",
        help="ADD recall on a BOP dataset with ground-truth boxes",
        description="Estimates the pose of every test instance of one object from its "
        "ground-truth box and reports ADD recall (ADI for symmetric objects).",
    )
    evaluate.add_argument(
        "network_dir", metavar="NETWORK_DIR", help="a folder written by `aae train`"
    )
    evaluate.add_argument("--codebook", required=True, metavar="FILE", help="made by `aae embed`")
    evaluate.add_argument("--bop-root", required=True, metavar="ROOT", help="a BOP dataset folder")
    which = evaluate.add_mutually_exclusive_group(required=True)
    which.add_argument("--object", metavar="NAME", help="a LineMOD object name, e.g. ape")
    which.add_argument("--obj-id", type=_positive_int, metavar="N", help="a BOP object id")
    evaluate.add_argument("--split", default="test", help="the split folder (default: test)")
    evaluate.add_argument(
        "--max-instances", type=_positive_int, metavar="N", help="evaluate at most N instances"
    )
    evaluate.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    evaluate.set_defaults(run=_eval)
    return parser


def _add_mesh_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "mesh",
        metavar="MESH",
        help=f"a .ply/.obj model, or {SYNTHETIC_PREFIX}NAME with NAME one of {', '.join(OBJECTS)}",
    )
    parser.add_argument(
        "--units",
        choices=sorted(UNITS),
        default="mm",
        help="units of the model file's coordinates (default: mm, as in BOP; ignored for synthetic objects)",
    )


def _render(args: argparse.Namespace) -> int:
    profile = _profile(args)
    mesh = _mesh(args.mesh, args.units)
    path = training_set_path(mesh, profile.training_set, args.cache)
    cached = path.is_file()
    training_set = build_training_set(mesh, profile.training_set, args.cache)
    print(f"training set {path} ({'loaded from the cache' if cached else 'rendered'})")
    print(f"pairs: {len(training_set)} of {training_set.image_size}x{training_set.image_size} px")
    return 0


def _train(args: argparse.Namespace) -> int:
    profile = _profile(args)
    config = _config(args.config)
    steps = profile.search.full_steps if args.steps is None else args.steps
    camera = profile.training_set
    if profile.network.image_size != camera.image_size:
        raise ValueError(
            f"network.image_size ({profile.network.image_size}) differs from "
            f"training_set.image_size ({camera.image_size}); --set both to the same size"
        )
    out = Path(args.out)
    _check_same_camera(out, camera)
    mesh = _mesh(args.mesh, args.units)
    training_set = build_training_set(
        mesh, camera, out / "cache" if args.cache is None else args.cache
    )
    n_backgrounds = profile.test.n_backgrounds
    if args.backgrounds is None:
        backgrounds = BackgroundPool.builtin(camera.image_size, n_backgrounds, args.seed)
    else:
        backgrounds = BackgroundPool.from_folder(
            args.backgrounds, camera.image_size, n_backgrounds, args.seed
        )
    data = TrainingData(training_set, backgrounds)
    # Written before training so that a resumed run is checked against it too.
    write_json(out / TRAINING_SET_FILE, dataclasses.asdict(camera))

    if (out / NETWORK_FILE).is_file():
        print(f"{out} holds a trained network: loading it (delete the folder to train again)")
    elif training_state_path(out).is_file():
        print(f"resuming the interrupted training in {out}")
    else:
        print(f"training {args.config} for {steps} steps into {out}")
    network = train_network(
        config, profile.network, data, steps, out, seed=args.seed, workers=args.workers, verbose=1
    )
    final = network.final_mean(profile.search.final_window)
    inputs, targets = data.batches(8, seed=args.seed, workers=0)[0]
    title = f"{args.config}, {len(network.losses)} steps, final loss {final:.4g}"
    picture = save_reconstructions(
        network.model, inputs, targets, out / RECONSTRUCTIONS_FILE, title
    )
    if network.diverged:
        print(f"training diverged after {len(network.losses)} steps (the loss is not finite)")
    else:
        print(f"final loss (mean of the last {profile.search.final_window} steps): {final:.6g}")
    print(f"network {out}, reconstructions {picture}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    profile = _profile(args)
    network_dir = Path(args.network_dir)
    camera = _read_camera(network_dir)
    network = TrainedNetwork.load(network_dir)
    mesh = _mesh(args.mesh, args.units)
    n_views, n_inplane = profile.codebook.n_views, profile.codebook.n_inplane
    codebook = Codebook.create(network.encoder, mesh, camera, n_views=n_views, n_inplane=n_inplane)
    path = codebook.save(args.out)
    print(
        f"codebook {path}: {len(codebook)} views ({n_views} viewpoints x {n_inplane} in-plane rotations)"
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    dataset = BopDataset(args.bop_root, args.split)
    obj_id = object_id(args.object) if args.object is not None else args.obj_id
    codebook = Codebook.load(args.codebook)
    network = TrainedNetwork.load(args.network_dir)
    result = evaluate_on_bop(
        dataset, obj_id, network.encoder, codebook, max_instances=args.max_instances
    )
    summary = {
        "obj_id": obj_id,
        "metric": result.metric,
        "threshold": result.threshold,
        "diameter_mm": result.diameter,
        "recall_percent": 100.0 * result.recall,
        "median_error_mm": float(np.median(result.errors)),
        "median_rotation_error_deg": float(np.median(result.rotation_errors)),
        "instances": len(result.errors),
        "network_dir": str(args.network_dir),
        "codebook": str(args.codebook),
        "bop_root": str(args.bop_root),
        "split": args.split,
    }
    print(f"object {obj_id} of {args.bop_root} ({args.split}), diameter {result.diameter:.1f} mm")
    print(f"metric: {result.metric} (correct if <= {result.threshold:g} x diameter)")
    print(f"recall: {summary['recall_percent']:.1f} %")
    print(f"median {result.metric}: {summary['median_error_mm']:.1f} mm")
    print(f"median rotation error: {summary['median_rotation_error_deg']:.1f} deg")
    print(f"instances: {summary['instances']}")
    if args.json is not None:
        write_json(args.json, summary)
        print(f"results written to {args.json}")
    return 0


def _profile(args: argparse.Namespace) -> Profile:
    """The chosen profile with the ``--set`` overrides, printed."""
    profile = get_profile(args.profile).with_overrides(parse_overrides(args.set))
    print(profile.describe())
    return profile


def _mesh(spec: str, units: str) -> trimesh.Trimesh:
    """The mesh of a MESH argument: a model file or ``synthetic:NAME``."""
    if spec.startswith(SYNTHETIC_PREFIX):
        return make_object(spec[len(SYNTHETIC_PREFIX) :])
    if not Path(spec).exists():
        raise FileNotFoundError(
            f"mesh file {spec} does not exist; pass a .ply/.obj model or {SYNTHETIC_PREFIX}NAME "
            f"with NAME one of {', '.join(OBJECTS)}"
        )
    return load_mesh(spec, units)


def _config(value: str) -> dict:
    """A named configuration or one read from a JSON file."""
    if value.upper() in NAMED_CONFIGS:
        return dict(NAMED_CONFIGS[value.upper()])
    path = Path(value)
    if path.suffix.lower() != ".json":
        raise ValueError(
            f"unknown config {value!r}; name one of {', '.join(NAMED_CONFIGS)} or a .json file "
            "with the nine hyperparameters"
        )
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    config = read_json(path, "Fix the file or name a built-in config.")
    if not isinstance(config, dict):
        raise ValueError(
            f"config file {path} must hold a JSON object of the nine hyperparameters, e.g. "
            '{"NK1": 128, "NK2": 256, "NK3": 256, "NK4": 512, "KE": 5, "KD": 5, "OPT": "Adam", '
            '"MB": 64, "LR": 0.0002}'
        )
    return validate_config(config)


def _read_camera(network_dir: Path) -> TrainingSetConfig:
    """The training-set settings ``aae train`` stored next to the network."""
    path = network_dir / TRAINING_SET_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; {network_dir} must be a network folder written by `aae train`"
        )
    fields = read_json(path, "Run `aae train` on the folder again to rewrite it.")
    names = {field.name for field in dataclasses.fields(TrainingSetConfig)}
    if not isinstance(fields, dict) or set(fields) != names:
        raise ValueError(
            f"{path} is not a training-set description (it needs exactly the fields "
            f"{sorted(names)}); run `aae train` on the folder again to rewrite it"
        )
    return TrainingSetConfig(**fields)


def _check_same_camera(out: Path, camera: TrainingSetConfig) -> None:
    """Refuses to continue a network folder whose training set had other settings."""
    if (out / TRAINING_SET_FILE).is_file() and _read_camera(out) != camera:
        raise ValueError(
            f"{out} was trained on another training set ({out / TRAINING_SET_FILE} differs from "
            "the profile's training_set); use the same --profile and --set, or another --out"
        )


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
