"""`posedet train`: train one PoseDet variant.

    posedet train --config VARIANT.yaml [--set train.lr=2e-4 ...] \\
        --train-ann ANN.json [--train-images DIR] --out RUN_DIR [--resume] [--device cpu|cuda]
    torchrun --nproc_per_node 8 -m posedet train ...        # several GPUs / nodes (DDP)

Writes into RUN_DIR (created; the caller names it): ``last.pt`` (full state, every
``train.ckpt_every`` steps and at the end), ``final.pt`` (weights, config, signature; at the end or
on a time-budget stop), ``train_log.jsonl`` (one JSON object a line: every ``log_every`` steps the
mean of every loss term and count over the interval, lr, step, epoch, images/s; plus ``event``
lines: start, resume, stopped_on_budget, non_finite, done) and ``summary.json``.

Schedule (the authors' mmdetection config): Adam, gradient norm clipped at 35, a 5-step linear
warm-up from lr/3, then ``MultiStepLR`` — all stepped once per optimiser step (epoch milestones
are converted to steps, see ``config.lr_milestones``).

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
from posedet.atomic import write_json_atomic
from posedet.config import Config, config_to_dict, flatten_config, load_config, lr_milestones

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
    p.add_argument("--train-images", default=None, help="image folder (default: the annotation file's folder)")
    p.add_argument("--out", required=True, help="run folder (checkpoints, log, summary)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt if it exists")
    p.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: cuda if available)")
    p.add_argument("--stop-after-steps", type=int, default=None, help=argparse.SUPPRESS)


def main(args) -> int:
    try:
        cfg = load_config(args.config, args.overrides)
    except ValueError as e:
        print(f"posedet train: {e}", file=sys.stderr)
        return 2
    try:
        return train(cfg, args.train_ann, args.train_images, args.out, resume=args.resume,
                     device=args.device, stop_after_steps=args.stop_after_steps)
    except (ValueError, TrainError) as e:
        print(f"posedet train: {e}", file=sys.stderr)
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


def resolve_device(name: str | None, local_rank: int) -> torch.device:
    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainError("--device cuda but CUDA is not available")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    return dev


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


def build_scheduler(optimizer, tc, milestones: list[int]):
    """MultiStepLR (×lr_gamma at each milestone step), after a linear warm-up from
    warmup_ratio·lr over warmup_iters steps (mmcv's 'linear' warm-up) when warmup_iters > 0."""
    from torch.optim import lr_scheduler as S

    steps = S.MultiStepLR(optimizer, milestones=milestones, gamma=tc.lr_gamma)
    if not tc.warmup_iters:
        return steps
    warm = S.LinearLR(optimizer, start_factor=tc.warmup_ratio, end_factor=1.0,
                      total_iters=tc.warmup_iters)
    return S.ChainedScheduler([warm, steps], optimizer=optimizer)


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


def train(cfg: Config, train_ann: str, train_images: str | None, out_dir: str,
          resume: bool = False, device: str | None = None,
          stop_after_steps: int | None = None) -> int:
    """Run (or resume) one training run; returns the process exit code."""
    from posedet.data.dataset import PoseTrainDataset, collate_train
    from posedet.data.reader import load_coco_keypoints
    from posedet.losses import posedet_loss

    tc = cfg.train
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if tc.deterministic:        # read by cuBLAS when it starts: set before CUDA is touched
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    dev = resolve_device(device, local_rank)
    distributed = world > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(minutes=30))
    main_proc = rank == 0
    try:
        return _train(cfg, tc, train_ann, train_images, Path(out_dir), resume, dev, world, rank,
                      main_proc, distributed, stop_after_steps, PoseTrainDataset, collate_train,
                      load_coco_keypoints, posedet_loss)
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg, tc, train_ann, train_images, out, resume, dev, world, rank, main_proc,
           distributed, stop_after_steps, PoseTrainDataset, collate_train, load_coco_keypoints,
           posedet_loss) -> int:
    t_start = time.monotonic()
    if tc.batch_size % world:
        raise TrainError(f"train.batch_size {tc.batch_size} is not divisible by the "
                         f"{world} processes")
    per_rank = tc.batch_size // world
    if per_rank % tc.micro_batches:
        raise TrainError(f"train.micro_batches {tc.micro_batches} does not divide the per-process "
                         f"batch {per_rank} (batch_size {tc.batch_size} / {world} processes)")
    amp = bool(tc.amp and dev.type == "cuda")
    if tc.amp and not amp and main_proc:
        print("posedet train: train.amp is for CUDA; training in float32 on", dev, file=sys.stderr)
    amp_dtype = torch.float16 if tc.amp_dtype == "float16" else torch.bfloat16

    seed_everything(tc.seed)
    set_deterministic(tc.deterministic, dev)

    # ---- data
    index = load_coco_keypoints(train_ann, train_images, skeleton=cfg.model.skeleton)
    skeleton = index.skeleton
    k = skeleton.num_keypoints
    if cfg.model.num_keypoints is not None and cfg.model.num_keypoints != k:
        raise TrainError(f"model.num_keypoints is {cfg.model.num_keypoints} but {train_ann} has "
                         f"{k} keypoints (skeleton {skeleton.name!r})")
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
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True,
                                 seed=tc.seed, drop_last=True)
    steps_per_epoch = len(sampler) // per_rank
    if steps_per_epoch < 1:
        raise TrainError(f"{train_ann}: {len(dataset)} training images give no full batch of "
                         f"{tc.batch_size}")
    total_steps, milestones = lr_milestones(tc, steps_per_epoch)

    # ---- model, optimiser, schedule
    model = build_model_for(cfg, k).to(dev)
    signature = model_signature(model)
    net = model
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None,
            find_unused_parameters=tc.find_unused_parameters)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = build_scheduler(optimizer, tc, milestones)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and amp_dtype == torch.float16)

    out.mkdir(parents=True, exist_ok=True)
    last_path, final_path = out / "last.pt", out / "final.pt"
    step = 0
    resumed_from = None
    prior_train_s = 0.0          # wall time of earlier invocations (resume), for snapshots
    state = None
    if resume and last_path.exists():
        state = ckpt_io.load_checkpoint(last_path, map_location="cpu")
        changed = config_changes(state.get("config") or {}, config_to_dict(cfg))
        if changed:
            # another experiment in the same folder (e.g. loss.centroid edited): resuming would
            # "finish" with the old weights; start again instead
            if main_proc:
                print(f"posedet train: {last_path} was trained with another config "
                      f"({', '.join(changed[:6])}{' ...' if len(changed) > 6 else ''}); "
                      "starting from scratch", file=sys.stderr)
            state = None
    if state is not None:
        _check_resume(state, last_path, signature, k)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        ckpt_io.load_scheduler_state(scheduler, state["scheduler"])
        if state.get("scaler") is not None and scaler.is_enabled():
            scaler.load_state_dict(state["scaler"])
        ckpt_io.set_rng_state(state["rng"])
        step = resumed_from = int(state["step"])
        prior_train_s = float(state.get("train_s", 0.0))
        if int(state.get("total_steps", total_steps)) != total_steps and main_proc:
            print(f"posedet train: {last_path} was a {state.get('total_steps')}-step run; "
                  f"continuing to {total_steps} steps", file=sys.stderr)
        del state
    elif resume and main_proc and not last_path.exists():
        print(f"posedet train: no {last_path} yet; starting from scratch", file=sys.stderr)
    if resumed_from is None and main_proc:
        # a fresh start: nothing of an earlier run in this folder may look like this run's
        for old in [final_path, out / "summary.json", *sorted((out / "snapshots").glob("step*.pt"))]:
            old.unlink(missing_ok=True)

    log = JsonlLog(out / LOG_NAME, main_proc, resume_step=resumed_from)
    base = dict(world_size=world, device=str(dev), images=len(dataset), steps_per_epoch=steps_per_epoch,
                total_steps=total_steps, lr_milestones=milestones)
    if resumed_from is None:
        log.write(event="start", step=0, name=cfg.name, config=config_to_dict(cfg), **base)
    else:
        log.write(event="resume", step=step, **base)

    def payload(complete: bool) -> dict:
        return {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": ckpt_io.scheduler_state(scheduler),
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "rng": ckpt_io.rng_state(), "step": step, "epoch": step // steps_per_epoch,
            "total_steps": total_steps, "complete": complete,
            "train_s": round(prior_train_s + time.monotonic() - t_start, 3),
            "config": config_to_dict(cfg), "model_signature": signature,
            "skeleton": ckpt_io.skeleton_dict(skeleton),
            "meta": {"torch": str(torch.__version__), "world_size": world, "device": dev.type},
        }

    def save_last(complete: bool = False) -> None:
        if main_proc:
            ckpt_io.save_checkpoint(last_path, payload(complete))

    def weights_only(complete: bool) -> dict:
        p = payload(complete)
        for key in ("optimizer", "scheduler", "scaler", "rng"):
            p[key] = None
        return p

    def save_final(complete: bool) -> None:
        if main_proc:
            ckpt_io.save_checkpoint(final_path, weights_only(complete))

    def save_snapshot() -> None:
        # a learning-curve point: weights plus the training time and images behind them
        if main_proc:
            p = weights_only(False)
            p["meta"] = dict(p["meta"], train_s=round(prior_train_s + time.monotonic() - t_start, 3),
                             images_seen=step * tc.batch_size)
            ckpt_io.save_checkpoint(out / "snapshots" / f"step{step:06d}.pt", p)
            log.write(event="snapshot", step=step, images_seen=step * tc.batch_size,
                      train_s=p["meta"]["train_s"])

    # ---- loop
    from tqdm import tqdm

    bar = tqdm(total=total_steps, initial=step, desc="train", unit="step", disable=not main_proc,
               dynamic_ncols=True, mininterval=1.0)
    model.train()
    loss_kwargs = dict(centroid=cfg.loss.centroid, heatmap_loss=cfg.loss.heatmap_loss, pos_num=cfg.loss.pos_num,
                       refine_pos_thr=cfg.loss.refine_pos_thr, refine_low_quality_thr=cfg.loss.refine_low_quality_thr,
                       cls_pos_thr=cfg.loss.cls_pos_thr, cls_neg_thr=cfg.loss.cls_neg_thr,
                       refine=cfg.model.refine, intermediate_supervision=cfg.model.intermediate_supervision,
                       weights=config_to_dict(cfg.loss.weights))
    sigmas = list(skeleton.sigmas)
    parts = tc.micro_batches
    budget_s = tc.max_minutes * 60.0 if tc.max_minutes else None
    interval: dict[str, float] = {}
    interval_steps, interval_t0 = 0, time.perf_counter()
    run_images, run_time = 0, 0.0           # for images/s over the run (first step excluded)
    status = "complete" if step >= total_steps else None
    last_record: dict = {}
    term_names: list[str] | None = None
    budget_stop = False

    while status is None:
        epoch = step // steps_per_epoch
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        skip = (step % steps_per_epoch) * per_rank
        gen = torch.Generator()
        gen.manual_seed(tc.seed * 100003 + epoch)
        loader = DataLoader(dataset, batch_sampler=BatchSampler(SkipSampler(sampler, skip), per_rank, drop_last=True),
                            collate_fn=collate_train, num_workers=tc.num_workers, generator=gen,
                            pin_memory=dev.type == "cuda")
        for batch in loader:
            t_step = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            optimizer.zero_grad(set_to_none=True)
            sums: dict[str, torch.Tensor] = {}
            for j, mb in enumerate(split_batch(batch, parts)):
                images = mb["images"].to(dev, non_blocking=True)
                targets = to_device(mb["targets"], dev)
                sync = nullcontext() if (not distributed or j == parts - 1) else net.no_sync()
                with sync:
                    with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp):
                        outputs = net(images)
                    losses = posedet_loss(float_outputs(outputs), targets, sigmas, **loss_kwargs)
                    scaler.scale(losses["loss"] / parts).backward()
                for name, v in losses.items():
                    v = v.detach().float() if torch.is_tensor(v) else torch.tensor(float(v))
                    sums[name] = sums.get(name, 0.0) + v.to(dev)
            if term_names is None:
                # loss terms in the loss function's order (the first non-finite one is named)
                term_names = sorted(sums, key=lambda n: 0 if n.startswith("loss_") else 1 if n == "loss" else 2)
            # one collective per step: non-finite flags, loss terms, counts, budget flag
            over_budget = budget_s is not None and time.monotonic() - t_start > budget_s
            vec = torch.stack([(~torch.isfinite(sums[n])).float() for n in term_names]
                              + [torch.nan_to_num(sums[n], nan=0.0, posinf=0.0, neginf=0.0) for n in term_names]
                              + [torch.tensor(float(over_budget), device=dev)])
            if distributed:
                dist.all_reduce(vec)
            vals = vec.cpu().tolist()
            n_terms = len(term_names)
            bad = [n for n, f in zip(term_names, vals[:n_terms]) if f > 0]
            if bad:
                name = bad[0]
                msg = f"non-finite {name} at step {step + 1}"
                log.write(event="non_finite", step=step + 1, epoch=epoch, term=name, terms=bad)
                status = "non_finite"
                bar.close()
                if main_proc:
                    kept = (f"last good checkpoint: {last_path}" if last_path.exists()
                            else "no checkpoint was written before it")
                    print(f"posedet train: {msg}; {kept}", file=sys.stderr)
                    _write_summary(out, status, step, total_steps, steps_per_epoch, world, dev,
                                   cfg, run_images, run_time, last_record, t_start, msg=msg)
                return EXIT_NON_FINITE
            if tc.grad_clip_norm is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            budget_stop = vals[-1] > 0
            dt = time.perf_counter() - t_step
            denom = world * parts
            for n, v in zip(term_names, vals[n_terms:2 * n_terms]):
                v = v if n.startswith("num_") else v / denom
                interval[n] = interval.get(n, 0.0) + v
            interval_steps += 1
            if step > (resumed_from or 0) + 1:
                run_images += tc.batch_size
                run_time += dt
            bar.update(1)
            if step % tc.log_every == 0 or step == total_steps or budget_stop:
                elapsed = time.perf_counter() - interval_t0
                rec = {"step": step, "epoch": (step - 1) // steps_per_epoch, "lr": lr}
                rec.update({n: v / interval_steps for n, v in interval.items()})
                rec["images_per_s"] = interval_steps * tc.batch_size / max(elapsed, 1e-9)
                rec["elapsed_s"] = round(time.monotonic() - t_start, 3)
                log.write(**rec)
                last_record = rec
                bar.set_postfix(loss=f"{rec.get('loss', float('nan')):.4f}", lr=f"{lr:.2e}")
                interval, interval_steps, interval_t0 = {}, 0, time.perf_counter()
            if step >= total_steps:
                status = "complete"
            elif budget_stop:
                status = "stopped_on_budget"
            if tc.snapshot_every and (step % tc.snapshot_every == 0 or status is not None):
                save_snapshot()
            if status is not None or step % tc.ckpt_every == 0:
                save_last(complete=status == "complete")
            if stop_after_steps is not None and step >= stop_after_steps:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(EXIT_DEBUG_STOP)
            if status is not None:
                break
    bar.close()
    if status == "stopped_on_budget":
        log.write(event="stopped_on_budget", step=step, epoch=(step - 1) // steps_per_epoch,
                  max_minutes=tc.max_minutes, total_steps=total_steps)
        if main_proc:
            print(f"posedet train: stopped on the time budget ({tc.max_minutes} min) after step "
                  f"{step} of {total_steps}", file=sys.stderr)
    if main_proc:
        if status == "complete":
            log.write(event="done", step=step)
        _write_summary(out, status, step, total_steps, steps_per_epoch, world, dev, cfg,
                       run_images, run_time, last_record, t_start)
    save_final(complete=status == "complete")        # last: final.pt means everything is written
    return 0


# Keys a resumed run may change: the run's length and budget, logging and checkpoint cadence,
# data-loading workers, and everything that only matters at inference.
RESUMABLE_CHANGES = ("name", "deviations", "train.iterations", "train.epochs", "train.max_minutes",
                     "train.log_every", "train.ckpt_every", "train.snapshot_every", "train.num_workers",
                     "infer")


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
                   last_record: dict, t_start: float, msg: str | None = None) -> None:
    summary = {
        "status": status, "message": msg, "steps": step, "total_steps": total_steps,
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
