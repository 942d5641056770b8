"""Procedural LineMOD-sized objects and synthetic BOP-format test sets with exact ground truth.

The real LineMOD data cannot be downloaded on the machines this project runs on, so the
pose-estimation pipeline is exercised on scenes generated here: textured (vertex-coloured)
meshes 150-250 mm across, rendered at random poses over photographs shipped inside
scikit-learn and scikit-image, optionally behind random box occluders, and written in the
BOP format that `aae.data.bop.BopDataset` reads, the same reader used for real LineMOD.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import trimesh
from scipy.spatial.transform import Rotation

from aae.data.crop import bbox_from_mask
from aae.data.mesh import load_mesh, mesh_diameter
from aae.data.render import Light, Renderer
from aae.errors import AAEError, ExistingFileError

# Object distances of the generated scenes, like LineMOD's test images.
DISTANCE_RANGE_MM = (500.0, 1000.0)
# Depth pngs store depth / DEPTH_SCALE as uint16: 0.1 mm steps, up to 6.5 m.
DEPTH_SCALE = 0.1
# LineMOD's (BOP `lm`) camera at 640x480; scaled to other image sizes.
LINEMOD_K = np.array([[572.4114, 0.0, 325.2611], [0.0, 573.57043, 242.04899], [0.0, 0.0, 1.0]])
_LINEMOD_SIZE = (640, 480)
_MAX_EDGE_MM = 10.0  # subdivision, so that vertex colours can vary across flat faces
_SHARP_ANGLE = np.radians(30.0)  # edges sharper than this are shaded flat
_SCENE_ID = 1


@dataclass(frozen=True)
class _ObjectSpec:
    parts: Callable[[], list[trimesh.Trimesh]]
    # Colour of a vertex from its (N, 3) positions and the object's random generator.
    colour: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    symmetries_discrete: tuple[tuple[float, ...], ...] = ()  # flattened 4x4, BOP layout
    symmetries_continuous: tuple[dict, ...] = ()


def _translated(mesh: trimesh.Trimesh, offset: Sequence[float]) -> trimesh.Trimesh:
    mesh.apply_translation(offset)
    return mesh


def _rotated(mesh: trimesh.Trimesh, axis: Sequence[float], degrees: float) -> trimesh.Trimesh:
    mesh.apply_transform(trimesh.transformations.rotation_matrix(np.radians(degrees), axis))
    return mesh


def _bracket() -> list[trimesh.Trimesh]:
    # An L with unequal arms and a peg on one arm: no rotation maps it onto itself.
    return [
        trimesh.creation.box((160.0, 40.0, 40.0)),
        _translated(trimesh.creation.box((40.0, 120.0, 40.0)), (-60.0, 80.0, 0.0)),
        _translated(
            trimesh.creation.cylinder(radius=12.0, height=40.0, sections=24), (50.0, 0.0, 40.0)
        ),
    ]


def _mug() -> list[trimesh.Trimesh]:
    # The handle sits high and a foot widens the bottom, so upside down differs too.
    handle = _rotated(
        trimesh.creation.torus(major_radius=30.0, minor_radius=8.0), (1.0, 0.0, 0.0), 90.0
    )
    return [
        trimesh.creation.cylinder(radius=45.0, height=110.0, sections=48),
        _translated(
            trimesh.creation.cylinder(radius=55.0, height=12.0, sections=48), (0.0, 0.0, -55.0)
        ),
        _translated(handle, (55.0, 0.0, 20.0)),
    ]


def _duck() -> list[trimesh.Trimesh]:
    body = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    body.apply_scale((90.0, 60.0, 50.0))
    beak = _rotated(
        trimesh.creation.cone(radius=14.0, height=40.0, sections=24), (0.0, 1.0, 0.0), 90.0
    )
    tail = _rotated(
        trimesh.creation.cone(radius=20.0, height=35.0, sections=24), (0.0, 1.0, 0.0), -60.0
    )
    return [
        body,
        _translated(trimesh.creation.icosphere(subdivisions=3, radius=35.0), (60.0, 0.0, 60.0)),
        _translated(beak, (88.0, 0.0, 58.0)),
        _translated(tail, (-80.0, 0.0, 20.0)),
    ]


def _box_cylinder() -> list[trimesh.Trimesh]:
    return [
        trimesh.creation.box((140.0, 90.0, 60.0)),
        _translated(
            trimesh.creation.cylinder(radius=20.0, height=80.0, sections=32), (35.0, 20.0, 70.0)
        ),
    ]


def _cylinder() -> list[trimesh.Trimesh]:
    return [trimesh.creation.cylinder(radius=50.0, height=150.0, sections=64)]


def _eggbox() -> list[trimesh.Trimesh]:
    return [trimesh.creation.box((160.0, 110.0, 70.0))]


def _waves(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour stripes along three random directions: no two views look alike."""
    directions = rng.normal(size=(3, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wavelengths = rng.uniform(90.0, 180.0, size=3)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=3)
    return 0.5 + 0.4 * np.sin(2.0 * np.pi * (points @ directions.T) / wavelengths + phases)


def _bands_along_z(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour depending on z only (keeps the rotation symmetry about z, breaks the flip)."""
    wavelengths = rng.uniform(90.0, 180.0, size=3)
    phases = rng.uniform(0.3, 1.2, size=3)  # away from 0 and pi/2, where a band would be even in z
    return 0.5 + 0.4 * np.sin(2.0 * np.pi * points[:, 2:3] / wavelengths + phases)


def _even_in_xy(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour even in x and in y (keeps the 180 deg symmetry about z), varying along z."""
    wavelengths = rng.uniform(90.0, 180.0, size=(3, 3))
    phases = rng.uniform(0.3, 1.2, size=3)
    tint = rng.uniform(0.4, 1.0, size=3)
    x, y, z = points[:, 0:1], points[:, 1:2], points[:, 2:3]
    return tint * (
        0.55
        + 0.2 * np.cos(2.0 * np.pi * x / wavelengths[0])
        + 0.15 * np.cos(2.0 * np.pi * y / wavelengths[1])
        + 0.15 * np.sin(2.0 * np.pi * z / wavelengths[2] + phases)
    )


_ROT_Z_180 = (-1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
_SPECS: dict[str, _ObjectSpec] = {
    "bracket": _ObjectSpec(_bracket, _waves),
    "mug": _ObjectSpec(_mug, _waves),
    "duck": _ObjectSpec(_duck, _waves),
    "box_cylinder": _ObjectSpec(_box_cylinder, _waves),
    "cylinder": _ObjectSpec(
        _cylinder,
        _bands_along_z,
        symmetries_continuous=({"axis": [0.0, 0.0, 1.0], "offset": [0.0, 0.0, 0.0]},),
    ),
    "eggbox": _ObjectSpec(_eggbox, _even_in_xy, symmetries_discrete=(_ROT_Z_180,)),
}
OBJECTS: tuple[str, ...] = tuple(_SPECS)
SYMMETRIC_OBJECTS: tuple[str, ...] = tuple(
    name for name, spec in _SPECS.items() if spec.symmetries_discrete or spec.symmetries_continuous
)


def _spec(name: str) -> _ObjectSpec:
    if name not in _SPECS:
        raise AAEError(f"unknown synthetic object {name!r}; choose from {list(OBJECTS)}")
    return _SPECS[name]


def make_object(name: str) -> trimesh.Trimesh:
    """Build the synthetic object `name` (one of OBJECTS): a vertex-coloured mesh in mm.

    The mesh is centred on its bounding box; symmetric objects are symmetric about the
    model's z axis (see `symmetries`). Deterministic: the same name gives the same mesh.
    """
    spec = _spec(name)
    parts = trimesh.util.concatenate(spec.parts())
    vertices, faces = trimesh.remesh.subdivide_to_size(
        parts.vertices, parts.faces, max_edge=_MAX_EDGE_MM
    )
    mesh = trimesh.graph.smooth_shade(trimesh.Trimesh(vertices, faces), angle=_SHARP_ANGLE)
    mesh.apply_translation(-mesh.bounds.mean(axis=0))
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    rgb = np.clip(spec.colour(np.asarray(mesh.vertices), rng), 0.0, 1.0)
    alpha = np.ones((len(rgb), 1))
    mesh.visual.vertex_colors = np.round(255.0 * np.hstack([rgb, alpha])).astype(np.uint8)
    return mesh


@dataclass(frozen=True, eq=False)
class SceneObject:
    """An object of a synthetic test set given as a mesh, e.g. a real LineMOD model.

    Attributes:
        name: a label for error messages.
        mesh: the model in mm (vertex colours or a texture are rendered as they are).
        symmetries: its BOP `models_info.json` symmetry entries (`symmetries_discrete`,
            `symmetries_continuous`), copied into the test set so that ADI applies to it.
    """

    name: str
    mesh: trimesh.Trimesh
    symmetries: dict = dataclasses.field(default_factory=dict)


def symmetries(name: str) -> dict[str, list]:
    """The BOP `models_info.json` symmetry entries of synthetic object `name`."""
    spec = _spec(name)
    info: dict[str, list] = {}
    if spec.symmetries_discrete:
        info["symmetries_discrete"] = [list(s) for s in spec.symmetries_discrete]
    if spec.symmetries_continuous:
        info["symmetries_continuous"] = [dict(s) for s in spec.symmetries_continuous]
    return info


@cache
def _photos() -> tuple[np.ndarray, ...]:
    """RGB photographs shipped with scikit-learn and scikit-image (no download needed)."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = list(load_sample_images().images)
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"):
        photos.append(getattr(skimage.data, name)())
    for name in ("camera", "grass", "gravel", "brick"):
        photos.append(np.repeat(getattr(skimage.data, name)()[..., None], 3, axis=2))
    return tuple(np.ascontiguousarray(p[..., :3], dtype=np.uint8) for p in photos)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A random crop of a random photograph, resized to width x height."""
    photos = _photos()
    photo = photos[rng.integers(len(photos))]
    ph, pw = photo.shape[:2]
    scale = rng.uniform(0.5, 1.0) * min(pw / width, ph / height)
    cw, ch = max(1, int(width * scale)), max(1, int(height * scale))
    x0, y0 = rng.integers(0, pw - cw + 1), rng.integers(0, ph - ch + 1)
    crop = photo[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=cv2.INTER_AREA)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    # A normalised 4D Gaussian is a uniform unit quaternion, i.e. uniform on SO(3).
    return Rotation.from_quat(rng.normal(size=4)).as_matrix()


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    uvw = points @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


def _does_not_fit(mesh: trimesh.Trimesh, width: int, height: int) -> ValueError:
    return ValueError(
        f"could not fit a {mesh_diameter(mesh):.0f} mm object into a {width}x{height} image at "
        f"{DISTANCE_RANGE_MM[0]:.0f}-{DISTANCE_RANGE_MM[1]:.0f} mm; "
        "use a larger image_size or a shorter focal length"
    )


def _check_fits(mesh: trimesh.Trimesh, K: np.ndarray, width: int, height: int) -> None:
    """Fail before writing anything if the object is too big for the image even when farthest."""
    if mesh_diameter(mesh) * max(K[0, 0] / width, K[1, 1] / height) >= DISTANCE_RANGE_MM[1]:
        raise _does_not_fit(mesh, width, height)


def _place_inside(
    mesh: trimesh.Trimesh,
    R: np.ndarray,
    K: np.ndarray,
    width: int,
    height: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """A translation at a random distance whose projection lies fully inside the image."""
    K_inv = np.linalg.inv(K)
    rotated = np.asarray(mesh.vertices) @ R.T
    for _ in range(1000):
        z = rng.uniform(*DISTANCE_RANGE_MM)
        t = z * (K_inv @ np.array([rng.uniform(0, width - 1), rng.uniform(0, height - 1), 1.0]))
        uv = _project(rotated + t, K)
        if uv.min() >= 0.0 and uv[:, 0].max() <= width - 1 and uv[:, 1].max() <= height - 1:
            return t
    raise _does_not_fit(mesh, width, height)


def _occluder(
    target_t: np.ndarray, diameter: float, K: np.ndarray, rng: np.random.Generator
) -> tuple[trimesh.Trimesh, np.ndarray, np.ndarray]:
    """A flat-shaded, plain-coloured box in front of an object, overlapping part of it."""
    box = trimesh.creation.box(rng.uniform(0.2, 0.45, size=3) * diameter)
    box.unmerge_vertices()  # one vertex per face corner: flat shading
    colour = np.append(rng.integers(0, 256, size=3), 255).astype(np.uint8)
    box.visual.vertex_colors = np.tile(colour, (len(box.vertices), 1))
    z = max(target_t[2] - rng.uniform(0.6, 1.0) * diameter, 100.0)
    radius_px = 0.5 * diameter * K[0, 0] / target_t[2]
    u, v = _project(target_t[None], K)[0] + rng.uniform(-0.6, 0.6, size=2) * radius_px
    t = z * (np.linalg.inv(K) @ np.array([u, v, 1.0]))
    return box, _random_rotation(rng), t


def make_bop_dataset(
    root: str | Path,
    objects: Sequence[str | SceneObject],
    n_images: int,
    seed: int,
    image_size: tuple[int, int] = (640, 480),
    K: np.ndarray | None = None,
    occluders: bool = True,
) -> Path:
    """Write a BOP-format test set (one scene) of synthetic objects with exact ground truth.

    Every image shows each object once, at a uniformly random rotation and 500-1000 mm away,
    entirely inside the image, over a random photograph, lit by `Light.random`, optionally
    partly hidden by one or two random boxes (not annotated). Object ids are 1, 2, ... in
    the order of `objects`.

    Args:
        root: an empty or new folder; the dataset is written into it.
        objects: names from OBJECTS, or `SceneObject`s (any mesh with its symmetries),
            distinct.
        n_images: number of images.
        seed: seed of all random choices.
        image_size: (width, height) in pixels.
        K: 3x3 intrinsics; default LineMOD's camera scaled to `image_size`.
        occluders: whether to add occluding boxes.

    Returns:
        `root`, ready for `aae.data.bop.BopDataset(root, split="test")`.
    """
    objects = list(objects)
    for name in objects:
        if not isinstance(name, SceneObject):
            _spec(name)
    labels = [o.name if isinstance(o, SceneObject) else o for o in objects]
    if not objects or len(set(labels)) != len(labels):
        raise AAEError(
            f"objects must be a non-empty list of distinct names from {list(OBJECTS)}, got "
            f"{objects}"
        )
    if n_images < 1:
        raise AAEError(f"n_images must be at least 1, got {n_images}")
    width, height = (int(v) for v in image_size)
    if width < 1 or height < 1:
        raise AAEError(f"image_size must be (width, height) in pixels, got {image_size}")
    if K is None:
        K = LINEMOD_K * np.array([[width / _LINEMOD_SIZE[0]], [height / _LINEMOD_SIZE[1]], [1.0]])
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise AAEError(f"K must be a 3x3 intrinsic matrix, got shape {K.shape}")

    root = Path(root)
    scene_dir = root / "test" / f"{_SCENE_ID:06d}"
    if (root / "models").exists() or scene_dir.exists():
        raise ExistingFileError(f"{root} already holds a dataset; pass an empty or new folder")
    meshes = [o.mesh if isinstance(o, SceneObject) else make_object(o) for o in objects]
    infos = [o.symmetries if isinstance(o, SceneObject) else symmetries(o) for o in objects]
    for mesh in meshes:
        _check_fits(mesh, K, width, height)
    models = _write_models(root, infos, meshes)
    for sub in ("rgb", "depth"):
        (scene_dir / sub).mkdir(parents=True)
    _write_json(
        root / "camera.json",
        {
            "cx": K[0, 2],
            "cy": K[1, 2],
            "fx": K[0, 0],
            "fy": K[1, 1],
            "width": width,
            "height": height,
            "depth_scale": DEPTH_SCALE,
        },
    )

    rng = np.random.default_rng(seed)
    diameters = [mesh_diameter(m) for m in models]
    scene_gt, scene_camera, scene_gt_info = {}, {}, {}
    with Renderer(width, height) as renderer:
        for im_id in range(n_images):
            poses = []
            for mesh in models:
                R = _random_rotation(rng)
                poses.append((mesh, R, _place_inside(mesh, R, K, width, height, rng)))
            extra = []
            if occluders:
                for _ in range(rng.integers(1, 3)):
                    target = rng.integers(len(models))
                    extra.append(_occluder(poses[target][2], diameters[target], K, rng))
            rgb, depth, labels = renderer.render_scene(poses + extra, K, Light.random(rng))
            rgb = np.where((depth > 0)[..., None], rgb, _background(rng, width, height))
            cv2.imwrite(
                str(scene_dir / "rgb" / f"{im_id:06d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            )
            cv2.imwrite(str(scene_dir / "depth" / f"{im_id:06d}.png"), _depth_png(depth))

            key = str(im_id)
            scene_camera[key] = {"cam_K": K.reshape(-1).tolist(), "depth_scale": DEPTH_SCALE}
            scene_gt[key] = [
                {"cam_R_m2c": R.reshape(-1).tolist(), "cam_t_m2c": t.tolist(), "obj_id": i + 1}
                for i, (_, R, t) in enumerate(poses)
            ]
            scene_gt_info[key] = [
                _gt_info(renderer.render_depth(mesh, R, t, K), labels == i + 1, depth)
                for i, (mesh, R, t) in enumerate(poses)
            ]
    _write_json(scene_dir / "scene_gt.json", scene_gt)
    _write_json(scene_dir / "scene_camera.json", scene_camera)
    _write_json(scene_dir / "scene_gt_info.json", scene_gt_info)
    return root


def _write_models(
    root: Path, symmetry_infos: list[dict], meshes: list[trimesh.Trimesh]
) -> list[trimesh.Trimesh]:
    """Write obj_XXXXXX.ply and models_info.json; return the models as read back from disk."""
    models_dir = root / "models"
    models_dir.mkdir(parents=True)
    info, models = {}, []
    for obj_id, (symmetry, built) in enumerate(zip(symmetry_infos, meshes, strict=True), start=1):
        path = models_dir / f"obj_{obj_id:06d}.ply"
        built.export(path, vertex_normal=True)
        # Render what is on disk, so the ground truth holds for the files as written.
        mesh = load_mesh(path)
        models.append(mesh)
        lo, hi = mesh.bounds
        info[str(obj_id)] = {
            "diameter": mesh_diameter(mesh),
            "min_x": lo[0],
            "min_y": lo[1],
            "min_z": lo[2],
            "size_x": hi[0] - lo[0],
            "size_y": hi[1] - lo[1],
            "size_z": hi[2] - lo[2],
            **symmetry,
        }
    _write_json(models_dir / "models_info.json", info)
    return models


def _depth_png(depth: np.ndarray) -> np.ndarray:
    scaled = np.round(depth / DEPTH_SCALE)
    if scaled.max() > np.iinfo(np.uint16).max:
        raise AAEError(
            f"depth {depth.max():.0f} mm does not fit a uint16 png at scale {DEPTH_SCALE}"
        )
    return scaled.astype(np.uint16)


def _gt_info(own_depth: np.ndarray, visible: np.ndarray, scene_depth: np.ndarray) -> dict:
    """BOP's scene_gt_info entry of one object, from its own rendering and the scene's."""
    silhouette = own_depth > 0
    px_count_all = int(silhouette.sum())
    px_count_visib = int(visible.sum())
    return {
        "bbox_obj": list(bbox_from_mask(silhouette)),
        "bbox_visib": list(bbox_from_mask(visible)) if px_count_visib else [-1, -1, -1, -1],
        "px_count_all": px_count_all,
        "px_count_valid": int((silhouette & (scene_depth > 0)).sum()),
        "px_count_visib": px_count_visib,
        "visib_fract": px_count_visib / px_count_all,
    }


def _write_json(path: Path, data: dict) -> None:
    # numpy scalars are not JSON; BOP files hold plain numbers.
    with open(path, "w") as f:
        json.dump(data, f, indent=1, default=float)
