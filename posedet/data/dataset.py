"""torch Datasets over a PoseDatasetIndex, and their collate functions.

Unusable images (missing, empty, undecodable, or of a size other than the annotated one)
----------------------------------------------------------------------------------------
Both datasets stat every file at construction (``check_images=True``, cheap) and leave out the
missing and empty ones; decoding is only tried in ``__getitem__`` (decoding all of COCO train up
front would take minutes). When decoding fails there:

* ``PoseTrainDataset`` moves on to the next position (i+1, i+2, ... modulo the length) and uses
  that image with the RNG of the requested index i, so the sample is still a function of
  (seed, epoch, i) and of the files on disk;
* ``PoseTestDataset`` returns the item with ``image=None`` and ``skipped`` set; ``collate_test``
  drops it and lists its id under ``skipped_image_ids``.

Every skip is logged once per file with the running count, and ``dataset.skipped`` lists
(file_name, reason). With DataLoader workers each worker keeps its own list (worker processes
hold copies of the dataset); the log lines carry the information either way.

Determinism: ``PoseTrainDataset.__getitem__(i)`` draws from ``np.random.default_rng([seed, epoch,
i])``; call ``set_epoch(e)`` before each epoch (like DistributedSampler.set_epoch). With
``persistent_workers=True`` the workers keep the epoch they were started with, so use
non-persistent workers (the default) or pass the epoch through the sampler.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from posedet.data.reader import (PoseDatasetIndex, SkippedImages, check_image_files,
                                 filter_for_training, image_problem, read_image)
from posedet.data.transforms import inference_transform, to_tensor, train_transform


class PoseTrainDataset(Dataset):
    """Random-person crops for training.

    ``min_keypoints``: the training policy of ``filter_for_training`` (docs/data.md) is applied:
    labelled keypoints just outside the image clipped onto it, crowd regions, persons with fewer
    labelled keypoints and persons without a usable box dropped, and images left without
    persons; None keeps the index as given.

    Item: ``image`` float32 [3, S, S] (ImageNet-normalised); ``keypoints`` float32 [N, K, 3]
    (x, y, v in patch pixels, v = 0 and x = y = 0 outside the patch); ``boxes`` float32 [N, 4]
    xyxy (annotated box, transformed, clipped to the patch); ``areas`` float32 [N] (annotation
    area · s²); ``box_areas`` float32 [N] (annotated box w·h · s², unclipped: the training OKS
    area); ``image_id`` int. Persons with no labelled keypoint in the patch are left out.
    """

    def __init__(self, index: PoseDatasetIndex, input_size: int = 512, rng_seed: int = 0,
                 scale_range: tuple[float, float] = (0.5, 1.5), flip_prob: float = 0.5,
                 min_keypoints: int | None = 1, check_images: bool = True) -> None:
        self.skipped_images = SkippedImages()
        if min_keypoints is not None:
            index = filter_for_training(index, min_keypoints)
        if check_images:
            index, _ = check_image_files(index, self.skipped_images)
        self.index = index
        self.skeleton = index.skeleton
        self.flip_index = list(index.skeleton.flip_index)
        self.input_size = int(input_size)
        self.rng_seed = int(rng_seed)
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.flip_prob = float(flip_prob)
        self.epoch = 0
        self._bad: set[int] = set()

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return self.skipped_images.skipped

    def __len__(self) -> int:
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng_for(self, i: int) -> np.random.Generator:
        return np.random.default_rng([self.rng_seed, self.epoch, int(i)])

    def _load(self, i: int) -> tuple[int, np.ndarray]:
        n = len(self.index)
        if n == 0:
            raise IndexError("PoseTrainDataset is empty")
        for step in range(n):
            j = (i + step) % n
            if j in self._bad:
                continue
            rec = self.index.images[j]
            img = read_image(rec.path)
            problem = image_problem(img, rec)
            if problem is None:
                return j, img
            self._bad.add(j)
            self.skipped_images.add(rec.file_name, problem)
        raise RuntimeError(f"{self.index.ann_file}: no readable image left "
                           f"({len(self.skipped)} skipped)")

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        rng = self.rng_for(i)
        j, img = self._load(i)
        ann = self.index.annotations[j]
        out = train_transform(img, ann.keypoints, ann.boxes, ann.areas, rng,
                              flip_index=self.flip_index, output_size=self.input_size,
                              scale_range=self.scale_range, flip_prob=self.flip_prob)
        return {
            "image": to_tensor(out["image"]),
            "keypoints": torch.from_numpy(out["keypoints"]),
            "boxes": torch.from_numpy(out["boxes"]),
            "areas": torch.from_numpy(out["areas"]),
            "box_areas": torch.from_numpy(out["box_areas"]),
            "image_id": int(self.index.images[j].id),
        }


class PoseTestDataset(Dataset):
    """Whole images, resized for single-scale (or one TTA scale) inference.

    Item: ``image`` float32 [3, Hp, Wp] (padded to ``size_divisor``) or None when unreadable;
    ``image_id``; ``scale`` (original = resized / scale; None when skipped); ``orig_size``
    (h, w); ``input_size`` (h, w) of the resized image before padding (use its width for flip
    TTA); ``skipped`` (None or the reason).
    """

    def __init__(self, index: PoseDatasetIndex, short_side: int = 640,
                 max_size: int | None = 1000, size_divisor: int | None = 64,
                 check_images: bool = True) -> None:
        self.skipped_images = SkippedImages()
        if check_images:
            index, _ = check_image_files(index, self.skipped_images)
        self.index = index
        self.skeleton = index.skeleton
        self.short_side = int(short_side)
        self.max_size = max_size
        self.size_divisor = size_divisor

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return self.skipped_images.skipped

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        rec = self.index.images[i]
        img = read_image(rec.path)
        problem = image_problem(img, rec)
        if problem is not None:
            self.skipped_images.add(rec.file_name, problem)
            return {"image": None, "image_id": int(rec.id), "scale": None,
                    "orig_size": (rec.height, rec.width), "input_size": None,
                    "skipped": problem}
        out = inference_transform(img, self.short_side, self.max_size, self.size_divisor)
        return {"image": to_tensor(out["image"]), "image_id": int(rec.id),
                "scale": float(out["scale"]), "orig_size": tuple(out["orig_size"]),
                "input_size": tuple(out["resized_size"]), "skipped": None}


def collate_train(batch: list[dict]) -> dict:
    """``images`` [B, 3, S, S]; ``targets``: per image a dict of keypoints, boxes, areas,
    box_areas, image_id; ``image_ids`` list."""
    images = torch.stack([b["image"] for b in batch])
    targets = [{k: b[k] for k in ("keypoints", "boxes", "areas", "box_areas", "image_id")}
               for b in batch]
    return {"images": images, "targets": targets, "image_ids": [b["image_id"] for b in batch]}


def collate_test(batch: list[dict]) -> dict:
    """Drop skipped items; zero-pad (= the normalised mean colour) bottom/right to the largest
    H, W. Keys: ``images`` [B, 3, H, W], ``image_ids``, ``scales``, ``orig_sizes``,
    ``input_sizes`` (lists), ``skipped_image_ids``."""
    ok = [b for b in batch if b["image"] is not None]
    skipped = [b["image_id"] for b in batch if b["image"] is None]
    if ok:
        h = max(b["image"].shape[1] for b in ok)
        w = max(b["image"].shape[2] for b in ok)
        images = torch.stack([F.pad(b["image"], (0, w - b["image"].shape[2],
                                                 0, h - b["image"].shape[1])) for b in ok])
    else:
        images = torch.zeros((0, 3, 0, 0), dtype=torch.float32)
    return {"images": images, "image_ids": [b["image_id"] for b in ok],
            "scales": [b["scale"] for b in ok], "orig_sizes": [b["orig_size"] for b in ok],
            "input_sizes": [b["input_size"] for b in ok], "skipped_image_ids": skipped}
