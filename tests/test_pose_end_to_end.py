"""The whole AAE at a tiny profile: a procedural object, its training set, a few hundred
training steps, a small codebook and poses on a synthetic BOP test set with photo
backgrounds. The trained encoder must estimate rotations far better than an untrained one.
"""

import numpy as np
import pytest
from PIL import Image

from aae.data.backgrounds import BackgroundPool
from aae.data.bop import BopDataset
from aae.data.settings import TEMPLATE_K, TrainingSetConfig
from aae.data.synthetic import make_bop_dataset, make_object
from aae.data.training_set import TrainingData, build_training_set
from aae.net.configs import SUNDERMEYER
from aae.net.settings import NetworkSettings
from aae.net.training import train_network
from aae.pose.codebook import Codebook, CodebookViews
from aae.pose.evaluate import evaluate_on_bop
from aae.visualize import save_reconstructions

# Whole runs of a minute or more: make test runs them; -m "not slow" leaves them out locally.
pytestmark = pytest.mark.slow

# The original camera at a quarter of its resolution, 32x32 crops, 1/8 of the filters.
QUARTER_K = tuple(
    tuple(v * (0.25 if i < 2 else 1.0) for v in row) for i, row in enumerate(TEMPLATE_K)
)
CAMERA = TrainingSetConfig(
    n_images=512, image_size=32, render_width=180, render_height=135, K=QUARTER_K
)
SETTINGS = NetworkSettings(image_size=32, width=0.125)
CONFIG = {**SUNDERMEYER, "MB": 32, "LR": 2e-3}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pose")
    mesh = make_object("bracket")
    data = TrainingData(
        build_training_set(mesh, CAMERA, directory / "cache", progress=False),
        BackgroundPool.builtin(32, 128),
    )
    network = train_network(
        CONFIG, SETTINGS, data, steps=400, directory=directory / "network", workers=1
    )
    test_set = BopDataset(
        make_bop_dataset(
            directory / "bop",
            ["bracket"],
            n_images=20,
            seed=1,
            image_size=(320, 240),
            occluders=False,
        )
    )
    return mesh, data, network, test_set, directory


def test_trained_encoder_estimates_rotations_far_better_than_untrained(trained):
    mesh, _, network, test_set, _ = trained
    assert len(network.losses) == 400 and not network.diverged and network.seconds > 0
    assert np.mean(network.losses[-50:]) < np.mean(network.losses[:50])

    untrained = SETTINGS.build(CONFIG).get_layer("encoder")
    # Rendered once, encoded by both (Codebook.create renders them for one encoder).
    views = CodebookViews.render(mesh, CAMERA, n_views=162, n_inplane=12, progress=False)
    results = {}
    for name, encoder in (("trained", network.encoder), ("untrained", untrained)):
        codebook = Codebook.from_views(encoder, views)
        results[name] = evaluate_on_bop(test_set, 1, encoder, codebook, progress=False)
    trained_error = np.median(results["trained"].rotation_errors)
    untrained_error = np.median(results["untrained"].rotation_errors)
    # Random rotations are ~126 degrees apart in the median.
    print(
        f"median rotation error: trained {trained_error:.1f}, untrained {untrained_error:.1f} "
        "degrees"
    )
    assert trained_error < 60 and trained_error < 0.5 * untrained_error, (
        trained_error,
        untrained_error,
    )
    assert results["trained"].recall >= results["untrained"].recall
    assert results["trained"].metric == "ADD" and len(results["trained"].errors) == 20


def test_reconstruction_image(trained):
    _, data, network, _, directory = trained
    inputs, targets = data.batches(8, seed=3, workers=0)[0]
    path = save_reconstructions(
        network.model, inputs, targets, directory / "reconstructions.png", "tiny AAE"
    )
    image = np.asarray(Image.open(path))
    assert image.shape[0] > 200 and image.shape[1] > 500 and image.std() > 10


def test_network_folder_round_trip_and_resume(trained):
    _, data, network, _, directory = trained
    again = train_network(
        CONFIG, SETTINGS, data, steps=400, directory=directory / "network", workers=1
    )
    np.testing.assert_array_equal(again.losses, network.losses)  # loaded, not retrained
    for a, b in zip(again.model.get_weights(), network.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="already holds another network"):
        train_network(
            {**CONFIG, "LR": 2e-4}, SETTINGS, data, steps=400, directory=directory / "network"
        )
