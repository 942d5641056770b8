"""Reading BOP-format datasets (e.g. LineMOD `lm`, Occluded LineMOD `lmo`) and the LineMOD table.

A BOP dataset folder holds `models/obj_XXXXXX.ply` (mm) with `models/models_info.json`,
and per split (`test`, `train`, ...) one folder per scene, `<split>/XXXXXX/`, containing
`rgb/`, `depth/` (uint16 png, mm = value * depth_scale), `scene_gt.json` (cam_R_m2c,
cam_t_m2c in mm, obj_id per instance), `scene_camera.json` (cam_K, depth_scale) and
`scene_gt_info.json` (bbox_obj, bbox_visib, px counts, visib_fract). Only `rgb/` and the
three JSON files are required: BOP'19 test sets such as LM-O's ship without depth or masks
for some splits. A `test_targets_bop19.json` next to the split (the BOP'19 challenge's list of
`{scene_id, im_id, obj_id, inst_count}` targets) limits the test split to those targets.
A folder with only `models/` (meshes and models_info.json, e.g. BOP's `lmo_models.zip`) is
read by `BopModels`.
See https://github.com/thodan/bop_toolkit/blob/master/docs/bop_datasets_format.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import trimesh

from aae.data.mesh import load_mesh
from aae.errors import AAEError, MissingFileError, UnknownNameError

#: The BOP'19 challenge's list of test targets, at the dataset's root.
TEST_TARGETS_FILE = "test_targets_bop19.json"
BOP_LAYOUT = (
    "a BOP dataset folder contains models/models_info.json, models/obj_XXXXXX.ply and "
    # depth/ is optional: the pose evaluation reads only rgb/ and the annotations.
    "<split>/XXXXXX/ scene folders with rgb/, scene_gt.json, scene_camera.json and "
    "scene_gt_info.json"
)
_IMAGE_SUFFIXES = (".png", ".jpg", ".tif")


@dataclass(frozen=True)
class LinemodObject:
    """One LineMOD object: BOP id, name, symmetry, and whether the usual protocol evaluates it."""

    obj_id: int
    name: str
    symmetric: bool
    evaluated: bool


LINEMOD_OBJECTS: tuple[LinemodObject, ...] = (
    LinemodObject(1, "ape", False, True),
    LinemodObject(2, "benchvise", False, True),
    LinemodObject(3, "bowl", True, False),
    LinemodObject(4, "cam", False, True),
    LinemodObject(5, "can", False, True),
    LinemodObject(6, "cat", False, True),
    LinemodObject(7, "cup", True, False),
    LinemodObject(8, "driller", False, True),
    LinemodObject(9, "duck", False, True),
    LinemodObject(10, "eggbox", True, True),
    LinemodObject(11, "glue", True, True),
    LinemodObject(12, "holepuncher", False, True),
    LinemodObject(13, "iron", False, True),
    LinemodObject(14, "lamp", False, True),
    LinemodObject(15, "phone", False, True),
)
# The 13 objects of the usual LineMOD protocol (bowl and cup lack good models).
LINEMOD_EVAL_IDS: tuple[int, ...] = tuple(o.obj_id for o in LINEMOD_OBJECTS if o.evaluated)
_LINEMOD_BY_ID = {o.obj_id: o for o in LINEMOD_OBJECTS}
_LINEMOD_BY_NAME = {o.name: o for o in LINEMOD_OBJECTS}


def _linemod(obj_id: int) -> LinemodObject:
    if obj_id not in _LINEMOD_BY_ID:
        raise UnknownNameError(
            f"{obj_id} is not a LineMOD object id; LineMOD ids are {sorted(_LINEMOD_BY_ID)}"
        )
    return _LINEMOD_BY_ID[obj_id]


def is_symmetric(obj_id: int) -> bool:
    """Whether LineMOD object `obj_id` is evaluated with ADI (ADD-S) rather than ADD."""
    return _linemod(obj_id).symmetric


def object_name(obj_id: int) -> str:
    """The LineMOD name of BOP object id `obj_id` (1 -> "ape")."""
    return _linemod(obj_id).name


def object_id(name: str) -> int:
    """The BOP object id of LineMOD object `name` ("ape" -> 1)."""
    if name not in _LINEMOD_BY_NAME:
        raise UnknownNameError(
            f"{name!r} is not a LineMOD object; LineMOD objects are {sorted(_LINEMOD_BY_NAME)}"
        )
    return _LINEMOD_BY_NAME[name].obj_id


@dataclass(frozen=True)
class ContinuousSymmetry:
    """Rotation symmetry about `axis` through `offset` (mm), in model coordinates."""

    axis: tuple[float, float, float]
    offset: tuple[float, float, float]


# eq=False: these hold numpy arrays, whose == is elementwise; identity equality suffices.
@dataclass(frozen=True, eq=False)
class ModelInfo:
    """The `models_info.json` entry of one object."""

    obj_id: int
    diameter: float
    symmetries_discrete: tuple[np.ndarray, ...]  # 4x4 model-to-model transforms (mm)
    symmetries_continuous: tuple[ContinuousSymmetry, ...]

    @property
    def is_symmetric(self) -> bool:
        """Whether the model has any discrete or continuous symmetry (then ADI applies)."""
        return bool(self.symmetries_discrete or self.symmetries_continuous)


@dataclass(frozen=True, eq=False)
class ObjectAnnotation:
    """One annotated object instance in an image."""

    obj_id: int
    R: np.ndarray  # (3, 3) model-to-camera rotation
    t: np.ndarray  # (3,) model-to-camera translation, mm
    bbox_obj: tuple[int, int, int, int]  # (x, y, w, h) of the whole silhouette
    bbox_visib: tuple[int, int, int, int]  # (x, y, w, h) of the visible part; -1s if hidden
    visib_fract: float
    px_count_visib: int


@dataclass(frozen=True, eq=False)
class ImageAnnotation:
    """One image of a scene with its camera and object instances."""

    scene_id: int
    im_id: int
    rgb_path: Path
    depth_path: Path | None
    K: np.ndarray  # (3, 3)
    depth_scale: float  # depth png value * depth_scale = mm
    objects: tuple[ObjectAnnotation, ...]

    def load_rgb(self) -> np.ndarray:
        """The image as RGB uint8 (H, W, 3)."""
        bgr = cv2.imread(str(self.rgb_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise AAEError(f"could not read image {self.rgb_path}; is the file complete?")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def load_depth(self) -> np.ndarray:
        """The depth map as float32 (H, W) in mm, 0 where there is no measurement."""
        if self.depth_path is None:
            raise MissingFileError(
                f"scene {self.scene_id} image {self.im_id} has no depth image in depth/"
            )
        raw = cv2.imread(str(self.depth_path), cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise AAEError(f"could not read depth image {self.depth_path}; is the file complete?")
        return raw.astype(np.float32) * np.float32(self.depth_scale)


class BopModels:
    """The `models/` folder of a BOP dataset: meshes (mm) and `models_info.json`.

    Args:
        root: the dataset folder (e.g. `.../bop/lmo`), which contains `models/`.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not (self.root / "models" / "models_info.json").is_file():
            raise MissingFileError(
                f"{self.root} is not a BOP dataset folder: missing models/models_info.json; "
                f"{BOP_LAYOUT}"
            )

    @cached_property
    def models_info(self) -> dict[int, ModelInfo]:
        """The parsed `models/models_info.json`, by object id."""
        with open(self.root / "models" / "models_info.json") as f:
            raw = json.load(f)
        info = {}
        for key, entry in raw.items():
            obj_id = int(key)
            discrete = tuple(
                np.asarray(s, dtype=np.float64).reshape(4, 4)
                for s in entry.get("symmetries_discrete", [])
            )
            continuous = tuple(
                ContinuousSymmetry(axis=tuple(s["axis"]), offset=tuple(s["offset"]))
                for s in entry.get("symmetries_continuous", [])
            )
            info[obj_id] = ModelInfo(obj_id, float(entry["diameter"]), discrete, continuous)
        return info

    def symmetry_entries(self, obj_id: int) -> dict[str, list]:
        """The raw `symmetries_discrete`/`symmetries_continuous` entries of `obj_id`, as in
        models_info.json (to write them into another BOP folder unchanged)."""
        self.model_path(obj_id)  # the same error for an unknown id
        with open(self.root / "models" / "models_info.json") as f:
            entry = json.load(f)[str(obj_id)]
        return {k: entry[k] for k in ("symmetries_discrete", "symmetries_continuous") if k in entry}

    @property
    def obj_ids(self) -> tuple[int, ...]:
        """The object ids listed in models_info.json, sorted."""
        return tuple(sorted(self.models_info))

    def model_path(self, obj_id: int) -> Path:
        """Path of the model `models/obj_XXXXXX.ply` of object `obj_id`."""
        if obj_id not in self.models_info:
            raise UnknownNameError(
                f"object id {obj_id} is not in {self.root}; its object ids are {list(self.obj_ids)}"
            )
        path = self.root / "models" / f"obj_{obj_id:06d}.ply"
        if not path.is_file():
            raise MissingFileError(f"model file {path} is missing; {BOP_LAYOUT}")
        return path

    def load_model(self, obj_id: int) -> trimesh.Trimesh:
        """The model of object `obj_id` as a mesh in mm."""
        return load_mesh(self.model_path(obj_id), units="mm")


def has_split(root: str | Path, split: str = "test") -> bool:
    """Whether `root` holds the scene folders of `split` (not only models)."""
    return (Path(root) / split).is_dir()


@dataclass(frozen=True)
class BopTarget:
    """One BOP'19 target: estimate `inst_count` instances of `obj_id` in one image."""

    scene_id: int
    im_id: int
    obj_id: int
    inst_count: int


class BopDataset(BopModels):
    """A BOP-format dataset folder, one split of it.

    Args:
        root: the dataset folder (e.g. `.../bop/lm`).
        split: the split folder name ("test", "train", "train_pbr", ...).
        use_targets: on the test split, read only the targets listed in the root's
            `test_targets_bop19.json` when that file exists (the BOP'19 protocol); False
            reads every annotated instance.
    """

    def __init__(self, root: str | Path, split: str = "test", use_targets: bool = True) -> None:
        self.root = Path(root)
        self.split = split
        required = [self.root / "models" / "models_info.json", self.root / split]
        missing = [str(p.relative_to(self.root)) for p in required if not p.exists()]
        if missing:
            raise MissingFileError(
                f"{self.root} is not a BOP dataset folder for split {split!r}: missing "
                f"{', '.join(missing)}; {BOP_LAYOUT}"
            )
        self.use_targets = use_targets

    @cached_property
    def test_targets(self) -> tuple[BopTarget, ...] | None:
        """The BOP'19 targets of this split, or None when they do not apply (no
        `test_targets_bop19.json`, another split than "test", or `use_targets=False`)."""
        path = self.root / TEST_TARGETS_FILE
        if not self.use_targets or self.split != "test" or not path.is_file():
            return None
        entries = _read_json(path)
        try:
            return tuple(
                BopTarget(
                    int(e["scene_id"]), int(e["im_id"]), int(e["obj_id"]), int(e["inst_count"])
                )
                for e in entries
            )
        except (KeyError, TypeError, ValueError) as error:
            raise AAEError(
                f"{path} must be a list of {{scene_id, im_id, obj_id, inst_count}} entries "
                f"(the BOP'19 test targets); {error!r}"
            ) from None

    def scenes(self) -> list[int]:
        """The ids of the scenes of the split (folders with a scene_gt.json)."""
        split_dir = self.root / self.split
        scenes = sorted(
            int(p.name)
            for p in split_dir.iterdir()
            if p.name.isdigit() and (p / "scene_gt.json").is_file()
        )
        if self.test_targets is not None:
            listed = {t.scene_id for t in self.test_targets}
            scenes = [s for s in scenes if s in listed]
        return scenes

    def images(
        self, scene_ids: Sequence[int] | None = None, obj_id: int | None = None
    ) -> Iterator[ImageAnnotation]:
        """Iterate over the annotated images, scene by scene, in image-id order.

        With BOP'19 test targets (see `test_targets`), only the listed images are read, each
        with only its listed objects, and of an object listed with `inst_count` n only the n
        instances with the largest visible fraction (BOP'19 lists instances at least 10%
        visible).

        Args:
            scene_ids: the scenes to read (default: all).
            obj_id: if given, only images showing this object, with only its instances.
        """
        if obj_id is not None and obj_id not in self.models_info:
            raise UnknownNameError(
                f"object id {obj_id} is not in {self.root}; its object ids are {list(self.obj_ids)}"
            )
        for scene_id in self.scenes() if scene_ids is None else scene_ids:
            yield from self._scene_images(scene_id, obj_id)

    def __iter__(self) -> Iterator[ImageAnnotation]:
        return self.images()

    def _scene_images(self, scene_id: int, obj_id: int | None) -> Iterator[ImageAnnotation]:
        scene_dir = self.root / self.split / f"{scene_id:06d}"
        names = ("scene_gt.json", "scene_camera.json", "scene_gt_info.json")
        missing = [n for n in names if not (scene_dir / n).is_file()]
        if missing:
            raise MissingFileError(
                f"scene folder {scene_dir} lacks {', '.join(missing)}; {BOP_LAYOUT}"
            )
        scene_gt, scene_camera, scene_gt_info = (_read_json(scene_dir / n) for n in names)
        targets = None
        if self.test_targets is not None:
            targets = {
                (t.im_id, t.obj_id): t.inst_count
                for t in self.test_targets
                if t.scene_id == scene_id
            }
        for key in sorted(scene_gt, key=int):
            im_id = int(key)
            if (
                key not in scene_camera
                or key not in scene_gt_info
                or len(scene_gt_info[key]) != len(scene_gt[key])
            ):
                raise AAEError(
                    f"image {im_id} of {scene_dir} has inconsistent annotations: scene_gt.json, "
                    "scene_camera.json and scene_gt_info.json must list the same images and "
                    "instances"
                )
            objects = tuple(
                _object_annotation(gt, gt_info)
                for gt, gt_info in zip(scene_gt[key], scene_gt_info[key], strict=True)
                if obj_id is None or gt["obj_id"] == obj_id
            )
            if targets is not None:
                objects = _targeted(objects, im_id, targets)
            if not objects:
                continue
            camera = scene_camera[key]
            yield ImageAnnotation(
                scene_id=scene_id,
                im_id=im_id,
                rgb_path=_find_image(scene_dir / "rgb", im_id, required=True),
                depth_path=_find_image(scene_dir / "depth", im_id, required=False),
                K=np.asarray(camera["cam_K"], dtype=np.float64).reshape(3, 3),
                # BOP's original datasets stored depth in mm and omit the scale.
                depth_scale=float(camera.get("depth_scale", 1.0)),
                objects=objects,
            )


def _targeted(
    objects: tuple[ObjectAnnotation, ...], im_id: int, targets: dict[tuple[int, int], int]
) -> tuple[ObjectAnnotation, ...]:
    """The instances of one image that its BOP'19 targets ask for, in annotation order."""
    chosen: list[int] = []
    for target_obj in sorted({o.obj_id for o in objects}):
        count = targets.get((im_id, target_obj), 0)
        candidates = [i for i, o in enumerate(objects) if o.obj_id == target_obj]
        # Stable sort: equally visible instances keep the annotation order.
        candidates.sort(key=lambda i: -objects[i].visib_fract)
        chosen += candidates[:count]
    return tuple(objects[i] for i in sorted(chosen))


def _read_json(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def _object_annotation(gt: dict, gt_info: dict) -> ObjectAnnotation:
    return ObjectAnnotation(
        obj_id=int(gt["obj_id"]),
        R=np.asarray(gt["cam_R_m2c"], dtype=np.float64).reshape(3, 3),
        t=np.asarray(gt["cam_t_m2c"], dtype=np.float64).reshape(3),
        bbox_obj=tuple(int(v) for v in gt_info["bbox_obj"]),
        bbox_visib=tuple(int(v) for v in gt_info["bbox_visib"]),
        visib_fract=float(gt_info["visib_fract"]),
        px_count_visib=int(gt_info["px_count_visib"]),
    )


def _find_image(folder: Path, im_id: int, required: bool) -> Path | None:
    for suffix in _IMAGE_SUFFIXES:
        path = folder / f"{im_id:06d}{suffix}"
        if path.is_file():
            return path
    if required:
        raise MissingFileError(f"no image {im_id:06d} (.png/.jpg/.tif) in {folder}; {BOP_LAYOUT}")
    return None
