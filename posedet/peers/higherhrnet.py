"""A HigherHRNet-style bottom-up peer (Cheng et al., 2020) on the harness's timm HRNet backbones.

Network (the HigherHRNet / mmpose ``AEHigherResolutionHead`` layout, written here from the paper
and mmpose's documented config, no code copied):

* timm HRNet (``features_only``, ``feature_location=''``: the raw branches); only the stride-4
  branch (W32: 32, W48: 48 channels) feeds the head, as in HigherHRNet;
* stage 1/4: a 1×1 conv → K heatmaps + K tag maps (one tag dimension per joint);
* deconvolution stage to 1/2: concat(branch features, the 2K stage-1 maps) → 4×4 transposed
  conv stride 2 (to the branch width) + BN + ReLU → 4 residual basic blocks → 1×1 conv → K
  heatmaps at 1/2 resolution (no tags at 1/2, like HigherHRNet's COCO config).

Inference: HigherHRNet's own single-scale test (``tools/valid.py`` with
``experiments/coco/higher_hrnet/w48_640_adam_lr1e-3.yaml`` and ``lib/config/default.py``),
without flip, re-implemented here from reading that code (nothing copied):

| setting | HigherHRNet w48_640 test config | this harness |
| --- | --- | --- |
| input size | ``INPUT_SIZE: 640``, ``SCALE_FACTOR: [1]``: short side ⌈640/64⌉·64, long side ⌈long·640/short / 64⌉·64 (``get_multi_scale_size``), no cap | the same (``input_size``; the row's short side: 640 for W48, 512 for W32 as in ``w32_512``), no ``max_size`` cap; the image is resized and padded at the bottom/right (HigherHRNet warps it centred: same tensor size) |
| flip test | ``FLIP_TEST: True`` | off (single pass; the brief's "without flip") |
| heatmaps | ``WITH_HEATMAPS: (True, True)``: stage 1 upsampled (bilinear) to stage 2, mean of both | the same (``aggregate``) |
| tags | ``WITH_AE: (True, False)``: stage 1's tags, upsampled to 1/2 | the same |
| projection | ``PROJECT2IMAGE: True``: heatmaps and tags bilinear to the input size before NMS | the same (``project``): NMS, grouping, adjust and refine at input resolution |
| NMS | ``NMS_KERNEL: 5``, ``NMS_PADDING: 2`` (max-pool) | the same |
| candidates | ``MAX_NUM_PEOPLE: 30``: top 30 per joint; matching against the first 30 persons | the same |
| detection threshold | ``DETECTION_THRESHOLD: 0.1`` | 0.1 |
| tag threshold | ``TAG_THRESHOLD: 1.0`` (default) | 1.0 |
| matching cost | ``USE_DETECTION_VAL: True``: round(‖Δtag‖)·100 − score | the same |
| assignment | Hungarian (``munkres``) | Hungarian (``scipy.optimize.linear_sum_assignment``) |
| joint order | nose, eyes, ears, shoulders, hips, elbows, wrists, knees, ankles (``Params.joint_order``) | the same for 17 joints (``JOINT_ORDER_COCO``) |
| too many people | ``IGNORE_TOO_MUCH: False`` | False |
| adjust | ``ADJUST: True``: ±0.25 px towards the larger neighbour (clamped at the border), +0.5 | the same |
| person score | mean joint score after adjust, before refine | the same |
| refine | ``REFINE: true``: per person, argmax of heatmap − round(‖tag − mean tag‖) for every joint, ±0.25 px, fills the missing ones | the same (all joints computed, vectorised over joints) |
| back to the image | ``get_final_preds`` (affine) | ``to_coco`` divides by the resize scale (not timed) |

Where this code differs in form, not in work: the maps go to NumPy once per image (HigherHRNet's
``adjust`` indexes the torch tensor per joint and ``refine`` converts the maps once per person);
a new person is not keyed by its tag value (HigherHRNet's dict would merge two persons with an
identical first tag, which real maps do not produce).

``build`` returns the network; ``aggregate`` + ``project`` + ``decode`` are pure functions of the
network's output; ``to_coco`` maps the result to COCO keypoint results; ``planted_maps`` makes
maps with known people (the bench's candidate feed).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HigherHRNet", "build", "input_size", "aggregate", "project", "decode", "to_coco",
           "planted_maps", "JOINT_ORDER_COCO"]

DEFAULTS = {"nms_kernel": 5, "max_num_people": 30, "detection_threshold": 0.1, "tag_threshold": 1.0,
            "use_detection_val": True, "ignore_too_much": False, "adjust": True, "refine": True}
# HigherHRNet's Params.joint_order (COCO, no centre joint): the order joints join the persons
JOINT_ORDER_COCO = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)


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




def input_size(h: int, w: int, size: int = 640) -> tuple[tuple[int, int], float]:
    """HigherHRNet's single-scale input (``get_multi_scale_size`` at scale 1): ``((H, W), scale)``
    — the short side becomes ⌈size/64⌉·64, the long side is scaled alike and rounded *up* to a
    multiple of 64 (no cap); ``scale`` = input pixels per image pixel."""
    short = int((size + 63) // 64 * 64)
    if w < h:
        return (int((short / w * h + 63) // 64 * 64), short), short / w
    return (short, int((short / h * w + 63) // 64 * 64)), short / h


def aggregate(stage1: torch.Tensor, stage2: torch.Tensor, num_keypoints: int):
    """(heatmaps [K, H/2, W/2], tags [K, H/2, W/2]) of image 0: stage-1 maps upsampled
    (bilinear) to the 1/2-resolution grid, heatmaps averaged over the two stages, tags from
    stage 1 (HigherHRNet's ``get_multi_stage_outputs``)."""
    k = num_keypoints
    size = stage2.shape[-2:]
    up = F.interpolate(stage1[:1], size=size, mode="bilinear", align_corners=False)[0]
    heat = (up[:k] + stage2[0, :k]) * 0.5
    return heat, up[k:2 * k]


def project(heat: torch.Tensor, tags: torch.Tensor, size: tuple[int, int]):
    """``PROJECT2IMAGE``: heatmaps and tags [K, h, w] → [K, H, W] (bilinear) at the input size."""
    size = (int(size[0]), int(size[1]))
    if tuple(heat.shape[-2:]) == size:
        return heat, tags
    both = F.interpolate(torch.stack([heat, tags]), size=size, mode="bilinear", align_corners=False)
    return both[0], both[1]


def _top_candidates(heat: torch.Tensor, tags: torch.Tensor, kernel: int, topk: int):
    """Max-pool NMS and the top ``topk`` per joint (on the maps' device): values [K, T], x [K, T],
    y [K, T], tag [K, T] as NumPy arrays."""
    k, h, w = heat.shape
    pooled = F.max_pool2d(heat[None], kernel, stride=1, padding=(kernel - 1) // 2)[0]
    heat = heat * (pooled == heat)
    val, idx = heat.reshape(k, -1).topk(min(topk, h * w), dim=1)
    tag = tags.reshape(k, -1).gather(1, idx)
    return (val.cpu().numpy(), (idx % w).cpu().numpy(), torch.div(idx, w, rounding_mode="floor").cpu().numpy(),
            tag.cpu().numpy())


def _group(val, xs, ys, tag, det_thr, tag_thr, use_det_val, ignore_too_much, max_people, joint_order=None):
    """Joint-by-joint grouping (``joint_order``; default: HigherHRNet's COCO order for 17 joints,
    else 0..K-1) with Hungarian matching on tag distance against the first ``max_people``
    persons. Returns [P, K, 4] (x, y, score, tag) per person."""
    from scipy.optimize import linear_sum_assignment

    k = val.shape[0]
    if joint_order is None:
        joint_order = JOINT_ORDER_COCO if k == len(JOINT_ORDER_COCO) else range(k)
    people: list[np.ndarray] = []          # each [K, 4]
    person_tags: list[list[float]] = []    # tags of the joints assigned so far

    def new_person(j, c):
        p = np.zeros((k, 4))
        p[j] = c
        people.append(p)
        person_tags.append([c[3]])

    for j in joint_order:
        sel = val[j] > det_thr
        if not sel.any():
            continue
        cand = np.stack([xs[j][sel], ys[j][sel], val[j][sel], tag[j][sel]], 1).astype(np.float64)
        if not people:
            for c in cand:
                new_person(j, c)
            continue
        npp = min(len(people), max_people)                                     # the first max_people persons
        if ignore_too_much and npp == max_people:
            continue
        means = np.array([np.mean(t) for t in person_tags[:npp]])               # [P]
        raw = np.abs(cand[:, 3:4] - means[None, :])                             # [C, P]
        cost = np.round(raw) * 100 - cand[:, 2:3] if use_det_val else raw.copy()
        nc = cost.shape[0]
        if nc > npp:                                                            # pad: new persons
            cost = np.concatenate([cost, np.full((nc, nc - npp), 1e10)], 1)
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols):
            if c < npp and raw[r, c] < tag_thr:
                people[c][j] = cand[r]
                person_tags[c].append(cand[r, 3])
            else:
                new_person(j, cand[r])
    return np.array(people).reshape(-1, k, 4) if people else np.zeros((0, k, 4))


def _quarter(hm: np.ndarray, x: int, y: int) -> tuple[float, float]:
    """±0.25 towards the larger neighbour in x and in y (neighbours clamped at the border)."""
    h, w = hm.shape
    dx = 0.25 if hm[y, min(x + 1, w - 1)] > hm[y, max(x - 1, 0)] else -0.25
    dy = 0.25 if hm[min(y + 1, h - 1), x] > hm[max(y - 1, 0), x] else -0.25
    return dx, dy


def _adjust(people: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """Every detected joint: a quarter pixel towards its larger neighbour, then the pixel centre."""
    k, h, w = heat.shape
    for p in people:
        for j in range(k):
            if p[j, 2] <= 0:
                continue
            x, y = int(p[j, 0]), int(p[j, 1])
            dx, dy = _quarter(heat[j], x, y)
            p[j, 0] += dx + 0.5
            p[j, 1] += dy + 0.5
    return people


def _refine(people: np.ndarray, heat: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """Per person: for every joint the location maximising heatmap − round(|tag − person's mean
    tag|) (+0.5, ±0.25); a missing joint takes it where its heatmap value there is > 0."""
    k, h, w = heat.shape
    flat = np.arange(k)
    for p in people:
        have = p[:, 2] > 0
        if not have.any():
            continue
        t = float(np.mean([tags[j, int(np.clip(p[j, 1], 0, h - 1)), int(np.clip(p[j, 0], 0, w - 1))]
                           for j in np.flatnonzero(have)]))
        score = heat - np.round(np.abs(tags - t))                                # [K, H, W], every joint
        ys, xs = np.divmod(score.reshape(k, -1).argmax(1), w)
        vals = heat[flat, ys, xs]
        for j in np.flatnonzero(~have & (vals > 0)):
            dx, dy = _quarter(heat[j], int(xs[j]), int(ys[j]))
            p[j, :3] = (xs[j] + 0.5 + dx, ys[j] + 0.5 + dy, vals[j])
    return people


def decode(heat: torch.Tensor, tags: torch.Tensor, scale: float = 1.0, **kw) -> dict:
    """Associative-embedding decode of one image (HigherHRNet's ``HeatmapParser.parse``).
    ``heat``/``tags`` [K, h, w] — at the input resolution after :func:`project` (HigherHRNet's
    test); ``scale`` = input pixels per map pixel (1 after ``project``). NMS and top-k run on
    the maps' device. Returns ``keypoints`` [P, K, 3] (x, y, score; input pixels), ``scores`` [P]
    (mean joint score after adjust, before refine), ``candidates`` (joint candidates above the
    detection threshold) and ``map_size`` [h, w] (where the grouping ran)."""
    o = dict(DEFAULTS, **kw)
    heat = heat.detach().float()
    tags = tags.detach().float()
    val, xs, ys, tg = _top_candidates(heat, tags, o["nms_kernel"], o["max_num_people"])
    people = _group(val, xs, ys, tg, o["detection_threshold"], o["tag_threshold"], o["use_detection_val"],
                    o["ignore_too_much"], o["max_num_people"], o.get("joint_order"))
    hm = heat.cpu().numpy()
    if o["adjust"] and len(people):
        people = _adjust(people, hm)
    scores = people[..., 2].mean(-1) if len(people) else np.zeros(0)
    if o["refine"] and len(people):
        people = _refine(people, hm, tags.cpu().numpy())
    kp = people[..., :3].copy()
    kp[..., :2] *= scale
    return {"keypoints": kp, "scores": scores, "candidates": int((val > o["detection_threshold"]).sum()),
            "map_size": [int(heat.shape[-2]), int(heat.shape[-1])]}


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
                 tag_gap: float = 2.0, exact: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmaps and tags [K, h, w] whose decode finds exactly the given people: a Gaussian peak
    (``peak``, σ in map pixels) at every joint of every person (``people_xy`` [P, K, 2] in map
    pixels; points outside are skipped) and tag value ``tag_gap``·p around person p's joints.
    ``exact``: the peak centred on the point itself rather than on its pixel (a peak centred on a
    pixel becomes a two-pixel plateau when upsampled ×2, i.e. two NMS survivors). For timing
    the grouping with a known candidate count on random-weight networks."""
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
            cx, cy = (x, y) if exact else (xi, yi)
            y0, y1, x0, x1 = max(0, yi - r), min(h, yi + r + 1), max(0, xi - r), min(w, xi + r + 1)
            g = peak * np.exp(-((xx[y0:y1, x0:x1] - cx) ** 2 + (yy[y0:y1, x0:x1] - cy) ** 2) / (2 * sigma ** 2))
            mine = g >= heat[j, y0:y1, x0:x1]          # the tag follows the strongest peak
            heat[j, y0:y1, x0:x1][mine] = g[mine]
            tags[j, y0:y1, x0:x1][mine] = tag_gap * p
    return torch.from_numpy(heat), torch.from_numpy(tags)
