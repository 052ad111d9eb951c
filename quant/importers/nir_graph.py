"""NIR graphs (the ``nir`` package, 1.0.8) -> skipcore float networks.

What is accepted (everything else is refused with the node's name and the reason):

    Input -> Affine|Linear -> neuron [-> recurrent cycle] -> Affine|Linear -> neuron ... 
          -> Affine|Linear -> LI|I -> Output

- neuron: LIF, IF (skipcore ``lif``), or CubaLIF: skipcore ``cuba`` (CONTRACT.md 3.7), or ``lif``
  when its synapse passes its input straight through (``tau_syn == dt``); ``v_leak = 0`` and
  ``v_reset = 0`` (NIR's reset is "to v_reset", i.e. skipcore's hard reset).
- recurrent cycle: neuron -> Linear|Affine [-> Delay] -> the same neuron (either order of Linear and
  Delay). ``Delay(k * dt)`` is span k; a cycle without Delay is span 1 (the one-step feedback of
  discrete-time simulators: snnTorch ``RLeaky``, Norse ``LIFRecurrent``). A recurrent Affine's bias
  is constant and adds to the layer's input bias.
- readout: LI -> ``leaky``, I -> ``sum``.
- nested NIRGraph nodes (snnTorch and Norse export recurrent layers that way) are flattened first.

The tau -> decay rule (forward Euler with the step ``dt``, as snnTorch and the NIR reference
simulators discretise ``tau dv/dt = (v_leak - v) + R I``)::

    v[t] = (1 - dt/tau) v[t-1] + (dt R / tau) I[t]

so ``lam = 1 - dt/tau`` (IF: lam = 1) and the input gain ``g = dt R / tau`` (IF: ``dt R``) is
folded into the rows of the incoming weights and the bias. CubaLIF's synapse
``tau_syn dI/dt = -I + w_in x`` likewise gives ``I[t] = (1 - dt/tau_syn) I[t-1] + (dt w_in / tau_syn) x[t]``:
``alpha_syn = 1 - dt/tau_syn`` (the ``cuba`` layer option) and the rows take the gain
``g = (dt R / tau_mem) (dt w_in / tau_syn)``, which scales ``I`` into the membrane's units (the
membrane then adds ``I`` with weight 1, as ``cuba`` does). snnTorch's ``Synaptic`` export
(``tau_syn = dt / (1 - alpha)``, ``w_in = tau_syn / dt``, ``R = tau_mem / dt``) gives ``g = 1``. Thresholds: one
shared threshold stays as is; per-neuron thresholds are divided out (rows / th_i, threshold 1),
which is exact with a reset to 0. ``lam`` (and CubaLIF's ``alpha_syn``) must be the same for the
whole layer (skipcore's float LIF and CUBA layers have one of each per layer). For LI: ``alpha = 1 - dt/tau`` per class, the gain ``R`` folds into the
readout rows; I: a running sum, gain ``dt R``.

NIR fires on ``v > v_threshold``, skipcore's LIF on ``v >= threshold``: the same except when the
membrane lands exactly on the threshold.
"""
from __future__ import annotations

import numpy as np
import torch

from ..config import LayerConfig, NetworkConfig, ReadoutConfig
from ..network import SpikingNetwork
from . import ImportedModel, ModelImportError

__all__ = ["import_nir", "read_nir", "flatten"]

SUPPORTED = "Input, Output, Affine, Linear, LIF, IF, CubaLIF, LI, I, Delay"


def read_nir(path) -> "object":
    import nir

    try:
        return nir.read(str(path))
    except (OSError, KeyError, ValueError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelImportError(f"{str(path)!r} is not a readable NIR file ({first[:160]})") from None


def _name(node) -> str:
    return type(node).__name__


def flatten(graph) -> tuple[dict, list]:
    """Nodes and edges with nested graphs inlined (``sub.child``) and inner Input/Output removed."""
    import nir

    nodes, edges = {}, []
    inner_io = set()
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = flatten(node)
            for child, value in sub_nodes.items():
                nodes[f"{name}.{child}"] = value
                if isinstance(value, (nir.Input, nir.Output)):
                    inner_io.add(f"{name}.{child}")
            edges += [(f"{name}.{a}", f"{name}.{b}") for a, b in sub_edges]
        else:
            nodes[name] = node

    def endpoint(ref: str, role: str) -> str:
        if ref in nodes:
            return ref
        node = graph.nodes.get(ref)
        if isinstance(node, nir.NIRGraph):  # the subgraph itself: its single Input (dst) or Output (src)
            kind = nir.Input if role == "dst" else nir.Output
            ports = [k for k, v in node.nodes.items() if isinstance(v, kind)]
            if len(ports) != 1:
                raise ModelImportError(f"NIR subgraph {ref!r} has {len(ports)} {kind.__name__} nodes; "
                                       f"name the port in the edge")
            return f"{ref}.{ports[0]}"
        raise ModelImportError(f"NIR edge endpoint {ref!r} is not a node of the graph")

    edges += [(endpoint(a, "src"), endpoint(b, "dst")) for a, b in graph.edges]
    for name in inner_io:  # pass-through: connect predecessors to successors
        preds = [a for a, b in edges if b == name]
        succs = [b for a, b in edges if a == name]
        edges = [e for e in edges if name not in e] + [(a, b) for a in preds for b in succs]
        del nodes[name]
    return nodes, edges


def _vec(x, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)).astype(np.float64).reshape(n)


def _uniform(x: np.ndarray) -> bool:
    return bool(np.all(x == x.flat[0]))


def _matrix(node, name):
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 2:
        raise ModelImportError(f"NIR node {name!r} ({_name(node)}) has a {w.ndim}-D weight; "
                               f"skipcore layers are fully connected (2-D)")
    bias = np.asarray(node.bias, dtype=np.float64).reshape(-1) if _name(node) == "Affine" else np.zeros(w.shape[0])
    return w, bias


def _neuron(node, name: str, dt: float) -> dict:
    """lam, gain (N,), threshold (N,) of a spiking node (and alpha_syn for a CubaLIF with a synapse
    of its own), or a refusal naming it."""
    import nir

    kind = _name(node)
    n = int(np.asarray(node.v_threshold).size)
    th = _vec(node.v_threshold, n)
    reset = _vec(node.v_reset if node.v_reset is not None else 0.0, n)
    if np.any(reset != 0):
        raise ModelImportError(f"NIR node {name!r} ({kind}) resets to v_reset != 0; skipcore resets to 0 "
                               f"(hard) or by subtraction")
    if np.any(th <= 0):
        raise ModelImportError(f"NIR node {name!r} ({kind}) has a threshold <= 0")
    r = _vec(node.r, n)
    if isinstance(node, nir.IF):
        return {"lam": 1.0, "gain": dt * r, "threshold": th}
    if np.any(_vec(node.v_leak, n) != 0):
        raise ModelImportError(f"NIR node {name!r} ({kind}) has v_leak != 0; skipcore membranes leak to 0")
    tau = _vec(node.tau_mem if isinstance(node, nir.CubaLIF) else node.tau, n)
    gain = dt * r / tau
    synapse = {}
    if isinstance(node, nir.CubaLIF):
        tau_syn = _vec(node.tau_syn, n)
        gain = gain * _vec(node.w_in, n)
        if not np.allclose(tau_syn, dt, rtol=1e-9, atol=0):  # tau_syn = dt: I = w_in x, a LIF
            if np.any(tau_syn < dt):
                raise ModelImportError(f"NIR node {name!r} (CubaLIF) has tau_syn < dt = {dt}: the synaptic decay "
                                       f"1 - dt/tau_syn would be negative; pass a smaller --dt")
            alpha_syn = 1.0 - dt / tau_syn
            if not _uniform(alpha_syn):
                raise ModelImportError(f"NIR node {name!r} (CubaLIF) has per-neuron synaptic time constants; a "
                                       f"skipcore CUBA layer has one (alpha_syn = 1 - dt/tau_syn) for all its neurons")
            gain = gain * (dt / tau_syn)
            synapse = {"alpha_syn": float(alpha_syn[0])}
    if np.any(tau < dt):
        raise ModelImportError(f"NIR node {name!r} ({kind}) has tau < dt = {dt}: the decay 1 - dt/tau "
                               f"would be negative; pass a smaller --dt")
    lam = 1.0 - dt / tau
    if not _uniform(lam):
        raise ModelImportError(f"NIR node {name!r} ({kind}) has per-neuron time constants; a skipcore LIF "
                               f"layer has one decay (lam = 1 - dt/tau) for all its neurons")
    gain = np.where(np.abs(gain - 1.0) <= 1e-12, 1.0, gain)  # 1 - round-off of r = tau/dt (snnTorch)
    return {"lam": float(lam[0]), "gain": gain, "threshold": th, **synapse}


def import_nir(graph, *, dt: float | None = None, mode: str | None = None, skip_steps: int | None = None) -> ImportedModel:
    """A NIR graph (``nir.NIRGraph`` or a path) -> ImportedModel (LIF or CUBA layers, sum or leaky readout).

    ``dt``, ``mode`` and ``skip_steps`` default to the graph's metadata (written by
    ``skipcore export --nir``), then to ``sequence`` and 0; a graph without ``dt`` needs it passed.
    """
    import nir

    if not isinstance(graph, nir.NIRGraph):
        graph = read_nir(graph)
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    mode = str(meta.get("readout_mode", "sequence")) if mode is None else mode
    skip_steps = int(meta.get("skip_steps", 0)) if skip_steps is None else int(skip_steps)
    if dt is None:
        dt = meta.get("dt")
        if dt is None:
            raise ModelImportError("the NIR graph does not record its time step; pass --dt (seconds per step "
                                   "of the simulator it was trained with, e.g. 1e-3)")
    dt = float(np.asarray(dt))
    if not dt > 0:
        raise ModelImportError(f"dt must be positive, not {dt}")
    nodes, edges = flatten(graph)
    for name, node in nodes.items():
        if not isinstance(node, (nir.Input, nir.Output, nir.Affine, nir.Linear, nir.LIF, nir.IF, nir.CubaLIF,
                                 nir.LI, nir.I, nir.Delay)):
            raise ModelImportError(f"NIR node {name!r} is a {_name(node)}, which skipcore cannot express; "
                                   f"supported: {SUPPORTED}")
    succ = {k: [b for a, b in edges if a == k] for k in nodes}
    pred = {k: [a for a, b in edges if b == k] for k in nodes}
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    outputs = [k for k, v in nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelImportError(f"a skipcore network has one Input and one Output node; this graph has "
                               f"{len(inputs)} and {len(outputs)}")

    def only(names, where, what):
        if len(names) != 1:
            raise ModelImportError(f"NIR node {where!r} feeds {len(names)} nodes ({', '.join(names) or 'none'}); "
                                   f"skipcore expects one {what} here")
        return names[0]

    layers, values = [], {}
    cur = inputs[0]
    proj = only(succ[cur], cur, "Affine or Linear")
    width = None
    while True:
        pnode = nodes[proj]
        if not isinstance(pnode, (nir.Affine, nir.Linear)):
            raise ModelImportError(f"NIR node {proj!r} is a {_name(pnode)} where skipcore expects an Affine or "
                                   f"Linear projection (after {cur!r})")
        w, bias = _matrix(pnode, proj)
        if width is not None and w.shape[1] != width:
            raise ModelImportError(f"NIR node {proj!r} takes {w.shape[1]} inputs but {cur!r} has {width}")
        if len(pred[proj]) != 1:
            raise ModelImportError(f"NIR node {proj!r} has {len(pred[proj])} inputs; skipcore layers take one")
        target = only(succ[proj], proj, "neuron or readout")
        tnode = nodes[target]
        if isinstance(tnode, (nir.LI, nir.I)):
            break
        if not isinstance(tnode, (nir.LIF, nir.IF, nir.CubaLIF)):
            raise ModelImportError(f"NIR node {target!r} is a {_name(tnode)} where skipcore expects a neuron "
                                   f"(LIF, IF, CubaLIF) or a readout (LI, I)")
        p = _neuron(tnode, target, dt)
        n = w.shape[0]
        # recurrent cycle: the neuron's successors that lead back to it
        forward, span, w_rec = [], 0, None
        for s in succ[target]:
            path, node_name = [], s
            while node_name != target and len(path) < 3 and isinstance(nodes[node_name], (nir.Linear, nir.Affine, nir.Delay)):
                path.append(node_name)
                nxt = succ[node_name]
                if len(nxt) != 1:
                    break
                node_name = nxt[0]
            if node_name == target:
                if w_rec is not None:
                    raise ModelImportError(f"NIR node {target!r} has more than one recurrent cycle; skipcore "
                                           f"layers have one recurrent span")
                mats = [q for q in path if isinstance(nodes[q], (nir.Linear, nir.Affine))]
                delays = [q for q in path if isinstance(nodes[q], nir.Delay)]
                if len(mats) != 1 or len(delays) > 1:
                    raise ModelImportError(f"NIR recurrent cycle {' -> '.join([target] + path)} must hold one "
                                           f"Linear/Affine and at most one Delay")
                w_rec, rec_bias = _matrix(nodes[mats[0]], mats[0])
                if w_rec.shape != (n, n):
                    raise ModelImportError(f"NIR node {mats[0]!r}: recurrent weight {w_rec.shape}, expected {(n, n)}")
                bias = bias + rec_bias
                span = 1
                if delays:
                    d = _vec(nodes[delays[0]].delay, n)
                    k = d / dt
                    if not _uniform(d) or abs(k[0] - round(k[0])) > 1e-6 or round(k[0]) < 1:
                        raise ModelImportError(f"NIR node {delays[0]!r} (Delay) must delay every neuron by the same "
                                               f"whole number k >= 1 of steps dt = {dt}; it has {np.unique(d)[:4]}")
                    span = int(round(k[0]))
                for q in path:
                    if len(pred[q]) != 1:
                        raise ModelImportError(f"NIR node {q!r} in the recurrent cycle has other inputs")
            else:
                forward.append(s)
        others = [q for q in pred[target] if q != proj and not (w_rec is not None and q in path_sources(nodes, succ, target))]
        if others:
            raise ModelImportError(f"NIR node {target!r} has inputs from {', '.join(others)} besides {proj!r}; "
                                   f"skipcore layers take one projection (and one recurrent cycle)")
        gain, th = p["gain"], p["threshold"]
        shared = _uniform(th)
        row = gain if shared else gain / th
        i = len(layers)
        values[f"layers.{i}.fc.weight"] = w * row[:, None]
        values[f"layers.{i}.fc.bias"] = bias * row
        if w_rec is not None:
            values[f"layers.{i}.rec.weight"] = w_rec * row[:, None]
        synapse = {"kind": "cuba", "options": {"alpha_syn": p["alpha_syn"]}} if "alpha_syn" in p else {"kind": "lif"}
        layers.append(LayerConfig(n, recurrence="src" if span else "none", span=max(span, 1), lam=p["lam"],
                                  threshold=float(th[0]) if shared else 1.0, reset="hard", **synapse))
        if width is None:
            channels = w.shape[1]
        width, cur = n, target
        proj = only(forward, target, "Affine or Linear")
    # readout
    m = w.shape[0]
    out = only(succ[target], target, "Output")
    if not isinstance(nodes[out], nir.Output):
        raise ModelImportError(f"NIR node {out!r} is a {_name(nodes[out])} after the readout {target!r}; "
                               f"skipcore's readout feeds the Output directly")
    if not layers:
        raise ModelImportError("the NIR graph has no spiking layer between its Input and its readout")
    if width is not None and w.shape[1] != width:
        raise ModelImportError(f"NIR node {proj!r} takes {w.shape[1]} inputs but {cur!r} has {width}")
    r = _vec(tnode.r, m)
    if isinstance(tnode, nir.LI):
        if np.any(_vec(tnode.v_leak, m) != 0):
            raise ModelImportError(f"NIR node {target!r} (LI) has v_leak != 0; skipcore's readout leaks to 0")
        tau = _vec(tnode.tau, m)
        if np.any(tau <= dt):
            raise ModelImportError(f"NIR node {target!r} (LI) has tau <= dt = {dt}: no leaky readout")
        alpha = 1.0 - dt / tau
        readout = ReadoutConfig(kind="leaky", mode=mode, skip_steps=skip_steps, tau_o=(1.0, 0.0))
        values["readout.tau_o"] = -1.0 / np.log(alpha)
        gain = r
    else:
        readout = ReadoutConfig(kind="sum", mode=mode, skip_steps=skip_steps)
        gain = dt * r
    gain = np.where(np.abs(gain - 1.0) <= 1e-12, 1.0, gain)
    values["readout.fc.weight"] = w * gain[:, None]
    values["readout.fc.bias"] = bias * gain
    cfg = NetworkConfig(input_channels=int(channels), classes=int(m), layers=layers, readout=readout, bias=True)
    network = SpikingNetwork(cfg).double()
    with torch.no_grad():
        own = dict(network.named_parameters())
        for name, value in values.items():
            own[name].copy_(torch.as_tensor(np.ascontiguousarray(value), dtype=torch.float64).reshape(own[name].shape))
    return ImportedModel(network.eval(), "nir", {"dt": dt, "mode": mode, "skip_steps": skip_steps})


def path_sources(nodes, succ, target) -> set:
    """Nodes on a cycle back into ``target`` (its recurrent path)."""
    found = set()
    for s in succ[target]:
        path, name = [], s
        while name != target and len(path) < 3:
            path.append(name)
            if len(succ[name]) != 1:
                break
            name = succ[name][0]
        if name == target:
            found |= set(path)
    return found
