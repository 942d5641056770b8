"""The paper's pipeline for one object: NAS of the AAE, then pose accuracy of its result.

1. Data: the object's CAD model (from a BOP dataset with ``--bop-root``, else a procedural
   stand-in), its pre-rendered training set and backgrounds; the test set is the BOP
   dataset's test split, or, where there is none (no ``--bop-root``, or a folder with only
   ``models/`` such as ``../shared/data/lmo``), a synthetic BOP test set of that same model
   rendered with exact ground truth and its models_info symmetries (ADI for eggbox, glue).
2. Search: ``PredictiveOracle`` + ``PredictiveTuner`` over ``AAEHyperModel``.
3. Comparison: the Sundermeyer and BOP networks trained with the same budget on the same
   data; codebooks of every fully trained network; ADD recall (ADI for symmetric objects)
   on the test set with ground-truth boxes.
4. Report: ``report.md`` with tables and figures (see ``aae.report``).

Everything is cached under the output folder, so rerunning the same command continues where
it stopped (search, training set, networks, codebooks, evaluations).

    python -m aae.search --object ape                       # quick profile, shipped real ape
    python -m aae.search --object ape --stand-in            # its procedural stand-in
    python -m aae.search --object ape --bop-root ../shared/data/lmo  # real mesh, synthetic scenes
    python -m aae.search --object ape --profile paper --bop-root /data/bop/lm
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aae.data.backgrounds import BackgroundPool
from aae.data.bop import BopDataset, BopModels, has_split, object_id
from aae.data.mesh import load_mesh
from aae.data.synthetic import SceneObject, make_bop_dataset, make_object
from aae.data.training_set import TrainingData, build_training_set
from aae.errors import AAEError, UnknownNameError, run_command
from aae.net.configs import BOP, SUNDERMEYER
from aae.profiles import Profile, get_profile

#: The procedural object that stands in for each LineMOD object without --bop-root
#: (symmetric objects get a symmetric stand-in, so ADI is exercised as on LineMOD).
STAND_INS = {
    "ape": "bracket",
    "benchvise": "box_cylinder",
    "cam": "box_cylinder",
    "can": "mug",
    "cat": "duck",
    "driller": "bracket",
    "duck": "duck",
    "eggbox": "eggbox",
    "glue": "cylinder",
    "holepuncher": "bracket",
    "iron": "bracket",
    "lamp": "mug",
    "phone": "box_cylinder",
}


@dataclass(frozen=True)
class ObjectTarget:
    """The object a run is about and where its data come from.

    Attributes:
        name: the LineMOD name.
        mesh_path: the real model (mm), or None for the procedural stand-in.
        bop_root: the BOP dataset whose test split is the test set, or None for a synthetic
            test set rendered from the same model.
        obj_id: the object's id in the test set (1 in a synthetic one).
        models_root: the BOP folder the real model comes from (None for the stand-in).
    """

    name: str
    mesh_path: Path | None
    bop_root: Path | None
    obj_id: int
    models_root: Path | None = None

    @property
    def stand_in(self) -> str:
        return STAND_INS[self.name]

    def describe(self) -> str:
        if self.mesh_path is None:
            return f"{self.name} (procedural stand-in '{self.stand_in}', synthetic BOP test set)"
        if self.bop_root is None and self.models_root == SHIPPED_MODELS:
            return (
                f"{self.name} (real mesh, BOP lmo {self.mesh_path.name} shipped with aae; "
                "synthetic BOP test set of it)"
            )
        if self.bop_root is None:
            return f"{self.name} (real mesh {self.mesh_path}, synthetic BOP test set of it)"
        return f"{self.name} (obj_id {self.obj_id} of {self.bop_root})"


#: The BOP models folder shipped inside the package (the real LineMOD ape, CC BY-SA 4.0: see
#: its LICENSE.md); objects it has use their real mesh without --bop-root.
SHIPPED_MODELS = Path(__file__).resolve().parent / "data" / "objects" / "lmo"


def resolve_target(
    name: str, bop_root: str | os.PathLike | None, stand_in: bool = False
) -> ObjectTarget:
    """The target for LineMOD object ``name``: the model and test split of ``bop_root``, its
    model alone when ``bop_root`` has no test split; without ``bop_root``, the real mesh the
    package ships (the ape) or, for other objects or with ``stand_in``, a procedural
    stand-in."""
    if name not in STAND_INS:
        raise UnknownNameError(
            f"unknown LineMOD object {name!r}; choose one of {sorted(STAND_INS)}"
        )
    if stand_in and bop_root is not None:
        raise AAEError("a procedural stand-in and --bop-root exclude each other; give one")
    if bop_root is None:
        shipped = BopModels(SHIPPED_MODELS)
        if not stand_in and object_id(name) in shipped.models_info:
            return ObjectTarget(name, shipped.model_path(object_id(name)), None, 1, SHIPPED_MODELS)
        return ObjectTarget(name, None, None, 1)
    models = BopModels(bop_root)
    obj_id = object_id(name)
    if obj_id not in models.models_info:
        raise UnknownNameError(
            f"{bop_root} has no model of {name} (obj_id {obj_id}); its object ids are "
            f"{list(models.obj_ids)}. "
            "Objects without a real model keep the procedural stand-in: leave out --bop-root."
        )
    root = Path(bop_root).resolve()
    if not has_split(bop_root):
        return ObjectTarget(name, models.model_path(obj_id).resolve(), None, 1, root)
    return ObjectTarget(name, models.model_path(obj_id).resolve(), root, obj_id, root)


def file_name(name: str) -> str:
    """A network's name ("searched best", "trial 0003") as a file name: no spaces, which
    shells and Markdown links would need quoted."""
    return "_".join(name.split())


@dataclass
class RunPaths:
    """Where a run keeps its files."""

    root: Path

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def test_set(self) -> Path:
        return self.root / "synthetic_test"

    @property
    def search(self) -> Path:
        return self.root / "search"

    def network(self, name: str) -> Path:
        return self.root / "networks" / file_name(name)

    def evaluation(self, name: str) -> Path:
        return self.root / "evaluations" / f"{file_name(name)}.json"

    @property
    def report(self) -> Path:
        return self.root / "report"


def claim_run_folder(paths: RunPaths, target: ObjectTarget, profile: Profile) -> None:
    """Records what a run folder is for; refuses to continue a run made with other settings,
    whose cached search and networks would not match."""
    from kt_predictive.storage import read_json, write_json

    identity = {"object": target.describe(), "settings": profile.describe().splitlines()[1:]}
    path = paths.root / "run.json"
    if path.is_file():
        saved = read_json(path, "Delete the run folder to start the run over.")
        saved = {**saved, "settings": _with_new_defaults(saved["settings"], profile)}
        if saved != identity:
            changed = sorted(set(identity["settings"]) ^ set(saved["settings"]))
            differences = "; ".join(changed) or f"object {saved['object']} vs {identity['object']}"
            raise AAEError(
                f"{paths.root} holds a run with other settings ({differences}); pass --out with "
                "a new folder, or delete this one to start over"
            )
    else:
        write_json(path, identity)


def load_object_mesh(target: ObjectTarget):
    """The object's model in mm."""
    if target.mesh_path is None:
        return make_object(target.stand_in)
    return load_mesh(target.mesh_path, units="mm")


def load_test_set(target: ObjectTarget, profile: Profile, paths: RunPaths) -> BopDataset:
    """The BOP dataset given with --bop-root, or a synthetic one rendered once and kept."""
    if target.bop_root is not None:
        return BopDataset(target.bop_root)
    if target.mesh_path is None:
        scene_object = target.stand_in
    else:
        # The real model with its symmetries: ADI for the objects models_info calls symmetric.
        symmetries = BopModels(target.models_root).symmetry_entries(object_id(target.name))
        scene_object = SceneObject(target.name, load_object_mesh(target), symmetries)
    done = paths.test_set / "complete"
    if not done.exists():
        import shutil

        shutil.rmtree(paths.test_set, ignore_errors=True)  # a half-written earlier attempt
        test = profile.test
        make_bop_dataset(
            paths.test_set,
            [scene_object],
            n_images=test.n_images,
            seed=test.seed,
            image_size=(test.image_width, test.image_height),
            occluders=test.occluders,
        )
        done.write_text("written\n")
    return BopDataset(paths.test_set)


def load_training_data(
    mesh, profile: Profile, paths: RunPaths, backgrounds: str | None
) -> TrainingData:
    """The cached training set and the background pool."""
    size = profile.training_set.image_size
    training_set = build_training_set(mesh, profile.training_set, paths.cache)
    if backgrounds:
        pool = BackgroundPool.from_folder(
            backgrounds, size, profile.test.n_backgrounds, seed=profile.search.seed
        )
    else:
        pool = BackgroundPool.builtin(size, profile.test.n_backgrounds, seed=profile.search.seed)
    return TrainingData(training_set, pool)


def run_search(
    profile: Profile,
    data: TrainingData,
    paths: RunPaths,
    project: str,
    workers: int | None,
    evaluate: Callable[[str, object], None] | None = None,
):
    """Phase 1-4 of the method; resumes an interrupted search in the same folder.

    ``evaluate(trial_id, model)`` is called with every fully trained network as soon as it
    is trained, before the search may delete its weights (it keeps ``search.keep_models``).
    """
    from aae.net.hypermodel import AAEHyperModel
    from kt_predictive import PredictiveSearch

    search_class = PredictiveSearch if evaluate is None else _evaluating(PredictiveSearch, evaluate)

    network = profile.network
    search = profile.search
    values = dict(search.values)
    tuner = search_class(
        AAEHyperModel(
            network.image_size,
            network.width,
            network.latent_dim,
            network.bootstrap_ratio,
            precision=network.precision,
            values=values,
        ),
        **oracle_settings(search),
        keep_models=search.keep_models,
        directory=paths.search,
        project_name=project,
    )
    tuner.search(data, seed=search.seed, workers=workers)
    return tuner


def oracle_settings(search) -> dict:
    """The PredictiveOracle arguments of a profile's ``search`` settings."""
    from kt_predictive import AllocationRule, PredictorSettings, Schedule, TrainingSteps

    rules = {"paper": AllocationRule.paper, "evidence": AllocationRule.evidence}
    if search.allocation not in rules:
        raise AAEError(
            f"search.allocation must be one of {sorted(rules)} (got {search.allocation!r})"
        )
    rule = rules[search.allocation](search.reward, float(search.beta))
    if search.thresholds is not None:
        rule = dataclasses.replace(rule, thresholds=search.thresholds)
    return {
        "steps": TrainingSteps(
            search.full_steps, search.early_steps, search.window, search.final_window
        ),
        "schedule": Schedule(
            initial_trials=search.initial_trials,
            max_iterations=search.max_iterations,
            top_k=search.top_k,
        ),
        "allocation": rule,
        "predictor": PredictorSettings(
            refit_predictor=search.refit_predictor,
            tuning_trials=search.tuning_trials,
            report_splits=search.report_splits,
        ),
        "seed": search.seed,
    }


def _evaluating(search_class: type, evaluate: Callable[[str, object], None]) -> type:
    """``search_class`` that hands every fully trained network to ``evaluate`` while its
    weights exist: at the end of its trial, before the search settles it and deletes the
    weights of the networks that can no longer be among the ``keep_models`` best."""

    class EvaluatingSearch(search_class):
        def on_trial_end(self, trial):
            if self.has_model(trial.trial_id):
                model = self.load_model(trial)
                evaluate(trial.trial_id, model)
                del model
                _release_models()
            super().on_trial_end(trial)

    return EvaluatingSearch


def run(
    object_name: str,
    profile: Profile,
    out_dir: str | os.PathLike,
    bop_root: str | os.PathLike | None = None,
    backgrounds: str | None = None,
    workers: int | None = None,
    verbose: bool = False,
    stand_in: bool = False,
) -> Path:
    """Runs the whole method for one object; returns the report folder. The profile is
    printed in one line (every setting with ``verbose``; always in the report's Settings
    and the run folder's run.json)."""
    from aae.pose.codebook import CodebookViews
    from aae.report import NetworkResult, write_run_report

    started = time.perf_counter()
    target = resolve_target(object_name, bop_root, stand_in)
    paths = RunPaths(Path(out_dir))
    claim_run_folder(paths, target, profile)
    print(profile.describe() if verbose else profile_line(get_profile(profile.name), profile))
    print(f"object: {target.describe()}\noutput: {paths.root}")
    mesh = load_object_mesh(target)
    test_set = load_test_set(target, profile, paths)
    data = load_training_data(mesh, profile, paths, backgrounds)
    # The codebook's views are rendered once and encoded by every network.
    views = CodebookViews.cached(
        paths.cache,
        mesh,
        profile.training_set,
        profile.codebook.n_views,
        profile.codebook.n_inplane,
    )

    # Each fully trained network is evaluated as soon as it is trained: the search keeps the
    # weights of only the search.keep_models best (a paper run fully trains 120 networks of
    # up to 586 MiB of weights each).
    def evaluate_trial(trial_id: str, model) -> None:
        encoder = model.get_layer("encoder")
        evaluate_network(f"trial {trial_id}", encoder, views, test_set, target.obj_id, paths)

    tuner = run_search(profile, data, paths, target.name, workers, evaluate_trial)
    oracle = tuner.oracle

    # The search's fully trained networks (its best first), then the two benchmark networks
    # trained with the same budget on the same data.
    best_id = oracle.get_best_trials()[0].trial_id
    # At most two Keras models in memory at a time. A result keeps its model only where the
    # report pictures it (PICTURED); every other network is evaluated and dropped.
    results, unevaluated = [], []
    for record in sorted(_fully_trained(oracle), key=lambda r: r.trial_id != best_id):
        trial_name = f"trial {record.trial_id}"
        name = "searched best" if record.trial_id == best_id else trial_name
        kept = None
        if tuner.has_model(record.trial_id):
            model = tuner.load_model(oracle.get_trial(record.trial_id))
            evaluation = evaluate_network(
                name, model.get_layer("encoder"), views, test_set, target.obj_id, paths, trial_name
            )
            kept = model if name == "searched best" else None
            del model
        else:  # deleted by the search after its evaluation during the search
            evaluation = cached_evaluation(trial_name, paths)
            if evaluation is None:
                unevaluated.append(record.trial_id)
                continue
        kind = "top-K" if record.role == "continuation" else "phase 1"
        results.append(
            NetworkResult(
                name, kind, dict(record.values), kept, record.real_final, record.seconds, evaluation
            )
        )
        del kept
        _release_models()
    if unevaluated:
        print(
            f"not evaluated: trials {', '.join(unevaluated)} (their weights were deleted, "
            "search.keep_models, before this run evaluated them)"
        )
    for name, config in (("Sundermeyer", SUNDERMEYER), ("BOP", BOP)):
        result = train_and_evaluate(
            name, config, profile, data, views, test_set, target.obj_id, paths, workers
        )
        # Dropped too, so that BOP's training never overlaps it; loaded again below.
        results.append(dataclasses.replace(result, model=None))
        del result
        _release_models()
    results = [_reload_pictured(result, paths) for result in results]
    report = write_run_report(
        paths.report,
        target,
        profile,
        oracle,
        results,
        data,
        elapsed_seconds=time.perf_counter() - started,
    )
    print(f"report: {report}")
    return paths.report


def train_and_evaluate(
    name: str,
    config: dict,
    profile: Profile,
    data: TrainingData,
    views,
    test_set: BopDataset,
    obj_id: int,
    paths: RunPaths,
    workers: int | None = None,
    kind: str = "benchmark",
):
    """Trains ``config`` with the full budget (or loads it) and evaluates its poses."""
    from aae.net.training import train_network
    from aae.report import NetworkResult

    network = train_network(
        config,
        profile.network,
        data,
        steps=profile.search.full_steps,
        directory=paths.network(name),
        seed=profile.search.seed,
        workers=workers,
    )
    evaluation = evaluate_network(name, network.encoder, views, test_set, obj_id, paths)
    final = network.final_mean(profile.search.final_window)
    return NetworkResult(
        name, kind, network.config, network.model, final, network.seconds, evaluation
    )


#: The networks whose model the report uses (its reconstruction figures); the others'
#: results carry ``model=None``.
PICTURED = ("searched best", "Sundermeyer")


def _release_models() -> None:
    """Frees the memory of models no longer referenced (Keras models hold reference cycles
    through their compiled functions, which only the cycle collector frees)."""
    import gc

    gc.collect()


def _reload_pictured(result, paths: RunPaths):
    """``result`` with its model loaded again from its folder if the report pictures it and
    it was dropped (the benchmark networks); others unchanged."""
    if result.model is not None or result.name not in PICTURED or result.kind != "benchmark":
        return result
    from aae.net.training import TrainedNetwork

    return dataclasses.replace(result, model=TrainedNetwork.load(paths.network(result.name)).model)


def _with_new_defaults(saved: list[str], profile: Profile) -> list[str]:
    """The settings lines of a run folder's ``run.json`` plus those of settings added since
    it was written (e.g. ``network.precision``), at their defaults: an older run made with
    the same settings continues instead of being refused."""
    by_name = {line.split("=")[0].strip(): line for line in saved}
    current = profile.describe().splitlines()[1:]
    lines = []
    # In the current order, so that an unchanged run compares equal line for line.
    for line in current:
        name = line.split("=")[0].strip()
        section, _, field = name.partition(".")
        part = getattr(profile, section)
        default = next(f.default for f in dataclasses.fields(part) if f.name == field)
        if name in by_name:
            lines.append(by_name.pop(name))
        elif getattr(part, field) == default:
            lines.append(line)
    return lines + list(by_name.values())  # settings since removed: a difference


def _fully_trained(oracle) -> list:
    """Records of the search's trials trained to the full budget without failing."""
    return [r for r in oracle.records() if r.is_real]


def evaluate_network(
    name: str,
    encoder,
    views,
    test_set: BopDataset,
    obj_id: int,
    paths: RunPaths,
    also_cached_as: str | None = None,
):
    """ADD(-S) recall of one encoder on the test set; cached per encoder weights (under
    ``name``, or ``also_cached_as``: the same network evaluated under another name)."""
    from aae.pose.codebook import Codebook, encoder_fingerprint
    from aae.pose.evaluate import evaluate_on_bop
    from kt_predictive.storage import write_json

    fingerprint = encoder_fingerprint(encoder)
    for cached_name in (name, also_cached_as):
        saved = _read_evaluation(cached_name, paths) if cached_name else None
        if saved is not None and saved[0] == fingerprint:
            if cached_name != name:
                write_json(paths.evaluation(name), _evaluation_file(paths.evaluation(cached_name)))
            return saved[1]
    evaluation = evaluate_on_bop(
        test_set, obj_id, encoder, Codebook.from_views(encoder, views), progress=False
    )
    as_json = {
        k: (v.tolist() if isinstance(v, np.ndarray) else v)
        for k, v in dataclasses.asdict(evaluation).items()
    }
    write_json(paths.evaluation(name), {"fingerprint": fingerprint, "evaluation": as_json})
    return evaluation


def cached_evaluation(name: str, paths: RunPaths):
    """The evaluation of network ``name`` written earlier by :func:`evaluate_network`, or
    None. Unchecked against weights: for networks whose weights the search has deleted
    (a finished trial's weights never change)."""
    saved = _read_evaluation(name, paths)
    return None if saved is None else saved[1]


def _read_evaluation(name: str, paths: RunPaths):
    """(fingerprint, PoseEvaluation) of the cached evaluation of ``name``, or None."""
    from aae.pose.evaluate import PoseEvaluation

    path = paths.evaluation(name)
    if not path.is_file():
        return None
    saved = _evaluation_file(path)
    fields = saved["evaluation"]
    evaluation = PoseEvaluation(
        **{k: np.asarray(v) if k.endswith("errors") else v for k, v in fields.items()}
    )
    return saved["fingerprint"], evaluation


def _evaluation_file(path: Path) -> dict:
    """A cached evaluation file (with the hint to delete it if it cannot be read)."""
    from kt_predictive.storage import read_json

    return read_json(path, "Delete it to evaluate the network again.")


def profile_line(base: Profile, profile: Profile) -> str:
    """One line naming ``profile`` and the settings in which it differs from ``base`` (the
    named profile it was made from with ``--set``), as commands print it by default."""
    changed = []
    for name in profile.setting_names():
        section, field = name.split(".")
        value = getattr(getattr(profile, section), field)
        if value != getattr(getattr(base, section), field):
            changed.append(f"{name}={value!r}")
    changes = f" with {', '.join(changed)}" if changed else ""
    return f"profile {profile.name}{changes} (--verbose prints every setting)"


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """``["section.field=value", ...]`` as a dict, with a clear error for a malformed pair."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise AAEError(
                f"--set takes SECTION.FIELD=VALUE, e.g. search.full_steps=1000; got {pair!r}"
            )
        overrides[key.strip()] = value.strip()
    return overrides


def default_run_folder(
    object_name: str, profile_name: str, overrides: dict[str, str], data: str | None = None
) -> str:
    """``runs/<object>-<profile>``, then ``-<data>`` (the --bop-root folder's name) when the
    object comes from a dataset, plus a short hash of the overrides when there are any, so
    the same command always finds its run again and different settings or data never share
    one."""
    folder = f"runs/{object_name}-{profile_name}" + (f"-{data}" if data else "")
    if not overrides:
        return folder
    digest = hashlib.sha256(json.dumps(sorted(overrides.items())).encode()).hexdigest()[:8]
    return f"{folder}-{digest}"


def main(
    argv: Sequence[str] | None = None,
    object_name: str | None = None,
    defaults: dict | None = None,
    prog: str = "python -m aae.search",
    object_positional: bool = False,
) -> int:
    """Command line of the runner: ``--object NAME``, or the object given as ``object_name``,
    or (``object_positional``, examples/linemod/search.py) as the first argument."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    objects = sorted(STAND_INS)
    if object_positional:
        parser.add_argument(
            "object",
            choices=objects,
            metavar="OBJECT",
            help="LineMOD object: " + ", ".join(objects),
        )
    elif object_name is None:
        parser.add_argument("--object", required=True, choices=objects, help="LineMOD object")
    parser.add_argument("--profile", default="quick", help="paper, quick or tiny (default quick)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override a profile setting",
    )
    parser.add_argument("--out", help="output folder (default runs/<object>-<profile>)")
    parser.add_argument(
        "--bop-root",
        help="a BOP dataset (LineMOD 'lm', or only its models/ folder, e.g. "
        "../shared/data/lmo: the real mesh with synthetic test scenes); default: the real "
        "mesh shipped with aae (the ape) with synthetic test scenes, else a procedural "
        "stand-in",
    )
    parser.add_argument(
        "--stand-in",
        action="store_true",
        help="use the object's procedural stand-in even where a real mesh is shipped",
    )
    parser.add_argument(
        "--backgrounds", help="a folder of background photos (e.g. VOC2012 JPEGImages)"
    )
    parser.add_argument(
        "--reward", choices=("exp", "linear"), help="shortcut for --set search.reward=..."
    )
    parser.add_argument(
        "--dark",
        action="store_true",
        help="bootstrap ratio 16, the original AAE's advice for dark or thin objects (the paper "
        "also reports the phone so); = --set network.bootstrap_ratio=16",
    )
    parser.add_argument("--workers", type=int, help="augmentation worker processes")
    parser.add_argument(
        "--verbose", action="store_true", help="print every setting (default: one line)"
    )
    args = parser.parse_args(argv)
    name = object_name or args.object

    def command() -> int:
        dark = {"network.bootstrap_ratio": "16"} if args.dark else {}
        overrides = {**(defaults or {}), **dark, **parse_overrides(args.set)}
        if args.reward:
            overrides["search.reward"] = args.reward
        profile = get_profile(args.profile).with_overrides(overrides)
        data = Path(args.bop_root).resolve().name if args.bop_root else None
        data = "stand-in" if args.stand_in else data
        out = args.out or default_run_folder(name, profile.name, overrides, data)
        run(
            name,
            profile,
            out,
            bop_root=args.bop_root,
            stand_in=args.stand_in,
            backgrounds=args.backgrounds,
            workers=args.workers,
            verbose=args.verbose,
        )
        return 0

    return run_command(command, parser.prog)


if __name__ == "__main__":
    sys.exit(main())
