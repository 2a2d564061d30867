"""A prior over real 2D human poses, built from CrowdPose annotations.

The synthetic data set draws its people in poses taken from real annotations
(``crowdpose_val.json``: 8,527 people, 14 keypoints in CrowdPose order).  A pose is kept
when its four torso joints (both shoulders, both hips) and at least ``min_labelled`` of its
14 joints are labelled (v > 0); the few missing joints are filled in plausibly:

* neck missing: midpoint of the shoulders; head missing: above the neck, away from the hips;
* one side of a limb pair missing: the labelled side mirrored across the body axis;
* both sides missing: the limb hangs along the torso direction (arms) or stands straight
  (legs), with the population's median segment lengths.

Each pose is normalised: centred on the torso centre (midpoint of neck and mid-hip) and
divided by a robust body scale (a high quantile of segment length / population median
segment length, so a foreshortened torso does not blow the pose up).  One unit is then
about one torso length (neck to mid-hip).  ``PosePrior.sample`` returns augmented poses:
random mirror (x -> -x with left/right swapped), small rotation, joint-angle jitter along
the kinematic chains and a mild anisotropic stretch.

Hand-written: no library offers a pose prior over CrowdPose's keypoint layout; it is a few
numpy array operations.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posedet.skeletons import CROWDPOSE14

# CrowdPose keypoint indices.
LS, RS, LE, RE, LW, RW, LH, RH, LK, RK, LA, RA, HEAD, NECK = range(14)

# Segments used for the robust body scale: (a, b) joint pairs.
SEGMENTS = (
    (NECK, HEAD), (NECK, LS), (NECK, RS), (LS, LE), (LE, LW), (RS, RE), (RE, RW),
    (LS, LH), (RS, RH), (LH, LK), (LK, LA), (RH, RK), (RK, RA),
)
# Typical segment lengths (median over crowdpose_val.json, left flank = 1), used for
# segments a small pose set never labels.
DEFAULT_CANON = (0.47, 0.34, 0.32, 0.52, 0.41, 0.51, 0.41, 1.0, 1.0, 0.72, 0.72, 0.72, 0.72)
# Kinematic chains (root, mid, end) for filling and for joint-angle jitter.
CHAINS = ((LS, LE, LW), (RS, RE, RW), (LH, LK, LA), (RH, RK, RA))
FLIP = CROWDPOSE14.flip_index


def _torso_center(p: np.ndarray) -> np.ndarray:
    return 0.5 * (p[..., NECK, :] + 0.5 * (p[..., LH, :] + p[..., RH, :]))


def _seg_lengths(p: np.ndarray) -> np.ndarray:
    """[..., len(SEGMENTS)] segment lengths."""
    a = np.array([s[0] for s in SEGMENTS])
    b = np.array([s[1] for s in SEGMENTS])
    return np.linalg.norm(p[..., a, :] - p[..., b, :], axis=-1)


def _robust_scale(lengths: np.ndarray, mask: np.ndarray, canon: np.ndarray, q: float = 0.8) -> np.ndarray:
    """Per pose: q-quantile over labelled segments of length / canonical length."""
    # Vectorised nan-quantile (np.nanquantile loops over rows in Python): NaNs sort last.
    ratio = np.sort(np.where(mask, lengths / canon, np.nan), axis=-1)
    m = mask.sum(-1)
    pos = q * np.maximum(m - 1, 0)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, np.maximum(m - 1, 0))
    rows = np.arange(len(ratio))
    a, b = ratio[rows, lo], ratio[rows, hi]
    return np.where(m > 0, a + (b - a) * (pos - lo), np.nan)


def _fill_missing(p: np.ndarray, lab: np.ndarray, canon: dict[tuple[int, int], float], scale: float) -> np.ndarray:
    """Fill unlabelled joints of one pose (in image units) in place; returns p."""
    p = p.copy()
    lab = lab.copy()
    if not lab[NECK]:
        p[NECK] = 0.5 * (p[LS] + p[RS])
        lab[NECK] = True
    mid_hip = 0.5 * (p[LH] + p[RH])
    down = mid_hip - p[NECK]
    down /= max(np.linalg.norm(down), 1e-6)
    if not lab[HEAD]:
        p[HEAD] = p[NECK] - down * canon[(NECK, HEAD)] * scale
        lab[HEAD] = True
    # Body axis for mirroring: the line through the neck along `down`.
    normal = np.array([-down[1], down[0]])

    def mirror(q: np.ndarray) -> np.ndarray:
        d = q - p[NECK]
        return q - 2.0 * np.dot(d, normal) * normal

    for (r0, m0, e0), (r1, m1, e1) in ((CHAINS[0], CHAINS[1]), (CHAINS[2], CHAINS[3])):
        for a, b in ((m0, m1), (e0, e1)):
            if lab[a] and not lab[b]:
                p[b] = mirror(p[a]) + (p[r1] - mirror(p[r0]))
                lab[b] = True
            elif lab[b] and not lab[a]:
                p[a] = mirror(p[b]) + (p[r0] - mirror(p[r1]))
                lab[a] = True
    for root, mid, end in CHAINS:
        if not lab[mid]:
            if lab[end]:
                p[mid] = 0.5 * (p[root] + p[end])
            else:
                p[mid] = p[root] + down * canon[(root, mid)] * scale
            lab[mid] = True
        if not lab[end]:
            d = p[mid] - p[root]
            d = d / max(np.linalg.norm(d), 1e-6)
            p[end] = p[mid] + d * canon[(mid, end)] * scale
            lab[end] = True
    return p


@dataclass
class PosePrior:
    """Normalised real poses ``poses[M, 14, 2]`` (CrowdPose order, torso-centred, ~unit torso).

    ``filled[M, 14]`` marks joints that were filled in rather than annotated;
    ``canon[len(SEGMENTS)]`` is the median segment length in normalised units.
    """

    poses: np.ndarray
    filled: np.ndarray
    canon: np.ndarray

    def __len__(self) -> int:
        return len(self.poses)

    # ------------------------------------------------------------------ building / caching
    @classmethod
    def from_crowdpose_json(cls, path: str | Path, min_labelled: int = 10) -> "PosePrior":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: cannot read pose annotations: {e}") from e
        anns = data.get("annotations") if isinstance(data, dict) else None
        if not anns:
            raise ValueError(f"{path}: no 'annotations' list")
        kps = []
        for a in anns:
            k = a.get("keypoints")
            if k is None or len(k) != 3 * 14:
                raise ValueError(f"{path}: annotation id={a.get('id')} has "
                                 f"{None if k is None else len(k) // 3} keypoints, expected 14 (CrowdPose order)")
            kps.append(k)
        return cls.from_keypoints(np.asarray(kps, dtype=np.float64).reshape(-1, 14, 3), min_labelled)

    @classmethod
    def from_keypoints(cls, kps: np.ndarray, min_labelled: int = 10) -> "PosePrior":
        """Build from raw CrowdPose keypoints ``[N, 14, 3]`` (image pixels, v flags)."""
        lab = kps[..., 2] > 0
        keep = (lab.sum(1) >= min_labelled) & lab[:, [LS, RS, LH, RH]].all(1)
        xy, lab = kps[keep, :, :2], lab[keep]
        if len(xy) == 0:
            raise ValueError(f"no pose with the torso and >= {min_labelled} of 14 joints labelled")
        a = np.array([s[0] for s in SEGMENTS])
        b = np.array([s[1] for s in SEGMENTS])
        seg_mask = lab[:, a] & lab[:, b]
        lengths = _seg_lengths(xy)
        # Canonical segment lengths: alternate robust per-pose scale and population medians.
        scale = np.linalg.norm(xy[:, NECK] - 0.5 * (xy[:, LH] + xy[:, RH]), axis=-1)
        scale = np.where(lab[:, NECK], scale, np.linalg.norm(xy[:, LS] - xy[:, LH], axis=-1))
        scale = np.maximum(scale, 1e-3)
        canon = np.array(DEFAULT_CANON)
        seen = seg_mask.any(0)
        flank = list(SEGMENTS).index((LS, LH))
        for _ in range(4):
            r = np.where(seg_mask[:, seen], lengths[:, seen] / scale[:, None], np.nan)
            canon[seen] = np.nanmedian(r, axis=0)
            canon[~seen] = np.asarray(DEFAULT_CANON)[~seen] * canon[flank]  # never labelled: typical
            canon = canon / canon[flank]  # unit: left flank ~ torso length
            scale = np.maximum(_robust_scale(lengths, seg_mask, canon), 1e-3)
        canon_d = {s: float(c) for s, c in zip(SEGMENTS, canon)}
        out = np.empty_like(xy)
        for i in range(len(xy)):
            out[i] = _fill_missing(xy[i], lab[i], canon_d, scale[i])
        out = (out - _torso_center(out)[:, None, :]) / scale[:, None, None]
        # Drop degenerate or wildly stretched poses (annotation slips).
        extent = np.abs(out).max(axis=(1, 2))
        ok = np.isfinite(out).all(axis=(1, 2)) & (extent < 4.0)
        return cls(out[ok].astype(np.float32), ~lab[ok], canon.astype(np.float32))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, poses=self.poses, filled=self.filled, canon=self.canon)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PosePrior":
        """Load a cached ``.npz`` prior or build one from a CrowdPose ``.json``."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"pose source {path} does not exist")
        if path.suffix == ".npz":
            with np.load(path) as z:
                return cls(z["poses"], z["filled"], z["canon"])
        return cls.from_crowdpose_json(path)

    # ------------------------------------------------------------------ sampling
    def sample(self, rng: np.random.Generator, *, mirror_p: float = 0.5, rot_sigma_deg: float = 8.0,
               angle_sigma_deg: float = 10.0, stretch_sigma: float = 0.05) -> np.ndarray:
        """One augmented normalised pose ``[14, 2]`` (torso-centred, ~unit torso)."""
        p = self.poses[rng.integers(len(self.poses))].astype(np.float64)
        if rng.random() < mirror_p:
            p = p[FLIP] * [-1.0, 1.0]
        else:
            p = p.copy()
        # Joint-angle jitter along the four limb chains at once (keeps segment lengths):
        # mid and end turn about the root by a1, then the end about the mid by a2.
        a = np.deg2rad(rng.normal(0.0, angle_sigma_deg, (4, 2)))
        root, mid, end = _CH[:, 0], _CH[:, 1], _CH[:, 2]
        p[mid] = _rot(p[mid] - p[root], a[:, 0]) + p[root]
        p[end] = _rot(p[end] - p[root], a[:, 0]) + p[root]
        p[end] = _rot(p[end] - p[mid], a[:, 1]) + p[mid]
        p[HEAD] = _rot((p[HEAD] - p[NECK])[None], np.deg2rad(rng.normal(0.0, angle_sigma_deg * 0.7, 1)))[0] + p[NECK]
        # Global small rotation about the torso centre and mild stretch.
        rot = np.deg2rad(np.clip(rng.normal(0.0, rot_sigma_deg), -3 * rot_sigma_deg, 3 * rot_sigma_deg))
        p = _rot(p, np.full(14, rot))
        p *= np.exp(rng.normal(0.0, stretch_sigma, 2))
        return p


_CH = np.array(CHAINS)


def _rot(d: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rotate vectors d[i] by angles[i]."""
    c, s = np.cos(angles), np.sin(angles)
    return np.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]], axis=1)
