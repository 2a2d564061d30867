"""The assembled PoseDet detector: timm backbone → neck → shared head.

``PoseDet(...)(images)`` returns a dict:

* ``strides``  list[int] — the pyramid strides (DLA-34 / FPN backbones: 8, 16, 32, 64;
  HRNet: 8, 16, 32);
* ``coarse``   list of [B, 2K, H_l, W_l] — coarse offsets (dy, dx) per keypoint, stride units;
* ``refine``   list of [B, 2K, H_l, W_l] — refinement residuals to add to the *detached* coarse
  offsets, or None when ``refine=False``;
* ``cls``      list of [B, 1, H_l, W_l] — classification logits;
* ``heatmaps`` list of [B, K, H_l, W_l] — intermediate-supervision logits, only in training mode
  with ``intermediate_supervision=True``, else None.

The input's H and W must be multiples of the largest stride (``model.size_divisor``), so that
feature location (i, j) of level s is exactly image pixel (j·s, i·s) (``posedet/grid.py``);
inference pads the image to that multiple.
"""
from __future__ import annotations

import inspect

import torch
from torch import nn

from posedet.model.backbones import TimmBackbone, backbone_spec
from posedet.model.head import PoseDetHead
from posedet.model.necks import FPN, HRFPN

__all__ = ["PoseDet", "build_model", "MODEL_KEYS"]

# keys of a config's ``model`` section that describe data, not the network
IGNORED_KEYS = ("skeleton",)


class PoseDet(nn.Module):
    def __init__(self, backbone: str, num_keypoints: int, pretrained: bool = False, pretrained_file=None,
                 refine: bool = True, intermediate_supervision: bool = True, neck_channels: int | None = None,
                 head_channels: int | None = None, embed_channels: int | None = None, gn_groups: int = 32,
                 embedding_save_memory: bool = False, num_levels: int | None = None,
                 channels_last: bool = False, init_backbone=None, cache_dir=None):
        """backbone: a name of ``posedet.model.backbones.BACKBONES`` (or any timm model with
        ``features_only``); num_keypoints: K; pretrained / pretrained_file / cache_dir: ImageNet
        backbone weights (``backbones.py``); refine: refinement branch; intermediate_supervision:
        training-time heatmap branch; neck_channels: neck width (None = the backbone's default,
        DLA-34 128, HRNet 256); head_channels: head tower width (None = neck_channels);
        embed_channels: pose-embedding output width (None = head_channels); gn_groups: GroupNorm
        groups in the towers (reduced to a divisor of the width when needed);
        embedding_save_memory: recompute embedding samples in the backward (less memory);
        num_levels: pyramid levels (None = the paper's: FPN 4 at strides 8-64, HRFPN 3 at 8-32);
        init_backbone: a ``posedet pretrain`` backbone.pt to start the backbone from (the CPU
        preset's harness-made stand-in for ImageNet weights; None = as ``pretrained`` says);
        channels_last: convert the network and its input to channels_last (a CPU speed switch,
        same numbers within float tolerance)."""
        super().__init__()
        if int(num_keypoints) < 1:
            raise ValueError(f"num_keypoints must be ≥ 1, got {num_keypoints!r}")
        spec = backbone_spec(backbone)
        self.backbone_name, self.num_keypoints = backbone, int(num_keypoints)
        self.backbone = TimmBackbone(backbone, pretrained=pretrained, pretrained_file=pretrained_file,
                                     cache_dir=cache_dir)
        self.init_backbone_sha256 = None
        if init_backbone is not None:
            from posedet.pretrain import load_backbone_weights

            self.init_backbone_sha256 = load_backbone_weights(self.backbone, init_backbone, backbone)
        neck_channels = int(neck_channels or spec["neck_channels"])
        head_channels = int(head_channels or neck_channels)
        embed_channels = int(embed_channels or head_channels)
        if spec["neck"] == "hrfpn":
            levels = 3 if num_levels is None else int(num_levels)
            self.neck = HRFPN(self.backbone.channels, self.backbone.strides, neck_channels, num_levels=levels)
        else:
            n_in = len(self.backbone.channels)
            levels = n_in + 1 if num_levels is None else int(num_levels)
            if levels < n_in:
                raise ValueError(f"num_levels {levels}: the FPN over {self.backbone_name} has at least "
                                 f"{n_in} levels (strides {self.backbone.strides})")
            self.neck = FPN(self.backbone.channels, self.backbone.strides, neck_channels,
                            extra_levels=levels - n_in)
        self.head = PoseDetHead(neck_channels, self.num_keypoints, feat_channels=head_channels,
                                embed_channels=embed_channels, gn_groups=gn_groups, refine=refine,
                                intermediate_supervision=intermediate_supervision,
                                embedding_save_memory=embedding_save_memory)
        self.strides = list(self.neck.strides)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        self._signature = {"backbone": backbone, "num_keypoints": self.num_keypoints, "refine": bool(refine),
                           "intermediate_supervision": bool(intermediate_supervision),
                           "neck": spec["neck"], "neck_channels": neck_channels, "head_channels": head_channels,
                           "embed_channels": embed_channels, "gn_groups": int(gn_groups),
                           "strides": list(self.strides)}

    @property
    def size_divisor(self) -> int:
        """Input H and W must be multiples of this (the largest stride)."""
        return max(self.strides)

    @property
    def refine(self) -> bool:
        return self.head.refine

    @property
    def intermediate_supervision(self) -> bool:
        return self.head.intermediate_supervision

    def model_signature(self) -> dict:
        """What defines the architecture (store in checkpoints; compare before loading)."""
        return dict(self._signature, strides=list(self._signature["strides"]))

    def forward(self, images: torch.Tensor) -> dict:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"PoseDet expects images [B, 3, H, W], got {tuple(images.shape)}")
        h, w = images.shape[-2:]
        d = self.size_divisor
        if h % d or w % d:
            raise ValueError(f"PoseDet ({self.backbone_name}): input {h}×{w} is not a multiple of the "
                             f"largest stride {d}; pad the image (bottom/right) to a multiple of {d}")
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        feats = self.neck(self.backbone(images))
        out = self.head(feats)
        out["strides"] = list(self.strides)
        return out


MODEL_KEYS = tuple(p for p in inspect.signature(PoseDet.__init__).parameters if p != "self")


def build_model(cfg: dict) -> PoseDet:
    """``PoseDet(**cfg)`` from a plain dict with the constructor's keys (a config's ``model``
    section; ``skeleton`` is ignored, the keypoint count comes from ``num_keypoints``)."""
    cfg = {k: v for k, v in dict(cfg).items() if k not in IGNORED_KEYS}
    unknown = sorted(set(cfg) - set(MODEL_KEYS))
    if unknown:
        raise ValueError(f"build_model: unknown model key(s) {unknown}; allowed: {list(MODEL_KEYS)}")
    for key in ("backbone", "num_keypoints"):
        if cfg.get(key) is None:
            raise ValueError(f"build_model: model.{key} is required")
    return PoseDet(**cfg)
