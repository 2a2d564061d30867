"""Workflow presets: ``configs/presets/<name>.yaml`` resolved into concrete file paths.

The Snakefile and the tests use these functions; nothing else reads presets. A data set is
named ``NAME`` (annotations-only sets, e.g. the real CrowdPose val file) or ``NAME/SPLIT``.
Placeholders such as ``{shared_data}`` or ``{coco_root}`` in paths are filled from the preset's
top-level keys, which ``--config key=value`` may override.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class PresetError(ValueError):
    pass


def preset_path(name: str, repo_root: str | Path) -> Path:
    return Path(repo_root) / "configs" / "presets" / f"{name}.yaml"


def load_preset(name: str, repo_root: str | Path, overrides: dict[str, Any] | None = None) -> dict:
    path = preset_path(name, repo_root)
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise PresetError(f"unknown preset {name!r}: {path} does not exist (known: {', '.join(known)})")
    with open(path) as f:
        preset = yaml.safe_load(f)
    if not isinstance(preset, dict) or "datasets" not in preset:
        raise PresetError(f"{path}: a preset needs a 'datasets' mapping")
    for key, value in (overrides or {}).items():
        if key in preset and not isinstance(preset[key], (dict, list)):
            preset[key] = value
    # Relative data roots are relative to the repository, wherever Snakemake runs from.
    for key in ("shared_data", "coco_root", "crowdpose_root"):
        if preset.get(key) is not None and not Path(str(preset[key])).is_absolute():
            preset[key] = str((Path(repo_root) / str(preset[key])).resolve())
    preset["_file"] = str(path)
    return preset


def _fill(template: str, preset: dict, what: str) -> str:
    keys = {k: v for k, v in preset.items() if not isinstance(v, (dict, list))}
    try:
        value = template.format(**keys)
    except KeyError as e:
        raise PresetError(f"{preset['_file']}: {what} uses undefined placeholder {e}") from None
    if "None" in value.split("/"):
        missing = [k for k, v in keys.items() if v is None and "{" + k + "}" in template]
        raise PresetError(f"{what} needs {', '.join(missing)}: pass --config "
                          + " ".join(f"{m}=/path/to/it" for m in missing))
    return value


def split_set(set_name: str) -> tuple[str, str | None]:
    name, _, split = set_name.partition("/")
    return name, (split or None)


def dataset_spec(preset: dict, set_name: str) -> dict:
    name, split = split_set(set_name)
    try:
        ds = preset["datasets"][name]
    except KeyError:
        raise PresetError(f"{preset['_file']}: no data set {name!r} (has: {', '.join(preset['datasets'])})") from None
    if ds["kind"] == "annotations":
        if split is not None:
            raise PresetError(f"data set {name!r} is a single annotation file; drop '/{split}'")
    elif split not in ds.get("splits", {}):
        raise PresetError(f"data set {name!r} has no split {split!r} (has: {', '.join(ds.get('splits', {}))})")
    return ds


def annotation_file(preset: dict, set_name: str, results_dir: str) -> str:
    """Path of the COCO-format annotation file of ``set_name``."""
    ds = dataset_spec(preset, set_name)
    name, split = split_set(set_name)
    if ds["kind"] == "synthetic":
        return f"{results_dir}/data/{name}/{split}/annotations.json"
    if ds["kind"] == "annotations":
        return _fill(ds["ann_file"], preset, f"data set {name}")
    return _fill(ds["splits"][split]["ann_file"], preset, f"data set {set_name}")


def image_root(preset: dict, set_name: str, results_dir: str) -> str | None:
    ds = dataset_spec(preset, set_name)
    name, split = split_set(set_name)
    if ds["kind"] == "synthetic":
        return f"{results_dir}/data/{name}/{split}/images"
    if ds["kind"] == "annotations":
        return None
    return _fill(ds["splits"][split]["image_root"], preset, f"data set {set_name}")


def slug(set_name: str) -> str:
    """File-name-safe form of a data set name: ``synth_coco/test`` → ``synth_coco-test``."""
    return set_name.replace("/", "-")


def unslug(preset: dict, s: str) -> str:
    for name in preset["datasets"]:
        if s == name:
            return name
        if s.startswith(name + "-"):
            return name + "/" + s[len(name) + 1:]
    raise PresetError(f"no data set matches {s!r}")
