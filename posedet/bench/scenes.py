"""Synthetic benchmark images with a chosen number of people (the people-count sweep).

Made with the data generator (``posedet.data.synth``: real poses from the pose prior, the same
figure renderer and cluttered backgrounds as the training data), but with the person count
fixed: ``people`` figures on a jittered grid filling an image of fixed size (default 640×480),
person height ≈ the grid cell height. Deterministic in (people, seed). Returns the RGB image,
its JPEG bytes (the end-to-end figure decodes these) and the people's 17 COCO keypoints.

The pose prior comes from ``pose_source`` (a ``pose_prior.npz`` or CrowdPose annotations JSON;
default: the first ``results/*/data/*/*/pose_prior.npz``, then
``../shared/data/crowdpose/crowdpose_val.json``). Without one, a built-in standing pose (with
the prior's jitter switched off) is used and the manifest says so.
"""
from __future__ import annotations

import glob
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = ["BenchScene", "make_scene", "load_prior", "default_pose_source"]


@dataclass
class BenchScene:
    image: np.ndarray          # RGB uint8 [H, W, 3]
    jpeg: bytes                # the same image as JPEG (quality 95)
    keypoints: np.ndarray      # [P, 17, 2] image px of every drawn person (COCO order)
    people: int
    size: tuple[int, int]      # (w, h)
    pose_source: str


# a standing person in the prior's 14-point CrowdPose order, torso-centred, ~unit torso
_STANDING = np.array([[-0.35, -0.55], [0.35, -0.55], [-0.45, 0.0], [0.45, 0.0], [-0.5, 0.45], [0.5, 0.45],
                      [-0.2, 0.55], [0.2, 0.55], [-0.22, 1.3], [0.22, 1.3], [-0.22, 2.05], [0.22, 2.05],
                      [0.0, -1.15], [0.0, -0.7]], dtype=np.float64)


def default_pose_source(root: str | Path = ".") -> str | None:
    root = Path(root)
    found = sorted(glob.glob(str(root / "results" / "*" / "data" / "*" / "*" / "pose_prior.npz")))
    if found:
        return found[0]
    repo = Path(__file__).resolve().parents[2]          # the checkout, wherever it lies
    for cand in (root / ".." / "shared" / "data" / "crowdpose" / "crowdpose_val.json",
                 repo.parent / "shared" / "data" / "crowdpose" / "crowdpose_val.json"):
        if cand.is_file():
            return str(cand)
    return None


def load_prior(pose_source: str | None):
    from posedet.data.pose_prior import PosePrior

    if pose_source is None:
        return None
    return PosePrior.load(pose_source)


def make_scene(people: int, size: tuple[int, int] = (640, 480), seed: int = 0, prior=None,
               pose_source: str | None = None) -> BenchScene:
    from posedet.data.synth import make_person, person_keypoints, render_scene

    w, h = size
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4242, people]))
    cols = max(1, int(math.ceil(math.sqrt(people * w / h))))
    rows = max(1, int(math.ceil(people / cols)))
    cell_w, cell_h = w / cols, h / rows
    scale = 0.8 * cell_h / 3.4                       # px per torso length: head top to feet ≈ 3.2
    persons = []
    cells = rng.permutation(rows * cols)[:people]
    for c in sorted(cells):
        r, q = divmod(int(c), cols)
        centre = ((q + 0.5 + rng.uniform(-0.15, 0.15)) * cell_w, (r + 0.45 + rng.uniform(-0.1, 0.1)) * cell_h)
        pose = prior.sample(rng) if prior is not None else _STANDING
        persons.append(make_person(pose, centre, scale * float(np.exp(rng.normal(0, 0.08))), rng))
    scene = render_scene(persons, (w, h), rng, "coco")
    kps = np.array([person_keypoints(p, "coco")[0] for p in persons], np.float32).reshape(-1, 17, 2)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise RuntimeError("cannot encode the benchmark image as JPEG")
    return BenchScene(image=scene.image, jpeg=buf.tobytes(), keypoints=kps, people=int(people), size=(w, h),
                      pose_source=pose_source or "built-in standing pose (no pose prior found)")
