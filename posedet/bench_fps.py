"""`posedet bench fps`: PoseDet inference speed under the harness's FPS protocol (see bench.py).

Two figures per model:
* network     — forward + decode + NMS on a ready, normalised, padded tensor (the authors' protocol);
* end-to-end  — also reading and decoding the image file, resizing and normalising.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from posedet.bench import manifest, summarize, time_calls, write_json
from posedet.skeletons import skeleton_for_num_keypoints


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbone", default="dla34")
    p.add_argument("--num-keypoints", type=int, default=17)
    p.add_argument("--checkpoint", default=None, help="time a trained model (else random weights: same cost)")
    p.add_argument("--short-side", type=int, default=512)
    p.add_argument("--max-size", type=int, default=1000)
    p.add_argument("--image", default=None, help="image file for the end-to-end figure (default: a synthetic 640×480 JPEG)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--nms", choices=["oks", "iou"], default="oks")
    p.add_argument("--nms-thr", type=float, default=0.2)
    p.add_argument("--amp", action="store_true", help="autocast fp16 on CUDA")
    p.add_argument("--out", required=True)


def _default_image(tmp_dir) -> str:
    import cv2
    rng = np.random.default_rng(0)
    img = (rng.random((480, 640, 3)) * 255).astype(np.uint8)
    path = str(tmp_dir / "bench_640x480.jpg")
    cv2.imwrite(path, img)
    return path


def main(args) -> int:
    import tempfile
    from pathlib import Path

    from posedet.data.reader import read_image
    from posedet.data.transforms import inference_transform, to_tensor
    from posedet.decode import decode_candidates, postprocess
    from posedet.model.detector import PoseDet

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    skeleton = skeleton_for_num_keypoints(args.num_keypoints)
    if args.checkpoint:
        from posedet.checkpoint import load_model_from_checkpoint
        model = load_model_from_checkpoint(args.checkpoint, map_location="cpu")
    else:
        model = PoseDet(backbone=args.backbone, num_keypoints=args.num_keypoints, pretrained=False)
    model = model.to(device).eval()
    divisor = max(model.strides)

    with tempfile.TemporaryDirectory() as td:
        image_path = args.image or _default_image(Path(td))
        image = read_image(image_path)
        if image is None:
            raise SystemExit(f"posedet bench fps: cannot read image {image_path}")

        def prepare(img):
            res = inference_transform(img, args.short_side, args.max_size, divisor)
            return to_tensor(res["image"])[None].to(device)

        x = prepare(image)

        def network(inp=None):
            with torch.inference_mode(), torch.autocast("cuda", enabled=args.amp and device.type == "cuda"):
                out = model(x if inp is None else inp)
                cands = decode_candidates(out, score_thr=0.05, topk_per_level=500, use_refine=True)
                return postprocess(cands, nms=args.nms, nms_thr=args.nms_thr, sigmas=skeleton.sigmas,
                                   max_dets=100, min_area=32 ** 2)

        def end_to_end():
            return network(prepare(read_image(image_path)))

        t_net = time_calls(network, args.repeats, args.warmup, args.device)
        t_e2e = time_calls(end_to_end, args.repeats, args.warmup, args.device)
    result = {
        "manifest": manifest(args.device, args.threads, backbone=args.backbone, num_keypoints=args.num_keypoints,
                             input_size=list(x.shape[-2:]), image=args.image or "synthetic 640x480 JPEG",
                             short_side=args.short_side, max_size=args.max_size, batch=1, amp=args.amp,
                             nms=args.nms, warmup=args.warmup,
                             timed={"network": "forward + decode + NMS", "end_to_end": "image read + decode + resize + normalise + network"}),
        "network": summarize(t_net),
        "end_to_end": summarize(t_e2e),
    }
    write_json(result, args.out)
    print(f"{args.backbone} @ {tuple(x.shape[-2:])} on {args.device}: network {result['network']['median_ms']:.1f} ms "
          f"({result['network']['fps_median']:.1f} FPS), end-to-end {result['end_to_end']['median_ms']:.1f} ms")
    return 0
