"""Rendering geometry (OpenCV pose and intrinsics), depth in mm, lights and the mesh cache."""

import numpy as np
import PIL.Image
import pytest
import trimesh

from aae.data.render import Light, Renderer

SIZE = 64
F = 100.0
C = (SIZE - 1) / 2.0  # the image centre in OpenCV pixel coordinates
K = np.array([[F, 0.0, C], [0.0, F, C], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def renderer():
    with Renderer(SIZE, SIZE) as r:
        yield r


def _coloured(mesh: trimesh.Trimesh, rgb=(200, 100, 50)) -> trimesh.Trimesh:
    mesh.visual.vertex_colors = np.tile([*rgb, 255], (len(mesh.vertices), 1)).astype(np.uint8)
    return mesh


def _plate(size=100.0) -> trimesh.Trimesh:
    """A thin square facing the camera: its projection is a square without perspective sides."""
    return _coloured(trimesh.creation.box((size, size, 2.0)))


def _centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return xs.mean(), ys.mean()


def test_cube_projects_where_the_pinhole_model_says(renderer):
    cube = _coloured(trimesh.creation.box((100.0, 100.0, 100.0)))
    rgb, depth = renderer.render(cube, np.eye(3), [0.0, 0.0, 500.0], K, Light.fixed())
    assert rgb.shape == (SIZE, SIZE, 3) and rgb.dtype == np.uint8
    assert depth.shape == (SIZE, SIZE) and depth.dtype == np.float32
    mask = depth > 0
    assert _centroid(mask) == pytest.approx((C, C), abs=1e-6)
    # The front face (z = 450 mm) spans C +- 50 * F / 450 = 20.4 .. 42.6 pixels.
    ys, xs = np.nonzero(mask)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (21, 42, 21, 42)
    assert depth[32, 32] == pytest.approx(450.0, abs=1.0)
    assert np.all(depth[~mask] == 0) and depth[0, 0] == 0
    assert np.all(rgb[~mask] == 0)


def test_translation_moves_the_object_right_and_up(renderer):
    t = np.array([100.0, -50.0, 500.0])  # +x is right, -y is up in the OpenCV frame
    _, depth = renderer.render(_plate(), np.eye(3), t, K, Light.fixed())
    u, v = _centroid(depth > 0)
    z_front = 499.0
    assert u == pytest.approx(C + F * 100.0 / z_front, abs=0.5)
    assert v == pytest.approx(C - F * 50.0 / z_front, abs=0.5)


def test_principal_point_shifts_the_image(renderer):
    K_shifted = K.copy()
    K_shifted[0, 2] += 10.0
    K_shifted[1, 2] -= 5.0
    _, depth = renderer.render(_plate(), np.eye(3), [0.0, 0.0, 500.0], K_shifted, Light.fixed())
    assert _centroid(depth > 0) == pytest.approx((C + 10.0, C - 5.0), abs=1e-6)


def test_rotation_is_model_to_camera(renderer):
    # A bar along the model's +x axis; Rz(90 deg) maps model +x onto camera +y (down).
    bar = _coloured(trimesh.creation.box((80.0, 16.0, 16.0)))
    bar.apply_translation((50.0, 0.0, 0.0))
    Rz90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    t = [0.0, 0.0, 600.0]
    _, depth = renderer.render(bar, np.eye(3), t, K, Light.fixed())
    u, v = _centroid(depth > 0)
    assert u > C + 5 and v == pytest.approx(C, abs=0.5)
    _, depth = renderer.render(bar, Rz90, t, K, Light.fixed())
    u, v = _centroid(depth > 0)
    assert v > C + 5 and u == pytest.approx(C, abs=0.5)


def test_fixed_light_matches_the_original_and_is_deterministic(renderer):
    light = Light.fixed()
    assert (light.position, light.ambient, light.diffuse, light.specular) == (
        (400.0, 400.0, -400.0),
        0.4,
        0.8,
        0.3,
    )
    sphere = _coloured(trimesh.creation.icosphere(subdivisions=3, radius=60.0))
    first, _ = renderer.render(sphere, np.eye(3), [0.0, 0.0, 600.0], K, light)
    second, _ = renderer.render(sphere, np.eye(3), [0.0, 0.0, 600.0], K, Light.fixed())
    np.testing.assert_array_equal(first, second)


def test_random_lights_follow_the_original_ranges():
    rng = np.random.default_rng(0)
    lights = [Light.random(rng) for _ in range(200)]
    positions = np.array([light.position for light in lights])
    assert positions[:, :2].min() >= 0 and positions[:, :2].max() < 1000
    assert positions[:, 2].max() <= 0 and positions[:, 2].min() > -1000
    assert all(light.ambient == 0.4 for light in lights)
    assert all(0.7 <= light.diffuse <= 0.9 and 0.2 <= light.specular <= 0.4 for light in lights)
    assert np.std([light.diffuse for light in lights]) > 0.03


def test_random_lights_change_shading_but_not_geometry(renderer):
    sphere = _coloured(trimesh.creation.icosphere(subdivisions=3, radius=60.0))
    rng = np.random.default_rng(1)
    rgb_a, depth_a = renderer.render(sphere, np.eye(3), [0.0, 0.0, 600.0], K, Light.random(rng))
    rgb_b, depth_b = renderer.render(sphere, np.eye(3), [0.0, 0.0, 600.0], K, Light.random(rng))
    np.testing.assert_array_equal(depth_a, depth_b)
    assert np.abs(rgb_a.astype(int) - rgb_b.astype(int))[depth_a > 0].mean() > 2.0


@pytest.mark.parametrize(("diffuse", "expected_gain"), [(0.0, 0.4), (0.4, 0.8)])
def test_brightness_is_calibrated_to_the_phong_weights(renderer, diffuse, expected_gain):
    # Light straight behind the camera: n.l = 1 at the plate's centre, so the original
    # Phong shader gives colour * (ambient + diffuse) there.
    light = Light(position=(0.0, 0.0, -500.0), ambient=0.4, diffuse=diffuse, specular=0.0)
    rgb, _ = renderer.render(_plate(), np.eye(3), [0.0, 0.0, 500.0], K, light)
    expected = expected_gain * np.array([200.0, 100.0, 50.0])
    np.testing.assert_allclose(rgb[32, 32], expected, atol=6.0)


def test_editing_a_mesh_after_rendering_is_seen(renderer):
    plate = _plate()
    before, _ = renderer.render(plate, np.eye(3), [0.0, 0.0, 500.0], K, Light.fixed())
    _coloured(plate, rgb=(20, 200, 20))
    after, _ = renderer.render(plate, np.eye(3), [0.0, 0.0, 500.0], K, Light.fixed())
    assert before[32, 32, 0] > before[32, 32, 1] and after[32, 32, 1] > after[32, 32, 0]


def test_texture_colours_are_rendered(renderer):
    box = trimesh.creation.box((100.0, 100.0, 100.0))
    uv = np.random.default_rng(0).random((len(box.vertices), 2))
    box.visual = trimesh.visual.TextureVisuals(
        uv=uv, image=PIL.Image.new("RGB", (8, 8), (30, 30, 220))
    )
    rgb, depth = renderer.render(box, np.eye(3), [0.0, 0.0, 500.0], K, Light.fixed())
    pixels = rgb[depth > 0].astype(int)
    assert np.all(pixels[:, 2] > pixels[:, 0] + 40)


def test_uncoloured_meshes_render_grey(renderer):
    rgb, _ = renderer.render(
        trimesh.creation.box((100.0, 100.0, 2.0)), np.eye(3), [0, 0, 500.0], K, Light.fixed()
    )
    r, g, b = rgb[32, 32].astype(int)
    assert r == g == b and r > 60


def test_scene_labels_follow_the_nearest_surface(renderer):
    near = _plate(60.0)  # 12 px wide at 500 mm
    far = _plate(300.0)  # 37 px wide at 800 mm
    _, depth, labels = renderer.render_scene(
        [(far, np.eye(3), [0.0, 0.0, 800.0]), (near, np.eye(3), [0.0, 0.0, 500.0])],
        K,
        Light.fixed(),
    )
    assert labels.dtype == np.uint8 and labels.shape == (SIZE, SIZE)
    assert labels[32, 32] == 2 and depth[32, 32] == pytest.approx(499.0, abs=1.0)
    assert labels[32, 20] == 1  # left of the near plate, inside the far one
    assert np.array_equal(labels > 0, depth > 0)
    near_alone = renderer.render_depth(near, np.eye(3), [0.0, 0.0, 500.0], K)
    assert np.array_equal(labels == 2, near_alone > 0)


def test_bad_intrinsics_and_poses_are_rejected(renderer):
    with pytest.raises(ValueError, match="K must be a 3x3"):
        renderer.render(_plate(), np.eye(3), [0, 0, 500.0], K[:2], Light.fixed())
    with pytest.raises(ValueError, match="R of shape"):
        renderer.render(_plate(), np.eye(4), [0, 0, 500.0], K, Light.fixed())
    # The failed calls left the renderer usable.
    assert renderer.render_depth(_plate(), np.eye(3), [0, 0, 500.0], K)[32, 32] == pytest.approx(
        499.0, abs=1.0
    )


def test_closing_one_renderer_leaves_the_others_working(renderer):
    small = Renderer(16, 16)
    K_small = np.array([[25.0, 0.0, 7.5], [0.0, 25.0, 7.5], [0.0, 0.0, 1.0]])
    assert small.render_depth(_plate(), np.eye(3), [0.0, 0.0, 500.0], K_small).shape == (16, 16)
    small.close()
    with pytest.raises(RuntimeError, match="closed"):
        small.render_depth(_plate(), np.eye(3), [0.0, 0.0, 500.0], K_small)
    _, depth = renderer.render(_plate(), np.eye(3), [0.0, 0.0, 500.0], K, Light.fixed())
    assert depth.shape == (SIZE, SIZE) and depth[32, 32] == pytest.approx(499.0, abs=1.0)


def test_renders_in_a_process_that_imported_tensorflow_first():
    # TensorFlow exports its own LLVM globally; without aae.data.render's RTLD_DEEPBIND load of
    # Mesa's driver, llvmpipe binds to it and the first draw segfaults.
    import subprocess
    import sys

    script = (
        "import keras, numpy as np, trimesh\n"
        "from aae.data.render import Light, Renderer\n"
        "with Renderer(32, 32) as r:\n"
        "    _, depth = r.render(trimesh.creation.box(extents=(100, 100, 100)), np.eye(3),"
        " np.array([0, 0, 700.0]), np.array([[50, 0, 16], [0, 50, 16], [0, 0, 1.0]]), "
        "Light.fixed())\n"
        "print(round(float(depth.max())))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "650"
