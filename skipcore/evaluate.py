"""Datasets for an artifact, and the golden model's accuracy on them (NumPy only, no torch).

:func:`resolve_data` finds the data to run an artifact on. A dataset *name* loads that dataset;
a *path* is read in the format the path itself holds (``datasets.data_format``), whatever dataset the
artifact was trained on, so a model trained on MNIST-1D runs on a user ``.npz`` of the same shape.
:func:`check_data` then refuses data whose shape does not fit the artifact.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from skipcore.datasets import data_format
from skipcore.errors import DatasetError, SkipcoreError

__all__ = ["resolve_data", "check_data", "evaluate_artifact"]


def resolve_data(data: str | None, provenance: dict, *, limit: int | None = None):
    """Load the dataset to run an artifact on.

    ``data`` is None (the dataset and path named in the artifact's provenance), a dataset name
    (its default location, or the provenance's path when it names the same dataset), or a path,
    read in the format the path holds (``datasets.data_format``). Only the split seed and validation
    fraction come from the provenance, and, for a folder of MNIST IDX files, whether the model
    reads the pixels permuted (``psmnist``).
    """
    from skipcore.datasets import DATASETS, load_dataset

    prov = provenance if isinstance(provenance, dict) else {}
    prov_name = prov.get("dataset")
    prov_path = prov.get("dataset_path")
    seed = int(prov.get("dataset_seed", 0))
    val_fraction = float(prov.get("val_fraction", 0.1))
    if data is None or str(data).strip().lower() == str(prov_name).lower():
        if not prov_name:
            raise DatasetError("the artifact's provenance names no dataset; pass --data NAME_OR_PATH")
        if prov_path is not None and not Path(prov_path).exists():
            if data is not None:  # the name alone: its default location
                return load_dataset(prov_name, None, seed=seed, val_fraction=val_fraction, limit=limit)
            raise DatasetError(f"the artifact was trained on {prov_name!r} from {prov_path!r}, which does not "
                               f"exist from {os.getcwd()}; pass --data PATH")
        return load_dataset(prov_name, prov_path, seed=seed, val_fraction=val_fraction, limit=limit)
    key = str(data).strip().lower()
    if key in DATASETS and not Path(data).exists():
        return load_dataset(key, None, seed=seed, val_fraction=val_fraction, limit=limit)
    path = Path(data)
    if not path.exists():
        raise DatasetError(f"--data {data!r} is neither a dataset name ({', '.join(DATASETS)}) nor an existing path")
    name = data_format(path)
    if name is None:
        raise DatasetError(f"--data {data!r} is not an .npz file, an ECG folder (QTDB_train.mat) or a folder of "
                           "MNIST IDX files; see `skipcore eval --help`")
    if name == "smnist" and prov_name == "psmnist":
        name = "psmnist"  # the model reads the pixels in the permuted order
    return load_dataset(name, path, seed=seed, val_fraction=val_fraction, limit=limit)


def check_data(art, info) -> None:
    """Raise a SkipcoreError when the dataset does not fit the artifact."""
    problems = []
    if info.channels != art.input.channels:
        problems.append(f"{info.channels} input channels, the artifact expects {art.input.channels}")
    if info.classes != art.classes:
        problems.append(f"{info.classes} classes, the artifact has {art.classes}")
    if info.per_step != (art.readout.mode == "per_step"):
        problems.append(f"{'per-step' if info.per_step else 'per-sequence'} labels, the artifact's readout mode is "
                        f"{art.readout.mode!r}")
    if art.input.kind == "spike" and info.input_kind != "spike":
        problems.append(f"{info.input_kind} inputs, the artifact takes spikes (0/1)")
    if problems:
        raise SkipcoreError(f"dataset {info.name!r} does not match the artifact: " + "; ".join(problems))


def evaluate_artifact(art, split, info, *, batch_size: int = 256, progress=None) -> dict:
    """Golden accuracy of ``art`` on ``split``, with saturation counts and spike rates per layer."""
    from skipcore.datasets import accuracy
    from skipcore.golden import model as golden

    check_data(art, info)
    if split.x.shape[1] < 1:
        raise SkipcoreError("the split has no time steps")
    t0 = time.perf_counter()
    res = golden.run_batched(art, split.x, batch_size=batch_size, progress=progress)
    seconds = time.perf_counter() - t0
    n, steps = split.x.shape[0], split.x.shape[1]
    acc = accuracy(info, split.y, res.predictions)
    neuron_steps = n * steps * sum(l.neurons for l in art.layers)
    return {
        "accuracy": acc,
        "samples": int(n),
        "steps": int(steps),
        "saturation": {k: int(v) for k, v in res.saturation.items()},
        "spike_rates": [float(c.sum()) / (n * steps * l.neurons) for c, l in zip(res.spike_counts, art.layers)],
        "spikes_per_sample": [float(c.mean()) for c in res.spike_counts],
        "input_events_per_step": float(res.input_events.mean()) if res.input_events is not None else None,
        "seconds": seconds,
        "neuron_steps_per_s": neuron_steps / seconds if seconds > 0 else None,
        "predictions": res.predictions,
    }
