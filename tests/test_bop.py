"""The BOP reader, on a synthetic BOP test set written by aae.data.synthetic (same code path as
LineMOD)."""

import json

import numpy as np
import pytest

from aae.data.bop import (
    LINEMOD_EVAL_IDS,
    LINEMOD_OBJECTS,
    BopDataset,
    is_symmetric,
    object_id,
    object_name,
)
from aae.data.mesh import mesh_diameter
from aae.data.render import Renderer
from aae.data.synthetic import make_bop_dataset

WIDTH, HEIGHT = 160, 120
N_IMAGES = 3


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> BopDataset:
    root = make_bop_dataset(
        tmp_path_factory.mktemp("bop") / "synth",
        ["duck", "cylinder"],
        n_images=N_IMAGES,
        seed=3,
        image_size=(WIDTH, HEIGHT),
    )
    return BopDataset(root, split="test")


def _project(points, K, R, t):
    uvw = (points @ R.T + t) @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


def test_structure_and_models_info(dataset):
    assert dataset.obj_ids == (1, 2)
    assert dataset.scenes() == [1]
    duck, cylinder = dataset.models_info[1], dataset.models_info[2]
    assert not duck.is_symmetric
    assert cylinder.is_symmetric and cylinder.symmetries_continuous[0].axis == (0.0, 0.0, 1.0)
    for obj_id in dataset.obj_ids:
        model = dataset.load_model(obj_id)
        assert dataset.models_info[obj_id].diameter == pytest.approx(mesh_diameter(model))
        assert dataset.model_path(obj_id).name == f"obj_{obj_id:06d}.ply"


def test_annotations_match_the_files_written(dataset):
    scene_dir = dataset.root / "test" / "000001"
    raw_gt = json.loads((scene_dir / "scene_gt.json").read_text())
    raw_camera = json.loads((scene_dir / "scene_camera.json").read_text())
    images = list(dataset)
    assert [im.im_id for im in images] == list(range(N_IMAGES))
    for image in images:
        key = str(image.im_id)
        np.testing.assert_array_equal(image.K, np.reshape(raw_camera[key]["cam_K"], (3, 3)))
        assert image.depth_scale == raw_camera[key]["depth_scale"]
        assert [o.obj_id for o in image.objects] == [1, 2]
        for obj, gt in zip(image.objects, raw_gt[key], strict=True):
            np.testing.assert_array_equal(obj.R, np.reshape(gt["cam_R_m2c"], (3, 3)))
            np.testing.assert_array_equal(obj.t, gt["cam_t_m2c"])
            np.testing.assert_allclose(obj.R @ obj.R.T, np.eye(3), atol=1e-9)
            assert np.linalg.det(obj.R) == pytest.approx(1.0)
            assert 500.0 <= obj.t[2] <= 1000.0


def test_reprojected_models_fill_bbox_obj(dataset):
    models = {obj_id: dataset.load_model(obj_id) for obj_id in dataset.obj_ids}
    for image in dataset:
        for obj in image.objects:
            uv = _project(np.asarray(models[obj.obj_id].vertices), image.K, obj.R, obj.t)
            x, y, w, h = obj.bbox_obj
            lo, hi = np.array([x, y]), np.array([x + w, y + h])
            # The silhouette is sampled at pixel centres, so thin tips (the duck's beak) can
            # poke out by a pixel or two; the bulk of the model lies inside the box.
            inside = np.all((uv >= lo - 1) & (uv <= hi + 1), axis=1)
            assert inside.mean() > 0.99
            np.testing.assert_allclose(uv.min(axis=0), lo, atol=3.0)
            np.testing.assert_allclose(uv.max(axis=0), hi, atol=3.0)


def test_depth_and_visibility_agree_with_a_fresh_rendering(dataset):
    models = {obj_id: dataset.load_model(obj_id) for obj_id in dataset.obj_ids}
    checked = 0
    with Renderer(WIDTH, HEIGHT) as renderer:
        for image in dataset:
            depth = image.load_depth()
            assert depth.shape == (HEIGHT, WIDTH) and depth.dtype == np.float32
            assert image.load_rgb().shape == (HEIGHT, WIDTH, 3)
            for obj in image.objects:
                own = renderer.render_depth(models[obj.obj_id], obj.R, obj.t, image.K)
                # Visible = where the image's depth is this object's surface (0.1 mm steps in
                # the png).
                visible = (own > 0) & (np.abs(depth - own) < 0.1)
                assert visible.sum() == obj.px_count_visib
                assert obj.visib_fract == pytest.approx(obj.px_count_visib / (own > 0).sum())
                if obj.px_count_visib == 0:
                    continue
                ys, xs = np.nonzero(visible)
                centre = _project(np.zeros((1, 3)), image.K, obj.R, obj.t)[0]
                nearest = np.argmin((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2)
                row, col = ys[nearest], xs[nearest]
                assert depth[row, col] == pytest.approx(own[row, col], abs=0.06)
                assert (
                    abs(depth[row, col] - obj.t[2]) < 0.6 * dataset.models_info[obj.obj_id].diameter
                )
                checked += 1
    assert checked >= 4


def test_filtering_by_object(dataset):
    images = list(dataset.images(obj_id=2))
    assert len(images) == N_IMAGES
    assert all([o.obj_id for o in im.objects] == [2] for im in images)


def test_a_folder_that_is_not_bop_names_what_is_missing(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=r"not a BOP dataset folder.*models/models_info\.json, test.*contains",
    ):
        BopDataset(tmp_path)


def test_unknown_object_ids_list_the_known_ones(dataset):
    with pytest.raises(KeyError, match=r"object id 7 is not in .*object ids are \[1, 2\]"):
        dataset.model_path(7)
    with pytest.raises(KeyError, match=r"object ids are \[1, 2\]"):
        next(dataset.images(obj_id=99))


def test_linemod_table():
    assert [(o.obj_id, o.name) for o in LINEMOD_OBJECTS] == list(
        enumerate(
            [
                "ape",
                "benchvise",
                "bowl",
                "cam",
                "can",
                "cat",
                "cup",
                "driller",
                "duck",
                "eggbox",
                "glue",
                "holepuncher",
                "iron",
                "lamp",
                "phone",
            ],
            start=1,
        )
    )
    assert LINEMOD_EVAL_IDS == (1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15)
    assert [o.obj_id for o in LINEMOD_OBJECTS if is_symmetric(o.obj_id)] == [3, 7, 10, 11]
    assert object_id("eggbox") == 10 and object_name(9) == "duck"
    with pytest.raises(KeyError, match="LineMOD objects are"):
        object_id("teapot")
    with pytest.raises(KeyError, match="LineMOD ids are"):
        object_name(16)
