"""Projected disk and RAM of one paper-profile run (one object) on the GPU machine.

The paper profile cannot run on this CPU, but its storage follows from numbers that can be
measured here: the bytes of a network checkpoint per parameter (measured on small stand-in
AAEs, in the two formats the search writes: ``save_weights``, weights only, and
``kt_predictive.checkpoint.save_training_state``, weights + optimizer state + loss curve)
and the parameter counts of the paper-size networks (built at 128², width 1, and counted by
Keras; the mean over the search space from the layer-shape formula, checked against those
counts). Which files exist at once, and how many times each is written, is the policy of
``kt_predictive.PredictiveTuner`` that tests/test_search_disk.py measures on a real search
of a small network (checkpoints per trial, peak files); this script projects it to paper
size. Writes section ``paper-resources`` of bench/RESULTS.md.

    python bench/paper_resources.py     # ~1 min
"""

from __future__ import annotations

import itertools
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras
import numpy as np
from results import environment, write_section

from aae.net.configs import BOP, NAS2, SEARCH_SPACE, SUNDERMEYER
from aae.net.settings import NetworkSettings
from aae.net.training import save_weights_only
from aae.profiles import get_profile
from kt_predictive.checkpoint import save_training_state
from kt_predictive.decisions import REFIT_CANDIDATE_FACTOR

SECTION = "paper-resources"
LARGEST = {**NAS2, "NK2": 256, "KD": 7}  # (256, 256, 1024, 1024), KE 7, KD 7
GIB = 2**30
#: Stand-in networks whose checkpoint files are measured (small enough to train here).
STAND_INS = (
    ("tiny profile", NetworkSettings(image_size=32, width=0.0625, latent_dim=32)),
    ("quick profile", NetworkSettings(image_size=32, width=0.125, latent_dim=128)),
    ("64², width 1/4", NetworkSettings(image_size=64, width=0.25, latent_dim=128)),
)
GPU_RAM_GIB, GPU_DISK_GIB = 128, 64
#: The expected GPU step time of SUNDERMEYER at batch 64 (section aae-pipeline).
SUNDERMEYER_STEP_S = 0.015


def parameter_count(config: dict, image_size: int = 128, latent_dim: int = 128) -> int:
    """Parameters of the AAE of ``config`` (width 1) from its layer shapes (aae.net.model)."""
    nk = [config[k] for k in ("NK1", "NK2", "NK3", "NK4")]
    ke, kd, side = config["KE"], config["KD"], image_size // 16

    def conv(k: int, c_in: int, c_out: int) -> int:
        return k * k * c_in * c_out + c_out

    encoder = (
        conv(ke, 3, nk[0])
        + conv(ke, nk[0], nk[1])
        + conv(ke, nk[1], nk[2])
        + conv(ke, nk[2], nk[3])
    )
    encoder += side * side * nk[3] * latent_dim + latent_dim
    decoder = latent_dim * side * side * nk[3] + side * side * nk[3]
    decoder += (
        conv(kd, nk[3], nk[2])
        + conv(kd, nk[2], nk[1])
        + conv(kd, nk[1], nk[0])
        + conv(kd, nk[0], 3)
    )
    return encoder + decoder


def environment_bytes() -> int:
    """Bytes of the files of this Python environment (``sys.prefix``)."""
    total = 0
    for folder, _, files in os.walk(sys.prefix):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total


def measure_checkpoints(early_steps: int) -> list[tuple[str, int, int, int, int]]:
    """(stand-in, parameters, weights-only bytes, Keras ``save_weights`` bytes of the compiled
    model, full-checkpoint bytes) of real files."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for i, (label, settings) in enumerate(STAND_INS):
            model = settings.build(SUNDERMEYER)  # Adam
            x = np.random.default_rng(0).integers(
                0, 256, (4, settings.image_size, settings.image_size, 3), np.uint8
            )
            model.train_on_batch(x, x)  # the optimizer's moments exist and are non-zero
            weights = Path(folder, f"stand_in_{i}.weights.h5")
            save_weights_only(model, weights)  # what a trained network's folder keeps
            compiled = Path(folder, f"stand_in_{i}.compiled.weights.h5")
            model.save_weights(compiled)  # Keras' own: the optimizer's variables too
            full = Path(folder, f"stand_in_{i}.npz")
            save_training_state(full, model, np.zeros(early_steps, np.float32), 1.0)
            sizes = (weights.stat().st_size, compiled.stat().st_size, full.stat().st_size)
            rows.append((label, model.count_params(), *sizes))
            keras.backend.clear_session()
    return rows


def main() -> None:
    profile = get_profile("paper")
    search, network = profile.search, profile.network
    measured = measure_checkpoints(search.early_steps)
    # Bytes per parameter from the largest stand-in (file overheads are fixed, so the
    # largest file is the most representative of paper-size files).
    _, params, weight_bytes, _, full_bytes = measured[-1]
    per_weight, per_full = weight_bytes / params, full_bytes / params

    named = {}
    for name, config in (
        ("SUNDERMEYER", SUNDERMEYER),
        ("BOP", BOP),
        ("NAS-2", NAS2),
        ("largest", LARGEST),
    ):
        model = NetworkSettings(image_size=128).build(config)
        named[name] = model.count_params()
        assert named[name] == parameter_count(config), (
            f"layer-shape formula disagrees with Keras for {name}"
        )
        del model
        keras.backend.clear_session()
    architectures = list(
        itertools.product(*(SEARCH_SPACE[k] for k in ("NK1", "NK2", "NK3", "NK4", "KE", "KD")))
    )
    counts = [
        parameter_count(dict(zip(("NK1", "NK2", "NK3", "NK4", "KE", "KD"), a, strict=True)))
        for a in architectures
    ]
    mean_params, max_params = statistics.fmean(counts), max(counts)
    others = [k for k in SEARCH_SPACE if k not in ("NK1", "NK2", "NK3", "NK4", "KE", "KD")]
    largest_configs = list(itertools.product(*(SEARCH_SPACE[k] for k in others)))
    assert max_params == parameter_count(LARGEST), "LARGEST is not the largest architecture"

    def weights(p: float) -> float:
        return p * per_weight

    def full(p: float) -> float:
        return p * per_full

    n1, n2, k = search.initial_trials, search.max_iterations, search.top_k
    # Checkpoints a trial writes (kt_predictive.callbacks.StepBudgetCallback): at every early
    # window and every checkpoint_every steps (the tuner's default: the window) below
    # full_steps; a continuation starts at early_steps.
    checkpoint_every, full_steps = search.window, search.full_steps
    early_ends = set(range(search.window, search.early_steps + 1, search.window))

    def checkpoints(start: int, stop: int) -> int:
        every = set(range(checkpoint_every, full_steps, checkpoint_every))
        return len({s for s in every | early_ends if start < s <= stop and s < full_steps})

    written = {
        "phase 1 (full training)": checkpoints(0, full_steps),
        "explored (early budget; at most: screening may stop it sooner)": checkpoints(
            0, search.early_steps
        ),
        "continuation (early budget -> full)": checkpoints(search.early_steps, full_steps),
    }
    trials = dict(zip(written, (n1, n2, k), strict=True))
    ts = profile.training_set
    training_set = ts.n_images * (2 * ts.image_size**2 * 3 + ts.image_size**2 + 9 * 8)
    views = profile.codebook.n_views * profile.codebook.n_inplane
    codebook_views = views * (ts.image_size**2 * 3 + 9 * 4 + 4 * 4)
    codes = views * network.latent_dim * 4
    backgrounds = profile.test.n_backgrounds * ts.image_size**2 * 3
    benchmarks = weights(named["SUNDERMEYER"]) + weights(named["BOP"])

    keep = search.keep_models
    # Early checkpoints kept at once: the candidates the oracle may still continue (top_k, or
    # twice that when the predictor is refitted in phase 4), the trial being trained, and the
    # temporary file of its next checkpoint (written beside the last one, then renamed).
    pool = k * (REFIT_CANDIDATE_FACTOR if search.refit_predictor else 1)
    early_files = pool + 2
    # Weights at once: the keep_models best, the best finalized candidate, and the network
    # just trained (deleted when its trial settles if it is not among the best).
    weight_files = keep + 2

    def disk(p: float, policy: str) -> dict[str, float]:
        if policy == "now":
            return {
                f"fully trained searched networks, weights only: keep_models = {keep} + the best "
                f"finalized + the one just trained ({weight_files} files)": weight_files
                * weights(p),
                f"early checkpoints (weights + Adam): {pool} candidates + the running trial + "
                f"its next checkpoint's temporary file ({early_files} files)": early_files
                * full(p),
                "Sundermeyer and BOP, weights only": benchmarks,
            }
        if policy == "all weights":
            return {
                f"phase 1: {n1} fully trained networks, weights only": n1 * weights(p),
                f"early checkpoints (weights + Adam) of at most top_k + 1 = {k + 1} trials": (k + 1)
                * full(p),
                f"finalization: {k} fully trained candidates, weights only": k * weights(p),
                "Sundermeyer and BOP, weights only": benchmarks,
            }
        return {
            f"phase 1: {n1} networks, full checkpoint (weights + Adam) + keras-tuner's "
            "weights file": n1 * 2 * full(p),
            f"exploration: {n2} early checkpoints (weights + Adam) + keras-tuner's "
            "weights files": n2 * 2 * full(p),
            f"finalization: {k} candidates, full checkpoint + keras-tuner's weights file": k
            * 2
            * full(p),
            "Sundermeyer and BOP, weights only": benchmarks,
        }

    shared = {
        f"training set cache ({ts.n_images:,} pairs at {ts.image_size}², "
        "uint8 + masks)": training_set,
        f"codebook views ({views:,} crops, uint8)": codebook_views,
    }
    lines = [
        "## Projected disk and RAM of a paper-profile run (one object)",
        "",
        environment(),
        "",
        "Reproduce: `python bench/paper_resources.py`. Measured: checkpoint files of stand-in "
        "networks "
        "(SUNDERMEYER's filters scaled, Adam, after one training step); counted by Keras: the "
        "parameters of the paper-size networks. Everything else is arithmetic on those numbers "
        "and the paper profile (`aae.profiles`).",
        "",
        "### Checkpoint bytes per parameter (measured)",
        "",
        "| stand-in network | parameters | weights only (`aae.net.training.save_weights_only`) | "
        "bytes/param | Keras `save_weights` of the compiled model | bytes/param | "
        "`save_training_state` (weights + Adam + curve) | bytes/param |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, params, w, c, f in measured:
        lines.append(
            f"| {label} | {params:,} | {w:,} | {w / params:.2f} | {c:,} | {c / params:.2f} | {f:,} "
            f"| {f / params:.2f} |"
        )
    lines += [
        "",
        f"The projection uses the largest stand-in's ratios: {per_weight:.2f} bytes/param weights "
        "only, "
        f"{per_full:.2f} bytes/param with Adam's two moments (float32: 4 and 12 plus file "
        "overhead; "
        f"the curve of {search.early_steps:,} float32 losses is included). Keras 3's "
        "`save_weights` of a "
        "compiled model writes the optimizer's variables too (the middle column): a trained "
        "network's "
        "folder (`TrainedNetwork.save`) now writes through an uncompiled model over the same "
        "layers, "
        "weights only; the tuner's per-trial weights file, if written by `save_weights` of the "
        "compiled model, is the size of a full checkpoint.",
        "",
        "### Parameters of paper-size networks (128², width 1, latent 128)",
        "",
        "| network | parameters | weights file | full checkpoint |",
        "|---|---|---|---|",
    ]
    for name, p in named.items():
        lines.append(
            f"| {name} | {p:,} | {weights(p) / 2**20:,.0f} MiB | {full(p) / 2**20:,.0f} MiB |"
        )
    lines.append(
        f"| mean over the {len(architectures):,} architectures of the space (uniform) | "
        f"{mean_params:,.0f} | "
        f"{weights(mean_params) / 2**20:,.0f} MiB | {full(mean_params) / 2**20:,.0f} MiB |"
    )
    lines += [
        "",
        "Model RAM at a time counts the networks' weights and Adam's moments (3 x 4 bytes per "
        "parameter; "
        "gradients and activations live on the GPU).",
        "",
        f"### Disk per object (paper profile: {n1} + {n2} + {k} networks)",
        "",
        "What a run keeps at once (`kt_predictive.PredictiveTuner`, measured on a real search of "
        "a small network by `tests/test_search_disk.py`): a trial writes one full checkpoint "
        "(weights + Adam) at every early window and every `checkpoint_every` steps (default: the "
        "window), each replacing the last through a temporary file; an explored trial's "
        "checkpoint stays only while the oracle may continue it (one of the "
        f"{pool} candidates{' (2 x top_k: refit_predictor)' if search.refit_predictor else ''}); a "
        "fully trained network keeps its weights only (no optimizer state), and only while it "
        f"is among the `search.keep_models` = {keep} lowest real final losses or is the best "
        "finalized candidate: the tuner deletes the others' weights when a trial settles "
        "(`oracle.trial_settled`). The runner evaluates every network at the end of its trial, "
        "before that, so the report still covers all of them. The peak is during exploration "
        "or finalization, when the early checkpoints of all candidates exist; 'mean' takes every "
        "network at the space's mean size (phase 1 samples uniformly; exploration concentrates "
        "on a few values, which may be larger or smaller), 'worst' at the largest: "
        f"{len(largest_configs):,} configurations of the space have the largest architecture, "
        f"so all {early_files - 1} early checkpoints of real trials can be of that size.",
        "",
        "| item (peak, at once) | mean | worst |",
        "|---|---|---|",
    ]
    now_mean, now_max = disk(mean_params, "now"), disk(max_params, "now")
    for (label, am), ax in zip(now_mean.items(), now_max.values(), strict=True):
        lines.append(f"| {label} | {am / GIB:,.2f} GiB | {ax / GIB:,.2f} GiB |")
    for label, value in shared.items():
        lines.append(f"| {label} | {value / GIB:,.2f} GiB | {value / GIB:,.2f} GiB |")
    extra = sum(shared.values())
    totals = {
        (policy, size): sum(disk(p, policy).values()) + extra
        for policy in ("now", "all weights", "every file")
        for size, p in (("mean", mean_params), ("worst", max_params))
    }
    lines.append(
        f"| **total** | **{totals['now', 'mean'] / GIB:,.1f} GiB** | "
        f"**{totals['now', 'worst'] / GIB:,.1f} GiB** |"
    )
    margin = GPU_DISK_GIB - totals["now", "worst"] / GIB
    lines += [
        "",
        f"Against the GPU machine's {GPU_DISK_GIB} GiB disk the worst case leaves "
        f"{margin:,.1f} GiB ({margin / GPU_DISK_GIB:.0%}) for LineMOD's images, the backgrounds "
        f"and the Python environment (this machine's, TensorFlow and JAX for the CPU: "
        f"{environment_bytes() / GIB:,.1f} GiB; CUDA wheels come on top)"
        + (": it fits." if margin > 0 else ": it does NOT fit."),
        "",
        "The same run under the earlier policies (same arithmetic):",
        "",
        "| policy | mean | worst |",
        "|---|---|---|",
        f"| every trial keeps its full checkpoint and keras-tuner's weights file (written with "
        f"the optimizer's variables) | {totals['every file', 'mean'] / GIB:,.1f} GiB | "
        f"{totals['every file', 'worst'] / GIB:,.1f} GiB |",
        f"| early checkpoints released, every fully trained network's weights kept "
        f"({n1} + {k}) | {totals['all weights', 'mean'] / GIB:,.1f} GiB | "
        f"{totals['all weights', 'worst'] / GIB:,.1f} GiB |",
        f"| now: weights of keep_models = {keep} networks | {totals['now', 'mean'] / GIB:,.1f} "
        f"GiB | {totals['now', 'worst'] / GIB:,.1f} GiB |",
        "",
        f"The early checkpoints are now the largest item ({early_files} x "
        f"{full(max_params) / GIB:,.2f} GiB at the largest network). The {pool} candidates' "
        "checkpoints are what phase 4 continues (weights and Adam's moments, as the paper "
        "resumes them); fewer would need a smaller `search.top_k`, continuations that restart "
        "Adam, or retraining each candidate's first "
        f"{search.early_steps:,} steps from its seed (about "
        f"{k * search.early_steps / search.full_steps:.0f} full trainings for {k} candidates, "
        "and not bitwise the same on a GPU) - changes of the method, not made here. The running "
        "trial's checkpoint and its temporary file are what resuming a killed run costs. Each "
        f"candidate at the largest size costs {full(max_params) / GIB:,.2f} GiB, each kept "
        f"network {weights(max_params) / GIB:,.2f} GiB: `--set search.top_k=...` and "
        "`--set search.keep_models=...` are the levers on a smaller disk.",
        "",
        "### Bytes written per trial",
        "",
        f"Checkpoints every {checkpoint_every:,} steps below the full budget and at every early "
        f"window (the counts `tests/test_search_disk.py` checks on its small search), plus the "
        "weights of a fully trained network once:",
        "",
        "| trial | checkpoints written | weights files | mean size | largest network |",
        "|---|---|---|---|---|",
    ]

    def trial_bytes(role: str, p: float) -> float:
        return written[role] * full(p) + (0 if role.startswith("explored") else 1) * weights(p)

    for role, count in written.items():
        lines.append(
            f"| {role} | {count} | {0 if role.startswith('explored') else 1} | "
            f"{trial_bytes(role, mean_params) / GIB:,.1f} GiB | "
            f"{trial_bytes(role, max_params) / GIB:,.1f} GiB |"
        )
    run_total = sum(trials[role] * trial_bytes(role, mean_params) for role in written)
    sundermeyer_rate = full(named["SUNDERMEYER"]) / (checkpoint_every * SUNDERMEYER_STEP_S)
    lines += [
        "",
        f"A whole run at the mean size writes about {run_total / 2**40:,.1f} TiB of checkpoints "
        f"({n1} + {n2} + {k} trials; each write replaces the last). At "
        f"{SUNDERMEYER_STEP_S * 1000:.0f} ms per Sundermeyer step (section aae-pipeline) its "
        f"checkpoint of {full(named['SUNDERMEYER']) / 2**20:,.0f} MiB every {checkpoint_every:,} "
        f"steps is {sundermeyer_rate / 2**20:,.0f} MiB/s of writes on average, far below a "
        "local SSD's rate; the total is what the disk's write endurance has to allow.",
        "",
        "### RAM of the run's process (host memory)",
        "",
        "| item | GiB |",
        "|---|---|",
    ]
    two_models = 2 * max_params * 12
    ram = {
        f"training set in memory ({ts.n_images:,} pairs; forked workers share it "
        "copy-on-write)": training_set,
        f"background pool ({profile.test.n_backgrounds:,} crops at {ts.image_size}²)": backgrounds,
        "two models at once (largest network: weights + Adam moments, float32)": two_models,
        f"codebook views ({views:,} crops; held from the search's start: every network is "
        "evaluated when it is trained) + one network's codes": codebook_views + codes,
        "queue of prepared batches (10 batches of 128 images, uint8 inputs + targets)": 10
        * 128
        * 2
        * ts.image_size**2
        * 3,
    }
    for label, value in ram.items():
        lines.append(f"| {label} | {value / GIB:,.2f} |")
    lines.append(f"| **total** | **{sum(ram.values()) / GIB:,.1f}** |")
    held_before = (n1 + k + 2) * mean_params * 4
    lines += [
        "",
        f"Of the GPU machine's {GPU_RAM_GIB} GiB, plus each worker process's private memory "
        "(interpreter, "
        "imgaug, one batch at a time: not measured here) and the backend's runtime. Before the "
        "runner held "
        f"at most two models, it kept every fully trained network until the report: {n1 + k + 2} "
        "networks, "
        f"{held_before / GIB:,.1f} GiB of weights alone at the mean size "
        f"({(n1 + k + 2) * max_params * 4 / GIB:,.0f} GiB at the largest).",
    ]
    write_section(SECTION, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
