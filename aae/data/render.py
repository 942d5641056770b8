"""Offscreen rendering of object models at OpenCV poses with pyrender (EGL, no display).

Pose convention: the scene's world frame *is* the OpenCV camera frame (x right, y down,
z forward, mm). Objects are placed with their model-to-camera pose [R|t] and pyrender's
OpenGL camera (looking down -z, y up) sits at the origin with pose diag(1, -1, -1),
which maps its axes onto OpenCV's. Lights are given in the same OpenCV camera frame.

Shading: the original AAE renderer used a Phong shader, rgb = colour * (ambient +
diffuse * max(n.l, 0) + specular * max(r.v, 0)), clipped to 1. pyrender's shader is
physically based and gamma-encodes its output, so `Renderer` calibrates it to match the
original where it matters most: vertex colours are linearised (the output gamma restores
them), the ambient weight is raised to the gamma, and the point light's intensity is set
per rendering so that a surface at the object's centre facing the light gets exactly
colour * (ambient + diffuse), as in the original. The specular weight sets the material's
glossiness (roughness = 1 - specular): a physically based highlight, not Phong's.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys

from aae.errors import AAEError

# pyrender picks its OpenGL platform at import time; EGL renders without a display.
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyrender
import trimesh


def _deep_bind_mesa_llvm() -> None:
    """Make Mesa's software rasteriser use its own LLVM, not TensorFlow's.

    TensorFlow loads its libraries with RTLD_GLOBAL, and they export their own copy of
    LLVM; Mesa's llvmpipe driver (what EGL uses without a GPU) then binds its LLVM calls to
    TensorFlow's and segfaults in the first draw call, whichever was imported first. Loading
    the driver with RTLD_DEEPBIND before Mesa does makes it resolve against its own libLLVM
    (Mesa's later dlopen reuses this handle). It must run before the first OpenGL context
    of the process; a no-op where the libraries do not exist.
    """
    if sys.platform != "linux":
        return
    dirs = [d for d in os.environ.get("LIBGL_DRIVERS_PATH", "").split(":") if d]
    dirs += glob.glob("/usr/lib*/dri") + glob.glob("/usr/lib/*-linux-gnu/dri")
    libs = glob.glob("/usr/lib*/libgallium*.so") + glob.glob("/usr/lib/*-linux-gnu/libgallium*.so")
    for path in [os.path.join(d, "swrast_dri.so") for d in dirs] + libs:
        if os.path.isfile(path):
            try:
                ctypes.CDLL(path, mode=os.RTLD_DEEPBIND | os.RTLD_NOW | os.RTLD_LOCAL)
            except OSError:
                continue  # an unloadable driver is one Mesa will not use either


# At import: it must precede the process's first OpenGL context.
_deep_bind_mesa_llvm()

GAMMA = 2.2
# Colour of meshes without vertex colours or texture, as in the original renderer.
DEFAULT_GREY = 160.0 / 255.0
# pyrender's dielectric: c_diff = 0.96 * base colour, Fresnel ~0.04 near normal incidence,
# Lambert's 1/pi: the diffuse radiance per unit light intensity at unit distance.
_PBR_DIFFUSE_GAIN = 0.96 * 0.96 / np.pi
# OpenGL camera axes expressed in the OpenCV camera frame (y and z flipped).
_GL_CAMERA_POSE = np.diag([1.0, -1.0, -1.0, 1.0])
_MAX_LABELS = 255  # labels come back in one uint8 channel


@dataclass(frozen=True)
class Light:
    """A point light and Phong weights, as in the original AAE renderer.

    Attributes:
        position: light position in mm in the OpenCV camera frame.
        ambient: ambient weight.
        diffuse: diffuse weight.
        specular: specular weight.
    """

    position: tuple[float, float, float]
    ambient: float
    diffuse: float
    specular: float

    def __post_init__(self) -> None:
        position = tuple(float(v) for v in np.asarray(self.position, dtype=np.float64).ravel())
        if len(position) != 3:
            raise AAEError(f"Light.position must have 3 coordinates (mm), got {self.position!r}")
        object.__setattr__(self, "position", position)
        for name in ("ambient", "diffuse", "specular"):
            if getattr(self, name) < 0:
                raise AAEError(f"Light.{name} must be non-negative, got {getattr(self, name)}")

    @classmethod
    def fixed(cls) -> Light:
        """The original's light for training targets and the codebook.

        The original set (400, 400, 400) in its OpenGL eye frame, whose z axis points
        backwards; in the OpenCV camera frame that is (400, 400, -400): behind the camera,
        to the right and below.
        """
        return cls(position=(400.0, 400.0, -400.0), ambient=0.4, diffuse=0.8, specular=0.3)

    @classmethod
    def random(cls, rng: np.random.Generator) -> Light:
        """The original's random light for training inputs.

        Position 1000 * U[0, 1)^3 in the original's eye frame (z negated here, see `fixed`),
        ambient 0.4, diffuse 0.8 +- 0.1, specular 0.3 +- 0.1 (uniform).
        """
        x, y, z = 1000.0 * rng.random(3)
        diffuse = 0.8 + 0.1 * (2.0 * rng.random() - 1.0)
        specular = 0.3 + 0.1 * (2.0 * rng.random() - 1.0)
        return cls(position=(x, y, -z), ambient=0.4, diffuse=diffuse, specular=specular)


class Renderer:
    """Renders meshes at OpenCV poses into RGB (uint8) and depth (float32, mm, 0 = empty).

    Depth is rasterised at pixel centres; colour edges are anti-aliased against black
    (pyrender's fixed 4x multisampling), so object masks should come from depth > 0.

    The pyrender version of each mesh is cached (keyed by the trimesh object, rebuilt when
    its data changes), so rendering many poses of one mesh neither rebuilds nor re-uploads
    it. All Renderers of a process share one OpenGL context (see `_SharedContext`). Use as
    a context manager or call `close()`.
    """

    def __init__(
        self,
        width: int,
        height: int,
        znear: float = 10.0,
        zfar: float = 10000.0,
        cache_size: int = 32,
    ) -> None:
        if width < 1 or height < 1:
            raise AAEError(f"image size must be positive, got {width}x{height}")
        if not 0 < znear < zfar:
            raise AAEError(f"need 0 < znear < zfar (mm), got znear={znear}, zfar={zfar}")
        self.width = int(width)
        self.height = int(height)
        self._cache_size = cache_size
        self._cache: OrderedDict[int, tuple[trimesh.Trimesh, int, pyrender.Mesh]] = OrderedDict()
        self._offscreen: pyrender.OffscreenRenderer | None = _SharedContext.acquire()
        self._scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=np.zeros(3))
        self._camera = pyrender.IntrinsicsCamera(
            fx=1.0, fy=1.0, cx=0.0, cy=0.0, znear=znear, zfar=zfar
        )
        self._scene.add(self._camera, pose=_GL_CAMERA_POSE)
        self._light = pyrender.PointLight(color=np.ones(3), intensity=1.0)
        self._light_node = self._scene.add(self._light, pose=np.eye(4))
        self._mesh_nodes: list[pyrender.Node] = []

    def render(
        self, mesh: trimesh.Trimesh, R: np.ndarray, t: np.ndarray, K: np.ndarray, light: Light
    ) -> tuple[np.ndarray, np.ndarray]:
        """Render one mesh at pose (R, t) with intrinsics K under `light`.

        Returns:
            rgb (H, W, 3) uint8 and depth (H, W) float32 in mm, 0 where there is no object.
        """
        rgb, depth, _ = self.render_scene([(mesh, R, t)], K, light)
        return rgb, depth

    def render_depth(
        self, mesh: trimesh.Trimesh, R: np.ndarray, t: np.ndarray, K: np.ndarray
    ) -> np.ndarray:
        """Render only the depth (H, W) float32 in mm of one mesh at pose (R, t)."""
        self._place([(mesh, R, t)], K)
        return self._depth_and_labels()[0]

    def render_scene(
        self,
        objects: Sequence[tuple[trimesh.Trimesh, np.ndarray, np.ndarray]],
        K: np.ndarray,
        light: Light,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Render several meshes together, each given as (mesh, R, t).

        Returns:
            rgb (H, W, 3) uint8, depth (H, W) float32 in mm (0: nothing), and labels (H, W)
            uint8 where labels == i + 1 marks the pixels in which objects[i] is the visible
            surface (0: nothing).
        """
        if not 1 <= len(objects) <= _MAX_LABELS:
            raise AAEError(f"render_scene takes 1 to {_MAX_LABELS} objects, got {len(objects)}")
        self._place(objects, K)
        self._set_light(light)
        rgb, _ = self._offscreen.render(self._scene)
        depth, labels = self._depth_and_labels()
        return rgb, depth, labels

    def _depth_and_labels(self) -> tuple[np.ndarray, np.ndarray]:
        # pyrender's shaded pass is 4x multisampled and its depth comes from one sample
        # off the pixel centre; the segmentation pass samples pixel centres, so its depth
        # and labels agree with each other and with the pinhole projection of K.
        seg_node_map = {node: (i + 1, 0, 0) for i, node in enumerate(self._mesh_nodes)}
        seg, depth = self._offscreen.render(
            self._scene, flags=pyrender.RenderFlags.SEG, seg_node_map=seg_node_map
        )
        return depth, np.ascontiguousarray(seg[..., 0])

    def close(self) -> None:
        """Release the OpenGL context."""
        if self._offscreen is not None:
            self._offscreen = None
            self._cache.clear()
            _SharedContext.release()

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _place(
        self, objects: Sequence[tuple[trimesh.Trimesh, np.ndarray, np.ndarray]], K: np.ndarray
    ) -> None:
        if self._offscreen is None:
            raise RuntimeError("this Renderer is closed; create a new one")
        self._offscreen.viewport_width, self._offscreen.viewport_height = self.width, self.height
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3):
            raise AAEError(f"K must be a 3x3 intrinsic matrix, got shape {K.shape}")
        self._camera.fx, self._camera.fy = K[0, 0], K[1, 1]
        # OpenCV puts pixel centres at integer coordinates, OpenGL at half-integers.
        self._camera.cx, self._camera.cy = K[0, 2] + 0.5, K[1, 2] + 0.5
        # Validate and convert everything before touching the scene, so bad input leaves it intact.
        placed = [(self._pyrender_mesh(mesh), pose_matrix(R, t)) for mesh, R, t in objects]
        for node in self._mesh_nodes:
            self._scene.remove_node(node)
        self._mesh_nodes = [self._scene.add(mesh, pose=pose) for mesh, pose in placed]

    def _set_light(self, light: Light) -> None:
        position = np.asarray(light.position)
        pose = np.eye(4)
        pose[:3, 3] = position
        self._scene.set_pose(self._light_node, pose)
        ambient = light.ambient**GAMMA
        self._scene.ambient_light = np.full(3, ambient)
        # Calibrate at the scene's centre: n.l = 1 there must give ambient + diffuse.
        centre = np.mean([self._scene.get_pose(n)[:3, 3] for n in self._mesh_nodes], axis=0)
        distance_sq = float(np.sum((position - centre) ** 2))
        target = (light.ambient + light.diffuse) ** GAMMA - ambient
        self._light.intensity = target * distance_sq / _PBR_DIFFUSE_GAIN
        roughness = float(np.clip(1.0 - light.specular, 0.05, 1.0))
        for node in self._mesh_nodes:
            for primitive in node.mesh.primitives:
                primitive.material.roughnessFactor = roughness

    def _pyrender_mesh(self, mesh: trimesh.Trimesh) -> pyrender.Mesh:
        if not isinstance(mesh, trimesh.Trimesh):
            raise TypeError(
                "expected a trimesh.Trimesh (see aae.data.mesh.load_mesh), got "
                f"{type(mesh).__name__}"
            )
        key = id(mesh)
        # trimesh tracks edits, so these hashes are cheap and change when the data does.
        data_hash = hash((hash(mesh), hash(mesh.visual)))
        cached = self._cache.get(key)
        # Holding the trimesh in the entry keeps its id from being reused by another object.
        if cached is not None and cached[1] == data_hash:
            self._cache.move_to_end(key)
            return cached[2]
        converted = _to_pyrender(mesh)
        self._cache[key] = (mesh, data_hash, converted)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return converted


class _SharedContext:
    """One pyrender OffscreenRenderer (OpenGL context) per process, reference-counted.

    pyrender's EGL backend terminates the process-wide EGL display when any
    OffscreenRenderer is deleted, which invalidates every other one; sharing a single
    context, resized per rendering, and deleting it with its last user avoids that.
    """

    _offscreen: pyrender.OffscreenRenderer | None = None
    _pid: int | None = None
    _users = 0

    @classmethod
    def acquire(cls) -> pyrender.OffscreenRenderer:
        # A forked child cannot use its parent's context: it needs its own.
        if cls._offscreen is None or cls._pid != os.getpid():
            cls._offscreen = pyrender.OffscreenRenderer(1, 1)
            cls._pid = os.getpid()
            cls._users = 0
        cls._users += 1
        return cls._offscreen

    @classmethod
    def release(cls) -> None:
        if cls._pid != os.getpid():
            return
        cls._users -= 1
        if cls._users == 0 and cls._offscreen is not None:
            cls._offscreen.delete()
            cls._offscreen = None


def pose_matrix(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The 4x4 model-to-camera matrix of rotation R (3x3) and translation t (3, mm)."""
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    if R.shape != (3, 3) or t.shape != (3,):
        raise AAEError(
            f"a pose needs R of shape (3, 3) and t of 3 values, got {R.shape} and {t.shape}"
        )
    pose = np.eye(4)
    pose[:3, :3] = R
    pose[:3, 3] = t
    return pose


def _to_pyrender(mesh: trimesh.Trimesh) -> pyrender.Mesh:
    """Convert a trimesh with vertex colours, a texture or no colour into a pyrender mesh."""
    # Metallic 0: a plain dielectric like the original's Phong surfaces (pyrender's
    # default for textured meshes is metallic, which renders them nearly black).
    material = pyrender.MetallicRoughnessMaterial(
        baseColorFactor=(1.0, 1.0, 1.0, 1.0), metallicFactor=0.0, roughnessFactor=0.7
    )
    texcoords = None
    colours = None
    image = getattr(getattr(mesh.visual, "material", None), "image", None)
    if mesh.visual.kind == "texture" and mesh.visual.uv is not None and image is not None:
        material.baseColorTexture = image  # sampled as sRGB and linearised by the shader
        texcoords = np.asarray(mesh.visual.uv, dtype=np.float32)
    elif mesh.visual.kind in ("vertex", "face"):
        srgb = np.asarray(mesh.visual.vertex_colors[:, :3], dtype=np.float32) / 255.0
        colours = srgb**GAMMA
    elif mesh.visual.kind == "texture":
        srgb = np.asarray(mesh.visual.to_color().vertex_colors[:, :3], dtype=np.float32) / 255.0
        colours = srgb**GAMMA
    else:
        colours = np.full((len(mesh.vertices), 3), DEFAULT_GREY**GAMMA, dtype=np.float32)
    primitive = pyrender.Primitive(
        positions=np.asarray(mesh.vertices, dtype=np.float32),
        normals=np.asarray(mesh.vertex_normals, dtype=np.float32),
        texcoord_0=texcoords,
        color_0=colours,
        indices=np.asarray(mesh.faces, dtype=np.uint32),
        material=material,
    )
    return pyrender.Mesh(primitives=[primitive])
