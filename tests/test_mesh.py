"""Loading meshes in mm, the wrong-units warning, diameters and model points."""

import warnings

import numpy as np
import PIL.Image
import pytest
import trimesh

from aae.data.mesh import load_mesh, mesh_diameter, model_points


def _coloured_box(extents=(100.0, 60.0, 40.0)) -> trimesh.Trimesh:
    box = trimesh.creation.box(extents)
    colours = np.zeros((len(box.vertices), 4), dtype=np.uint8)
    colours[:, 0] = np.arange(len(box.vertices)) * 30
    colours[:, 3] = 255
    box.visual.vertex_colors = colours
    return box


def test_ply_round_trip_keeps_vertices_and_colours(tmp_path):
    box = _coloured_box()
    path = tmp_path / "box.ply"
    box.export(path)
    loaded = load_mesh(path)
    np.testing.assert_allclose(loaded.vertices, box.vertices)
    np.testing.assert_array_equal(loaded.faces, box.faces)
    assert loaded.visual.kind == "vertex"
    np.testing.assert_array_equal(loaded.visual.vertex_colors, box.visual.vertex_colors)


def test_obj_round_trip_keeps_texture(tmp_path):
    box = trimesh.creation.box((100.0, 100.0, 100.0))
    uv = np.random.default_rng(0).random((len(box.vertices), 2))
    box.visual = trimesh.visual.TextureVisuals(
        uv=uv, image=PIL.Image.new("RGB", (8, 8), (220, 30, 30))
    )
    path = tmp_path / "box.obj"
    box.export(path)
    loaded = load_mesh(path)
    assert loaded.visual.kind == "texture"
    assert np.asarray(loaded.visual.material.image)[0, 0].tolist() == [220, 30, 30]
    np.testing.assert_allclose(loaded.bounds, box.bounds)


def test_metres_are_scaled_to_millimetres(tmp_path):
    box = _coloured_box((0.1, 0.06, 0.04))
    path = tmp_path / "box_m.ply"
    box.export(path)
    loaded = load_mesh(path, units="m")
    np.testing.assert_allclose(loaded.extents, [100.0, 60.0, 40.0])


def test_unknown_units_are_rejected(tmp_path):
    path = tmp_path / "box.ply"
    _coloured_box().export(path)
    with pytest.raises(ValueError, match="units must be one of"):
        load_mesh(path, units="cm")


def test_missing_file_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"nope\.ply does not exist; pass the path of a \.ply or \.obj"
    ):
        load_mesh(tmp_path / "nope.ply")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.ply"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        load_mesh(path)


def test_garbage_ply_is_not_a_mesh(tmp_path):
    path = tmp_path / "garbage.ply"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 400, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="could not be read as a mesh"):
        load_mesh(path)


def test_text_obj_without_faces_is_not_a_mesh(tmp_path):
    path = tmp_path / "notes.obj"
    path.write_text("these are notes, not a model\n")
    with pytest.raises(ValueError, match="contains no triangles"):
        load_mesh(path)


def test_point_cloud_is_not_a_mesh(tmp_path):
    path = tmp_path / "cloud.ply"
    trimesh.PointCloud(np.random.default_rng(0).random((20, 3)) * 100).export(path)
    with pytest.raises(ValueError, match="contains no triangles"):
        load_mesh(path)


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "box.stl"
    _coloured_box().export(path)
    with pytest.raises(ValueError, match=r"unsupported format; pass a \.ply or \.obj"):
        load_mesh(path)


def test_metre_model_loaded_as_mm_warns(tmp_path):
    path = tmp_path / "small.ply"
    _coloured_box((0.1, 0.06, 0.04)).export(path)
    with pytest.warns(UserWarning, match=r"small\.ply is only 0\.1 mm across.*units='m'"):
        load_mesh(path, units="mm")


def test_mm_model_loaded_as_metres_warns(tmp_path):
    path = tmp_path / "big.ply"
    _coloured_box((100.0, 60.0, 40.0)).export(path)
    with pytest.warns(UserWarning, match=r"big\.ply is 100 m across.*units='mm'"):
        load_mesh(path, units="m")


def test_plausible_sizes_do_not_warn(tmp_path):
    path = tmp_path / "box.ply"
    _coloured_box().export(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_mesh(path, units="mm")


def test_diameter_of_a_box_is_its_space_diagonal():
    assert mesh_diameter(trimesh.creation.box((100.0, 60.0, 40.0))) == pytest.approx(
        np.sqrt(100**2 + 60**2 + 40**2)
    )


def test_diameter_matches_brute_force_on_a_sphere():
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=75.0)
    pairwise = np.linalg.norm(sphere.vertices[:, None] - sphere.vertices[None], axis=2)
    assert mesh_diameter(sphere) == pytest.approx(pairwise.max())


def test_diameter_of_a_flat_model():
    square = trimesh.Trimesh(
        vertices=[[0, 0, 0], [30, 0, 0], [30, 40, 0], [0, 40, 0]], faces=[[0, 1, 2], [0, 2, 3]]
    )
    assert mesh_diameter(square) == pytest.approx(50.0)


def test_model_points_are_distinct_vertices_and_can_be_subsampled():
    box = trimesh.creation.box((10.0, 10.0, 10.0))
    box.unmerge_vertices()  # 36 vertices, 8 distinct positions
    assert model_points(box).shape == (8, 3)
    subset = model_points(box, max_points=5, seed=1)
    assert subset.shape == (5, 3)
    np.testing.assert_array_equal(subset, model_points(box, max_points=5, seed=1))
