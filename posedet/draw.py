"""Drawing of poses on images and contact sheets (data-set previews, qualitative figures).

Images are RGB ``uint8`` arrays ``[H, W, 3]``.  Keypoints are ``[N, K, 3]``: x, y and a third
value that is either a COCO visibility flag (0 not labelled, 1 labelled but occluded,
2 visible) or a prediction confidence.  With flags, visible points are filled dots and
occluded ones hollow rings; with confidences, points above ``kpt_threshold`` are filled.

cv2 does the rasterising; the small amount of glue (colours, layout of the sheet) is here
because no plotting library draws COCO skeletons onto arrays directly.
"""
from __future__ import annotations

import colorsys
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from posedet.skeletons import Skeleton

_SHIFT = 4
_F = 1 << _SHIFT


def person_colors(n: int, offset: float = 0.0) -> list[tuple[int, int, int]]:
    """``n`` well-separated saturated RGB colours (golden-ratio hue steps)."""
    out = []
    for i in range(n):
        h = (offset + i * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
        out.append((int(r * 255), int(g * 255), int(b * 255)))
    return out


def _is_flags(c: np.ndarray) -> bool:
    return c.size == 0 or bool(np.all(np.isin(c, (0.0, 1.0, 2.0))))


def _p(x: float, y: float) -> tuple[int, int]:
    return int(round(x * _F)), int(round(y * _F))


def draw_poses(
    image: np.ndarray,
    keypoints: np.ndarray,
    skeleton: Skeleton,
    scores: Sequence[float] | np.ndarray | None = None,
    *,
    boxes: np.ndarray | None = None,
    colors: Sequence[tuple[int, int, int]] | None = None,
    flags: bool | None = None,
    kpt_threshold: float = 0.0,
    radius: float | None = None,
    thickness: int | None = None,
) -> np.ndarray:
    """Draw N poses onto a copy of ``image`` and return it.

    keypoints: ``[N, K, 3]`` (or ``[K, 3]`` for one person) in the image's pixel coordinates.
    scores: optional per-person scores, written next to the person.
    boxes: optional ``[N, 4]`` COCO boxes (x, y, w, h), drawn thin.
    flags: whether column 3 holds visibility flags (auto-detected when None: all values
    in {0, 1, 2}).  Flags: v=2 filled dot, v=1 hollow ring, v=0 skipped.  Confidences:
    points with c > kpt_threshold drawn filled.  Limbs join two drawn points, one colour
    per person.
    """
    img = np.ascontiguousarray(image, dtype=np.uint8).copy()
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.size == 0:
        return img
    if kp.ndim != 3 or kp.shape[1:] != (skeleton.num_keypoints, 3):
        raise ValueError(f"keypoints shape {kp.shape} does not match skeleton {skeleton.name!r} "
                         f"([N, {skeleton.num_keypoints}, 3])")
    n = len(kp)
    if flags is None:
        flags = _is_flags(kp[..., 2])
    colors = list(colors) if colors is not None else person_colors(n)
    if len(colors) < n:
        colors = colors + person_colors(n - len(colors), offset=0.37)
    h, w = img.shape[:2]
    size = min(h, w)
    if radius is None:
        radius = max(1.5, size / 160.0)
    if thickness is None:
        thickness = max(1, int(round(size / 256.0)))
    for i in range(n):
        col = tuple(int(c) for c in colors[i])
        c = kp[i, :, 2]
        drawn = c > 0 if flags else c > kpt_threshold
        if boxes is not None:
            x, y, bw, bh = (float(t) for t in boxes[i])
            cv2.rectangle(img, _p(x, y), _p(x + bw, y + bh), col, 1, cv2.LINE_AA, _SHIFT)
        for a, b in skeleton.limbs:
            if drawn[a] and drawn[b]:
                cv2.line(img, _p(*kp[i, a, :2]), _p(*kp[i, b, :2]), col, thickness, cv2.LINE_AA, _SHIFT)
        for k in np.flatnonzero(drawn):
            ctr = _p(*kp[i, k, :2])
            r = int(round(radius * _F))
            if flags and c[k] < 2:
                # occluded: hollow ring (dark outline keeps it readable on any background)
                cv2.circle(img, ctr, r + _F, (0, 0, 0), 1, cv2.LINE_AA, _SHIFT)
                cv2.circle(img, ctr, r, col, max(1, thickness), cv2.LINE_AA, _SHIFT)
            else:
                cv2.circle(img, ctr, r + _F // 2, (0, 0, 0), -1, cv2.LINE_AA, _SHIFT)
                cv2.circle(img, ctr, r, col, -1, cv2.LINE_AA, _SHIFT)
        if scores is not None:
            pts = kp[i, drawn, :2]
            if len(pts):
                x0, y0 = pts[:, 0].min(), pts[:, 1].min()
                _text(img, f"{float(scores[i]):.2f}", int(x0), max(8, int(y0) - 2), col)
    return img


def _text(img: np.ndarray, s: str, x: int, y: int, color: tuple[int, int, int], scale: float = 0.35) -> None:
    cv2.putText(img, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def annotations_to_arrays(anns: Sequence[Mapping], num_keypoints: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """COCO annotation dicts -> (keypoints [N, K, 3], boxes [N, 4], scores [N] or None)."""
    kp = np.zeros((len(anns), num_keypoints, 3))
    boxes = np.zeros((len(anns), 4))
    scores = []
    for i, a in enumerate(anns):
        k = np.asarray(a.get("keypoints", []), dtype=np.float64)
        if k.size != 3 * num_keypoints:
            raise ValueError(f"annotation id={a.get('id')}: {k.size // 3} keypoints, expected {num_keypoints}")
        kp[i] = k.reshape(num_keypoints, 3)
        if "bbox" in a:
            boxes[i] = a["bbox"]
        if "score" in a:
            scores.append(float(a["score"]))
    return kp, boxes, (np.asarray(scores) if len(scores) == len(anns) and anns else None)


def contact_sheet(
    images: Sequence[np.ndarray],
    annotations_per_image: Sequence[Sequence[Mapping]],
    skeleton: Skeleton,
    ncols: int = 4,
    *,
    cell_size: int | None = None,
    titles: Sequence[str] | None = None,
    draw_boxes: bool = False,
    pad: int = 4,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Grid of images with their poses drawn; returns an RGB ``uint8`` array.

    annotations_per_image[i] is a list of COCO annotation dicts (``keypoints`` flat
    ``[x, y, v] * K``; optional ``bbox`` and ``score``) for images[i].  Each image is
    resized to fit a ``cell_size`` square (default: the largest image side, at least 320 px)
    before drawing, so skeletons stay crisp.
    """
    if len(images) != len(annotations_per_image):
        raise ValueError(f"{len(images)} images but {len(annotations_per_image)} annotation lists")
    if not images:
        return np.full((2 * pad, 2 * pad, 3), background, np.uint8)
    if cell_size is None:
        cell_size = max(320, max(max(im.shape[:2]) for im in images))
    ncols = max(1, min(ncols, len(images)))
    nrows = (len(images) + ncols - 1) // ncols
    sheet = np.full((nrows * (cell_size + pad) + pad, ncols * (cell_size + pad) + pad, 3), background, np.uint8)
    for idx, (im, anns) in enumerate(zip(images, annotations_per_image)):
        h, w = im.shape[:2]
        f = cell_size / max(h, w)
        cell = cv2.resize(im, (max(1, round(w * f)), max(1, round(h * f))),
                          interpolation=cv2.INTER_LINEAR if f > 1 else cv2.INTER_AREA)
        kp, boxes, scores = annotations_to_arrays(anns, skeleton.num_keypoints)
        kp[..., :2] = (kp[..., :2] + 0.5) * f - 0.5
        boxes = boxes * f
        cell = draw_poses(cell, kp, skeleton, scores, boxes=boxes if draw_boxes else None)
        if titles is not None:
            _text(cell, titles[idx], 3, 12, (255, 255, 255), 0.4)
        r, c = divmod(idx, ncols)
        y0, x0 = pad + r * (cell_size + pad), pad + c * (cell_size + pad)
        sheet[y0:y0 + cell.shape[0], x0:x0 + cell.shape[1]] = cell
    return sheet
