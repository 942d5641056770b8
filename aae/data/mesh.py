"""Loading object models (.ply / .obj) in millimetres, their diameter and their points.

BOP models are .ply files in millimetres with vertex colours (some with a texture); custom
models often come in metres, which is the most common way to get an empty rendering, so
`load_mesh` warns when the size of the object contradicts the units it was given.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aae.errors import AAEError, MissingFileError

# trimesh and scipy are imported where they are used: `aae --help` reads UNITS.
if TYPE_CHECKING:
    import trimesh

MESH_SUFFIXES = (".ply", ".obj")
UNITS = {"mm": 1.0, "m": 1000.0}

# Extents (mm) beyond which the declared units are probably wrong: LineMOD-sized objects
# measured in metres are a fraction of a "millimetre", in millimetres tens of "metres".
_MIN_PLAUSIBLE_MM = 5.0
_MAX_PLAUSIBLE_MM = 10_000.0


def load_mesh(path: str | Path, units: str = "mm") -> trimesh.Trimesh:
    """Load a triangle mesh from a .ply or .obj file and return it in millimetres.

    Vertex colours and textures are kept. The file's vertex layout is kept as well (no
    merging of duplicate vertices), so per-vertex normals, colours and texture coordinates
    stay as the modeller wrote them.

    Args:
        path: the model file.
        units: the unit of the file's coordinates, "mm" (BOP) or "m"; metres are scaled to mm.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unknown units or suffix, an empty file, or a file that holds no triangles.
    """
    path = Path(path)
    if units not in UNITS:
        raise AAEError(f"units must be one of {sorted(UNITS)}, got {units!r}")
    if not path.is_file():
        raise MissingFileError(
            f"mesh file {path} does not exist; pass the path of a .ply or .obj model"
        )
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise AAEError(f"mesh file {path} has an unsupported format; pass a .ply or .obj model")
    if path.stat().st_size == 0:
        raise AAEError(f"mesh file {path} is empty; re-export the model as .ply or .obj")
    import trimesh

    try:
        # force="mesh" merges multi-part .obj files (one part per material) into one mesh.
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as exc:  # trimesh raises many types for malformed files
        raise AAEError(
            f"mesh file {path} could not be read as a mesh ({type(exc).__name__}: {exc}); "
            "check that it is a valid .ply or .obj model"
        ) from exc
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise AAEError(
            f"mesh file {path} contains no triangles (a point cloud or an unreadable file); "
            "pass a triangle mesh in .ply or .obj format"
        )
    if units == "m":
        mesh.apply_scale(UNITS["m"])
    _warn_on_implausible_size(mesh, path, units)
    return mesh


def _warn_on_implausible_size(mesh: trimesh.Trimesh, path: Path, units: str) -> None:
    extent_mm = float(np.max(mesh.extents))
    if units == "mm" and extent_mm < _MIN_PLAUSIBLE_MM:
        warnings.warn(
            f"mesh {path} is only {extent_mm:.3g} mm across; it is probably in metres: "
            "load it with units='m'",
            stacklevel=3,
        )
    elif units == "m" and extent_mm > _MAX_PLAUSIBLE_MM:
        warnings.warn(
            f"mesh {path} is {extent_mm / 1000.0:.3g} m across; it is probably in millimetres: "
            "load it with units='mm'",
            stacklevel=3,
        )


def mesh_diameter(mesh: trimesh.Trimesh) -> float:
    """The largest distance between two vertices of the mesh (the BOP "diameter"), in mm.

    The farthest pair always lies on the convex hull, so only hull vertices are compared.
    """
    from scipy.spatial import ConvexHull, QhullError
    from scipy.spatial.distance import pdist

    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    if len(vertices) < 2:
        raise AAEError("the mesh has fewer than two vertices, so it has no diameter")
    try:
        candidates = vertices[ConvexHull(vertices).vertices]
    except QhullError:
        # Flat or degenerate models have no 3D hull; compare all (distinct) vertices.
        candidates = np.unique(vertices, axis=0)
    return float(pdist(candidates).max())


def model_points(mesh: trimesh.Trimesh, max_points: int | None = None, seed: int = 0) -> np.ndarray:
    """The model's distinct vertices (N, 3) in mm, the point set of ADD/ADI as in BOP.

    Duplicate vertices (split at sharp edges or texture seams) are removed so that they do
    not weigh twice in the mean. With `max_points`, a seeded random subset of that size is
    returned to bound the cost of the metrics on dense scans.
    """
    points = np.unique(np.asarray(mesh.vertices, dtype=np.float64), axis=0)
    if max_points is not None:
        if max_points < 1:
            raise AAEError(f"max_points must be at least 1, got {max_points}")
        if len(points) > max_points:
            rng = np.random.default_rng(seed)
            points = points[rng.choice(len(points), size=max_points, replace=False)]
    return points
