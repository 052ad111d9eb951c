"""Integer primitives of the contract (``golden/CONTRACT.md``), vectorised with NumPy.

Every function here is a pure function on int64 arrays. The step functions follow the shape
``step(current, state, params) -> (spikes, state)`` so that the QAT model in ``quant/qat.py``
can be compared with them line by line.
"""
from __future__ import annotations

import numpy as np

from . import kinds, readouts
from .arith import Saturation, decay, saturate, signed_range
from .artifact import Artifact, InputSpec, LayerSpec
# the built-in kinds' steps, importable from here as before
from .kinds.alif import ALIFParams, ALIFState, alif_step
from .kinds.lif import LIFParams, LIFState, lif_step

__all__ = [
    "Saturation", "signed_range", "saturate", "decay", "quantize_input", "accumulator_bound",
    "accumulator_bits", "layer_input_max", "layer_params", "work_dtype", "initial_state",
    "neuron_step", "state_traces", "readout_step", "predict",
    "LIFParams", "LIFState", "lif_step", "ALIFParams", "ALIFState", "alif_step",
]


def quantize_input(spec: InputSpec, x: np.ndarray, counter: Saturation | None = None) -> np.ndarray:
    """Section 2: float input -> int64, round half up, clamped to the input range."""
    x = np.asarray(x)
    lo, hi = spec.range
    if spec.kind == "spike":
        q = x.astype(np.int64)
        if not np.array_equal(q, x):
            raise ValueError("spike inputs must be 0 or 1")
    elif spec.kind == "count":
        q = np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)
    else:
        q = np.floor(np.asarray(x, dtype=np.float64) * float(2**spec.frac_bits) + 0.5).astype(np.int64)
    if counter is not None:
        counter.add("input", np.count_nonzero((q < lo) | (q > hi)))
    return np.clip(q, lo, hi)


def accumulator_bound(layer: LayerSpec, input_max_abs: int) -> int:
    """Section 5: the largest |acc| any input can produce in this layer (weights shifted by their exponents)."""
    ff = np.abs(layer.w_in_shifted).sum(axis=1) * int(input_max_abs)
    ff = -((-ff) >> layer.input_shift)  # ceil division by 2**shift
    total = ff + np.abs(layer.bias)
    if layer.w_rec is not None:
        total = total + np.abs(layer.w_rec_shifted).sum(axis=1)
    return int(total.max()) if total.size else 0


def accumulator_bits(layer: LayerSpec, input_max_abs: int) -> int:
    """Signed width that holds every accumulator value of the layer."""
    return accumulator_bound(layer, input_max_abs).bit_length() + 1


def layer_input_max(art: Artifact, index: int) -> int:
    return art.input.max_abs if index == 0 else 1


# ---------------------------------------------------------------------------------------------
# neuron steps: every kind's own definition lives in golden/kinds/; these ask the layer's kind


def layer_params(art: Artifact, layer: LayerSpec, dtype=np.int64):
    """The constants the layer's neuron step takes (section 3.3 onwards, one section per kind)."""
    return kinds.get(layer.kind).params(art, layer, dtype)


def work_dtype(art: Artifact, layer: LayerSpec, acc_bits: int):
    """int32 when every intermediate of the layer's update provably fits 31 bits, else int64.

    The kind states its widest intermediate (:meth:`golden.kinds.NeuronKind.work_bits`); values
    are identical in either type.
    """
    need = kinds.get(layer.kind).work_bits(art.widths, layer, acc_bits)
    if need > 63:
        raise ValueError(
            f"a {layer.kind} layer of this artifact needs {need}-bit intermediates, beyond the golden model's "
            "int64; lower the weight, state or decay widths"
        )
    return np.int32 if need <= 31 else np.int64


def initial_state(layer: LayerSpec, batch: int, dtype=np.int64):
    """Section 3.5: the kind's state, all zero."""
    return kinds.get(layer.kind).initial_state(layer, batch, dtype)


def neuron_step(kind: str):
    """``step(acc, state, params, sat) -> (spikes, state)`` of a kind (unknown kinds are refused)."""
    return kinds.get(kind).step


def state_traces(art: Artifact, layer: LayerSpec) -> tuple[str, ...]:
    """Names of the state arrays the golden model records per step for this layer."""
    return kinds.get(layer.kind).traces(art.widths)


def readout_step(acc: np.ndarray, m: np.ndarray, art: Artifact, sat: Saturation | None = None) -> np.ndarray:
    """Section 4 for readout kinds whose whole state is ``m`` (``sum``, ``leaky``): one update."""
    kind = readouts.get(art.readout.kind)
    state = kind.State(m)
    return kind.value(kind.step(acc, state, kind.params(art, art.readout), sat))


def predict(readout: np.ndarray, mode: str) -> np.ndarray:
    """Argmax with ties to the lowest class: (B,T,M) -> (B,) for sequence, (B,T) for per_step."""
    if mode == "sequence":
        return np.argmax(readout[:, -1, :], axis=-1)
    return np.argmax(readout, axis=-1)
