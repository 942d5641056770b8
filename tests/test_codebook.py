"""The codebook: its views, pose from a view and a box, files, and the encoder it belongs to."""

import numpy as np
import pytest

from aae.data.crop import bbox_from_mask
from aae.data.render import Light, Renderer
from aae.data.settings import TEMPLATE_K, TrainingSetConfig
from aae.data.synthetic import make_object
from aae.net.configs import SUNDERMEYER
from aae.net.settings import NetworkSettings
from aae.pose.codebook import Codebook, CodebookViews, view_rotations
from aae.pose.metrics import rotation_error_deg

QUARTER_K = tuple(
    tuple(v * (0.25 if i < 2 else 1.0) for v in row) for i, row in enumerate(TEMPLATE_K)
)
CAMERA = TrainingSetConfig(
    n_images=8, image_size=32, render_width=180, render_height=135, K=QUARTER_K
)
SETTINGS = NetworkSettings(image_size=32, width=0.0625, latent_dim=16)


def test_view_rotations_cover_the_sphere_and_the_plane():
    rotations = view_rotations(42, 6)
    assert rotations.shape == (252, 3, 3)
    np.testing.assert_allclose(
        rotations @ rotations.transpose(0, 2, 1),
        np.broadcast_to(np.eye(3), (252, 3, 3)),
        atol=1e-12,
    )
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0)
    # The camera's optical axis in the model frame (third row) visits 42 directions.
    assert len(np.unique(np.round(rotations[:, 2], 6), axis=0)) == 42
    # Consecutive in-plane rotations of one view are 60 degrees apart.
    assert rotation_error_deg(rotations[0], rotations[1]) == pytest.approx(60.0)
    assert len(view_rotations()) == 92232
    with pytest.raises(ValueError, match="icosphere"):
        view_rotations(100)


@pytest.fixture(scope="module")
def views():
    return CodebookViews.render(
        make_object("bracket"), CAMERA, n_views=12, n_inplane=2, progress=False
    )


def test_pose_from_view_recovers_an_off_axis_pose(views):
    """An object off the optical axis looks like a codebook view rotated by the viewing
    angle; the codebook must undo that rotation and recover t from the box."""
    encoder = SETTINGS.build(SUNDERMEYER).get_layer("encoder")
    codebook = Codebook.from_views(encoder, views)
    K_test = np.array([[286.2, 0, 160], [0, 286.8, 120], [0, 0, 1]])
    mesh = make_object("bracket")
    with Renderer(320, 240) as renderer:
        for index, t in ((3, np.array([60.0, -35.0, 820.0])), (17, np.array([-40.0, 30.0, 650.0]))):
            alpha_x, alpha_y = -np.arctan(t[0] / t[2]), -np.arctan(t[1] / t[2])
            about_x = np.array(
                [
                    [1, 0, 0],
                    [0, np.cos(alpha_y), -np.sin(alpha_y)],
                    [0, np.sin(alpha_y), np.cos(alpha_y)],
                ]
            )
            about_y = np.array(
                [
                    [np.cos(alpha_x), 0, -np.sin(alpha_x)],
                    [0, 1, 0],
                    [np.sin(alpha_x), 0, np.cos(alpha_x)],
                ]
            )
            R_gt = about_y @ about_x @ views.rotations[index]
            _, depth = renderer.render(mesh, R_gt, t, K_test, Light.fixed())
            R, t_est = codebook.pose_from_view(index, bbox_from_mask(depth > 0), K_test)
            assert rotation_error_deg(R, R_gt) < 1.0
            np.testing.assert_allclose(t_est, t, rtol=0.03, atol=5.0)


def test_files_round_trip_and_the_encoder_check(views, tmp_path):
    encoder = SETTINGS.build(SUNDERMEYER).get_layer("encoder")
    codebook = Codebook.from_views(encoder, views)
    np.testing.assert_allclose(np.linalg.norm(codebook.codes, axis=1), 1.0, rtol=1e-5)
    loaded = Codebook.load(codebook.save(tmp_path / "codebook.npz"))
    np.testing.assert_array_equal(loaded.codes, codebook.codes)
    np.testing.assert_array_equal(loaded.rotations, codebook.rotations)
    assert loaded.camera == CAMERA and loaded.fingerprint == codebook.fingerprint
    again = CodebookViews.load(views.save(tmp_path / "views.npz"))
    np.testing.assert_array_equal(again.crops, views.crops)
    # A crop of a codebook view finds that view.
    indices, scores = loaded.nearest(codebook.codes[[5, 9]], top_k=3)
    assert indices[:, 0].tolist() == [5, 9] and scores[0, 0] == pytest.approx(1.0)
    loaded.check_encoder(encoder)
    with pytest.raises(ValueError, match="built with another network"):
        loaded.check_encoder(SETTINGS.build(SUNDERMEYER).get_layer("encoder"))
    other_size = (
        NetworkSettings(image_size=64, width=0.0625, latent_dim=16)
        .build(SUNDERMEYER)
        .get_layer("encoder")
    )
    with pytest.raises(ValueError, match=r"takes .* images but the codebook is for"):
        loaded.check_encoder(other_size)


def test_views_are_cached_by_content(tmp_path):
    mesh = make_object("cylinder")
    first = CodebookViews.cached(tmp_path, mesh, CAMERA, 12, 1, progress=False)
    assert len(list(tmp_path.glob("codebook_views_*.npz"))) == 1
    second = CodebookViews.cached(tmp_path, mesh, CAMERA, 12, 1, progress=False)
    np.testing.assert_array_equal(first.crops, second.crops)
    CodebookViews.cached(tmp_path, mesh, CAMERA, 12, 2, progress=False)
    assert len(list(tmp_path.glob("codebook_views_*.npz"))) == 2
