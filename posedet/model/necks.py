"""Necks: the feature pyramid the head runs on.

* :class:`FPN` (DLA-34 and stride-8/16/32 backbones): 1×1 lateral convs, top-down nearest
  upsampling + sum, a 3×3 conv per level, plus ``extra_levels`` 3×3 stride-2 convs on the top
  output (P6 at stride 64). mmdetection's FPN with ``add_extra_convs='on_output'``, no norm,
  no activation, Xavier-uniform init.
* :class:`HRFPN` (HRNet): upsample the four branch outputs (bilinear) to the stride-4 branch,
  concatenate, 1×1 conv to ``out_channels``; level i is a 2^i average pool of that map followed by
  a 3×3 stride-2 conv (strides 8/16/32). mmdetection's HRFPN with ``stride=2``, no norm.

Both take the backbone's list of maps (finest first) and return a list (finest first).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FPN", "HRFPN"]


def _xavier(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class FPN(nn.Module):
    """in_channels per input level (strides s, 2s, 4s, …) → out_channels at every level, plus
    ``extra_levels`` stride-2 levels on top. ``strides`` lists the output strides."""

    def __init__(self, in_channels: list[int], in_strides: list[int], out_channels: int = 128,
                 extra_levels: int = 1):
        super().__init__()
        if len(in_channels) != len(in_strides):
            raise ValueError("FPN: in_channels and in_strides must have the same length")
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.output = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels)
        self.extra = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1)
                                   for _ in range(extra_levels))
        self.strides = list(in_strides) + [in_strides[-1] * 2 ** (i + 1) for i in range(extra_levels)]
        self.out_channels = out_channels
        _xavier(self)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        lat = [conv(f) for conv, f in zip(self.lateral, feats)]
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[-2:], mode="nearest")
        outs = [conv(x) for conv, x in zip(self.output, lat)]
        for conv in self.extra:
            outs.append(conv(outs[-1]))
        return outs


class HRFPN(nn.Module):
    """HRNet branches (strides 4, 8, 16, 32) → ``num_levels`` maps at strides 8, 16, 32, …"""

    def __init__(self, in_channels: list[int], in_strides: list[int], out_channels: int = 256,
                 num_levels: int = 3):
        super().__init__()
        if len(in_channels) != len(in_strides):
            raise ValueError("HRFPN: in_channels and in_strides must have the same length")
        self.in_strides = list(in_strides)
        self.reduction = nn.Conv2d(sum(in_channels), out_channels, 1)
        self.convs = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1)
                                   for _ in range(num_levels))
        self.strides = [in_strides[0] * 2 ** (i + 1) for i in range(num_levels)]
        self.out_channels = out_channels
        _xavier(self)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        size = feats[0].shape[-2:]
        ups = [feats[0]] + [F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats[1:]]
        fused = self.reduction(torch.cat(ups, dim=1))
        outs = []
        for i, conv in enumerate(self.convs):
            x = fused if i == 0 else F.avg_pool2d(fused, kernel_size=2 ** i, stride=2 ** i)
            outs.append(conv(x))
        return outs
