"""Quirks of real annotation files: the reader accepts them, ``quirk_counts`` counts them and
``filter_for_training`` (``quirks.training_policy``) applies the training policy of
docs/data.md."""
import json
from pathlib import Path

import numpy as np
import pytest

from posedet import cli
from posedet.data.quirks import QUIRKS, quirk_counts, training_policy
from posedet.data.reader import PoseDataError, filter_for_training, load_coco_keypoints
from posedet.skeletons import COCO17

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CROWDPOSE_VAL = SHARED_DATA / "crowdpose" / "crowdpose_val.json"
SAMPLES = sorted((SHARED_DATA / "samples").glob("*/*.json"))

# Measured on crowdpose_val.json as released (docs/data.md).
CROWDPOSE_VAL_QUIRKS = {
    "iscrowd": 106, "iscrowd_with_labelled_keypoints": 66, "no_labelled_keypoints": 499,
    "num_keypoints_zero": 1453, "num_keypoints_missing": 0, "num_keypoints_mismatch": 7543,
    "labelled_kp_negative": 8, "labelled_kp_outside_image": 1, "labelled_kp_far_outside": 0,
    "unlabelled_kp_nonzero_xy": 0, "degenerate_boxes": 0, "box_outside_image": 0,
    "area_missing": 8527, "images_without_annotations": 0, "images_without_persons": 0,
    "images_without_labelled_persons": 0,
}


def _labelled_inside(index) -> bool:
    for rec, a in zip(index.images, index.annotations):
        kp = a.keypoints
        lab = kp[..., 2] > 0
        x, y = kp[..., 0][lab], kp[..., 1][lab]
        if not ((x >= 0) & (x < rec.width) & (y >= 0) & (y < rec.height)).all():
            return False
    return True


@pytest.fixture(scope="module")
def crowdpose_val():
    if not CROWDPOSE_VAL.exists():
        pytest.skip(f"{CROWDPOSE_VAL} not present (the real CrowdPose val annotations)")
    return load_coco_keypoints(CROWDPOSE_VAL)


def test_real_crowdpose_val_loads_with_its_quirks(crowdpose_val):
    idx = crowdpose_val
    assert len(idx) == 2000 and idx.num_annotations == 8527
    assert quirk_counts(idx) == CROWDPOSE_VAL_QUIRKS
    # the index keeps the raw values: the neck of annotation 102509 at x = -1
    pos = next(i for i, a in enumerate(idx.annotations) if 102509 in a.ann_ids)
    a = idx.annotations[pos]
    row = int(np.flatnonzero(a.ann_ids == 102509)[0])
    neck = idx.skeleton.keypoints.index("neck")
    assert a.keypoints[row, neck].tolist() == [-1.0, 366.0, 1.0]
    assert a.num_keypoints_stored[row] >= 0


def test_real_crowdpose_val_training_view(crowdpose_val):
    idx = crowdpose_val
    tr = filter_for_training(idx)
    # every crowd region and every person without a labelled keypoint leaves; nothing else
    assert tr.num_annotations == 8527 - 106 - (499 - 40)
    assert len(tr) == 2000
    assert _labelled_inside(tr)
    assert all((a.iscrowd == 0).all() and (a.num_keypoints >= 1).all() for a in tr.annotations)
    assert all((a.keypoints[a.keypoints[..., 2] == 0] == 0).all() for a in tr.annotations)
    # the clipped neck
    pos = next(i for i, a in enumerate(tr.annotations) if 102509 in a.ann_ids)
    a = tr.annotations[pos]
    row = int(np.flatnonzero(a.ann_ids == 102509)[0])
    assert a.keypoints[row, idx.skeleton.keypoints.index("neck")].tolist() == [0.0, 366.0, 1.0]
    # the raw index is untouched
    assert quirk_counts(idx) == CROWDPOSE_VAL_QUIRKS


def test_stats_only_on_real_crowdpose_val_has_quirks(crowdpose_val, tmp_path):
    out = tmp_path / "stats.json"
    assert cli.main(["synth", "--stats-only", str(CROWDPOSE_VAL), "--out", str(out)]) == 0
    stats = json.loads(out.read_text())
    assert stats["quirks"] == CROWDPOSE_VAL_QUIRKS
    assert stats["num_persons"] == 8527


def test_synthetic_stats_have_zero_quirks(synth_crowdpose):
    stats = json.loads((Path(synth_crowdpose["dir"]) / "stats.json").read_text())
    assert list(stats["quirks"]) == list(QUIRKS)
    assert set(stats["quirks"].values()) == {0}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.parent.name)
def test_sample_files_load_and_train(path):
    idx = load_coco_keypoints(path)
    counts = quirk_counts(idx)
    assert list(counts) == list(QUIRKS) and min(counts.values()) >= 0
    tr = filter_for_training(idx)
    assert _labelled_inside(tr) and tr.num_annotations <= idx.num_annotations
    assert tr.num_annotations == idx.num_annotations - counts["iscrowd"] - sum(
        int(((a.iscrowd == 0) & (a.num_keypoints == 0)).sum()) for a in idx.annotations)


def test_samples_present():
    if not SAMPLES:
        pytest.skip(f"no sample files under {SHARED_DATA / 'samples'}")
    assert {p.parent.name for p in SAMPLES} == {"coco", "crowdpose", "ochuman"}


# ------------------------------------------------------------------ hand-made COCO quirks

W, H = 100, 80


def _kps(pts):
    flat = [0] * 51
    for j, (x, y, v) in pts.items():
        flat[3 * j:3 * j + 3] = [x, y, v]
    return flat


def _ann(aid, image_id, pts, bbox, nk="count", iscrowd=0, area=100.0, **extra):
    a = {"id": aid, "image_id": image_id, "category_id": 1, "iscrowd": iscrowd, "bbox": bbox,
         "keypoints": _kps(pts), "area": area,
         "segmentation": [[bbox[0], bbox[1], bbox[0] + 5, bbox[1], bbox[0] + 5, bbox[1] + 5]],
         **extra}
    if nk == "count":
        a["num_keypoints"] = sum(1 for _, _, v in pts.values() if v > 0)
    elif nk is not None:
        a["num_keypoints"] = nk
    return a


def quirky_coco():
    """Every COCO 2017 quirk the reader must take as normal input."""
    return {
        "info": {}, "licenses": [],
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": W, "height": H} for i in (1, 2, 3, 4)],
        "annotations": [
            # float keypoints, one on the last pixel of the image: normal
            _ann(1, 1, {0: (10.5, 20.25, 2), 1: (99.5, 79.5, 1)}, [5.0, 5.0, 95.0, 75.0]),
            # labelled points at x = W and at x = -3 (just outside: clipped); stored count wrong
            _ann(2, 1, {0: (100, 30, 2), 1: (-3, 40, 1), 2: (50, 50, 2)}, [0, 20, 100, 40], nk=2),
            # one labelled point 50 px outside (unlabelled in training); box beyond the image
            _ann(3, 1, {0: (150, 30, 2), 5: (70, 30, 2)}, [60, 10, 45, 30]),
            # v = 0 with coordinates; no stored num_keypoints
            _ann(4, 1, {0: (30, 30, 0), 3: (40, 35, 2)}, [30, 30, 20, 20], nk=None),
            # zero-sized box, two labelled points: the keypoints' box replaces it
            _ann(7, 1, {0: (20, 20, 2), 1: (30, 40, 2)}, [20, 20, 0, 0], area=0.0),
            # tiny box, one labelled point: no box to take, dropped
            _ann(8, 1, {0: (5, 5, 2)}, [5, 5, 0.5, 0.5], area=0.25),
            # crowd region: RLE segmentation, all-zero keypoints, num_keypoints 0
            {**_ann(6, 3, {}, [10, 10, 50, 40], iscrowd=1, area=1500.0),
             "segmentation": {"counts": [10, 20, 30, 8000 - 60], "size": [H, W]}},
            # box only (num_keypoints 0)
            _ann(5, 4, {}, [50, 50, 10, 20]),
        ],
        "categories": [{"id": 1, "name": "person", "supercategory": "person",
                        "keypoints": list(COCO17.keypoints), "skeleton": []}],
    }


QUIRKY_COUNTS = {
    "iscrowd": 1, "iscrowd_with_labelled_keypoints": 0, "no_labelled_keypoints": 2,
    "num_keypoints_zero": 2, "num_keypoints_missing": 1, "num_keypoints_mismatch": 1,
    "labelled_kp_negative": 1, "labelled_kp_outside_image": 2, "labelled_kp_far_outside": 1,
    "unlabelled_kp_nonzero_xy": 1, "degenerate_boxes": 2, "box_outside_image": 1,
    "area_missing": 0, "images_without_annotations": 1, "images_without_persons": 2,
    "images_without_labelled_persons": 3,
}


@pytest.fixture
def quirky(tmp_path):
    p = tmp_path / "person_keypoints_quirky.json"
    p.write_text(json.dumps(quirky_coco()))
    return p


def _row(a, aid):
    return int(np.flatnonzero(a.ann_ids == aid)[0])


def test_quirky_coco_loads_raw(quirky):
    idx = load_coco_keypoints(quirky)
    assert len(idx) == 4 and idx.num_annotations == 8 and idx.area_source == "area"
    assert quirk_counts(idx) == QUIRKY_COUNTS
    a = idx.annotations_for(1)
    assert a.ann_ids.tolist() == [1, 2, 3, 4, 7, 8]
    np.testing.assert_allclose(a.keypoints[_row(a, 1), 0], [10.5, 20.25, 2])
    assert a.keypoints[_row(a, 2), 0].tolist() == [100, 30, 2]            # raw
    assert a.keypoints[_row(a, 4), 0].tolist() == [30, 30, 0]             # raw
    assert a.num_keypoints.tolist() == [2, 3, 2, 1, 2, 1]                 # recomputed
    assert a.num_keypoints_stored.tolist() == [2, 2, 2, -1, 2, 1]         # as stored
    assert len(idx.annotations_for(2)) == 0
    assert idx.annotations_for(3).iscrowd.tolist() == [1]


def test_quirky_coco_training_view(quirky):
    idx = load_coco_keypoints(quirky)
    tr = filter_for_training(idx)
    assert tr.image_ids == [1]
    a = tr.annotations[0]
    assert a.ann_ids.tolist() == [1, 2, 3, 4, 7]                          # 8: no usable box
    assert _labelled_inside(tr)
    assert a.keypoints[_row(a, 1), 1].tolist() == [99.5, 79.5, 1]         # inside: unchanged
    assert a.keypoints[_row(a, 2), :3].tolist() == [[99, 30, 2], [0, 40, 1], [50, 50, 2]]
    assert a.keypoints[_row(a, 3), 0].tolist() == [0, 0, 0]               # 50 px out: unlabelled
    assert a.num_keypoints[_row(a, 3)] == 1
    assert a.keypoints[_row(a, 4), 0].tolist() == [0, 0, 0]               # v = 0 -> (0, 0)
    assert a.boxes[_row(a, 7)].tolist() == [20, 20, 10, 20]               # keypoints' box
    assert a.boxes[_row(a, 3)].tolist() == [60, 10, 45, 30]               # not clipped
    assert (a.keypoints[a.keypoints[..., 2] == 0] == 0).all()
    # the raw index is unchanged
    assert quirk_counts(idx) == QUIRKY_COUNTS
    assert idx.annotations_for(1).keypoints[_row(idx.annotations_for(1), 2), 0, 0] == 100
    # images kept when asked
    keep_all = filter_for_training(idx, drop_empty_images=False)
    assert keep_all.image_ids == [1, 2, 3, 4]
    assert [len(x) for x in keep_all.annotations] == [5, 0, 0, 0]
    # a larger margin clips the far point instead
    wide = filter_for_training(idx, clip_margin=100.0).annotations[0]
    assert wide.keypoints[_row(wide, 3), 0].tolist() == [99, 30, 2]


def test_training_policy_is_pure_and_rowwise(quirky):
    idx = load_coco_keypoints(quirky)
    a = idx.annotations_for(1)
    before = {f: getattr(a, f).copy() for f in a._FIELDS}
    view, keep = training_policy(a, W, H)
    for f, arr in before.items():
        np.testing.assert_array_equal(getattr(a, f), arr)
    assert keep.tolist() == [True, True, True, True, True, False]
    assert view.ann_ids.tolist() == a.ann_ids[keep].tolist()
    empty, k0 = training_policy(idx.annotations_for(2), W, H)
    assert len(empty) == 0 and k0.size == 0
    # the crowdpose area rule: a replaced box gets w*h*factor
    view, _ = training_policy(a, W, H, area_factor=0.5)
    assert view.areas[_row(view, 7)] == pytest.approx(10 * 20 * 0.5)


def test_crowd_region_with_keypoints_is_not_a_training_person(tmp_path):
    d = quirky_coco()
    d["annotations"][6]["keypoints"] = _kps({0: (20, 20, 2), 1: (30, 30, 1)})
    p = tmp_path / "crowd.json"
    p.write_text(json.dumps(d))
    idx = load_coco_keypoints(p)
    assert quirk_counts(idx)["iscrowd_with_labelled_keypoints"] == 1
    assert 3 not in filter_for_training(idx).image_ids


@pytest.mark.parametrize("mutate, needles", [
    (lambda d: d["annotations"][2]["keypoints"].__setitem__(1, float("nan")),
     ["annotations[2]", "id 3", "keypoints[1]", "nose", "not a finite number"]),
    (lambda d: d["annotations"][1]["bbox"].__setitem__(2, -1),
     ["annotations[1]", "id 2", "negative width"]),
    (lambda d: d["annotations"][0].__setitem__("image_id", 42),
     ["annotations[0]", "id 1", "unknown image id 42"]),
    (lambda d: d["annotations"][6].__setitem__("keypoints", [0] * 42),
     ["annotations[6]", "id 6", "42 values", "51"]),
    (lambda d: d["annotations"][3]["bbox"].__setitem__(0, "30"),
     ["annotations[3]", "id 4", "bbox", "non-numeric"]),
    (lambda d: d["categories"][0].__setitem__("keypoints", list(COCO17.keypoints)[:5]),
     ["match no known skeleton"]),
], ids=["nan", "negative box width", "unknown image", "keypoint count", "string", "category"])
def test_unusable_input_in_a_quirky_file_names_file_and_entry(tmp_path, mutate, needles):
    d = quirky_coco()
    mutate(d)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d, allow_nan=True))
    with pytest.raises(PoseDataError) as exc:
        load_coco_keypoints(p)
    msg = str(exc.value)
    assert msg.startswith(str(p)), msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_reader_scale_bench_runs_small(tmp_path):
    from posedet.bench import reader_scale

    out = tmp_path / "reader_scale.json"
    assert reader_scale.main(["--out", str(out), "--scale", "0.002", "--seed", "3"]) == 0
    r = json.loads(out.read_text())
    f, q = r["file"], r["after_load"]["quirks"]
    assert r["after_load"]["annotations"] == f["annotations"] == round(262_465 * 0.002)
    assert r["after_load"]["images"] == f["images"] == round(118_287 * 0.002)
    assert q["iscrowd"] == f["crowd"] and q["no_labelled_keypoints"] == f["crowd"] + f["box_only"]
    assert q["images_without_annotations"] == f["images"] - f["images_with_persons"]
    assert r["after_load"]["training_persons"] == f["labelled"]
    assert r["load_coco_keypoints"]["seconds"] > 0 and r["load_coco_keypoints"]["peak_rss_gib"] > 0
    assert r["file"]["bytes"] > 0 and len(r["loadavg_before_load"]) == 3
