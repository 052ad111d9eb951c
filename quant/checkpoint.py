"""Checkpoint files: a plain dict saved with ``torch.save`` and loaded with ``weights_only=True``.

Layout (version 1)::

    {"format": "skipcore-checkpoint", "version": 1,
     "config": NetworkConfig.to_dict(), "train": TrainConfig.to_dict(), "preset": str,
     "model": state_dict, "dataset": DatasetInfo fields, "metrics": {...}, "epoch": int,
     "created": ISO time, "skipcore_version": str,
     # last.pt only (for --resume):
     "optimizer": ..., "scheduler": ..., "rng": {...}, "history": [...], "best": {...}}

Writes go to a temporary file in the same folder, then ``os.replace``, so a crash never leaves a
half-written checkpoint.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

from skipcore.errors import SkipcoreError

from .config import NetworkConfig
from .network import SpikingNetwork

__all__ = ["FORMAT", "VERSION", "CheckpointError", "save_checkpoint", "read_checkpoint", "load_checkpoint",
           "dataset_info_dict"]

FORMAT = "skipcore-checkpoint"
VERSION = 1


class CheckpointError(SkipcoreError):
    """A checkpoint file is missing, corrupt, or not a skipcore checkpoint."""


def dataset_info_dict(info) -> dict:
    """DatasetInfo (dataclass or mapping) -> plain dict."""
    if info is None:
        return {}
    if dataclasses.is_dataclass(info):
        return dataclasses.asdict(info)
    return dict(info)


def save_checkpoint(path: str | os.PathLike, *, network: SpikingNetwork, dataset_info=None,
                    metrics: dict | None = None, **extra) -> Path:
    """Write a checkpoint atomically. ``extra`` keys (train, preset, epoch, optimizer, ...) are added."""
    from skipcore import __version__

    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": network.config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in network.state_dict().items()},
        "dataset": dataset_info_dict(dataset_info),
        "metrics": dict(metrics or {}),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "skipcore_version": __version__,
    }
    payload.update(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | os.PathLike, *, map_location="cpu") -> dict:
    """Load and check a checkpoint dict (no network built)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError,
            AttributeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{str(path)!r} is not a readable skipcore checkpoint ({first[:200]})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a skipcore checkpoint (no 'format': {FORMAT!r} field)")
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint version {data.get('version')!r}; this skipcore reads version {VERSION}"
        )
    for key in ("config", "model"):
        if key not in data:
            raise CheckpointError(f"{str(path)!r} lacks the {key!r} field")
    return data


def load_checkpoint(path: str | os.PathLike, *, map_location="cpu") -> tuple[SpikingNetwork, dict]:
    """Return ``(network in eval mode, checkpoint dict)``."""
    data = read_checkpoint(path, map_location=map_location)
    try:
        config = NetworkConfig.from_dict(data["config"])
    except SkipcoreError as exc:
        raise CheckpointError(f"{str(path)!r}: bad 'config' field: {exc}") from None
    network = SpikingNetwork(config)
    try:
        network.load_state_dict(data["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{str(path)!r}: the 'model' weights do not match the 'config' ({exc})") from None
    network.eval()
    return network, data
