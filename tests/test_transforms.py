import json

import cv2
import numpy as np
import pytest
import torch

from posedet.data.dataset import PoseTestDataset, PoseTrainDataset, collate_train, collate_test
from posedet.data.reader import load_coco_keypoints
from posedet.data.transforms import (IMAGENET_MEAN, IMAGENET_STD, MEAN_COLOUR, crop_matrix,
                                     hflip_boxes_xyxy, hflip_image, hflip_keypoints,
                                     inference_scale, inference_transform, to_original, to_tensor,
                                     train_transform, warp_image)
from posedet.skeletons import COCO17

FLIP = COCO17.flip_index
LS, RS = COCO17.index("left_shoulder"), COCO17.index("right_shoulder")


def frontal_pose(cx=50.0, cy=40.0):
    """A person facing the camera: their left side is on the image's right (larger x)."""
    kps = np.zeros((1, 17, 3), np.float32)
    kps[0, 0] = [cx, cy - 10, 2]                      # nose
    kps[0, LS] = [cx + 8, cy, 2]
    kps[0, RS] = [cx - 8, cy, 2]
    kps[0, COCO17.index("left_hip")] = [cx + 6, cy + 20, 1]
    kps[0, COCO17.index("right_hip")] = [cx - 6, cy + 20, 2]
    return kps


def square_image(h, w, x0, y0, k=4):
    img = np.zeros((h, w, 3), np.uint8)
    img[y0:y0 + k, x0:x0 + k] = 255
    return img


def bright_centroid(img):
    """Continuous-coordinate centroid (pixel centres at +0.5) of the bright pixels. Resampling
    blurs a small square unevenly, so this is a coarse check; the exact one is the ramp test."""
    wgt = img[..., 0].astype(np.float64)
    ys, xs = np.mgrid[:img.shape[0], :img.shape[1]]
    return np.array([((xs + 0.5) * wgt).sum(), ((ys + 0.5) * wgt).sum()]) / wgt.sum()


def test_flip_twice_is_identity_and_swaps_sides():
    kps = frontal_pose()
    once = hflip_keypoints(kps, 100, FLIP)
    np.testing.assert_allclose(hflip_keypoints(once, 100, FLIP), kps)
    # the mirrored frontal person still faces the camera: left shoulder stays right of right
    assert kps[0, LS, 0] > kps[0, RS, 0] and once[0, LS, 0] > once[0, RS, 0]
    np.testing.assert_allclose(once[0, LS, :2], [100 - kps[0, RS, 0], kps[0, RS, 1]])
    assert once[0, COCO17.index("right_hip"), 2] == 1       # visibility travels with the label
    img = np.random.default_rng(0).integers(0, 255, (7, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(hflip_image(hflip_image(img)), img)
    boxes = np.array([[1.0, 2.0, 5.0, 6.0]], np.float32)
    np.testing.assert_allclose(hflip_boxes_xyxy(boxes, 9), [[4, 2, 8, 6]])
    np.testing.assert_allclose(hflip_boxes_xyxy(hflip_boxes_xyxy(boxes, 9), 9), boxes)


def test_flip_of_pixels_matches_flip_of_points():
    img = square_image(20, 30, 3, 5)
    c = bright_centroid(img)
    np.testing.assert_allclose(bright_centroid(hflip_image(img)), [30 - c[0], c[1]], atol=1e-9)
    # the same flip through one warpAffine (scale 1, centre = image centre, S = width)
    m = crop_matrix((15.0, 10.0), 1.0, 30, flip=True)
    warped = warp_image(img, m, 30, 30, (0, 0, 0))
    np.testing.assert_allclose(bright_centroid(warped), [30 - c[0], c[1] + 5], atol=1e-6)


@pytest.mark.parametrize("scale, flip", [(0.7, False), (1.3, False), (1.3, True)])
def test_warp_follows_pixel_centre_convention(scale, flip):
    """A float image whose value is the continuous x (y) of each pixel centre: after the warp,
    each output pixel must hold the source coordinate its own centre maps back to."""
    h, w, s = 30, 40, 24
    ys, xs = np.mgrid[:h, :w].astype(np.float32) + 0.5
    ramp = np.stack([xs, ys, np.zeros_like(xs)], axis=-1)
    m = crop_matrix((21.0, 13.0), scale, s, flip)
    out = warp_image(ramp, m, s, s, (0, 0, 0))
    qy, qx = np.mgrid[:s, :s] + 0.5
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
    src = np.stack([qx, qy, np.ones_like(qx)], -1) @ inv[:2].T
    inner = (src[..., 0] > 1) & (src[..., 0] < w - 1) & (src[..., 1] > 1) & (src[..., 1] < h - 1)
    assert inner.sum() > 100
    np.testing.assert_allclose(out[..., :2][inner], src[inner], atol=0.05)


def _one_person(flip_prob, seed, s=64):
    img = square_image(120, 160, 96, 58)       # square centred at (98, 60) = person centre + (18, 10)
    kps = np.zeros((1, 17, 3), np.float32)
    kps[0, 0] = [80, 50, 2]                     # the person centre
    kps[0, LS] = [98, 60, 2]                    # offset d = (18, 10)
    kps[0, RS] = [150, 110, 2]                  # far away: outside a 64 patch for any scale
    boxes = np.array([[60, 30, 40, 40]], np.float32)   # centre (80, 50)
    out = train_transform(img, kps, boxes, np.array([1000.0]), np.random.default_rng(seed),
                          FLIP, output_size=s, flip_prob=flip_prob)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crop_places_person_and_offsets(seed):
    s = 64
    out = _one_person(0.0, seed, s)
    sc = out["scale"]
    assert 0.5 <= sc <= 1.5 and not out["flip"] and out["person"] == 0
    k = out["keypoints"][0]
    np.testing.assert_allclose(k[0, :2], [s / 2, s / 2], atol=1e-4)
    np.testing.assert_allclose(k[LS, :2], [s / 2 + 18 * sc, s / 2 + 10 * sc], atol=1e-4)
    assert k[LS, 2] == 2
    np.testing.assert_array_equal(k[RS], [0, 0, 0])          # left the crop: v = 0, x = y = 0
    # the pixels moved with the points
    np.testing.assert_allclose(bright_centroid(out["image"]), k[LS, :2], atol=0.3)
    # box: [60, 30, 40, 40] -> centred 40·s square; areas scale by s²
    np.testing.assert_allclose(out["boxes"][0], np.clip(
        [s / 2 - 20 * sc, s / 2 - 20 * sc, s / 2 + 20 * sc, s / 2 + 20 * sc], 0, s), atol=1e-4)
    np.testing.assert_allclose(out["areas"], [1000 * sc ** 2], rtol=1e-5)
    np.testing.assert_allclose(out["box_areas"], [1600 * sc ** 2], rtol=1e-5)


def test_crop_with_flip():
    s = 64
    out = _one_person(1.0, 0, s)
    sc, k = out["scale"], out["keypoints"][0]
    assert out["flip"]
    # the labelled point that was left_shoulder is now labelled right_shoulder, mirrored
    np.testing.assert_allclose(k[RS, :2], [s / 2 - 18 * sc, s / 2 + 10 * sc], atol=1e-4)
    np.testing.assert_array_equal(k[LS], [0, 0, 0])
    np.testing.assert_allclose(bright_centroid(out["image"]), k[RS, :2], atol=0.3)


def test_crop_border_is_mean_colour_and_person_choice():
    img = np.full((20, 20, 3), 200, np.uint8)
    kps = np.zeros((3, 17, 3), np.float32)
    kps[1, 0] = [10, 10, 2]                       # only person 1 has a labelled keypoint
    boxes = np.array([[0, 0, 5, 5], [5, 5, 10, 10], [0, 0, 20, 20]], np.float32)
    for seed in range(5):
        out = train_transform(img, kps, boxes, np.ones(3), np.random.default_rng(seed), FLIP,
                              output_size=64)
        assert out["person"] == 1
        assert tuple(out["image"][0, 0]) == MEAN_COLOUR        # outside the image
        assert len(out["keypoints"]) == 1                      # persons without kps dropped
    kept = train_transform(img, kps, boxes, np.ones(3), np.random.default_rng(0), FLIP,
                           output_size=64, keep_empty=True)
    assert len(kept["keypoints"]) == 3


def test_inference_scale_short_side_and_cap():
    assert inference_scale(480, 640, 640, 1000) == (640 / 480, 640, 853)
    sc, h, w = inference_scale(400, 1200, 640, 1000)            # long side would be 1920
    assert sc == 1000 / 1200 and (h, w) == (333, 1000)
    assert inference_scale(640, 480, 640, None)[1:] == (853, 640)


def test_inference_transform_pad_and_round_trip():
    img = square_image(48, 70, 50, 30)            # square centre (52, 32)
    out = inference_transform(img, short_side=64, max_size=200, size_divisor=32)
    sc = out["scale"]
    assert out["orig_size"] == (48, 70) and out["resized_size"] == (64, 93)
    assert out["image"].shape == (64, 96, 3)
    assert tuple(out["image"][10, 95]) == MEAN_COLOUR       # right padding
    win = out["image"][32:52, 60:80]                         # around the square, away from borders
    np.testing.assert_allclose(bright_centroid(win) + [60, 32], [52 * sc, 32 * sc], atol=0.3)
    pred = np.array([[[52 * sc, 32 * sc, 0.9]]], np.float32)
    np.testing.assert_allclose(to_original(pred, sc), [[[52, 32, 0.9]]], rtol=1e-6)


def test_to_tensor_normalises():
    img = np.zeros((4, 5, 3), np.uint8)
    img[:] = MEAN_COLOUR
    t = to_tensor(img)
    assert t.shape == (3, 4, 5) and t.dtype == torch.float32
    assert t.abs().max() < 0.01
    img[0, 0] = [255, 0, 0]
    np.testing.assert_allclose(to_tensor(img)[:, 0, 0].numpy(),
                               (np.array([1, 0, 0]) - IMAGENET_MEAN) / IMAGENET_STD, rtol=1e-5)


@pytest.fixture()
def tiny_index(tmp_path):
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": 56, "height": 40})
        for j in range(2):
            kp = np.zeros((17, 3))
            kp[:, 0] = rng.uniform(5, 50, 17)
            kp[:, 1] = rng.uniform(5, 35, 17)
            kp[:, 2] = 2
            anns.append({"id": 10 * i + j, "image_id": i + 1, "iscrowd": 0, "area": 300.0,
                         "bbox": [5, 5, 30, 25], "keypoints": kp.ravel().tolist()})
    d = {"images": images, "annotations": anns,
         "categories": [{"id": 1, "keypoints": list(COCO17.keypoints)}]}
    (tmp_path / "ann.json").write_text(json.dumps(d))
    return load_coco_keypoints(tmp_path / "ann.json")


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in ("image", "keypoints", "boxes", "areas"))


def test_train_dataset_deterministic(tiny_index):
    a = PoseTrainDataset(tiny_index, input_size=32, rng_seed=7)
    b = PoseTrainDataset(tiny_index, input_size=32, rng_seed=7)
    b.set_epoch(3)
    b[1]
    b.set_epoch(0)
    assert _same(a[1], b[1]) and _same(a[2], a[2])          # (seed, epoch, i) fixes the sample
    a.set_epoch(1)
    c = PoseTrainDataset(tiny_index, input_size=32, rng_seed=8)
    assert not _same(a[1], b[1]) and not _same(c[1], b[1])
    item = a[0]
    assert item["image"].shape == (3, 32, 32) and item["keypoints"].shape[1:] == (17, 3)
    assert item["boxes"].shape[1] == 4 and item["image_id"] == 1
    batch = collate_train([a[0], a[1]])
    assert batch["images"].shape == (2, 3, 32, 32) and len(batch["targets"]) == 2
    assert batch["image_ids"] == [1, 2]


def test_test_dataset_and_collate(tiny_index):
    ds = PoseTestDataset(tiny_index, short_side=48, max_size=60, size_divisor=32)
    item = ds[0]
    assert item["orig_size"] == (40, 56) and item["scale"] == pytest.approx(60 / 56)
    assert item["input_size"] == (43, 60) and item["image"].shape == (3, 64, 64)
    batch = collate_test([ds[0], ds[1]])
    assert batch["images"].shape == (2, 3, 64, 64) and batch["image_ids"] == [1, 2]
    assert batch["skipped_image_ids"] == []
