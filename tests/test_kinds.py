"""The neuron-kind registry: generic validation, save/load, golden loop and random artifacts."""
from typing import NamedTuple

import numpy as np
import pytest

from skipcore.golden import artifact as A
from skipcore.golden import kinds
from skipcore.golden.arith import saturate
from skipcore.golden.artifact import ArtifactError
from skipcore.golden.contract import neuron_step
from skipcore.golden.model import run
from skipcore.golden.random import random_artifact, random_inputs


class IFState(NamedTuple):
    v: np.ndarray


class IFParams(NamedTuple):
    theta: np.ndarray
    state_bits: int


class IntegrateAndFire(kinds.NeuronKind):
    """A kind defined only here: non-leaky IF with a per-neuron threshold and an option."""

    name = "test_if"
    parameters = ("theta",)
    State = IFState
    options = (kinds.OptionSpec("refractory", 0, 3, 0),)

    def arrays(self, widths, layer):
        return (kinds.ArraySpec("theta", (layer.neurons,), 1, 2 ** (widths.state_bits - 1) - 1, "thresholds"),)

    def state(self, widths):
        return (kinds.StateSpec("v", -(2 ** (widths.state_bits - 1)), 2 ** (widths.state_bits - 1) - 1),)

    def params(self, art, layer, dtype=np.int64):
        return IFParams(layer.theta.astype(dtype), art.widths.state_bits)

    def step(self, acc, state, p, sat=None):
        h = saturate(state.v + acc, p.state_bits, sat, "membrane")
        s = (h >= p.theta).astype(h.dtype)
        return s, IFState(h - p.theta * s)

    def work_bits(self, widths, layer, acc_bits):
        return max(widths.state_bits, acc_bits) + 1

    def random_arrays(self, ctx):
        return {"theta": ctx.thresholds()}

    def random_options(self, ctx):
        return {"refractory": int(ctx.rng.integers(0, 4))}


@pytest.fixture
def test_kind(monkeypatch):
    kind = IntegrateAndFire()
    monkeypatch.setitem(kinds._REGISTRY._entries, kind.name, kind)
    return kind


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(kinds.UnknownKindError, match=r"unknown neuron kind 'izhikevich'; known kinds: lif, alif"):
        neuron_step("izhikevich")


def test_a_kind_defined_elsewhere_goes_through_every_generic_path(test_kind, tmp_path):
    rng = np.random.default_rng(3)
    art = random_artifact(rng, layer_sizes=[5, 4], kinds=["test_if", "lif"], spans=[2, 1])
    assert art.layers[0].options.keys() == {"refractory"}
    assert set(art.layers[0].arrays()) == {"w_in", "bias", "w_rec", "theta"}
    assert art.layers[0].threshold is None  # another kind's parameter reads as absent
    path = A.save(art, tmp_path / "m.skc")
    back = A.load(path)
    assert back == art
    x = random_inputs(rng, art, 2, 12)
    res = run(back, x, traces=True)
    assert set(res.states[0]) == {"v"}
    # by hand: IF layer 0 (no recurrence here would be span 0; span 2 replays S[t-2])
    layer = art.layers[0]
    from skipcore.golden.contract import quantize_input
    xq = quantize_input(art.input, x)
    v = np.zeros((2, layer.neurons), np.int64)
    spikes = []
    for t in range(12):
        acc = ((xq[:, t] @ layer.w_in.T) >> layer.input_shift) + layer.bias
        if t >= 2:
            acc = acc + spikes[t - 2] @ layer.w_rec.T
        h = np.clip(v + acc, -(2 ** (art.widths.state_bits - 1)), 2 ** (art.widths.state_bits - 1) - 1)
        s = (h >= layer.theta).astype(np.int64)
        v = h - layer.theta * s
        spikes.append(s)
        assert np.array_equal(res.spikes[0][:, t], s)
        assert np.array_equal(res.states[0]["v"][:, t], v)


def test_schema_checks_name_the_field(test_kind):
    art = random_artifact(np.random.default_rng(4), layer_sizes=[3], kinds=["test_if"], spans=[0])
    art.layers[0].options = {"refractory": 9}
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.options\.refractory: 9 is outside .*\[0, 3\]"):
        art.validate()
    art.layers[0].options = {}
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.options\.refractory: missing"):
        art.validate()
    art.layers[0].options = {"refractory": 1}
    art.layers[0].rho = np.zeros(3, np.int64)
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.rho: not a parameter of a test_if layer \(it has theta\)"):
        art.validate()
    art.layers[0].rho = None
    art.layers[0].theta = None
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.theta: missing: a test_if layer needs theta"):
        art.validate()


def test_alif_parameters_are_refused_on_a_lif_layer():
    art = random_artifact(np.random.default_rng(5), layer_sizes=[3], kinds=["lif"], spans=[0])
    art.layers[0].beta = np.zeros(3, np.int64)
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.beta: not a parameter of a lif layer"):
        art.validate()


def test_registry_lists_the_builtin_kinds_and_their_traces():
    from skipcore.golden.artifact import Widths
    assert kinds.names()[:2] == ("lif", "alif")
    assert kinds.get("lif").traces(Widths()) == ("v",)
    assert kinds.get("alif").traces(Widths()) == ("u", "b")


def test_every_kind_is_defined_on_every_layer_of_the_stack():
    from skipcore.golden import readouts
    from skipcore.hdl import kinds as hdl_kinds
    from skipcore.hdl import readouts as hdl_readouts
    from skipcore.quant import kinds as quant_kinds
    from skipcore.quant import readouts as quant_readouts

    # every registered kind, built-in or new, has all three definitions (in the same order)
    assert kinds.names() == quant_kinds.names() == hdl_kinds.names()
    assert {"lif", "alif", "stc"} <= set(kinds.names())
    assert readouts.names() == quant_readouts.names() == hdl_readouts.names() == ("sum", "leaky", "alif")


def test_a_kind_without_hardware_is_refused_by_the_generator(test_kind):
    from skipcore.errors import ConfigError
    from skipcore.hdl.plan import plan_core

    art = random_artifact(np.random.default_rng(8), layer_sizes=[3], kinds=["test_if"], spans=[0])
    from skipcore.hdl import kinds as hdl_kinds

    known = ", ".join(hdl_kinds.names())
    assert "test_if" not in known and known.startswith("lif, alif")
    with pytest.raises(ConfigError, match=f"neuron kind 'test_if' has no hardware unit; kinds with one: {known}$"):
        plan_core(art, lanes=2)


def test_the_reference_model_asks_the_kind_for_its_section(test_kind, monkeypatch):
    """golden/reference.py names no kind: a kind without ``reference_step`` is refused up front,
    and one with it runs through the reference like the built-in kinds."""
    from skipcore.golden import reference

    art = random_artifact(np.random.default_rng(9), layer_sizes=[4, 3], kinds=["lif", "test_if"], spans=[1, 0])
    x = random_inputs(np.random.default_rng(10), art, 2, 7)
    with pytest.raises(ValueError, match=r"^the reference model has no section for neuron kind 'test_if'$"):
        reference.run(art, x)

    def reference_step(self, acc, state, q, layer, ref):
        h = ref.saturate(state["v"] + acc, ref.widths.state_bits, "membrane")
        spikes = (h >= layer.theta).astype(np.int64)
        state["v"] = h - layer.theta * spikes
        return spikes

    monkeypatch.setattr(IntegrateAndFire, "reference_step", reference_step, raising=False)
    ref, opt = reference.run(art, x, traces=True), run(art, x, traces=True)
    assert np.array_equal(ref.readout, opt.readout) and np.array_equal(ref.states[1]["v"], opt.states[1]["v"])
    assert ref.saturation == opt.saturation
