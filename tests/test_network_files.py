"""A trained network's folder keeps its weights only: no optimizer state (Keras 3's
save_weights of a compiled model would write Adam's moments too, 3x the bytes)."""

import h5py
import numpy as np

from aae.net.configs import SUNDERMEYER
from aae.net.settings import NetworkSettings
from aae.net.training import WEIGHTS_FILE, TrainedNetwork

SETTINGS = NetworkSettings(image_size=32, width=0.0625, latent_dim=16)


def _trained():
    model = SETTINGS.build(SUNDERMEYER)  # Adam
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    for _ in range(2):
        model.train_on_batch(x, x)
    return TrainedNetwork(SUNDERMEYER, SETTINGS, model, np.array([0.3, 0.2], np.float32), 1.0), x


def _stored_values(path) -> int:
    with h5py.File(path) as file:
        count = 0

        def add(name, item):
            nonlocal count
            if isinstance(item, h5py.Dataset):
                count += item.size

        file.visititems(add)
        return count


def test_saved_network_has_weights_only_and_loads(tmp_path):
    network, x = _trained()
    network.save(tmp_path / "net")
    weights = tmp_path / "net" / WEIGHTS_FILE
    # Keras' own file of the same compiled model, for comparison: weights + Adam moments.
    network.model.save_weights(tmp_path / "keras.weights.h5")
    params = network.model.count_params()
    assert _stored_values(weights) == params
    assert _stored_values(tmp_path / "keras.weights.h5") > 3 * params
    loaded = TrainedNetwork.load(tmp_path / "net")
    for a, b in zip(network.model.get_weights(), loaded.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        network.model.predict(x, verbose=0), loaded.model.predict(x, verbose=0)
    )
