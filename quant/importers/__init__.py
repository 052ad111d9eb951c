"""Importers: models trained elsewhere -> a skipcore float network (``quant.network.SpikingNetwork``).

Each importer returns a :class:`ImportedModel`: the network (eval mode) and a note of where every
parameter came from. :func:`save_imported` writes it as a skipcore checkpoint, which
``skipcore quantize`` (or ``train --qat --resume``-style fine-tuning) then turns into ``model.skc``.

- ``official``: state dicts of the papers' official code (ASRC-SNN, SRNN); the name mapping is in
  ``docs/import-export.md``.
- ``nir_graph``: NIR graphs (the ``nir`` package; only this package and ``quant.nir_export`` import it).

Legacy torch files are read with ``torch.load(weights_only=True)``: a file that would need to run
pickled code is refused, never executed.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from skipcore.errors import ConfigError

__all__ = ["ImportedModel", "ModelImportError", "load_state_dict", "save_imported"]


class ModelImportError(ConfigError):
    """A model file cannot be imported (unknown node, missing key, wrong shape, unsafe pickle)."""


@dataclass
class ImportedModel:
    network: object  #: quant.network.SpikingNetwork in eval mode
    source: str  #: "srnn", "asrc", "nir"
    notes: dict = field(default_factory=dict)  #: JSON-serialisable: options used, mapping


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from a torch file, loaded weights-only (no pickled code runs).

    Accepts a bare state dict, or a dict holding one under ``state_dict``/``model_state_dict``/
    ``model``/``net``; a ``module.`` prefix (DataParallel) is removed.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelImportError(f"{str(path)!r} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        if "weights_only" in str(exc) or "global" in str(exc).lower():
            raise ModelImportError(
                f"{str(path)!r} is not a weights-only state dict (it pickles code, e.g. a whole model); "
                f"load it in its own code and save model.state_dict() with torch.save"
            ) from None
        raise ModelImportError(f"{str(path)!r} is not a readable torch file ({first[:160]})") from None
    except (zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError, AttributeError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelImportError(f"{str(path)!r} is not a readable torch file ({first[:160]})") from None
    if isinstance(data, dict):
        for key in ("state_dict", "model_state_dict", "model", "net"):
            if isinstance(data.get(key), dict) and not isinstance(data.get(key), torch.Tensor):
                data = data[key]
                break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ModelImportError(f"{str(path)!r} does not hold a state dict (a dict of tensors)")
    if data and all(k.startswith("module.") for k in data):
        data = {k[len("module."):]: v for k, v in data.items()}
    return dict(data)


def save_imported(model: ImportedModel, path: str | os.PathLike, *, input_kind: str | None = None) -> Path:
    """Write ``model`` as a skipcore checkpoint (atomic); ``input_kind`` is recorded for ``quantize``."""
    from ..checkpoint import save_checkpoint

    info = {"input_kind": input_kind} if input_kind else None
    return save_checkpoint(path, network=model.network, dataset_info=info, metrics={},
                           preset=f"import:{model.source}", imported=model.notes)
