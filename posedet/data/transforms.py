"""Train and test transforms: pure numpy/cv2 functions with an explicit ``np.random.Generator``.

Coordinate convention (used by the whole data pipeline)
-------------------------------------------------------
Continuous pixel coordinates: pixel (row i, column j) covers [j, j+1) x [i, i+1), so its centre
is (j + 0.5, i + 0.5) and an image of width W spans x in [0, W). Under this convention

* scaling by s about the origin is exactly ``p' = s * p`` (what cv2.resize's half-pixel
  sampling implements), so test-time predictions map back with ``p = p' / scale``;
* the horizontal flip of an image of width W is ``x' = W - x`` (pixel j <-> pixel W-1-j),
  an involution; keypoint labels are swapped with ``skeleton.flip_index``.
  For flip TTA use the width of the *resized, unpadded* image (not the padded one).

cv2.warpAffine works in pixel-index coordinates (centre of pixel j is j); ``cv2_matrix`` converts.

Train (paper, 4.1): a person with >= 1 labelled keypoint is drawn uniformly, the image is resized
by s ~ U[0.5, 1.5] and a SxS patch is cut centred on that person's box centre, then flipped with
p = 0.5 -- all as one affine ``x' = s (x - c) + S/2`` (then ``x'' = S - x'`` if flipped), applied
to the pixels with one cv2.warpAffine (bilinear; outside the image is filled with the ImageNet mean
colour, which normalises to ~0) and to keypoints and boxes. RNG draws, in order: person index,
scale, flip.

Test: resize with one scale ``min(S / short, max_size / long)`` (aspect kept; sizes rounded),
pad bottom/right with the mean colour to a multiple of ``size_divisor``; ``original = resized /
scale``.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)   # RGB, on [0, 1]
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
#: uint8 fill for crop borders and padding: the ImageNet mean, ~0 after ``to_tensor``.
MEAN_COLOUR = tuple(int(round(float(m) * 255)) for m in IMAGENET_MEAN)


# ----------------------------------------------------------------------------------- geometry


def crop_matrix(centre: Sequence[float], scale: float, output_size: int,
                flip: bool = False) -> np.ndarray:
    """2x3 affine (continuous coordinates): resize by ``scale``, put ``centre`` at the patch
    centre (S/2, S/2), then optionally mirror the patch (x -> S - x)."""
    s, half = float(scale), output_size / 2.0
    cx, cy = float(centre[0]), float(centre[1])
    m = np.array([[s, 0.0, half - s * cx], [0.0, s, half - s * cy]], dtype=np.float64)
    if flip:
        m[0] = [-s, 0.0, output_size - (half - s * cx)]
    return m


def cv2_matrix(m: np.ndarray) -> np.ndarray:
    """Continuous-coordinate affine -> the pixel-index affine cv2.warpAffine expects.

    With q = p - 0.5: q' = A q + (t + A·(0.5, 0.5) - 0.5)."""
    a, t = m[:, :2], m[:, 2]
    out = np.empty((2, 3), dtype=np.float64)
    out[:, :2] = a
    out[:, 2] = t + a @ np.array([0.5, 0.5]) - 0.5
    return out


def warp_image(image: np.ndarray, m: np.ndarray, out_w: int, out_h: int,
               border_value: Sequence[int] = MEAN_COLOUR) -> np.ndarray:
    """Apply a continuous-coordinate affine to an HxWx3 uint8 image (bilinear)."""
    return cv2.warpAffine(image, cv2_matrix(m), (int(out_w), int(out_h)), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(float(v) for v in border_value))


def affine_points(xy: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to points [..., 2]."""
    xy = np.asarray(xy, dtype=np.float64)
    return xy @ m[:, :2].T + m[:, 2]


def affine_keypoints(keypoints: np.ndarray, m: np.ndarray, out_w: int, out_h: int,
                     flip_index: Sequence[int] | None = None) -> np.ndarray:
    """Transform keypoints [N, K, 3] (x, y, v); points that land outside [0, out_w) x [0, out_h)
    get v = 0, and every v = 0 point gets x = y = 0. ``flip_index`` (when the affine mirrors)
    swaps left/right labels."""
    kps = np.asarray(keypoints, dtype=np.float64).copy()
    if kps.size:
        kps[..., :2] = affine_points(kps[..., :2], m)
        x, y = kps[..., 0], kps[..., 1]
        inside = (x >= 0) & (x < out_w) & (y >= 0) & (y < out_h)
        kps[..., 2] = np.where(inside, kps[..., 2], 0.0)
        kps[kps[..., 2] <= 0] = 0.0
        if flip_index is not None:
            kps = kps[:, list(flip_index)]
    return kps.astype(np.float32)


def affine_boxes_xywh(boxes: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Axis-aligned image of xywh boxes [N, 4] under an affine, as xyxy (unclipped)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1, y1 = b[:, 0], b[:, 1]
    x2, y2 = x1 + b[:, 2], y1 + b[:, 3]
    corners = np.stack([np.stack([x1, y1], -1), np.stack([x2, y1], -1),
                        np.stack([x1, y2], -1), np.stack([x2, y2], -1)], axis=1)   # [N, 4, 2]
    t = affine_points(corners, m)
    return np.concatenate([t.min(axis=1), t.max(axis=1)], axis=1)


def hflip_image(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[:, ::-1])


def hflip_keypoints(keypoints: np.ndarray, width: float, flip_index: Sequence[int]) -> np.ndarray:
    """Mirror keypoints [N, K, 3+] of an image of ``width`` (x' = width - x) and swap left/right.
    Labelled points only (v > 0); unlabelled ones stay (0, 0). Extra columns (scores) follow."""
    kps = np.asarray(keypoints, dtype=np.float32).copy()
    labelled = kps[..., 2] > 0
    kps[..., 0] = np.where(labelled, width - kps[..., 0], 0.0)
    kps[..., 1] = np.where(labelled, kps[..., 1], 0.0)
    return kps[:, list(flip_index)]


def hflip_boxes_xyxy(boxes: np.ndarray, width: float) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float32).copy()
    b[:, [0, 2]] = width - b[:, [2, 0]]
    return b


# -------------------------------------------------------------------------------------- train


def choose_crop(rng: np.random.Generator, boxes_xywh: np.ndarray, num_keypoints: np.ndarray,
                image_size: tuple[int, int], scale_range: tuple[float, float] = (0.5, 1.5),
                flip_prob: float = 0.5) -> tuple[int, np.ndarray, float, bool]:
    """Draw (person index or -1, centre xy, scale, flip), in that RNG order.

    The person is uniform among those with >= 1 labelled keypoint; centre = its box centre.
    With no such person the centre is the image centre (and the index -1); the person draw is
    then skipped, the scale and flip draws are not.
    """
    cand = np.flatnonzero(np.asarray(num_keypoints) >= 1)
    if cand.size:
        person = int(cand[rng.integers(cand.size)])
        x, y, w, h = np.asarray(boxes_xywh, dtype=np.float64)[person]
        centre = np.array([x + w / 2.0, y + h / 2.0])
    else:
        person = -1
        hgt, wid = image_size
        centre = np.array([wid / 2.0, hgt / 2.0])
    scale = float(rng.uniform(scale_range[0], scale_range[1]))
    flip = bool(rng.random() < flip_prob)
    return person, centre, scale, flip


def train_transform(image: np.ndarray, keypoints: np.ndarray, boxes_xywh: np.ndarray,
                    areas: np.ndarray, rng: np.random.Generator, flip_index: Sequence[int],
                    output_size: int = 512, scale_range: tuple[float, float] = (0.5, 1.5),
                    flip_prob: float = 0.5, keep_empty: bool = False,
                    border_value: Sequence[int] = MEAN_COLOUR) -> dict:
    """Random-person crop + scale + flip (see the module docstring).

    Returns a dict: ``image`` uint8 [S, S, 3]; ``keypoints`` float32 [N, K, 3] in patch pixels;
    ``boxes`` float32 [N, 4] xyxy, clipped to the patch; ``areas`` float32 [N] = area·s²;
    ``box_areas`` float32 [N] = annotated (unclipped) box w·h·s²; ``matrix`` the 2x3
    continuous-coordinate affine; ``scale``, ``flip``, ``person`` (index into the inputs),
    ``kept`` (indices of the inputs that were kept). Persons with no labelled keypoint left in the
    patch are dropped unless ``keep_empty``.
    """
    kps = np.asarray(keypoints, dtype=np.float32)
    num_kp = (kps[..., 2] > 0).sum(axis=1) if kps.size else np.zeros(len(kps), np.int64)
    person, centre, scale, flip = choose_crop(rng, boxes_xywh, num_kp, image.shape[:2],
                                              scale_range, flip_prob)
    s = int(output_size)
    m = crop_matrix(centre, scale, s, flip)
    patch = warp_image(image, m, s, s, border_value)
    out_kps = affine_keypoints(kps, m, s, s, flip_index if flip else None)
    boxes = affine_boxes_xywh(boxes_xywh, m)
    box_areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    boxes = np.clip(boxes, 0.0, float(s)).astype(np.float32)
    out_areas = (np.asarray(areas, dtype=np.float64).reshape(-1) * scale ** 2).astype(np.float32)
    kept = np.arange(len(out_kps))
    if not keep_empty and len(out_kps):
        kept = np.flatnonzero((out_kps[..., 2] > 0).any(axis=1))
    return {
        "image": patch,
        "keypoints": out_kps[kept],
        "boxes": boxes[kept],
        "areas": out_areas[kept],
        "box_areas": box_areas[kept].astype(np.float32),
        "matrix": m,
        "scale": scale,
        "flip": flip,
        "person": person,
        "kept": kept,
    }


# --------------------------------------------------------------------------------------- test


def inference_scale(height: int, width: int, short_side: int, max_size: int | None = None
               ) -> tuple[float, int, int]:
    """(scale, new_h, new_w): short side -> ``short_side`` unless the long side would exceed
    ``max_size``; scale = min(S / short, max_size / long); sizes are rounded."""
    short, long = min(height, width), max(height, width)
    scale = short_side / short
    if max_size is not None and long * scale > max_size:
        scale = max_size / long
    return scale, max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def pad_to_multiple(image: np.ndarray, divisor: int | None,
                    value: Sequence[int] = MEAN_COLOUR) -> np.ndarray:
    """Pad an HxWxC image at the bottom/right so H and W are multiples of ``divisor``."""
    if not divisor or divisor <= 1:
        return image
    h, w = image.shape[:2]
    ph, pw = -h % divisor, -w % divisor
    if ph == 0 and pw == 0:
        return image
    return cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT,
                              value=tuple(float(v) for v in value))


def inference_transform(image: np.ndarray, short_side: int = 640, max_size: int | None = 1000,
                   size_divisor: int | None = 64, border_value: Sequence[int] = MEAN_COLOUR
                   ) -> dict:
    """Resize (one exact scale, bilinear) and pad bottom/right.

    Returns a dict: ``image`` uint8 [Hp, Wp, 3] (padded); ``scale`` (original = resized / scale);
    ``resized_size`` (h, w) before padding; ``orig_size`` (h, w).
    """
    h, w = image.shape[:2]
    scale, nh, nw = inference_scale(h, w, short_side, max_size)
    m = np.array([[scale, 0.0, 0.0], [0.0, scale, 0.0]])
    resized = warp_image(image, m, nw, nh, border_value)
    return {"image": pad_to_multiple(resized, size_divisor, border_value), "scale": scale,
            "resized_size": (nh, nw), "orig_size": (h, w)}


def to_original(points: np.ndarray, scale: float) -> np.ndarray:
    """Map predicted x, y (first two columns of the last axis) from the resized test image back
    to the original image; other columns (visibility, scores) are kept."""
    out = np.array(points, dtype=np.float32, copy=True)
    out[..., :2] /= scale
    return out


# ----------------------------------------------------------------------------------- tensors


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """RGB uint8 [H, W, 3] -> float32 [3, H, W], ImageNet-normalised."""
    arr = np.asarray(image, dtype=np.float32) * (1.0 / 255.0)
    arr = (arr - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
