import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from posedet.data.dataset import PoseTestDataset, PoseTrainDataset, collate_test
from posedet.data.reader import (PoseDataError, filter_for_training, load_coco_keypoints,
                                 read_image)
from posedet.skeletons import COCO17, CROWDPOSE14

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "samples"


def _kps(k, pts):
    flat = [0.0] * (3 * k)
    for j, (x, y, v) in pts.items():
        flat[3 * j:3 * j + 3] = [x, y, v]
    return flat


def coco_dict(skeleton=COCO17, with_area=True):
    k = skeleton.num_keypoints
    d = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 80, "height": 60},
                   {"id": 2, "file_name": "b.jpg", "width": 80, "height": 60}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [10, 10, 20, 30],
             "keypoints": _kps(k, {0: (15, 12, 2), 5: (20, 20, 1)})},
            {"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [40, 5, 10, 10],
             "keypoints": _kps(k, {})},
            {"id": 12, "image_id": 2, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 30, 30],
             "keypoints": _kps(k, {})},
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": list(skeleton.keypoints)}],
    }
    if with_area:
        for a, area in zip(d["annotations"], (300.0, 50.0, 400.0)):
            a["area"] = area
    return d


def write(tmp_path, d, name="ann.json"):
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return p


def test_good_file_grouping_and_fields(tmp_path):
    idx = load_coco_keypoints(write(tmp_path, coco_dict()))
    assert idx.skeleton is COCO17 and len(idx) == 2 and idx.num_annotations == 3
    a = idx.annotations_for(1)
    assert a.keypoints.shape == (2, 17, 3) and a.keypoints.dtype == np.float32
    assert a.ann_ids.tolist() == [10, 11] and a.num_keypoints.tolist() == [2, 0]
    np.testing.assert_allclose(a.boxes[0], [10, 10, 20, 30])
    np.testing.assert_allclose(a.areas, [300, 50])
    assert idx.annotations_for(2).iscrowd.tolist() == [1]
    assert idx.images[0].path == str(tmp_path / "a.jpg")
    idx2 = load_coco_keypoints(write(tmp_path, coco_dict()), image_root=tmp_path / "imgs")
    assert idx2.images[1].path == str(tmp_path / "imgs" / "b.jpg")


def test_crowdpose_area_is_box_times_053(tmp_path):
    idx = load_coco_keypoints(write(tmp_path, coco_dict(CROWDPOSE14, with_area=False)))
    assert idx.skeleton is CROWDPOSE14 and idx.area_source == "box*0.53"
    np.testing.assert_allclose(idx.annotations_for(1).areas, [20 * 30 * 0.53, 100 * 0.53],
                               rtol=1e-6)


def test_filter_for_training_keeps_index_intact(tmp_path):
    idx = load_coco_keypoints(write(tmp_path, coco_dict()))
    tr = filter_for_training(idx)
    assert idx.num_annotations == 3                       # index keeps crowd + 0-kp persons
    assert tr.image_ids == [1] and tr.annotations[0].ann_ids.tolist() == [10]


def _set(path, value):
    def f(d):
        obj = d
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return f


def _del(path):
    def f(d):
        obj = d
        for key in path[:-1]:
            obj = obj[key]
        del obj[path[-1]]
    return f


BAD = {
    "missing image key": (_del(["images", 1, "width"]), ["images[1]", "id 2", "width"]),
    "missing ann key": (_del(["annotations", 1, "bbox"]), ["annotations[1]", "id 11", "bbox"]),
    "missing top key": (_del(["annotations"]), ["annotations"]),
    "kp count": (_set(["annotations", 1, "keypoints"], [1, 2, 2] * 16),
                 ["annotations[1]", "id 11", "48", "51"]),
    "nan kp": (_set(["annotations", 0, "keypoints", 3], float("nan")),
               ["annotations[0]", "id 10", "keypoints[3]", "left_eye"]),
    "inf box": (_set(["annotations", 1, "bbox"], [1, 2, float("inf"), 3]),
                ["annotations[1]", "id 11", "bbox"]),
    "string box": (_set(["annotations", 1, "bbox"], [1, 2, "3", 3]),
                   ["annotations[1]", "id 11", "bbox"]),
    "negative box": (_set(["annotations", 2, "bbox"], [0, 0, -5, 3]),
                     ["annotations[2]", "id 12", "negative"]),
    "string kp": (_set(["annotations", 0, "keypoints", 15], "12"),
                  ["annotations[0]", "id 10", "keypoints[15]", "left_shoulder", "not a number"]),
    "string num_keypoints": (_set(["annotations", 1, "num_keypoints"], "3"),
                             ["annotations[1]", "id 11", "num_keypoints"]),
    "bad visibility": (_set(["annotations", 0, "keypoints", 2], 7),
                       ["annotations[0]", "id 10", "nose", "visibility"]),
    "unknown image": (_set(["annotations", 2, "image_id"], 99),
                      ["annotations[2]", "id 12", "unknown image id 99"]),
    "duplicate ann id": (_set(["annotations", 2, "id"], 10), ["annotations[2]", "duplicate"]),
    "duplicate image id": (_set(["images", 1, "id"], 1), ["images[1]", "duplicate"]),
    "bad width": (_set(["images", 0, "width"], 0), ["images[0]", "id 1", "width"]),
    "unknown names": (_set(["categories", 0, "keypoints"], ["a", "b"]), ["match no known"]),
    "partial area": (_del(["annotations", 1, "area"]), ["annotations[1]", "id 11", "area"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inputs_name_file_and_entry(tmp_path, case):
    mutate, needles = BAD[case]
    d = coco_dict()
    mutate(d)
    p = write(tmp_path, d, f"bad_{case.replace(' ', '_')}.json")
    with pytest.raises(PoseDataError) as exc:
        load_coco_keypoints(p)
    msg = str(exc.value)
    assert str(p) in msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_negative_coordinates_allowed_when_unlabelled(tmp_path):
    d = coco_dict()
    d["annotations"][1]["keypoints"][:3] = [-3.0, -4.0, 0]
    assert load_coco_keypoints(write(tmp_path, d)).num_annotations == 3


def test_labelled_keypoint_at_negative_coordinates_is_kept_raw(tmp_path):
    """CrowdPose's release has them (x = -1 ... -7): input, not an error; the index keeps the
    raw value, training clips it onto the image (tests/test_quirks.py)."""
    d = coco_dict()
    d["annotations"][0]["keypoints"][15] = -1.0                 # left_shoulder x
    idx = load_coco_keypoints(write(tmp_path, d))
    a = idx.annotations_for(1)
    assert a.keypoints[0, 5].tolist() == [-1.0, 20.0, 1.0] and a.num_keypoints[0] == 2
    tr = filter_for_training(idx).annotations_for(1)
    assert tr.keypoints[0, 5].tolist() == [0.0, 20.0, 1.0]


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(PoseDataError, match="nope.json.*not found"):
        load_coco_keypoints(tmp_path / "nope.json")
    p = tmp_path / "broken.json"
    p.write_text('{"images": [\n  {"id": 1,,}\n]}')
    with pytest.raises(PoseDataError) as exc:
        load_coco_keypoints(p)
    assert str(p) in str(exc.value) and "line 2, column" in str(exc.value)
    assert isinstance(exc.value, ValueError)
    truncated = tmp_path / "truncated.json"
    text = json.dumps(coco_dict(), indent=1)
    truncated.write_text(text[:len(text) // 2])
    with pytest.raises(PoseDataError, match=r"truncated\.json: malformed JSON at line \d+"):
        load_coco_keypoints(truncated)


def test_skeleton_mismatch(tmp_path):
    p = write(tmp_path, coco_dict())
    with pytest.raises(PoseDataError, match="crowdpose.*does not match"):
        load_coco_keypoints(p, skeleton=CROWDPOSE14)
    assert load_coco_keypoints(p, skeleton="coco").skeleton is COCO17


@pytest.mark.parametrize("rel, skeleton, n_img, n_ann", [
    ("coco/test_coco.json", COCO17, 4, 14),
    ("crowdpose/test_crowdpose.json", CROWDPOSE14, 2, 5),
    ("ochuman/test_ochuman.json", COCO17, 3, 5),
])
def test_samples_load(rel, skeleton, n_img, n_ann):
    path = SAMPLES / rel
    if not path.exists():
        pytest.skip(f"{path} not present")
    idx = load_coco_keypoints(path)
    assert idx.skeleton is skeleton and len(idx) == n_img and idx.num_annotations == n_ann
    for rec in idx.images:
        img = read_image(rec.path)
        assert img is not None and img.dtype == np.uint8
        assert img.shape == (rec.height, rec.width, 3)
    if skeleton is CROWDPOSE14:
        assert idx.area_source == "box*0.53"
        assert all(rec.crowd_index is not None for rec in idx.images)
    if rel.startswith("coco"):
        # two persons with no labelled keypoint stay in the index, training drops them
        assert sum(int((a.num_keypoints == 0).sum()) for a in idx.annotations) == 2
        assert filter_for_training(idx).num_annotations == 12


def _image_set(tmp_path, garbage=(), missing=()):
    d = coco_dict()
    for rec in d["images"]:
        name = rec["file_name"]
        if name in missing:
            continue
        if name in garbage:
            (tmp_path / name).write_bytes(b"\xff\xd8 this is not a jpeg" * 10)
        else:
            img = np.full((60, 80, 3), 90, np.uint8)
            cv2.imwrite(str(tmp_path / name), img)
    # make image 2 trainable too
    d["annotations"][2].update(iscrowd=0, keypoints=_kps(17, {3: (5, 5, 2)}))
    return load_coco_keypoints(write(tmp_path, d))


def test_read_image_none_for_garbage(tmp_path):
    (tmp_path / "g.jpg").write_bytes(b"garbage" * 20)
    assert read_image(tmp_path / "g.jpg") is None
    assert read_image(tmp_path / "missing.jpg") is None


def test_unreadable_image_is_skipped_and_counted(tmp_path, caplog):
    idx = _image_set(tmp_path, garbage=("a.jpg",))
    ds = PoseTrainDataset(idx, input_size=32, rng_seed=0)
    assert len(ds) == 2
    with caplog.at_level(logging.WARNING):
        item = ds[0]
    assert item["image_id"] == 2                         # moved on to the next image
    assert [name for name, _ in ds.skipped] == ["a.jpg"]
    assert "a.jpg" in caplog.text and "1 skipped" in caplog.text
    ds[0]
    assert len(ds.skipped) == 1                          # counted once per file

    tds = PoseTestDataset(idx, short_side=32, max_size=64, size_divisor=16)
    batch = collate_test([tds[0], tds[1]])
    assert batch["image_ids"] == [2] and batch["skipped_image_ids"] == [1]
    assert len(tds.skipped) == 1


def test_missing_image_filtered_at_construction(tmp_path, caplog):
    idx = _image_set(tmp_path, missing=("b.jpg",))
    with caplog.at_level(logging.WARNING):
        ds = PoseTestDataset(idx)
    assert len(ds) == 1 and ds.skipped == [("b.jpg", "missing file")]
    assert "1 image(s) skipped" in caplog.text and "b.jpg" in caplog.text


def test_default_image_folder_is_images_beside_the_annotations_when_it_exists(tmp_path):
    """`posedet synth --out D` layout: D/annotations.json + D/images/ (train, predict, curve)."""
    from posedet.data.reader import default_image_root

    p = write(tmp_path, coco_dict())
    assert default_image_root(p) == str(tmp_path)
    (tmp_path / "images").mkdir()
    assert default_image_root(p) == str(tmp_path / "images")
    assert load_coco_keypoints(p).images[0].path == str(tmp_path / "images" / "a.jpg")
    assert load_coco_keypoints(p, image_root=tmp_path).images[0].path == str(tmp_path / "a.jpg")
