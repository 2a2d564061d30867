"""A bare backbone, the floor under every method that uses it: timm ``features_only`` with the
outputs PoseDet's neck would read (``posedet.model.backbones.BACKBONES``), random weights."""
from __future__ import annotations

__all__ = ["build"]


def build(name: str):
    from posedet.model.backbones import build_backbone

    return build_backbone(name, pretrained=False).eval()
