"""``posedet bench loader``: images per second of the training data loader, per worker.

    posedet bench loader --out results/bench/loader.json [--input-size 512] [--images 240]

What one worker does for every training image of the paper's recipe: decode a real JPEG
(``read_image``), draw a random-person crop at scale U[0.5, 1.5] with flip, warp it to
``input_size``² and normalise (``PoseTrainDataset``), then ``collate_train``. It runs a
``DataLoader`` with exactly one worker process (``num_workers=1``; the main process only receives
batches), so the figure is one worker's throughput: a job with W workers gets at most W times it.

Images: the real annotated sample images (COCO val2017, CrowdPose and OCHuman samples beside the
repository, ``--shared-data``), cycled over epochs so every crop differs. The output records the
load average before and after: a figure measured beside another CPU-heavy job is not a figure.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from posedet.atomic import write_json_atomic

SAMPLES = (("coco", "test_coco.json"), ("crowdpose", "test_crowdpose.json"), ("ochuman", "test_ochuman.json"))


def _datasets(shared: Path, input_size: int):
    from posedet.data.dataset import PoseTrainDataset
    from posedet.data.reader import load_coco_keypoints

    out = []
    for folder, ann in SAMPLES:
        path = shared / "samples" / folder / ann
        if path.is_file():
            index = load_coco_keypoints(path, image_root=path.parent)
            out.append(PoseTrainDataset(index, input_size=input_size, rng_seed=0))
    if not out:
        raise SystemExit(f"posedet bench loader: no sample annotations under {shared / 'samples'}")
    return out


class _Cycled:
    """The sample datasets concatenated and cycled ``repeat`` times (epoch = pass number)."""

    def __init__(self, datasets, repeat: int) -> None:
        self.items = [(d, i) for d in datasets for i in range(len(d))]
        self.repeat = repeat

    def __len__(self) -> int:
        return len(self.items) * self.repeat

    def __getitem__(self, j: int):
        d, i = self.items[j % len(self.items)]
        d.set_epoch(j // len(self.items))
        return d[i]


def run(shared: Path, input_size: int = 512, images: int = 240, batch: int = 6) -> dict:
    import torch
    from torch.utils.data import DataLoader

    from posedet.bench.protocol import cpu_model
    from posedet.data.dataset import collate_train

    torch.set_num_threads(1)
    datasets = _datasets(shared, input_size)
    ds = _Cycled(datasets, repeat=max(1, -(-images // sum(len(d) for d in datasets))))
    load0 = os.getloadavg()
    loader = DataLoader(ds, batch_size=batch, shuffle=False, num_workers=1, collate_fn=collate_train,
                        prefetch_factor=4, persistent_workers=False)
    it = iter(loader)
    next(it)                                    # worker start-up and the first batch: not timed
    n, t0 = 0, time.perf_counter()
    for b in it:
        n += len(b["image_ids"])
        if n >= images:
            break
    dt = time.perf_counter() - t0
    files = sorted({rec.file_name for d in datasets for rec in d.index.images})
    return {
        "what": "training data loader, one worker: decode + random-person crop + warp + normalise + collate",
        "input_size": input_size, "batch": batch, "images_timed": n, "seconds": round(dt, 3),
        "images_per_s_per_worker": round(n / dt, 2), "worker_threads": 1,
        "source_images": len(files), "source_sizes": sorted({f"{rec.width}x{rec.height}" for d in datasets
                                                             for rec in d.index.images}),
        "loadavg_before": list(load0), "loadavg_after": list(os.getloadavg()),
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shared-data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"),
                   help="folder with samples/{coco,crowdpose,ochuman} (default: ../shared/data)")
    p.add_argument("--input-size", type=int, default=512, help="crop size (the paper: 512)")
    p.add_argument("--images", type=int, default=240, help="images to time")
    p.add_argument("--batch", type=int, default=6, help="images per batch (the paper: 6 per GPU)")
    p.add_argument("--out", required=True)


def main(args: argparse.Namespace) -> int:
    res = run(Path(args.shared_data), args.input_size, args.images, args.batch)
    write_json_atomic(args.out, res)
    print(f"loader: {res['images_per_s_per_worker']} images/s per worker at {res['input_size']}² "
          f"({res['images_timed']} images, load {res['loadavg_before'][0]:.2f} -> {res['loadavg_after'][0]:.2f})")
    return 0
