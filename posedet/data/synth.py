"""``posedet synth``: the embedded synthetic multi-person keypoint data set.

Seeded and deterministic (image i is drawn from ``SeedSequence([seed, i])``; the same seed
gives a byte-identical ``annotations.json`` and identical images).  Each image shows people
drawn as articulated figures -- tapered limb capsules, torso and pelvis polygons, neck, head
ellipse with hair, ears, eyes and nose, hands and shoes -- in real human poses from a
:class:`~posedet.data.pose_prior.PosePrior` (CrowdPose annotations), with clothing colours
and textures (stripes, checks, noise, blotches), outlines and shading, over cluttered
backgrounds (gradients, low-frequency noise, stripes, rectangles, ellipses, lines) with
distractors that are not people (limb-like sticks, skin-coloured head-like blobs, poles);
a few distractors are drawn in front of the people.

Ground truth comes from the renderer, not from guesses:

* people are painted back to front (painter's order) into the image and into an integer
  label map (0 background, i + 1 person i, -1 foreground distractor);
* v=2: the keypoint's pixel (floor(x + 0.5), floor(y + 0.5)) belongs to that person in the
  final label map and, for face points, is not turned away (head yaw); v=1: inside the image
  but covered by another person / a foreground distractor, or a face point on the far side
  of the head; v=0: outside the image, stored as (0, 0, 0) as COCO does;
* ``area`` = that person's pixels in the final label map (its visible segment area);
* ``bbox`` = box of all pixels the person's figure covers inside the image, occluded parts
  included (the amodal box a human annotator would draw), in COCO [x, y, w, h];
* people with no labelled keypoint or no visible pixel are dropped (their pixels stay).

Layouts: ``coco`` (17 keypoints; face points derived from the head: head direction = neck to
head top, a random yaw turns the face and decides which eyes / ears are hidden by the head
itself) and ``crowdpose`` (14 keypoints in CrowdPose order, each image carries
``crowdIndex``).  Crowding: each image gets a target crowd level (easy / medium / hard by
the CrowdPose crowd index) and its people are placed to hit it (sparse scattering, loose
rows, packed multi-row groups), re-sampling the layout until the index lands near a target
drawn inside the level (hard aims at 0.8-1.5, like most of CrowdPose's hard images).
``--density mixed`` cycles the three levels in shuffled blocks of three (a third each),
``sparse`` / ``crowded`` use only easy / hard, a float t in [0, 1] draws the level with
weights ((1-t)^2, 2t(1-t), t^2).

Images are JPEG quality 95 by default: ~3.5x smaller than PNG on these noisy textures, with
artefacts like the real COCO / CrowdPose JPEGs; labels come from the renderer, not the file.

Hand-written renderer: no maintained library renders labelled articulated figures with
per-pixel ownership; cv2 does all rasterising.
"""
from __future__ import annotations

import argparse
import colorsys
import hashlib
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from posedet.data.crowd_index import (LEVELS, annotation_stats, crowd_index, crowd_index_arrays,
                                     crowd_level)
from posedet.data.pose_prior import (HEAD, LA, LE, LH, LK, LS, LW, NECK, RA, RE, RH, RK, RS, RW,
                                     PosePrior)
from posedet.skeletons import COCO17, CROWDPOSE14, Skeleton

GENERATOR_VERSION = 1
LAYOUTS: dict[str, Skeleton] = {"coco": COCO17, "crowdpose": CROWDPOSE14}
DENSITIES = ("sparse", "mixed", "crowded")
# Crowd-index interval each target level aims at (easy: anything below 0.2).
LEVEL_TARGETS = {"easy": (0.0, 0.2), "medium": (0.2, 0.8), "hard": (0.8, 1.5)}
IMAGE_FORMATS = ("jpg", "png")
# Background/appearance difficulty (``--clutter``): ``full`` is the cluttered scene (background
# shapes, stripes and lines, distractors behind and in front of people, colour cast, sensor noise
# and blur); ``light`` keeps a smooth gradient background with mild noise and nothing that looks
# like a body part; ``none`` is flat grey with nothing else drawn.
CLUTTER_LEVELS = ("none", "light", "full")
TEXTURES = ("full", "flat")


@dataclass(frozen=True)
class Difficulty:
    """The generator's difficulty knobs, one per factor the learnability study varies.

    clutter: background / distractors (CLUTTER_LEVELS).  max_people: cap on people per image
    (crowded groups draw up to 9).  person_scale: multiplies every person's size (1 = as drawn
    from the level's scale range).  texture: ``full`` clothing patterns, ``flat`` plain colours.
    The defaults are the original generator (byte-identical images).
    """

    clutter: str = "full"
    max_people: int = 9
    person_scale: float = 1.0
    texture: str = "full"

    def __post_init__(self):
        if self.clutter not in CLUTTER_LEVELS:
            raise ValueError(f"clutter must be one of {CLUTTER_LEVELS}, got {self.clutter!r}")
        if self.texture not in TEXTURES:
            raise ValueError(f"texture must be one of {TEXTURES}, got {self.texture!r}")
        if int(self.max_people) < 1:
            raise ValueError(f"max_people must be >= 1, got {self.max_people}")
        if not 0.2 <= float(self.person_scale) <= 5.0:
            raise ValueError(f"person_scale must be in [0.2, 5], got {self.person_scale}")

    def as_dict(self) -> dict:
        return {"clutter": self.clutter, "max_people": int(self.max_people),
                "person_scale": float(self.person_scale), "texture": self.texture}

_SHIFT = 4  # cv2 sub-pixel drawing: coordinates in 1/16 px
_F = 1 << _SHIFT
_KERNEL3 = np.ones((3, 3), np.uint8)

# Colour groups of a figure's parts.
GROUPS = ("skin", "skin_dark", "top", "bottom", "hair", "shoe", "eye", "other")
_G = {g: i for i, g in enumerate(GROUPS)}
_SKIN_TONES = np.array([(255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66),
                        (141, 85, 36), (92, 51, 23), (255, 205, 148), (234, 192, 134)], np.float32)
_HAIR = np.array([(20, 15, 12), (45, 30, 20), (90, 60, 35), (150, 110, 60), (200, 170, 110),
                  (120, 120, 120), (200, 200, 200), (130, 50, 25)], np.float32)


# ---------------------------------------------------------------------------- figures
@dataclass
class Part:
    kind: str          # 'capsule' (p0, p1, r0, r1) | 'poly' (points) | 'ellipse' (center, axes, angle_deg)
    group: str
    geom: tuple


@dataclass
class Figure:
    """Anything painted from parts: a person or a distractor."""

    parts: list[Part]
    colors: dict[str, np.ndarray]
    patterns: dict[str, tuple]
    scale: float
    light: tuple[float, float] = (0.0, 0.1)   # light direction (rad), strength
    mask: np.ndarray | None = None             # part ids (1-based draw order) in the crop
    offset: tuple[int, int] = (0, 0)           # crop's (x0, y0) in the image


@dataclass
class Person(Figure):
    kp14: np.ndarray = field(default_factory=lambda: np.zeros((14, 2)))  # CrowdPose order, px
    face: np.ndarray = field(default_factory=lambda: np.zeros((5, 2)))   # nose, l/r eye, l/r ear
    face_hidden: np.ndarray = field(default_factory=lambda: np.zeros(5, bool))


def _unit(v: np.ndarray, fallback=(0.0, -1.0)) -> np.ndarray:
    n = float(np.hypot(v[0], v[1]))
    return v / n if n > 1e-9 else np.asarray(fallback, np.float64)


def _random_color(rng: np.random.Generator, sat=(0.15, 0.9), val=(0.15, 0.95)) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val))
    return np.array([r, g, b], np.float32) * 255.0


def _cloth_pattern(rng: np.random.Generator, base: np.ndarray, s: float) -> tuple:
    kind = rng.choice(["flat", "stripes", "noise", "checker", "blotch"], p=[0.3, 0.25, 0.2, 0.1, 0.15])
    if kind == "stripes":
        other = base * rng.uniform(0.3, 0.7) if rng.random() < 0.5 else _random_color(rng)
        return ("stripes", rng.uniform(0, np.pi), rng.uniform(2.5, 3.0 + 0.25 * s), rng.uniform(0.3, 0.6), other)
    if kind == "checker":
        other = base * rng.uniform(0.4, 0.75) if rng.random() < 0.6 else _random_color(rng)
        return ("checker", rng.uniform(2.0, 2.0 + 0.2 * s), other)
    if kind == "noise":
        return ("noise", rng.uniform(6, 22))
    if kind == "blotch":
        return ("blotch", rng.uniform(10, 35), rng.uniform(3.0, 3.0 + 0.3 * s))
    return ("flat",)


def make_person(pose: np.ndarray, center, scale: float, rng: np.random.Generator) -> Person:
    """A person figure: ``pose`` [14, 2] normalised (PosePrior units), placed at ``center``
    (torso centre, px) with ``scale`` px per torso length; appearance drawn from ``rng``."""
    kp = np.asarray(pose, np.float64) * scale + np.asarray(center, np.float64)
    s = float(scale)
    r = s * rng.uniform(0.85, 1.2)            # build: limb thickness
    mid_hip = 0.5 * (kp[LH] + kp[RH])
    up_body = _unit(kp[NECK] - mid_hip)
    p_body = np.array([-up_body[1], up_body[0]])   # viewer's right for an upright person
    # Body yaw from the shoulders' projection (0 facing the camera, pi facing away).
    c = float(np.dot(kp[LS] - kp[RS], p_body)) / (0.66 * s)
    yaw = math.acos(float(np.clip(c, -1.0, 1.0))) * (1 if rng.random() < 0.5 else -1)
    yaw += rng.normal(0.0, 0.15)
    head_yaw = yaw + float(np.clip(rng.normal(0.0, 0.4), -1.0, 1.0))

    # ---- appearance
    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] * rng.uniform(0.85, 1.08) + rng.normal(0, 6, 3)
    top = _random_color(rng)
    bottom = (np.array([40, 60, 110], np.float32) * rng.uniform(0.6, 1.4) if rng.random() < 0.3
              else _random_color(rng, val=(0.1, 0.8)))
    colors = {
        "skin": skin, "skin_dark": skin * 0.88, "top": top, "bottom": bottom,
        "hair": _HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.8, 1.2),
        "shoe": _random_color(rng, sat=(0.0, 0.5), val=(0.05, 0.5)),
        "eye": np.array([25, 20, 20], np.float32),
    }
    patterns = {"top": _cloth_pattern(rng, top, s), "bottom": _cloth_pattern(rng, bottom, s),
                "hair": ("noise", 8.0)}
    long_sleeve = rng.random() < 0.55
    long_pants = rng.random() < 0.75
    bald = rng.random() < 0.08

    # ---- head and face
    u = _unit(kp[HEAD] - kp[NECK], fallback=up_body)
    p = np.array([-u[1], u[0]])
    hs = s * rng.uniform(0.9, 1.1)
    a, b = 0.25 * hs, 0.19 * hs                   # semi-axes along / across the head direction
    hc = kp[HEAD] - u * a * 0.88                  # head top keypoint just inside the ellipse
    angle = math.degrees(math.atan2(u[1], u[0]))

    def face_point(phi: float, up: float, rad: float) -> tuple[np.ndarray, float]:
        return hc + p * b * rad * math.sin(phi + head_yaw) + u * a * up, math.cos(phi + head_yaw)

    specs = [(0.0, -0.28, 0.9), (0.5, 0.0, 0.8), (-0.5, 0.0, 0.8),
             (math.pi / 2, -0.08, 0.88), (-math.pi / 2, -0.08, 0.88)]
    face, depth = zip(*(face_point(*sp) for sp in specs))
    face = np.array(face)
    depth = np.array(depth)
    face_hidden = depth < -0.15

    # ---- parts
    def capsule(i, j, r0, r1, g):
        return Part("capsule", g, (kp[i], kp[j], r0 * r, r1 * r))

    sleeve = "top" if long_sleeve else "skin"
    legwear = "bottom" if long_pants else "skin"

    def arm(S, E, W):
        d = _unit(kp[W] - kp[E])
        return [capsule(S, E, 0.115, 0.09, "top"), capsule(E, W, 0.085, 0.065, sleeve),
                Part("ellipse", "skin", (kp[W] + d * 0.06 * r, (0.085 * r, 0.06 * r),
                                         math.degrees(math.atan2(d[1], d[0]))))]

    def leg(H, K, A):
        shin = _unit(kp[A] - kp[K])
        foot = shin * (0.04 + 0.08 * abs(math.cos(yaw))) * s + p_body * math.sin(yaw) * 0.17 * s
        return [capsule(H, K, 0.17, 0.12, "bottom"), capsule(K, A, 0.115, 0.075, legwear),
                Part("capsule", "shoe", (kp[A], kp[A] + foot, 0.075 * r, 0.06 * r))]

    pad = 0.1 * r
    tp = [kp[LS], kp[NECK], kp[RS], kp[RH], kp[LH]]
    torso = [Part("poly", "top", (np.array(tp),))] + [
        Part("capsule", "top", (tp[i], tp[(i + 1) % 5], pad, pad)) for i in (0, 1, 2, 3, 4)]
    wl, wr = kp[LH] + 0.3 * (kp[LS] - kp[LH]), kp[RH] + 0.3 * (kp[RS] - kp[RH])
    pelvis = [Part("poly", "bottom", (np.array([wl, wr, kp[RH], kp[LH]]),))] + [
        Part("capsule", "bottom", (q0, q1, pad * 1.05, pad * 1.05))
        for q0, q1 in ((wr, kp[RH]), (kp[RH], kp[LH]), (kp[LH], wl))]
    head = [Part("capsule", "skin", (kp[NECK], hc, 0.09 * r, 0.08 * r)),
            Part("ellipse", "skin", (hc, (a, b), angle))]
    if not bald:
        front = math.cos(head_yaw)
        if front < -0.3:   # seen from behind: hair covers the head
            head.append(Part("ellipse", "hair", (hc + u * a * 0.05, (a * 1.02, b * 1.04), angle)))
        else:
            reach = rng.uniform(0.0, 0.2)   # how far down the forehead the hair comes
            hcen = hc + u * a * (0.58 - reach / 2) - p * b * 0.3 * math.sin(head_yaw)
            head.append(Part("ellipse", "hair", (hcen, (a * (0.5 + reach / 2), b * 1.04), angle)))
    for k in (3, 4):   # ears
        if not face_hidden[k]:
            head.append(Part("ellipse", "skin_dark", (face[k], (0.07 * hs, 0.045 * hs), angle)))
    if depth[0] > 0.0:  # nose
        head.append(Part("ellipse", "skin_dark", (face[0], (0.04 * hs, 0.035 * hs), angle)))
    for k in (1, 2):   # eyes
        if depth[k] > 0.2:
            head.append(Part("ellipse", "eye", (face[k], (max(0.6, 0.025 * hs),) * 2, 0.0)))

    arms = {"L": arm(LS, LE, LW), "R": arm(RS, RE, RW)}
    legs = {"L": leg(LH, LK, LA), "R": leg(RH, RK, RA)}
    far = "L" if math.sin(yaw) > 0 else "R"    # left side's depth is -sin(yaw)
    near = "R" if far == "L" else "L"
    back_arms: list[str] = []
    front_arms: list[str] = []
    if math.cos(yaw) < -0.3:          # seen from behind: arms behind the torso
        back_arms = ["L", "R"]
    elif abs(math.sin(yaw)) > 0.55:   # turned: the far arm behind the torso
        back_arms, front_arms = [far], [near]
    else:
        front_arms = ["L", "R"]
        if rng.random() < 0.15:       # a hand behind the back
            back_arms.append(front_arms.pop(int(rng.integers(2))))
    parts: list[Part] = []
    for side in back_arms:
        parts += arms[side]
    parts += legs[far] + legs[near] + torso + pelvis + head
    for side in front_arms:
        parts += arms[side]
    return Person(parts=parts, colors=colors, patterns=patterns, scale=s,
                  light=(rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.3)),
                  kp14=kp, face=face, face_hidden=face_hidden)


def person_keypoints(person: Person, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(xy [K, 2], self_hidden [K]) of a person in the layout's keypoint order."""
    if layout == "crowdpose":
        return person.kp14.copy(), np.zeros(14, bool)
    if layout == "coco":
        xy = np.concatenate([person.face, person.kp14[:12]])
        return xy, np.concatenate([person.face_hidden, np.zeros(12, bool)])
    raise ValueError(f"unknown layout {layout!r}; known: {sorted(LAYOUTS)}")


# ---------------------------------------------------------------------------- rasterising
def _fixed(pts, off) -> np.ndarray:
    """Points -> int32 sub-pixel coordinates for cv2 (shift=_SHIFT) relative to ``off``."""
    return np.rint((np.asarray(pts, np.float64) - off) * _F).astype(np.int32)


def _draw_part(img: np.ndarray, part: Part, value, off) -> None:
    off = np.asarray(off, np.float64)
    if part.kind == "capsule":
        p0, p1, r0, r1 = part.geom
        p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
        r0, r1 = max(r0, 0.6), max(r1, 0.6)
        d = p1 - p0
        n = math.hypot(d[0], d[1])
        if n > 1e-6:
            nv = np.array([-d[1], d[0]]) / n
            q = _fixed([p0, p1, p0 + nv * r0, p1 + nv * r1, p1 - nv * r1, p0 - nv * r0], off)
            cv2.fillConvexPoly(img, q[2:], value, cv2.LINE_8, _SHIFT)
        else:
            q = _fixed([p0, p1], off)
        cv2.circle(img, (int(q[0, 0]), int(q[0, 1])), int(r0 * _F + 0.5), value, -1, cv2.LINE_8, _SHIFT)
        cv2.circle(img, (int(q[1, 0]), int(q[1, 1])), int(r1 * _F + 0.5), value, -1, cv2.LINE_8, _SHIFT)
    elif part.kind == "poly":
        cv2.fillPoly(img, [_fixed(part.geom[0], off)], value, cv2.LINE_8, _SHIFT)
    elif part.kind == "ellipse":
        c, (ax, ay), ang = part.geom
        q = _fixed([c], off)[0]
        axes = (max(1, int(ax * _F + 0.5)), max(1, int(ay * _F + 0.5)))
        cv2.ellipse(img, (int(q[0]), int(q[1])), axes, float(ang), 0, 360, value, -1, cv2.LINE_8, _SHIFT)
    else:
        raise ValueError(f"unknown part kind {part.kind!r}")


def _part_extent(part: Part) -> tuple[np.ndarray, float]:
    if part.kind == "capsule":
        return np.array([part.geom[0], part.geom[1]]), max(part.geom[2], part.geom[3], 0.6)
    if part.kind == "poly":
        return np.asarray(part.geom[0]), 0.0
    c, (ax, ay), _ = part.geom
    return np.asarray(c)[None], max(ax, ay)


def render_mask(fig: Figure, width: int, height: int) -> None:
    """Rasterise the figure's parts (ids 1..P in draw order) into a crop: sets
    ``fig.mask`` (None when the figure lies wholly outside the image) and ``fig.offset``."""
    lo, hi = np.array([np.inf, np.inf]), np.array([-np.inf, -np.inf])
    for part in fig.parts:
        pts, rad = _part_extent(part)
        lo = np.minimum(lo, pts.min(0) - rad)
        hi = np.maximum(hi, pts.max(0) + rad)
    x0, y0 = max(0, int(math.floor(lo[0])) - 1), max(0, int(math.floor(lo[1])) - 1)
    x1, y1 = min(width, int(math.ceil(hi[0])) + 2), min(height, int(math.ceil(hi[1])) + 2)
    fig.offset = (x0, y0)
    if x1 <= x0 or y1 <= y0:
        fig.mask = None
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for i, part in enumerate(fig.parts, 1):
        _draw_part(mask, part, i, (x0, y0))
    fig.mask = mask if mask.any() else None


def _texture(pattern: tuple, base: np.ndarray, ys: np.ndarray, xs: np.ndarray, h: int, w: int,
             rng: np.random.Generator) -> np.ndarray:
    """Colours [N, 3] of a pattern at the N crop pixels (ys, xs) of an h x w crop."""
    kind = pattern[0]
    tex = np.empty((len(ys), 3), np.float32)
    tex[:] = base
    if kind == "stripes":
        _, ang, period, duty, other = pattern
        tex[((xs * math.cos(ang) + ys * math.sin(ang)) % period) < duty * period] = other
    elif kind == "checker":
        _, cell, other = pattern
        tex[((xs // cell + ys // cell) % 2).astype(bool)] = other
    elif kind == "noise":
        tex += rng.standard_normal((len(ys), 1), dtype=np.float32) * np.float32(pattern[1])
    elif kind == "blotch":
        _, amp, cell = pattern
        small = rng.standard_normal((max(2, int(h / cell) + 2), max(2, int(w / cell) + 2), 3), dtype=np.float32)
        tex += np.float32(amp) * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)[ys, xs]
    return tex


def paint_figure(image: np.ndarray, label: np.ndarray | None, fig: Figure, value: int,
                 rng: np.random.Generator) -> None:
    """Composite a rasterised figure (``render_mask`` first) onto ``image`` (RGB uint8),
    writing ``value`` into ``label`` where it covers (unless label is None)."""
    if fig.mask is None:
        return
    m = fig.mask
    x0, y0 = fig.offset
    h, w = m.shape
    ys, xs = np.nonzero(m)            # work on the figure's pixels only
    lut = np.full(len(fig.parts) + 1, -1, np.int16)
    lut[1:] = [_G[p.group] for p in fig.parts]
    gid = lut[m[ys, xs]]
    tex = np.empty((len(ys), 3), np.float32)
    for g in np.unique(gid):
        name = GROUPS[g]
        sel = gid == g
        pat = fig.patterns.get(name, ("flat",))
        if pat[0] == "flat":
            tex[sel] = fig.colors[name]
        else:
            tex[sel] = _texture(pat, fig.colors[name], ys[sel], xs[sel], h, w, rng)
    # Outline where a part borders the background or a part drawn before it, plus
    # cylinder-like shading towards the silhouette and a soft light gradient.
    edge_map = m != cv2.erode(m, _KERNEL3, borderType=cv2.BORDER_REPLICATE)
    dist = cv2.distanceTransform(((m > 0) & ~edge_map).astype(np.uint8), cv2.DIST_L2, 3)
    full = np.float32(0.07 * fig.scale + 0.5)
    shade = np.float32(0.7) + np.minimum(dist[ys, xs], full) * np.float32(0.3 / full)
    shade[edge_map[ys, xs]] = 0.5
    ang, strength = fig.light
    k = strength / max(h, w, 1)
    shade *= (np.float32(1.0 - 0.5 * strength) + xs.astype(np.float32) * np.float32(math.cos(ang) * k)
              + ys.astype(np.float32) * np.float32(math.sin(ang) * k))
    tex *= shade[:, None]
    image[y0 + ys, x0 + xs] = np.clip(tex, 0, 255).astype(np.uint8)
    if label is not None:
        label[y0 + ys, x0 + xs] = value


# ---------------------------------------------------------------------------- clutter
_NOISE_BANK: dict[int, np.ndarray] = {}


def _noise_patch(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Unit Gaussian sensor noise [H, W, 3]: a random crop (and flip) of a fixed-seed bank,
    ~10x cheaper than drawing fresh normals per image and just as deterministic."""
    n = max(512, 2 * max(height, width))
    bank = _NOISE_BANK.get(n)
    if bank is None:
        bank = np.random.default_rng(20240611).standard_normal((n, n, 3), dtype=np.float32)
        _NOISE_BANK[n] = bank
    y0, x0 = int(rng.integers(0, n - height + 1)), int(rng.integers(0, n - width + 1))
    patch = bank[y0:y0 + height, x0:x0 + width]
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    if rng.random() < 0.5:
        patch = patch[::-1]
    return patch

def _distractor(rng: np.random.Generator, width: int, height: int, s_ref: float, kind: str | None = None) -> Figure:
    kind = kind or rng.choice(["sticks", "blob", "pole"], p=[0.5, 0.3, 0.2])
    c = np.array([rng.uniform(-0.1, 1.1) * width, rng.uniform(-0.1, 1.1) * height])
    skinlike = rng.random() < 0.5
    col = (_SKIN_TONES[rng.integers(len(_SKIN_TONES))] * rng.uniform(0.8, 1.1)) if skinlike else _random_color(rng)
    parts: list[Part] = []
    if kind == "sticks":   # a limb-like chain of 2-3 tapered capsules
        ang = rng.uniform(0, 2 * np.pi)
        rad = s_ref * rng.uniform(0.05, 0.16)
        q = c
        for _ in range(int(rng.integers(2, 4))):
            ang += rng.normal(0, 0.8)
            q1 = q + s_ref * rng.uniform(0.35, 0.8) * np.array([math.cos(ang), math.sin(ang)])
            r1 = rad * rng.uniform(0.7, 1.0)
            parts.append(Part("capsule", "other", (q, q1, rad, r1)))
            q, rad = q1, r1
    elif kind == "blob":   # head-like or arbitrary ellipse
        ax = s_ref * rng.uniform(0.15, 0.4)
        parts.append(Part("ellipse", "other", (c, (ax, ax * rng.uniform(0.5, 1.0)), rng.uniform(0, 180))))
        if skinlike and rng.random() < 0.5:
            parts.append(Part("ellipse", "hair", (c + [0, -0.3 * ax], (ax * 0.8, ax * 0.6), 0.0)))
    else:                  # pole / post
        ang = math.pi / 2 + rng.normal(0, 0.25)
        ln = height * rng.uniform(0.3, 1.2)
        d = np.array([math.cos(ang), math.sin(ang)]) * ln / 2
        rad = s_ref * rng.uniform(0.05, 0.2)
        parts.append(Part("capsule", "other", (c - d, c + d, rad, rad)))
    colors = {"other": col.astype(np.float32), "hair": _HAIR[rng.integers(len(_HAIR))]}
    patterns = {"other": _cloth_pattern(rng, col, s_ref) if not skinlike else ("flat",)}
    return Figure(parts=parts, colors=colors, patterns=patterns, scale=s_ref,
                  light=(rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.3)))


def _gradient_background(rng: np.random.Generator, width: int, height: int, cell: tuple[float, float],
                         noise: tuple[float, float]) -> np.ndarray:
    """Linear gradient c1 -> c2 along a random direction plus low-frequency colour noise (std drawn
    from ``noise``), made on a coarse grid of cells of U[``cell``] px and resized (a linear ramp
    survives the interpolation)."""
    a = rng.uniform(0, 2 * np.pi)
    c1, c2 = _random_color(rng, val=(0.2, 1.0)), _random_color(rng, val=(0.2, 1.0))
    size = rng.uniform(*cell)
    gh, gw = int(height / size) + 2, int(width / size) + 2
    gy, gx = np.ogrid[:gh, :gw]
    t = gx / max(gw - 1, 1) * math.cos(a) + gy / max(gh - 1, 1) * math.sin(a)
    t = ((t - t.min()) / max(float(np.ptp(t)), 1e-6)).astype(np.float32)
    small = c1 + (c2 - c1) * t[..., None]
    small += rng.standard_normal((gh, gw, 3), dtype=np.float32) * np.float32(rng.uniform(*noise))
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_smooth_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """``light`` clutter's background: a colour gradient with low-frequency colour noise only."""
    return _gradient_background(rng, width, height, cell=(16, 64), noise=(3, 15))


def make_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Cluttered RGB background: gradient, low-frequency noise, stripes, shapes, lines."""
    img = _gradient_background(rng, width, height, cell=(8, 64), noise=(5, 35))
    if rng.random() < 0.5:   # a striped region (wall, awning, floor)
        ang, period = rng.uniform(0, np.pi), rng.uniform(3, 24)
        yy, xx = np.ogrid[:height, :width]
        stripes = ((xx * np.float32(math.cos(ang)) + yy * np.float32(math.sin(ang))) % period) \
            < period * rng.uniform(0.3, 0.7)
        region = np.zeros((height, width), np.uint8)
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        cv2.rectangle(region, (int(x0 - width * rng.uniform(0.2, 1)), int(y0 - height * rng.uniform(0.2, 1))),
                      (int(x0 + width * rng.uniform(0.2, 1)), int(y0 + height * rng.uniform(0.2, 1))), 1, -1)
        img[(region > 0) & stripes] = _random_color(rng).astype(np.uint8)
    for _ in range(int(rng.integers(4, 16))):   # rectangles / ellipses / polygons
        col = tuple(int(v) for v in _random_color(rng, val=(0.1, 1.0)))
        k = rng.integers(3)
        cx, cy = rng.uniform(-0.1, 1.1) * width, rng.uniform(-0.1, 1.1) * height
        sx, sy = rng.uniform(0.03, 0.4) * width, rng.uniform(0.03, 0.4) * height
        if k == 0:
            cv2.rectangle(img, (int(cx - sx), int(cy - sy)), (int(cx + sx), int(cy + sy)), col, -1)
        elif k == 1:
            cv2.ellipse(img, (int(cx), int(cy)), (int(sx / 2) + 1, int(sy / 2) + 1), rng.uniform(0, 180), 0, 360, col, -1)
        else:
            pts = np.array([[cx, cy]]) + rng.normal(0, 1, (int(rng.integers(3, 7)), 2)) * [sx, sy]
            cv2.fillPoly(img, [pts.astype(np.int32)], col)
    for _ in range(int(rng.integers(0, 6))):   # lines
        col = tuple(int(v) for v in _random_color(rng))
        p0 = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        p1 = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        cv2.line(img, p0, p1, col, int(rng.integers(1, 4)), cv2.LINE_AA)
    return img


# ---------------------------------------------------------------------------- scenes
@dataclass
class Scene:
    image: np.ndarray                  # RGB uint8 [H, W, 3]
    label: np.ndarray                  # int16 [H, W]: 0 background, i+1 person i, -1 distractor
    annotations: list[dict]            # COCO dicts without id / image_id, one per kept person
    person_index: list[int]            # annotations[j] is persons[person_index[j]]
    crowd_index: float


def _annotate(person: Person, pid: int, label: np.ndarray, layout: str, area: int) -> dict | None:
    h, w = label.shape
    xy, self_hidden = person_keypoints(person, layout)
    xy = np.round(xy, 2)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] <= w - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= h - 1)
    px = np.clip(np.floor(xy + 0.5).astype(int), 0, [w - 1, h - 1])
    own = label[px[:, 1], px[:, 0]] == pid
    v = np.where(~inside, 0, np.where(own & ~self_hidden, 2, 1))
    n = int(np.count_nonzero(v))
    if n == 0 or area == 0 or person.mask is None:
        return None
    kps = []
    for (x, y), vi in zip(xy, v):
        kps += [float(x), float(y), int(vi)] if vi else [0, 0, 0]
    ys, xs = np.nonzero(person.mask)
    x0, y0 = person.offset
    bbox = [float(x0 + xs.min()), float(y0 + ys.min()),
            float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
    return {"category_id": 1, "iscrowd": 0, "num_keypoints": n, "keypoints": kps,
            "bbox": bbox, "area": int(area)}


def _figure_crowd_index(persons: list[Person], layout: str, width: int, height: int) -> float:
    """Crowd index before painting: labelled = inside the image (occlusion does not change
    v > 0), boxes from the rasterised figures (renders their masks)."""
    kps, boxes = [], []
    for p in persons:
        render_mask(p, width, height)
        if p.mask is None:
            continue
        xy, _ = person_keypoints(p, layout)
        inside = (xy[:, 0] >= 0) & (xy[:, 0] <= width - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= height - 1)
        ys, xs = np.nonzero(p.mask)
        x0, y0 = p.offset
        kps.append(np.concatenate([xy, inside[:, None]], 1))
        boxes.append([x0 + xs.min(), y0 + ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1])
    return crowd_index_arrays(np.array(kps), np.array(boxes)) if kps else 0.0


def render_scene(persons: list[Person], size: tuple[int, int], rng: np.random.Generator, layout: str,
                 *, clutter: bool | str = True) -> Scene:
    """Paint ``persons`` in list order (first = furthest back) over a background.

    ``clutter`` (one of CLUTTER_LEVELS; True = ``full``, False = ``none``): ``full`` adds the
    cluttered background, background and foreground distractors, colour cast, sensor noise and
    blur; ``light`` a smooth gradient background and mild sensor noise; ``none`` a flat grey
    background with nothing else drawn.
    """
    level = ("full" if clutter else "none") if isinstance(clutter, bool) else clutter
    if level not in CLUTTER_LEVELS:
        raise ValueError(f"clutter must be one of {CLUTTER_LEVELS}, got {clutter!r}")
    full = level == "full"
    width, height = size
    for p in persons:
        if p.mask is None:
            render_mask(p, width, height)
    label = np.zeros((height, width), np.int16)
    s_ref = min(float(np.median([p.scale for p in persons])) if persons else 1e9, 0.15 * min(size))
    if full:
        image = make_background(rng, width, height)
        for _ in range(int(rng.integers(1, 6))):
            d = _distractor(rng, width, height, s_ref)
            render_mask(d, width, height)
            paint_figure(image, None, d, 0, rng)
    elif level == "light":
        image = make_smooth_background(rng, width, height)
    else:
        image = np.full((height, width, 3), 128, np.uint8)
    for i, p in enumerate(persons):
        paint_figure(image, label, p, i + 1, rng)
    if level == "light":   # mild sensor noise, no colour cast, no blur
        img = _noise_patch(rng, height, width) * np.float32(rng.uniform(1.0, 3.0))
        img += image
        image = np.clip(img, 0, 255).astype(np.uint8)
    if full:
        for _ in range(int(rng.choice([0, 1, 2], p=[0.55, 0.33, 0.12]))):
            d = _distractor(rng, width, height, s_ref)
            render_mask(d, width, height)
            paint_figure(image, label, d, -1, rng)
        # Global contrast / colour cast, sensor noise, slight blur.
        gain = np.float32(rng.uniform(0.8, 1.15))
        bias = (128.0 * (1 - gain) + rng.uniform(-15, 15, 3) + 0.5).astype(np.float32)
        img = _noise_patch(rng, height, width) * np.float32(rng.uniform(1.0, 6.0))
        img += bias
        img += image * gain
        if rng.random() < 0.7:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.8))
        image = np.clip(img, 0, 255).astype(np.uint8)
    areas = np.bincount((label.ravel().astype(np.int64) + 1), minlength=len(persons) + 2)[2:]
    anns, index = [], []
    for i, p in enumerate(persons):
        a = _annotate(p, i + 1, label, layout, int(areas[i]))
        if a is not None:
            anns.append(a)
            index.append(i)
    return Scene(image=image, label=label, annotations=anns, person_index=index, crowd_index=crowd_index(anns))


# ---------------------------------------------------------------------------- layouts
def _target_level(seed: int, index: int, density: str | float) -> str:
    if density == "sparse":
        return "easy"
    if density == "crowded":
        return "hard"
    if density == "mixed":   # a third each: shuffled blocks of three
        perm = np.random.default_rng([seed, 7919, index // 3]).permutation(3)
        return LEVELS[int(perm[index % 3])]
    t = float(density)
    w = np.array([(1 - t) ** 2, 2 * t * (1 - t), t ** 2])
    return LEVELS[int(np.random.default_rng([seed, 7920, index]).choice(3, p=w / w.sum()))]


@dataclass
class _Group:
    """People of one image before placement: poses, scales (px per torso) and anchor
    positions at spread 1, in painter's order (back to front)."""

    poses: list[np.ndarray]
    scales: np.ndarray
    anchors: np.ndarray        # [n, 2] torso centres at spread 1
    center_x: float            # horizontal spread scales anchors about this x

    def specs(self, spread: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
        a = self.anchors.copy()
        a[:, 0] = self.center_x + (a[:, 0] - self.center_x) * spread
        return [(p, c, float(sc)) for p, c, sc in zip(self.poses, a, self.scales)]


def _sample_group(rng: np.random.Generator, prior: PosePrior, level: str, width: int, height: int,
                  max_people: int = 9, person_scale: float = 1.0) -> _Group:
    S = min(width, height) * person_scale
    if level == "easy":   # scattered people whose (padded) boxes do not overlap
        n = min(int(rng.choice([1, 2, 3, 4], p=[0.3, 0.3, 0.25, 0.15])), max_people)
        hi = max(0.24, 0.7 / math.sqrt(n))
        base = S * math.exp(rng.uniform(math.log(0.15), math.log(hi)))
        people, boxes = [], []
        for _ in range(n):
            pose = prior.sample(rng)
            sc = base * math.exp(rng.normal(0, 0.1))
            lo_, hi_ = pose.min(0) * sc - 0.25 * sc, pose.max(0) * sc + 0.25 * sc
            for _try in range(30):
                c = np.array([rng.uniform(0.05, 0.95) * width, rng.uniform(0.15, 0.9) * height])
                box = np.concatenate([c + lo_, c + hi_])
                if all(box[0] > b[2] or box[2] < b[0] or box[1] > b[3] or box[3] < b[1] for b in boxes):
                    boxes.append(box)
                    people.append((sc, pose, c))
                    break
        people.sort(key=lambda t: t[0])   # smaller (further away) first
        return _Group([p for _, p, _ in people], np.array([sc for sc, _, _ in people]),
                      np.array([c for _, _, c in people]).reshape(-1, 2), width / 2)
    if level == "medium":  # one loose row
        n = min(int(rng.integers(2, 7)), max_people)
        base = S * math.exp(rng.uniform(math.log(0.15), math.log(0.42))) / (n / 3) ** 0.3
        k = rng.uniform(0.6, 1.3)
        rows = 1
    else:                  # packed, often two rows
        n = min(int(rng.integers(3, 10)), max_people)
        base = S * math.exp(rng.uniform(math.log(0.14), math.log(0.36))) / (n / 5) ** 0.3
        k = rng.uniform(0.25, 0.7)
        rows = int(rng.choice([1, 2], p=[0.45, 0.55]))
    rows = 1 if n < 2 else rows
    counts = [n] if rows == 1 else [n - n // 2, n // 2]   # back row, front row
    ground = rng.uniform(0.45, 0.72) * height
    cx = width * rng.uniform(0.35, 0.65)
    poses, scales, anchors = [], [], []
    for r, cnt in enumerate(counts):
        back = rows == 2 and r == 0
        sc_row = base * (rng.uniform(0.72, 0.92) if back else 1.0)
        y_row = ground - (rng.uniform(0.4, 0.9) * base if back else 0.0)
        xs = np.cumsum(np.r_[0.0, k * sc_row * rng.uniform(0.75, 1.25, cnt - 1)])
        xs += cx - xs.mean() + (0.5 * k * sc_row if back else 0.0)
        row = []
        for x in xs:
            sc = sc_row * math.exp(rng.normal(0, 0.1))
            row.append((prior.sample(rng), sc, (x, y_row + rng.normal(0, 0.15 * sc))))
        for i in rng.permutation(len(row)):
            poses.append(row[i][0])
            scales.append(row[i][1])
            anchors.append(row[i][2])
    return _Group(poses, np.array(scales), np.array(anchors, np.float64), cx)


def _quick_crowd_index(specs, width: int, height: int) -> float:
    """Crowd index of a placement from keypoints alone (labelled = inside the image, box =
    keypoint extent padded by typical limb / head / hand sizes, clipped): cheap enough to
    try many placements; the stored index is computed from the rendered annotations."""
    if not specs:
        return 0.0
    kp = np.stack([p * sc + c for p, c, sc in specs])
    sc = np.array([t[2] for t in specs])[:, None]
    inside = (kp[..., 0] >= 0) & (kp[..., 0] <= width - 1) & (kp[..., 1] >= 0) & (kp[..., 1] <= height - 1)
    lo = np.clip(kp.min(1) - 0.18 * sc, 0, [width - 1, height - 1])
    hi = np.clip(kp.max(1) + 0.18 * sc, 0, [width - 1, height - 1])
    return crowd_index_arrays(np.concatenate([kp, inside[..., None]], -1), np.concatenate([lo, hi - lo], 1))


@dataclass
class SynthImage:
    image: np.ndarray
    label: np.ndarray
    annotations: list[dict]
    crowd_index: float
    target_level: str
    persons: list[Person]     # persons[j] is annotated by annotations[j]
    label_ids: list[int]      # label-map value of annotations[j]


def generate_image(prior: PosePrior, index: int, *, seed: int, layout: str = "crowdpose",
                   size: tuple[int, int] = (256, 256), density: str | float = "mixed",
                   max_tries: int = 36, difficulty: Difficulty | None = None) -> SynthImage:
    """Image ``index`` of the data set with ``seed`` (deterministic in (seed, index)) at
    ``difficulty`` (default: the original generator, ``Difficulty()``)."""
    dif = difficulty or Difficulty()
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; known: {sorted(LAYOUTS)}")
    width, height = size
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    level = _target_level(seed, index, density)
    # Aim at a crowd index drawn inside the level (hard: up to 1.5, like most of CrowdPose's
    # hard images) so each level is covered evenly rather than piling up at its edge.  The
    # horizontal spread of a group is tuned first; every few tries a new group is drawn.
    lo, hi = LEVEL_TARGETS[level]
    target = rng.uniform(lo, hi)
    want = LEVELS.index(level)
    best, exact_checks = None, 0
    group, spread = None, 1.0
    for attempt in range(max_tries):
        if attempt % 6 == 0 or level == "easy":
            group, spread = _sample_group(rng, prior, level, width, height, dif.max_people,
                                          dif.person_scale), 1.0
        specs = group.specs(spread)
        ci = _quick_crowd_index(specs, width, height)
        persons = None
        miss = (abs(LEVELS.index(crowd_level(ci)) - want), abs(ci - target) if level != "easy" else 0.0)
        if specs and miss[0] == 0 and miss[1] <= 0.1 * (1 + attempt / 6) and exact_checks < 4:
            # Close enough: draw the figures and check with their real boxes.
            exact_checks += 1
            persons = [make_person(pose, c, sc, rng) for pose, c, sc in specs]
            ci = _figure_crowd_index(persons, layout, width, height)
            miss = (abs(LEVELS.index(crowd_level(ci)) - want), abs(ci - target) if level != "easy" else 0.0)
        if specs and (best is None or miss < best[0]):
            best = (miss, specs, persons)
        if persons is not None and miss[0] == 0:
            break
        spread *= 1.25 if ci > target else 0.8
    _, specs, persons = best if best else (None, [], None)
    if persons is None:
        persons = [make_person(pose, c, sc, rng) for pose, c, sc in specs]
    if dif.texture == "flat":   # after drawing, so layouts and colours stay those of `full`
        for p in persons:
            p.patterns = {k: ("flat",) for k in p.patterns}
    scene = render_scene(persons, (width, height), rng, layout, clutter=dif.clutter)
    return SynthImage(image=scene.image, label=scene.label, annotations=scene.annotations,
                      crowd_index=scene.crowd_index, target_level=level,
                      persons=[persons[i] for i in scene.person_index],
                      label_ids=[i + 1 for i in scene.person_index])


# ---------------------------------------------------------------------------- data set
def categories(layout: str) -> list[dict]:
    sk = LAYOUTS[layout]
    return [{"supercategory": "person", "id": 1, "name": "person", "keypoints": list(sk.keypoints),
             "skeleton": [[a + 1, b + 1] for a, b in sk.limbs]}]


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _encode(image: np.ndarray, fmt: str, jpeg_quality: int) -> bytes:
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if fmt == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode("." + fmt, bgr, params)
    if not ok:
        raise RuntimeError(f"cv2 could not encode a {fmt} image")
    return buf.tobytes()


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 image from disk (the reader's decoder), raising when it cannot be read."""
    from posedet.data.reader import read_image as _read

    img = _read(path)
    if img is None:
        raise ValueError(f"{path}: cannot read image")
    return img


def annotation_quirks(ann_file: str | Path) -> dict[str, int]:
    """``posedet.data.quirks.quirk_counts`` of a COCO-format keypoint file (read by the training
    reader, so a file it cannot use raises its ``PoseDataError``, a ValueError)."""
    from posedet.data.quirks import quirk_counts
    from posedet.data.reader import load_coco_keypoints

    return quirk_counts(load_coco_keypoints(ann_file))


def prior_fingerprint(prior: PosePrior) -> str:
    return hashlib.sha256(np.ascontiguousarray(prior.poses).tobytes()).hexdigest()[:16]


def generate_dataset(out_dir: str | Path, prior: PosePrior, *, layout: str = "crowdpose", num_images: int = 100,
                     size: tuple[int, int] = (256, 256), seed: int = 0, density: str | float = "mixed",
                     image_format: str = "jpg", jpeg_quality: int = 95, sheet_images: int = 16,
                     progress: bool = True, difficulty: Difficulty | None = None) -> dict:
    """Write ``out_dir/{images/, annotations.json, contact_sheet.png, stats.json}``; returns the stats.

    Every file is written to a temporary name and renamed; ``annotations.json`` is written
    after all images, so its presence means the image set is complete.
    """
    from tqdm import tqdm

    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; known: {sorted(LAYOUTS)}")
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"unknown image format {image_format!r}; known: {IMAGE_FORMATS}")
    out = Path(out_dir)
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    # An earlier run's outputs must not pair with this run's images if it is interrupted.
    for name in ("annotations.json", "stats.json", "contact_sheet.png"):
        (out / name).unlink(missing_ok=True)
    dif = difficulty or Difficulty()
    width, height = size
    images, anns, sheet = [], [], []
    names = set()
    t0, c0 = time.perf_counter(), time.process_time()
    for i in tqdm(range(num_images), desc=f"synth {layout}", unit="img", disable=not progress, file=sys.stderr):
        si = generate_image(prior, i, seed=seed, layout=layout, size=size, density=density, difficulty=dif)
        name = f"{i:06d}.{image_format}"
        names.add(name)
        _atomic_write_bytes(img_dir / name, _encode(si.image, image_format, jpeg_quality))
        meta = {"id": i + 1, "file_name": name, "width": width, "height": height}
        if layout == "crowdpose":
            meta["crowdIndex"] = round(si.crowd_index, 4)   # CrowdPose rounds to 2; 4 keeps the level
        images.append(meta)
        for a in si.annotations:
            anns.append({"id": len(anns) + 1, "image_id": i + 1, **a})
        if len(sheet) < sheet_images:
            sheet.append((si.image, [{**a} for a in si.annotations], f"#{i + 1} ci {si.crowd_index:.2f}"))
    t_images, c_images = time.perf_counter() - t0, time.process_time() - c0
    # Images left over from an earlier, larger run with another size of set.
    for f in img_dir.iterdir():
        if re.fullmatch(r"\d{6}\.(jpg|png)", f.name) and f.name not in names:
            f.unlink()
    coco = {
        "info": {"description": "PoseDet embedded synthetic keypoint data set", "version": GENERATOR_VERSION,
                 "layout": layout, "seed": seed, "density": density, "width": width, "height": height,
                 "num_images": num_images, "pose_prior": prior_fingerprint(prior), **dif.as_dict()},
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": categories(layout),
    }
    _atomic_write_bytes(out / "annotations.json", json.dumps(coco, separators=(",", ":")).encode())
    if sheet:
        from posedet.draw import contact_sheet

        img = contact_sheet([s[0] for s in sheet], [s[1] for s in sheet], LAYOUTS[layout], ncols=4,
                            titles=[s[2] for s in sheet])
        _atomic_write_bytes(out / "contact_sheet.png", _encode(img, "png", 0))
    stats = annotation_stats(coco)
    stats["quirks"] = annotation_quirks(out / "annotations.json")
    stats["generation"] = {
        "layout": layout, "num_images": num_images, "size": [width, height], "seed": seed, "density": density,
        **dif.as_dict(), "image_format": image_format, "seconds_images": round(t_images, 3),
        "images_per_s": round(num_images / max(t_images, 1e-9), 2),
        "cpu_seconds_images": round(c_images, 3),
        "images_per_cpu_s": round(num_images / max(c_images, 1e-9), 2),
        "seconds_total": round(time.perf_counter() - t0, 3),
        "note": "generate + encode + write, one process; images_per_s is wall clock (depends on "
                "machine load), images_per_cpu_s per second of this process's CPU time",
    }
    _atomic_write_bytes(out / "stats.json", (json.dumps(stats, indent=2) + "\n").encode())
    return stats


# ---------------------------------------------------------------------------- CLI
def _density(s: str) -> str | float:
    if s in DENSITIES:
        return s
    try:
        t = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"density must be one of {DENSITIES} or a float in [0, 1], got {s!r}") from None
    if not 0.0 <= t <= 1.0:
        raise argparse.ArgumentTypeError(f"density float must be in [0, 1], got {t}")
    return t


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="crowdpose",
                        help="coco: 17 keypoints; crowdpose: 14 keypoints + per-image crowdIndex")
    parser.add_argument("--num-images", type=int, default=100)
    parser.add_argument("--size", type=int, nargs="+", default=[256], metavar="PX",
                        help="image size: one value (square) or W H")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--density", type=_density, default="mixed",
                        help="sparse | mixed | crowded, or t in [0, 1] (level weights (1-t)^2, 2t(1-t), t^2)")
    parser.add_argument("--clutter", choices=CLUTTER_LEVELS, default="full",
                        help="background difficulty: none (flat grey), light (smooth gradient, mild noise), "
                             "full (shapes, distractors, colour cast, noise, blur)")
    parser.add_argument("--max-people", type=int, default=9, help="cap on people per image (crowds draw up to 9)")
    parser.add_argument("--person-scale", type=float, default=1.0,
                        help="multiplies every person's size (1 = the level's own scale range)")
    parser.add_argument("--texture", choices=TEXTURES, default="full",
                        help="clothing: full (stripes, checks, noise, blotches) or flat colours")
    parser.add_argument("--pose-source", type=Path, default=None,
                        help="crowdpose_val.json (CrowdPose annotations) or a cached pose_prior.npz")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (or, with --stats-only, the stats JSON file)")
    parser.add_argument("--format", choices=IMAGE_FORMATS, default="jpg", dest="image_format")
    parser.add_argument("--jpeg-quality", type=int, default=95)
    parser.add_argument("--sheet-images", type=int, default=16, help="images on the contact sheet")
    parser.add_argument("--stats-only", type=Path, default=None, metavar="ANN_JSON",
                        help="only compute stats of a COCO-format annotation file and write them to --out")
    parser.add_argument("--no-progress", action="store_true")


def main(args: argparse.Namespace) -> int:
    if args.stats_only is not None:
        try:
            stats = annotation_stats(args.stats_only)
            stats["quirks"] = annotation_quirks(args.stats_only)
        except (ValueError, KeyError) as e:
            print(f"posedet synth: {e}", file=sys.stderr)
            return 2
        stats["source"] = str(args.stats_only)
        text = json.dumps(stats, indent=2) + "\n"
        if args.out is None:
            sys.stdout.write(text)
        else:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write_bytes(args.out, text.encode())
            print(f"wrote {args.out}")
        return 0
    if args.pose_source is None:
        print("posedet synth: --pose-source is required: path to CrowdPose annotations "
              "(crowdpose_val.json) or a cached pose_prior.npz", file=sys.stderr)
        return 2
    if args.out is None:
        print("posedet synth: --out DIR is required", file=sys.stderr)
        return 2
    if len(args.size) not in (1, 2) or min(args.size) < 32:
        print(f"posedet synth: --size takes one or two values >= 32, got {args.size}", file=sys.stderr)
        return 2
    size = (args.size[0], args.size[-1])
    try:
        difficulty = Difficulty(clutter=args.clutter, max_people=args.max_people,
                                person_scale=args.person_scale, texture=args.texture)
    except ValueError as e:
        print(f"posedet synth: {e}", file=sys.stderr)
        return 2
    try:
        prior = PosePrior.load(args.pose_source)
    except (OSError, ValueError) as e:
        print(f"posedet synth: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if args.pose_source.suffix != ".npz":
        prior.save(args.out / "pose_prior.npz")
    stats = generate_dataset(args.out, prior, layout=args.layout, num_images=args.num_images, size=size,
                             seed=args.seed, density=args.density, image_format=args.image_format,
                             jpeg_quality=args.jpeg_quality, sheet_images=args.sheet_images,
                             progress=not args.no_progress, difficulty=difficulty)
    ci = stats["crowd_index"]
    print(f"wrote {args.num_images} images to {args.out} ({stats['generation']['images_per_s']:.1f} images/s); "
          f"persons/image {stats['persons_per_image_mean']:.2f}, crowd levels {ci['levels']}, "
          f"occlusion rate {stats['keypoints']['occlusion_rate']:.3f}")
    return 0
