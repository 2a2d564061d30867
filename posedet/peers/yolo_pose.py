"""Ultralytics YOLO-pose (YOLO11n/s-pose), the model a user would most likely pick instead today.

Optional: needs the ``peers`` extra (``pip install 'posedet[peers]'``, i.e. ``ultralytics``).
Built from the model YAML that ships inside the ultralytics package (``yolo11n-pose.yaml``,
scale letter in the name), one class (person), K = 17, random weights: nothing is downloaded.
Ultralytics is kept offline: ``YOLO_OFFLINE=1`` and its settings ``sync=False`` are set before
the import (and its settings file goes to a temporary ``YOLO_CONFIG_DIR`` unless one is set).

``decode`` is ultralytics' own ``non_max_suppression`` (confidence 0.25, IoU 0.7 — its predict
defaults — at most 300 detections) on the raw [B, 4 + 1 + 3K, anchors] output.
"""
from __future__ import annotations

import os
import tempfile

import torch

__all__ = ["available", "unavailable_reason", "build", "decode", "to_coco", "planted_prediction"]

_REASON: str | None = None


def _import():
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(tempfile.gettempdir(), "posedet-ultralytics"))
    from ultralytics.utils import SETTINGS

    SETTINGS.update({"sync": False})
    from ultralytics.nn.tasks import PoseModel
    from ultralytics.utils.nms import non_max_suppression

    return PoseModel, non_max_suppression


def available() -> bool:
    global _REASON
    try:
        _import()
        return True
    except Exception as e:                      # ImportError, or a broken install
        _REASON = f"ultralytics is not usable ({type(e).__name__}: {e}); install the 'peers' extra: " \
                  f"pip install 'posedet[peers]'"
        return False


def unavailable_reason() -> str | None:
    return _REASON


def build(scale: str = "n", num_keypoints: int = 17):
    PoseModel, _ = _import()
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        m = PoseModel(f"yolo11{scale}-pose.yaml", nc=1, data_kpt_shape=(num_keypoints, 3), verbose=False)
    return m.eval()


def decode(pred, conf: float = 0.25, iou: float = 0.7, max_det: int = 300):
    _, nms = _import()
    p = pred[0] if isinstance(pred, (list, tuple)) else pred
    return nms(p, conf, iou, nc=1, max_det=max_det)


def planted_prediction(pred: torch.Tensor, people_xy: torch.Tensor, per_person: int = 8,
                       conf: float = 0.9, seed: int = 0) -> torch.Tensor:
    """A copy of the raw output [1, 5 + 3K, A] with every confidence 0 except ``per_person``
    anchors per person (``people_xy`` [P, K, 2] input pixels): box = the person's keypoint box
    (jittered), confidence ``conf``, keypoints = the person's. NMS then sees P · per_person
    candidates (timing NMS with a known candidate count on random weights)."""
    g = torch.Generator().manual_seed(seed)
    device = pred.device
    out = pred.detach().float().cpu().clone()
    people_xy = torch.as_tensor(people_xy).float().cpu()
    out[:, 4] = 0.0
    p_, k = people_xy.shape[:2]
    a = out.shape[-1]
    n = min(a, p_ * per_person)
    anchors = torch.randperm(a, generator=g)[:n]
    who = torch.arange(n) % max(1, p_)
    base = people_xy[who].float()
    size = (base.amax(1) - base.amin(1)).clamp_min(4.0)                             # [n, 2]
    xy = base + torch.randn(n, k, 2, generator=g) * (0.01 * size[:, None])          # same person: IoU > 0.9
    lo, hi = xy.amin(1), xy.amax(1)
    box = torch.cat([(lo + hi) / 2, (hi - lo).clamp_min(4.0)], 1)                   # xywh
    out[0, :4, anchors] = box.t()
    out[0, 4, anchors] = conf
    kpt = torch.cat([xy, torch.ones(n, k, 1)], -1).reshape(n, 3 * k)
    out[0, 5:5 + 3 * k, anchors] = kpt.t()
    return out.to(device)


def to_coco(det: torch.Tensor, image_id: int, scale: float = 1.0, num_keypoints: int = 17) -> list[dict]:
    det = det.detach().float().cpu()
    kp = det[:, 6:].reshape(-1, num_keypoints, 3).clone()
    kp[..., :2] /= scale
    return [{"image_id": int(image_id), "category_id": 1, "keypoints": k.reshape(-1).tolist(), "score": float(s)}
            for k, s in zip(kp, det[:, 4])]
