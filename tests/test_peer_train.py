"""YOLO11n-pose trained as the peer (``posedet peer-train`` / ``peer-predict``, rules/peers.smk):
the conversion to Ultralytics' pose format (labels, flip_idx per layout, normalised coordinates,
unlabelled keypoints as 0 0 0), clear errors on bad input, a one-epoch training + prediction +
``posedet evaluate`` with the network cut off, and the workflow's peer jobs (dry run)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import make_synth
from posedet import presets as P
from posedet.data.reader import load_coco_keypoints
from posedet.peers import yolo_train as Y
from posedet.skeletons import COCO17, CROWDPOSE14

REPO = Path(__file__).resolve().parents[1]

# flip_idx written out by hand (not from skeletons.py): what each layout's left/right pairs give
FLIP = {
    "crowdpose": [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13],
    "coco": [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15],
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Four 96-px synthetic images per layout."""
    root = tmp_path_factory.mktemp("peer_data")
    return {layout: make_synth(root / layout, layout, num_images=4, size=96, seed=3 + i)
            for i, layout in enumerate(("crowdpose", "coco"))}


def _edited_copy(src: dict, dst: Path) -> tuple[str, dict]:
    """A copy of a synthetic annotation file (same images) with: one keypoint of the first person
    unlabelled (v = 0, coordinates left in), one crowd region and one person without keypoints
    added to the first image (neither may become a label line)."""
    data = json.loads(Path(src["ann"]).read_text())
    a0 = data["annotations"][0]
    a0["keypoints"][3:6] = [40.0, 41.0, 0]
    k = len(a0["keypoints"]) // 3
    nid = max(a["id"] for a in data["annotations"]) + 1
    data["annotations"] += [
        {"id": nid, "image_id": a0["image_id"], "category_id": 1, "iscrowd": 1, "bbox": [1, 1, 30, 30],
         "area": 900.0, "num_keypoints": 0, "keypoints": [0] * (3 * k)},
        {"id": nid + 1, "image_id": a0["image_id"], "category_id": 1, "iscrowd": 0, "bbox": [50, 50, 20, 20],
         "area": 400.0, "num_keypoints": 0, "keypoints": [0] * (3 * k)},
    ]
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(data))
    return str(dst), data


@pytest.mark.parametrize("layout", ["crowdpose", "coco"])
def test_conversion_labels_and_flip_idx(tiny, tmp_path, layout):
    src = tiny[layout]
    ann, data = _edited_copy(src, tmp_path / "ann" / "annotations.json")
    out = tmp_path / "data"
    data_yaml, info = Y.write_dataset(ann, src["ann"], out, train_images=src["images"])
    skel = CROWDPOSE14 if layout == "crowdpose" else COCO17
    k = skel.num_keypoints
    spec = yaml.safe_load(Path(data_yaml).read_text())
    assert spec["kpt_shape"] == [k, 3] and spec["flip_idx"] == FLIP[layout] == info["flip_idx"]
    assert spec["names"] == {0: "person"} and Path(spec["path"]).is_absolute()
    # the flip maps every left_* to its right_* and back, and the others to themselves
    for i, j in enumerate(spec["flip_idx"]):
        a, b = skel.keypoints[i], skel.keypoints[j]
        assert b == a.replace("left", "#").replace("right", "left").replace("#", "right"), (a, b)

    index = load_coco_keypoints(ann, src["images"])
    first = index.images[0].id
    for rec, a in zip(index.images, index.annotations):
        stem = Path(rec.file_name).with_suffix("")
        img = out / "images" / "train" / rec.file_name
        assert img.is_symlink() and img.resolve() == Path(rec.path).resolve()
        lines = (out / "labels" / "train" / f"{stem}.txt").read_text().splitlines()
        keep = [i for i in range(len(a)) if not a.iscrowd[i] and a.num_keypoints[i] >= 1]
        assert len(lines) == len(keep)          # the crowd region and the keypoint-less person are left out
        for line, i in zip(lines, keep):
            f = line.split()
            assert len(f) == 5 + 3 * k and f[0] == "0"
            v = np.array(f[1:], float)
            kp = v[4:].reshape(k, 3)
            xy = np.concatenate([v[:4], kp[:, :2].ravel()])
            assert ((xy >= 0) & (xy <= 1)).all(), line           # normalised
            assert set(kp[:, 2]) <= {0, 1, 2}
            gt = a.keypoints[i]
            lab = gt[:, 2] > 0
            assert (kp[~lab] == 0).all()        # an unlabelled keypoint is 0 0 0, whatever its x, y
            assert np.array_equal(kp[lab, 2], gt[lab, 2])
            np.testing.assert_allclose(kp[lab, 0] * rec.width, np.clip(gt[lab, 0], 0, rec.width), atol=1e-3)
            np.testing.assert_allclose(kp[lab, 1] * rec.height, np.clip(gt[lab, 1], 0, rec.height), atol=1e-3)
            x, y, w, h = a.boxes[i]
            x0, y0 = max(x, 0), max(y, 0)
            x1, y1 = min(x + w, rec.width), min(y + h, rec.height)
            np.testing.assert_allclose(v[:4] * [rec.width, rec.height, rec.width, rec.height],
                                       [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], atol=1e-3)
        if rec.id == first:
            assert " ".join(lines[0].split()[5 + 3:5 + 6]) == "0 0 0"   # the keypoint made unlabelled above
    assert info["train"]["images"] == 4 and info["val"]["images"] == 4
    assert info["train"]["persons"] == sum(int(((a.iscrowd == 0) & (a.num_keypoints >= 1)).sum())
                                           for a in index.annotations)


def test_bad_inputs_are_clear_errors(tiny, tmp_path):
    cp, co = tiny["crowdpose"], tiny["coco"]
    with pytest.raises(Y.PeerError, match="different layouts"):
        Y.write_dataset(cp["ann"], co["ann"], tmp_path / "a")
    with pytest.raises(Y.PeerError, match=r"4 of 4 training images missing under .*nowhere"):
        Y.write_dataset(cp["ann"], cp["ann"], tmp_path / "b", train_images=str(tmp_path / "nowhere"))
    with pytest.raises(Y.PeerError, match="annotation file not found"):
        Y.write_dataset(str(tmp_path / "none.json"), cp["ann"], tmp_path / "c")
    data = json.loads(Path(cp["ann"]).read_text())
    data["images"][0]["width"] = 200                       # the labels would be normalised wrongly
    bad = tmp_path / "d" / "annotations.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps(data))
    with pytest.raises(Y.PeerError, match="the image is 96x96.*says 200x96"):
        Y.write_dataset(str(bad), cp["ann"], tmp_path / "e", train_images=cp["images"])
    data = json.loads(Path(cp["ann"]).read_text())
    data["categories"][0]["keypoints"] = data["categories"][0]["keypoints"][:13]   # no known layout
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="match no known skeleton"):
        Y.write_dataset(str(bad), cp["ann"], tmp_path / "f", train_images=cp["images"])
    with pytest.raises(Y.PeerError, match="exactly one of"):
        Y.train(cp["ann"], cp["ann"], tmp_path / "g", images_budget=4, epochs=1)
    assert Y.epochs_for_budget(6400, 1000) == 6 and Y.epochs_for_budget(120, 8) == 15
    assert Y.epochs_for_budget(3, 1000) == 1
    assert Y.default_images(cp["ann"], None) == str(Path(cp["ann"]).resolve().parent / "images")


_NO_NETWORK = '''
import os, socket
def _deny(what):
    def f(*a, **k):
        with open(os.environ["NONET_LOG"], "a") as fh:
            fh.write(what + "\\n")
        raise OSError("network disabled by the test (" + what + ")")
    return f
socket.socket.connect = _deny("connect")
socket.socket.connect_ex = _deny("connect_ex")
socket.getaddrinfo = _deny("getaddrinfo")
socket.create_connection = _deny("create_connection")
'''


def _run(args, tmp_path, timeout=240):
    """``python -m posedet ARGS`` in a fresh process whose every socket connection fails (and is
    logged): the run must be offline."""
    site = tmp_path / "nonet"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_NO_NETWORK)
    env = {k: v for k, v in os.environ.items() if not k.startswith("YOLO_")}
    env.update({"PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "NONET_LOG": str(tmp_path / "network.log"),
                "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    return subprocess.run([sys.executable, "-m", "posedet", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_train_predict_evaluate_offline(tiny, tmp_path):
    # imported in a child process: importing Ultralytics here would write its settings into ~/.config
    probe = subprocess.run([sys.executable, "-c", "import ultralytics.engine.trainer, polars"], capture_output=True,
                           text=True, env=dict(os.environ, YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(tmp_path / "probe")))
    if probe.returncode != 0:
        pytest.skip("ultralytics' trainer is not usable here (`make install` installs it: ultralytics --no-deps, "
                    f"polars): {probe.stderr.strip().splitlines()[-1:]}")
    cp, co = tiny["crowdpose"], tiny["coco"]
    run = tmp_path / "run"
    t0 = time.perf_counter()
    out = _run(["peer-train", "--train-ann", cp["ann"], "--val-ann", cp["ann"], "--out", str(run),
                "--images-budget", "4", "--imgsz", "64", "--batch", "4", "--seed", "0", "--threads", "1"], tmp_path)
    train_s = time.perf_counter() - t0
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    print(f"peer-train, 1 epoch of 4 images at 64 px: {train_s:.1f} s wall (process)")
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "finished" and s["epochs"] == 1 and s["images_seen"] == 4 and s["images_per_epoch"] == 4
    assert s["imgsz"] == 64 and s["batch"] == 4 and s["seed"] == 0 and s["threads"] == 1 == s["torch_threads"]
    assert s["budget"] == {"images": 4} and s["versions"]["ultralytics"] and s["versions"]["torch"]
    assert len(s["load_average_before"]) == len(s["load_average_after"]) == 3 and s["wall_s"] > 0
    assert s["train_args"]["pretrained"] is False and s["train_args"]["amp"] is False
    assert s["train_args"]["plots"] is False and s["train_args"]["workers"] == 0
    assert s["data"]["layout"] == "crowdpose" and s["data"]["flip_idx"] == FLIP["crowdpose"]
    assert (run / "weights" / "last.pt").is_file() and s["weights"]["last"] == "weights/last.pt"
    assert (run / "ultralytics_settings").is_dir()            # its settings file stays in the run folder
    assert not list(run.parent.glob("runs")) and not (REPO / "runs").exists()

    res = tmp_path / "pred" / "r.json"
    out = _run(["peer-predict", "--checkpoint", str(run / "weights" / "last.pt"), "--ann", cp["ann"],
                "--out", str(res)], tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    dets = json.loads(res.read_text())
    ids = {im["id"] for im in json.loads(Path(cp["ann"]).read_text())["images"]}
    for d in dets:
        assert d["image_id"] in ids and d["category_id"] == 1 and len(d["keypoints"]) == 3 * 14
        assert 0 <= d["score"] <= 1
    metrics = tmp_path / "m.json"
    out = _run(["evaluate", "--gt", cp["ann"], "--results", str(res), "--metric", "auto", "--out", str(metrics)],
               tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads(metrics.read_text())
    assert m["provenance"]["metric"] == "crowdpose" and 0 <= m["metrics"]["AP"] <= 1

    # a CrowdPose-layout checkpoint on a COCO-layout file: an error, nothing written
    wrong = tmp_path / "wrong.json"
    out = _run(["peer-predict", "--checkpoint", str(run / "weights" / "last.pt"), "--ann", co["ann"],
                "--out", str(wrong)], tmp_path)
    assert out.returncode == 2 and "wrong layout" in out.stderr and not wrong.exists()
    # missing images: an error, nothing written
    out = _run(["peer-predict", "--checkpoint", str(run / "weights" / "last.pt"), "--ann", cp["ann"],
                "--images", str(tmp_path / "nowhere"), "--out", str(wrong)], tmp_path)
    assert out.returncode == 2 and "missing" in out.stderr and not wrong.exists()
    assert not (tmp_path / "network.log").exists(), (tmp_path / "network.log").read_text()


def test_presets_peer_evals_and_budget():
    smoke = P.load_preset("smoke", REPO)
    variants = P.load_variants(REPO)
    recipe = P.recipe_file(smoke, REPO)
    evs = P.peer_evals(smoke)
    assert {(e.dataset, e.variant, e.seed, e.set, e.mode, e.nms) for e in evs} == {
        ("synth_coco", "yolo11n_pose", 0, "synth_coco/val", "refined", "oks"),
        ("synth_crowdpose", "yolo11n_pose", 0, "synth_crowdpose/val", "refined", "oks")}
    assert evs[0].predictions("r").endswith("/yolo11n_pose/seed0/predictions/synth_coco-val.refined.oks.json")
    assert P.peer_models(smoke, "table4") == [("synth_crowdpose", "yolo11n_pose", 0)]
    three = P.load_preset("smoke", REPO, overrides={"seeds": 3})
    assert P.peer_models(three, "table5") == [("synth_crowdpose", "yolo11n_pose", s) for s in range(3)]
    assert P.peer_models(three, "table1") == [("synth_coco", "yolo11n_pose", 0)]    # table1 is not seeded
    b = P.peer_budget(smoke, variants, recipe, "synth_crowdpose")
    assert b == {"images": 30 * 4, "iterations": 30, "batch_size": 4, "imgsz": 128, "budget": 1.0}
    assert P.peer_budget(smoke, variants, recipe, "synth_crowdpose", budget=2)["images"] == 240
    paper = P.load_preset("paper", REPO)                   # a recipe in epochs: the same epochs
    b = P.peer_budget(paper, variants, P.recipe_file(paper, REPO), "crowdpose", budget=0.5)
    assert b["epochs"] == 105 and "images" not in b and b["imgsz"] == 512
    bad = dict(smoke, experiments={"t": {"train": "synth_coco", "eval": ["synth_coco/val"], "peers": ["yolo99"]}})
    with pytest.raises(P.PresetError, match="unknown peer 'yolo99'"):
        P.peer_evals(bad)


def test_dry_run_lists_peer_jobs(tmp_path):
    snake = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"), "-n",
             "--directory", str(tmp_path)]
    out = subprocess.run(snake + ["--config", "preset=smoke", "--", "reproduce_tables"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    text = out.stdout
    table = text[text.index("Job stats:"):]
    counts = {b[0]: int(b[1]) for b in (line.split() for line in table.splitlines()[3:]) if len(b) == 2 and b[1].isdigit()}
    assert counts["peer_train"] == 2 and counts["peer_predict"] == 2
    assert counts["evaluate"] == counts["predict"] + counts["peer_predict"]
    res = "results/smoke"
    for ds in ("synth_coco", "synth_crowdpose"):
        run = f"{res}/{ds}/yolo11n_pose/seed0"
        for path in (f"{run}/train/summary.json", f"{run}/train/weights/last.pt",
                     f"{run}/predictions/{ds}-val.refined.oks.json", f"{run}/metrics/{ds}-val.refined.oks.json"):
            assert path in text, path
        assert (f"peer-train --model yolo11n-pose.yaml --train-ann {res}/data/{ds}/train/annotations.json "
                f"--images {res}/data/{ds}/train/images --val-ann {res}/data/{ds}/val/annotations.json") in text
    # the smoke recipe: 30 iterations x batch 4 = 120 images; its input size 128
    assert text.count("--images-budget 120 --imgsz 128 --batch 4 --seed 0 --threads 1") == 2
    assert "evaluate --gt results/smoke/data/synth_crowdpose/val/annotations.json --results " \
           f"{res}/synth_crowdpose/yolo11n_pose/seed0/predictions/synth_crowdpose-val.refined.oks.json" in text
    # ablation_crowdpose asks for the CrowdPose-layout peer only; the budget knob scales its images once
    out = subprocess.run(snake + ["--config", "preset=smoke", "budget=2", "--", "ablation_crowdpose"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "/synth_crowdpose/yolo11n_pose/seed0/metrics/synth_crowdpose-val.refined.oks.json" in out.stdout
    assert "synth_coco/yolo11n_pose" not in out.stdout
    assert out.stdout.count("--images-budget 240 --imgsz 128 --batch 4") == 1
