"""COCO-format keypoint reader for COCO 2017, CrowdPose, OCHuman and the synthetic sets.

One reader, no dataset-specific subclasses: every supported file is a COCO-format
``person_keypoints`` JSON (``images``, ``annotations``, ``categories`` with keypoint names).
The skeleton is inferred from the category's keypoint names (COCO's 17 names or CrowdPose's 14)
unless one is given; a given skeleton that disagrees with the file is an error.

pycocotools' ``COCO`` class is not used here because it validates nothing (a wrong keypoint count
or a NaN box goes through silently and fails much later, far from the file) and because training
wants the annotations as per-image numpy arrays; the evaluators still read the same files with
pycocotools / xtcocotools themselves.

Raw values in, one training policy out
--------------------------------------
The released files have quirks that are normal input, not errors (``docs/data.md`` lists them with
their counts on the real CrowdPose val file): crowd regions (``iscrowd=1``, COCO's with an RLE
``segmentation`` and all-zero keypoints, CrowdPose's sometimes with labelled keypoints), persons
with no labelled keypoint, a stored ``num_keypoints`` that disagrees with the v > 0 flags
(CrowdPose counts differently), labelled keypoints a few pixels outside the image (CrowdPose has
them at x = -1 ... -7 and x = width), coordinates stored with v = 0, float or integer
coordinates, tiny or zero-sized boxes, images without annotations. The index keeps all of them
with their raw values (evaluation and statistics need the file as released);
``filter_for_training`` applies the training policy of ``posedet.data.quirks.training_policy``
(clip or unlabel outside points, drop crowd regions and unlabelled persons, repair or drop
degenerate boxes) and ``posedet.data.quirks.quirk_counts`` counts them.

Unusable input is a ``PoseDataError`` naming the file and the entry (index and id): a missing or
malformed (e.g. truncated) file, a missing required key, keypoint names of no known skeleton, a
keypoint count other than the skeleton's, a value that is not a finite number (NaN, infinity, a
string), a visibility other than 0/1/2, a box with negative width or height, a negative area, an
annotation of an unknown image, duplicate ids.

Conventions
-----------
* Image paths: ``image_root / file_name``; without ``image_root`` (``default_image_root``) the
  ``images/`` folder beside the annotation file when it exists (``posedet synth``'s layout), else
  the annotation file's folder.
  The reader never opens images (``read_image`` does, when a dataset needs the pixels).
* Every image of the file is kept, also those without annotations (evaluation needs them).
* Annotations with ``iscrowd=1`` and persons with no labelled keypoint are kept
  (evaluation needs them); ``filter_for_training`` drops them for training.
* ``num_keypoints`` is recomputed as the count of keypoints with v > 0 (CrowdPose's stored value
  counts differently); the stored field is kept as ``num_keypoints_stored`` (-1 when absent).
* ``areas``: the annotation's ``area`` (COCO: segment area). A file with no ``area`` at all
  (CrowdPose) gets box w·h·0.53 (docs/data.md); a file where only some annotations
  lack it is an error.
* ``segmentation`` (polygons or RLE) is not read.
* Annotations whose ``category_id`` names a category without keypoints are ignored (a
  ``person_keypoints`` file has only the person category; this only matters for mixed files).
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from posedet.skeletons import SKELETONS, Skeleton

logger = logging.getLogger(__name__)

#: CrowdPose has no segment area; its OKS uses the box area times this factor (docs/data.md).
CROWDPOSE_AREA_FACTOR = 0.53


class PoseDataError(ValueError):
    """Bad annotation data; the message names the file and the entry."""


@dataclass(frozen=True)
class ImageRecord:
    id: int
    file_name: str
    path: str
    width: int
    height: int
    crowd_index: float | None = None


@dataclass
class ImageAnnotations:
    """All annotations of one image, as arrays (N may be 0)."""

    keypoints: np.ndarray      # [N, K, 3] float32 (x, y, v)
    boxes: np.ndarray          # [N, 4] float32 xywh
    areas: np.ndarray          # [N] float32
    iscrowd: np.ndarray        # [N] int64 (0/1)
    num_keypoints: np.ndarray  # [N] int64, count of v > 0
    ann_ids: np.ndarray        # [N] int64
    #: [N] int64, the file's ``num_keypoints`` as stored (-1 when absent); default all -1
    num_keypoints_stored: np.ndarray | None = None

    _FIELDS = ("keypoints", "boxes", "areas", "iscrowd", "num_keypoints", "ann_ids",
               "num_keypoints_stored")

    def __post_init__(self) -> None:
        if self.num_keypoints_stored is None:
            self.num_keypoints_stored = np.full(self.ann_ids.shape, -1, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.ann_ids.shape[0])

    @staticmethod
    def empty(num_keypoints: int) -> "ImageAnnotations":
        return ImageAnnotations(
            keypoints=np.zeros((0, num_keypoints, 3), np.float32),
            boxes=np.zeros((0, 4), np.float32),
            areas=np.zeros((0,), np.float32),
            iscrowd=np.zeros((0,), np.int64),
            num_keypoints=np.zeros((0,), np.int64),
            ann_ids=np.zeros((0,), np.int64),
        )

    def select(self, mask: np.ndarray) -> "ImageAnnotations":
        return ImageAnnotations(**{f: getattr(self, f)[mask] for f in self._FIELDS})

    @staticmethod
    def concat(parts: Sequence["ImageAnnotations"], num_keypoints: int) -> "ImageAnnotations":
        """All rows of ``parts``, in order, as one ImageAnnotations."""
        if not parts:
            return ImageAnnotations.empty(num_keypoints)
        return ImageAnnotations(**{f: np.concatenate([getattr(p, f) for p in parts])
                                   for f in ImageAnnotations._FIELDS})

    def split(self, counts: Sequence[int]) -> list["ImageAnnotations"]:
        """Inverse of ``concat``: consecutive pieces of ``counts[i]`` rows."""
        cuts = np.cumsum(np.asarray(counts, dtype=np.int64))[:-1]
        pieces = {f: np.split(getattr(self, f), cuts) for f in self._FIELDS}
        return [ImageAnnotations(**{f: pieces[f][i] for f in self._FIELDS})
                for i in range(len(counts))]


@dataclass
class PoseDatasetIndex:
    """A parsed keypoint annotation file: images and their annotations, aligned by position."""

    skeleton: Skeleton
    ann_file: str
    image_root: str
    images: list[ImageRecord]
    annotations: list[ImageAnnotations]   # annotations[i] belongs to images[i]
    area_source: str = "area"             # "area" (file field) or "box*0.53"
    _pos: dict[int, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if len(self.images) != len(self.annotations):
            raise ValueError("images and annotations must be aligned")
        self._pos = {rec.id: i for i, rec in enumerate(self.images)}

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_ids(self) -> list[int]:
        return [rec.id for rec in self.images]

    @property
    def num_annotations(self) -> int:
        return sum(len(a) for a in self.annotations)

    def position(self, image_id: int) -> int:
        return self._pos[image_id]

    def annotations_for(self, image_id: int) -> ImageAnnotations:
        return self.annotations[self._pos[image_id]]

    def flat_annotations(self) -> tuple[ImageAnnotations, np.ndarray]:
        """Every annotation of the index as one ImageAnnotations (image order, then file order
        within an image) and the position of each one's image in ``images``."""
        counts = np.fromiter((len(a) for a in self.annotations), dtype=np.int64,
                             count=len(self.annotations))
        flat = ImageAnnotations.concat(self.annotations, self.skeleton.num_keypoints)
        return flat, np.repeat(np.arange(len(self.annotations), dtype=np.int64), counts)

    def subset(self, positions: Iterable[int]) -> "PoseDatasetIndex":
        pos = list(positions)
        return replace(self, images=[self.images[i] for i in pos],
                       annotations=[self.annotations[i] for i in pos], _pos={})


# --------------------------------------------------------------------------------------------
# loading


def _load_json(ann_file: str) -> Any:
    if not os.path.isfile(ann_file):
        raise PoseDataError(f"{ann_file}: annotation file not found")
    try:
        # text, not bytes: json.loads(bytes) would hold the bytes and their decoded copy at once
        with open(ann_file, encoding="utf-8-sig") as fh:
            text = fh.read()
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PoseDataError(
            f"{ann_file}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except UnicodeDecodeError as exc:
        raise PoseDataError(f"{ann_file}: not UTF-8 text ({exc})") from None


def _require(entry: Any, keys: Sequence[str], where: str) -> None:
    if not isinstance(entry, dict):
        raise PoseDataError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise PoseDataError(f"{where}: missing required key(s) {missing}")


_NUMBER_TYPES = {int, float}


def _finite_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _infer_skeleton(ann_file: str, categories: list, given: Skeleton | None
                    ) -> tuple[Skeleton, set | None]:
    """Skeleton from the keypoint names; also the ids of the keypoint categories (None: any)."""
    kp_cats = []
    for j, cat in enumerate(categories):
        if not isinstance(cat, dict):
            raise PoseDataError(f"{ann_file}: categories[{j}]: expected a JSON object")
        if cat.get("keypoints"):
            kp_cats.append(cat)
    if not kp_cats:
        if given is None:
            raise PoseDataError(
                f"{ann_file}: no category lists keypoint names; cannot infer the skeleton "
                "(pass skeleton=...)")
        return given, None
    names_set = {tuple(c["keypoints"]) for c in kp_cats}
    if len(names_set) > 1:
        raise PoseDataError(f"{ann_file}: categories disagree on keypoint names: {sorted(names_set)}")
    names = names_set.pop()
    ids = {c.get("id") for c in kp_cats}
    if given is not None:
        if tuple(given.keypoints) != names:
            raise PoseDataError(
                f"{ann_file}: skeleton {given.name!r} ({given.num_keypoints} keypoints "
                f"{list(given.keypoints)}) does not match the file's keypoints "
                f"({len(names)}: {list(names)})")
        return given, ids
    for skel in SKELETONS.values():
        if tuple(skel.keypoints) == names:
            return skel, ids
    raise PoseDataError(
        f"{ann_file}: keypoint names {list(names)} match no known skeleton "
        f"({', '.join(f'{s.name} ({s.num_keypoints})' for s in SKELETONS.values())})")


def default_image_root(ann_file: str | os.PathLike) -> str:
    """The image folder of ``ann_file`` when none is given: ``images/`` beside it if that folder
    exists (``posedet synth --out D`` writes ``D/annotations.json`` and ``D/images/``), else the
    annotation file's own folder."""
    folder = os.path.dirname(os.path.abspath(os.fspath(ann_file)))
    images = os.path.join(folder, "images")
    return images if os.path.isdir(images) else folder


def load_coco_keypoints(ann_file: str | os.PathLike, image_root: str | os.PathLike | None = None,
                        skeleton: Skeleton | str | None = None) -> PoseDatasetIndex:
    """Read and validate a COCO-format keypoint file.

    ``image_root``: folder of the images (COCO: ``.../val2017``); default: ``images/`` beside
    the JSON when that folder exists, else the JSON's folder (``default_image_root``).
    ``skeleton``: a Skeleton or its name; default: inferred from the keypoint names.
    Raises PoseDataError (a ValueError) naming the file and the bad entry.
    """
    ann_file = os.fspath(ann_file)
    root = os.fspath(image_root) if image_root is not None else default_image_root(ann_file)
    if isinstance(skeleton, str):
        try:
            skeleton = SKELETONS[skeleton]
        except KeyError:
            raise PoseDataError(f"{ann_file}: unknown skeleton {skeleton!r}; known: "
                                f"{sorted(SKELETONS)}") from None
    data = _load_json(ann_file)
    if not isinstance(data, dict):
        raise PoseDataError(f"{ann_file}: top level must be a JSON object, got "
                            f"{type(data).__name__}")
    required_top = ["images", "annotations"] + ([] if skeleton is not None else ["categories"])
    _require(data, required_top, ann_file)
    for key in ("images", "annotations", "categories"):
        if key in data and not isinstance(data[key], list):
            raise PoseDataError(f"{ann_file}: '{key}' must be a list, got "
                                f"{type(data[key]).__name__}")
    skel, kp_cat_ids = _infer_skeleton(ann_file, data.get("categories", []), skeleton)
    k = skel.num_keypoints

    # ---- images
    images: list[ImageRecord] = []
    pos: dict[int, int] = {}
    for j, img in enumerate(data["images"]):
        where = f"{ann_file}: images[{j}]" + (
            f" (id {img['id']})" if isinstance(img, dict) and "id" in img else "")
        _require(img, ["id", "file_name", "width", "height"], where)
        iid = img["id"]
        if not isinstance(iid, int) or isinstance(iid, bool):
            raise PoseDataError(f"{where}: id must be an integer, got {iid!r}")
        if iid in pos:
            raise PoseDataError(f"{where}: duplicate image id {iid}")
        for dim in ("width", "height"):
            val = img[dim]
            if not _finite_number(val) or val <= 0 or val != int(val):
                raise PoseDataError(f"{where}: {dim} must be a positive integer, got {val!r}")
        if not isinstance(img["file_name"], str) or not img["file_name"]:
            raise PoseDataError(f"{where}: file_name must be a non-empty string")
        ci = img.get("crowdIndex", img.get("crowd_index"))
        if ci is not None and not _finite_number(ci):
            raise PoseDataError(f"{where}: crowdIndex must be a finite number, got {ci!r}")
        pos[iid] = len(images)
        images.append(ImageRecord(id=iid, file_name=img["file_name"],
                                  path=os.path.join(root, img["file_name"]),
                                  width=int(img["width"]), height=int(img["height"]),
                                  crowd_index=None if ci is None else float(ci)))

    # ---- annotations: structural checks per entry, numeric checks vectorised
    anns = []
    kp_rows: list = []
    box_rows: list = []
    seen_ann: set = set()
    has_area = []
    for j, ann in enumerate(data["annotations"]):
        where = f"{ann_file}: annotations[{j}]" + (
            f" (id {ann['id']})" if isinstance(ann, dict) and "id" in ann else "")
        _require(ann, ["id", "image_id", "keypoints", "bbox"], where)
        if kp_cat_ids is not None and "category_id" in ann and ann["category_id"] not in kp_cat_ids:
            continue
        aid = ann["id"]
        if not isinstance(aid, int) or isinstance(aid, bool):
            raise PoseDataError(f"{where}: id must be an integer, got {aid!r}")
        if aid in seen_ann:
            raise PoseDataError(f"{where}: duplicate annotation id {aid}")
        seen_ann.add(aid)
        if ann["image_id"] not in pos:
            raise PoseDataError(f"{where}: refers to unknown image id {ann['image_id']!r}")
        kps = ann["keypoints"]
        if not isinstance(kps, list) or len(kps) != 3 * k:
            n = len(kps) if isinstance(kps, list) else type(kps).__name__
            raise PoseDataError(f"{where}: keypoints has {n} values, expected 3*{k}={3 * k} "
                                f"for skeleton {skel.name!r}")
        box = ann["bbox"]
        if not isinstance(box, list) or len(box) != 4:
            raise PoseDataError(f"{where}: bbox must be a list of 4 numbers [x, y, w, h], "
                                f"got {box!r}")
        # Type check per entry (np.asarray would silently turn "3" into 3.0); finiteness is
        # checked vectorised below.
        if not {type(v) for v in kps} <= _NUMBER_TYPES:
            bad = next(i for i, v in enumerate(kps) if type(v) not in _NUMBER_TYPES)
            raise PoseDataError(f"{where}: keypoints[{bad}] = {kps[bad]!r} is not a number "
                                f"(keypoint {skel.keypoints[bad // 3]!r})")
        if not {type(v) for v in box} <= _NUMBER_TYPES:
            raise PoseDataError(f"{where}: bbox {box!r} has a non-numeric value")
        if "area" in ann and not _finite_number(ann["area"]):
            raise PoseDataError(f"{where}: area {ann['area']!r} is not a finite number")
        if "area" in ann and ann["area"] < 0:
            raise PoseDataError(f"{where}: negative area {ann['area']!r}")
        crowd = ann.get("iscrowd", 0)
        if crowd not in (0, 1):
            raise PoseDataError(f"{where}: iscrowd must be 0 or 1, got {crowd!r}")
        nk = ann.get("num_keypoints", -1)
        if type(nk) is not int:
            if not (_finite_number(nk) and nk == int(nk)):
                raise PoseDataError(f"{where}: num_keypoints must be an integer, got {nk!r}")
            nk = int(nk)
        if nk < 0 and "num_keypoints" in ann:
            raise PoseDataError(f"{where}: negative num_keypoints {nk!r}")
        has_area.append("area" in ann)
        anns.append((where, aid, pos[ann["image_id"]], int(crowd), ann.get("area"), nk))
        kp_rows.append(kps)
        box_rows.append(box)

    n = len(anns)
    kp_arr = _numeric_array(kp_rows, (n, k, 3), anns, "keypoints", skel)
    box_arr = _numeric_array(box_rows, (n, 4), anns, "bbox", skel)
    bad = np.flatnonzero((box_arr[:, 2] < 0) | (box_arr[:, 3] < 0))
    if bad.size:
        raise PoseDataError(f"{anns[bad[0]][0]}: bbox {box_arr[bad[0]].tolist()} has negative "
                            "width or height")
    vis = kp_arr[..., 2]
    bad_v = np.argwhere(~np.isin(vis, (0.0, 1.0, 2.0)))
    if bad_v.size:
        a, kk = bad_v[0]
        raise PoseDataError(f"{anns[a][0]}: keypoint {skel.keypoints[kk]!r} has visibility "
                            f"{vis[a, kk]!r}, expected 0, 1 or 2")
    # Labelled keypoints outside the image are kept as they are (quirks.training_policy).

    if n and all(has_area):
        area_source = "area"
        areas = np.asarray([a[4] for a in anns], dtype=np.float64)
    elif not any(has_area):
        area_source = "box*0.53"
        areas = box_arr[:, 2] * box_arr[:, 3] * CROWDPOSE_AREA_FACTOR
    else:
        first = anns[has_area.index(False)][0]
        raise PoseDataError(f"{first}: missing 'area' while other annotations of the file have "
                            "one")

    img_pos = np.asarray([a[2] for a in anns], dtype=np.int64)
    ann_ids = np.asarray([a[1] for a in anns], dtype=np.int64)
    iscrowd = np.asarray([a[3] for a in anns], dtype=np.int64)
    stored_kp = np.asarray([a[5] for a in anns], dtype=np.int64)
    num_kp = (vis > 0).sum(axis=1).astype(np.int64)
    order = np.argsort(img_pos, kind="stable")           # keep file order within an image
    bounds = np.searchsorted(img_pos[order], np.arange(len(images) + 1))
    kp32, box32, area32 = (kp_arr.astype(np.float32), box_arr.astype(np.float32),
                           areas.astype(np.float32))
    grouped = []
    for i in range(len(images)):
        sel = order[bounds[i]:bounds[i + 1]]
        if sel.size == 0:
            grouped.append(ImageAnnotations.empty(k))
            continue
        grouped.append(ImageAnnotations(keypoints=kp32[sel], boxes=box32[sel], areas=area32[sel],
                                        iscrowd=iscrowd[sel], num_keypoints=num_kp[sel],
                                        ann_ids=ann_ids[sel],
                                        num_keypoints_stored=stored_kp[sel]))
    return PoseDatasetIndex(skeleton=skel, ann_file=ann_file, image_root=root, images=images,
                            annotations=grouped, area_source=area_source)


def _numeric_array(rows: list, shape: tuple, anns: list, what: str, skel: Skeleton) -> np.ndarray:
    """Rows of numbers -> float64 array; the first non-finite value is an error.

    Vectorised for the common case (real COCO train has ~260k annotations); the per-value
    search runs only when something is wrong.
    """
    arr = np.asarray(rows, dtype=np.float64).reshape(shape)    # types were checked per entry
    ok = np.isfinite(arr).reshape(len(rows), -1).all(axis=1)
    if ok.all():
        return arr
    a = int(np.flatnonzero(~ok)[0])
    j = next(i for i, v in enumerate(rows[a]) if not _finite_number(v))
    name = f" (keypoint {skel.keypoints[j // 3]!r})" if what == "keypoints" else ""
    raise PoseDataError(f"{anns[a][0]}: {what}[{j}] = {rows[a][j]!r} is not a finite "
                        f"number{name}")


def filter_for_training(index: PoseDatasetIndex, min_keypoints: int = 1,
                        drop_empty_images: bool = True,
                        clip_margin: float | None = None) -> PoseDatasetIndex:
    """The training view of ``index``: ``posedet.data.quirks.training_policy`` on every image.

    Labelled keypoints just outside the image are clipped onto it (farther than
    ``clip_margin`` px, default ``quirks.CLIP_MARGIN``: marked unlabelled); crowd regions,
    persons with fewer than ``min_keypoints`` labelled keypoints and persons with a degenerate
    box that their keypoints cannot replace are dropped. Images left without persons are
    dropped (a random-person crop needs a person) unless ``drop_empty_images=False``.
    ``index`` itself is not changed (it keeps the raw values).
    """
    from posedet.data.quirks import CLIP_MARGIN, training_policy

    flat, image_pos = index.flat_annotations()
    widths = np.asarray([rec.width for rec in index.images], dtype=np.float64)
    heights = np.asarray([rec.height for rec in index.images], dtype=np.float64)
    area_factor = CROWDPOSE_AREA_FACTOR if index.area_source != "area" else None
    kept, keep = training_policy(flat, widths[image_pos], heights[image_pos],
                                 min_keypoints=min_keypoints,
                                 clip_margin=CLIP_MARGIN if clip_margin is None else clip_margin,
                                 area_factor=area_factor)
    counts = np.bincount(image_pos[keep], minlength=len(index.images))
    per_image = kept.split(counts)
    images, anns = [], []
    for rec, a, c in zip(index.images, per_image, counts):
        if drop_empty_images and c == 0:
            continue
        images.append(rec)
        anns.append(a)
    return replace(index, images=images, annotations=anns, _pos={})


# --------------------------------------------------------------------------------------------
# images


def read_image(path: str | os.PathLike) -> np.ndarray | None:
    """Decode an image file as RGB uint8 [H, W, 3]; None when missing, unreadable or corrupt.

    EXIF orientation is ignored: COCO's annotations and width/height are in the stored pixel
    frame. ``np.fromfile`` + ``cv2.imdecode`` (rather than ``cv2.imread``) also handles
    non-ASCII paths.
    """
    try:
        buf = np.fromfile(os.fspath(path), dtype=np.uint8)
    except (OSError, ValueError):
        return None
    if buf.size == 0:
        return None
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None or img.ndim != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class SkippedImages:
    """Records images that could not be used, and reports them once in a while.

    ``skipped`` is a list of (file_name, reason); each file is recorded once.
    """

    def __init__(self, show: int = 5) -> None:
        self.skipped: list[tuple[str, str]] = []
        self._seen: set[str] = set()
        self.show = show

    def __len__(self) -> int:
        return len(self.skipped)

    @property
    def count(self) -> int:
        return len(self.skipped)

    def add(self, file_name: str, reason: str) -> bool:
        """Record a skip; True when this file was not recorded before."""
        if file_name in self._seen:
            return False
        self._seen.add(file_name)
        self.skipped.append((file_name, reason))
        logger.warning("skipping image %s (%s); %d skipped so far", file_name, reason,
                       len(self.skipped))
        return True

    def report(self, context: str = "") -> None:
        if not self.skipped:
            return
        first = ", ".join(f"{name} ({why})" for name, why in self.skipped[:self.show])
        more = "" if len(self.skipped) <= self.show else f", ... ({len(self.skipped) - self.show} more)"
        logger.warning("%s%d image(s) skipped: %s%s", f"{context}: " if context else "",
                       len(self.skipped), first, more)


def check_image_files(index: PoseDatasetIndex, skipped: SkippedImages | None = None,
                      decode: bool = False) -> tuple[PoseDatasetIndex, SkippedImages]:
    """Drop images whose file is missing or empty (``decode=True``: also undecodable or of the
    wrong size). Cheap by default: one stat per image; decoding is left to ``__getitem__``."""
    skipped = skipped if skipped is not None else SkippedImages()
    keep = []
    for i, rec in enumerate(index.images):
        reason = None
        try:
            if os.path.getsize(rec.path) == 0:
                reason = "empty file"
        except OSError:
            reason = "missing file"
        if reason is None and decode:
            img = read_image(rec.path)
            reason = image_problem(img, rec)
        if reason is None:
            keep.append(i)
        else:
            skipped.add(rec.file_name, reason)
    if skipped.count:
        skipped.report(index.ann_file)
    return (index if len(keep) == len(index) else index.subset(keep)), skipped


def image_problem(img: np.ndarray | None, rec: ImageRecord) -> str | None:
    """Why a decoded image cannot be used with its record, or None."""
    if img is None:
        return "unreadable"
    if img.shape[:2] != (rec.height, rec.width):
        return (f"size {img.shape[1]}x{img.shape[0]} differs from the annotated "
                f"{rec.width}x{rec.height}")
    return None
