"""The real LineMOD ape shipped inside the package: it is what `make demo` searches."""

import json

import numpy as np

from aae.data.bop import BopModels
from aae.data.mesh import load_mesh, mesh_diameter
from aae.data.render import Light, Renderer
from aae.search import SHIPPED_MODELS, resolve_target

K = np.array([[572.4114, 0.0, 64.0], [0.0, 573.57043, 64.0], [0.0, 0.0, 1.0]])


def test_the_ape_is_shipped_with_its_licence_and_only_its_models_info_entry():
    info = json.loads((SHIPPED_MODELS / "models" / "models_info.json").read_text())
    assert list(info) == ["1"]
    licence = (SHIPPED_MODELS / "LICENSE.md").read_text()
    for word in ("CC BY-SA 4.0", "BOP", "Hinterstoisser", "Brachmann"):
        assert word in licence
    assert (SHIPPED_MODELS / "models_eval" / "obj_000001.ply").is_file()


def test_without_bop_root_the_ape_is_the_real_mesh_and_other_objects_stand_ins():
    ape = resolve_target("ape", None)
    assert ape.mesh_path == SHIPPED_MODELS / "models" / "obj_000001.ply"
    assert "real mesh" in ape.describe() and "stand-in" not in ape.describe()
    assert resolve_target("ape", None, stand_in=True).mesh_path is None
    assert resolve_target("cat", None).mesh_path is None  # no mesh shipped: its stand-in


def test_the_shipped_mesh_loads_with_the_models_info_diameter_and_renders():
    mesh = load_mesh(SHIPPED_MODELS / "models" / "obj_000001.ply", units="mm")
    diameter = BopModels(SHIPPED_MODELS).models_info[1].diameter
    assert diameter == 102.099
    assert abs(mesh_diameter(mesh) - diameter) / diameter < 0.02
    with Renderer(128, 128) as renderer:
        rgb, depth = renderer.render(
            mesh, np.eye(3), np.array([0.0, 0.0, 700.0]), K, Light((0.0, 0.0, 0.0), 0.4, 0.6, 0.2)
        )
    object_pixels = depth > 0
    assert 200 < object_pixels.sum() < 128 * 128 / 2  # the ape, whole, in the middle
    assert object_pixels[64, 64] and not object_pixels[0, 0]
    assert rgb[object_pixels].mean() > 10  # lit and coloured, not black
