"""Where a job runs: the ``device`` setting (``auto`` | ``cpu`` | ``cuda``) and its resolution.

One resolver for every command that runs a network (``posedet train``, ``predict``, ``curve``,
``bench table``, the peers): ``resolve_device(name)`` turns ``auto`` into ``cuda`` when torch sees
a GPU, else ``cpu``; ``cuda`` (or ``cuda:N``) on a machine without one is a :class:`DeviceError`
(a ``ValueError``; the commands print its one line and exit 2), never a CUDA traceback later.

The workflow's setting: a preset's top-level ``device:`` key (absent: ``auto``), overridden by
``snakemake --config device=cpu``; ``preset_device`` validates it (:class:`~posedet.presets.PresetError`
listing the allowed values). The timing bench may time several devices in one run: the preset's
``bench: {devices: [cuda, cpu]}`` (or ``bench: {device: cuda}``); ``bench_devices`` resolves them.

Only ``resolve_device`` imports torch (the Snakefile imports this module to read presets).
"""
from __future__ import annotations

import re
from typing import Any

#: the values of a preset's ``device:`` key and of ``--config device=``
DEVICE_CHOICES = ("auto", "cpu", "cuda")
_CLI_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

__all__ = ["DEVICE_CHOICES", "DeviceError", "check_device_name", "resolve_device", "describe_device",
           "preset_device", "bench_devices"]


class DeviceError(ValueError):
    """A device name that is not valid here (unknown, or CUDA asked for where there is none)."""


def check_device_name(name: Any, allow_index: bool = True) -> str:
    """``name`` as a device string (``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` with ``allow_index``);
    raises :class:`DeviceError` naming the allowed values. Does not look at the hardware."""
    s = str(name).strip().lower() if name is not None else "auto"
    ok = _CLI_PATTERN.match(s) if allow_index else s in DEVICE_CHOICES
    if not ok:
        allowed = " | ".join(DEVICE_CHOICES) + (" (or cuda:N)" if allow_index else "")
        raise DeviceError(f"unknown device {name!r}: use {allowed}")
    return s


def resolve_device(name: str | None = "auto", local_rank: int | None = None):
    """The ``torch.device`` to run on.

    ``None`` / ``auto``: ``cuda`` if ``torch.cuda.is_available()``, else ``cpu``. ``cuda`` without
    an index becomes ``cuda:<local_rank>`` when ``local_rank`` is given (one process per GPU under
    ``torchrun``). Raises :class:`DeviceError` for an unknown name, for CUDA on a machine without
    it, and for a GPU index the machine does not have."""
    import torch

    s = check_device_name(name)
    if s == "auto":
        s = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(s)
    if dev.type != "cuda":
        return dev
    if not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise DeviceError(f"device {name!r}: CUDA is not available on this machine (torch "
                          f"{torch.__version__}, {built}); use --device cpu or auto")
    if dev.index is None and local_rank is not None:
        dev = torch.device("cuda", int(local_rank))
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device {str(dev)!r}: this machine has {torch.cuda.device_count()} GPU(s)")
    return dev


def describe_device(dev) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``: what a log or manifest records."""
    import torch

    dev = torch.device(dev)
    if dev.type == "cuda" and torch.cuda.is_available():
        try:
            return f"{dev} ({torch.cuda.get_device_name(dev)})"
        except (RuntimeError, AssertionError):        # an index that is not there
            return str(dev)
    return str(dev)


def _where(preset: dict) -> str:
    return str(preset.get("_file", "preset"))


def _check_preset_value(value: Any, where: str, key: str) -> str:
    s = str(value).strip().lower() if value is not None else "auto"
    if s not in DEVICE_CHOICES:
        from posedet.presets import PresetError

        raise PresetError(f"{where}: {key} must be one of {', '.join(DEVICE_CHOICES)}, got {value!r}")
    return s


def preset_device(preset: dict, config: dict | None = None) -> str:
    """The workflow's device: ``--config device=`` if given, else the preset's ``device:`` key,
    else ``auto``; validated (``PresetError`` listing the allowed values)."""
    config = config or {}
    if config.get("device") is not None:
        return _check_preset_value(config["device"], "--config", "device")
    return _check_preset_value(preset.get("device", "auto"), _where(preset), "device")


def bench_devices(preset: dict, config: dict | None = None) -> list[str]:
    """The devices ``posedet bench table`` times, in order: ``--config device=`` alone if given
    (every job on that device), else the preset's ``bench: devices:`` list, else ``bench: device:``,
    else the preset's ``device:`` (default ``auto``)."""
    config = config or {}
    if config.get("device") is not None:
        return [preset_device(preset, config)]
    bench = preset.get("bench") or {}
    where = f"{_where(preset)}: bench"
    if bench.get("devices") is not None:
        devs = bench["devices"]
        if isinstance(devs, str):
            devs = [d for d in re.split(r"[,\s]+", devs) if d]
        if not isinstance(devs, list) or not devs:
            from posedet.presets import PresetError

            raise PresetError(f"{where}.devices must be a non-empty list of {', '.join(DEVICE_CHOICES)}")
        out = [_check_preset_value(d, where, "devices") for d in devs]
        return list(dict.fromkeys(out))
    if bench.get("device") is not None:
        return [_check_preset_value(bench["device"], where, "device")]
    return [preset_device(preset, config)]
