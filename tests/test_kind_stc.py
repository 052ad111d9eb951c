"""STC-LIF (CONTRACT.md section 3.6): the golden step against a plain per-neuron Python reference."""
import numpy as np
import pytest

from skipcore.golden import artifact as A
from skipcore.golden.artifact import ArtifactError
from skipcore.golden.contract import quantize_input
from skipcore.golden.kinds.stc import gate_shift, gate_table
from skipcore.golden.model import run
from skipcore.golden.random import random_artifact, random_inputs


def reference_layer(art, index, x_int):
    """Section 3.1 + 3.6 with Python ints, one neuron at a time (x_int: (B, T, fan_in) ints)."""
    layer, w = art.layers[index], art.widths
    o = layer.options
    n, m = layer.neurons, layer.neurons // o["gate_groups"]
    half, top = 1 << (o["gate_bits"] - 1), (1 << o["gate_bits"]) - 1
    lo, hi = -(1 << (w.state_bits - 1)), (1 << (w.state_bits - 1)) - 1
    D = w.decay_bits
    batch, steps = len(x_int), len(x_int[0])
    out = [[[0] * n for _ in range(steps)] for _ in range(batch)]
    vs = [[[0] * n for _ in range(steps)] for _ in range(batch)]
    for b in range(batch):
        v, q = [0] * n, [0] * n
        for t in range(steps):
            s_new = [0] * n
            for i in range(n):
                ff = sum(int(layer.w_in[i, j]) * int(x_int[b][t][j]) for j in range(layer.fan_in))
                acc = (ff >> layer.input_shift) + int(layer.bias[i])
                if layer.span and t >= layer.span:
                    acc += sum(int(layer.w_rec[i, j]) * out[b][t - layer.span][j] for j in range(n))
                start = (i // m) * m
                za = sum(int(layer.w_a[i, j]) * q[start + j] for j in range(m)) + int(layer.bias_a[i])
                zg = sum(int(layer.w_g[i, j]) * q[start + j] for j in range(m)) + int(layer.bias_g[i])
                a = int(layer.table_a[min(max((za >> o["shift_a"]) + half, 0), top)])
                g = int(layer.table_g[min(max((zg >> o["shift_g"]) + half, 0), top)])
                h = min(max(((a * v[i]) >> D) + ((g * acc) >> D), lo), hi)
                s = int(h >= int(layer.threshold[i]))
                v[i] = h - int(layer.threshold[i]) * s
                s_new[i] = s
                vs[b][t][i] = v[i]
            q = s_new
            out[b][t] = s_new
    return np.array(out), np.array(vs)


@pytest.mark.parametrize("seed", range(12))
def test_stc_golden_matches_the_reference(seed):
    rng = np.random.default_rng(seed)
    n = [6, 4, 5][seed % 3]
    art = random_artifact(rng, layer_sizes=[n, 3], kinds=["stc", "lif"], spans=[seed % 4, 1],
                          saturating=seed % 2 == 0)
    x = random_inputs(rng, art, 2, 10)
    res = run(art, x, traces=True)
    spikes, v = reference_layer(art, 0, quantize_input(art.input, x).tolist())
    assert np.array_equal(res.spikes[0], spikes)
    assert np.array_equal(res.states[0]["v"], v)


def test_stc_options_cover_groups_one_divisor_and_n():
    seen = set()
    for seed in range(60):
        art = random_artifact(np.random.default_rng(seed), layer_sizes=[6], kinds=["stc"], spans=[0])
        seen.add(art.layers[0].options["gate_groups"])
    assert {1, 2, 3, 6} <= seen


def test_stc_schema_refuses_a_group_count_that_does_not_divide(tmp_path):
    art = random_artifact(np.random.default_rng(0), layer_sizes=[6], kinds=["stc"], spans=[1])
    art.layers[0].options["gate_groups"] = 4
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.options\.gate_groups: 4 does not divide the layer's 6"):
        art.validate()
    art.layers[0].options["gate_groups"] = 3
    art.layers[0].w_a = art.layers[0].w_a[:, :1]
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.w_a: shape mismatch: expected \(6, 2\)"):
        art.validate()


def test_stc_round_trips_through_the_file(tmp_path):
    art = random_artifact(np.random.default_rng(1), layer_sizes=[4, 4], kinds=["stc", "stc"], spans=[2, 0])
    assert A.load(A.save(art, tmp_path / "m.skc")) == art


def test_gate_table_is_one_plus_tanh_at_bin_midpoints():
    t = gate_table(scale=10.0, shift=1, bits=4, decay_bits=8)
    # entry 8 holds z in [0, 1]: x = 0.5 / 10
    assert t[8] == int(np.floor((1 + np.tanh(0.05)) * 256 + 0.5))
    assert t[0] == int(np.floor((1 + np.tanh((-16 + 0.5) / 10)) * 256 + 0.5))
    assert np.all(np.diff(t) >= 0) and t.min() >= 0 and t.max() <= 512
    assert gate_shift(10.0, 4) == 3  # 8 * 2**3 = 64 >= 4 * 10
    assert gate_shift(1.0, 6) == 0


def test_stc_schema_bounds_the_gate_biases_by_the_table_reach():
    art = random_artifact(np.random.default_rng(2), layer_sizes=[6], kinds=["stc"], spans=[1])
    layer = art.layers[0]
    limit = 1 << (layer.options["gate_bits"] - 1 + layer.options["shift_a"])
    layer.bias_a = np.full(6, limit, dtype=np.int64)
    art.validate()
    layer.bias_a[2] = limit + 1
    with pytest.raises(ArtifactError, match=r"^layers\[0\]\.bias_a"):
        art.validate()


def test_a_negative_gate_bias_makes_a_silent_neuron_leak():
    """bias_a moves A of a neuron with no own spikes off table(0) ~ 1 (the leak the bias exists for)."""
    from skipcore.golden.kinds.stc import STCParams, STCState, stc_step

    table = gate_table(scale=32.0, shift=2, bits=6, decay_bits=8)
    zero = np.zeros((1, 1), dtype=np.int64)
    for bias, expect in ((0, int(table[32])), (-64, int(table[16]))):
        p = STCParams(np.array([10_000]), zero, zero, table, table, 2, 2, 1, 6, 16, 8,
                      np.array([bias]), np.array([0]))
        _, state = stc_step(zero, STCState(np.array([[1000]]), zero), p)
        assert state.v[0, 0] == (expect * 1000) >> 8
    assert int(table[16]) < 200 < 250 < int(table[32])
