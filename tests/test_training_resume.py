"""An AAE network interrupted after a checkpoint resumes to the same result as an
uninterrupted one: same weights and optimizer state, and the same batches from the step it
reached on (the batch stream is seeded by optimizer step)."""

import numpy as np
import pytest

import aae.net.training
from aae.data.backgrounds import BackgroundPool
from aae.data.settings import TEMPLATE_K, TrainingSetConfig
from aae.data.synthetic import make_object
from aae.data.training_set import TrainingData, build_training_set
from aae.net.configs import SUNDERMEYER
from aae.net.settings import NetworkSettings
from aae.net.training import train_network
from kt_predictive.checkpoint import training_state_path

QUARTER_K = tuple(
    tuple(v * (0.25 if i < 2 else 1.0) for v in row) for i, row in enumerate(TEMPLATE_K)
)
CAMERA = TrainingSetConfig(
    n_images=64, image_size=32, render_width=180, render_height=135, K=QUARTER_K
)
SETTINGS = NetworkSettings(image_size=32, width=0.0625, latent_dim=16)
CONFIG = {**SUNDERMEYER, "MB": 32, "LR": 2e-3}


class Crash(Exception):
    pass


def test_an_interrupted_network_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    data = TrainingData(
        build_training_set(make_object("bracket"), CAMERA, tmp_path / "cache", progress=False),
        BackgroundPool.builtin(32, 32),
    )
    whole = train_network(
        CONFIG,
        SETTINGS,
        data,
        steps=30,
        directory=tmp_path / "whole",
        workers=0,
        checkpoint_every=10,
    )

    # The first run crashes right after writing its checkpoint at step 20.
    save = aae.net.training.save_training_state

    def save_then_crash(path, model, losses, seconds=0.0):
        save(path, model, losses, seconds)
        if len(losses) == 20:
            raise Crash

    monkeypatch.setattr(aae.net.training, "save_training_state", save_then_crash)
    with pytest.raises(Crash):
        train_network(
            CONFIG,
            SETTINGS,
            data,
            steps=30,
            directory=tmp_path / "resumed",
            workers=0,
            checkpoint_every=10,
        )
    monkeypatch.setattr(aae.net.training, "save_training_state", save)
    assert training_state_path(tmp_path / "resumed").exists()

    resumed = train_network(
        CONFIG,
        SETTINGS,
        data,
        steps=30,
        directory=tmp_path / "resumed",
        workers=0,
        checkpoint_every=10,
    )
    assert len(resumed.losses) == 30
    # Steps 21-30 trained on the same batches from the same state: the same losses.
    np.testing.assert_allclose(resumed.losses, whole.losses, rtol=1e-4)
    for a, b in zip(resumed.model.get_weights(), whole.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
