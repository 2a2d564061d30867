"""One ``Runner`` per timed method: how it prepares an image, runs its network, post-processes
(decode + NMS / grouping / RoI heads), and how its candidate-dependent stage is fed a known
number of candidates when its weights are random.

Every runner exposes ``prepare(image) -> (input, scale)`` (resize to the short side, normalise,
pad: the method's own preprocessing), ``forward(input) -> raw`` and ``post(raw) -> result``; the
*network* figure is ``post(feed(forward(x)))`` and the *end-to-end* figure adds image-file
decoding and ``prepare``. ``use_scene(scene)`` sets the people whose candidates ``feed``
substitutes for the raw output where needed (random weights):

* PoseDet, random weights: the classification logits are −10 everywhere (score ≈ 0) except
  ``per_person`` locations per person on the level the coarse assignment gives that person
  (nearest grid points to its keypoint centroid), logit +2; their offsets put the keypoints on
  the person's keypoints plus N(0, (0.03 · person height)²) noise; refine residual 0. Decode
  and NMS then see people × ``per_person`` candidates (default 33: 30 people ≈ 1,000).
  Trained checkpoint of the same backbone: the real outputs (nothing is planted). A trained
  checkpoint of another backbone (a CPU stand-in): its decoded candidates on the same image
  replace this network's decoded candidates before NMS.
* HigherHRNet-style: the stage-1/stage-2 maps are replaced by maps with one Gaussian peak per
  joint per person and person-wise tags (``peers.higherhrnet.planted_maps``); its ``post`` is
  HigherHRNet's single-scale test (maps projected to the input resolution, then NMS, grouping,
  adjust, refine), its input HigherHRNet's (multiple of 64, no cap).
* Keypoint R-CNN: ``box_score_thresh`` 0 and ``box_detections_per_img`` = people, so its
  keypoint head runs on exactly that many boxes (reported).
* YOLO-pose: the raw output's confidences are 0 except ``per_person`` anchors per person
  (``peers.yolo_pose.planted_prediction``).
* Backbones: forward only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from posedet.skeletons import skeleton_for_num_keypoints

K = 17
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


def _resize(image: np.ndarray, short_side: int, max_size: int | None) -> tuple[np.ndarray, float]:
    from posedet.data.transforms import inference_scale
    import cv2

    h, w = image.shape[:2]
    scale, nh, nw = inference_scale(h, w, short_side, max_size)
    return cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR), scale


def _pad(arr: np.ndarray, divisor: int, value) -> np.ndarray:
    h, w = arr.shape[:2]
    ph, pw = -h % divisor, -w % divisor
    if ph == 0 and pw == 0:
        return arr
    out = np.empty((h + ph, w + pw, arr.shape[2]), arr.dtype)
    out[...] = value
    out[:h, :w] = arr
    return out


def _normalised(image: np.ndarray, divisor: int, device) -> torch.Tensor:
    arr = (image.astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD
    arr = _pad(arr, divisor, 0.0)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None].to(device)


@dataclass
class Runner:
    method: str
    backbone: str
    short_side: int
    max_size: int | None
    device: str = "cpu"
    amp: bool = False
    weights: str = "random"
    candidates_mode: str = "n/a"
    notes: list[str] = field(default_factory=list)

    # -- to override -------------------------------------------------------------------------
    def prepare(self, image: np.ndarray):
        raise NotImplementedError

    def forward(self, x):
        raise NotImplementedError

    def post(self, raw):
        return None

    def use_scene(self, scene, x, scale) -> None:
        """Set up the candidate feed for ``scene`` (input ``x`` prepared at ``scale``)."""

    def feed(self, raw):
        return raw

    def counts(self, result) -> dict:
        return {}

    # -- shared ------------------------------------------------------------------------------
    def autocast(self):
        return torch.autocast("cuda", dtype=torch.float16, enabled=self.amp and self.device.startswith("cuda"))

    def network(self, x):
        with torch.inference_mode(), self.autocast():
            return self.post(self.feed(self.forward(x)))

    def forward_only(self, x):
        with torch.inference_mode(), self.autocast():
            return self.forward(x)

    @property
    def dtype(self) -> str:
        return "fp16-autocast" if self.amp and self.device.startswith("cuda") else "fp32"


# ----------------------------------------------------------------------------------- PoseDet

def _assign_stride(kp: np.ndarray, strides: list[int]) -> int:
    """The coarse assignment's level (DESIGN.md): log2(stride) = ⌊(log2(w/4) + log2(h/4)) / 2⌋."""
    w = max(float(kp[:, 0].max() - kp[:, 0].min()), 1.0)
    h = max(float(kp[:, 1].max() - kp[:, 1].min()), 1.0)
    lvl = math.floor((math.log2(w / 4) + math.log2(h / 4)) / 2)
    lo, hi = int(math.log2(min(strides))), int(math.log2(max(strides)))
    return 2 ** min(max(lvl, lo), hi)


class PoseDetRunner(Runner):
    def __init__(self, backbone: str, short_side: int, max_size: int | None, device="cpu", amp=False,
                 checkpoint: str | None = None, per_person: int = 33, nms_thr: float = 0.2, seed: int = 0):
        super().__init__("PoseDet", backbone, short_side, max_size, device, amp)
        from posedet.model.detector import PoseDet

        self.per_person, self.nms_thr, self.seed = per_person, nms_thr, seed
        self.sigmas = skeleton_for_num_keypoints(K).sigmas
        self.standin = None
        model = None
        if checkpoint:
            from posedet.checkpoint import load_model_from_checkpoint

            trained = load_model_from_checkpoint(checkpoint, map_location="cpu").eval()
            if trained.backbone_name == backbone and trained.num_keypoints == K:
                model = trained
                self.weights = f"trained: {checkpoint}"
                self.candidates_mode = "real (trained checkpoint's outputs)"
            else:
                self.standin = trained.to(device)
                self.weights = (f"random (network); candidates from the trained {trained.backbone_name} "
                                f"stand-in {checkpoint}")
                self.candidates_mode = f"real candidates of the trained {trained.backbone_name} stand-in, fed to NMS"
        if model is None:
            model = PoseDet(backbone=backbone, num_keypoints=K, pretrained=False)
            if not self.standin:
                self.candidates_mode = (f"planted: {per_person} per person on the person's assigned level "
                                        "(random weights give none above the 0.05 threshold)")
        self.model = model.to(device).eval()
        self.divisor = self.model.size_divisor
        self._planted = None
        self._fixed_cands = None

    def prepare(self, image):
        resized, scale = _resize(image, self.short_side, self.max_size)
        return _normalised(resized, self.divisor, self.device), scale

    def forward(self, x):
        return self.model(x)

    def feed(self, raw):
        return self._planted if self._planted is not None else raw

    def post(self, raw):
        from posedet.decode import decode_candidates, postprocess

        cands = decode_candidates(raw, score_thr=0.05, topk_per_level=500, use_refine=True)
        if self._fixed_cands is not None:
            cands = self._fixed_cands
        self._last_candidates = int(cands[0]["scores"].numel())
        return postprocess(cands, nms="oks", nms_thr=self.nms_thr, sigmas=self.sigmas, max_dets=100,
                           min_area=32 ** 2)

    def counts(self, result) -> dict:
        return {"candidates_to_nms": getattr(self, "_last_candidates", None),
                "kept": int(result[0]["scores"].numel())}

    def use_scene(self, scene, x, scale) -> None:
        self._planted = self._fixed_cands = None
        if self.standin is not None:
            from posedet.decode import decode_candidates

            with torch.inference_mode():
                out = self.standin(x)
                self._fixed_cands = decode_candidates(out, score_thr=0.05, topk_per_level=500, use_refine=True)
            return
        if self.weights.startswith("trained"):
            return
        with torch.inference_mode():
            raw = self.model(x)
        self._planted = self.plant(raw, scene.keypoints * scale)

    def plant(self, raw: dict, people_xy: np.ndarray) -> dict:
        from posedet.grid import grid_points

        g = np.random.default_rng(self.seed)
        strides = [int(s) for s in raw["strides"]]
        cls = [torch.full_like(c, -10.0) for c in raw["cls"]]
        coarse = [torch.zeros_like(c) for c in raw["coarse"]]
        refine = None if raw.get("refine") is None else [torch.zeros_like(r) for r in raw["refine"]]
        for kp in people_xy:
            s = _assign_stride(kp, strides)
            lvl = strides.index(s)
            h, w = cls[lvl].shape[-2:]
            pts = grid_points(h, w, s).numpy()                                   # [HW, (x, y)]
            c = kp.mean(0)
            near = np.argsort(((pts - c) ** 2).sum(1), kind="stable")[: self.per_person]
            height = float(kp[:, 1].max() - kp[:, 1].min()) or 32.0
            for loc in near:
                i, j = divmod(int(loc), w)
                jit = kp + g.normal(0, 0.03 * height, kp.shape)
                off = (jit - pts[loc]) / s                                         # (x, y) in stride units
                coarse[lvl][0, 0::2, i, j] = torch.from_numpy(off[:, 1].astype(np.float32))   # dy
                coarse[lvl][0, 1::2, i, j] = torch.from_numpy(off[:, 0].astype(np.float32))   # dx
                cls[lvl][0, 0, i, j] = 2.0 + float(g.uniform(-0.5, 0.5))
        return {"strides": strides, "cls": cls, "coarse": coarse, "refine": refine, "heatmaps": None}

    def backbone_forward(self, x):
        with torch.inference_mode(), self.autocast():
            return self.model.neck(self.model.backbone(x))


# ----------------------------------------------------------------------------------- peers

class HigherHRNetRunner(Runner):
    """HigherHRNet's own single-scale test without flip (``peers.higherhrnet``'s docstring has the
    settings against the w48_640 config): input short side ``short_side`` rounded up to a
    multiple of 64, long side scaled alike and rounded up to a multiple of 64, no ``max_size``
    cap; ``post`` = aggregate the two stages, project heatmaps and tags to the input resolution,
    NMS (kernel 5), top 30 per joint, Hungarian grouping, adjust, refine. The row's
    ``forward_ms`` is the network, ``post_ms`` (network − forward) this post-processing."""

    def __init__(self, backbone: str, short_side: int, max_size: int | None = None, device="cpu", amp=False):
        # max_size is accepted for the table's uniform call and ignored: HigherHRNet has no cap
        super().__init__("HigherHRNet-style", backbone, short_side, None, device, amp)
        import scipy.optimize  # noqa: F401  (the grouping's Hungarian matching; the 'peers' extra)

        from posedet.peers import higherhrnet

        self.hh = higherhrnet
        self.model = higherhrnet.build(backbone, K).to(device)
        self.candidates_mode = ("planted heatmaps/tags: one peak per joint per person, person-wise tags "
                                "(random weights' maps give hundreds of spurious peaks); grouped at the input "
                                "resolution (PROJECT2IMAGE)")
        self._planted = None

    def prepare(self, image):
        import cv2

        h, w = image.shape[:2]
        (H, W), scale = self.hh.input_size(h, w, self.short_side)
        nh, nw = min(H, int(round(h * scale))), min(W, int(round(w * scale)))
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        arr = np.zeros((H, W, 3), np.float32)                      # padded with the mean (0 after normalising)
        arr[:nh, :nw] = (resized.astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None].to(self.device), scale

    def forward(self, x):
        return self.model(x)

    def feed(self, raw):
        return self._planted if self._planted is not None else raw

    def post(self, raw):
        s1, s2 = raw
        heat, tags = self.hh.aggregate(s1.float(), s2.float(), K)
        heat, tags = self.hh.project(heat, tags, (2 * s2.shape[-2], 2 * s2.shape[-1]))   # the input size
        return self.hh.decode(heat, tags, scale=1.0)

    def counts(self, result) -> dict:
        return {"joint_candidates": result["candidates"], "people_found": int(len(result["scores"])),
                "grouped_at": result["map_size"]}

    def use_scene(self, scene, x, scale) -> None:
        h, w = x.shape[-2:]
        xy = scene.keypoints * scale
        heat2, tags2 = self.hh.planted_maps(xy / 2.0, (h // 2, w // 2), exact=True)
        heat4, tags4 = self.hh.planted_maps(xy / 4.0, (h // 4, w // 4), exact=True)
        dev = self.device
        self._planted = (torch.cat([heat4, tags4])[None].to(dev), heat2[None].to(dev))


class KeypointRCNNRunner(Runner):
    def __init__(self, short_side: int, max_size: int | None, device="cpu", amp=False):
        super().__init__("Keypoint R-CNN", "resnet50_fpn", short_side, max_size, device, amp)
        from posedet.peers import keypoint_rcnn

        self.kr = keypoint_rcnn
        self.model = keypoint_rcnn.build(short_side, max_size or 100000, detections=10).to(device)
        self.candidates_mode = ("box_score_thresh 0, box_detections_per_img = people: the keypoint head "
                                "runs on that many boxes; RPN keeps 1000 proposals (pre- and post-NMS, test)")

    def prepare(self, image):
        resized, scale = _resize(image, self.short_side, self.max_size)
        x = torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1))).float().div_(255.0)
        return x.to(self.device), scale

    def forward(self, x):
        return self.model([x])              # transform, backbone, RPN, RoI heads, postprocess

    def post(self, raw):
        return raw

    def counts(self, result) -> dict:
        return {"keypoint_head_boxes": self.kr.keypoint_boxes(result), "rpn_post_nms_top_n": 1000}

    def use_scene(self, scene, x, scale) -> None:
        self.kr.set_detections(self.model, max(1, scene.people))

    def backbone_forward(self, x):
        with torch.inference_mode(), self.autocast():
            images, _ = self.model.transform([x])
            return self.model.backbone(images.tensors)


class YoloPoseRunner(Runner):
    def __init__(self, scale: str, short_side: int, max_size: int | None, device="cpu", amp=False, per_person: int = 8):
        super().__init__(f"YOLO11{scale}-pose", f"yolo11{scale}", short_side, max_size, device, amp)
        from posedet.peers import yolo_pose

        self.yp = yolo_pose
        self.model = yolo_pose.build(scale, K).to(device)
        self.per_person = per_person
        self.candidates_mode = f"planted: {per_person} confident anchors per person in the raw output"
        self._planted = None

    def prepare(self, image):
        resized, scale = _resize(image, self.short_side, self.max_size)
        arr = _pad(resized, 32, 114)
        x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float().div_(255.0)[None]
        return x.to(self.device), scale

    def forward(self, x):
        return self.model(x)

    def feed(self, raw):
        return (self._planted,) if self._planted is not None else raw

    def post(self, raw):
        return self.yp.decode(raw)

    def counts(self, result) -> dict:
        return {"candidates_to_nms": None if self._planted is None else int((self._planted[0, 4] > 0.25).sum()),
                "kept": int(result[0].shape[0])}

    def use_scene(self, scene, x, scale) -> None:
        with torch.inference_mode():
            raw = self.model(x)
        p = raw[0] if isinstance(raw, (list, tuple)) else raw
        self._planted = self.yp.planted_prediction(p.float(), torch.from_numpy(scene.keypoints * scale),
                                                   self.per_person)


class BackboneRunner(Runner):
    """A bare backbone (the floor): ``forward`` only."""

    def __init__(self, name: str, short_side: int, max_size: int | None, device="cpu", amp=False, krcnn=None):
        super().__init__("backbone", name, short_side, max_size, device, amp)
        self.krcnn = krcnn
        if krcnn is None:
            from posedet.peers import backbone

            self.model = backbone.build(name).to(device)
        self.candidates_mode = "n/a (no post-processing)"

    def prepare(self, image):
        resized, scale = _resize(image, self.short_side, self.max_size)
        if self.krcnn is not None:
            return self.krcnn.prepare(image)
        return _normalised(resized, 64, self.device), scale

    def forward(self, x):
        if self.krcnn is not None:
            images, _ = self.krcnn.model.transform([x])
            return self.krcnn.model.backbone(images.tensors)
        return self.model(x)


class NeckRunner(Runner):
    """PoseDet's backbone + neck alone (shares the PoseDet runner's model): the floor the
    network figure is compared with."""

    def __init__(self, posedet: PoseDetRunner):
        super().__init__("PoseDet backbone+neck", posedet.backbone, posedet.short_side, posedet.max_size,
                         posedet.device, posedet.amp, weights=posedet.weights)
        self.pd = posedet
        self.candidates_mode = "n/a (no head, no post-processing)"

    def prepare(self, image):
        return self.pd.prepare(image)

    def forward(self, x):
        return self.pd.model.neck(self.pd.model.backbone(x))
