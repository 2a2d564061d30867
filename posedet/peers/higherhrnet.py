"""A HigherHRNet-style bottom-up peer (Cheng et al., 2020) on the harness's timm HRNet backbones.

Network (the HigherHRNet / mmpose ``AEHigherResolutionHead`` layout, written here from the paper
and mmpose's documented config, no code copied):

* timm HRNet (``features_only``, ``feature_location=''``: the raw branches); only the stride-4
  branch (W32: 32, W48: 48 channels) feeds the head, as in HigherHRNet;
* stage 1/4: a 1×1 conv → K heatmaps + K tag maps (one tag dimension per joint);
* deconvolution stage to 1/2: concat(branch features, the 2K stage-1 maps) → 4×4 transposed
  conv stride 2 (to the branch width) + BN + ReLU → 4 residual basic blocks → 1×1 conv → K
  heatmaps at 1/2 resolution (no tags at 1/2, like HigherHRNet's COCO config).

Inference (single scale, no flip; the associative-embedding decode of HigherHRNet / mmpose):

1. aggregate: the 1/4 heatmaps and tags are upsampled (bilinear) to 1/2 resolution; heatmaps
   = mean of the two resolutions; tags from 1/4;
2. max-pool NMS (kernel 5, HigherHRNet's default at 512–640 input) keeps local maxima;
3. top-30 candidates per joint (``max_num_people``);
4. grouping, joint by joint in the dataset's order: candidates with score >
   ``detection_threshold`` (0.1) are matched to the persons found so far by the distance between
   the candidate's tag and the person's mean tag, cost = round(distance) · 100 − score (the
   "use_detection_val" cost), Hungarian matching (``scipy.optimize.linear_sum_assignment``);
   a pair farther apart than ``tag_threshold`` (1.0) starts a new person;
5. adjust: every joint moves a quarter pixel towards its larger neighbour;
6. refine (HigherHRNet's test default): each person's missing joints are filled at the
   location maximising heatmap − round(|tag − person tag|);
7. person score = mean joint score; coordinates scaled to the input image.

``build`` returns the network; ``decode`` is a pure function of (heatmaps, tags); ``to_coco``
maps the result to COCO keypoint results.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HigherHRNet", "build", "aggregate", "decode", "to_coco", "planted_maps"]

DEFAULTS = {"nms_kernel": 5, "max_num_people": 30, "detection_threshold": 0.1, "tag_threshold": 1.0,
            "use_detection_val": True, "ignore_too_much": False, "adjust": True, "refine": True}


class _BasicBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class HigherHRNet(nn.Module):
    """HigherHRNet-style network: ``forward(images) -> (stage1 [B, 2K, H/4, W/4], stage2 [B, K, H/2, W/2])``."""

    def __init__(self, backbone: str = "hrnet_w32", num_keypoints: int = 17, num_basic_blocks: int = 4):
        super().__init__()
        import timm

        self.backbone_name, self.num_keypoints = backbone, int(num_keypoints)
        self.backbone = timm.create_model(backbone, pretrained=False, features_only=True, out_indices=(1,),
                                          feature_location="")
        c = int(self.backbone.feature_info.channels()[0])
        k = self.num_keypoints
        self.final1 = nn.Conv2d(c, 2 * k, 1)
        self.deconv = nn.Sequential(nn.ConvTranspose2d(c + 2 * k, c, 4, stride=2, padding=1, bias=False),
                                    nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                    *[_BasicBlock(c) for _ in range(num_basic_blocks)])
        self.final2 = nn.Conv2d(c, k, 1)

    @property
    def size_divisor(self) -> int:
        return 32

    def forward(self, images: torch.Tensor):
        x = self.backbone(images)[0]                                   # stride 4
        s1 = self.final1(x)
        s2 = self.final2(self.deconv(torch.cat([x, s1], 1)))
        return s1, s2


def build(backbone: str = "hrnet_w32", num_keypoints: int = 17) -> HigherHRNet:
    """Random weights (the speed does not depend on them)."""
    return HigherHRNet(backbone, num_keypoints).eval()


def aggregate(stage1: torch.Tensor, stage2: torch.Tensor, num_keypoints: int):
    """(heatmaps [K, H/2, W/2], tags [K, H/2, W/2]) of image 0: stage-1 maps upsampled to the
    1/2-resolution grid, heatmaps averaged over the two resolutions."""
    k = num_keypoints
    size = stage2.shape[-2:]
    up = F.interpolate(stage1[:1], size=size, mode="bilinear", align_corners=False)[0]
    heat = (up[:k] + stage2[0, :k]) * 0.5
    return heat, up[k:2 * k]


def _top_candidates(heat: torch.Tensor, tags: torch.Tensor, kernel: int, topk: int):
    """Max-pool NMS and the top ``topk`` per joint: values [K, T], x [K, T], y [K, T], tag [K, T]."""
    k, h, w = heat.shape
    pooled = F.max_pool2d(heat[None], kernel, stride=1, padding=(kernel - 1) // 2)[0]
    heat = heat * (pooled == heat)
    val, idx = heat.view(k, -1).topk(min(topk, h * w), dim=1)
    tag = tags.view(k, -1).gather(1, idx)
    return val.numpy(), (idx % w).numpy(), (idx // w).numpy(), tag.numpy()


def _group(val, xs, ys, tag, det_thr, tag_thr, use_det_val, ignore_too_much, max_people):
    """Greedy joint-by-joint grouping with Hungarian matching on tag distance. Returns
    [P, K, 4] (x, y, score, tag) per person."""
    from scipy.optimize import linear_sum_assignment

    k = val.shape[0]
    people: list[np.ndarray] = []          # each [K, 4]
    person_tags: list[list[float]] = []    # tags of the joints assigned so far
    for j in range(k):
        sel = val[j] > det_thr
        if not sel.any():
            continue
        cand = np.stack([xs[j][sel], ys[j][sel], val[j][sel], tag[j][sel]], 1).astype(np.float64)
        if not people:
            for c in cand:
                p = np.zeros((k, 4))
                p[j] = c
                people.append(p)
                person_tags.append([c[3]])
            continue
        if ignore_too_much and len(people) >= max_people:
            continue
        means = np.array([np.mean(t) for t in person_tags])                    # [P]
        diff = np.abs(cand[:, 3:4] - means[None, :])                            # [C, P]
        raw = diff.copy()
        if use_det_val:
            diff = np.round(diff) * 100 - cand[:, 2:3]
        nc, npp = diff.shape
        if nc > npp:                                                            # pad: new persons
            diff = np.concatenate([diff, np.full((nc, nc - npp), 1e10)], 1)
        rows, cols = linear_sum_assignment(diff)
        for r, c in zip(rows, cols):
            if r < nc and c < npp and raw[r, c] < tag_thr:
                people[c][j] = cand[r]
                person_tags[c].append(cand[r, 3])
            else:
                p = np.zeros((k, 4))
                p[j] = cand[r]
                people.append(p)
                person_tags.append([cand[r, 3]])
    return np.array(people).reshape(-1, k, 4) if people else np.zeros((0, k, 4))


def _adjust(people: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """Quarter-pixel shift of every detected joint towards its larger neighbour."""
    k, h, w = heat.shape
    for p in people:
        for j in range(k):
            if p[j, 2] <= 0:
                continue
            x, y = int(p[j, 0]), int(p[j, 1])
            hm = heat[j]
            if 0 < x < w - 1:
                p[j, 0] += 0.25 if hm[y, x + 1] > hm[y, x - 1] else -0.25
            if 0 < y < h - 1:
                p[j, 1] += 0.25 if hm[y + 1, x] > hm[y - 1, x] else -0.25
            p[j, :2] += 0.5
    return people


def _refine(people: np.ndarray, heat: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """Fill each person's missing joints at argmax(heatmap − round(|tag − person tag|))."""
    k, h, w = heat.shape
    for p in people:
        have = p[:, 2] > 0
        if not have.any():
            continue
        tag_mean = []
        for j in np.flatnonzero(have):
            x, y = int(np.clip(p[j, 0], 0, w - 1)), int(np.clip(p[j, 1], 0, h - 1))
            tag_mean.append(tags[j, y, x])
        t = float(np.mean(tag_mean))
        for j in np.flatnonzero(~have):
            score = heat[j] - np.round(np.abs(tags[j] - t))
            idx = int(score.argmax())
            y, x = divmod(idx, w)
            p[j] = (x + 0.5, y + 0.5, heat[j, y, x], tags[j, y, x])
    return people


def decode(heat: torch.Tensor, tags: torch.Tensor, scale: float, **kw) -> dict:
    """Associative-embedding decode of one image. ``heat``/``tags`` [K, h, w] at 1/2 input
    resolution; ``scale`` = input pixels per map pixel (2). Returns ``keypoints`` [P, K, 3]
    (x, y, score; input pixels), ``scores`` [P], and ``candidates`` (joint candidates above the
    detection threshold)."""
    o = dict(DEFAULTS, **kw)
    heat = heat.detach().float().cpu()
    tags = tags.detach().float().cpu()
    val, xs, ys, tg = _top_candidates(heat, tags, o["nms_kernel"], o["max_num_people"])
    people = _group(val, xs, ys, tg, o["detection_threshold"], o["tag_threshold"], o["use_detection_val"],
                    o["ignore_too_much"], o["max_num_people"])
    hm = heat.numpy()
    if o["adjust"] and len(people):
        people = _adjust(people, hm)
    if o["refine"] and len(people):
        people = _refine(people, hm, tags.numpy())
    kp = people[..., :3].copy()
    kp[..., :2] *= scale
    scores = people[..., 2].mean(-1) if len(people) else np.zeros(0)
    return {"keypoints": kp, "scores": scores, "candidates": int((val > o["detection_threshold"]).sum())}


def to_coco(result: dict, image_id: int, scale: float = 1.0) -> list[dict]:
    """COCO keypoint results; original = input / ``scale``."""
    out = []
    for kp, s in zip(result["keypoints"], result["scores"]):
        k = kp.copy()
        k[:, :2] /= scale
        out.append({"image_id": int(image_id), "category_id": 1, "keypoints": k.reshape(-1).tolist(),
                    "score": float(s)})
    return out


def planted_maps(people_xy: np.ndarray, size: tuple[int, int], sigma: float = 1.0, peak: float = 0.9,
                 tag_gap: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmaps and tags [K, h, w] whose decode finds exactly the given people: a Gaussian peak
    (``peak``, σ in map pixels) at every joint of every person (``people_xy`` [P, K, 2] in map
    pixels; points outside are skipped) and tag value ``tag_gap``·p around person p's joints.
    For timing the grouping with a known candidate count on random-weight networks."""
    p_, k = people_xy.shape[:2]
    h, w = size
    heat = np.zeros((k, h, w), np.float32)
    tags = np.zeros((k, h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    r = int(np.ceil(3 * sigma))
    for p in range(p_):
        for j in range(k):
            x, y = people_xy[p, j]
            if not (0 <= x < w and 0 <= y < h):
                continue
            xi, yi = int(x), int(y)
            y0, y1, x0, x1 = max(0, yi - r), min(h, yi + r + 1), max(0, xi - r), min(w, xi + r + 1)
            g = peak * np.exp(-((xx[y0:y1, x0:x1] - xi) ** 2 + (yy[y0:y1, x0:x1] - yi) ** 2) / (2 * sigma ** 2))
            mine = g >= heat[j, y0:y1, x0:x1]          # the tag follows the strongest peak
            heat[j, y0:y1, x0:x1][mine] = g[mine]
            tags[j, y0:y1, x0:x1][mine] = tag_gap * p
    return torch.from_numpy(heat), torch.from_numpy(tags)
