"""Training one AAE configuration for a number of optimizer steps, resumably, and its files.

A trained network lives in a folder: ``network.json`` (the configuration, the architecture
settings and the steps trained), ``network.weights.h5`` and ``losses.npy`` (the loss of every
step). While it trains, ``training_state.npz`` holds a full checkpoint (weights, optimizer
state, loss curve), so a killed run continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from aae.data.training_set import TrainingData
from aae.errors import AAEError, MissingFileError
from aae.net.configs import validate_config
from aae.net.settings import NetworkSettings
from kt_predictive.callbacks import StepLossRecorder
from kt_predictive.checkpoint import load_training_state, save_training_state, training_state_path
from kt_predictive.storage import read_json, write_json

NETWORK_FILE = "network.json"
WEIGHTS_FILE = "network.weights.h5"
LOSSES_FILE = "losses.npy"


def save_weights_only(model: keras.Model, path: str | os.PathLike) -> None:
    """Writes ``model``'s weights, without its optimizer's variables, to ``path`` (.weights.h5).

    Keras 3's ``save_weights`` of a compiled model also writes the optimizer's variables:
    Adam's two moments triple a file that a fully trained network, which never resumes, does
    not need. An uncompiled model over the same layers has no optimizer, and its file loads
    into the compiled model as before (``TrainedNetwork.load``).
    """
    keras.Model(model.inputs, model.outputs, name=model.name).save_weights(path)


@dataclass(frozen=True, eq=False)
class TrainedNetwork:
    """A network trained for ``len(losses)`` steps.

    Attributes:
        config: The nine hyperparameters.
        settings: The fixed architecture settings.
        model: The compiled, trained autoencoder.
        losses: The training loss of every step (NaN or inf where it diverged).
        seconds: Wall-clock training time.
    """

    config: dict
    settings: NetworkSettings
    model: keras.Model
    losses: np.ndarray
    seconds: float

    @property
    def encoder(self) -> keras.Model:
        return self.model.get_layer("encoder")

    @property
    def diverged(self) -> bool:
        return bool(len(self.losses)) and not math.isfinite(float(self.losses[-1]))

    def final_mean(self, final_window: int) -> float:
        """Mean loss over the last ``final_window`` steps (the search's score); inf if diverged."""
        if self.diverged:
            return math.inf
        return float(np.mean(self.losses[-final_window:], dtype=np.float64))

    def save(self, directory: str | os.PathLike) -> Path:
        """Writes the network's files into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_weights_only(self.model, directory / WEIGHTS_FILE)
        np.save(directory / LOSSES_FILE, self.losses)
        # Written last: its presence marks a complete network folder.
        write_json(
            directory / NETWORK_FILE,
            {
                "config": self.config,
                "settings": dataclasses.asdict(self.settings),
                "steps": len(self.losses),
                "seconds": self.seconds,
            },
        )
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> TrainedNetwork:
        """Reads a network folder written by :meth:`save`."""
        directory = Path(directory)
        if not (directory / NETWORK_FILE).is_file():
            raise MissingFileError(
                f"{directory} holds no trained network ({NETWORK_FILE} is missing); train one "
                "with `aae train`"
            )
        meta = read_json(directory / NETWORK_FILE, "Train the network again (`aae train`).")
        settings = NetworkSettings(**meta["settings"])
        model = settings.build(meta["config"])
        model.optimizer.build(model.trainable_variables)
        with warnings.catch_warnings():
            # Files of save_weights_only carry no optimizer state, by design (older files
            # do, and it loads).
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model.load_weights(directory / WEIGHTS_FILE)
        return cls(
            meta["config"], settings, model, np.load(directory / LOSSES_FILE), meta["seconds"]
        )


class _TrainFor(StepLossRecorder):
    """Stops after ``steps`` steps or a non-finite loss, checkpointing along the way; with
    ``progress``, shows a bar over the run's steps (Keras's own counts the batches of an
    epoch, 1000, whatever the run's length)."""

    def __init__(
        self,
        steps: int,
        losses,
        seconds: float,
        save,
        checkpoint_every: int,
        progress: bool = False,
    ):
        super().__init__(losses, seconds=seconds)
        self.target = steps
        self.save = save
        self.checkpoint_every = checkpoint_every
        self.progress = keras.utils.Progbar(steps, unit_name="step") if progress else None

    def after_step(self, value: float) -> bool:
        if self.progress is not None:
            self.progress.update(self.steps, [("loss", value)], finalize=self.steps >= self.target)
        if not math.isfinite(value) or self.steps >= self.target:
            return True
        if self.steps % self.checkpoint_every == 0:
            self.save(np.asarray(self.losses))
        return False


def train_network(
    config: dict,
    settings: NetworkSettings,
    data: TrainingData,
    steps: int,
    directory: str | os.PathLike,
    seed: int = 0,
    workers: int | None = None,
    checkpoint_every: int = 1000,
    verbose: int | str = 0,
) -> TrainedNetwork:
    """Trains ``config`` for ``steps`` optimizer steps with batch size MB, or loads it.

    A complete network already in ``directory`` with the same configuration, settings and
    steps is loaded instead of trained; an interrupted one resumes from its checkpoint.
    Training stops early, and the result reports ``diverged``, if the loss stops being
    finite.
    """
    config = validate_config(config)
    if not isinstance(steps, int) or steps < 1:
        raise AAEError(f"steps must be a positive number of optimizer steps, got {steps!r}")
    directory = Path(directory)
    meta_path = directory / NETWORK_FILE
    if meta_path.is_file():
        meta = read_json(meta_path, "Delete the folder to train the network again.")
        wanted = {"config": config, "settings": dataclasses.asdict(settings), "steps": steps}
        # Settings added later (precision) are absent from older folders: their defaults.
        found = {
            **meta,
            "settings": {**dataclasses.asdict(NetworkSettings()), **meta.get("settings", {})},
        }
        if {key: found.get(key) for key in wanted} == wanted:
            return TrainedNetwork.load(directory)
        raise AAEError(
            f"{directory} already holds another network ({meta}); choose another folder or "
            "delete it"
        )
    keras.utils.set_random_seed(seed)
    model = settings.build(config)
    state_path = training_state_path(directory)
    losses, seconds = load_training_state(state_path, model) if state_path.exists() else ([], 0.0)
    recorder = _TrainFor(steps, losses, seconds, None, checkpoint_every, progress=bool(verbose))
    # Saving needs the recorder's running clock, so it is attached once the recorder exists.
    recorder.save = lambda curve: save_training_state(state_path, model, curve, recorder.seconds)
    if recorder.steps < steps:
        # A resumed network continues the batch stream at the step it reached.
        batches = data.batches(
            config["MB"], seed=seed, workers=workers, initial_step=recorder.steps
        )
        epochs = math.ceil((steps - recorder.steps) / len(batches))
        model.fit(batches, epochs=epochs, callbacks=[recorder], verbose=0, shuffle=False)
    network = TrainedNetwork(
        config, settings, model, np.asarray(recorder.losses, dtype=np.float32), recorder.seconds
    )
    network.save(directory)
    state_path.unlink(missing_ok=True)
    return network
