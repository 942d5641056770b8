"""Which small scale makes an AAE learn poses within a <=15-minute CPU demo?

Trains a fixed list of candidate scales (configuration, learning rate and batch, steps,
width, bootstrap ratio, number of training images, codebook size) with aae's own training
code on the procedural stand-in of LineMOD's ape, and measures on a synthetic BOP test set
with ground-truth boxes what the demo reports: final mean loss, median rotation error and
ADD recall. Two diagnostics tell a network that learned the object from one that collapsed:

- *spread*: the per-pixel standard deviation of the reconstructions across a batch, divided
  by that of the targets; ~0 means every input gets the same (mean) image.
- *mean output*: the average reconstructed intensity next to the targets'; far below it
  means the sigmoid output collapsed to black.

Results are cached per candidate under ``runs/demo_scale/`` (rerunning continues) and the
table is written into bench/RESULTS.md, section ``demo-scale``.

    nice -n 5 .venv/bin/python bench/demo_scale.py            # all candidates
    nice -n 5 .venv/bin/python bench/demo_scale.py --only e2e  # one candidate
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import environment, write_section

from aae.data.backgrounds import BackgroundPool
from aae.data.bop import BopDataset
from aae.data.settings import TrainingSetConfig
from aae.data.synthetic import make_bop_dataset, make_object
from aae.data.training_set import TrainingData, build_training_set
from aae.net.configs import BOP, SUNDERMEYER
from aae.net.settings import NetworkSettings
from aae.net.training import train_network
from aae.pose.codebook import Codebook, CodebookViews
from aae.pose.evaluate import evaluate_on_bop
from aae.profiles import get_profile

OUT = Path("runs/demo_scale")
STAND_IN = "bracket"  # LineMOD ape's procedural stand-in (aae.search.STAND_INS)
QUICK = get_profile("quick")
# The quick profile's best network of its 2026-11-28 run (README), at 400 steps.
QUICK_BEST = {
    "NK1": 32,
    "NK2": 256,
    "NK3": 512,
    "NK4": 1024,
    "KE": 7,
    "KD": 3,
    "OPT": "Adam",
    "MB": 128,
    "LR": 2e-3,
}
FAST = {**SUNDERMEYER, "MB": 32, "LR": 2e-3}  # tests/test_pose_end_to_end.py: learns in 400 steps


@dataclass(frozen=True)
class Candidate:
    """One scale to measure."""

    name: str
    config: dict
    steps: int
    width: float = 0.125
    bootstrap_ratio: int = 4
    latent_dim: int = 128
    n_images: int = 512
    codebook: tuple[int, int] = (162, 12)
    note: str = ""
    extra_codebooks: tuple[tuple[int, int], ...] = field(default=())


CANDIDATES = (
    Candidate(
        "sundermeyer-400", SUNDERMEYER, 400, note="quick profile's benchmark: LR 2e-4, MB 64"
    ),
    Candidate("bop-400", BOP, 400, note="quick profile's BOP benchmark"),
    Candidate("lr2e-2-400", {**SUNDERMEYER, "MB": 32, "LR": 2e-2}, 400, note="LR 2e-2"),
    Candidate("quick-best-400", QUICK_BEST, 400, note="quick demo's searched best"),
    Candidate("e2e-400", FAST, 400, note="end-to-end test: LR 2e-3, MB 32"),
    Candidate("e2e-1000", FAST, 1000, extra_codebooks=((162, 36), (642, 12))),
    Candidate("mb64-1000", {**FAST, "MB": 64}, 1000),
    Candidate(
        "e2e-1000-mse", FAST, 1000, bootstrap_ratio=1, note="plain L2 instead of bootstrapped"
    ),
    Candidate("e2e-1000-w0.25", FAST, 1000, width=0.25),
    Candidate("e2e-1000-2048img", FAST, 1000, n_images=2048),
    Candidate("sundermeyer-1000", SUNDERMEYER, 1000, note="LR 2e-4 with 2.5x the steps"),
    Candidate("e2e-2000", FAST, 2000),
)


def training_set_config(n_images: int) -> TrainingSetConfig:
    return dataclasses.replace(QUICK.training_set, n_images=n_images)


#: The two synthetic test sets: LineMOD-like scenes (photo backgrounds), and the same with
#: one or two random boxes in front of every instance (LineMOD-Occluded-like).
TEST_SETS = {"unoccluded": False, "occluded": True}


def test_set(test_images: int, occluders: bool) -> BopDataset:
    """The quick profile's synthetic test set of the stand-in, rendered once."""
    root = OUT / (f"test_{test_images}" if occluders else f"test_noocc_{test_images}")
    if not (root / "complete").exists():
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        t = QUICK.test
        make_bop_dataset(
            root,
            [STAND_IN],
            n_images=test_images,
            seed=t.seed,
            image_size=(t.image_width, t.image_height),
            occluders=occluders,
        )
        (root / "complete").write_text("written\n")
    return BopDataset(root)


#: Bumped when the diagnostics change, so cached results get them recomputed.
DIAGNOSTICS_VERSION = 2


def _unit(images: np.ndarray) -> np.ndarray:
    """Images as floats in [0, 1], whether the pipeline gave uint8 or floats."""
    images = np.asarray(images, dtype=np.float32)
    return images / 255.0 if images.max() > 1.0 else images


def diagnostics(model, data: TrainingData) -> dict:
    """Spread and brightness of the reconstructions of 64 augmented training inputs, and how
    alike the encoder's codes of different inputs are (mean pairwise cosine; ~1: collapsed)."""
    inputs, targets = data.batches(64, seed=777, workers=0)[0]
    outputs = _unit(model.predict(inputs, verbose=0))
    targets = _unit(targets)
    codes = np.asarray(model.get_layer("encoder").predict(inputs, verbose=0), dtype=np.float64)
    codes /= np.maximum(np.linalg.norm(codes, axis=1, keepdims=True), 1e-12)
    cosines = codes @ codes.T
    return {
        "diagnostics_version": DIAGNOSTICS_VERSION,
        "spread": float(outputs.std(axis=0).mean() / max(targets.std(axis=0).mean(), 1e-8)),
        "mean_output": float(outputs.mean()),
        "mean_target": float(targets.mean()),
        "code_cosine": float(cosines[~np.eye(len(codes), dtype=bool)].mean()),
    }


#: Bumped when the evaluations change, so cached results get them recomputed.
EVALUATION_VERSION = 2


def evaluate(network, mesh, camera: TrainingSetConfig, candidate: Candidate, tests: dict) -> dict:
    """Median rotation error and ADD recall per codebook size and test set."""
    evaluations = {}
    for n_views, n_inplane in (candidate.codebook, *candidate.extra_codebooks):
        views = CodebookViews.cached(
            OUT / "cache", mesh, camera, n_views, n_inplane, progress=False
        )
        codebook = Codebook.from_views(network.encoder, views)
        evaluations[f"{n_views}x{n_inplane}"] = entry = {}
        for name, test in tests.items():
            evaluation = evaluate_on_bop(test, 1, network.encoder, codebook, progress=False)
            entry[name] = {
                "median_rotation_error": float(np.median(evaluation.rotation_errors)),
                "recall": evaluation.recall,
                "metric": evaluation.metric,
                "instances": len(evaluation.errors),
            }
    return evaluations


def measure(candidate: Candidate, mesh, tests: dict) -> dict:
    """Trains (or loads) one candidate and evaluates it; cached as JSON."""
    folder = OUT / candidate.name
    result_path = folder / "result.json"
    identity = {k: v for k, v in dataclasses.asdict(candidate).items() if k != "note"}
    identity["extra_codebooks"] = [list(c) for c in candidate.extra_codebooks]
    identity["codebook"] = list(candidate.codebook)
    saved = json.loads(result_path.read_text()) if result_path.is_file() else None
    if saved and saved["candidate"] != identity:
        saved = None
    camera = training_set_config(candidate.n_images)
    backgrounds = BackgroundPool.builtin(camera.image_size, QUICK.test.n_backgrounds, seed=0)
    data = TrainingData(
        build_training_set(mesh, camera, OUT / "cache", progress=False), backgrounds
    )
    settings = NetworkSettings(
        camera.image_size, candidate.width, candidate.latent_dim, candidate.bootstrap_ratio
    )
    started = time.perf_counter()
    # Loads the network when it is already trained.
    network = train_network(
        candidate.config, settings, data, candidate.steps, folder / "network", workers=1
    )
    if saved is None:
        saved = {
            "candidate": identity,
            "final_mean_loss": network.final_mean(QUICK.search.final_window),
            "first_mean_loss": float(np.mean(network.losses[: QUICK.search.final_window])),
            "training_seconds": network.seconds,
            "wall_seconds": time.perf_counter() - started,
        }
    if saved.get("diagnostics_version") != DIAGNOSTICS_VERSION:
        saved.update(diagnostics(network.model, data))
    if saved.get("evaluation_version") != EVALUATION_VERSION:
        saved["evaluations"] = evaluate(network, mesh, camera, candidate, tests)
        saved["evaluation_version"] = EVALUATION_VERSION
    result_path.write_text(json.dumps(saved, indent=1))
    return saved


def table(results: list[tuple[Candidate, dict]]) -> str:
    """The markdown table: one row per candidate and codebook size."""
    rows = [
        "| candidate | config | steps | width | bootstrap | images | final loss (first 80 steps) | "
        "spread | "
        "mean output / target | code cosine | codebook | median rotation error, unoccluded | ADD "
        "recall, unoccluded | "
        "median rotation error, occluded | ADD recall, occluded | training s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for candidate, r in results:
        c = candidate.config
        config = (
            f"NK {c['NK1']}/{c['NK2']}/{c['NK3']}/{c['NK4']}, KE {c['KE']}, KD {c['KD']}, "
            f"{c['OPT']}, MB {c['MB']}, LR {c['LR']:g}"
        )
        for i, (codebook, entry) in enumerate(r["evaluations"].items()):
            head = (
                f"| {candidate.name} | {config} | {candidate.steps} | {candidate.width:g} | "
                f"{candidate.bootstrap_ratio} | "
                f"{candidate.n_images} | {r['final_mean_loss']:.4f} ({r['first_mean_loss']:.4f}) | "
                f"{r['spread']:.2f} | "
                f"{r['mean_output']:.2f} / {r['mean_target']:.2f} | {r['code_cosine']:.2f}"
                if i == 0
                else "| ⤷ same network | | | | | | | | |"
            )
            cells = " | ".join(
                f"{entry[name]['median_rotation_error']:.1f}° | {100 * entry[name]['recall']:.1f}%"
                for name in TEST_SETS
            )
            time_cell = f"{r['training_seconds']:.0f}" if i == 0 else ""
            rows.append(f"{head} | {codebook} | {cells} | {time_cell} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="candidate names (default: all)")
    parser.add_argument(
        "--test-images", type=int, default=50, help="images of the synthetic test set"
    )
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    chosen = [c for c in CANDIDATES if not args.only or c.name in args.only]
    mesh = make_object(STAND_IN)
    tests = {name: test_set(args.test_images, occluders) for name, occluders in TEST_SETS.items()}
    results = []
    for candidate in chosen:
        r = measure(candidate, mesh, tests)
        e = next(iter(r["evaluations"].values()))["unoccluded"]
        print(
            f"{candidate.name}: loss {r['final_mean_loss']:.4f} spread {r['spread']:.2f} "
            f"out {r['mean_output']:.2f}/{r['mean_target']:.2f} cos {r['code_cosine']:.2f} rot "
            f"{e['median_rotation_error']:.1f} "
            f"ADD {100 * e['recall']:.1f}% ({r['training_seconds']:.0f} s)",
            flush=True,
        )
        results.append((candidate, r))
    text = table(results)
    print(text)
    if not args.no_write and not args.only:
        write_section(
            "demo-scale", SECTION.format(environment=environment(), table=text, n=args.test_images)
        )
    return 0


SECTION = """## Demo scale: which small AAE learns poses on 2 cores (`bench/demo_scale.py`)

{environment}

Each candidate is trained with `aae.net.training.train_network` on the quick profile's training
set of the procedural ape stand-in (32² crops, photo/clutter backgrounds, the original
augmentation), then evaluated like the demo: a codebook of the given views x in-plane
rotations, ground-truth boxes, two synthetic BOP test sets of {n} images each with photo
backgrounds: *unoccluded* (like LineMOD, what the paper evaluates) and *occluded* (the same
generator with one or two random boxes in front of every instance, harder than LM-O's
average). *spread*: std of the reconstructions across 64 inputs over that of
the targets (≈0: the network outputs one mean image for every input); *mean output /
target*: average intensity (output far below target: collapsed to black); *code cosine*:
mean cosine similarity of the encoder's codes of different inputs (≈1: every input gets the
same code, so the codebook lookup is arbitrary). Training time
was measured on a machine shared with other jobs.

{table}
"""


if __name__ == "__main__":
    sys.exit(main())
