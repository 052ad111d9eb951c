"""``skipcore export --nir``: a skipcore float network -> a NIR graph (``nir`` 1.0.8).

The exporter works from the float checkpoint, not from ``model.skc``: NIR holds real-valued
parameters, and PTQ of the re-imported graph then gives the same integers as PTQ of the
checkpoint (tested in ``tests/test_nir.py``). The inverse of ``quant.importers.nir_graph``'s rule::

    layer i:  Affine(W_in, b) -> LIF(tau = dt / (1 - lam), r = tau / dt, v_leak 0, v_threshold th,
              v_reset 0)      (lam = 1: IF(r = 1 / dt))
              recurrent: LIF -> Linear(W_rec) -> Delay(span * dt) -> the same LIF
    readout:  Affine(W_o, b_o) -> I(r = 1 / dt) (sum) | LI(tau = dt / (1 - alpha), r = 1) (leaky)

``r = tau / dt`` makes the input gain ``dt r / tau`` exactly the skipcore convention (input not
scaled by 1 - lam). The graph's metadata records ``dt`` and the readout's prediction rule (mode,
skip_steps), which NIR does not model. Refused, with the reason, instead of written lossily:
ALIF and other kinds (NIR has no adaptive threshold or gates), soft reset (NIR resets to
``v_reset``), and the alif readout.
"""
from __future__ import annotations

import numpy as np

from skipcore.errors import ConfigError

__all__ = ["NIRExportError", "network_to_nir", "check_exportable", "write_nir"]


class NIRExportError(ConfigError):
    """The network holds something NIR cannot represent."""


def check_exportable(network) -> None:
    """Refuse (one line naming the layer and the reason) what NIR cannot represent."""
    cfg = network.config
    for i, lc in enumerate(cfg.layers):
        if lc.kind != "lif":
            raise NIRExportError(f"layer {i} is a {lc.kind!r} layer; NIR has LIF/IF/CubaLIF neurons only (no adaptive "
                                 f"threshold or gates), so it cannot be exported without changing the network")
        if lc.reset != "hard":
            raise NIRExportError(f"layer {i} uses a {lc.reset} reset; NIR neurons reset to v_reset (skipcore's hard "
                                 f"reset), so a subtractive reset cannot be written without changing the network")
        if not 0.0 <= lc.lam <= 1.0:
            raise NIRExportError(f"layer {i} has decay {lc.lam}, outside [0, 1]: no NIR time constant gives it")
    if cfg.readout.kind not in ("sum", "leaky"):
        raise NIRExportError(f"the {cfg.readout.kind!r} readout has no NIR node (NIR has LI and I integrators: "
                             f"readouts sum and leaky)")


def network_to_nir(network, *, dt: float = 1e-3):
    """The ``nir.NIRGraph`` of a skipcore float network (eval mode; ASRC layers at their deployed span)."""
    import nir

    if not dt > 0:
        raise NIRExportError(f"dt must be positive, not {dt}")
    check_exportable(network)
    fp = network.float_params()
    f64 = lambda t: np.asarray(t.detach().cpu().numpy(), dtype=np.float64)  # noqa: E731
    nodes = {"input": nir.Input(input_type={"input": np.array([fp["input_channels"]])})}
    edges, prev = [], "input"
    for i, lp in enumerate(fp["layers"]):
        n = lp["w_in"].shape[0]
        nodes[f"fc{i}"] = nir.Affine(weight=f64(lp["w_in"]), bias=f64(lp["bias"]))
        th = np.full(n, float(lp["threshold"]))
        lam = float(lp["lam"])
        if lam == 1.0:
            neuron = nir.IF(r=np.full(n, 1.0 / dt), v_threshold=th, v_reset=np.zeros(n))
        else:
            tau = dt / (1.0 - lam)
            neuron = nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / dt), v_leak=np.zeros(n), v_threshold=th,
                             v_reset=np.zeros(n))
        nodes[f"lif{i}"] = neuron
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        if lp["w_rec"] is not None and lp["span"] > 0:
            nodes[f"rec{i}"] = nir.Linear(weight=f64(lp["w_rec"]))
            nodes[f"delay{i}"] = nir.Delay(delay=np.full(n, lp["span"] * dt))
            edges += [(f"lif{i}", f"rec{i}"), (f"rec{i}", f"delay{i}"), (f"delay{i}", f"lif{i}")]
        prev = f"lif{i}"
    rp = fp["readout"]
    m = rp["w"].shape[0]
    nodes["fc_out"] = nir.Affine(weight=f64(rp["w"]), bias=f64(rp["bias"]))
    if rp["kind"] == "sum":
        nodes["readout"] = nir.I(r=np.full(m, 1.0 / dt))
    else:
        alpha = f64(rp["alpha"])
        nodes["readout"] = nir.LI(tau=dt / (1.0 - alpha), r=np.ones(m), v_leak=np.zeros(m))
    nodes["output"] = nir.Output(output_type={"output": np.array([m])})
    edges += [(prev, "fc_out"), ("fc_out", "readout"), ("readout", "output")]
    meta = {"dt": float(dt), "readout_mode": rp["mode"], "skip_steps": int(rp["skip_steps"]), "source": "skipcore"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def write_nir(checkpoint, out, *, dt: float = 1e-3):
    """``skipcore export --nir``: the checkpoint's network as a NIR file at ``out`` (atomic). Returns the graph."""
    import nir

    from skipcore.outputs import atomic_path

    from .checkpoint import load_checkpoint

    network, _ = load_checkpoint(checkpoint)
    graph = network_to_nir(network, dt=dt)
    with atomic_path(out) as tmp:
        nir.write(str(tmp), graph)
    return graph
