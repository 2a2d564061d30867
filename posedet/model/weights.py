"""`posedet weights`: ImageNet weights of the timm backbones, for compute nodes without network.

    posedet weights --backbones dla34 hrnet_w32 hrnet_w48 --out DIR     # on a machine with network
    posedet weights --check --backbones dla34 hrnet_w32 hrnet_w48 [--dir DIR]

Staging (``stage_weights``) builds each backbone's full classification model with
``timm.create_model(name, pretrained=True)`` (the Hugging Face hub, or timm's cache when it has
them) and saves its ``state_dict`` to ``DIR/<backbone>.pth`` (atomically), plus a manifest
``DIR/weights.json``: backbone → file, sha256, bytes, timm version, where timm took them from.
Such a file is what ``model.pretrained_file=DIR/<backbone>.pth`` loads (posedet/model/backbones.py)
with no network at all; the workflow's ``stage_weights`` rule does this on the login node
(workflow/rules/weights.smk).

Checking (``weights_available``) never touches the network: a ``pretrained_file`` must exist;
otherwise the timm model's ImageNet weights must be in the Hugging Face cache (``HF_HUB_CACHE``,
else ``HF_HOME``/hub, else ``~/.cache/huggingface/hub``; or ``cache_dir``) or in torch hub's
checkpoint folder (timm's old URL cache). ``--check`` prints one line per backbone whose weights
are missing and exits 1 if any is.

``ensure_pretrained(model_cfg)`` is what ``posedet train`` runs before it reads any data: a model
with ``model.pretrained: true`` whose weights are neither in ``model.pretrained_file`` nor cached
fails in seconds with one line saying how to stage them (on a machine with network and
``HF_HUB_OFFLINE`` unset, the weights are fetched into the cache first).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

from posedet.atomic import atomic_write_bytes, write_json_atomic
from posedet.model.backbones import PretrainedWeightsError

__all__ = ["weights_available", "stage_weights", "ensure_pretrained", "staged_backbone", "hf_offline",
           "MANIFEST", "add_arguments", "main"]

MANIFEST = "weights.json"
FORMAT = "posedet-imagenet-weights/1"
# timm's file names on the hub (timm/models/_hub.py): the safetensors file first, as timm loads it
_HF_FILES = ("model.safetensors", "pytorch_model.bin")


def hf_offline() -> bool:
    """``HF_HUB_OFFLINE`` set to a true value (huggingface_hub's own reading of it)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _hf_cache_dir(cache_dir=None) -> str:
    """The hub cache huggingface_hub would use now (read from the environment at call time)."""
    if cache_dir is not None:
        return os.fspath(cache_dir)
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return os.path.join(home, "hub")


def _pretrained_cfg(backbone: str):
    from timm.models import get_pretrained_cfg

    return get_pretrained_cfg(backbone)


def weights_available(backbone: str, pretrained_file=None, cache_dir=None) -> tuple[bool, str]:
    """Whether ``backbone``'s ImageNet weights can be loaded with no network, and where / why not.

    ``pretrained_file``: that file must exist (a non-empty file; its tensors are checked when the
    model is built). Otherwise timm's pretrained config of the model names a Hugging Face repo
    (``hf_hub_id``) whose weights file must be in the hub cache (``cache_dir``, else the
    environment's), or a URL whose file must be in torch hub's checkpoint folder. Never downloads.
    """
    if pretrained_file is not None:
        path = Path(os.fspath(pretrained_file))
        if not path.is_file():
            return False, f"no such file: {path}"
        if path.stat().st_size == 0:
            return False, f"empty file: {path}"
        return True, str(path)
    try:
        cfg = _pretrained_cfg(backbone)
    except Exception as e:  # noqa: BLE001 - timm's registry errors vary between versions
        return False, f"timm knows no pretrained weights for {backbone!r} ({type(e).__name__}: {e})"
    if cfg is None:
        return False, f"timm knows no pretrained weights for {backbone!r}"
    tried = []
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo, _, revision = hub_id.partition("@")
        cache = _hf_cache_dir(cache_dir)
        names = [cfg.hf_hub_filename] if getattr(cfg, "hf_hub_filename", None) else list(_HF_FILES)
        for name in names:
            hit = try_to_load_from_cache(repo, name, cache_dir=cache, revision=revision or None)
            if isinstance(hit, str) and os.path.isfile(hit):
                return True, hit
        tried.append(f"{repo} ({'/'.join(names)}) in the Hugging Face cache {cache}")
    url = getattr(cfg, "url", None)
    if url:
        from urllib.parse import urlparse

        import torch

        path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(url).path))
        if os.path.isfile(path):
            return True, path
        tried.append(path)
    if not tried:
        return False, f"timm's pretrained config of {backbone!r} names no weights source"
    return False, "not cached: " + "; ".join(tried)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _create_pretrained(backbone: str, cache_dir=None):
    """The full timm classification model with its ImageNet weights (network or cache)."""
    import timm

    kwargs = {"cache_dir": os.fspath(cache_dir)} if cache_dir is not None else {}
    return timm.create_model(backbone, pretrained=True, **kwargs)


def stage_weights(backbones, dest, cache_dir=None) -> dict:
    """Save each backbone's ImageNet weights (the full classification model's ``state_dict``) to
    ``dest/<backbone>.pth`` and record them in ``dest/weights.json`` (entries of backbones not
    staged now are kept). Needs network, or the weights in timm's cache. Returns the manifest.
    Raises :class:`PretrainedWeightsError` for a backbone whose weights timm cannot get."""
    import timm
    import torch

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    man_path = dest / MANIFEST
    manifest = {"format": FORMAT, "backbones": {}}
    if man_path.is_file():
        try:
            old = json.loads(man_path.read_text())
            if isinstance(old, dict) and isinstance(old.get("backbones"), dict):
                manifest["backbones"].update(old["backbones"])
        except json.JSONDecodeError:
            pass
    for bb in dict.fromkeys(backbones):
        print(f"posedet weights: {bb} ...", file=sys.stderr, flush=True)
        try:
            model = _create_pretrained(bb, cache_dir)
        except Exception as e:  # noqa: BLE001 - hub, network and file errors differ between versions
            raise PretrainedWeightsError(
                f"backbone {bb!r}: timm could not get its ImageNet weights ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:300] if str(e) else ''}); run `posedet weights` on a machine "
                "with network (or with the weights in its Hugging Face cache)") from None
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        path = dest / f"{bb}.pth"
        atomic_write_bytes(path, lambda f: torch.save(state, f))
        cfg = getattr(model, "pretrained_cfg", None) or {}
        manifest["backbones"][bb] = {
            "file": path.name, "sha256": _sha256(path), "bytes": path.stat().st_size,
            "tensors": len(state), "timm": timm.__version__, "torch": torch.__version__,
            "source": cfg.get("hf_hub_id") or cfg.get("url") or None, "tag": cfg.get("tag"),
        }
        print(f"posedet weights: {bb} -> {path} ({path.stat().st_size / 1e6:.1f} MB)", file=sys.stderr, flush=True)
        del model, state
    write_json_atomic(man_path, manifest)
    return manifest


def _check_dir(backbones, directory: Path, manifest_out: str | None = None) -> list[str]:
    """Lines for the backbones whose ``directory/<backbone>.pth`` is missing or differs from the
    directory's ``weights.json``; with ``manifest_out``, record what was checked there."""
    recorded = {}
    man = directory / MANIFEST
    if man.is_file():
        try:
            recorded = (json.loads(man.read_text()) or {}).get("backbones") or {}
        except (json.JSONDecodeError, AttributeError):
            recorded = {}
    missing, checked = [], {}
    for bb in dict.fromkeys(backbones):
        path = directory / f"{bb}.pth"
        ok, why = weights_available(bb, pretrained_file=path)
        if not ok:
            missing.append(f"{bb}: {why} (stage it with `posedet weights --backbones {bb} --out DIR` "
                           "on a machine with network)")
            continue
        sha = _sha256(path) if (manifest_out or (recorded.get(bb) or {}).get("sha256")) else None
        want = (recorded.get(bb) or {}).get("sha256")
        if want and sha != want:
            missing.append(f"{bb}: {path} does not match {man} (sha256 {sha[:12]}…, recorded {want[:12]}…)")
            continue
        rec = recorded.get(bb) or {}
        checked[bb] = {"file": str(path.resolve()), "sha256": sha, "bytes": path.stat().st_size,
                       "recorded": bool(rec), "timm": rec.get("timm"), "source": rec.get("source")}
    if manifest_out and not missing:
        write_json_atomic(manifest_out, {"format": FORMAT, "checked_dir": str(directory.resolve()),
                                         "backbones": checked})
    return missing


def ensure_pretrained(model_cfg) -> None:
    """Fail fast (:class:`PretrainedWeightsError`, one line) when ``model_cfg`` asks for ImageNet
    weights that cannot be loaded: ``model.pretrained_file`` missing, or ``model.pretrained`` true
    with the weights not cached and ``HF_HUB_OFFLINE`` set. Online and not cached: timm fetches
    them into its cache now (what building the model would do anyway). No-op for models that
    start from scratch."""
    name, file_ = model_cfg.backbone, model_cfg.pretrained_file
    if not model_cfg.pretrained and file_ is None:
        return
    ok, why = weights_available(name, pretrained_file=file_)
    if ok:
        return
    how = (f"stage them on a machine with network with `posedet weights --backbones {name} --out DIR` "
           f"and pass --set model.pretrained_file=DIR/{name}.pth (workflow: --config weights_dir=DIR), "
           "or train from scratch with --set model.pretrained=false")
    if file_ is not None:
        raise PretrainedWeightsError(f"backbone {name!r}: model.pretrained_file: {why}; {how}")
    if hf_offline():
        raise PretrainedWeightsError(f"backbone {name!r}: its ImageNet weights are not cached and "
                                     f"HF_HUB_OFFLINE is set ({why}); {how}")
    try:
        _create_pretrained(name)
    except Exception as e:  # noqa: BLE001 - hub, network and file errors differ between versions
        detail = str(e).splitlines()[0][:200] if str(e) else ""
        raise PretrainedWeightsError(f"backbone {name!r}: timm could not get its ImageNet weights "
                                     f"({type(e).__name__}: {detail}; no network?); {how}") from None


def staged_backbone(recipe: str, overrides) -> str | None:
    """The backbone whose ImageNet weights a model (recipe file + ``--set`` overrides) loads from
    timm: its ``model.backbone`` when ``model.pretrained`` is true and no ``model.pretrained_file``
    is set, else None (nothing to stage)."""
    from posedet.config import load_config

    m = load_config(recipe, list(overrides)).model
    return m.backbone if m.pretrained and m.pretrained_file is None else None


# ------------------------------------------------------------------------------ CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backbones", nargs="*", required=True, metavar="NAME",
                   help="timm backbone names, e.g. dla34 hrnet_w32 hrnet_w48 (none: an empty manifest)")
    p.add_argument("--out", default=None, help="stage: write DIR/<backbone>.pth and DIR/weights.json")
    p.add_argument("--check", action="store_true",
                   help="only check, offline, that the weights are there (in --dir, else in the "
                        "Hugging Face cache); one line per missing backbone, exit 1 if any")
    p.add_argument("--dir", default=None, help="with --check: the folder of staged <backbone>.pth files")
    p.add_argument("--manifest", default=None,
                   help="with --check --dir: write what was checked (file, sha256) to this JSON")
    p.add_argument("--cache-dir", default=None, help="Hugging Face hub cache (default: the environment's)")


def main(args) -> int:
    if args.check:
        if args.out:
            print("posedet weights: --check takes --dir, not --out", file=sys.stderr)
            return 2
        if args.dir is not None:
            missing = _check_dir(args.backbones, Path(args.dir), args.manifest)
        else:
            missing = []
            for bb in dict.fromkeys(args.backbones):
                ok, why = weights_available(bb, cache_dir=args.cache_dir)
                if not ok:
                    missing.append(f"{bb}: {why}")
        for line in missing:
            print(f"missing {line}")
        if missing:
            return 1
        where = args.dir or _hf_cache_dir(args.cache_dir)
        print(f"posedet weights: all {len(set(args.backbones))} backbone(s) present in {where}", file=sys.stderr)
        return 0
    if not args.out:
        print("posedet weights: give --out DIR (stage) or --check", file=sys.stderr)
        return 2
    try:
        stage_weights(args.backbones, args.out, cache_dir=args.cache_dir)
    except PretrainedWeightsError as e:
        print(f"posedet weights: {e}", file=sys.stderr)
        return 2
    print(f"posedet weights: {len(set(args.backbones))} backbone(s) in {args.out} ({MANIFEST})", file=sys.stderr)
    return 0
