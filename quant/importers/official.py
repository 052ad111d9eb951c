"""State dicts of the papers' official code -> skipcore float networks.

Name mapping (also in ``docs/import-export.md``):

SRNN (byin-cwi/Efficient-spiking-networks, SRNN-ICONs2020): hidden layers ``i2h[_n]``,
``h2h[_n]`` (optional: without it the layer is feed-forward), ``tau_m_h[n]``, ``tau_adp_h[n]``;
output ``h2o[_n]``, ``tau_m_o``, ``tau_adp_o`` (alif output only)::

    i2h.weight -> layers.0.fc.weight       i2h.bias + h2h.bias -> layers.0.fc.bias
    h2h.weight -> layers.0.rec.weight      (span 1)
    tau_m_h    -> layers.0.tau_m           tau_adp_h -> layers.0.tau_adp
    h2o.weight/bias -> readout.fc.weight/bias
    tau_m_o    -> readout.tau_o            tau_adp_o -> readout.tau_adp (readout "alif")

The h2h bias is constant, so it adds to the input bias exactly. b_j0, beta and the output kind are
not in the state dict: options (defaults: the papers' b_j0 = 0.01, beta = 1.8).

ASRC-SNN (dgxdn/ASRC-SNN ``MODEL``): ``features`` is Linear, Dropout, container per hidden layer,
then the readout Linear::

    features.{i}.weight/bias     -> layers.l.fc.weight/bias     (i = 3 l)
    features.{i+2}.mlp.weight    -> layers.l.rec.weight
    features.{i+2}.skip_para     -> layers.l.span_logits (K,1,1 -> K; "asrc", max_span K)
    features.{i+2}.tau           -> layers.l.tau (softmax temperature)
    features.{3L}.weight/bias    -> readout.fc.weight/bias      (readout "sum")

An SRC container has no ``skip_para``: its span is an option. The LIF decay (0.5), threshold (1.0)
and reset (soft) are options.
"""
from __future__ import annotations

import re

import torch

from ..config import LayerConfig, NetworkConfig, ReadoutConfig
from ..network import SpikingNetwork
from . import ImportedModel, ModelImportError

__all__ = ["import_srnn", "import_asrc", "SRNN_DEFAULTS", "ASRC_DEFAULTS"]

SRNN_DEFAULTS = {"b_j0": 0.01, "beta": 1.8, "output_beta": None, "output": "auto", "mode": "sequence",
                 "skip_steps": 0}
ASRC_DEFAULTS = {"lam": 0.5, "threshold": 1.0, "reset": "soft", "span": None, "mode": "sequence"}


def _need(sd: dict, key: str, shape: tuple | None, model: str) -> torch.Tensor:
    if key not in sd:
        raise ModelImportError(f"{model} state dict lacks {key!r}; it is not a {model} model, or a differently "
                               f"named one (see docs/import-export.md for the expected names)")
    t = sd[key]
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ModelImportError(f"{model} state dict: {key!r} has shape {tuple(t.shape)}, expected {tuple(shape)}")
    return t.detach().to(torch.float64)


def _unused(sd: dict, used: set, model: str) -> None:
    rest = sorted(set(sd) - used)
    if rest:
        raise ModelImportError(f"{model} state dict has entries skipcore cannot place: {', '.join(rest[:6])}"
                               f"{' ...' if len(rest) > 6 else ''} (a structure beyond the published model)")


def _options(given: dict | None, defaults: dict, model: str) -> dict:
    given = dict(given or {})
    unknown = set(given) - set(defaults)
    if unknown:
        raise ModelImportError(f"options {', '.join(sorted(unknown))} do not apply to a {model} model "
                               f"(it has {', '.join(defaults)})")
    return {**defaults, **{k: v for k, v in given.items() if v is not None}}


def _load(network: SpikingNetwork, values: dict) -> SpikingNetwork:
    network = network.double()
    with torch.no_grad():
        own = dict(network.named_parameters()) | dict(network.named_buffers())
        for name, value in values.items():
            own[name].copy_(value.reshape(own[name].shape))
    return network.eval()


def import_srnn(sd: dict, options: dict | None = None) -> ImportedModel:
    """SRNN (Yin et al.) state dict -> ImportedModel (ALIF layers, leaky or alif readout)."""
    o = _options(options, SRNN_DEFAULTS, "SRNN")
    hidden = sorted((m.group(1) for k in sd if (m := re.fullmatch(r"i2h(_?\d*)\.weight", k))),
                    key=lambda s: int(s.lstrip("_") or 0))
    if not hidden:
        raise ModelImportError("SRNN state dict lacks 'i2h.weight' (or 'i2h_1.weight'); "
                               "see docs/import-export.md for the expected names")
    outs = [k for k in sd if re.fullmatch(r"h2o(_?\d*)\.weight", k)]
    if len(outs) != 1:
        raise ModelImportError(f"SRNN state dict needs exactly one output weight 'h2o[_n].weight', found {len(outs) or 'none'}")
    out_key = outs[0][: -len(".weight")]
    used: set = set()
    layers, values, width = [], {}, None
    for i, suffix in enumerate(hidden):
        n_tag = suffix.lstrip("_")
        w_in = sd[f"i2h{suffix}.weight"]
        n, c = w_in.shape
        if width is not None and c != width:
            raise ModelImportError(f"SRNN: i2h{suffix}.weight takes {c} inputs but the layer before has {width} neurons")
        w_in = _need(sd, f"i2h{suffix}.weight", (n, c), "SRNN")
        bias = _need(sd, f"i2h{suffix}.bias", (n,), "SRNN")
        used |= {f"i2h{suffix}.weight", f"i2h{suffix}.bias"}
        recurrent = f"h2h{suffix}.weight" in sd
        if recurrent:
            values[f"layers.{i}.rec.weight"] = _need(sd, f"h2h{suffix}.weight", (n, n), "SRNN")
            bias = bias + _need(sd, f"h2h{suffix}.bias", (n,), "SRNN")
            used |= {f"h2h{suffix}.weight", f"h2h{suffix}.bias"}
        values[f"layers.{i}.fc.weight"] = w_in
        values[f"layers.{i}.fc.bias"] = bias
        for ours, theirs in (("tau_m", f"tau_m_h{n_tag}"), ("tau_adp", f"tau_adp_h{n_tag}")):
            values[f"layers.{i}.{ours}"] = _need(sd, theirs, (n,), "SRNN")
            used.add(theirs)
        layers.append(LayerConfig(n, kind="alif", recurrence="src" if recurrent else "none", span=1,
                                  b0=float(o["b_j0"]), beta=float(o["beta"]), tau_m=(20.0, 0.0),
                                  tau_adp=(200.0, 0.0)))
        width = n
    w_out = sd[f"{out_key}.weight"]
    classes = w_out.shape[0]
    values["readout.fc.weight"] = _need(sd, f"{out_key}.weight", (classes, width), "SRNN")
    values["readout.fc.bias"] = _need(sd, f"{out_key}.bias", (classes,), "SRNN")
    values["readout.tau_o"] = _need(sd, "tau_m_o", (classes,), "SRNN")
    used |= {f"{out_key}.weight", f"{out_key}.bias", "tau_m_o"}
    output = o["output"]
    if output == "auto":
        output = "alif" if "tau_adp_o" in sd else "leaky"
    if output not in ("alif", "leaky"):
        raise ModelImportError(f"SRNN output must be alif, leaky or auto, not {output!r}")
    readout_opts = {}
    if output == "alif":
        values["readout.tau_adp"] = _need(sd, "tau_adp_o", (classes,), "SRNN")
        used.add("tau_adp_o")
        beta_o = o["beta"] if o["output_beta"] is None else o["output_beta"]
        readout_opts = {"b0": float(o["b_j0"]), "beta": float(beta_o)}
    elif "tau_adp_o" in sd:
        raise ModelImportError("SRNN state dict has 'tau_adp_o' (a spiking ALIF output) but the output kind "
                               "'leaky' was asked for; use output alif (or auto)")
    _unused(sd, used, "SRNN")
    cfg = NetworkConfig(input_channels=int(hidden and sd[f"i2h{hidden[0]}.weight"].shape[1]), classes=int(classes),
                        layers=layers, readout=ReadoutConfig(kind=output, mode=o["mode"], tau_o=(20.0, 0.0),
                                                             skip_steps=int(o["skip_steps"]),
                                                             options=readout_opts), bias=True)
    return ImportedModel(_load(SpikingNetwork(cfg), values), "srnn", {"options": o, "output": output})


def import_asrc(sd: dict, options: dict | None = None) -> ImportedModel:
    """ASRC-SNN (Xu et al.) ``MODEL`` state dict -> ImportedModel (LIF layers, sum readout)."""
    o = _options(options, ASRC_DEFAULTS, "ASRC-SNN")
    index = sorted({int(m.group(1)) for k in sd if (m := re.match(r"features\.(\d+)\.", k))})
    if not index:
        raise ModelImportError("ASRC-SNN state dict has no 'features.{i}.*' entries; "
                               "see docs/import-export.md for the expected names")
    linears = [i for i in index if f"features.{i}.weight" in sd]
    containers = [i for i in index if f"features.{i}.mlp.weight" in sd]
    for i in linears:
        if sd[f"features.{i}.weight"].dim() != 2:
            raise ModelImportError(f"ASRC-SNN: features.{i} is not a Linear (weight of shape "
                                   f"{tuple(sd[f'features.{i}.weight'].shape)}); LayerNorm/BatchNorm models "
                                   f"(--use-batchnorm, layer norm) are not supported")
    if len(linears) != len(containers) + 1 or not containers:
        raise ModelImportError(f"ASRC-SNN: expected one Linear before each recurrent container and a readout "
                               f"Linear; found Linears at features {linears} and containers at {containers}")
    spans = o["span"]
    if isinstance(spans, int):
        spans = [spans] * len(containers)
    has_bias = f"features.{linears[0]}.bias" in sd
    used: set = set()
    layers, values, width = [], {}, sd[f"features.{linears[0]}.weight"].shape[1]
    for layer, (lin, box) in enumerate(zip(linears, containers)):
        if not lin < box < linears[layer + 1]:
            raise ModelImportError(f"ASRC-SNN: container features.{box} is not between features.{lin} and "
                                   f"features.{linears[layer + 1]}")
        n = sd[f"features.{lin}.weight"].shape[0]
        values[f"layers.{layer}.fc.weight"] = _need(sd, f"features.{lin}.weight", (n, width), "ASRC-SNN")
        used.add(f"features.{lin}.weight")
        if has_bias:
            values[f"layers.{layer}.fc.bias"] = _need(sd, f"features.{lin}.bias", (n,), "ASRC-SNN")
            used.add(f"features.{lin}.bias")
        values[f"layers.{layer}.rec.weight"] = _need(sd, f"features.{box}.mlp.weight", (n, n), "ASRC-SNN")
        used.add(f"features.{box}.mlp.weight")
        common = dict(kind="lif", lam=float(o["lam"]), threshold=float(o["threshold"]), reset=o["reset"])
        if f"features.{box}.skip_para" in sd:
            p = sd[f"features.{box}.skip_para"]
            k = p.numel()
            values[f"layers.{layer}.span_logits"] = _need(sd, f"features.{box}.skip_para", tuple(p.shape), "ASRC-SNN").flatten()
            used.add(f"features.{box}.skip_para")
            if f"features.{box}.tau" in sd:
                values[f"layers.{layer}.tau"] = _need(sd, f"features.{box}.tau", None, "ASRC-SNN").reshape(())
                used.add(f"features.{box}.tau")
            layers.append(LayerConfig(n, recurrence="asrc", max_span=int(k), **common))
        else:
            if spans is None or layer >= len(spans):
                raise ModelImportError(f"ASRC-SNN: features.{box} is an SRC container; its span is not in the "
                                       f"state dict: pass it (--span K, or one per layer)")
            layers.append(LayerConfig(n, recurrence="src", span=int(spans[layer]), **common))
        width = n
    out = linears[-1]
    classes = sd[f"features.{out}.weight"].shape[0]
    values["readout.fc.weight"] = _need(sd, f"features.{out}.weight", (classes, width), "ASRC-SNN")
    used.add(f"features.{out}.weight")
    if has_bias:
        values["readout.fc.bias"] = _need(sd, f"features.{out}.bias", (classes,), "ASRC-SNN")
        used.add(f"features.{out}.bias")
    _unused(sd, used, "ASRC-SNN")
    cfg = NetworkConfig(input_channels=int(sd[f"features.{linears[0]}.weight"].shape[1]), classes=int(classes),
                        layers=layers, readout=ReadoutConfig(kind="sum", mode=o["mode"]), bias=has_bias)
    return ImportedModel(_load(SpikingNetwork(cfg), values), "asrc", {"options": o})
