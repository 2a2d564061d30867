"""`posedet predict`: run a trained PoseDet on an annotated image set, write COCO results.

    posedet predict --checkpoint RUN/final.pt --ann ANN.json [--images DIR] --out RESULTS.json \\
        [--tta] [--coarse-only] [--config VARIANT.yaml] [--set infer.nms=iou ...] [--device auto|cpu|cuda]

Settings: the ``infer`` section of the checkpoint's config, replaced by the one of ``--config``
when given, then ``--set`` overrides, then ``--tta`` / ``--coarse-only``. ``--config`` and
``--set model.*`` describe the model the caller expects: a checkpoint of another backbone (or
another head layout) is an error naming both; so is a checkpoint whose keypoint count differs
from the annotation file's.

Single scale: short side ``infer.short_side``, long side ≤ ``infer.max_size``, padded bottom/right
to a multiple of the model's largest stride. TTA (``--tta``): every short side of
``infer.tta_scales`` (long side capped at ``max_size · scale / short_side``), each also mirrored
when ``infer.flip``; every view's candidates are mapped back to the original image and merged,
then one NMS. The mirrored view is the *resized, unpadded* image mirrored (padding stays at the
right), so its predictions un-mirror with that view's own resized width, x = w_resized − x'
(the authors' code used the original width at every scale, wrong whenever scale ≠ 1), and
left/right keypoints swap back through ``skeleton.flip_index``.

Output: one JSON list in the COCO keypoint results format (``image_id``, ``category_id`` 1,
``keypoints`` [x, y, 1]·K in original-image pixels, ``score``), at the path the caller names.
Unreadable images are skipped with a warning; a run in which *no* image could be read (a wrong
``--images`` folder) is an error: exit 2, nothing written (an empty result would score AP 0 as if
measured).

Device: ``--device auto`` (the default: CUDA when there is one, else the CPU), ``cpu`` or ``cuda``
(``posedet.devices.resolve_device``; ``cuda`` without CUDA: exit 2 before anything is loaded). The
results file is the bare COCO list the evaluators read, so the device used (with the GPU's name)
is recorded in the job's log: the first line ``posedet predict: device ...`` on stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from posedet import checkpoint as ckpt_io
from posedet.config import Config, InferConfig, config_from_dict, config_to_dict, load_config, resolve_nms_thr


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a posedet training checkpoint (final.pt / last.pt)")
    p.add_argument("--ann", required=True, help="COCO-format keypoint annotations of the images to run on")
    p.add_argument("--images", default=None, help="image folder (default: images/ beside the annotation "
                   "file if it exists, else the annotation file's folder)")
    p.add_argument("--out", required=True, help="results JSON to write (COCO results format)")
    p.add_argument("--tta", action="store_true", help="multi-scale + flip test-time augmentation")
    p.add_argument("--coarse-only", action="store_true", help="output the coarse poses (no refinement)")
    p.add_argument("--config", default=None, help="variant YAML: the expected model and the infer settings")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set infer.nms=iou (repeatable)")
    p.add_argument("--device", default=None,
                   help="auto | cpu | cuda | cuda:N (default auto: cuda if available, else cpu)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers for image decoding")


def main(args) -> int:
    from posedet.devices import DeviceError, describe_device, resolve_device

    try:
        dev = resolve_device(args.device)
    except DeviceError as e:              # before the checkpoint and the data are read
        print(f"posedet predict: {e}", file=sys.stderr)
        return 2
    print(f"posedet predict: device {describe_device(dev)}, torch {torch.__version__}", file=sys.stderr)
    try:
        ckpt = ckpt_io.load_checkpoint(args.checkpoint, map_location="cpu")
        cfg = resolve_config(ckpt, args.checkpoint, args.config, args.overrides,
                             tta=args.tta, coarse_only=args.coarse_only)
        from posedet.data.reader import load_coco_keypoints
        index = load_coco_keypoints(args.ann, args.images)
        model, skeleton = model_from_checkpoint(ckpt, args.checkpoint, cfg, index.skeleton, args.ann)
    except ValueError as e:               # config, checkpoint and data errors
        print(f"posedet predict: {e}", file=sys.stderr)
        return 2
    model = model.to(dev).eval()
    try:
        results, skipped = predict_index(model, index, cfg.infer, skeleton, dev,
                                         use_refine=cfg.model.refine and not cfg.infer.coarse_only,
                                         workers=args.workers)
    except NoImagesRead as e:
        print(f"posedet predict: {e}; nothing written", file=sys.stderr)
        return 2
    if skipped:
        print(f"posedet predict: {len(skipped)} unreadable image(s) skipped, ids "
              f"{skipped[:10]}{' ...' if len(skipped) > 10 else ''}", file=sys.stderr)
    out = Path(args.out)
    ckpt_io.atomic_write_bytes(out, lambda f: f.write(json.dumps(results).encode()))
    print(f"posedet predict: {len(results)} poses on {len(index) - len(skipped)} images on {dev} -> {out}",
          file=sys.stderr)
    return 0


# ------------------------------------------------------------------------- configuration


def resolve_config(ckpt: dict, ckpt_path: str, config: str | None, overrides: Sequence[str],
                   tta: bool = False, coarse_only: bool = False) -> Config:
    """The config to predict with (see the module docstring); the model section must agree with
    the checkpoint's."""
    trained = config_from_dict(ckpt["config"])
    base = config_to_dict(trained) if config is None else config_to_dict(load_config(config))
    cfg = load_config(base, list(overrides))
    want, have = config_to_dict(cfg.model), config_to_dict(trained.model)
    if want["backbone"] != have["backbone"]:
        raise ckpt_io.CheckpointError(
            f"{ckpt_path}: checkpoint backbone {have['backbone']!r}, but {want['backbone']!r} was "
            f"requested ({config or '--set model.backbone'})")
    for key in ("refine", "intermediate_supervision", "neck_channels", "head_channels",
                "embed_channels", "gn_groups"):
        if want[key] != have[key]:
            raise ckpt_io.CheckpointError(
                f"{ckpt_path}: checkpoint has model.{key} = {have[key]!r}, but {want[key]!r} "
                f"was requested ({config or '--set'})")
    cfg.model = trained.model             # pretrained flags etc. are irrelevant at inference
    if tta:
        cfg.infer.tta = True
    if coarse_only:
        cfg.infer.coarse_only = True
    return cfg


def model_from_checkpoint(ckpt: dict, ckpt_path: str, cfg: Config, skeleton, ann: str):
    """Build and load the checkpoint's model; check its keypoint count against ``skeleton``
    (the annotation file's) and its signature against the stored one."""
    k_ckpt = len(ckpt["skeleton"]["keypoints"]) if ckpt.get("skeleton") else None
    if k_ckpt is not None and k_ckpt != skeleton.num_keypoints:
        raise ckpt_io.CheckpointError(
            f"{ckpt_path}: checkpoint has {k_ckpt} keypoints (skeleton "
            f"{ckpt['skeleton']['name']!r}), but {ann} has {skeleton.num_keypoints} "
            f"(skeleton {skeleton.name!r})")
    model = ckpt_io.model_from_checkpoint(ckpt, ckpt_path)
    return model, skeleton


# ------------------------------------------------------------------------------ geometry


def hflip_view(image: torch.Tensor, width: int) -> torch.Tensor:
    """Mirror the resized, unpadded part ``[..., :width]`` of a bottom/right padded image; the
    padding stays at the right."""
    out = image.clone()
    out[..., :width] = image[..., :width].flip(-1)
    return out


def unflip_keypoints(keypoints: torch.Tensor, width: float, flip_index: Sequence[int]) -> torch.Tensor:
    """Predictions on a mirrored view of width ``width`` (the view's resized, unpadded width) →
    the unmirrored view: x = width − x' (continuous pixel coordinates, transforms.py) and
    keypoint k of the mirrored person is keypoint ``flip_index[k]`` of the real one.
    ``keypoints`` [N, K, ≥2]; an involution."""
    out = keypoints.clone()
    out[..., 0] = width - keypoints[..., 0]
    return out[:, list(flip_index)]


def view_to_original(keypoints: torch.Tensor, scale: float) -> torch.Tensor:
    """Resized-view pixels → original-image pixels: x = x' / scale (transforms.py)."""
    out = keypoints.clone()
    out[..., :2] = keypoints[..., :2] / scale
    return out


def tta_sizes(infer: InferConfig, tta: bool) -> list[tuple[int, int | None]]:
    """(short side, long-side cap) of every scale."""
    if not tta:
        return [(infer.short_side, infer.max_size)]
    sizes = []
    for s in infer.tta_scales:
        cap = None if infer.max_size is None else int(round(infer.max_size * s / infer.short_side))
        sizes.append((int(s), cap))
    return sizes


# ----------------------------------------------------------------------------- inference


class _Views(Dataset):
    """Item i: the list of ``PoseTestDataset`` items of image i at every scale."""

    def __init__(self, datasets):
        self.datasets = datasets

    def __len__(self):
        return len(self.datasets[0])

    def __getitem__(self, i):
        return [d[i] for d in self.datasets]


def _first(batch):
    return batch[0]


@torch.inference_mode()
def view_candidates(model, views: list[dict], infer: InferConfig, skeleton, device,
                    use_refine: bool = True, tta: bool | None = None) -> list[dict]:
    """Decoded candidates of every view of one image (``PoseTestDataset`` items, one per scale;
    with TTA and ``infer.flip`` each also mirrored), each mapped to the original image."""
    from posedet.decode import decode_candidates

    tta = infer.tta if tta is None else tta
    flip_index = skeleton.flip_index
    cands = []
    for item in views:
        x = item["image"][None].to(device)
        h, w = item["input_size"]
        flips = [False, True] if (tta and infer.flip) else [False]
        batch = torch.cat([hflip_view(x, w) if f else x for f in flips])
        outputs = model(batch)
        decoded = decode_candidates(outputs, score_thr=infer.score_thr, topk_per_level=infer.topk,
                                    use_refine=use_refine, image_sizes=[(h, w)] * len(flips))
        for d, flipped in zip(decoded, flips):
            kp = d["keypoints"].float()
            if flipped:
                kp = unflip_keypoints(kp, w, flip_index)
            d = dict(d)
            d["keypoints"] = view_to_original(kp, item["scale"])
            d["flipped"] = torch.full_like(d["scores"], float(flipped))
            d["view_scale"] = torch.full_like(d["scores"], float(item["scale"]))
            cands.append(d)
    return cands


def predict_views(model, views: list[dict], infer: InferConfig, skeleton, device,
                  use_refine: bool = True, tta: bool | None = None) -> dict:
    """One image: candidates of all views merged, then one NMS (``postprocess``'s dict)."""
    from posedet.decode import merge_candidates, postprocess

    merged = merge_candidates(view_candidates(model, views, infer, skeleton, device, use_refine, tta))
    nms_thr = resolve_nms_thr(infer, skeleton.name)
    return postprocess([merged], sigmas=list(skeleton.sigmas), nms=infer.nms, nms_thr=nms_thr,
                       max_dets=infer.max_dets, min_area=infer.min_area)[0]


class NoImagesRead(ValueError):
    """Not one image of the set could be read: there is nothing to score."""


def predict_index(model, index, infer: InferConfig, skeleton, device, use_refine: bool = True,
                  workers: int = 0, progress: bool = True) -> tuple[list[dict], list[int]]:
    """COCO results of every image of ``index`` (a ``PoseDatasetIndex``), and the ids of the
    images that could not be read. Raises ``NoImagesRead`` when no image could be read."""
    from tqdm import tqdm

    from posedet.data.dataset import PoseTestDataset
    from posedet.decode import to_coco_results

    divisor = infer.size_divisor or int(max(model.strides))
    datasets = []
    for i, (short, cap) in enumerate(tta_sizes(infer, infer.tta)):
        d = PoseTestDataset(index if i == 0 else datasets[0].index, short_side=short, max_size=cap,
                            size_divisor=divisor, check_images=(i == 0))
        datasets.append(d)
    loader = DataLoader(_Views(datasets), batch_size=1, collate_fn=_first, num_workers=workers)
    results, skipped = [], []
    for views in tqdm(loader, total=len(datasets[0]), desc="predict", unit="img",
                      disable=not progress, dynamic_ncols=True, mininterval=1.0):
        if any(v["image"] is None for v in views):
            skipped.append(int(views[0]["image_id"]))
            continue
        poses = predict_views(model, views, infer, skeleton, device, use_refine=use_refine)
        results.extend(to_coco_results(poses, int(views[0]["image_id"]), scale=1.0))
    kept = set(datasets[0].index.image_ids)       # missing/empty files are left out up front
    skipped.extend(i for i in index.image_ids if i not in kept)
    if len(skipped) >= len(index):
        example = f" (e.g. {index.images[0].path})" if len(index) else ""
        raise NoImagesRead(f"{index.ann_file}: none of its {len(index)} image(s) could be read "
                           f"under {index.image_root}{example}")
    return results, skipped
