"""The PoseDet head, shared across pyramid levels (DESIGN.md, "Head" … "Intermediate supervision").

Per level, from the neck map x:

* coarse ("bypass"): 3 × (3×3 conv + GN + ReLU) → 1×1 conv → 2K offsets (dy, dx per keypoint,
  stride units, ``posedet/grid.py``).
* the embeddings sample at the coarse keypoints with offsets 0.9·coarse.detach() + 0.1·coarse
  (``gradient_mul``: the coarse branch gets one tenth of the embeddings' offset gradient).
* refine: 2 × (conv + GN + ReLU) → pose embedding → ReLU → 1×1 conv → 2K *residual*; the refined
  pose is coarse.detach() + residual (added by decoding and the losses, not here).
* classification: 2 × (conv + GN + ReLU) → pose embedding → ReLU → 1×1 conv → 1 logit, bias
  initialised for prior probability 0.01.
* intermediate supervision (training only): 3×3 conv + ReLU + 1×1 conv → K heatmap logits,
  bias −2.19 (prior ≈ 0.1, as CenterNet).

Convolutions are initialised N(0, 0.01²) with zero bias (mmdetection's ``normal_init``); the
towers' convs have no bias (GroupNorm follows).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from posedet.model.embedding import PoseEmbedding

__all__ = ["PoseDetHead", "group_count"]


def group_count(channels: int, groups: int) -> int:
    """The largest divisor of ``channels`` that is ≤ ``groups`` (GroupNorm needs one)."""
    g = max(1, min(groups, channels))
    while channels % g:
        g -= 1
    return g


def _tower(in_channels: int, channels: int, depth: int, gn_groups: int) -> nn.Sequential:
    layers = []
    for i in range(depth):
        layers += [nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1, bias=False),
                   nn.GroupNorm(group_count(channels, gn_groups), channels),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class PoseDetHead(nn.Module):
    """``forward(feats: list of [B, in_channels, H_l, W_l]) -> dict`` with lists per level:
    ``coarse`` [B, 2K, H, W], ``refine`` [B, 2K, H, W] residuals (None if ``refine=False``),
    ``cls`` [B, 1, H, W] logits, ``heatmaps`` [B, K, H, W] logits (None unless training with
    ``intermediate_supervision``)."""

    def __init__(self, in_channels: int, num_keypoints: int, feat_channels: int = 256,
                 embed_channels: int | None = None, coarse_convs: int = 3, refine_convs: int = 2,
                 cls_convs: int = 2, gn_groups: int = 32, refine: bool = True,
                 intermediate_supervision: bool = True, gradient_mul: float = 0.1,
                 prior_prob: float = 0.01, heatmap_bias: float = -2.19, embedding_save_memory: bool = False):
        super().__init__()
        k = num_keypoints
        embed_channels = embed_channels or feat_channels
        self.num_keypoints, self.refine, self.intermediate_supervision = k, refine, intermediate_supervision
        self.gradient_mul = gradient_mul
        self.coarse_tower = _tower(in_channels, feat_channels, coarse_convs, gn_groups)
        self.coarse_out = nn.Conv2d(feat_channels, 2 * k, 1)
        self.cls_tower = _tower(in_channels, feat_channels, cls_convs, gn_groups)
        self.cls_embed = PoseEmbedding(feat_channels, embed_channels, k, bias=False)
        self.cls_out = nn.Conv2d(embed_channels, 1, 1)
        if refine:
            self.refine_tower = _tower(in_channels, feat_channels, refine_convs, gn_groups)
            self.refine_embed = PoseEmbedding(feat_channels, embed_channels, k, bias=False)
            self.refine_out = nn.Conv2d(embed_channels, 2 * k, 1)
        if intermediate_supervision:
            self.heatmap = nn.Sequential(nn.Conv2d(in_channels, feat_channels, 3, padding=1), nn.ReLU(inplace=True),
                                         nn.Conv2d(feat_channels, k, 1))
        for emb in self._embeddings():
            emb.save_memory = embedding_save_memory
        self._init_weights(prior_prob, heatmap_bias)

    def _embeddings(self):
        return [m for m in self.modules() if isinstance(m, PoseEmbedding)]

    def _init_weights(self, prior_prob: float, heatmap_bias: float) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.GroupNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, PoseEmbedding):
                m.reset_parameters(0.01)
        nn.init.constant_(self.cls_out.bias, -math.log((1 - prior_prob) / prior_prob))
        if self.intermediate_supervision:
            nn.init.constant_(self.heatmap[-1].bias, heatmap_bias)

    def forward_level(self, x: torch.Tensor) -> dict:
        coarse = self.coarse_out(self.coarse_tower(x))
        g = self.gradient_mul
        offsets = (1 - g) * coarse.detach() + g * coarse           # gradient multiplier g
        cls = self.cls_out(torch.relu(self.cls_embed(self.cls_tower(x), offsets)))
        out = {"coarse": coarse, "cls": cls, "refine": None, "heatmaps": None}
        if self.refine:
            out["refine"] = self.refine_out(torch.relu(self.refine_embed(self.refine_tower(x), offsets)))
        if self.intermediate_supervision and self.training:
            out["heatmaps"] = self.heatmap(x)
        return out

    def forward(self, feats: list[torch.Tensor]) -> dict:
        levels = [self.forward_level(x) for x in feats]
        res = {}
        for key in ("coarse", "refine", "cls", "heatmaps"):
            vals = [lv[key] for lv in levels]
            res[key] = None if vals[0] is None else vals
        return res
