"""Training checkpoints: what they hold, how they are written and read.

A checkpoint is one ``torch.save`` file holding only tensors and plain containers, so that it
loads with ``torch.load(path, weights_only=True)`` (no pickled classes):

``format``            ``"posedet-checkpoint/1"``
``model``             the model's ``state_dict`` (unwrapped from DDP)
``optimizer``         optimiser ``state_dict`` (None in an inference-only export)
``scheduler``         lr-scheduler ``state_dict`` with ``Counter`` fields turned into plain dicts
``scaler``            GradScaler ``state_dict`` or None
``rng``               ``torch`` (ByteTensor), ``cuda`` (list of ByteTensors), ``numpy``
                      (dict of the MT19937 state, key as an int64 tensor), ``python`` (list)
``step``, ``epoch``   optimiser steps done; epoch of the next step
``total_steps``       length of the whole run in steps
``complete``          True once the run reached ``total_steps``
``config``            the variant config as a plain dict (``posedet.config.config_to_dict``)
``model_signature``   ``model.model_signature()`` of the trained model
``skeleton``          name, keypoints, sigmas and flip pairs of the training skeleton
``meta``              torch version, world size, ... (informative only)

Writes are atomic: the file is written to a temporary name in the same folder, flushed to disk
and moved over the target with ``os.replace``, so a run killed while saving leaves the previous
``last.pt`` intact.
"""
from __future__ import annotations

import os
import random
from collections import Counter
from typing import Any

import numpy as np
import torch

from posedet.atomic import atomic_write_bytes

FORMAT = "posedet-checkpoint/1"

__all__ = ["FORMAT", "CheckpointError", "save_checkpoint", "load_checkpoint", "rng_state",
           "set_rng_state", "scheduler_state", "load_scheduler_state", "skeleton_dict",
           "atomic_write_bytes", "build_model_from_config", "model_from_checkpoint",
           "load_model_from_checkpoint"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked; the message names the file."""


# ------------------------------------------------------------------------------------ RNG


def rng_state() -> dict:
    """RNG states of torch (CPU and every CUDA device), numpy's global RNG and ``random``,
    as tensors and plain containers."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
    }
    version, internal, gauss = random.getstate()
    state["python"] = [int(version), [int(x) for x in internal], gauss]
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        cuda = list(state["cuda"])[:torch.cuda.device_count()]
        for i, s in enumerate(cuda):
            torch.cuda.set_rng_state(s, i)
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


# ------------------------------------------------------------------------------ scheduler


def _plain(v):
    if isinstance(v, Counter):
        return {int(a): int(b) for a, b in v.items()}
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _like(template, v):
    """``v`` with plain dicts turned back into Counters where ``template`` has one."""
    if isinstance(template, Counter) and isinstance(v, dict):
        return Counter(v)
    if isinstance(template, dict) and isinstance(v, dict):
        return {k: (_like(template[k], x) if k in template else x) for k, x in v.items()}
    if isinstance(template, list) and isinstance(v, list) and len(template) == len(v):
        return [_like(t, x) for t, x in zip(template, v)]
    return v


def scheduler_state(scheduler) -> dict:
    """``scheduler.state_dict()`` with ``collections.Counter`` values (MultiStepLR's
    milestones, also inside a ChainedScheduler) turned into plain dicts, which ``weights_only``
    loading accepts."""
    return _plain(scheduler.state_dict())


def load_scheduler_state(scheduler, state: dict) -> None:
    scheduler.load_state_dict(_like(scheduler.state_dict(), state))


def skeleton_dict(skeleton) -> dict:
    return {"name": skeleton.name, "keypoints": list(skeleton.keypoints),
            "sigmas": [float(s) for s in skeleton.sigmas],
            "flip_pairs": [list(p) for p in skeleton.flip_pairs]}


# -------------------------------------------------------------------------------- writing


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Atomically ``torch.save`` ``payload`` (adds ``format``)."""
    payload = {"format": FORMAT, **payload}
    atomic_write_bytes(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """``torch.load(path, weights_only=True)`` with errors that name the file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises several kinds; all mean "unusable"
        raise CheckpointError(f"{path}: not a loadable checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: not a posedet checkpoint (format {got!r}, expected {FORMAT!r})")
    for key in ("model", "config", "model_signature"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}")
    return ckpt


# ---------------------------------------------------------------------------------- models


def build_model_from_config(config: dict, num_keypoints: int):
    """The detector described by a plain config dict's ``model`` section, with
    ``num_keypoints`` keypoints (random head; backbone weights as the config says)."""
    from posedet.model.detector import build_model

    m = dict(config.get("model", config))
    m["num_keypoints"] = int(num_keypoints)
    return build_model(m)


def model_from_checkpoint(ckpt: dict, path: str | os.PathLike = "<checkpoint>"):
    """Rebuild the checkpoint's model (no pretrained download), load its weights strictly and
    check ``model_signature`` against the stored one."""
    config = dict(ckpt["config"])
    model_cfg = dict(config.get("model", {}))
    model_cfg["pretrained"] = False           # the trained weights replace them anyway
    model_cfg["pretrained_file"] = None
    model_cfg["init_backbone"] = None         # (likewise the harness-made pretrained start)
    config["model"] = model_cfg
    skel = ckpt.get("skeleton") or {}
    k = len(skel["keypoints"]) if skel.get("keypoints") else model_cfg.get("num_keypoints")
    if not k:
        raise CheckpointError(f"{path}: checkpoint records no keypoint count")
    model = build_model_from_config(config, k)
    sig = model.model_signature() if hasattr(model, "model_signature") else None
    if sig is not None and ckpt["model_signature"] is not None and sig != ckpt["model_signature"]:
        raise CheckpointError(f"{path}: stored model signature {ckpt['model_signature']} differs "
                              f"from the model its config builds, {sig}")
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the {model_cfg.get('backbone')!r} "
                              f"model of its config: {str(e).splitlines()[0]}") from None
    return model


def load_model_from_checkpoint(path: str | os.PathLike, map_location: Any = "cpu",
                               backbone: str | None = None, num_keypoints: int | None = None):
    """Load a trained model from a checkpoint file (eval mode). ``backbone`` /
    ``num_keypoints``, when given, must match the checkpoint's (the error names both)."""
    ckpt = load_checkpoint(path, map_location=map_location)
    have_backbone = ckpt["config"].get("model", {}).get("backbone")
    if backbone is not None and backbone != have_backbone:
        raise CheckpointError(f"{os.fspath(path)}: checkpoint backbone {have_backbone!r}, "
                              f"but {backbone!r} was requested")
    skel = ckpt.get("skeleton") or {}
    have_k = len(skel.get("keypoints") or []) or None
    if num_keypoints is not None and have_k is not None and num_keypoints != have_k:
        raise CheckpointError(f"{os.fspath(path)}: checkpoint has {have_k} keypoints "
                              f"(skeleton {skel.get('name')!r}), but {num_keypoints} were requested")
    return model_from_checkpoint(ckpt, os.fspath(path)).eval()
