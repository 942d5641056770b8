"""Procedural objects (sizes, colours, symmetry) and the synthetic BOP writer's own checks."""

import json

import cv2
import numpy as np
import pytest
import trimesh

from aae.data.mesh import mesh_diameter, model_points
from aae.data.render import Light, Renderer
from aae.data.synthetic import OBJECTS, SYMMETRIC_OBJECTS, make_bop_dataset, make_object, symmetries
from aae.pose.metrics import adi

ASYMMETRIC = [name for name in OBJECTS if name not in SYMMETRIC_OBJECTS]
K = np.array([[120.0, 0.0, 31.5], [0.0, 120.0, 31.5], [0.0, 0.0, 1.0]])
T = np.array([0.0, 0.0, 700.0])


def _rot(axis, degrees) -> np.ndarray:
    return trimesh.transformations.rotation_matrix(np.radians(degrees), axis)[:3, :3]


@pytest.fixture(scope="module")
def objects() -> dict[str, trimesh.Trimesh]:
    return {name: make_object(name) for name in OBJECTS}


@pytest.fixture(scope="module")
def renderer():
    with Renderer(64, 64) as r:
        yield r


def test_there_are_asymmetric_and_symmetric_objects():
    assert len(ASYMMETRIC) >= 4 and len(SYMMETRIC_OBJECTS) >= 1


@pytest.mark.parametrize("name", OBJECTS)
def test_objects_are_linemod_sized_centred_coloured_and_deterministic(objects, name):
    mesh = objects[name]
    assert 100.0 <= mesh_diameter(mesh) <= 300.0
    np.testing.assert_allclose(mesh.bounds.mean(axis=0), 0.0, atol=1e-6)
    assert mesh.visual.kind == "vertex"
    assert np.ptp(mesh.visual.vertex_colors[:, :3].astype(float), axis=0).max() > 80  # colours vary
    again = make_object(name)
    np.testing.assert_array_equal(again.vertices, mesh.vertices)
    np.testing.assert_array_equal(again.visual.vertex_colors, mesh.visual.vertex_colors)


@pytest.mark.parametrize("name", ASYMMETRIC)
def test_asymmetric_shapes_have_no_rotation_symmetry(objects, name):
    points = model_points(objects[name], max_points=1500)
    diameter = mesh_diameter(objects[name])
    for axis in ([1, 0, 0], [0, 1, 0], [0, 0, 1]):
        for degrees in (90, 180):
            assert adi(_rot(axis, degrees), T, np.eye(3), T, points) > 0.02 * diameter


def test_symmetric_shapes_match_their_declared_symmetries(objects):
    cylinder = model_points(objects["cylinder"], max_points=3000)
    assert symmetries("cylinder")["symmetries_continuous"][0]["axis"] == [0.0, 0.0, 1.0]
    assert adi(_rot([0, 0, 1], 90), T, np.eye(3), T, cylinder) < 3.0
    eggbox = model_points(objects["eggbox"])
    (flat,) = symmetries("eggbox")["symmetries_discrete"]
    S = np.reshape(flat, (4, 4))[:3, :3]
    assert adi(S, T, np.eye(3), T, eggbox) < 1e-6


def test_symmetric_views_look_alike_and_asymmetric_ones_do_not(objects, renderer):
    R = _rot([1, 1, 0], 50)
    light = Light.fixed()

    def difference(name, S):
        a, _ = renderer.render(objects[name], R, T, K, light)
        b, _ = renderer.render(objects[name], R @ S, T, K, light)
        return np.abs(a.astype(int) - b.astype(int)).mean()

    (flat,) = symmetries("eggbox")["symmetries_discrete"]
    assert difference("eggbox", np.reshape(flat, (4, 4))[:3, :3]) < 1.0
    assert difference("cylinder", _rot([0, 0, 1], 77)) < 1.0
    # The colour pattern breaks the cylinder's geometric flip symmetry.
    assert difference("cylinder", _rot([1, 0, 0], 180)) > 5.0
    assert difference("box_cylinder", _rot([0, 0, 1], 180)) > 5.0


def test_unknown_object_lists_the_names():
    with pytest.raises(
        ValueError, match=r"unknown synthetic object 'teapot'; choose from \['bracket'"
    ):
        make_object("teapot")


def test_dataset_images_show_photos_behind_the_objects(tmp_path):
    root = make_bop_dataset(
        tmp_path / "ds", ["bracket"], n_images=1, seed=0, image_size=(96, 72), occluders=False
    )
    rgb = cv2.imread(str(root / "test" / "000001" / "rgb" / "000000.png"))
    depth = cv2.imread(str(root / "test" / "000001" / "depth" / "000000.png"), cv2.IMREAD_UNCHANGED)
    assert rgb.shape == (72, 96, 3) and depth.dtype == np.uint16
    background = depth == 0
    assert 0 < background.mean() < 1
    assert rgb[background].std() > 10  # a photograph, not a flat fill
    (info,) = json.loads((root / "test" / "000001" / "scene_gt_info.json").read_text())["0"]
    assert info["visib_fract"] == 1.0 and info["bbox_visib"] == info["bbox_obj"]  # nothing hides it
    assert json.loads((root / "models" / "models_info.json").read_text())["1"].keys() >= {
        "diameter",
        "min_x",
        "size_z",
    }


def test_dataset_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic object"):
        make_bop_dataset(tmp_path / "a", ["teapot"], n_images=1, seed=0)
    with pytest.raises(ValueError, match="distinct names"):
        make_bop_dataset(tmp_path / "b", ["duck", "duck"], n_images=1, seed=0)
    tele = np.array([[2000.0, 0.0, 16.0], [0.0, 2000.0, 12.0], [0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="could not fit a 239 mm object into a 32x24 image"):
        make_bop_dataset(tmp_path / "c", ["duck"], n_images=1, seed=0, image_size=(32, 24), K=tele)
    assert not (tmp_path / "c").exists()  # checked before anything is written
    (tmp_path / "d" / "models").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="already holds a dataset"):
        make_bop_dataset(tmp_path / "d", ["duck"], n_images=1, seed=0)
