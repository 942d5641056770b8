"""Projected disk and RAM of one paper-profile run (one object) on the GPU machine.

The paper profile cannot run on this CPU, but its storage follows from numbers that can be
measured here: the bytes of a network checkpoint per parameter (measured on small stand-in
AAEs, in the two formats the search writes: ``save_weights``, weights only, and
``kt_predictive.checkpoint.save_training_state``, weights + optimizer state + loss curve)
and the parameter counts of the paper-size networks (built at 128², width 1, and counted by
Keras; the mean over the search space from the layer-shape formula, checked against those
counts). Writes section ``paper-resources`` of bench/RESULTS.md.

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

    def weights(p: float) -> float:
        return p * per_weight

    def full(p: float) -> float:
        return p * per_full

    n1, n2, k = search.initial_trials, search.max_iterations, search.top_k
    ts = profile.training_set
    training_set = ts.n_images * (2 * ts.image_size**2 * 3 + ts.image_size**2 + 9 * 8)
    views = profile.codebook.n_views * profile.codebook.n_inplane
    codebook_views = views * (ts.image_size**2 * 3 + 9 * 4 + 4 * 4)
    codes = views * network.latent_dim * 4
    backgrounds = profile.test.n_backgrounds * ts.image_size**2 * 3
    benchmarks = weights(named["SUNDERMEYER"]) + weights(named["BOP"])

    def disk(p: float, pruned: bool) -> dict[str, float]:
        if pruned:
            return {
                f"phase 1: {n1} fully trained networks, weights only": n1 * weights(p),
                "exploration: early checkpoints (weights + Adam) of at most top_k + 1 = "
                f"{k + 1} trials": (k + 1) * full(p),
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
        "Assumptions: each exploration trial leaves one early checkpoint with Adam state, kept "
        f"until it can no longer be picked (its predicted loss is not among the {k} lowest so "
        f"far), so at most top_k + 1 exist at once and the {k} candidates' after exploration; a "
        "fully trained network keeps its weights only; without pruning (the 'before' column) every "
        "trial keeps its full checkpoint and keras-tuner's per-trial weights file (written with "
        "the optimizer's variables: full-checkpoint size). 'mean' takes "
        "every network at the space's mean size (phase 1 samples uniformly; exploration "
        "concentrates "
        "on a few values, which may be larger or smaller); 'worst' takes every network at the "
        "largest.",
        "",
        "| item | before, mean | before, worst | after, mean | after, worst |",
        "|---|---|---|---|---|",
    ]
    totals = {}
    before_mean, before_max = disk(mean_params, False), disk(max_params, False)
    after_mean, after_max = disk(mean_params, True), disk(max_params, True)
    for (label_b, bm), bx in zip(before_mean.items(), before_max.values(), strict=True):
        lines.append(f"| {label_b} | {bm / GIB:,.1f} GiB | {bx / GIB:,.1f} GiB | | |")
    for (label_a, am), ax in zip(after_mean.items(), after_max.values(), strict=True):
        lines.append(f"| {label_a} | | | {am / GIB:,.2f} GiB | {ax / GIB:,.2f} GiB |")
    for label, value in shared.items():
        lines.append(
            f"| {label} | {value / GIB:,.2f} GiB | {value / GIB:,.2f} GiB | {value / GIB:,.2f} GiB "
            f"| {value / GIB:,.2f} GiB |"
        )
    extra = sum(shared.values())
    for name, parts in (
        ("before, mean", before_mean),
        ("before, worst", before_max),
        ("after, mean", after_mean),
        ("after, worst", after_max),
    ):
        totals[name] = sum(parts.values()) + extra
    lines.append(
        "| **total** | "
        + " | ".join(
            f"**{totals[n] / GIB:,.1f} GiB**"
            for n in ("before, mean", "before, worst", "after, mean", "after, worst")
        )
        + " |"
    )
    fits = {n: t <= GPU_DISK_GIB * GIB for n, t in totals.items()}
    lines += [
        "",
        f"Against the GPU machine's {GPU_DISK_GIB} GiB disk: "
        + ", ".join(f"{n} {'fits' if ok else 'does not fit'}" for n, ok in fits.items())
        + " (LineMOD itself, the backgrounds and the Python environment come on top).",
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
        f"codebook views while evaluating ({views:,} crops) + one network's codes": codebook_views
        + codes,
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
