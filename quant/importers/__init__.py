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

__all__ = ["ImportedModel", "ModelImportError", "SOURCES", "load_state_dict", "save_imported", "import_file",
           "write_imported"]


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


SOURCES = ("auto", "nir", "srnn", "asrc")


def import_file(path: str | os.PathLike, source: str = "auto", options: dict | None = None) -> ImportedModel:
    """Import ``path`` as ``source`` (``auto``: ``.nir`` files are NIR graphs, a state dict with
    ``i2h*`` is SRNN, one with ``features.*`` is ASRC-SNN). ``options`` are the source's own
    (NIR: dt, mode, skip_steps; SRNN: b_j0, beta, output_beta, output, mode, skip_steps; ASRC-SNN:
    lam, threshold, reset, span, mode); one that the source does not use is refused."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    if source not in SOURCES:
        raise ModelImportError(f"unknown model source {source!r}; choose one of: {', '.join(SOURCES)}")
    path = Path(path)
    if source == "auto" and path.suffix.lower() == ".nir":
        source = "nir"
    if source == "nir":
        from .nir_graph import import_nir

        unknown = set(options) - {"dt", "mode", "skip_steps"}
        if unknown:
            raise ModelImportError(f"options {', '.join(sorted(unknown))} do not apply to a NIR graph "
                                   f"(it has dt, mode, skip_steps)")
        if not path.is_file():
            raise ModelImportError(f"{str(path)!r} does not exist")
        return import_nir(path, **options)
    from .official import import_asrc, import_srnn

    sd = load_state_dict(path)
    if source == "auto":
        if any(k.startswith("i2h") for k in sd):
            source = "srnn"
        elif any(k.startswith("features.") for k in sd):
            source = "asrc"
        else:
            raise ModelImportError(f"{str(path)!r}: cannot tell which model this state dict is (no 'i2h*' or "
                                   f"'features.*' entries); pass --from srnn, asrc or nir")
    return (import_srnn if source == "srnn" else import_asrc)(sd, options)


def write_imported(model: ImportedModel, out: str | os.PathLike, *, input_kind: str | None = None,
                   export_options=None, force: bool = False, source_path: str | os.PathLike | None = None,
                   data=None, limit: int | None = None, evaluate: bool = True) -> dict | None:
    """Write ``model`` to ``out``: a ``.skc`` artifact (PTQ with ``export_options``) or else a
    skipcore checkpoint (returns None).

    ``data`` (a dataset name, a path or a loaded ``skipcore.datasets.Dataset``; ``limit`` samples
    per split) gives the input kind and quantisation, lets ``scale_policy="auto"`` choose on its
    validation split (``auto`` needs it), and, with ``evaluate``, the float vs golden comparison
    on that split. Without it, ``input_kind`` is needed (and a real input's frac bits, a count
    input's bits). Returns the report of :func:`quant.ptq.quantize_float_network`.
    """
    from skipcore.golden.artifact import save

    from ..export import _as_options, make_provenance
    from ..ptq import checkpoint_dataset, quantize_float_network

    out = Path(out)
    opts = _as_options(export_options)
    if out.suffix.lower() != ".skc":
        save_imported(model, out, input_kind=input_kind)
        return None
    if opts.scale_policy == "auto" and data is None:
        raise ModelImportError("--scale-policy auto picks by validation accuracy and needs data: pass --data "
                               "NAME_OR_PATH, or choose max, threshold or percentile")
    if data is None:
        if input_kind is None:
            raise ModelImportError("writing model.skc needs the input kind: pass --input-kind spike, count or real "
                                   "(or --data)")
        if input_kind == "real" and opts.input_frac_bits is None:
            raise ModelImportError("a real input needs --input-frac-bits (or --data to choose it)")
        if input_kind == "count" and opts.input_bits is None:
            raise ModelImportError("a count input needs --input-bits (or --data to size it)")
    dataset = None
    if data is not None:
        dataset = checkpoint_dataset({}, data, limit=limit)
    report = quantize_float_network(
        model.network, opts, dataset=dataset, input_kind=input_kind, evaluate=evaluate,
        provenance=lambda o: make_provenance(
            options=o, method="import", imported_from=model.source, source=str(source_path) if source_path else None,
            import_notes=model.notes, dataset=dataset.info.name if dataset is not None else None))
    report["path"] = save(report["artifact"], out, overwrite=force)
    return report
