"""posedet predict: flip/scale geometry of TTA, COCO results from a trained checkpoint,
checkpoint/annotation mismatch errors."""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from posedet.config import load_config
from posedet.predict import (hflip_view, tta_sizes, unflip_keypoints, view_candidates,
                             view_to_original)
from posedet.skeletons import COCO17, CROWDPOSE14


# ------------------------------------------------------------------------ pure geometry


def test_unflip_is_an_involution_and_swaps_left_right():
    g = torch.Generator().manual_seed(0)
    kp = torch.rand(3, 17, 2, generator=g) * 100
    back = unflip_keypoints(unflip_keypoints(kp, 123.0, COCO17.flip_index), 123.0, COCO17.flip_index)
    assert torch.allclose(back, kp, atol=1e-5, rtol=0)
    one = unflip_keypoints(kp, 123.0, COCO17.flip_index)
    ls, rs = COCO17.index("left_shoulder"), COCO17.index("right_shoulder")
    assert torch.allclose(one[:, rs, 0], 123.0 - kp[:, ls, 0])
    assert torch.equal(one[:, rs, 1], kp[:, ls, 1])


@pytest.mark.parametrize("scale", [0.5, 0.75, 1.0, 1.6])
def test_flip_at_the_resized_width_then_unflip_maps_back_at_any_scale(scale):
    """A point at x in the original (width W) is at x·s in the W·s-wide view and at W·s − x·s in
    its mirror; un-mirroring with the view's width and dividing by s gives x back. The authors'
    code used W instead of W·s, which is off by W·(1 − s)/s whenever s ≠ 1."""
    W = 200.0
    orig = torch.tensor([[[17.25, 40.0], [150.5, 3.0], [199.0, 99.5]]])    # [1, 3, 2]
    identity = [0, 1, 2]
    view_w = W * scale
    mirrored = orig * scale
    mirrored[..., 0] = view_w - mirrored[..., 0]
    back = view_to_original(unflip_keypoints(mirrored, view_w, identity), scale)
    assert torch.allclose(back, orig, atol=1e-4)
    if scale != 1.0:
        wrong = view_to_original(unflip_keypoints(mirrored, W, identity), scale)
        assert (wrong - orig)[..., 0].abs().min() > 1.0


def test_hflip_view_keeps_the_padding_on_the_right():
    img = torch.arange(2 * 3 * 4 * 8, dtype=torch.float32).reshape(2, 3, 4, 8)
    img[..., 6:] = 0                                                      # padding, width 6 content
    out = hflip_view(img, 6)
    assert torch.equal(out[..., :6], img[..., :6].flip(-1))
    assert torch.equal(out[..., 6:], img[..., 6:])
    assert torch.equal(hflip_view(out, 6), img)


def test_tta_sizes_cap_the_long_side_in_proportion():
    infer = load_config(None, ["infer.short_side=640", "infer.max_size=1000",
                               "infer.tta_scales=[320,640,800]"]).infer
    assert tta_sizes(infer, False) == [(640, 1000)]
    assert tta_sizes(infer, True) == [(320, 500), (640, 1000), (800, 1250)]


# ----------------------------------------- TTA end to end on an exactly equivariant stub


class BlobPoseStub(torch.nn.Module):
    """A 'detector' that is exactly equivariant to scaling and mirroring: it finds the one bright
    blob of the image, and predicts one pose at its intensity centroid with keypoint k at
    centroid + offsets[k]·(blob radius). ``offsets`` are mirror-symmetric under ``flip_index``,
    so the mirrored image's pose, un-mirrored, is the same pose."""

    strides = [8]

    def __init__(self, offsets: torch.Tensor):
        super().__init__()
        self.register_buffer("offsets", offsets)

    def forward(self, x):
        b, _, h, w = x.shape
        inten = (x.mean(1) - 0.2).clamp_min(0)                            # background ≈ 0
        ys = torch.arange(h, dtype=x.dtype)[:, None] + 0.5
        xs = torch.arange(w, dtype=x.dtype)[None, :] + 0.5
        m = inten.sum((1, 2))
        cx = (inten * xs).sum((1, 2)) / m
        cy = (inten * ys).sum((1, 2)) / m
        r = torch.sqrt((inten * ((xs - cx[:, None, None]) ** 2 + (ys - cy[:, None, None]) ** 2)).sum((1, 2)) / m)
        kp = torch.stack([cx, cy], -1)[:, None] + self.offsets[None] * r[:, None, None]   # [B, K, 2]
        fh, fw = math.ceil(h / 8), math.ceil(w / 8)
        k = kp.shape[1]
        cls = torch.full((b, 1, fh, fw), -10.0)
        coarse = torch.zeros(b, 2 * k, fh, fw)
        for i in range(b):
            gi = int(torch.round(cy[i] / 8).clamp(0, fh - 1))
            gj = int(torch.round(cx[i] / 8).clamp(0, fw - 1))
            cls[i, 0, gi, gj] = 10.0
            coarse[i, 0::2, gi, gj] = (kp[i, :, 1] - gi * 8) / 8            # dy
            coarse[i, 1::2, gi, gj] = (kp[i, :, 0] - gj * 8) / 8            # dx
        return {"strides": [8], "coarse": [coarse], "refine": [torch.zeros_like(coarse)],
                "cls": [cls], "heatmaps": None}


def _symmetric_offsets(skeleton) -> torch.Tensor:
    k = skeleton.num_keypoints
    off = torch.zeros(k, 2)
    for i in range(k):
        off[i, 1] = -1.0 + 2.0 * i / k                                    # distinct heights
    for n, (a, b) in enumerate(skeleton.flip_pairs):
        off[a, 0], off[b, 0] = -(0.3 + 0.1 * n), 0.3 + 0.1 * n
        off[b, 1] = off[a, 1]
    return off


def _blob_image(tmp_path: Path, w=160, h=96, cx=110.3, cy=40.6, sigma=7.0) -> tuple[str, str]:
    from posedet.data.transforms import MEAN_COLOUR

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2))
    img = np.empty((h, w, 3), np.float64)
    for c in range(3):
        img[..., c] = MEAN_COLOUR[c] + (255 - MEAN_COLOUR[c]) * blob
    cv2.imwrite(str(tmp_path / "blob.png"), np.round(img[..., ::-1]).astype(np.uint8))
    ann = {
        "images": [{"id": 7, "file_name": "blob.png", "width": w, "height": h}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 0, "area": 400.0,
                         "bbox": [cx - 10, cy - 10, 20, 20], "num_keypoints": 1,
                         "keypoints": [cx, cy, 2] + [0, 0, 0] * 13}],
        "categories": [{"id": 1, "name": "person", "keypoints": list(CROWDPOSE14.keypoints),
                        "skeleton": []}],
    }
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    return str(tmp_path / "ann.json"), str(tmp_path)


def test_tta_views_map_back_onto_the_unflipped_pose_at_every_scale(tmp_path):
    from posedet.data.dataset import PoseTestDataset
    from posedet.data.reader import load_coco_keypoints

    ann, root = _blob_image(tmp_path)
    index = load_coco_keypoints(ann, root)
    skel = index.skeleton
    model = BlobPoseStub(_symmetric_offsets(skel)).eval()
    infer = load_config(None, ["infer.short_side=96", "infer.max_size=400", "infer.tta=true",
                               "infer.tta_scales=[48,96,150]", "infer.flip=true"]).infer
    views = [PoseTestDataset(index, s, cap, size_divisor=32)[0] for s, cap in tta_sizes(infer, True)]
    assert [v["scale"] for v in views] == pytest.approx([0.5, 1.0, 150 / 96])
    cands = view_candidates(model, views, infer, skel, "cpu")
    assert len(cands) == 6                                                 # 3 scales × (plain, mirrored)
    ref = next(c["keypoints"] for c in cands                               # scale 1, not mirrored
               if c["view_scale"][0] == 1.0 and c["flipped"][0] == 0)
    assert ref.shape == (1, skel.num_keypoints, 2)
    assert abs(ref[0, :, 0].mean().item() - 110.3) < 0.5                   # the blob centre
    for c in cands:
        assert c["keypoints"].shape == ref.shape
        # bilinear resampling moves the blob's moments a little at scale 0.5; a wrong mirror
        # width would be off by (160 − 160·s)/s ≥ 55 px here
        assert torch.allclose(c["keypoints"], ref, atol=1.0), (
            c["view_scale"][0].item(), c["flipped"][0].item(), (c["keypoints"] - ref).abs().max().item())


# ------------------------------------------------------------- the CLI on a trained model


def _predict(args: list[str]) -> int:
    from posedet.cli import main

    return main(["predict", *args])


def _check_results(path: Path, gt_ann: str, num_keypoints: int) -> list[dict]:
    res = json.loads(Path(path).read_text())
    gt = json.loads(Path(gt_ann).read_text())
    ids = {im["id"] for im in gt["images"]}
    assert isinstance(res, list)
    for r in res:
        assert set(r) == {"image_id", "category_id", "keypoints", "score"}
        assert r["image_id"] in ids and r["category_id"] == 1
        assert len(r["keypoints"]) == 3 * num_keypoints and 0.0 <= r["score"] <= 1.0
        assert all(math.isfinite(v) for v in r["keypoints"])
    return res


@pytest.mark.parametrize("mode", [[], ["--tta"], ["--coarse-only", "--set", "infer.nms=iou"]],
                         ids=["single", "tta", "coarse-iou"])
def test_predict_writes_coco_results(tiny_run, synth_coco, tmp_path, mode):
    out = tmp_path / "sub" / "results.json"
    rc = _predict(["--checkpoint", str(tiny_run / "final.pt"), "--ann", synth_coco["ann"],
                   "--images", synth_coco["images"], "--out", str(out), "--device", "cpu",
                   "--set", "infer.score_thr=0.0", *mode])
    assert rc == 0
    res = _check_results(out, synth_coco["ann"], 17)
    assert res, "score_thr 0 keeps candidates, so every image has poses"
    per_image = {}
    for r in res:
        per_image[r["image_id"]] = per_image.get(r["image_id"], 0) + 1
    assert max(per_image.values()) <= 100                                    # max_dets
    from posedet.evaluate import evaluate_coco

    metrics = evaluate_coco(synth_coco["ann"], res)
    assert 0.0 <= metrics["AP"] <= 1.0


def test_predict_rejects_a_checkpoint_of_another_skeleton(tiny_run, synth_crowdpose, tmp_path, capsys):
    rc = _predict(["--checkpoint", str(tiny_run / "final.pt"), "--ann", synth_crowdpose["ann"],
                   "--images", synth_crowdpose["images"], "--out", str(tmp_path / "r.json")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "17 keypoints (skeleton 'coco')" in err and "14 (skeleton 'crowdpose')" in err
    assert not (tmp_path / "r.json").exists()


def test_predict_rejects_a_checkpoint_of_another_backbone(tiny_run, synth_coco, tmp_path, capsys):
    rc = _predict(["--checkpoint", str(tiny_run / "final.pt"), "--ann", synth_coco["ann"],
                   "--images", synth_coco["images"], "--out", str(tmp_path / "r.json"),
                   "--set", "model.backbone=hrnet_w32"])
    assert rc == 2
    err = capsys.readouterr().err
    trained = torch.load(tiny_run / "final.pt", weights_only=True)["config"]["model"]["backbone"]
    assert f"checkpoint backbone '{trained}', but 'hrnet_w32' was requested" in err


def test_predict_rejects_a_tampered_signature(tiny_run, synth_coco, tmp_path, capsys):
    from posedet import checkpoint as C

    ckpt = C.load_checkpoint(tiny_run / "final.pt")
    ckpt["model_signature"] = {"backbone": "something_else"}
    bad = tmp_path / "bad.pt"
    C.save_checkpoint(bad, {k: v for k, v in ckpt.items() if k != "format"})
    rc = _predict(["--checkpoint", str(bad), "--ann", synth_coco["ann"], "--images",
                   synth_coco["images"], "--out", str(tmp_path / "r.json")])
    assert rc == 2
    assert "stored model signature {'backbone': 'something_else'} differs" in capsys.readouterr().err


def test_predict_defaults_to_the_images_folder_beside_the_annotations(tiny_run, synth_coco, tmp_path):
    """`posedet synth --out D` writes D/annotations.json and D/images/: no --images needed."""
    out = tmp_path / "r.json"
    rc = _predict(["--checkpoint", str(tiny_run / "final.pt"), "--ann", synth_coco["ann"],
                   "--out", str(out), "--device", "cpu", "--set", "infer.score_thr=0.0"])
    assert rc == 0
    assert {r["image_id"] for r in _check_results(out, synth_coco["ann"], 17)} == \
        {im["id"] for im in json.loads(Path(synth_coco["ann"]).read_text())["images"]}


def test_predict_with_no_readable_image_fails_and_writes_nothing(tiny_run, synth_coco, tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = _predict(["--checkpoint", str(tiny_run / "final.pt"), "--ann", synth_coco["ann"],
                   "--images", str(tmp_path / "no_such_folder"), "--out", str(out), "--device", "cpu"])
    assert rc == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "none of its 8 image(s) could be read" in err and "nothing written" in err
