"""torchvision Keypoint R-CNN (ResNet-50-FPN), the top-down-in-one-network peer.

``build(min_size, max_size, detections=...)``: ``keypointrcnn_resnet50_fpn(weights=None,
weights_backbone=None)`` (no download; random weights) with its transform's ``min_size`` /
``max_size`` set to the common input, ``box_score_thresh`` 0 and ``box_detections_per_img``
the number of boxes the keypoint head should see. Its cost has two parts: the image-level
backbone + FPN + RPN (test-time RPN keeps ``rpn_pre_nms_top_n_test`` = 1000 proposals per level
before and ``rpn_post_nms_top_n_test`` = 1000 after NMS; the box head runs on those 1000), and the
keypoint head (RoIAlign 14×14 → 8 convs → deconv → 56×56 heatmaps per box), which scales with
the boxes it gets: at most ``box_detections_per_img`` after per-class NMS 0.5. With random
weights and a score threshold of 0, that is exactly ``detections`` boxes whenever the RPN's
proposals leave that many after NMS (``set_detections`` changes it between sweep points;
``keypoint_boxes(outputs)`` reports the count actually used).
"""
from __future__ import annotations

import torch

__all__ = ["build", "set_detections", "to_coco", "keypoint_boxes"]


def build(min_size: int = 640, max_size: int = 1000, detections: int = 100, num_keypoints: int = 17):
    from torchvision.models.detection import keypointrcnn_resnet50_fpn

    m = keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=2,
                                  num_keypoints=num_keypoints, min_size=min_size, max_size=max_size,
                                  box_score_thresh=0.0, box_detections_per_img=int(detections))
    return m.eval()


def set_detections(model, detections: int) -> None:
    """Boxes the keypoint head sees (``box_detections_per_img``)."""
    model.roi_heads.detections_per_img = int(detections)


def keypoint_boxes(outputs) -> int:
    return int(outputs[0]["boxes"].shape[0])


def to_coco(output: dict, image_id: int, scale: float = 1.0) -> list[dict]:
    kp = output["keypoints"].detach().float().cpu().clone()
    kp[..., :2] /= scale
    kp[..., 2] = 1.0
    return [{"image_id": int(image_id), "category_id": 1, "keypoints": k.reshape(-1).tolist(), "score": float(s)}
            for k, s in zip(kp, output["scores"].detach().float().cpu())]
