"""`posedet pretrain`: a harness-made pretrained backbone (the CPU preset's stand-in for ImageNet).

    posedet pretrain --backbone mobilenetv3_small_050 --layout crowdpose --num-images 2000 \\
        --size 256 --seed 7 --pose-source crowdpose_val.json --iterations 400 [--budget K] --out DIR

Nothing can be downloaded on the project's machines, so the ImageNet start the paper uses is not
available. This command pre-trains the backbone once on a *pretext task* over a *separate*
synthetic split (its own generator seed, never the seeds of the train / val / test splits):
**person segmentation** — for every pixel, does it belong to a person (the generator's label map,
people only; distractors and background are 0). The task teaches "what a person looks like"
without teaching joints, so the ablation of intermediate supervision (keypoint heatmaps) is not
pre-empted: no keypoint is used anywhere here.

Network: the backbone's stride-8/16/32 maps → a light FPN (lateral 1×1 + top-down sum, 64
channels) → 3×3 conv + ReLU + 1×1 conv → one logit per stride-8 cell; target: the fraction of the
cell's 8×8 pixels that are person (soft labels), binary cross-entropy. Adam, horizontal flips,
one-cycle lr over the run. ``--budget K`` (the workflow's ``--config budget=K``) runs
round(K × iterations) steps (the one-cycle schedule stretches with it).
Only the backbone's weights are kept (the decoder is thrown away); PoseDet loads them with
``model.init_backbone=DIR/backbone.pt``.

Outputs: ``DIR/backbone.pt`` (``{"format", "backbone", "state_dict"}``) and ``DIR/manifest.json``
(the command, seeds, data, schedule, wall time, images/s, the final training loss and the person IoU
on a held-out part of the pretext split, and the sha256 of backbone.pt).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from posedet.atomic import atomic_write_bytes, write_json_atomic

__all__ = ["SegmentationPretext", "make_pretext_data", "pretrain", "load_backbone_weights",
           "add_arguments", "main", "FORMAT"]

FORMAT = "posedet-pretrained-backbone/1"


class SegmentationPretext(nn.Module):
    """Backbone + a light FPN decoder → person-mask logits at stride 8."""

    def __init__(self, backbone: str, channels: int = 64):
        super().__init__()
        from posedet.model.backbones import TimmBackbone

        self.backbone = TimmBackbone(backbone)
        # the maps at strides ≥ 8 (HRNet's stride-4 branch also gets gradient through the
        # fusion layers inside the backbone; the decoder reads 8/16/32 as PoseDet's levels)
        self.use = [i for i, st in enumerate(self.backbone.strides) if st >= 8]
        if not self.use or self.backbone.strides[self.use[0]] != 8:
            raise ValueError(f"pretrain: {backbone} strides {self.backbone.strides}: no stride-8 map")
        self.lateral = nn.ModuleList(nn.Conv2d(self.backbone.channels[i], channels, 1) for i in self.use)
        self.head = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, 1, 1))

    def _maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = self.backbone(x)
        return [out[i] for i in self.use]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self._maps(x)
        y = self.lateral[-1](feats[-1])
        for lat, f in zip(reversed(self.lateral[:-1]), reversed(feats[:-1])):
            y = lat(f) + F.interpolate(y, size=f.shape[-2:], mode="nearest")
        return self.head(y)


def make_pretext_data(num_images: int, size: int, seed: int, layout: str, pose_source: str,
                      stride: int = 8, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (uint8 [N, H, W, 3]) and soft person masks at ``stride`` (float [N, 1, H/s, W/s])
    of ``num_images`` generated images (``seed`` must differ from every training / eval split's)."""
    from tqdm import tqdm

    from posedet.data.pose_prior import PosePrior
    from posedet.data.synth import generate_image

    prior = PosePrior.from_crowdpose_json(pose_source)
    imgs, masks = [], []
    for i in tqdm(range(num_images), desc="pretext data", unit="img", disable=not progress, mininterval=2.0):
        s = generate_image(prior, i, seed=seed, layout=layout, size=(size, size))
        imgs.append(torch.from_numpy(np.ascontiguousarray(s.image)))
        person = torch.from_numpy((s.label > 0).astype(np.float32))[None, None]
        masks.append(F.avg_pool2d(person, stride))
    return torch.stack(imgs), torch.cat(masks)


def _normalise(u8: torch.Tensor) -> torch.Tensor:
    from posedet.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    x = u8.float().div_(255.0)
    x = (x - torch.as_tensor(IMAGENET_MEAN)) / torch.as_tensor(IMAGENET_STD)
    return x.permute(0, 3, 1, 2).contiguous()


def _iou(logits: torch.Tensor, target: torch.Tensor) -> float:
    p, t = logits.sigmoid() > 0.5, target > 0.5
    union = (p | t).sum().item()
    return (p & t).sum().item() / union if union else 1.0


def pretrain(backbone: str, out: str | Path, *, layout: str = "crowdpose", num_images: int = 2000,
             size: int = 256, seed: int = 7, pose_source: str, iterations: int = 400,
             batch_size: int = 16, lr: float = 2e-3, holdout: int = 64, train_seed: int = 0,
             command: str = "", budget: float = 1.0) -> dict:
    if not budget > 0:
        raise ValueError(f"--budget must be > 0, got {budget}")
    base_iterations = iterations
    iterations = max(1, int(round(iterations * budget)))
    t0 = time.monotonic()
    torch.manual_seed(train_seed)
    imgs, masks = make_pretext_data(num_images + holdout, size, seed, layout, pose_source)
    gen_s = time.monotonic() - t0
    tr_x, tr_y, ho_x, ho_y = imgs[holdout:], masks[holdout:], imgs[:holdout], masks[:holdout]
    model = SegmentationPretext(backbone)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=iterations, pct_start=0.1)
    g = torch.Generator().manual_seed(train_seed)
    from tqdm import tqdm

    model.train()
    t1 = time.monotonic()
    losses = []
    for step in tqdm(range(iterations), desc="pretrain", unit="step", mininterval=2.0):
        idx = torch.randint(0, tr_x.shape[0], (batch_size,), generator=g)
        x, y = _normalise(tr_x[idx]), tr_y[idx]
        flip = torch.rand(batch_size, generator=g) < 0.5
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    train_s = time.monotonic() - t1
    model.eval()
    with torch.no_grad():
        ho_logits = torch.cat([model(_normalise(ho_x[i:i + 16])) for i in range(0, holdout, 16)])
    out = Path(out)
    payload = {"format": FORMAT, "backbone": backbone, "state_dict": model.backbone.state_dict()}
    atomic_write_bytes(out / "backbone.pt", lambda f: torch.save(payload, f))
    sha = hashlib.sha256((out / "backbone.pt").read_bytes()).hexdigest()
    manifest = {
        "task": "person segmentation (generator label map > 0), soft targets at stride 8, BCE",
        "command": command, "backbone": backbone, "layout": layout, "size": size,
        "data_seed": seed, "num_images": num_images, "holdout_images": holdout, "train_seed": train_seed,
        "iterations": iterations, "budget": budget, "iterations_at_budget_1": base_iterations,
        "batch_size": batch_size, "lr": lr, "schedule": "Adam, one-cycle",
        "images_seen": iterations * batch_size, "data_generation_s": round(gen_s, 1),
        "train_s": round(train_s, 1), "wall_s": round(time.monotonic() - t0, 1),
        "images_per_s": round(iterations * batch_size / max(train_s, 1e-9), 2),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "final_loss_mean_last_20": float(np.mean(losses[-20:])),
        "holdout_person_iou": round(_iou(ho_logits, ho_y), 4),
        "holdout_bce": float(F.binary_cross_entropy_with_logits(ho_logits, ho_y)),
        "sha256": sha,
    }
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def load_backbone_weights(module: nn.Module, path: str | Path, backbone: str) -> str:
    """Load ``posedet pretrain``'s backbone.pt into ``module`` (a TimmBackbone), strictly;
    returns the file's sha256."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model.init_backbone: no such file {path} (make it with `posedet pretrain`)")
    data = path.read_bytes()
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError(f"model.init_backbone: {path} is not a `posedet pretrain` backbone file")
    if obj["backbone"] != backbone:
        raise ValueError(f"model.init_backbone: {path} holds a {obj['backbone']!r} backbone, "
                         f"the model is {backbone!r}")
    module.load_state_dict(obj["state_dict"], strict=True)
    return hashlib.sha256(data).hexdigest()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", required=True)
    p.add_argument("--layout", default="crowdpose", choices=["crowdpose", "coco"])
    p.add_argument("--num-images", type=int, default=2000)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seed", type=int, default=7, help="generator seed of the pretext split (must differ "
                   "from every train/val/test split's seed)")
    p.add_argument("--pose-source", required=True)
    p.add_argument("--iterations", type=int, default=400, help="steps at budget 1")
    p.add_argument("--budget", type=float, default=1.0,
                   help="scale the run: round(budget × iterations) steps (default 1)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--train-seed", type=int, default=0)
    p.add_argument("--out", required=True)


def main(args) -> int:
    try:
        m = pretrain(args.backbone, args.out, layout=args.layout, num_images=args.num_images,
                     size=args.size, seed=args.seed, pose_source=args.pose_source,
                     iterations=args.iterations, batch_size=args.batch_size, lr=args.lr,
                     train_seed=args.train_seed, command="posedet " + " ".join(sys.argv[1:]),
                     budget=args.budget)
    except (ValueError, FileNotFoundError) as e:
        print(f"posedet pretrain: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: m[k] for k in ("holdout_person_iou", "train_s", "images_per_s", "sha256")}),
          file=sys.stderr)
    return 0
