"""Config schema of a PoseDet variant: four plain dataclasses, read from YAML.

A variant config is one YAML mapping with up to five top-level keys; every key is optional and
an absent key keeps the default shown. Unknown keys and bad values raise ``ValueError`` naming the
dotted key (``loss.centroid: 'foo' is not one of 'keypoints', 'box'``). There is no inheritance
between config files and no registry: a file lists the values that differ from these defaults.

.. code-block:: yaml

    name: ""                         # free text, copied into logs and checkpoints
    deviations: []                   # documentation only: [{switch, value, paper, why}] — what a
                                     # recipe changes from the paper and why (the report lists it)
    model:
      backbone: dla34                # dla34 | hrnet_w32 | hrnet_w48 | mobilenetv3_small_050 (the
                                     # test / smoke backbone) | another timm features_only model
      skeleton: null                 # coco | crowdpose | null = taken from the training annotations
      num_keypoints: null            # null = from the skeleton; if set it must agree with it
      pretrained: false              # ImageNet weights through timm (needs network or a cache)
      pretrained_file: null          # local weights file for the backbone (no network)
      init_backbone: null            # `posedet pretrain` backbone.pt: harness-made pretrained start
                                     # (CPU preset; the paper: ImageNet weights)
      refine: true                   # refine branch (Table 4); false = coarse pose is the output
      intermediate_supervision: true # per-level heatmap heads, training only
      neck_channels: null            # null = the backbone's default (DLA 128, HRNet 256)
      head_channels: null            # null = neck_channels
      embed_channels: null           # pose-embedding output width; null = head_channels
      gn_groups: 32                  # GroupNorm groups in the head towers
      num_levels: null               # pyramid levels; null = the paper's (FPN 4: strides 8-64;
                                     # HRFPN 3: 8-32); 3 drops FPN's stride-64 level
      channels_last: false           # run the network in channels_last memory format (CPU speed)
      embedding_save_memory: false   # recompute the embedding's samples in the backward pass
    loss:
      centroid: keypoints            # keypoints (mean of visible joints, paper) | box (ablation)
      heatmap_loss: focal            # focal (authors' code, CornerNet α=2 β=4) | l2 (paper text)
      weights: {coarse: 0.1, refine: 0.2, cls: 1.0, heatmap: 0.1}
      pos_num: 1                     # coarse positives per person: the pos_num grid points nearest
                                     # the centre on its level (authors: PointAssigner pos_num=1)
      level_scale: 4.0               # a person of box w×h goes to the level of stride
                                     # 2^⌊(log2(w/s) + log2(h/s)) / 2⌋ (authors: PointAssigner
                                     # scale=4); larger s puts people on finer levels
      refine_pos_thr: 0.7            # OKS assigners of the authors' code (training OKS of the
      refine_low_quality_thr: 0.52   # detached coarse pose): refine positives, each GT's best
      cls_pos_thr: 0.6               # candidate (null: off), classification positives and
      cls_neg_thr: 0.5               # negatives (the band between is ignored)
    train:
      input_size: 512                # square training crop, pixels
      batch_size: 48                 # GLOBAL batch: all processes together (paper 8 GPUs × 6)
      micro_batches: 1               # split each process's batch into this many interleaved parts,
                                     # each normalised by its own positive counts, gradients averaged
                                     # (a one-process run with micro_batches = W computes exactly what
                                     # W DDP processes compute)
      lr: 1.0e-4                     # Adam
      weight_decay: 0.0
      epochs: 210                    # length of the run in epochs ...
      iterations: null               # ... or in optimiser steps; when set it takes precedence
      lr_steps: [180, 200]           # ×lr_gamma at each; a value in (0, 1) is a fraction of the run,
                                     # a value ≥ 1 an epoch (epochs runs) or a step (iterations runs)
      lr_gamma: 0.1
      warmup_iters: 5                # linear lr warm-up over the first steps, from
      warmup_ratio: 0.3333333        # warmup_ratio · lr (the authors' mmdetection schedule)
      grad_clip_norm: 35.0           # clip the global gradient norm (authors' code; null = off)
      crop: person                   # person: the paper's random-person crop (input_size² patch
                                     # centred on a random person, resized by U[scale_range]);
                                     # full: the whole image, long side = input_size, padded
                                     # to input_size² (= the view `posedet predict` sees at
                                     # short_side = max_size = input_size; for overfit checks)
      scale_range: [0.5, 1.5]        # random-person crop: resize factor U[lo, hi]
      flip_prob: 0.5                 # horizontal flip with left/right swap
      min_keypoints: 1               # persons with fewer labelled keypoints are dropped from the crops
      num_workers: 0                 # DataLoader workers (0 = in the main process)
      seed: 0                        # model init, sampler order, augmentation (seed, epoch, index)
      deterministic: true            # torch.use_deterministic_algorithms(True, warn_only=True);
                                     # on CUDA also cudnn.deterministic (slower)
      amp: false                     # CUDA only: torch.autocast + GradScaler
      amp_dtype: float16             # float16 | bfloat16
      max_minutes: null              # wall-clock budget of one invocation; stops after the current
                                     # step, writes last.pt and final.pt, logs "stopped_on_budget"
      budget: 1.0                    # scales the whole run (`snakemake --config budget=K`): steps
                                     # (iterations, or epochs × steps per epoch), lr_steps given in
                                     # epochs/steps, warmup_iters, ckpt_every, snapshot_every and
                                     # max_minutes, each round(value × budget) (at least 1); lr_steps
                                     # given as fractions stay fractions. Applied in one place,
                                     # ``train_schedule``; the values above are the budget-1 run's
      log_every: 20                  # JSONL log line every N steps (means over the interval)
      ckpt_every: 1000               # RUN_DIR/last.pt every N steps (and at the end)
      snapshot_every: null           # RUN_DIR/snapshots/stepNNNNNN.pt (weights, elapsed time,
                                     # images seen) every N steps: the learning curve's points
      find_unused_parameters: false  # DDP option
    infer:
      short_side: 640                # single scale: short side ...
      max_size: 1000                 # ... unless the long side would exceed this
      size_divisor: null             # pad to a multiple; null = the model's largest stride
      tta: false                     # test-time augmentation (also: posedet predict --tta)
      tta_scales: [300, 400, 500, 600, 700, 800]   # short sides; long side capped at
                                     # max_size · scale / short_side
      flip: true                     # TTA adds the mirrored image at every scale
      nms: oks                       # oks | iou
      nms_thr: null                  # null = OKS: 0.2 for the coco skeleton, 0.3 for crowdpose; IoU: 0.5
      score_thr: 0.05
      topk: 500                      # candidates per pyramid level before the score threshold
      max_dets: 100
      min_area: 1024.0               # OKS-NMS pose area is clamped to at least this (32²)
      coarse_only: false             # output the coarse (bypass) poses, not the refined ones

Overrides use dotted keys, ``train.lr=2e-4``, ``infer.tta_scales=[400,600]``,
``model.pretrained_file=null``; the value is parsed as YAML, then checked like file values.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

__all__ = [
    "ModelConfig", "LossWeights", "LossConfig", "Deviation", "TrainConfig", "InferConfig", "Config",
    "load_config", "config_from_dict", "config_to_dict", "flatten_config", "apply_overrides", "parse_override",
    "Schedule", "train_schedule", "lr_milestones", "resolve_nms_thr",
]


@dataclass
class ModelConfig:
    backbone: str = "dla34"
    skeleton: Union[Literal["coco", "crowdpose"], None] = None
    num_keypoints: Union[int, None] = None
    pretrained: bool = False
    pretrained_file: Union[str, None] = None
    init_backbone: Union[str, None] = None
    refine: bool = True
    intermediate_supervision: bool = True
    neck_channels: Union[int, None] = None
    head_channels: Union[int, None] = None
    embed_channels: Union[int, None] = None
    gn_groups: int = 32
    embedding_save_memory: bool = False
    num_levels: Union[int, None] = None
    channels_last: bool = False

    def check(self, where: str) -> None:
        _positive(self, where, "num_keypoints", "neck_channels", "head_channels", "embed_channels",
                  "gn_groups", "num_levels")
        if not self.backbone:
            raise ValueError(f"{where}.backbone: must not be empty")


@dataclass
class LossWeights:
    coarse: float = 0.1
    refine: float = 0.2
    cls: float = 1.0
    heatmap: float = 0.1

    def check(self, where: str) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) < 0:
                raise ValueError(f"{where}.{f.name}: must be ≥ 0, got {getattr(self, f.name)}")


@dataclass
class LossConfig:
    centroid: Literal["keypoints", "box"] = "keypoints"
    heatmap_loss: Literal["focal", "l2"] = "focal"
    weights: LossWeights = field(default_factory=LossWeights)
    pos_num: int = 1
    level_scale: float = 4.0
    refine_pos_thr: float = 0.7
    refine_low_quality_thr: Union[float, None] = 0.52
    cls_pos_thr: float = 0.6
    cls_neg_thr: float = 0.5

    def check(self, where: str) -> None:
        self.weights.check(f"{where}.weights")
        _positive(self, where, "pos_num", "level_scale")
        if not 0.0 <= self.cls_neg_thr <= self.cls_pos_thr <= 1.0:
            raise ValueError(f"{where}: need 0 ≤ cls_neg_thr ≤ cls_pos_thr ≤ 1, got "
                             f"{self.cls_neg_thr}, {self.cls_pos_thr}")
        if not 0.0 < self.refine_pos_thr <= 1.0:
            raise ValueError(f"{where}.refine_pos_thr: must be in (0, 1], got {self.refine_pos_thr}")


@dataclass
class TrainConfig:
    input_size: int = 512
    batch_size: int = 48
    micro_batches: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.0
    epochs: Union[int, None] = 210
    iterations: Union[int, None] = None
    lr_steps: list[float] = field(default_factory=lambda: [180, 200])
    lr_gamma: float = 0.1
    warmup_iters: int = 5
    warmup_ratio: float = 1.0 / 3.0
    grad_clip_norm: Union[float, None] = 35.0
    crop: Literal["person", "full"] = "person"
    scale_range: list[float] = field(default_factory=lambda: [0.5, 1.5])
    flip_prob: float = 0.5
    min_keypoints: int = 1
    num_workers: int = 0
    seed: int = 0
    deterministic: bool = True
    amp: bool = False
    amp_dtype: Literal["float16", "bfloat16"] = "float16"
    max_minutes: Union[float, None] = None
    log_every: int = 20
    ckpt_every: int = 1000
    snapshot_every: Union[int, None] = None
    find_unused_parameters: bool = False
    budget: float = 1.0

    def check(self, where: str) -> None:
        _positive(self, where, "input_size", "batch_size", "micro_batches", "lr", "epochs",
                  "iterations", "lr_gamma", "grad_clip_norm", "max_minutes", "log_every",
                  "ckpt_every", "snapshot_every", "budget")
        if self.epochs is None and self.iterations is None:
            raise ValueError(f"{where}: set train.epochs or train.iterations")
        if self.batch_size % self.micro_batches:
            raise ValueError(f"{where}.micro_batches: {self.micro_batches} does not divide "
                             f"batch_size {self.batch_size}")
        if any(s <= 0 for s in self.lr_steps) or list(self.lr_steps) != sorted(self.lr_steps):
            raise ValueError(f"{where}.lr_steps: must be positive and ascending, got {self.lr_steps}")
        if len(self.scale_range) != 2 or not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError(f"{where}.scale_range: need [lo, hi] with 0 < lo ≤ hi, "
                             f"got {self.scale_range}")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ValueError(f"{where}.flip_prob: must be in [0, 1], got {self.flip_prob}")
        if self.warmup_iters < 0 or not 0.0 < self.warmup_ratio <= 1.0:
            raise ValueError(f"{where}.warmup_iters/warmup_ratio: need iters ≥ 0 and ratio in (0, 1], "
                             f"got {self.warmup_iters}, {self.warmup_ratio}")
        if self.weight_decay < 0:
            raise ValueError(f"{where}.weight_decay: must be ≥ 0, got {self.weight_decay}")
        for name in ("min_keypoints", "num_workers", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"{where}.{name}: must be ≥ 0, got {getattr(self, name)}")

    @property
    def total_is_iterations(self) -> bool:
        return self.iterations is not None


@dataclass
class InferConfig:
    short_side: int = 640
    max_size: Union[int, None] = 1000
    size_divisor: Union[int, None] = None
    tta: bool = False
    tta_scales: list[int] = field(default_factory=lambda: [300, 400, 500, 600, 700, 800])
    flip: bool = True
    nms: Literal["oks", "iou"] = "oks"
    nms_thr: Union[float, None] = None
    score_thr: float = 0.05
    topk: int = 500
    max_dets: int = 100
    min_area: float = 1024.0
    coarse_only: bool = False

    def check(self, where: str) -> None:
        _positive(self, where, "short_side", "max_size", "size_divisor", "topk", "max_dets")
        if not self.tta_scales or any(s <= 0 for s in self.tta_scales):
            raise ValueError(f"{where}.tta_scales: need a non-empty list of positive short sides, "
                             f"got {self.tta_scales}")
        if self.nms_thr is not None and not 0.0 < self.nms_thr <= 1.0:
            raise ValueError(f"{where}.nms_thr: must be in (0, 1], got {self.nms_thr}")
        if not 0.0 <= self.score_thr <= 1.0:
            raise ValueError(f"{where}.score_thr: must be in [0, 1], got {self.score_thr}")
        if self.min_area < 0:
            raise ValueError(f"{where}.min_area: must be ≥ 0, got {self.min_area}")


@dataclass
class Deviation:
    """One documented departure of a recipe from the paper (documentation: the report prints it)."""
    switch: str = ""
    value: str = ""
    paper: str = ""
    why: str = ""


@dataclass
class Config:
    name: str = ""
    deviations: list[Deviation] = field(default_factory=list)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: InferConfig = field(default_factory=InferConfig)

    def check(self, where: str = "config") -> None:
        self.model.check("model")
        self.loss.check("loss")
        self.train.check("train")
        self.infer.check("infer")


# ------------------------------------------------------------------------------ validation


def _positive(obj: Any, where: str, *names: str) -> None:
    for name in names:
        v = getattr(obj, name)
        if v is not None and v <= 0:
            raise ValueError(f"{where}.{name}: must be > 0, got {v!r}")


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (str → float for
    YAML's '1e-4', int → float). Raise ValueError naming ``key``."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ValueError(f"{key}: {value!r} is not one of "
                             + ", ".join(repr(a) for a in allowed))
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ValueError(f"{key}: must not be null (expected {_describe(tp)})")
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ValueError as e:
                errors.append(str(e))
        if len(errors) == 1:
            raise ValueError(errors[0])
        raise ValueError(f"{key}: {value!r} is not {_describe(tp)}")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ValueError(f"{key}: expected {_describe(tp)}, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)         # YAML 1.1 reads '1e-4' (no dot) as a string
            except ValueError:
                pass
        raise ValueError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"{key}: expected a string, got {value!r}")
    raise TypeError(f"{key}: unsupported annotation {tp!r}")   # a bug in this module


def _build(cls: type, data: Any, where: str) -> Any:
    if isinstance(data, cls):
        data = config_to_dict(data)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ValueError(f"{_join(where, unknown[0])}: unknown key (known under "
                         f"{where or 'the top level'}: {', '.join(names)})")
    kwargs = {k: _coerce(v, hints[k], _join(where, k)) for k, v in data.items()}
    return cls(**kwargs)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else str(key)


# ---------------------------------------------------------------------------------- public


def config_from_dict(data: dict | None) -> Config:
    """Strictly build and check a Config from a plain (possibly partial) mapping."""
    cfg = _build(Config, data, "")
    cfg.check()
    return cfg


def flatten_config(d: dict, prefix: str = "") -> dict:
    """Nested config mapping → {dotted key: value} (``{"train": {"lr": 1}}`` → ``{"train.lr": 1}``)."""
    out = {}
    for key, v in d.items():
        name = f"{prefix}{key}"
        if isinstance(v, dict):
            out.update(flatten_config(v, name + "."))
        else:
            out[name] = v
    return out


def config_to_dict(cfg: Any) -> dict:
    """Plain nested dict (only str/int/float/bool/None/list/dict): safe for YAML, JSON and
    ``torch.load(weights_only=True)``."""
    return dataclasses.asdict(cfg)


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ValueError(f"override {item!r}: expected KEY=VALUE, e.g. train.lr=2e-4")
    key, _, raw = item.partition("=")
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ValueError(f"override {item!r}: bad key {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ValueError(f"override {item!r}: value is not valid YAML ({e})") from None
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Return a copy of the plain mapping ``data`` with dotted ``a.b=c`` overrides applied.
    Keys are checked later, by ``config_from_dict``; a dotted path through a non-mapping fails."""
    import copy

    out = copy.deepcopy(data) if data else {}
    for item in overrides or ():
        path, value = parse_override(item)
        node = out
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ValueError(f"override {item!r}: {'.'.join(path[:i + 1])} is not a section")
            node = nxt
        node[path[-1]] = value
    return out


def load_config(path_or_dict: str | Path | dict | Config | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a variant config (YAML file, plain dict, Config, or None for the defaults) and apply
    ``overrides`` (``["train.lr=2e-4", ...]``). Raises ValueError naming the file and key."""
    source = "config"
    if isinstance(path_or_dict, Config):
        data = config_to_dict(path_or_dict)
    elif isinstance(path_or_dict, (str, Path)):
        source = str(path_or_dict)
        try:
            with open(path_or_dict) as f:
                data = yaml.safe_load(f)
        except OSError as e:
            raise ValueError(f"{source}: cannot read config ({e.strerror})") from None
        except yaml.YAMLError as e:
            raise ValueError(f"{source}: not valid YAML ({e})") from None
        if data is not None and not isinstance(data, dict):
            raise ValueError(f"{source}: top level must be a mapping, got {type(data).__name__}")
    else:
        data = path_or_dict
    try:
        data = apply_overrides(data or {}, overrides)
        return config_from_dict(data)
    except ValueError as e:
        if source != "config":
            raise ValueError(f"{source}: {e}") from None
        raise


@dataclass(frozen=True)
class Schedule:
    """The effective length and schedule points of a run: ``train`` with ``train.budget`` applied
    (``train_schedule``). Every step count is in optimiser steps."""
    total_steps: int
    milestones: list[int]            # ×lr_gamma at each of these steps (MultiStepLR)
    warmup_iters: int
    ckpt_every: int
    snapshot_every: Union[int, None]
    max_minutes: Union[float, None]
    budget: float

    def lr_prefix(self, step: int) -> tuple:
        """What fixes the lr of steps 1..``step``: the warm-up and the milestones reached so far.
        Two schedules with the same prefix at ``step`` trained those steps identically."""
        return self.warmup_iters, sorted(m for m in self.milestones if m <= step)


def _scaled(value: Union[int, None], budget: float) -> Union[int, None]:
    return None if value is None else max(1, int(round(value * budget)))


def train_schedule(train: TrainConfig, steps_per_epoch: int) -> Schedule:
    """The run's schedule with ``steps_per_epoch`` optimiser steps per epoch: the one place where
    ``train.budget`` scales a run (total steps, lr milestones given in epochs/steps, warm-up,
    checkpoint and snapshot cadence, the wall-clock cap). lr milestones given as fractions are
    fractions of the scaled run. ``budget: 1`` is the config's values unchanged."""
    if steps_per_epoch < 1:
        raise ValueError("train: the data set gives no full batch "
                         f"(batch_size {train.batch_size}); use fewer/larger batches or more images")
    b = float(train.budget)
    if train.iterations is not None:
        total, unit = int(train.iterations), 1
    else:
        total, unit = int(train.epochs) * steps_per_epoch, steps_per_epoch
    total = max(1, int(round(total * b)))
    ms = [int(round(s * total)) if s < 1 else int(round(s * unit * b)) for s in train.lr_steps]
    warmup = int(round(train.warmup_iters * b))
    return Schedule(total_steps=total, milestones=ms, warmup_iters=warmup,
                    ckpt_every=_scaled(train.ckpt_every, b), snapshot_every=_scaled(train.snapshot_every, b),
                    max_minutes=None if train.max_minutes is None else train.max_minutes * b, budget=b)


def lr_milestones(train: TrainConfig, steps_per_epoch: int) -> tuple[int, list[int]]:
    """(total optimiser steps, lr milestones in steps) of a run with ``steps_per_epoch``
    (``train.budget`` applied: see ``train_schedule``)."""
    sched = train_schedule(train, steps_per_epoch)
    return sched.total_steps, list(sched.milestones)


#: OKS-NMS thresholds of the paper's two data sets (DESIGN.md, Inference).
DEFAULT_NMS_THR = {"coco": 0.2, "crowdpose": 0.3}


def resolve_nms_thr(infer: InferConfig, skeleton_name: str) -> float:
    if infer.nms_thr is not None:
        return float(infer.nms_thr)
    return DEFAULT_NMS_THR.get(skeleton_name, 0.2) if infer.nms == "oks" else 0.5
