"""A BOP'19 LM-O test folder (no depth, no masks, test_targets_bop19.json) read and evaluated,
and the real LineMOD meshes of ../shared/data/lmo used for training, codebook and test scenes."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from aae.data.bop import BopDataset, BopModels, object_id
from aae.data.settings import TEMPLATE_K, TrainingSetConfig
from aae.data.synthetic import make_bop_dataset
from aae.data.training_set import build_training_set
from aae.net.settings import NetworkSettings
from aae.pose.codebook import Codebook
from aae.pose.evaluate import evaluate_on_bop
from aae.profiles import get_profile
from aae.search import RunPaths, load_object_mesh, load_test_set, resolve_target

# The shared folder of real BOP lmo models, next to the repository (never copied into it).
LMO = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lmo"
needs_lmo = pytest.mark.skipif(
    not (LMO / "models" / "models_info.json").is_file(),
    reason=f"the real LineMOD meshes are not at {LMO} (see ../shared/data/lmo/README.md)",
)

QUARTER_K = tuple(
    tuple(v * (0.25 if i < 2 else 1.0) for v in row) for i, row in enumerate(TEMPLATE_K)
)
CAMERA = TrainingSetConfig(
    n_images=8, image_size=32, render_width=180, render_height=135, K=QUARTER_K
)
# (scene, image, object, instances): object 1 in images 0 and 2, object 2 in 1, 2 and 3.
TARGETS = [(2, 0, 1, 1), (2, 2, 1, 1), (2, 1, 2, 1), (2, 2, 2, 1), (2, 3, 2, 1)]


@pytest.fixture(scope="module")
def bop19(tmp_path_factory) -> Path:
    """Synthetic scenes rearranged into exactly the BOP'19 LM-O test layout."""
    root = make_bop_dataset(
        tmp_path_factory.mktemp("lmo") / "lmo",
        ["bracket", "eggbox"],
        n_images=5,
        seed=4,
        image_size=(320, 240),
    )
    scene = root / "test" / "000001"
    shutil.rmtree(scene / "depth")  # LM-O's BOP'19 test set has rgb/ only
    scene.rename(root / "test" / "000002")
    targets = [{"scene_id": s, "im_id": i, "obj_id": o, "inst_count": n} for s, i, o, n in TARGETS]
    (root / "test_targets_bop19.json").write_text(json.dumps(targets))
    return root


def test_bop19_layout_reads_only_the_targets(bop19):
    assert sorted(p.name for p in (bop19 / "test" / "000002").iterdir()) == [
        "rgb",
        "scene_camera.json",
        "scene_gt.json",
        "scene_gt_info.json",
    ]
    dataset = BopDataset(bop19)
    assert dataset.scenes() == [2]
    assert [(t.scene_id, t.im_id, t.obj_id, t.inst_count) for t in dataset.test_targets] == TARGETS
    listed = [(image.im_id, [o.obj_id for o in image.objects]) for image in dataset.images()]
    assert listed == [(0, [1]), (1, [2]), (2, [1, 2]), (3, [2])]  # image 4 is not a target
    assert all(image.depth_path is None for image in dataset.images())
    assert [image.im_id for image in dataset.images(obj_id=1)] == [0, 2]
    # Without the targets every annotated instance is read.
    everything = BopDataset(bop19, use_targets=False)
    assert everything.test_targets is None and len(list(everything.images(obj_id=1))) == 5


def test_inst_count_zero_or_missing_reads_nothing_and_bad_targets_are_named(bop19, tmp_path):
    copy = shutil.copytree(bop19, tmp_path / "copy")
    (copy / "test_targets_bop19.json").write_text(
        json.dumps([{"scene_id": 2, "im_id": 3, "obj_id": 2, "inst_count": 0}])
    )
    assert list(BopDataset(copy).images()) == []
    (copy / "test_targets_bop19.json").write_text(json.dumps([{"scene": 2}]))
    with pytest.raises(ValueError, match="scene_id, im_id, obj_id, inst_count"):
        BopDataset(copy).test_targets  # noqa: B018


def test_evaluation_per_object_on_the_targets_with_add_and_adi(bop19):
    dataset = BopDataset(bop19)
    settings = NetworkSettings(image_size=32, width=0.0625, latent_dim=16)
    encoder = settings.build(
        {
            "NK1": 32,
            "NK2": 32,
            "NK3": 128,
            "NK4": 128,
            "KE": 3,
            "KD": 3,
            "OPT": "Adam",
            "MB": 32,
            "LR": 2e-3,
        }
    ).get_layer("encoder")
    results = {}
    for obj_id in dataset.obj_ids:
        codebook = Codebook.create(
            encoder, dataset.load_model(obj_id), CAMERA, n_views=12, n_inplane=2, progress=False
        )
        results[obj_id] = evaluate_on_bop(dataset, obj_id, encoder, codebook, progress=False)
    # Only the targeted instances: 2 of the bracket (ADD), 3 of the symmetric eggbox (ADI).
    assert (len(results[1].errors), results[1].metric) == (2, "ADD")
    assert (len(results[2].errors), results[2].metric) == (3, "ADI")
    for evaluation in results.values():
        assert np.all(np.isfinite(evaluation.errors)) and 0.0 <= evaluation.recall <= 1.0


def test_a_models_only_folder_without_the_object_says_so(bop19, tmp_path):
    models_only = tmp_path / "models_only"
    shutil.copytree(bop19 / "models", models_only / "models")
    with pytest.raises(KeyError, match="procedural stand-in"):
        resolve_target("cat", models_only)  # obj_id 6 is not in it
    target = resolve_target("ape", models_only)  # obj_id 1 is
    assert target.bop_root is None and target.mesh_path.name == "obj_000001.ply"
    with pytest.raises(FileNotFoundError, match=r"models_info\.json"):
        BopModels(tmp_path)


@needs_lmo
def test_real_ape_mesh_trains_and_renders_its_test_scenes(tmp_path):
    target = resolve_target("ape", LMO)
    assert (
        target.mesh_path == (LMO / "models" / "obj_000001.ply").resolve()
        and target.bop_root is None
    )
    assert "real mesh" in target.describe()
    mesh = load_object_mesh(target)
    np.testing.assert_allclose(
        mesh.extents, [75.8686, 77.5992, 91.769], rtol=1e-3
    )  # models_info.json
    training_set = build_training_set(mesh, CAMERA, tmp_path / "cache", progress=False)
    # The ape fills its crops: object pixels in every input, a tight crop in every target.
    assert (~training_set.masks).mean(axis=(1, 2)).min() > 0.2 and training_set.targets.std() > 10
    profile = get_profile("tiny").with_overrides({"test.n_images": 2})
    test = load_test_set(target, profile, RunPaths(tmp_path / "run"))
    assert not test.models_info[1].is_symmetric
    assert abs(test.models_info[1].diameter - BopModels(LMO).models_info[1].diameter) < 2.0


@needs_lmo
@pytest.mark.parametrize("name", ["eggbox", "glue"])
def test_symmetric_real_objects_get_adi_in_their_synthetic_test_set(name, tmp_path):
    target = resolve_target(name, LMO)
    profile = get_profile("tiny").with_overrides({"test.n_images": 1})
    test = load_test_set(target, profile, RunPaths(tmp_path / "run"))
    info = test.models_info[1]
    assert info.is_symmetric
    real = BopModels(LMO).models_info[object_id(name)]
    np.testing.assert_allclose(info.symmetries_discrete[0], real.symmetries_discrete[0])
