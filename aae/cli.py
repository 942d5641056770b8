"""The ``aae`` command: render a training set, train a network, build its codebook, evaluate.

A typical run on a synthetic object, with nothing to download::

    aae render synthetic:bracket
    aae train synthetic:bracket --out runs/bracket
    aae embed runs/bracket synthetic:bracket --out runs/bracket/codebook.npz
    aae eval runs/bracket --codebook runs/bracket/codebook.npz --bop-root BOP --obj-id 1

``render``, ``train`` and ``embed`` take their numbers from a profile (``--profile
paper|quick|tiny``, default ``quick``), changed with ``--set section.field=value``; they
print it in one line (``--verbose``: every setting), and ``train`` writes it to
``OUT/profile.txt``. ``eval`` needs no profile: the network folder and the codebook hold
its settings. ``render`` and ``train`` share a training-set cache (``--cache``, default
``$AAE_CACHE``, else ``~/.cache/aae``). A mesh is a .ply/.obj file (``--units`` says
whether it is in mm or m) or ``synthetic:NAME`` for a procedural object. Mistakes in the
input (a missing file, a bad value, an unknown object) end the command with one line
``aae: error: ...`` and exit status 2; doubts (a mesh of implausible size, a network
trained on another object than the one evaluated) are ``aae: warning: ...`` lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aae.data.mesh import UNITS
from aae.data.settings import TrainingSetConfig
from aae.errors import AAEError, MissingFileError, run_command
from aae.net.configs import NAMED_CONFIGS, validate_config
from aae.net.settings import NetworkSettings
from aae.profiles import PROFILES, Profile, get_profile

# Only what the parser needs is imported here, so that `aae --help` answers at once: each
# command imports what it uses (Keras and TensorFlow, pyrender, trimesh take seconds).
if TYPE_CHECKING:
    import trimesh

    from aae.data.bop import BopDataset

SYNTHETIC_PREFIX = "synthetic:"
#: Written by ``aae train`` next to the network: the camera that ``aae embed`` renders with.
TRAINING_SET_FILE = "training_set.json"
RECONSTRUCTIONS_FILE = "reconstructions.png"
#: Written by ``aae train``: every setting of the profile it ran with.
PROFILE_FILE = "profile.txt"
#: Written by ``aae train``: which mesh the network learnt and its diameter, so that
#: ``aae embed`` and ``aae eval`` can tell when they are given another object.
MESH_FILE = "mesh.json"
#: The environment variable naming the training-set cache shared by ``render`` and ``train``.
CACHE_ENV = "AAE_CACHE"
#: The procedural objects of ``aae.data.synthetic``, named here for the help text (importing
#: that module takes seconds); tests/test_cli.py checks that the two agree.
SYNTHETIC_OBJECTS = ("bracket", "mug", "duck", "box_cylinder", "cylinder", "eggbox")
#: Diameters further apart than this factor belong to different objects (or units).
DIAMETER_TOLERANCE = 1.1


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
    profile.add_argument(
        "--verbose",
        action="store_true",
        help="print every setting of the profile (default: one line)",
    )
    cache_help = f"folder of cached training sets (default: ${CACHE_ENV}, else ~/.cache/aae)"
    render = commands.add_parser(
        "render",
        parents=[profile],
        help="render (or load from the cache) the training set of a mesh",
        description="Renders the profile's training set of MESH, or loads it from the cache.",
    )
    _add_mesh_arguments(render)
    render.add_argument("--cache", metavar="DIR", help=cache_help)
    render.set_defaults(run=_render)

    train = commands.add_parser(
        "train",
        parents=[profile],
        help="train an autoencoder on a mesh (resumable)",
        description="Trains one AAE configuration on MESH into --out; rerunning continues an "
        "interrupted run, loads the finished network, or continues it to a larger --steps.",
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
        help="optimizer steps (default: search.full_steps); more than a finished network in "
        "--out has continues it",
    )
    train.add_argument(
        "--backgrounds",
        metavar="DIR",
        help="folder of background photos, e.g. VOC2012/JPEGImages (default: built-in images)",
    )
    train.add_argument("--cache", metavar="DIR", help=cache_help)
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
        "ground-truth box and reports ADD recall (ADI for symmetric objects). Its settings "
        "come from the network folder and the codebook: it takes no --profile.",
    )
    evaluate.add_argument(
        "network_dir", metavar="NETWORK_DIR", help="a folder written by `aae train`"
    )
    evaluate.add_argument("--codebook", required=True, metavar="FILE", help="made by `aae embed`")
    evaluate.add_argument("--bop-root", required=True, metavar="ROOT", help="a BOP dataset folder")
    which = evaluate.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--object", metavar="NAME", help="a LineMOD object name, e.g. ape (any case)"
    )
    which.add_argument("--obj-id", type=_positive_int, metavar="N", help="a BOP object id")
    evaluate.add_argument("--split", default="test", help="the split folder (default: test)")
    evaluate.add_argument(
        "--max-instances", type=_positive_int, metavar="N", help="evaluate at most N instances"
    )
    evaluate.add_argument(
        "--json",
        metavar="OUT",
        help="also write the results as JSON, with every instance's poses, errors and view",
    )
    evaluate.add_argument(
        "--figure",
        metavar="OUT.png",
        help="draw the worst instances: crop, reconstruction, best codebook view, model points "
        "at the estimated and the true pose",
    )
    evaluate.set_defaults(run=_eval)
    return parser


def _add_mesh_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "mesh",
        metavar="MESH",
        help=f"a .ply/.obj model, or {SYNTHETIC_PREFIX}NAME with NAME one of "
        f"{', '.join(SYNTHETIC_OBJECTS)}",
    )
    parser.add_argument(
        "--units",
        choices=sorted(UNITS),
        default="mm",
        help="units of the model file's coordinates (default: mm, as in BOP; ignored for "
        "synthetic objects)",
    )


def _render(args: argparse.Namespace) -> int:
    profile = _profile(args)
    mesh = _mesh(args.mesh, args.units)
    training_set = _training_set(mesh, profile.training_set, args.cache)
    print(f"pairs: {len(training_set)} of {training_set.image_size}x{training_set.image_size} px")
    return 0


def default_cache() -> Path:
    """The training-set cache of ``render`` and ``train`` without ``--cache``: ``$AAE_CACHE``,
    else ``$XDG_CACHE_HOME/aae``, else ``~/.cache/aae`` (shared, so that ``train`` finds what
    ``render`` made)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aae"


def _training_set(mesh: trimesh.Trimesh, camera: TrainingSetConfig, cache: str | None):
    """The training set from the cache (or rendered into it), saying which."""
    from aae.data.training_set import build_training_set, training_set_path

    cache_dir = default_cache() if cache is None else Path(cache)
    path = training_set_path(mesh, camera, cache_dir)
    cached = path.is_file()
    try:
        training_set = build_training_set(mesh, camera, cache_dir)
    except ValueError as error:
        if "units=" not in str(error):
            raise
        raise AAEError(_flag_hint(str(error))) from None
    print(f"training set {path} ({'loaded from the cache' if cached else 'rendered'})")
    return training_set


def _train(args: argparse.Namespace) -> int:
    from aae.data.backgrounds import BackgroundPool
    from aae.data.mesh import mesh_diameter
    from aae.data.training_set import TrainingData, rendering_digest
    from aae.net.training import train_network
    from aae.visualize import save_reconstructions
    from kt_predictive.checkpoint import training_state_path
    from kt_predictive.storage import write_json

    profile = _profile(args)
    config = _config(args.config)
    steps = profile.search.full_steps if args.steps is None else args.steps
    camera = profile.training_set
    if profile.network.image_size != camera.image_size:
        raise AAEError(
            f"network.image_size ({profile.network.image_size}) differs from "
            f"training_set.image_size ({camera.image_size}); --set both to the same size"
        )
    out = Path(args.out)
    _check_same_camera(out, camera)
    finished = _finished_steps(out, config, profile.network, steps)
    mesh = _mesh(args.mesh, args.units)
    _check_same_mesh(out, args.mesh, mesh)
    training_set = _training_set(mesh, camera, args.cache)
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
    write_json(
        out / MESH_FILE,
        {
            "mesh": args.mesh,
            "units": args.units,
            "diameter_mm": mesh_diameter(mesh),
            "digest": rendering_digest(mesh),
        },
    )
    (out / PROFILE_FILE).write_text(profile.describe() + "\n")

    if finished == steps:
        print(f"{out} holds a network trained for {steps} steps: loading it")
    elif finished is not None:
        print(
            f"{out} holds a network trained for {finished} steps: continuing it to {steps} "
            "(from its weights; the optimizer's moments start afresh)"
        )
        _reopen(out)
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
    from aae.data.mesh import mesh_diameter
    from aae.net.training import TrainedNetwork
    from aae.pose.codebook import Codebook
    from aae.pose.collapse import mean_code_cosine

    profile = _profile(args)
    network_dir = Path(args.network_dir)
    camera = _read_camera(network_dir)
    network = TrainedNetwork.load(network_dir)
    mesh = _mesh(args.mesh, args.units)
    trained = _trained_mesh(network_dir)
    if trained is not None and not _same_size(trained["diameter_mm"], mesh_diameter(mesh)):
        _warn(
            f"the network in {network_dir} was trained on {trained['mesh']} "
            f"({trained['diameter_mm']:.0f} mm across), the codebook is rendered from "
            f"{args.mesh} ({mesh_diameter(mesh):.0f} mm across): poses will be off in distance; "
            "embed the mesh the network was trained on"
        )
    n_views, n_inplane = profile.codebook.n_views, profile.codebook.n_inplane
    codebook = Codebook.create(network.encoder, mesh, camera, n_views=n_views, n_inplane=n_inplane)
    path = codebook.save(args.out)
    code_cosine = mean_code_cosine(codebook.codes)
    print(
        f"codebook {path}: {len(codebook)} views ({n_views} viewpoints x {n_inplane} in-plane "
        f"rotations), mean code cosine {code_cosine:.2f}"
    )
    _warn_if_collapsed(code_cosine)
    return 0


def _warn_if_collapsed(code_cosine: float) -> None:
    """Warns where the codebook's codes say the network collapsed."""
    from aae.pose.collapse import collapse_warning

    line = collapse_warning(code_cosine)
    if line is not None:
        _warn(line)


def _eval(args: argparse.Namespace) -> int:
    import numpy as np

    from aae.data.bop import BopDataset, object_id
    from aae.net.training import TrainedNetwork
    from aae.pose.codebook import Codebook
    from aae.pose.collapse import mean_code_cosine
    from aae.pose.evaluate import evaluate_on_bop, save_pose_figure
    from kt_predictive.storage import write_json

    dataset = BopDataset(args.bop_root, args.split)
    # LineMOD's names are lower case; "Duck" or "APE" mean the same objects.
    obj_id = object_id(args.object.lower()) if args.object is not None else args.obj_id
    codebook = Codebook.load(args.codebook)
    network = TrainedNetwork.load(args.network_dir)
    _warn_on_another_object(Path(args.network_dir), dataset, obj_id)
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
        "mean_code_cosine": mean_code_cosine(codebook.codes),
        "network_dir": str(args.network_dir),
        "codebook": str(args.codebook),
        "bop_root": str(args.bop_root),
        "split": args.split,
        "per_instance": [instance.to_json() for instance in result.instances],
    }
    print(f"object {obj_id} of {args.bop_root} ({args.split}), diameter {result.diameter:.1f} mm")
    print(f"metric: {result.metric} (correct if <= {result.threshold:g} x diameter)")
    print(f"recall: {summary['recall_percent']:.1f} %")
    print(f"median {result.metric}: {summary['median_error_mm']:.1f} mm")
    print(f"median rotation error: {summary['median_rotation_error_deg']:.1f} deg")
    print(f"instances: {summary['instances']}")
    print(f"mean code cosine of the codebook: {summary['mean_code_cosine']:.2f}")
    _warn_if_collapsed(summary["mean_code_cosine"])
    if args.json is not None:
        write_json(args.json, summary)
        print(f"results written to {args.json} (per instance: errors, poses, codebook view)")
    if args.figure is not None:
        path = save_pose_figure(dataset, obj_id, network.model, codebook, result, args.figure)
        print(f"figure of the worst instances: {path}")
    return 0


def _profile(args: argparse.Namespace) -> Profile:
    """The chosen profile with the ``--set`` overrides, printed in one line (every setting
    with ``--verbose``)."""
    from aae.search import parse_overrides, profile_line

    base = get_profile(args.profile)
    profile = base.with_overrides(parse_overrides(args.set))
    print(profile.describe() if args.verbose else profile_line(base, profile))
    return profile


def _warn(message: str) -> None:
    print(f"aae: warning: {message}", file=sys.stderr)


def _mesh(spec: str, units: str) -> trimesh.Trimesh:
    """The mesh of a MESH argument: a model file or ``synthetic:NAME`` (any case)."""
    from aae.data.mesh import load_mesh
    from aae.data.synthetic import make_object

    if spec.lower().startswith(SYNTHETIC_PREFIX):
        return make_object(spec[len(SYNTHETIC_PREFIX) :].lower())
    if not Path(spec).exists():
        raise MissingFileError(
            f"mesh file {spec} does not exist; pass a .ply/.obj model or {SYNTHETIC_PREFIX}NAME "
            f"with NAME one of {', '.join(SYNTHETIC_OBJECTS)}"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mesh = load_mesh(spec, units)
    for warning in caught:
        _warn(_flag_hint(str(warning.message)))
    return mesh


def _flag_hint(message: str) -> str:
    """``message`` with its advice to Python callers (``units='m'``) given as the flag."""
    message = re.sub(r"load it with units='(\w+)'", r"pass --units \1", message)
    return re.sub(r"load_mesh\(\.\.\., units='(\w+)'\)", r"--units \1", message)


def _trained_mesh(network_dir: Path) -> dict | None:
    """What ``aae train`` recorded about the network's mesh (None for older folders)."""
    from kt_predictive.storage import read_json

    path = network_dir / MESH_FILE
    if not path.is_file():
        return None
    return read_json(path, "Run `aae train` on the folder again to rewrite it.")


def _same_size(a: float, b: float) -> bool:
    return max(a, b) <= DIAMETER_TOLERANCE * min(a, b)


def _warn_on_another_object(network_dir: Path, dataset: BopDataset, obj_id: int) -> None:
    """Warns when the network learnt an object of another size than the one evaluated
    (e.g. a procedural stand-in for a real LineMOD object): its distances will be off."""
    trained = _trained_mesh(network_dir)
    info = dataset.models_info.get(obj_id)
    if trained is None or info is None or _same_size(trained["diameter_mm"], info.diameter):
        return
    _warn(
        f"the network in {network_dir} was trained on {trained['mesh']} "
        f"({trained['diameter_mm']:.0f} mm across) but {dataset.root}/models/models_info.json "
        f"gives object {obj_id} a diameter of {info.diameter:.0f} mm: another object, or "
        "other units. Estimated distances scale with the model; train and embed on the "
        f"dataset's model, {dataset.root}/models/obj_{obj_id:06d}.ply"
    )


def _config(value: str) -> dict:
    """A named configuration or one read from a JSON file."""
    if value.upper() in NAMED_CONFIGS:
        return dict(NAMED_CONFIGS[value.upper()])
    path = Path(value)
    if path.suffix.lower() != ".json":
        raise AAEError(
            f"unknown config {value!r}; name one of {', '.join(NAMED_CONFIGS)} or a .json file "
            "with the nine hyperparameters"
        )
    if not path.is_file():
        raise MissingFileError(f"config file {path} does not exist")
    from kt_predictive.storage import read_json

    config = read_json(path, "Fix the file or name a built-in config.")
    if not isinstance(config, dict):
        raise AAEError(
            f"config file {path} must hold a JSON object of the nine hyperparameters, e.g. "
            '{"NK1": 128, "NK2": 256, "NK3": 256, "NK4": 512, "KE": 5, "KD": 5, "OPT": "Adam", '
            '"MB": 64, "LR": 0.0002}'
        )
    return validate_config(config)


def _read_camera(network_dir: Path) -> TrainingSetConfig:
    """The training-set settings ``aae train`` stored next to the network."""
    from kt_predictive.storage import read_json

    path = network_dir / TRAINING_SET_FILE
    if not path.is_file():
        raise MissingFileError(
            f"{path} does not exist; {network_dir} must be a network folder written by `aae train`"
        )
    fields = read_json(path, "Run `aae train` on the folder again to rewrite it.")
    names = {field.name for field in dataclasses.fields(TrainingSetConfig)}
    if not isinstance(fields, dict) or set(fields) != names:
        raise AAEError(
            f"{path} is not a training-set description (it needs exactly the fields "
            f"{sorted(names)}); run `aae train` on the folder again to rewrite it"
        )
    return TrainingSetConfig(**fields)


def _check_same_camera(out: Path, camera: TrainingSetConfig) -> None:
    """Refuses to continue a network folder whose training set had other settings."""
    if not (out / TRAINING_SET_FILE).is_file():
        return
    saved = _read_camera(out)
    differences = _differences(
        "training_set", dataclasses.asdict(saved), dataclasses.asdict(camera)
    )
    if differences:
        raise AAEError(
            f"{out} was trained on another training set ({'; '.join(differences)}); use the same "
            "--profile and --set, or another --out"
        )


def _check_same_mesh(out: Path, spec: str, mesh: trimesh.Trimesh) -> None:
    """Refuses to load or continue a network folder trained on another mesh (compared by
    what the renderer draws, so the same model under another path is the same)."""
    from aae.data.training_set import rendering_digest

    trained = _trained_mesh(out)
    if trained is not None and trained.get("digest", rendering_digest(mesh)) != rendering_digest(
        mesh
    ):
        raise AAEError(
            f"{out} holds a network trained on another mesh (mesh: {trained['mesh']!r} in the "
            f"folder, {spec!r} now); pass that mesh, or another --out"
        )


def _differences(prefix: str, saved: dict, now: dict) -> list[str]:
    """``"prefix.field: X in the folder, Y now"`` for every field that differs."""
    return [
        f"{prefix}.{key}: {saved.get(key)!r} in the folder, {now.get(key)!r} now"
        for key in sorted(set(saved) | set(now), key=lambda k: (k not in now, k))
        if saved.get(key) != now.get(key)
    ]


def _finished_steps(out: Path, config: dict, settings: NetworkSettings, steps: int) -> int | None:
    """The steps of the finished network in ``out`` if ``aae train`` may load or continue it
    (None if there is none); an error naming every field that differs otherwise."""
    from aae.net.training import NETWORK_FILE
    from kt_predictive.storage import read_json

    if not (out / NETWORK_FILE).is_file():
        return None
    meta = read_json(out / NETWORK_FILE, "Delete the folder to train the network again.")
    # Settings added after the folder was written have their defaults there.
    saved_settings = {**dataclasses.asdict(NetworkSettings()), **meta.get("settings", {})}
    differences = _differences("config", meta.get("config", {}), validate_config(config))
    differences += _differences("network", saved_settings, dataclasses.asdict(settings))
    if differences:
        raise AAEError(
            f"{out} holds a network trained with other settings ({'; '.join(differences)}); use "
            "the same --config, --profile and --set, or another --out"
        )
    finished = int(meta["steps"])
    if steps < finished:
        raise AAEError(
            f"{out} holds a network trained for {finished} steps, more than the {steps} asked "
            f"for; pass --steps {finished} (or more, to continue it), or another --out"
        )
    return finished


def _reopen(out: Path) -> None:
    """Turns the finished network in ``out`` into an interrupted training, which
    ``train_network`` resumes (the weights file holds no optimizer state)."""
    from aae.net.training import NETWORK_FILE, TrainedNetwork
    from kt_predictive.checkpoint import save_training_state, training_state_path

    network = TrainedNetwork.load(out)
    save_training_state(training_state_path(out), network.model, network.losses, network.seconds)
    # After the checkpoint exists: a crash in between leaves a resumable folder.
    (out / NETWORK_FILE).unlink()


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
