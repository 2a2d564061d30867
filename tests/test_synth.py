import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from posedet import cli
from posedet.data import synth
from posedet.data.crowd_index import crowd_index, crowd_level
from posedet.data.pose_prior import HEAD, LH, NECK, RH, PosePrior
from posedet.draw import contact_sheet, draw_poses
from posedet.skeletons import COCO17, CROWDPOSE14

CROWDPOSE_VAL = Path(__file__).resolve().parents[1].parent / "shared/data/crowdpose/crowdpose_val.json"

# Hand-made CrowdPose-order poses (x, y) for when the real annotations are absent.
_STANDING = [(60, 50), (40, 50), (65, 75), (35, 75), (68, 98), (32, 98), (56, 100), (44, 100),
             (57, 135), (43, 135), (58, 170), (42, 170), (50, 15), (50, 45)]
_WAVING = [(60, 50), (40, 50), (75, 35), (30, 72), (80, 12), (28, 95), (56, 100), (44, 100),
           (62, 133), (40, 134), (70, 165), (38, 170), (52, 15), (50, 45)]


@pytest.fixture(scope="module")
def prior() -> PosePrior:
    if CROWDPOSE_VAL.exists():
        return PosePrior.from_crowdpose_json(CROWDPOSE_VAL)
    kps = np.array([[(x, y, 2) for x, y in p] for p in (_STANDING, _WAVING)], float)
    return PosePrior.from_keypoints(kps)


@pytest.fixture(scope="module")
def prior_npz(prior, tmp_path_factory) -> Path:
    return prior.save(tmp_path_factory.mktemp("prior") / "pose_prior.npz")


@pytest.fixture(scope="module")
def cp_set(prior, tmp_path_factory):
    out = tmp_path_factory.mktemp("cp")
    stats = synth.generate_dataset(out, prior, layout="crowdpose", num_images=12, size=(160, 160), seed=5,
                                   density="mixed", sheet_images=6, progress=False)
    return out, stats


@pytest.fixture(scope="module")
def coco_set(prior, tmp_path_factory):
    out = tmp_path_factory.mktemp("coco")
    synth.generate_dataset(out, prior, layout="coco", num_images=9, size=(160, 160), seed=6,
                           density="mixed", sheet_images=4, progress=False)
    return out


def _pixel(x, y):
    return int(np.floor(y + 0.5)), int(np.floor(x + 0.5))


# ------------------------------------------------------------------ pose prior
def test_pose_prior_normalised_and_augmented(prior, prior_npz):
    assert prior.poses.shape[1:] == (14, 2) and len(prior) >= 2
    torso = np.linalg.norm(prior.poses[:, NECK] - 0.5 * (prior.poses[:, LH] + prior.poses[:, RH]), axis=1)
    assert 0.6 < np.median(torso) < 1.4
    again = PosePrior.load(prior_npz)
    np.testing.assert_array_equal(again.poses, prior.poses)
    rng = np.random.default_rng(0)
    p = prior.sample(rng)
    assert p.shape == (14, 2) and np.isfinite(p).all()
    # Mirroring: x -> -x with left and right swapped (a mirrored frontal person stays frontal).
    still = dict(rot_sigma_deg=0.0, angle_sigma_deg=0.0, stretch_sigma=0.0)
    p0 = prior.sample(np.random.default_rng(5), mirror_p=0.0, **still)
    p1 = prior.sample(np.random.default_rng(5), mirror_p=1.0, **still)
    np.testing.assert_allclose(p1[:, 0], -p0[CROWDPOSE14.flip_index, 0], atol=1e-6)
    np.testing.assert_allclose(p1[:, 1], p0[CROWDPOSE14.flip_index, 1], atol=1e-6)
    assert prior.sample(rng)[HEAD, 1] < prior.sample(rng)[LH, 1] + 5  # heads are (mostly) up


def test_pose_prior_fills_missing_joints():
    kps = np.array([[(x, y, 2) for x, y in _STANDING]], float)
    kps[0, 4, 2] = 0     # left wrist missing: mirrored from the right one
    kps[0, 12, 2] = 0    # head missing
    kps[0, [4, 12], :2] = 0
    pr = PosePrior.from_keypoints(kps, min_labelled=10)
    assert pr.filled[0, 4] and pr.filled[0, 12] and pr.filled[0].sum() == 2
    full = PosePrior.from_keypoints(np.array([[(x, y, 2) for x, y in _STANDING]], float))
    # the filled wrist lands near the true (symmetric) one; the head above the neck
    assert np.linalg.norm(pr.poses[0, 4] - full.poses[0, 4]) < 0.1
    assert pr.poses[0, 12, 1] < pr.poses[0, NECK, 1]
    with pytest.raises(ValueError):
        PosePrior.from_keypoints(kps[:, :, :] * [1, 1, 0])


# ------------------------------------------------------------------ determinism
def test_same_seed_same_data_different_seed_differs(prior, tmp_path):
    kw = dict(layout="crowdpose", num_images=3, size=(96, 96), density="mixed", sheet_images=0, progress=False)
    synth.generate_dataset(tmp_path / "a", prior, seed=11, **kw)
    synth.generate_dataset(tmp_path / "b", prior, seed=11, **kw)
    synth.generate_dataset(tmp_path / "c", prior, seed=12, **kw)
    ja, jb, jc = ((tmp_path / d / "annotations.json").read_bytes() for d in "abc")
    assert ja == jb and ja != jc
    for name in json.loads(ja)["images"]:
        fa, fb = (synth.read_image(tmp_path / d / "images" / name["file_name"]) for d in "ab")
        np.testing.assert_array_equal(fa, fb)
    a0 = synth.generate_image(prior, 0, seed=11, size=(96, 96))
    c0 = synth.generate_image(prior, 0, seed=12, size=(96, 96))
    assert not np.array_equal(a0.image, c0.image)


# ------------------------------------------------------------------ annotations
def _check_file(out: Path, k: int):
    coco = json.loads((out / "annotations.json").read_text())
    ids = [a["id"] for a in coco["annotations"]]
    assert len(set(ids)) == len(ids)
    assert [im["id"] for im in coco["images"]] == list(range(1, len(coco["images"]) + 1))
    sizes = {im["id"]: (im["width"], im["height"]) for im in coco["images"]}
    for im in coco["images"]:
        assert (out / "images" / im["file_name"]).is_file()
    for a in coco["annotations"]:
        w, h = sizes[a["image_id"]]
        kp = np.asarray(a["keypoints"], float).reshape(-1, 3)
        assert kp.shape == (k, 3)
        v = kp[:, 2]
        assert set(np.unique(v)) <= {0, 1, 2}
        assert a["num_keypoints"] == int((v > 0).sum()) >= 1
        assert np.all(kp[v == 0, :2] == 0)
        lab = kp[v > 0]
        assert np.all((lab[:, 0] >= 0) & (lab[:, 0] <= w - 1) & (lab[:, 1] >= 0) & (lab[:, 1] <= h - 1))
        x, y, bw, bh = a["bbox"]
        assert x >= 0 and y >= 0 and bw > 0 and bh > 0 and x + bw <= w and y + bh <= h
        assert 0 < a["area"] <= bw * bh
        assert a["iscrowd"] == 0 and a["category_id"] == 1
    return coco


def test_annotations_self_consistent(cp_set, coco_set):
    out, stats = cp_set
    coco = _check_file(out, 14)
    assert coco["categories"][0]["keypoints"] == list(CROWDPOSE14.keypoints)
    by = {}
    for a in coco["annotations"]:
        by.setdefault(a["image_id"], []).append(a)
    for im in coco["images"]:
        assert im["crowdIndex"] == round(crowd_index(by.get(im["id"], [])), 4)
    assert stats["num_images"] == 12 and stats["generation"]["images_per_s"] > 0
    assert json.loads((out / "stats.json").read_text())["num_persons"] == len(coco["annotations"])
    _check_file(coco_set, 17)


def test_visibility_is_truthful(prior):
    seen = {0: 0, 1: 0, 2: 0}
    for i in range(6):
        si = synth.generate_image(prior, i, seed=21, layout="crowdpose", size=(128, 128))
        for a, lid in zip(si.annotations, si.label_ids):
            kp = np.asarray(a["keypoints"], float).reshape(-1, 3)
            for x, y, v in kp:
                seen[int(v)] += 1
                if v > 0:
                    r, c = _pixel(x, y)
                    # crowdpose layout has no self-hidden points: v=2 <=> own pixel
                    assert (si.label[r, c] == lid) == (v == 2)
            assert a["area"] == int((si.label == lid).sum())
            ys, xs = np.nonzero(si.label == lid)
            x0, y0, bw, bh = a["bbox"]
            assert x0 <= xs.min() and xs.max() < x0 + bw and y0 <= ys.min() and ys.max() < y0 + bh
    assert seen[1] > 0 and seen[2] > 0


def test_person_in_front_occludes_person_behind(prior):
    rng = np.random.default_rng(3)
    pose = prior.sample(rng, mirror_p=0.0)
    size = (160, 160)
    back = synth.make_person(pose, (80, 80), 30, rng)
    alone = synth.render_scene([back], size, rng, "crowdpose", clutter=False)
    kp_alone = np.asarray(alone.annotations[0]["keypoints"]).reshape(-1, 3)
    assert np.all(kp_alone[:, 2] == 2)                       # nothing in front: all visible
    front = synth.make_person(pose, (86, 84), 30, rng)       # same pose, nearly the same place
    scene = synth.render_scene([back, front], size, rng, "crowdpose", clutter=False)
    assert scene.person_index == [0, 1]
    kb, kf = (np.asarray(a["keypoints"]).reshape(-1, 3) for a in scene.annotations)
    assert (kb[:, 2] == 1).sum() >= 7                        # mostly hidden behind the front person
    assert np.all(kf[:, 2] == 2)
    for x, y, v in kb:
        assert scene.label[_pixel(x, y)] == (1 if v == 2 else 2)
    assert scene.annotations[0]["area"] < 0.6 * alone.annotations[0]["area"]
    # the occluded person's box still covers all of its figure (amodal box)
    assert scene.annotations[0]["bbox"] == alone.annotations[0]["bbox"]


def test_coco_layout_face_points_and_pycocotools(prior, coco_set):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO(str(coco_set / "annotations.json"))
    cat = gt.loadCats(1)[0]
    assert cat["keypoints"] == list(COCO17.keypoints)
    assert cat["skeleton"][0] == [16, 14]                  # 1-based like COCO
    anns = gt.loadAnns(gt.getAnnIds())
    assert anns and all(len(a["keypoints"]) == 51 for a in anns)
    dets = gt.loadRes([{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
                       for a in anns])
    ev = COCOeval(gt, dets, "keypoints")
    ev.evaluate(), ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)               # ground truth scores AP 1
    # face points sit on the head, between the neck and the head top; a back-facing head
    # hides its face (v=1), a frontal one shows both eyes
    rng = np.random.default_rng(9)
    hidden_any = visible_both = 0
    for _ in range(40):
        p = synth.make_person(prior.sample(rng), (80, 80), 30, rng)
        xy, hid = synth.person_keypoints(p, "coco")
        head, neck = p.kp14[HEAD], p.kp14[NECK]
        assert np.all(np.linalg.norm(xy[:5] - 0.5 * (head + neck), axis=1) < 0.8 * np.linalg.norm(head - neck) + 8)
        hidden_any += bool(hid[:5].any())
        visible_both += bool(not hid[1] and not hid[2])
    assert hidden_any > 0 and visible_both > 0


def test_crowdpose_density_bins(prior):
    levels = []
    for i in range(60):
        si = synth.generate_image(prior, i, seed=0, layout="crowdpose", size=(256, 256), density="mixed")
        levels.append(crowd_level(si.crowd_index))
    for lv in ("easy", "medium", "hard"):
        assert levels.count(lv) >= 12, (lv, levels.count(lv))
    sparse = [synth.generate_image(prior, i, seed=0, size=(256, 256), density="sparse").crowd_index
              for i in range(4)]
    assert max(sparse) < 0.2


# ------------------------------------------------------------------ drawing and CLI
def test_draw_poses_filled_and_hollow():
    img = np.zeros((64, 64, 3), np.uint8)
    kp = np.zeros((1, 14, 3))
    kp[0, 0] = (20, 20, 2)
    kp[0, 1] = (44, 44, 1)
    out = draw_poses(img, kp, CROWDPOSE14, radius=4)
    assert out[20, 20].any()                 # filled dot
    assert not out[44, 44].any()             # hollow ring: centre untouched
    assert out[44, 48].any()
    assert not img.any()                     # input untouched
    sheet = contact_sheet([img, img, img], [[], [], []], CROWDPOSE14, ncols=2, cell_size=64)
    assert sheet.shape[0] > 2 * 64 and sheet.shape[1] > 2 * 64


def test_contact_sheet_written(cp_set):
    out, _ = cp_set
    sheet = synth.read_image(out / "contact_sheet.png")
    assert sheet.shape[0] >= 320 and sheet.shape[1] >= 3 * 320
    packed = (sheet[..., 0].astype(np.int32) << 16) | (sheet[..., 1].astype(np.int32) << 8) | sheet[..., 2]
    assert sheet.std() > 20 and len(np.unique(packed)) > 1000


def test_cli_end_to_end(prior_npz, tmp_path, capsys):
    out = tmp_path / "set"
    rc = cli.main(["synth", "--layout", "coco", "--num-images", "3", "--size", "96", "80", "--seed", "2",
                   "--density", "0.5", "--pose-source", str(prior_npz), "--out", str(out), "--no-progress"])
    assert rc == 0
    for name in ("annotations.json", "contact_sheet.png", "stats.json", "images/000002.jpg"):
        assert (out / name).is_file(), name
    im = cv2.imread(str(out / "images/000000.jpg"))
    assert im.shape == (80, 96, 3)
    assert not list(out.glob(".*tmp*")) and not list((out / "images").glob(".*tmp*"))
    st = json.loads((out / "stats.json").read_text())
    assert st["generation"]["images_per_s"] > 0 and "crowd_index" in st and "occlusion_rate" in st["keypoints"]
    rc = cli.main(["synth", "--stats-only", str(out / "annotations.json"), "--out", str(tmp_path / "s.json")])
    assert rc == 0 and json.loads((tmp_path / "s.json").read_text())["num_images"] == 3
    assert cli.main(["synth", "--out", str(tmp_path / "x")]) == 2
    assert "--pose-source" in capsys.readouterr().err


# ------------------------------------------------------------------ difficulty knobs
def test_difficulty_validates():
    with pytest.raises(ValueError, match="clutter"):
        synth.Difficulty(clutter="heavy")
    with pytest.raises(ValueError, match="texture"):
        synth.Difficulty(texture="plaid")
    with pytest.raises(ValueError, match="max_people"):
        synth.Difficulty(max_people=0)
    with pytest.raises(ValueError, match="person_scale"):
        synth.Difficulty(person_scale=9.0)


def test_default_difficulty_is_the_original_generator(prior):
    a = synth.generate_image(prior, 3, seed=11, size=(96, 96))
    b = synth.generate_image(prior, 3, seed=11, size=(96, 96), difficulty=synth.Difficulty(clutter="full"))
    assert np.array_equal(a.image, b.image) and a.annotations == b.annotations


def test_clutter_levels_change_only_the_background(prior):
    imgs = {c: synth.generate_image(prior, 4, seed=11, size=(128, 128), difficulty=synth.Difficulty(clutter=c))
            for c in synth.CLUTTER_LEVELS}
    # same people (layout and keypoints) under every clutter level
    kps = [np.array([a["keypoints"] for a in imgs[c].annotations])[:, 0::3] for c in ("none", "light")]
    assert np.allclose(kps[0], kps[1])
    bg = imgs["none"].label == 0
    assert (imgs["none"].image[bg] == 128).all()               # flat grey, nothing else drawn
    light_bg = imgs["light"].image[imgs["light"].label == 0].astype(float)
    full_bg = imgs["full"].image[imgs["full"].label == 0].astype(float)
    # a smooth gradient: neighbouring background pixels differ far less than in full clutter
    assert light_bg.std() > 1.0
    dl = np.abs(np.diff(imgs["light"].image.astype(float), axis=1))[:, :, 0][(imgs["light"].label[:, 1:] == 0)].mean()
    df = np.abs(np.diff(imgs["full"].image.astype(float), axis=1))[:, :, 0][(imgs["full"].label[:, 1:] == 0)].mean()
    assert dl < df and full_bg.size > 0


def test_max_people_and_person_scale(prior):
    capped = [len(synth.generate_image(prior, i, seed=3, size=(128, 128), density="crowded",
                                       difficulty=synth.Difficulty(max_people=2)).annotations) for i in range(6)]
    assert max(capped) <= 2 and min(capped) >= 1

    def sizes(scale):
        torso, areas = [], []
        for i in range(6):
            si = synth.generate_image(prior, i, seed=3, size=(128, 128), density="sparse",
                                      difficulty=synth.Difficulty(clutter="none", person_scale=scale))
            torso += [p.scale for p in si.persons]
            areas += [a["bbox"][2] * a["bbox"][3] for a in si.annotations]
        return np.median(torso), np.mean(areas)

    (t1, a1), (t15, a15) = sizes(1.0), sizes(1.5)
    assert 1.4 < t15 / t1 < 1.6          # the drawn size; boxes grow less (clipped at the border)
    assert a15 > 1.2 * a1


def test_texture_flat_keeps_layout(prior):
    a = synth.generate_image(prior, 2, seed=5, size=(96, 96), difficulty=synth.Difficulty(clutter="none"))
    b = synth.generate_image(prior, 2, seed=5, size=(96, 96), difficulty=synth.Difficulty(clutter="none", texture="flat"))
    assert [x["keypoints"] for x in a.annotations] == [x["keypoints"] for x in b.annotations]
    assert not np.array_equal(a.image, b.image) or all(p.patterns.get("top") == ("flat",) for p in a.persons)


def test_cli_difficulty_flags_recorded_in_stats(prior_npz, tmp_path):
    out = tmp_path / "d"
    rc = cli.main(["synth", "--layout", "crowdpose", "--num-images", "3", "--size", "96", "--seed", "1",
                   "--clutter", "light", "--max-people", "3", "--person-scale", "1.2", "--texture", "flat",
                   "--pose-source", str(prior_npz), "--out", str(out), "--no-progress"])
    assert rc == 0
    gen = json.loads((out / "stats.json").read_text())["generation"]
    assert gen["clutter"] == "light" and gen["max_people"] == 3 and gen["person_scale"] == 1.2
    assert gen["texture"] == "flat"
    info = json.loads((out / "annotations.json").read_text())["info"]
    assert info["clutter"] == "light"
    assert cli.main(["synth", "--num-images", "2", "--person-scale", "0", "--pose-source", str(prior_npz),
                     "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
