"""Quirks of real keypoint annotation files: counting them, and the one training policy for them.

The reader (``posedet.data.reader.load_coco_keypoints``) keeps every annotation of a file with
its raw values: evaluation (pycocotools / xtcocotools read the file themselves) and statistics
need them as released. What *training* does with each quirk is decided here, in one pure
function, ``training_policy``; ``filter_for_training`` applies it to a whole index.
``quirk_counts`` counts the quirks of an index (``posedet synth --stats-only`` writes them under
``quirks``). The table of quirks, their counts on the real CrowdPose val file and what training
and evaluation do with each is ``docs/data.md``.

Training policy (``training_policy``), in the order it is applied:

1. Labelled keypoints outside the image (x < 0, y < 0, x >= W or y >= H; the image spans
   [0, W) x [0, H)) within ``clip_margin`` pixels of it are moved to the nearest pixel of the
   image (x clipped to [0, W - 1], y to [0, H - 1]): such points are clicks on the border
   (CrowdPose's are 1-7 px outside). Points farther outside are marked unlabelled (v = 0): the
   network cannot see them, and a clipped position would be a wrong label.
2. Unlabelled keypoints (v = 0) get x = y = 0 (some files store coordinates with v = 0).
3. ``num_keypoints`` is the count of v > 0 after 1. (the stored field is not used).
4. Boxes narrower or lower than 1 px (mmpose drops ``w < 1 or h < 1``) are replaced by the box of
   the person's labelled keypoints when that is at least 1 x 1 px; otherwise the person is
   dropped. Other boxes are kept as annotated, unclipped (the training OKS uses the annotated
   box area, as the authors' code does).
5. Crowd regions (``iscrowd = 1``) and persons with fewer than ``min_keypoints`` labelled
   keypoints are dropped. Crowd regions are not ignore regions for the loss: ``posedet/losses.py``
   and ``posedet/targets.py`` have no notion of image regions to ignore (their only ignored
   entries are the classification band between the OKS thresholds), so a crowd region's pixels
   are background in training, as for every person that is dropped.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:   # the reader imports this module lazily; no import cycle at run time
    from posedet.data.reader import ImageAnnotations, PoseDatasetIndex

#: Labelled keypoints at most this many pixels outside the image are clipped onto it in
#: training; farther ones are marked unlabelled.
CLIP_MARGIN = 16.0
#: Boxes with w or h below this (pixels) are degenerate (mmpose's ``w < 1 or h < 1``).
MIN_BOX_SIDE = 1.0

#: Quirk names, in the order ``quirk_counts`` reports them, with what each counts.
QUIRKS: dict[str, str] = {
    "iscrowd": "annotations with iscrowd = 1 (crowd regions)",
    "iscrowd_with_labelled_keypoints": "crowd regions that also have labelled keypoints (v > 0)",
    "no_labelled_keypoints": "annotations without any labelled keypoint (v > 0), crowd or not",
    "num_keypoints_zero": "annotations whose stored num_keypoints is 0",
    "num_keypoints_missing": "annotations without a stored num_keypoints",
    "num_keypoints_mismatch": "annotations whose stored num_keypoints differs from their count "
                              "of v > 0",
    "labelled_kp_negative": "annotations with a labelled keypoint at x < 0 or y < 0",
    "labelled_kp_outside_image": "annotations with a labelled keypoint beyond the right or "
                                 "bottom border (x >= width or y >= height)",
    "labelled_kp_far_outside": f"annotations with a labelled keypoint more than {CLIP_MARGIN:g} px "
                               "outside the image (training marks it unlabelled)",
    "unlabelled_kp_nonzero_xy": "annotations with an unlabelled keypoint (v = 0) whose x or y "
                                "is not 0",
    "degenerate_boxes": f"annotations whose box is narrower or lower than {MIN_BOX_SIDE:g} px",
    "box_outside_image": "annotations whose box reaches beyond the image",
    "area_missing": "annotations without an area (CrowdPose: box w*h*0.53 is used)",
    "images_without_annotations": "images with no annotation at all",
    "images_without_persons": "images with no non-crowd annotation",
    "images_without_labelled_persons": "images with no non-crowd annotation that has a labelled "
                                       "keypoint (training leaves them out)",
}


def _outside(kp: np.ndarray, width, height) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks [N, K] of labelled points at negative coordinates, beyond the right/bottom border,
    and their distance (px) to the image rectangle [0, W] x [0, H] (0 inside)."""
    x, y, lab = kp[..., 0], kp[..., 1], kp[..., 2] > 0
    w = np.asarray(width, dtype=np.float64).reshape(-1, 1)
    h = np.asarray(height, dtype=np.float64).reshape(-1, 1)
    neg = lab & ((x < 0) | (y < 0))
    beyond = lab & ((x >= w) | (y >= h))
    dist = np.maximum.reduce([-x, x - w, -y, y - h, np.zeros_like(x)]) * lab
    return neg, beyond, dist


def _keypoint_boxes(kp: np.ndarray) -> np.ndarray:
    """xywh box [N, 4] of each person's labelled keypoints (0s when none)."""
    lab = kp[..., 2] > 0
    any_lab = lab.any(axis=1)
    big = np.float32(np.inf)
    x0 = np.where(lab, kp[..., 0], big).min(axis=1)
    y0 = np.where(lab, kp[..., 1], big).min(axis=1)
    x1 = np.where(lab, kp[..., 0], -big).max(axis=1)
    y1 = np.where(lab, kp[..., 1], -big).max(axis=1)
    out = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
    return np.where(any_lab[:, None], out, 0).astype(np.float32)


def training_policy(ann: "ImageAnnotations", width, height, *, min_keypoints: int = 1,
                    clip_margin: float = CLIP_MARGIN, area_factor: float | None = None
                    ) -> tuple["ImageAnnotations", np.ndarray]:
    """The training view of raw annotations (pure: ``ann`` is not modified).

    ``width``/``height``: the image size, a number or one per annotation (``ann`` may hold the
    annotations of many images at once). ``area_factor``: when the file has no ``area`` (the
    reader's ``area_source == "box*0.53"``), the factor that turns a replaced box into its
    area. Returns ``(view, keep)``: ``view`` holds only the persons training uses, in their
    order, with the policy of the module docstring applied (``ann_ids`` and
    ``num_keypoints_stored`` as in the file); ``keep`` (bool [N]) says which rows of ``ann``
    they are.
    """
    kp = np.array(ann.keypoints, dtype=np.float32, copy=True)
    if kp.shape[0] == 0:
        keep = np.zeros(0, dtype=bool)
        return ann.select(keep), keep
    n = kp.shape[0]
    w = np.broadcast_to(np.asarray(width, dtype=np.float64), (n,))
    h = np.broadcast_to(np.asarray(height, dtype=np.float64), (n,))
    # 1. labelled points outside the image: clip the near ones, unlabel the far ones
    neg, beyond, dist = _outside(kp, w, h)
    outside = neg | beyond
    far = outside & (dist > clip_margin)
    near = outside & ~far
    if near.any():
        kp[..., 0] = np.where(near, np.clip(kp[..., 0], 0, (w - 1)[:, None]), kp[..., 0])
        kp[..., 1] = np.where(near, np.clip(kp[..., 1], 0, (h - 1)[:, None]), kp[..., 1])
    kp[..., 2] = np.where(far, 0, kp[..., 2])
    # 2. unlabelled points at (0, 0, 0)
    kp[kp[..., 2] <= 0] = 0
    # 3. labelled count
    num_kp = (kp[..., 2] > 0).sum(axis=1).astype(np.int64)
    # 4. degenerate boxes: the labelled keypoints' box, else drop
    boxes = np.array(ann.boxes, dtype=np.float32, copy=True)
    areas = np.array(ann.areas, dtype=np.float32, copy=True)
    degenerate = (boxes[:, 2] < MIN_BOX_SIDE) | (boxes[:, 3] < MIN_BOX_SIDE)
    unfixable = np.zeros(n, dtype=bool)
    if degenerate.any():
        kb = _keypoint_boxes(kp)
        fixable = degenerate & (kb[:, 2] >= MIN_BOX_SIDE) & (kb[:, 3] >= MIN_BOX_SIDE)
        boxes[fixable] = kb[fixable]
        if area_factor is not None:
            areas[fixable] = kb[fixable, 2] * kb[fixable, 3] * area_factor
        unfixable = degenerate & ~fixable
    # 5. who trains
    keep = (ann.iscrowd == 0) & (num_kp >= min_keypoints) & ~unfixable
    return replace(ann, keypoints=kp, boxes=boxes, areas=areas,
                   num_keypoints=num_kp).select(keep), keep


def quirk_counts(index: "PoseDatasetIndex", clip_margin: float = CLIP_MARGIN) -> dict[str, int]:
    """How often each quirk of ``QUIRKS`` occurs in ``index`` (raw values, as loaded)."""
    flat, image_pos = index.flat_annotations()
    kp, boxes = flat.keypoints, flat.boxes
    widths = np.asarray([rec.width for rec in index.images], dtype=np.float64)
    heights = np.asarray([rec.height for rec in index.images], dtype=np.float64)
    w, h = widths[image_pos], heights[image_pos]
    lab = kp[..., 2] > 0
    any_lab = lab.any(axis=1)
    crowd = flat.iscrowd != 0
    stored = flat.num_keypoints_stored
    neg, beyond, dist = _outside(kp, w, h)
    n_img = len(index.images)

    def images_with(mask: np.ndarray) -> int:
        return int(np.unique(image_pos[mask]).size)

    counts = {
        "iscrowd": crowd.sum(),
        "iscrowd_with_labelled_keypoints": (crowd & any_lab).sum(),
        "no_labelled_keypoints": (~any_lab).sum(),
        "num_keypoints_zero": (stored == 0).sum(),
        "num_keypoints_missing": (stored < 0).sum(),
        "num_keypoints_mismatch": ((stored >= 0) & (stored != lab.sum(axis=1))).sum(),
        "labelled_kp_negative": neg.any(axis=1).sum(),
        "labelled_kp_outside_image": beyond.any(axis=1).sum(),
        "labelled_kp_far_outside": (dist > clip_margin).any(axis=1).sum(),
        "unlabelled_kp_nonzero_xy": ((~lab) & ((kp[..., 0] != 0) | (kp[..., 1] != 0)))
        .any(axis=1).sum(),
        "degenerate_boxes": ((boxes[:, 2] < MIN_BOX_SIDE) | (boxes[:, 3] < MIN_BOX_SIDE)).sum(),
        "box_outside_image": ((boxes[:, 0] < 0) | (boxes[:, 1] < 0)
                              | (boxes[:, 0] + boxes[:, 2] > w)
                              | (boxes[:, 1] + boxes[:, 3] > h)).sum(),
        "area_missing": len(flat) if index.area_source != "area" else 0,
        "images_without_annotations": n_img - images_with(np.ones(len(flat), dtype=bool)),
        "images_without_persons": n_img - images_with(~crowd),
        "images_without_labelled_persons": n_img - images_with(~crowd & any_lab),
    }
    assert list(counts) == list(QUIRKS)
    return {name: int(v) for name, v in counts.items()}
