"""Keypoint skeletons as data: names, flip pairs, OKS sigmas and limbs.

Sigmas are the per-keypoint OKS constants of the COCO keypoint evaluation and of
crowdposetools (CrowdPose reuses COCO's body sigmas and 0.079 for head and neck).
Indices are 0-based everywhere in this package.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Skeleton:
    name: str
    keypoints: tuple[str, ...]
    sigmas: tuple[float, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    limbs: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        k = len(self.keypoints)
        if len(self.sigmas) != k:
            raise ValueError(f"{self.name}: {len(self.sigmas)} sigmas for {k} keypoints")
        for a, b in self.flip_pairs + self.limbs:
            if not (0 <= a < k and 0 <= b < k):
                raise ValueError(f"{self.name}: index pair ({a}, {b}) out of range for {k} keypoints")

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    @property
    def flip_index(self) -> list[int]:
        """flip_index[k] is the keypoint that k becomes under a horizontal flip."""
        idx = list(range(self.num_keypoints))
        for a, b in self.flip_pairs:
            idx[a], idx[b] = b, a
        return idx

    def index(self, name: str) -> int:
        return self.keypoints.index(name)


COCO17 = Skeleton(
    name="coco",
    keypoints=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    sigmas=(0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
            0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    limbs=((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
           (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4),
           (3, 5), (4, 6)),
)

CROWDPOSE14 = Skeleton(
    name="crowdpose",
    keypoints=(
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck",
    ),
    sigmas=(0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
            0.087, 0.087, 0.089, 0.089, 0.079, 0.079),
    flip_pairs=((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)),
    limbs=((12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5),
           (0, 6), (1, 7), (6, 7), (6, 8), (8, 10), (7, 9), (9, 11)),
)

SKELETONS = {s.name: s for s in (COCO17, CROWDPOSE14)}


def get_skeleton(name: str) -> Skeleton:
    try:
        return SKELETONS[name]
    except KeyError:
        raise ValueError(f"unknown skeleton {name!r}; known: {sorted(SKELETONS)}") from None


def skeleton_for_num_keypoints(k: int) -> Skeleton:
    for s in SKELETONS.values():
        if s.num_keypoints == k:
            return s
    raise ValueError(f"no skeleton with {k} keypoints; known: "
                     + ", ".join(f"{s.name} ({s.num_keypoints})" for s in SKELETONS.values()))
