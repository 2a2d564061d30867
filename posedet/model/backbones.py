"""Backbones: timm feature extractors (``features_only=True``) and their ImageNet weights.

``BACKBONES`` is plain data: for each supported name, which timm outputs feed which neck.

=========================  =======================  ==========================  ======
name                       timm outputs used        channels                    neck
=========================  =======================  ==========================  ======
``dla34``                  strides 8 / 16 / 32      128 / 256 / 512             FPN
``hrnet_w32``              raw branches 4/8/16/32   32 / 64 / 128 / 256         HRFPN
``hrnet_w48``              raw branches 4/8/16/32   48 / 96 / 192 / 384         HRFPN
``mobilenetv3_small_050``  strides 8 / 16 / 32      16 / 24 / 288               FPN
=========================  =======================  ==========================  ======

HRNet: timm's ``features_only`` HRNet returns the classification head's "incre" features by
default (128/256/512/1024 channels for every width); ``feature_location=''`` returns the raw
branch outputs that an HRNet-style fused pyramid uses (checked against timm 1.0.31's
``HighResolutionNetFeatures``; out_indices 1-4 are the four branches, 0 the stride-2 stem).

``mobilenetv3_small_050`` is the test / smoke backbone: the smallest timm network with ImageNet
weights and stride-8/16/32 features (0.27 M parameters, milliseconds per 128² image on one CPU
thread), so tests and the smoke preset exercise the same timm + pretrained-weights code path as
the real backbones instead of a hand-written toy net.

Any other timm model name that supports ``features_only`` also works: its stride-8/16/32 outputs
feed an FPN (``backbone_spec``).

Pretrained weights: ``pretrained=True`` asks timm for its ImageNet weights (Hugging Face hub, or
its local cache: set ``HF_HUB_OFFLINE=1`` to use only the cache, ``HF_HOME`` / ``HF_HUB_CACHE``
to point at it); ``pretrained_file=PATH`` loads a local state-dict file instead (timm's
``pretrained_cfg_overlay=dict(file=PATH)``: the full classification model's ``state_dict``,
``.pth``/``.bin``/``.safetensors``). Missing weights raise :class:`PretrainedWeightsError`
(a ``RuntimeError``) that says how to provide them.
"""
from __future__ import annotations

import os

import torch
from torch import nn

__all__ = ["BACKBONES", "SMALL_BACKBONE", "TimmBackbone", "PretrainedWeightsError", "backbone_spec",
           "build_backbone"]

BACKBONES: dict[str, dict] = {
    "dla34": {"timm_kwargs": {"out_indices": (3, 4, 5)}, "neck": "fpn", "neck_channels": 128},
    "hrnet_w32": {"timm_kwargs": {"out_indices": (1, 2, 3, 4), "feature_location": ""},
                  "neck": "hrfpn", "neck_channels": 256},
    "hrnet_w48": {"timm_kwargs": {"out_indices": (1, 2, 3, 4), "feature_location": ""},
                  "neck": "hrfpn", "neck_channels": 256},
    "mobilenetv3_small_050": {"timm_kwargs": {"out_indices": (2, 3, 4)}, "neck": "fpn", "neck_channels": 64},
}
SMALL_BACKBONE = "mobilenetv3_small_050"


class PretrainedWeightsError(RuntimeError):
    """The backbone's ImageNet weights could not be loaded (and how to get them)."""


def backbone_spec(name: str) -> dict:
    """The ``BACKBONES`` entry of ``name``; other timm names get an FPN over strides 8/16/32."""
    if name in BACKBONES:
        return BACKBONES[name]
    import timm

    if name.startswith("hrnet_") and timm.is_model(name):
        # every timm HRNet (the compact w18_small stand-ins too): raw branches → HRFPN
        return {"timm_kwargs": {"out_indices": (1, 2, 3, 4), "feature_location": ""},
                "neck": "hrfpn", "neck_channels": 256}

    if not timm.is_model(name):
        raise ValueError(f"unknown backbone {name!r}: use one of {sorted(BACKBONES)} or a timm model name")
    return {"timm_kwargs": {}, "neck": "fpn", "neck_channels": 128, "strides": (8, 16, 32)}


def _missing_weights_message(name: str, error: BaseException | None, pretrained_file) -> str:
    if pretrained_file is not None:
        head = f"backbone {name!r}: cannot load pretrained weights from file {str(pretrained_file)!r}"
    else:
        head = f"backbone {name!r}: timm could not get its ImageNet weights (no network and no cached copy?)"
    detail = f" ({type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''})" if error else ""
    return (head + detail + ".\nTo provide them: (a) on a machine with network, run once "
            f"`python -c \"import timm; timm.create_model('{name}', pretrained=True)\"` and copy the Hugging "
            "Face cache (~/.cache/huggingface, or $HF_HOME) here, then set HF_HUB_OFFLINE=1 (and HF_HOME or "
            "HF_HUB_CACHE if it is elsewhere); or (b) save the timm classification model's state_dict to a "
            "file and pass it as pretrained_file (config: model.pretrained_file=PATH); or (c) train from "
            "scratch with pretrained=false (config: model.pretrained=false).")


def _create_timm(name: str, pretrained: bool, pretrained_file, cache_dir, timm_kwargs: dict) -> nn.Module:
    import timm

    kwargs = dict(features_only=True, **timm_kwargs)
    if not pretrained and pretrained_file is None:
        return timm.create_model(name, pretrained=False, **kwargs)
    if pretrained_file is not None:
        path = os.fspath(pretrained_file)
        if not os.path.isfile(path):
            raise PretrainedWeightsError(_missing_weights_message(
                name, FileNotFoundError(f"no such file: {path}"), pretrained_file))
        kwargs["pretrained_cfg_overlay"] = {"file": path}
    if cache_dir is not None:
        kwargs["cache_dir"] = os.fspath(cache_dir)
    try:
        model = timm.create_model(name, pretrained=True, **kwargs)
    except (OSError, RuntimeError, ValueError, KeyError) as e:
        # hub/cache misses (huggingface_hub errors are OSErrors), unreadable or mismatching files
        raise PretrainedWeightsError(_missing_weights_message(name, e, pretrained_file)) from None
    if pretrained_file is not None:
        _check_file_covers(name, model, pretrained_file)
    return model


def _check_file_covers(name: str, model: nn.Module, pretrained_file) -> None:
    """timm loads feature extractors non-strictly (the classifier is dropped), so a file holding
    some other network would load silently: require every backbone tensor in the file, same shape.
    (Feature wrappers may flatten 'a.0' to 'a_0', hence the '_' → '.' normalisation.)"""
    from timm.models import load_state_dict

    def norm(key: str) -> str:
        return key.replace("_", ".")

    try:
        file_sd = {norm(k): v.shape for k, v in load_state_dict(os.fspath(pretrained_file)).items()}
    except Exception as e:  # noqa: BLE001 - already loaded once by timm; report whatever breaks now
        raise PretrainedWeightsError(_missing_weights_message(name, e, pretrained_file)) from None
    missing = [k for k, v in model.state_dict().items()
               if not k.endswith("num_batches_tracked") and file_sd.get(norm(k)) != v.shape]
    if missing:
        err = KeyError(f"{len(missing)} backbone tensors missing or of another shape, e.g. {missing[:3]}")
        raise PretrainedWeightsError(_missing_weights_message(name, err, pretrained_file))


class TimmBackbone(nn.Module):
    """A timm feature extractor returning the maps its neck uses.

    ``forward(images [B, 3, H, W]) -> list of [B, channels[i], H / strides[i], W / strides[i]]``.
    """

    def __init__(self, name: str, pretrained: bool = False, pretrained_file=None, cache_dir=None):
        super().__init__()
        spec = backbone_spec(name)
        timm_kwargs = dict(spec["timm_kwargs"])
        if "strides" in spec and "out_indices" not in timm_kwargs:
            import timm

            probe = timm.create_model(name, pretrained=False, features_only=True)
            red = probe.feature_info.reduction()
            missing = [s for s in spec["strides"] if s not in red]
            if missing:
                raise ValueError(f"backbone {name!r} has no outputs at strides {missing} (it has {red})")
            # out_indices name the model's own feature indices (DLA counts from 1, ResNet from 0),
            # not positions in the default list: map through feature_info.out_indices
            own = list(probe.feature_info.out_indices)
            timm_kwargs["out_indices"] = tuple(own[red.index(s)] for s in spec["strides"])
            del probe
        self.name = name
        self.body = _create_timm(name, pretrained, pretrained_file, cache_dir, timm_kwargs)
        self.channels = list(self.body.feature_info.channels())
        self.strides = list(self.body.feature_info.reduction())

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(images))


def build_backbone(name: str, pretrained: bool = False, pretrained_file=None, cache_dir=None) -> TimmBackbone:
    """``TimmBackbone(name, ...)``; ``pretrained_file`` implies loading that file."""
    return TimmBackbone(name, pretrained=pretrained, pretrained_file=pretrained_file, cache_dir=cache_dir)
