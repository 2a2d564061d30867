"""`posedet train`: train one PoseDet variant.

    posedet train --config VARIANT.yaml [--set train.lr=2e-4 ...] \\
        --train-ann ANN.json [--train-images DIR] --out RUN_DIR [--resume] [--device auto|cpu|cuda]
    torchrun --nproc_per_node 8 -m posedet train ...        # several GPUs / nodes (DDP)

Writes into RUN_DIR (created; the caller names it): ``last.pt`` (full state, every
``train.ckpt_every`` steps and at the end), ``final.pt`` (weights, config, signature; at the end or
on a time-budget stop), ``train_log.jsonl`` (one JSON object a line: every ``log_every`` steps the
mean of every loss term and count over the interval, lr, step, epoch, images/s; plus ``event``
lines: start, resume, stopped_on_budget, non_finite, done) and ``summary.json``.

Schedule (the authors' mmdetection config): Adam, gradient norm clipped at 35, a 5-step linear
warm-up from lr/3, then ``MultiStepLR`` — all stepped once per optimiser step (epoch milestones
are converted to steps). ``train.budget`` K scales the run: K × the steps, warm-up, step/epoch
milestones, checkpoint and snapshot cadence and time cap (``config.train_schedule``, the one place
it is applied; the config keeps the budget-1 values and the budget).

``--resume`` continues RUN_DIR/last.pt only if it is this run's: the same config up to the run's
length, budget and cadence (``RESUMABLE_CHANGES``), and a schedule that trained the steps done as
this one would (the same warm-up, the same lr drops so far); a longer run then takes its own later
lr drops. Anything else (another recipe, another budget whose warm-up or drops differ) starts from
scratch, with a message.

Determinism (CPU): the model is initialised from ``train.seed``; the sample order is
``DistributedSampler(seed=train.seed)`` (also with one process) re-shuffled per epoch; each
sample's augmentation draws from ``(seed, epoch, index)`` (``PoseTrainDataset``); DataLoader
workers are seeded from (seed, epoch). A resumed run rebuilds the interrupted epoch's order and
skips the batches already done, and restores model, optimiser, scheduler, GradScaler and RNG
states, so ``--resume`` after a kill ends with the same weights as an uninterrupted run.

Several processes (``torchrun``; gloo on CPU, NCCL on CUDA): ``train.batch_size`` is the global
batch; each of W processes takes batch_size / W samples (rank r takes every W-th sample of the
global batch). The loss of each process is normalised by *its own* positive counts and DDP
averages the gradients — the authors' setting (mmdetection normalises per GPU). A one-process run
with ``train.micro_batches = W`` computes exactly the same update: it splits each batch into W
interleaved parts, normalises each by its own counts and averages their gradients (only BatchNorm
running statistics differ: DDP keeps rank 0's). Logged loss terms are means over processes and
micro-batches; ``num_*`` counts are totals. Only rank 0 logs and writes files.

Fails fast (exit 2, one line, before any data is read): ``--device cuda`` without CUDA
(``posedet.devices.resolve_device``; ``auto``: CUDA when there is one, else the CPU) and
``model.pretrained`` weights that cannot be loaded offline (``posedet.model.weights.ensure_pretrained``:
stage them with ``posedet weights`` and pass ``model.pretrained_file``). ``summary.json`` records
the device used.

A non-finite loss stops the run before the optimiser step, with the message
``non-finite loss_refine at step 17`` (exit code 3); ``last.pt`` keeps the last good state.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import sys
import time
from contextlib import nullcontext
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, Sampler

from posedet import checkpoint as ckpt_io
from posedet import devices
from posedet.atomic import write_json_atomic
from posedet.config import (Config, Schedule, config_from_dict, config_to_dict, flatten_config, load_config,
                            train_schedule)

EXIT_NON_FINITE = 3
EXIT_DEBUG_STOP = 86          # --stop-after-steps: simulated crash (os._exit, no cleanup)
LOG_NAME = "train_log.jsonl"


class TrainError(RuntimeError):
    pass


# --------------------------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="variant YAML (see posedet/config.py); default: built-in defaults")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.lr=2e-4 (repeatable)")
    p.add_argument("--train-ann", required=True, help="COCO-format keypoint annotations")
    p.add_argument("--train-images", default=None, help="image folder (default: images/ beside the "
                   "annotation file if it exists, else the annotation file's folder)")
    p.add_argument("--out", required=True, help="run folder (checkpoints, log, summary)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt if it exists")
    p.add_argument("--device", default=None,
                   help="auto | cpu | cuda | cuda:N (default auto: cuda if available, else cpu)")
    p.add_argument("--stop-after-steps", type=int, default=None, help=argparse.SUPPRESS)


def main(args) -> int:
    try:
        cfg = load_config(args.config, args.overrides)
    except ValueError as e:
        print(f"posedet train: {e}", file=sys.stderr)
        return 2
    from posedet.model.backbones import PretrainedWeightsError

    try:
        return train(cfg, args.train_ann, args.train_images, args.out, resume=args.resume,
                     device=args.device, stop_after_steps=args.stop_after_steps)
    except (ValueError, TrainError, PretrainedWeightsError) as e:
        # one line (the weights' how-to included): what a job log shows
        print("posedet train: " + " ".join(str(e).split()), file=sys.stderr)
        return 2


# ----------------------------------------------------------------------------- helpers


class SkipSampler(Sampler):
    """The indices of ``sampler`` from position ``start`` on (resuming inside an epoch)."""

    def __init__(self, sampler: Sampler, start: int = 0) -> None:
        self.sampler, self.start = sampler, int(start)

    def __iter__(self):
        return islice(iter(self.sampler), self.start, None)

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.start)


def split_batch(batch: dict, parts: int) -> list[dict]:
    """Interleaved split of a ``collate_train`` batch: part j holds items j, j+parts, ... — the
    items DDP rank j of ``parts`` processes would get from the same global batch."""
    if parts == 1:
        return [batch]
    out = []
    for j in range(parts):
        out.append({"images": batch["images"][j::parts], "targets": batch["targets"][j::parts],
                    "image_ids": batch["image_ids"][j::parts]})
    return out


class FullImageTrainDataset(Dataset):
    """``train.crop: full``: every image whole — resized so its long side is ``input_size``
    (aspect kept), padded bottom/right to input_size², mirrored with ``flip_prob`` (draws from
    ``(seed, epoch, index)``). It is exactly the view ``posedet predict`` sees with
    short_side = max_size = input_size, so a run can be checked on its own training views
    (tests/test_overfit.py). Not the paper's recipe (that is ``PoseTrainDataset``'s random-person
    crop, whose views always have a person at the centre). Items as ``PoseTrainDataset``'s."""

    def __init__(self, index, input_size: int, rng_seed: int = 0, flip_prob: float = 0.0,
                 min_keypoints: int | None = 1) -> None:
        from posedet.data.reader import SkippedImages, check_image_files, filter_for_training

        if min_keypoints is not None:
            index = filter_for_training(index, min_keypoints)
        self.skipped_images = SkippedImages()
        self.index, _ = check_image_files(index, self.skipped_images)
        self.flip_index = list(index.skeleton.flip_index)
        self.input_size, self.rng_seed, self.flip_prob = int(input_size), int(rng_seed), float(flip_prob)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, i: int) -> dict:
        from posedet.data.reader import image_problem, read_image
        from posedet.data.transforms import (hflip_boxes_xyxy, hflip_keypoints, inference_transform,
                                             to_tensor)

        rec, ann = self.index.images[i], self.index.annotations[i]
        img = read_image(rec.path)
        problem = image_problem(img, rec)
        if problem is not None:
            raise TrainError(f"{self.index.ann_file}: image {rec.file_name}: {problem}")
        s = self.input_size
        out = inference_transform(img, short_side=s, max_size=s, size_divisor=s)
        scale, (_, w) = out["scale"], out["resized_size"]
        image = out["image"]
        kps = np.asarray(ann.keypoints, np.float32).copy()
        labelled = kps[..., 2] > 0
        kps[..., :2] = np.where(labelled[..., None], kps[..., :2] * scale, 0.0)
        b = np.asarray(ann.boxes, np.float64).reshape(-1, 4) * scale
        boxes = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1).astype(np.float32)
        box_areas = (b[:, 2] * b[:, 3]).astype(np.float32)
        areas = (np.asarray(ann.areas, np.float64) * scale ** 2).astype(np.float32)
        if np.random.default_rng([self.rng_seed, self.epoch, int(i)]).random() < self.flip_prob:
            image = image.copy()
            image[:, :w] = image[:, :w][:, ::-1]
            kps = hflip_keypoints(kps, w, self.flip_index)
            boxes = hflip_boxes_xyxy(boxes, w)
        boxes = np.clip(boxes, 0.0, float(s))
        keep = labelled.any(axis=1)
        return {"image": to_tensor(np.ascontiguousarray(image)),
                "keypoints": torch.from_numpy(kps[keep]), "boxes": torch.from_numpy(boxes[keep]),
                "areas": torch.from_numpy(areas[keep]), "box_areas": torch.from_numpy(box_areas[keep]),
                "image_id": int(rec.id)}


def to_device(targets: list[dict], device: torch.device) -> list[dict]:
    return [{k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in t.items()}
            for t in targets]


def float_outputs(outputs: dict) -> dict:
    """Outputs of an autocast forward as float32 (losses are computed outside autocast)."""
    def conv(v):
        if torch.is_tensor(v) and v.is_floating_point():
            return v.float()
        if isinstance(v, (list, tuple)):
            return type(v)(conv(x) for x in v)
        return v
    return {k: conv(v) for k, v in outputs.items()}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def set_deterministic(on: bool, device: torch.device) -> None:
    if not on:
        return
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def build_scheduler(optimizer, tc, sched: Schedule):
    """MultiStepLR (×lr_gamma at each of ``sched.milestones``), after a linear warm-up from
    warmup_ratio·lr over ``sched.warmup_iters`` steps (mmcv's 'linear' warm-up) when > 0."""
    from torch.optim import lr_scheduler as S

    steps = S.MultiStepLR(optimizer, milestones=sched.milestones, gamma=tc.lr_gamma)
    if not sched.warmup_iters:
        return steps
    warm = S.LinearLR(optimizer, start_factor=tc.warmup_ratio, end_factor=1.0,
                      total_iters=sched.warmup_iters)
    return S.ChainedScheduler([warm, steps], optimizer=optimizer)


def set_milestones(scheduler, milestones: list[int]) -> None:
    """Give a (restored) ``build_scheduler`` scheduler this run's lr milestones: a resumed run
    whose length changed keeps the drops it passed and takes its own later ones."""
    from collections import Counter

    from torch.optim.lr_scheduler import MultiStepLR

    for s in getattr(scheduler, "_schedulers", [scheduler]):
        if isinstance(s, MultiStepLR):
            s.milestones = Counter(milestones)


def build_model_for(cfg: Config, num_keypoints: int):
    """The detector of ``cfg.model`` with ``num_keypoints`` (see ``checkpoint.build_model_from_config``)."""
    return ckpt_io.build_model_from_config(config_to_dict(cfg), num_keypoints)


def model_signature(model) -> object:
    return model.model_signature() if hasattr(model, "model_signature") else None


class JsonlLog:
    """Append-only JSONL log (rank 0). On resume, lines after the resumed step are dropped (the
    interrupted run's steps that are repeated now)."""

    def __init__(self, path: Path, enabled: bool, resume_step: int | None = None) -> None:
        self.path, self.enabled = path, enabled
        if not enabled:
            return
        if resume_step is None:
            path.write_text("")
        elif path.exists():
            kept = []
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue                # a line cut by the kill
                if int(rec.get("step", 0)) <= resume_step:
                    kept.append(line)
            ckpt_io.atomic_write_bytes(path, lambda f: f.write("".join(l + "\n" for l in kept).encode()))

    def write(self, **rec) -> None:
        if not self.enabled:
            return
        rec.setdefault("time", round(time.time(), 3))
        with open(self.path, "a") as f:
            f.write(json.dumps(rec, allow_nan=True) + "\n")
            f.flush()


def read_log(path: str | os.PathLike) -> list[dict]:
    """Records of a ``train_log.jsonl`` (helper for tests and reports)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def write_json(path: Path, obj) -> None:
    write_json_atomic(path, obj)


# ------------------------------------------------------------------------------ training
#
# One invocation of ``posedet train`` is four steps a reader can follow:
#   set-up      ``_Run.__init__``: processes, data, schedule (``train_schedule``: the budget), model,
#               optimiser; ``_restore_or_start``: resume from last.pt or start clean; the log
#   one step    ``_Run.step_once``: forward/backward over the micro-batches, one collective,
#               the non-finite check, the optimiser and scheduler step
#   checkpoint  ``_Run.save_last`` / ``save_final`` / ``save_snapshot`` on the schedule's cadence
#   stop        ``_Run.status_after_step``: the run's length or the time budget; ``_Run.finish``


def train(cfg: Config, train_ann: str, train_images: str | None, out_dir: str,
          resume: bool = False, device: str | None = None,
          stop_after_steps: int | None = None) -> int:
    """Run (or resume) one training run; returns the process exit code."""
    proc = _Procs.start(cfg.train, device)
    try:
        run = _Run(cfg, train_ann, train_images, Path(out_dir), resume, proc)
        return run.loop(stop_after_steps)
    finally:
        if proc.distributed and dist.is_initialized():
            dist.destroy_process_group()


class _Procs:
    """This process's place in the run: device, world size, rank (torchrun's environment)."""

    def __init__(self, dev: torch.device, world: int, rank: int) -> None:
        self.dev, self.world, self.rank = dev, world, rank
        self.distributed = world > 1
        self.main = rank == 0

    @classmethod
    def start(cls, tc, device: str | None) -> "_Procs":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if tc.deterministic:        # read by cuBLAS when it starts: set before CUDA is touched
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        dev = devices.resolve_device(device, local_rank)     # DeviceError (a ValueError): exit 2
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo",
                                    timeout=datetime.timedelta(minutes=30))
        return cls(dev, world, rank)


class _NonFinite(Exception):
    def __init__(self, terms: list[str]) -> None:
        super().__init__(terms[0])
        self.terms = terms


class _Run:
    """One invocation of a training run (see the comment above ``train``)."""

    # ------------------------------------------------------------------------- set-up

    def __init__(self, cfg: Config, train_ann: str, train_images: str | None, out: Path,
                 resume: bool, proc: _Procs) -> None:
        self.t_start = time.monotonic()
        self.cfg, self.tc, self.out, self.proc = cfg, cfg.train, out, proc
        tc, dev = self.tc, proc.dev
        self.per_rank = self._per_rank_batch()
        self.amp = bool(tc.amp and dev.type == "cuda")
        if tc.amp and not self.amp and proc.main:
            print("posedet train: train.amp is for CUDA; training in float32 on", dev, file=sys.stderr)
        self.amp_dtype = torch.float16 if tc.amp_dtype == "float16" else torch.bfloat16
        seed_everything(tc.seed)
        set_deterministic(tc.deterministic, dev)
        # ImageNet weights that cannot be loaded fail here, in seconds, not after reading the data
        from posedet.model.weights import ensure_pretrained

        ensure_pretrained(cfg.model)
        self._build_data(train_ann, train_images)
        self.sched = train_schedule(tc, self.steps_per_epoch)
        self.total_steps = self.sched.total_steps
        self._build_model()
        out.mkdir(parents=True, exist_ok=True)
        self.last_path, self.final_path = out / "last.pt", out / "final.pt"
        self.step, self.resumed_from = 0, None
        self.prior_train_s = 0.0       # wall time of earlier invocations (resume), for snapshots
        self._restore_or_start(resume)
        self.log = JsonlLog(out / LOG_NAME, proc.main, resume_step=self.resumed_from)
        base = dict(world_size=proc.world, device=str(dev), images=len(self.dataset),
                    steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps,
                    lr_milestones=self.sched.milestones, warmup_iters=self.sched.warmup_iters,
                    budget=self.sched.budget)
        if self.resumed_from is None:
            self.log.write(event="start", step=0, name=cfg.name, config=config_to_dict(cfg), **base)
        else:
            self.log.write(event="resume", step=self.step, **base)
        # per-invocation accounting: the current log interval and images/s over the run
        self.interval: dict[str, float] = {}
        self.interval_steps, self.interval_t0 = 0, time.perf_counter()
        self.run_images, self.run_time = 0, 0.0           # images/s over the run (first step excluded)
        self.last_record: dict = {}
        self.term_names: list[str] | None = None
        from posedet.losses import posedet_loss

        self.loss_fn, self.loss_kwargs = posedet_loss, loss_arguments(cfg)

    def _per_rank_batch(self) -> int:
        tc, world = self.tc, self.proc.world
        if tc.batch_size % world:
            raise TrainError(f"train.batch_size {tc.batch_size} is not divisible by the "
                             f"{world} processes")
        per_rank = tc.batch_size // world
        if per_rank % tc.micro_batches:
            raise TrainError(f"train.micro_batches {tc.micro_batches} does not divide the per-process "
                             f"batch {per_rank} (batch_size {tc.batch_size} / {world} processes)")
        return per_rank

    def _build_data(self, train_ann: str, train_images: str | None) -> None:
        from posedet.data.dataset import PoseTrainDataset
        from posedet.data.reader import load_coco_keypoints

        cfg, tc = self.cfg, self.tc
        index = load_coco_keypoints(train_ann, train_images, skeleton=cfg.model.skeleton)
        self.skeleton = index.skeleton
        self.k = k = self.skeleton.num_keypoints
        if cfg.model.num_keypoints is not None and cfg.model.num_keypoints != k:
            raise TrainError(f"model.num_keypoints is {cfg.model.num_keypoints} but {train_ann} has "
                             f"{k} keypoints (skeleton {self.skeleton.name!r})")
        if tc.crop == "person":
            dataset = PoseTrainDataset(index, input_size=tc.input_size, rng_seed=tc.seed,
                                       scale_range=tuple(tc.scale_range), flip_prob=tc.flip_prob,
                                       min_keypoints=tc.min_keypoints)
        else:
            dataset = FullImageTrainDataset(index, input_size=tc.input_size, rng_seed=tc.seed,
                                            flip_prob=tc.flip_prob, min_keypoints=tc.min_keypoints)
        if len(dataset) == 0:
            raise TrainError(f"{train_ann}: no image with a trainable person "
                             f"(≥ {tc.min_keypoints} labelled keypoints)")
        self.dataset = dataset
        self.sampler = DistributedSampler(dataset, num_replicas=self.proc.world, rank=self.proc.rank,
                                          shuffle=True, seed=tc.seed, drop_last=True)
        self.steps_per_epoch = len(self.sampler) // self.per_rank
        if self.steps_per_epoch < 1:
            raise TrainError(f"{train_ann}: {len(dataset)} training images give no full batch of "
                             f"{tc.batch_size}")

    def _build_model(self) -> None:
        tc, proc = self.tc, self.proc
        self.model = build_model_for(self.cfg, self.k).to(proc.dev)
        self.signature = model_signature(self.model)
        self.net = self.model
        if proc.distributed:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[proc.dev.index] if proc.dev.type == "cuda" else None,
                find_unused_parameters=tc.find_unused_parameters)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        self.scheduler = build_scheduler(self.optimizer, tc, self.sched)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)

    def _restore_or_start(self, resume: bool) -> None:
        """Resume from last.pt when asked and it is this run's (same recipe, a schedule that
        trained its steps as this one would); otherwise start clean."""
        main, last_path = self.proc.main, self.last_path
        state = None
        if resume and last_path.exists():
            state = ckpt_io.load_checkpoint(last_path, map_location="cpu")
            why = self._why_not_resume(state)
            if why:
                # resuming would "finish" with the other run's weights: start again instead
                if main:
                    print(f"posedet train: {last_path} was trained {why}; starting from scratch",
                          file=sys.stderr)
                state = None
        if state is not None:
            _check_resume(state, last_path, self.signature, self.k)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            ckpt_io.load_scheduler_state(self.scheduler, state["scheduler"])
            set_milestones(self.scheduler, self.sched.milestones)      # this run's later ones
            if state.get("scaler") is not None and self.scaler.is_enabled():
                self.scaler.load_state_dict(state["scaler"])
            ckpt_io.set_rng_state(state["rng"])
            self.step = self.resumed_from = int(state["step"])
            self.prior_train_s = float(state.get("train_s", 0.0))
            if int(state.get("total_steps", self.total_steps)) != self.total_steps and main:
                print(f"posedet train: {last_path} was a {state.get('total_steps')}-step run; "
                      f"continuing to {self.total_steps} steps", file=sys.stderr)
        elif resume and main and not last_path.exists():
            print(f"posedet train: no {last_path} yet; starting from scratch", file=sys.stderr)
        if self.resumed_from is None and main:
            # a fresh start: nothing of an earlier run in this folder may look like this run's
            for old in [self.final_path, self.out / "summary.json",
                        *sorted((self.out / "snapshots").glob("step*.pt"))]:
                old.unlink(missing_ok=True)

    def _why_not_resume(self, state: dict) -> str | None:
        """None if ``state`` (a last.pt) may be continued by this run, else why not."""
        old_config = state.get("config") or {}
        changed = config_changes(old_config, config_to_dict(self.cfg))
        if changed:          # another experiment in the same folder (e.g. loss.centroid edited)
            return f"with another config ({', '.join(changed[:6])}{' ...' if len(changed) > 6 else ''})"
        step = int(state["step"])
        try:
            old = train_schedule(config_from_dict(old_config).train, self.steps_per_epoch)
        except ValueError as e:
            return f"with a config this version cannot read ({e})"
        if step > self.total_steps:
            return f"for {step} steps, more than this run's {self.total_steps} (budget {self.sched.budget:g})"
        if old.lr_prefix(step) != self.sched.lr_prefix(step):
            # e.g. another train.budget: its warm-up and lr drops fall elsewhere, so the steps
            # done are not this run's first steps
            return (f"on another schedule (budget {old.budget:g}: warm-up {old.warmup_iters}, lr "
                    f"milestones {old.milestones} of {old.total_steps} steps; now budget "
                    f"{self.sched.budget:g}: warm-up {self.sched.warmup_iters}, milestones "
                    f"{self.sched.milestones} of {self.total_steps})")
        return None

    # ----------------------------------------------------------------------- the loop

    def loop(self, stop_after_steps: int | None = None) -> int:
        """Steps until the run's length or the time budget; returns the exit code."""
        from tqdm import tqdm

        self.bar = tqdm(total=self.total_steps, initial=self.step, desc="train", unit="step",
                        disable=not self.proc.main, dynamic_ncols=True, mininterval=1.0)
        self.model.train()
        status = "complete" if self.step >= self.total_steps else None
        while status is None:
            epoch = self.step // self.steps_per_epoch
            for batch in self._epoch_loader(epoch):
                t_step = time.perf_counter()
                lr = self.optimizer.param_groups[0]["lr"]
                try:
                    vals, over_budget = self.step_once(batch)
                except _NonFinite as e:
                    return self._stop_non_finite(e.terms, epoch)
                self._account(vals, time.perf_counter() - t_step)
                self._log_interval(lr, over_budget)
                status = self.status_after_step(over_budget)
                self.checkpoint_on_cadence(status)
                if stop_after_steps is not None and self.step >= stop_after_steps:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(EXIT_DEBUG_STOP)
                if status is not None:
                    break
        self.bar.close()
        return self.finish(status)

    def _epoch_loader(self, epoch: int) -> DataLoader:
        """The rest of ``epoch``'s batches (a resumed run skips the ones already done)."""
        tc = self.tc
        self.dataset.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        skip = (self.step % self.steps_per_epoch) * self.per_rank
        gen = torch.Generator()
        gen.manual_seed(tc.seed * 100003 + epoch)
        from posedet.data.dataset import collate_train

        return DataLoader(self.dataset,
                          batch_sampler=BatchSampler(SkipSampler(self.sampler, skip), self.per_rank,
                                                     drop_last=True),
                          collate_fn=collate_train, num_workers=tc.num_workers, generator=gen,
                          pin_memory=self.proc.dev.type == "cuda")

    # ------------------------------------------------------------------------ one step

    def step_once(self, batch: dict) -> tuple[list[float], bool]:
        """One optimiser step on ``batch``: forward/backward over its micro-batches, then one
        collective (non-finite flags, loss terms, counts, the budget flag) and the update.
        Returns the reduced values (flags, then sums, per term) and whether any process is over
        the time budget. Raises ``_NonFinite`` before the optimiser step."""
        proc, tc = self.proc, self.tc
        dev, parts = proc.dev, tc.micro_batches
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, torch.Tensor] = {}
        for j, mb in enumerate(split_batch(batch, parts)):
            images = mb["images"].to(dev, non_blocking=True)
            targets = to_device(mb["targets"], dev)
            sync = nullcontext() if (not proc.distributed or j == parts - 1) else self.net.no_sync()
            with sync:
                with torch.autocast(dev.type, dtype=self.amp_dtype, enabled=self.amp):
                    outputs = self.net(images)
                losses = self.loss_fn(float_outputs(outputs), targets, list(self.skeleton.sigmas),
                                      **self.loss_kwargs)
                self.scaler.scale(losses["loss"] / parts).backward()
            for name, v in losses.items():
                v = v.detach().float() if torch.is_tensor(v) else torch.tensor(float(v))
                sums[name] = sums.get(name, 0.0) + v.to(dev)
        if self.term_names is None:
            # loss terms in the loss function's order (the first non-finite one is named)
            self.term_names = sorted(sums, key=lambda n: 0 if n.startswith("loss_") else 1 if n == "loss" else 2)
        names = self.term_names
        budget_s = self.sched.max_minutes * 60.0 if self.sched.max_minutes else None
        over_budget = budget_s is not None and time.monotonic() - self.t_start > budget_s
        vec = torch.stack([(~torch.isfinite(sums[n])).float() for n in names]
                          + [torch.nan_to_num(sums[n], nan=0.0, posinf=0.0, neginf=0.0) for n in names]
                          + [torch.tensor(float(over_budget), device=dev)])
        if proc.distributed:
            dist.all_reduce(vec)
        vals = vec.cpu().tolist()
        bad = [n for n, f in zip(names, vals[:len(names)]) if f > 0]
        if bad:
            raise _NonFinite(bad)
        if tc.grad_clip_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return vals, vals[-1] > 0

    def _account(self, vals: list[float], dt: float) -> None:
        """Add one step's loss terms to the log interval, and its time to the run's images/s."""
        n_terms, denom = len(self.term_names), self.proc.world * self.tc.micro_batches
        for n, v in zip(self.term_names, vals[n_terms:2 * n_terms]):
            v = v if n.startswith("num_") else v / denom
            self.interval[n] = self.interval.get(n, 0.0) + v
        self.interval_steps += 1
        if self.step > (self.resumed_from or 0) + 1:
            self.run_images += self.tc.batch_size
            self.run_time += dt
        self.bar.update(1)

    def _log_interval(self, lr: float, over_budget: bool) -> None:
        step = self.step
        if not (step % self.tc.log_every == 0 or step == self.total_steps or over_budget):
            return
        elapsed = time.perf_counter() - self.interval_t0
        rec = {"step": step, "epoch": (step - 1) // self.steps_per_epoch, "lr": lr}
        rec.update({n: v / self.interval_steps for n, v in self.interval.items()})
        rec["images_per_s"] = self.interval_steps * self.tc.batch_size / max(elapsed, 1e-9)
        rec["elapsed_s"] = round(time.monotonic() - self.t_start, 3)
        self.log.write(**rec)
        self.last_record = rec
        self.bar.set_postfix(loss=f"{rec.get('loss', float('nan')):.4f}", lr=f"{lr:.2e}")
        self.interval, self.interval_steps, self.interval_t0 = {}, 0, time.perf_counter()

    # ----------------------------------------------------------------------- stopping

    def status_after_step(self, over_budget: bool) -> str | None:
        """"complete" at the run's length, "stopped_on_budget" past the time budget, else None."""
        if self.step >= self.total_steps:
            return "complete"
        if over_budget:
            return "stopped_on_budget"
        return None

    def _stop_non_finite(self, terms: list[str], epoch: int) -> int:
        name, step = terms[0], self.step + 1
        msg = f"non-finite {name} at step {step}"
        self.log.write(event="non_finite", step=step, epoch=epoch, term=name, terms=terms)
        self.bar.close()
        if self.proc.main:
            kept = (f"last good checkpoint: {self.last_path}" if self.last_path.exists()
                    else "no checkpoint was written before it")
            print(f"posedet train: {msg}; {kept}", file=sys.stderr)
            self._write_summary("non_finite", msg=msg)
        return EXIT_NON_FINITE

    def finish(self, status: str) -> int:
        step, tc = self.step, self.tc
        if status == "stopped_on_budget":
            self.log.write(event="stopped_on_budget", step=step, epoch=(step - 1) // self.steps_per_epoch,
                           max_minutes=self.sched.max_minutes, total_steps=self.total_steps)
            if self.proc.main:
                print(f"posedet train: stopped on the time budget ({self.sched.max_minutes} min) after "
                      f"step {step} of {self.total_steps}", file=sys.stderr)
        if self.proc.main:
            if status == "complete":
                self.log.write(event="done", step=step)
            self._write_summary(status)
        self.save_final(complete=status == "complete")   # last: final.pt means everything is written
        return 0

    def _write_summary(self, status: str, msg: str | None = None) -> None:
        _write_summary(self.out, status, self.step, self.total_steps, self.steps_per_epoch,
                       self.proc.world, self.proc.dev, self.cfg, self.run_images, self.run_time,
                       self.last_record, self.t_start, msg=msg, budget=self.sched.budget)

    # --------------------------------------------------------------------- checkpoints

    def checkpoint_on_cadence(self, status: str | None) -> None:
        """Snapshot (learning curve) and last.pt every so many steps (the schedule's, budget
        applied) and when the run stops."""
        step, sched = self.step, self.sched
        if sched.snapshot_every and (step % sched.snapshot_every == 0 or status is not None):
            self.save_snapshot()
        if status is not None or step % sched.ckpt_every == 0:
            self.save_last(complete=status == "complete")

    def _train_s(self) -> float:
        return round(self.prior_train_s + time.monotonic() - self.t_start, 3)

    def payload(self, complete: bool) -> dict:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": ckpt_io.scheduler_state(self.scheduler),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "rng": ckpt_io.rng_state(), "step": self.step, "epoch": self.step // self.steps_per_epoch,
            "total_steps": self.total_steps, "complete": complete,
            "train_s": self._train_s(),
            "config": config_to_dict(self.cfg), "model_signature": self.signature,
            "skeleton": ckpt_io.skeleton_dict(self.skeleton),
            "meta": {"torch": str(torch.__version__), "world_size": self.proc.world,
                     "device": self.proc.dev.type},
        }

    def weights_only(self, complete: bool) -> dict:
        p = self.payload(complete)
        for key in ("optimizer", "scheduler", "scaler", "rng"):
            p[key] = None
        return p

    def save_last(self, complete: bool = False) -> None:
        if self.proc.main:
            ckpt_io.save_checkpoint(self.last_path, self.payload(complete))

    def save_final(self, complete: bool) -> None:
        if self.proc.main:
            ckpt_io.save_checkpoint(self.final_path, self.weights_only(complete))

    def save_snapshot(self) -> None:
        """A learning-curve point: weights plus the training time and images behind them."""
        if not self.proc.main:
            return
        p = self.weights_only(False)
        images_seen = self.step * self.tc.batch_size
        p["meta"] = dict(p["meta"], train_s=self._train_s(), images_seen=images_seen)
        ckpt_io.save_checkpoint(self.out / "snapshots" / f"step{self.step:06d}.pt", p)
        self.log.write(event="snapshot", step=self.step, images_seen=images_seen,
                       train_s=p["meta"]["train_s"])


def loss_arguments(cfg: Config) -> dict:
    """``posedet_loss`` keyword arguments of a config (everything but outputs, targets, sigmas)."""
    return dict(centroid=cfg.loss.centroid, heatmap_loss=cfg.loss.heatmap_loss, pos_num=cfg.loss.pos_num,
                level_scale=cfg.loss.level_scale,
                refine_pos_thr=cfg.loss.refine_pos_thr, refine_low_quality_thr=cfg.loss.refine_low_quality_thr,
                cls_pos_thr=cfg.loss.cls_pos_thr, cls_neg_thr=cfg.loss.cls_neg_thr,
                refine=cfg.model.refine, intermediate_supervision=cfg.model.intermediate_supervision,
                weights=config_to_dict(cfg.loss.weights))


# Keys a resumed run may change: where the ImageNet start was read from (a resumed run reads its
# weights from last.pt), the run's length and budget, logging and checkpoint cadence,
# data-loading workers, and everything that only matters at inference. A changed length or budget
# resumes only if the steps already done were trained as this schedule would train them (the same
# warm-up and lr drops so far: ``_Run._why_not_resume``); the later lr drops are this run's.
RESUMABLE_CHANGES = ("name", "deviations", "model.pretrained_file", "train.iterations", "train.epochs", "train.budget",
                     "train.max_minutes", "train.log_every", "train.ckpt_every", "train.snapshot_every",
                     "train.num_workers", "infer")


def config_changes(old: dict, new: dict) -> list[str]:
    """Dotted keys whose values differ between a checkpoint's config and this run's, leaving out
    ``RESUMABLE_CHANGES`` (a longer run or another budget may resume; another recipe may not)."""
    a, b = flatten_config(old), flatten_config(new)
    keep = lambda key: not any(key == r or key.startswith(r + ".") for r in RESUMABLE_CHANGES)  # noqa: E731
    return sorted(key for key in set(a) | set(b) if keep(key) and a.get(key) != b.get(key))


def _check_resume(state: dict, path: Path, signature, k: int) -> None:
    if state.get("optimizer") is None or state.get("rng") is None:
        raise TrainError(f"{path}: holds no optimiser/RNG state (an export?); cannot resume from it")
    sk = (state.get("skeleton") or {}).get("keypoints")
    if sk is not None and len(sk) != k:
        raise TrainError(f"{path}: checkpoint has {len(sk)} keypoints, the training data {k}")
    if signature is not None and state["model_signature"] != signature:
        raise TrainError(f"{path}: checkpoint model {state['model_signature']} differs from the "
                         f"configured model {signature}")


def _write_summary(out: Path, status: str, step: int, total_steps: int, steps_per_epoch: int,
                   world: int, dev: torch.device, cfg: Config, run_images: int, run_time: float,
                   last_record: dict, t_start: float, msg: str | None = None,
                   budget: float = 1.0) -> None:
    summary = {
        "status": status, "message": msg, "steps": step, "total_steps": total_steps, "budget": budget,
        "epochs": step / steps_per_epoch, "steps_per_epoch": steps_per_epoch,
        "images_per_s": (run_images / run_time) if run_time > 0 else None,
        "images_per_s_note": "global training images per second over this invocation, first step excluded",
        "wall_s": round(time.monotonic() - t_start, 3),
        "world_size": world, "device": str(dev), "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "last_log": last_record, "config": config_to_dict(cfg),
        "stopped_on_budget": status == "stopped_on_budget",
    }
    write_json(out / "summary.json", summary)


if __name__ == "__main__":       # `torchrun ... -m posedet.train` also works
    parser = argparse.ArgumentParser(prog="posedet train")
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
