"""Atomic file writes: a temporary file beside the target, fsync, then ``os.replace``.

A run killed mid-write leaves the previous file (or none), never a truncated one that looks
complete — the property the workflow's resumability rests on. One helper for every writer.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, write) -> None:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then ``os.replace`` it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def write_json_atomic(path: str | os.PathLike, obj, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON (NaN refused: a metric that is not a number is an error)."""
    text = json.dumps(obj, indent=indent, allow_nan=False) + "\n"
    atomic_write_bytes(path, lambda f: f.write(text.encode()))
