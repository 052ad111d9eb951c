"""LIF (ASRC-SNN) on the training side: float step, float-to-integer rule, QAT step."""
from __future__ import annotations


from ..fastloop import LoopSpec, layer_loop
from ..neurons import LIFParams, LIFState, lif_step
from . import QuantKind, register


class LIF(QuantKind):
    name = "lif"
    surrogate = "triangle"
    FloatState = LIFState

    float_step = staticmethod(lif_step)

    def float_params(self, layer):
        c = layer.cfg
        return LIFParams(lam=c.lam, threshold=c.threshold, soft_reset=c.reset == "soft", spike_fn=layer.surrogate)

    def fused_run(self, layer, current, mixture):
        c = layer.cfg
        spec = LoopSpec(kind="lif", span=layer.span if mixture is None else 0, surrogate=layer.surrogate,
                        lam=float(c.lam), threshold=float(c.threshold), soft_reset=c.reset == "soft")
        return layer_loop(current, spec, layer.rec.weight if layer.rec is not None else None, mixture)

    def export_params(self, layer):
        c = layer.cfg
        return {"lam": float(c.lam), "threshold": float(c.threshold), "reset": c.reset}

    def quantize(self, lp, ctx):
        from ..export import _f64, _q, quantize_decay

        smax = 2 ** (ctx.widths.state_bits - 1) - 1
        n, dev = ctx.neurons, ctx.device
        reset = lp.get("reset", "soft")
        if reset not in ("soft", "hard"):
            from skipcore.errors import ConfigError
            raise ConfigError(f"layer {ctx.index}: LIF reset must be soft or hard, not {reset!r}")
        arrays = {
            "threshold": _q(_f64(lp["threshold"], n=n, device=dev), ctx.scale, 1, smax),
            "decay": quantize_decay(_f64(lp["lam"], n=n, device=dev), ctx.widths.decay_bits, ctx.decay_mode),
        }
        return arrays, {}, reset

    def qat_state(self, zeros):
        from ..qat import LIFState as IntState
        return IntState(zeros)

    def qat_step(self, acc, state, p, counter=None):
        from ..qat import lif_step as int_step
        return int_step(acc, state, p, counter)


register(LIF())
