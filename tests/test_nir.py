"""NIR import (quant/importers/nir_graph.py) and export (quant/nir_export.py).

Random NIR graphs are simulated here by their own equations (forward Euler with the step dt, the
rule documented in docs/import-export.md) and must give the same spikes as the imported skipcore
network; random skipcore networks exported to a .nir file and imported back must quantize to the
same integer network.
"""
import nir
import numpy as np
import pytest
import torch

from skipcore.quant.config import LayerConfig, NetworkConfig, ReadoutConfig
from skipcore.quant.export import ExportOptions, export_artifact
from skipcore.quant.importers import ModelImportError
from skipcore.quant.importers.nir_graph import import_nir
from skipcore.quant.network import SpikingNetwork
from skipcore.quant.nir_export import NIRExportError, network_to_nir


def random_graph(rng, dt, *, channels=4, sizes=(12, 9), classes=3, readout="LI", tau_syn_steps=1.0):
    """A random chain graph in the accepted subset, and its layer list for the reference simulator.

    Layer 2 is a CubaLIF with ``tau_syn = tau_syn_steps * dt`` (1: a LIF; more: a ``cuba`` layer) and
    ``w_in`` scaled by it, as snnTorch exports ``Synaptic`` (``w_in = tau_syn / dt``)."""
    nodes = {"in": nir.Input(input_type={"input": np.array([channels])})}
    edges, prev, width, spec = [], "in", channels, []
    for i, n in enumerate(sizes):
        w = rng.normal(0, 1.2, (n, width))
        b = rng.normal(0.1, 0.2, n)
        kind = ["LIF", "IF", "CubaLIF"][i % 3] if i else "LIF"
        th = rng.uniform(0.5, 1.5, n)
        r = rng.uniform(0.5, 2.0, n)
        tau = np.full(n, dt * rng.uniform(1.5, 8.0))
        if kind == "LIF":
            node = nir.LIF(tau=tau, r=r, v_leak=np.zeros(n), v_threshold=th, v_reset=np.zeros(n))
        elif kind == "IF":
            r = r / dt / 4
            node = nir.IF(r=r, v_threshold=th, v_reset=np.zeros(n))
        else:
            node = nir.CubaLIF(tau_syn=np.full(n, dt * tau_syn_steps), tau_mem=tau, r=r, v_leak=np.zeros(n),
                               v_threshold=th, v_reset=np.zeros(n), w_in=rng.uniform(0.5, 1.5, n) * tau_syn_steps)
        nodes[f"fc{i}"] = nir.Affine(weight=w, bias=b) if i % 2 == 0 else nir.Linear(weight=w)
        if i % 2:
            b = np.zeros(n)
        nodes[f"n{i}"] = node
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"n{i}")]
        span, w_rec = 0, None
        if i < 2:  # a recurrent cycle; layer 0 through a Delay, layer 1 without (one step)
            w_rec = rng.normal(0, 0.5, (n, n))
            span = int(rng.integers(1, 5)) if i == 0 else 1
            nodes[f"rec{i}"] = nir.Linear(weight=w_rec)
            if i == 0:
                nodes[f"d{i}"] = nir.Delay(delay=np.full(n, span * dt))
                edges += [(f"n{i}", f"d{i}"), (f"d{i}", f"rec{i}"), (f"rec{i}", f"n{i}")]
            else:
                edges += [(f"n{i}", f"rec{i}"), (f"rec{i}", f"n{i}")]
        spec.append((w, b, node, w_rec, span))
        prev, width = f"n{i}", n
    w = rng.normal(0, 1.0, (classes, width))
    b = rng.normal(0, 0.1, classes)
    nodes["fc_out"] = nir.Affine(weight=w, bias=b)
    nodes["ro"] = (nir.LI(tau=dt * rng.uniform(2, 10, classes), r=rng.uniform(0.5, 2, classes), v_leak=np.zeros(classes))
                   if readout == "LI" else nir.I(r=rng.uniform(0.5, 2, classes) / dt))
    nodes["out"] = nir.Output(output_type={"output": np.array([classes])})
    edges += [(prev, "fc_out"), ("fc_out", "ro"), ("ro", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges), spec, (w, b, nodes["ro"])


def simulate(spec, readout, x, dt):
    """The graph's own equations, forward Euler; returns per-layer spikes and the readout trace."""
    steps = x.shape[1]
    h, all_spikes = x, []
    for w, b, node, w_rec, span in spec:
        n = w.shape[0]
        v = np.zeros((x.shape[0], n))
        syn = np.zeros_like(v)
        out = np.zeros((x.shape[0], steps, n))
        for t in range(steps):
            cur = h[:, t] @ w.T + b
            if w_rec is not None and t >= span:
                cur = cur + out[:, t - span] @ w_rec.T
            if isinstance(node, nir.IF):
                v = v + dt * node.r * cur
            elif isinstance(node, nir.CubaLIF):
                syn = syn + dt / node.tau_syn * (-syn + node.w_in * cur)
                v = v + dt / node.tau_mem * (node.v_leak - v + node.r * syn)
            else:
                v = v + dt / node.tau * (node.v_leak - v + node.r * cur)
            z = v > node.v_threshold
            v = np.where(z, node.v_reset, v)
            out[:, t] = z
        all_spikes.append(out)
        h = out
    w, b, ro = readout
    m = np.zeros((x.shape[0], w.shape[0]))
    trace = []
    for t in range(steps):
        cur = h[:, t] @ w.T + b
        m = m + dt / ro.tau * (-m + ro.r * cur) if isinstance(ro, nir.LI) else m + dt * ro.r * cur
        trace.append(m)
    return all_spikes, np.stack(trace, 1)


@pytest.mark.parametrize("seed", range(4))
def test_random_nir_graphs_import_with_the_same_spikes(tmp_path, seed):
    rng = np.random.default_rng(seed)
    dt = [1e-3, 1.0, 1e-4, 0.5][seed]
    graph, spec, readout = random_graph(rng, dt, sizes=(12, 9, 7)[: 2 + seed % 2], readout="LI" if seed % 2 else "I")
    nir.write(tmp_path / "g.nir", graph)
    imported = import_nir(tmp_path / "g.nir", dt=dt)
    net = imported.network
    assert [l.cfg.span for l in net.layers if l.rec is not None] == [s for *_, s in spec if s]
    x = (rng.random((5, 40, 4)) < 0.4).astype(np.float64)
    ref_spikes, ref_trace = simulate(spec, readout, x, dt)
    assert sum(s.sum() for s in ref_spikes) > 30, "the test graph must spike"
    with torch.no_grad():
        out = net(torch.from_numpy(x), record=True)
    for ours, theirs in zip(out.spikes, ref_spikes):
        np.testing.assert_array_equal(ours.numpy(), theirs)
    np.testing.assert_allclose(out.readout.numpy(), ref_trace, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed,tau_syn_steps", [(5, 3.0), (6, 1.7), (7, 6.5)])
def test_cubalif_with_its_own_synapse_imports_as_cuba(tmp_path, seed, tau_syn_steps):
    """tau_syn != dt: a ``cuba`` layer (alpha_syn = 1 - dt/tau_syn), the same spikes as the graph."""
    rng = np.random.default_rng(seed)
    dt = [1e-3, 1.0, 1e-4][seed % 3]
    graph, spec, readout = random_graph(rng, dt, sizes=(12, 9, 7), readout="LI", tau_syn_steps=tau_syn_steps)
    nir.write(tmp_path / "g.nir", graph)
    net = import_nir(tmp_path / "g.nir", dt=dt).network
    assert [l.cfg.kind for l in net.layers] == ["lif", "lif", "cuba"]
    assert net.layers[2].cfg.options["alpha_syn"] == pytest.approx(1.0 - 1.0 / tau_syn_steps, rel=1e-12)
    x = (rng.random((5, 40, 4)) < 0.4).astype(np.float64)
    ref_spikes, ref_trace = simulate(spec, readout, x, dt)
    assert ref_spikes[2].sum() > 10, "the CubaLIF layer must spike"
    with torch.no_grad():
        out = net(torch.from_numpy(x), record=True)
    for ours, theirs in zip(out.spikes, ref_spikes):
        np.testing.assert_array_equal(ours.numpy(), theirs)
    np.testing.assert_allclose(out.readout.numpy(), ref_trace, rtol=1e-9, atol=1e-9)


def _random_network(rng):
    layers = []
    for _ in range(int(rng.integers(1, 4))):
        rec = str(rng.choice(["none", "src"]))
        lam = float(rng.choice([rng.uniform(0.05, 0.95), 1.0, 0.5]))
        layers.append(LayerConfig(int(rng.integers(2, 12)), recurrence=rec, span=int(rng.integers(1, 6)),
                                  reset="hard", lam=lam, threshold=float(rng.uniform(0.3, 2.0))))
    readout = ReadoutConfig(kind=str(rng.choice(["sum", "leaky"])), mode=str(rng.choice(["sequence", "per_step"])),
                            skip_steps=int(rng.integers(0, 3)))
    torch.manual_seed(int(rng.integers(1 << 30)))
    return SpikingNetwork(NetworkConfig(input_channels=int(rng.integers(1, 6)), classes=int(rng.integers(2, 6)),
                                        layers=layers, readout=readout, bias=bool(rng.integers(2)))).eval()


@pytest.mark.parametrize("seed", range(12))
def test_export_then_import_gives_the_same_integer_network(tmp_path, seed):
    rng = np.random.default_rng(100 + seed)
    network = _random_network(rng)
    dt = float(rng.choice([1.0, 1e-3, 2.5e-4]))
    nir.write(tmp_path / "m.nir", network_to_nir(network, dt=dt))
    back = import_nir(tmp_path / "m.nir").network
    opts = ExportOptions(weight_bits=int(rng.integers(4, 12)), decay_bits=int(rng.integers(4, 12)))
    a = export_artifact(network, opts, input_kind="spike")
    b = export_artifact(back, opts, input_kind="spike")
    assert (a.input, a.widths, a.readout) == (b.input, b.widths, b.readout)
    assert a.layers == b.layers
    x = torch.from_numpy((rng.random((3, 20, network.config.input_channels)) < 0.5).astype(np.float32))
    with torch.no_grad():
        np.testing.assert_allclose(back(x.double()).numpy(), network(x).numpy(), rtol=1e-4, atol=1e-4)


def test_export_refuses_what_nir_cannot_hold():
    alif = SpikingNetwork(NetworkConfig(2, 2, layers=[LayerConfig(3, kind="alif")], readout=ReadoutConfig("leaky")))
    with pytest.raises(NIRExportError, match="layer 0 is a 'alif'"):
        network_to_nir(alif)
    soft = SpikingNetwork(NetworkConfig(2, 2, layers=[LayerConfig(3, reset="soft")]))
    with pytest.raises(NIRExportError, match="soft reset"):
        network_to_nir(soft)


def _edit(graph, name, node):
    nodes = dict(graph.nodes)
    nodes[name] = node
    return nir.NIRGraph(nodes=nodes, edges=graph.edges, type_check=False)


def test_import_refusals_name_the_node():
    rng = np.random.default_rng(0)
    dt = 1e-3
    graph, spec, _ = random_graph(rng, dt, sizes=(6, 5))
    with pytest.raises(ModelImportError, match="pass --dt"):
        import_nir(graph)
    bad = _edit(graph, "n0", nir.Threshold(threshold=np.ones(6)))
    with pytest.raises(ModelImportError, match="'n0' is a Threshold"):
        import_nir(bad, dt=dt)
    n0 = graph.nodes["n0"]
    bad = _edit(graph, "n0", nir.LIF(tau=np.linspace(2, 3, 6) * dt, r=n0.r, v_leak=n0.v_leak,
                                     v_threshold=n0.v_threshold, v_reset=n0.v_reset))
    with pytest.raises(ModelImportError, match="'n0'.*per-neuron time constants"):
        import_nir(bad, dt=dt)
    bad = _edit(graph, "n0", nir.LIF(tau=n0.tau, r=n0.r, v_leak=n0.v_leak, v_threshold=n0.v_threshold,
                                     v_reset=np.full(6, 0.2)))
    with pytest.raises(ModelImportError, match="v_reset"):
        import_nir(bad, dt=dt)
    bad = _edit(graph, "n0", nir.CubaLIF(tau_syn=np.full(6, 0.5 * dt), tau_mem=n0.tau, r=n0.r, v_leak=n0.v_leak,
                                         v_threshold=n0.v_threshold))
    with pytest.raises(ModelImportError, match="'n0' \\(CubaLIF\\) has tau_syn < dt"):
        import_nir(bad, dt=dt)
    bad = _edit(graph, "n0", nir.CubaLIF(tau_syn=np.linspace(2, 3, 6) * dt, tau_mem=n0.tau, r=n0.r,
                                         v_leak=n0.v_leak, v_threshold=n0.v_threshold))
    with pytest.raises(ModelImportError, match="'n0' \\(CubaLIF\\) has per-neuron synaptic time constants"):
        import_nir(bad, dt=dt)
    bad = _edit(graph, "d0", nir.Delay(delay=np.full(6, 1.5 * dt)))
    with pytest.raises(ModelImportError, match="'d0'.*whole number"):
        import_nir(bad, dt=dt)


def test_nested_recurrent_subgraph_is_flattened():
    """snnTorch/Norse write a recurrent layer as a subgraph (input -> lif <-> w_rec -> output)."""
    rng = np.random.default_rng(3)
    n, dt = 5, 1.0
    w_rec = rng.normal(0, 0.5, (n, n))
    lif = nir.LIF(tau=np.full(n, 4.0), r=np.full(n, 4.0), v_leak=np.zeros(n), v_threshold=np.ones(n),
                  v_reset=np.zeros(n))
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([n])}), "lif": lif,
                              "w_rec": nir.Linear(weight=w_rec), "output": nir.Output(output_type={"output": np.array([n])})},
                       edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    graph = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([2])}),
                                "fc": nir.Affine(weight=rng.normal(0, 1, (n, 2)), bias=np.zeros(n)), "rlif": sub,
                                "fo": nir.Affine(weight=rng.normal(0, 1, (2, n)), bias=np.zeros(2)),
                                "ro": nir.I(r=np.ones(2)), "out": nir.Output(output_type={"output": np.array([2])})},
                         edges=[("in", "fc"), ("fc", "rlif"), ("rlif", "fo"), ("fo", "ro"), ("ro", "out")],
                         type_check=False)
    net = import_nir(graph, dt=dt).network
    assert net.config.layers[0].recurrence == "src" and net.config.layers[0].span == 1
    assert net.config.layers[0].lam == 0.75
    np.testing.assert_array_equal(net.layers[0].rec.weight.detach().numpy(), w_rec)
