"""The fast C++ Verilator batch runner: bit-exact with golden over whole batches (every neuron's
spike at every step), with and without random gaps/backpressure and debug ports; a swapped pair of
spikes is caught and located; and the ``skipcore simulate`` command on both engines."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from skipcore.golden.artifact import save
from skipcore.golden.contract import quantize_input
from skipcore.golden.model import run as golden_run
from skipcore.golden.random import random_artifact, random_inputs
from skipcore.sim.compare import RtlTrace, compare, cycle_report, pack_spikes
from skipcore.sim.coreio import CoreSpec
from skipcore.sim.fast import FastRunner

pytest.importorskip("skipcore.hdl.generate")


def _art(seed=7, **kw):
    rng = np.random.default_rng(seed)
    opts = dict(layer_sizes=[12, 7], kinds=["alif", "lif"], spans=[3, 1], input_kind="real", channels=5,
                readout_mode="sequence", saturating=False)
    opts.update(kw)
    return random_artifact(rng, **opts), rng


@pytest.fixture(scope="module")
def fast_case():
    from skipcore.cores import generate_core_dir

    art, rng = _art()
    x = quantize_input(art.input, random_inputs(rng, art, 150, 24))
    core = generate_core_dir(art, lanes=5)  # 12 neurons on 5 lanes: 3 groups, the last one partial
    return art, x, core, golden_run(art, x, traces=True, quantized=True)


@pytest.mark.parametrize("gap,backpressure", [(0.0, 0.0), (0.3, 0.4)])
def test_fast_runner_bit_exact(fast_case, gap, backpressure):
    art, x, core, gold = fast_case
    res = FastRunner(core).run(x, gap=gap, backpressure=backpressure, seed=3)
    assert res.valid.all()
    assert np.array_equal(res.readout, gold.readout)
    assert np.array_equal(res.predictions, gold.predictions)
    cmp = compare(res.to_trace(), readout=gold.readout, spikes=gold.spikes, mode=art.readout.mode)
    assert cmp.ok, cmp.message()
    assert cmp.spikes_compared == "every neuron" and cmp.neurons == (12, 7) and cmp.counts["spike"] == 0
    assert "every spike of every neuron (19 neurons in 2 layers)" in cmp.scope()
    for l, g in enumerate(gold.spikes):
        assert np.array_equal(res.spikes(l), g), l
        assert np.array_equal(res.spike_bits[l], pack_spikes(g)), l
    assert np.array_equal(res.spike_counts, np.stack([s.sum(axis=2) for s in gold.spikes], axis=2))
    rep = cycle_report(CoreSpec.load(core), res.to_trace(), gold.spikes)
    rep.check()
    assert res.total_cycles == int(res.cycles_per_step.sum())
    # the harness's own CPU time (wait4) is recorded and the per-CPU-second rate derives from it;
    # how fast it is belongs to benchmarks/bench_sim.py, never to a test
    assert isinstance(res.cpu_seconds, float)
    assert res.cycles_per_cpu_second == res.total_cycles / res.cpu_seconds


@pytest.mark.parametrize("seed,sizes,kinds,spans,input_kind,mode,lanes", [
    (21, [130, 33, 64], ["lif", "alif", "lif"], [2, 0, 1], "spike", "per_step", 16),  # 3, 1 and 1 words
    pytest.param(22, [65, 1], ["alif", "alif"], [1, 4], "count", "sequence", 7,  # a word holding 1 neuron
                 marks=pytest.mark.slow),
])
def test_fast_runner_every_neuron_on_random_cores(seed, sizes, kinds, spans, input_kind, mode, lanes):
    """Random cores (with weight exponents) whose layers fill several u64 words, a partial last word and a whole one: every
    neuron's spike at every step equals golden (with gaps and backpressure), the first divergence
    of a flipped spike in the last word is located."""
    from skipcore.cores import generate_core_dir

    art, rng = _art(seed=seed, layer_sizes=sizes, kinds=kinds, spans=spans, input_kind=input_kind, channels=9,
                    readout_mode=mode, weight_exps=True)
    x = quantize_input(art.input, random_inputs(rng, art, 24, 12))
    core = generate_core_dir(art, lanes=lanes)
    gold = golden_run(art, x, traces=True, quantized=True)
    res = FastRunner(core).run(x, gap=0.2, backpressure=0.3, seed=seed)
    cmp = compare(res.to_trace(), readout=gold.readout, spikes=gold.spikes, mode=art.readout.mode)
    assert cmp.ok, cmp.message()
    assert cmp.spikes_compared == "every neuron" and cmp.neurons == tuple(sizes)
    assert sum(int(s.sum()) for s in gold.spikes) > 0
    trace = res.to_trace()
    layer, neuron = 0, sizes[0] - 1  # the last neuron of the first layer: the top bit of its last word
    trace.spike_bits = [b.copy() for b in trace.spike_bits]
    trace.spike_bits[layer][5, 7, neuron // 8] ^= np.uint8(1 << (neuron % 8))
    bad = compare(trace, readout=gold.readout, spikes=gold.spikes, mode=art.readout.mode)
    assert (bad.first.sample, bad.first.step, bad.first.layer, bad.first.index) == (5, 7, layer, neuron)
    assert bad.counts["spike"] == 1


def test_fast_runner_shards_give_the_same_values(fast_case):
    """Three harness processes at once on shards of the batch: the same values as one process, and
    the same per-layer cycles (only end-to-end cycles differ where a shard starts from reset)."""
    art, x, core, gold = fast_case
    runner = FastRunner(core)
    one, three = runner.run(x, jobs=1), runner.run(x, jobs=3)
    assert (one.jobs, three.jobs) == (1, 3)
    for name in ("readout", "predictions", "step_prediction", "end_seq", "spike_counts", "layer_cycles", "valid",
                 "input_events"):
        assert np.array_equal(getattr(one, name), getattr(three, name)), name
    for a, b in zip(one.spike_bits, three.spike_bits, strict=True):
        assert np.array_equal(a, b)
    for l, g in enumerate(gold.spikes):
        assert np.array_equal(three.spikes(l), g), l
    assert np.array_equal(three.readout, gold.readout)
    assert three.total_cycles == int(three.cycles_per_step.sum())
    assert abs(three.total_cycles - one.total_cycles) < 0.05 * one.total_cycles
    assert isinstance(three.cpu_seconds, float)  # the three processes' CPU time, summed
    assert runner.run(x[:2], jobs=None).jobs == 1  # auto: no process for fewer than 32 sequences
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        runner.run(x, jobs=0)


def test_fast_runner_without_debug_ports_per_step_readout(tmp_path):
    from skipcore.cores import generate_core_dir

    art, rng = _art(seed=11, layer_sizes=[6], kinds=["lif"], spans=[2], input_kind="spike", channels=3,
                    readout_mode="per_step", saturating=True)
    x = quantize_input(art.input, random_inputs(rng, art, 40, 16))
    core = generate_core_dir(art, lanes=4, debug=False)
    res = FastRunner(core).run(x)
    gold = golden_run(art, x, quantized=True)
    assert res.spike_counts is None and res.layer_cycles is None and res.spike_bits is None
    assert compare(res.to_trace(), readout=gold.readout, mode=art.readout.mode).spikes_compared == "none"
    assert np.array_equal(res.readout, gold.readout)
    assert res.predictions.shape == (40, 16) and np.array_equal(res.predictions, gold.predictions)


@pytest.fixture(scope="module")
def fast_run(fast_case):
    _, x, core, _ = fast_case
    return FastRunner(core).run(x, jobs=2)


def _swap_two_spikes(bits: np.ndarray, neurons: int, rng) -> tuple[int, int, int, int]:
    """Swap one spiking and one silent neuron of one (sample, step) in packed ``bits`` in place
    (the layer's spike count stays the same); returns (sample, step, spiking neuron, silent one)."""
    spikes = np.unpackbits(bits, axis=2, count=neurons, bitorder="little")
    count = spikes.sum(axis=2)
    candidates = np.argwhere((count > 0) & (count < neurons))
    s, t = candidates[rng.integers(len(candidates))]
    on = rng.choice(np.flatnonzero(spikes[s, t] == 1))
    off = rng.choice(np.flatnonzero(spikes[s, t] == 0))
    spikes[s, t, on], spikes[s, t, off] = 0, 1
    bits[s, t] = pack_spikes(spikes[s, t])
    return int(s), int(t), int(on), int(off)


@pytest.mark.parametrize("layer", [0, 1])
def test_full_comparison_catches_two_swapped_spikes(fast_case, fast_run, layer):
    """Fault injection on the real fast runner's output: two spikes of one hidden layer swapped at
    one step (the count unchanged). The full comparison names sample, step, layer and neuron; the
    old per-layer count comparison passes it."""
    art, x, core, gold = fast_case
    trace = fast_run.to_trace()
    trace.spike_bits = [b.copy() for b in trace.spike_bits]
    s, t, on, off = _swap_two_spikes(trace.spike_bits[layer], trace.neurons[layer], np.random.default_rng(layer))
    cmp = compare(trace, readout=gold.readout, spikes=gold.spikes, mode=art.readout.mode)
    assert not cmp.ok
    assert cmp.counts["spike"] == 2 and cmp.steps_with_mismatch == 1 and cmp.samples_with_mismatch == 1
    assert sum(cmp.counts.values()) == 2  # readout and predictions are untouched
    first, second = cmp.mismatches[:2]
    assert (first.sample, first.step, first.layer, first.index) == (s, t, layer, min(on, off))
    assert (second.sample, second.step, second.layer, second.index) == (s, t, layer, max(on, off))
    assert str(first) == (f"sample {s}, step {t}, layer {layer}, neuron {min(on, off)}: "
                          f"spike rtl={int(min(on, off) == off)} golden={int(min(on, off) == on)}")
    with pytest.raises(AssertionError, match=f"first difference: sample {s}, step {t}, layer {layer}, neuron"):
        cmp.raise_if_mismatch()
    # golden given packed (as verify keeps it), in chunks smaller than the batch: the same answer
    packed = compare(trace, readout=gold.readout, spike_bits=[pack_spikes(g) for g in gold.spikes],
                     mode=art.readout.mode, chunk=16)
    assert packed.mismatches[:2] == cmp.mismatches[:2] and packed.counts == cmp.counts
    # the per-layer count comparison that verify used before misses it
    counts_only = RtlTrace(readout=trace.readout, prediction=trace.prediction, end_seq=trace.end_seq,
                           valid=trace.valid, spike_counts=trace.layer_spike_counts())
    weak = compare(counts_only, readout=gold.readout, spikes=gold.spikes, mode=art.readout.mode)
    assert weak.ok and weak.spikes_compared == "counts"


def test_verify_comparison_names_the_fault(fast_case, fast_run):
    """verify's own comparison step (flow._rtl_vs_golden) on the real run, clean and with a fault."""
    from skipcore.flow import _rtl_vs_golden

    art, _, _, gold = fast_case
    golden = {"readout": gold.readout, "spike_bits": [pack_spikes(g) for g in gold.spikes]}
    clean = _rtl_vs_golden(fast_run, golden, art.readout.mode)
    assert clean["count"] == 0 and clean["first"] is None and clean["spikes_compared"] == "every neuron"
    assert clean["compared"].startswith("every spike of every neuron (19 neurons in 2 layers)")
    assert clean["compared"].endswith("150 samples x 24 steps")
    broken = copy.copy(fast_run)
    broken.spike_bits = [b.copy() for b in fast_run.spike_bits]
    s, t, on, off = _swap_two_spikes(broken.spike_bits[1], 7, np.random.default_rng(5))
    bad = _rtl_vs_golden(broken, golden, art.readout.mode)
    assert bad["count"] == 1 and bad["samples_with_mismatch"] == 1 and bad["differing"] == {"spike": 2}
    assert bad["first"].startswith(f"sample {s}, step {t}, layer 1, neuron {min(on, off)}: spike rtl=")


def test_fast_runner_counts_only_mode(fast_case):
    """record_spikes=False: the harness keeps per-layer counts only (the benchmark's baseline)."""
    art, x, core, gold = fast_case
    res = FastRunner(core, record_spikes=False).run(x[:40])
    assert res.spike_bits is None
    assert np.array_equal(res.spike_counts, np.stack([s[:40].sum(axis=2) for s in gold.spikes], axis=2))
    with pytest.raises(ValueError, match="kept no spike vectors"):
        res.spikes(0)


def test_rtl_trace_keeps_spike_bits(fast_run, tmp_path):
    trace = fast_run.to_trace()
    trace.save(tmp_path / "trace.npz")
    back = RtlTrace.load(tmp_path / "trace.npz")
    assert back.neurons == [12, 7]
    for a, b in zip(trace.spike_bits, back.spike_bits, strict=True):
        assert np.array_equal(a, b)
    part = trace.slice(10, 20)
    assert part.batch == 10 and np.array_equal(part.spike_bits[1], trace.spike_bits[1][10:20])


def test_fast_runner_reports_a_stall(fast_case):
    """A cycle budget far too small reads as a stall, naming the sample it stopped at."""
    from skipcore.errors import ToolError

    _, x, core, _ = fast_case
    with pytest.raises(ToolError, match=r"stalled in the fast runner: .* \(sample \d+, step \d+\); rerun"):
        FastRunner(core).run(x, max_cycles=300, jobs=2)


def test_fast_runner_rejects_wrong_inputs(fast_case):
    _, x, core, _ = fast_case
    with pytest.raises(ValueError, match=r"expected \(batch, steps, 5\)"):
        FastRunner(core).run(x[:, :, :2])


# ---------------------------------------------------------------------------------------------
# the CLI


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    art, _ = _art(seed=5, layer_sizes=[5, 4], spans=[2, 0], channels=3)
    path = tmp_path_factory.mktemp("cli") / "model.skc"
    save(art, path)
    return path


@pytest.mark.parametrize("engine", ["cocotb", "fast"])
def test_cli_simulate(model_file, tmp_path, engine, capsys):
    from skipcore.cli import main

    out = tmp_path / "sim.json"
    args = ["simulate", str(model_file), "--samples", "4", "--steps", "8", "--lanes", "2", "--json", str(out)]
    if engine == "fast":
        args.append("--fast")
    assert main(args) == 0, capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["ok"] and result["samples"] == 4 and result["steps"] == 8
    assert result["first_mismatch"] is None
    assert result["compared"].startswith("every spike of every neuron (9 neurons in 2 layers)")
    assert result["cycle_bound"]["ratio_max"] <= 1.0
    assert result["cycles_per_step"]["max"] >= result["cycles_per_step"]["mean"] > 0
    text = capsys.readouterr().out
    assert "RTL vs golden" in text and "bound" in text


def test_cli_simulate_rejects_bad_options(model_file, capsys):
    from skipcore.cli import main

    assert main(["simulate", str(model_file), "--fast", "--simulator", "icarus"]) == 2
    assert "--fast uses Verilator" in capsys.readouterr().err
    assert main(["simulate", str(model_file), "--samples", "0"]) == 2
    assert "--samples must be at least 1" in capsys.readouterr().err


@pytest.mark.slow
def test_fast_runner_whole_mnist1d_test_set():
    """A demo-sized core (1 -> 128 -> 128 -> 10, lanes 8) on the whole MNIST-1D test split."""
    from skipcore.cores import generate_core_dir
    from skipcore.datasets import load_dataset
    from skipcore.golden.artifact import InputSpec, Widths

    rng = np.random.default_rng(0)
    art = random_artifact(rng, channels=1, layer_sizes=[128, 128], kinds=["lif", "alif"], spans=[1, 3],
                          input_kind="real", widths=Widths(8, 16, 24, 8), classes=10, readout_mode="sequence",
                          saturating=False)
    art.input = InputSpec(1, "real", 8, 4)
    art.layers[0].input_shift = 4
    art.validate()
    ds = load_dataset("mnist1d")
    x = quantize_input(art.input, ds.test.x)
    core = generate_core_dir(art, lanes=8)
    res = FastRunner(core).run(x)
    bits = [[], []]
    for start in range(0, len(x), 250):  # golden spikes kept packed, as verify does
        gold = golden_run(art, x[start:start + 250], traces=True, quantized=True)
        for layer, s in zip(bits, gold.spikes):
            layer.append(pack_spikes(s))
    cmp = compare(res.to_trace(), readout=golden_run(art, x, quantized=True).readout,
                  spike_bits=[np.concatenate(b) for b in bits], mode=art.readout.mode)
    assert cmp.ok, cmp.message()
    assert cmp.spikes_compared == "every neuron" and cmp.samples == len(x)


def test_bench_sim_baseline_core(fast_case, tmp_path, monkeypatch):
    """benchmarks/bench_sim.py --baseline-core: a core folder of another shape is refused with one
    line before any build; the same core as its own baseline is timed in alternated runs, checked
    bit-exact, with one CPU-time ratio per round; a broken baseline is reported not bit-exact."""
    import sys
    from pathlib import Path

    bench_dir = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(bench_dir))
    sys.modules.pop("bench_sim", None)
    import bench_sim

    art, x, core, gold = fast_case
    args = bench_sim.parse_args(["--lanes", "5", "--repeat", "2", "--baseline-core", str(core)])
    assert bench_sim.check_baseline(args, art) is None and args.baseline_spec.lanes == 5
    other, _ = _art(layer_sizes=[12, 8])
    assert "generate the baseline from the same artifact" in bench_sim.check_baseline(args, other)
    assert "not among --lanes 4" in bench_sim.check_baseline(bench_sim.parse_args(
        ["--lanes", "4", "--baseline-core", str(core)]), art)
    assert "no core.v there" in bench_sim.check_baseline(bench_sim.parse_args(
        ["--baseline-core", str(tmp_path)]), art)

    out = bench_sim.baseline_vs_current(args, art, x[:40], core, _gold_slice(gold, 40))
    assert out["current"]["bit_exact"] and out["baseline"]["bit_exact"]
    assert len(out["cpu_rate_ratios"]) == 2 and out["cpu_rate_ratio_median"] > 0
    assert out["baseline"]["cycles_per_cpu_second"] >= out["baseline"]["cycles_per_cpu_second_median"] > 0

    # a baseline core of another artifact of the same shape (one readout bias changed) is not bit-exact
    from skipcore.cores import generate_core_dir

    wrong = copy.deepcopy(art)
    wrong.readout.bias = wrong.readout.bias.copy()
    wrong.readout.bias[0] += -1 if wrong.readout.bias[0] > 0 else 1

    bad = generate_core_dir(wrong, lanes=5)
    args = bench_sim.parse_args(["--lanes", "5", "--repeat", "1", "--baseline-core", str(bad)])
    assert bench_sim.check_baseline(args, art) is None
    out = bench_sim.baseline_vs_current(args, art, x[:40], core, _gold_slice(gold, 40))
    assert out["current"]["bit_exact"] and not out["baseline"]["bit_exact"]


def _gold_slice(gold, n):
    """The golden traces of the first ``n`` sequences."""
    from types import SimpleNamespace

    return SimpleNamespace(readout=gold.readout[:n], spikes=[s[:n] for s in gold.spikes])
