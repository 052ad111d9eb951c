"""The generated core against the golden model, bit for bit, on random configurations (cocotb).

All 30 random configurations (tests/sim_configs.py) run in ONE Verilator simulation through the
multi-core wrapper (one C++ build instead of 30), each with 3 back-to-back sequences, random input
gaps and output backpressure. Every per-layer spike (debug ports), readout word, prediction and
end-of-sequence marker must equal the golden model, and every layer's measured cycles per step must
stay within the bound of hdl/INTERFACE.md. Icarus runs the first configurations.
"""
from __future__ import annotations

import numpy as np
import pytest

from skipcore.sim import runners
from skipcore.sim.coreio import CoreSpec
from skipcore.sim.simulate import CoreCase, simulate_cores

from sim_configs import random_configs

pytest.importorskip("skipcore.hdl.generate")

N_CONFIGS = 30
N_ICARUS = 10
CONFIGS = random_configs(N_CONFIGS)


def _cases(configs):
    from skipcore.cores import generate_core_dir

    return [CoreCase(generate_core_dir(c.art, lanes=c.lanes, ring_depth=c.ring_depth, events=c.events), c.art, c.x,
                     seed=c.seed, name=c.name, gap=0.25, backpressure=0.3) for c in configs]


@pytest.fixture(scope="module")
def verilator_run(tmp_path_factory):
    return simulate_cores(_cases(CONFIGS), simulator="verilator", workdir=tmp_path_factory.mktemp("core_verilator"))


def test_configs_cover_the_contract():
    features = set().union(*(c.features() for c in CONFIGS))
    from skipcore.golden import kinds, readouts

    required = {f"kind:{k}" for k in kinds.random_mix()} | {f"readout_kind:{k}" for k in readouts.random_mix()}
    assert {"kind:lif", "kind:alif", "kind:stc", "readout_kind:alif"} <= required
    required |= {
        "span:0", "span:1", "span:>1", "span=ring_depth", "span<ring_depth",
        "lanes:1", "lanes:N", "lanes:non-divisor", "input:spike", "input:count", "input:real", "saturating",
        "readout:sequence", "readout:per_step", "readout_kind:sum", "readout_kind:leaky", "readout_kind:alif", "decay:mult",
        "decay:shift", "back-to-back", "weight_exp", "trace_bits:D", "trace_bits:>D", "events:1", "events:>1",
    }
    # E > 1 composed with every lane mode
    lane_modes = {m for c in CONFIGS if c.events > 1 for m in c.features() if m.startswith("lanes:")}
    assert {"lanes:1", "lanes:N", "lanes:non-divisor"} <= lane_modes
    assert required <= features, f"missing: {sorted(required - features)}"


def test_core_bit_exact_random_configs_verilator(verilator_run):
    assert len(verilator_run.results) == N_CONFIGS, verilator_run.cocotb.summary()
    assert verilator_run.ok, verilator_run.failure_message()
    for r in verilator_run.results:
        assert r.trace.valid.all()
        assert r.trace.spikes and all(s.shape[:2] == r.trace.readout.shape[:2] for s in r.trace.spikes)


def test_cycles_per_step_within_bound(verilator_run, record_property):
    ratios_mean, ratios_max = [], []
    for r in verilator_run.results:
        assert r.cycles is not None, f"{r.case.name}: no cycle measurements (debug ports missing?)"
        spec = CoreSpec.load(r.case.core_dir)
        assert r.cycles.bound.shape == (*r.trace.readout.shape[:2], spec.n_layers)
        r.cycles.check()  # every layer, every step: measured <= bound
        # the engines meet the bound exactly, E = 1 or E > 1 (golden.cycles)
        assert np.array_equal(r.cycles.measured, r.cycles.bound), r.case.name
        ratios_mean.append(r.cycles.ratio_mean)
        ratios_max.append(r.cycles.ratio_max)
    record_property("cycle_ratio_mean", float(np.mean(ratios_mean)))
    record_property("cycle_ratio_max", float(np.max(ratios_max)))
    print(f"cycles/bound over {len(ratios_mean)} configs: mean {np.mean(ratios_mean):.3f}, max {np.max(ratios_max):.3f}")


@pytest.mark.skipif(not runners.have_simulator("icarus"), reason=runners.ICARUS_MISSING)
def test_core_bit_exact_icarus(tmp_path):
    run = simulate_cores(_cases(CONFIGS[:N_ICARUS]), simulator="icarus", workdir=tmp_path)
    assert len(run.results) == N_ICARUS, run.cocotb.summary()
    assert run.ok, run.failure_message()
    for r in run.results:
        r.cycles.check()


def test_mismatch_names_first_difference(verilator_run, tmp_path):
    """A golden model that disagrees (one readout bias changed) is reported at its first step.

    Same cores in the same order as ``verilator_run``: the simulation build is reused from the cache.
    """
    import copy

    cases = [copy.copy(r.case) for r in verilator_run.results]
    wrong = copy.deepcopy(cases[1].art)
    wrong.readout.bias = wrong.readout.bias.copy()
    wrong.readout.bias[0] += 1  # the RTL adds the original bias: class 0 differs from step 0 on
    cases[1].art = wrong
    run = simulate_cores(cases, simulator="verilator", workdir=tmp_path)
    assert run.build_cached
    assert [r.ok for r in run.results] == [i != 1 for i in range(len(cases))]
    first = run.results[1].comparison.first
    assert (first.sample, first.step, first.quantity, first.index) == (0, 0, "readout", 0)
    assert first.rtl == first.golden - 1
    assert f"sample 0, step 0, class 0: readout rtl={first.rtl} golden={first.golden}" in run.failure_message()


def test_core_ports_follow_interface(verilator_run):
    """core.v's top-level ports equal core.json's and the widths hdl/INTERFACE.md prescribes."""
    from skipcore.sim.multicore import verilog_ports

    for r in verilator_run.results:
        spec = CoreSpec.load(r.case.core_dir)
        ports = verilog_ports((r.case.core_dir / "core.v").read_text(), spec.top)
        assert ports == {k: {"dir": v["dir"], "width": v["width"]} for k, v in spec.ports.items()}, r.case.name
        art = r.case.art
        C, M = art.input.channels, art.classes
        want = {
            "clk": ("in", 1), "rst": ("in", 1), "in_valid": ("in", 1), "in_ready": ("out", 1),
            "in_index": ("in", max(1, (C - 1).bit_length())), "in_value": ("in", art.input.bits),
            "in_end_step": ("in", 1), "in_end_seq": ("in", 1), "out_valid": ("out", 1), "out_ready": ("in", 1),
            "out_readout": ("out", M * art.widths.readout_bits),
            "out_prediction": ("out", max(1, (M - 1).bit_length())), "out_end_seq": ("out", 1),
        }
        for l, layer in enumerate(art.layers):
            want.update({f"dbg_l{l}_valid": ("out", 1), f"dbg_l{l}_spikes": ("out", layer.neurons),
                         f"dbg_l{l}_cycles": ("out", 32)})
        assert {k: (v["dir"], v["width"]) for k, v in ports.items()} == want, r.case.name
        assert spec.readout_mode == art.readout.mode and spec.classes == M and spec.channels == C
        for info, layer in zip(spec.layers, art.layers):
            p = min(r.case.spec.lanes, layer.neurons)
            assert (info.neurons, info.kind, info.span, info.lanes, info.groups) == \
                (layer.neurons, layer.kind, layer.span, p, -(-layer.neurons // p))
            # at most ALIF (latency 5) with multi-bit inputs (2), weight banks (2), over four banks (1),
            # over 16 banks (1) and E > 1;
            # own events: one scan cycle per group
            assert info.constant_cycles <= 17 + info.groups * info.own_span
            if layer.span:
                assert info.ring_depth >= layer.span


@pytest.mark.slow
@pytest.mark.parametrize("seed", [7, 8, 9])
def test_core_bit_exact_sweep(tmp_path, seed):
    """More random configurations (30 per seed), longer sequences, harder gaps/backpressure."""
    configs = random_configs(30, seed=seed, batch=4)
    cases = _cases(configs)
    for c in cases:
        c.gap, c.backpressure = 0.5, 0.6
    run = simulate_cores(cases, simulator="verilator", workdir=tmp_path)
    assert run.ok, run.failure_message()
    for r in run.results:
        r.cycles.check()


@pytest.mark.slow
@pytest.mark.skipif(not runners.have_simulator("icarus"), reason=runners.ICARUS_MISSING)
def test_core_bit_exact_icarus_all(tmp_path):
    run = simulate_cores(_cases(CONFIGS), simulator="icarus", workdir=tmp_path)
    assert run.ok, run.failure_message()
