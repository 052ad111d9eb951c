"""cocotb testbench of the neuron update units (``hdl/neuron_units.py``: ``LIFUnit``, ``ALIFUnit``).

A unit is a fixed-latency pipeline without handshakes: the testbench drives a new random neuron
(state, accumulator, constants) every cycle and checks the outputs ``latency`` cycles later
against the reference model built from the contract's primitives (``golden.contract``): LIF is
``lif_step`` (section 3.3); ALIF follows section 3.4 with the trace kept one step ahead, as the
unit documents (input ``b`` = b_t, output ``b_next`` = b_{t+1} = ((rho * b_t) >> D) + S[t] (2**D - rho)).
Inputs cover the whole legal range, including the extremes that saturate.

Job keys: ``kind`` (``lif``/``alif``), ``acc_bits``, ``state_bits``, ``decay_bits``, ``decay_mode``,
``reset`` (LIF), ``latency``, ``count`` (neurons), ``seed``.
"""
from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from skipcore.golden.contract import LIFParams, LIFState, decay, lif_step, saturate

from .coreio import to_signed
from .drivers import port
from .job import load_job


def _edge_biased(rng: random.Random, lo: int, hi: int) -> int:
    """Uniform in [lo, hi], with the ends and their neighbours drawn more often."""
    r = rng.random()
    if r < 0.1:
        return lo
    if r < 0.2:
        return hi
    if r < 0.25:
        return min(hi, lo + 1)
    if r < 0.3:
        return max(lo, hi - 1)
    return rng.randint(lo, hi)


def draw(job: dict, rng: random.Random) -> dict[str, int]:
    A, S, D = job["acc_bits"], job["state_bits"], job["decay_bits"]
    smin, smax = -(1 << (S - 1)), (1 << (S - 1)) - 1
    amin, amax = -(1 << (A - 1)), (1 << (A - 1)) - 1
    dec = _edge_biased(rng, 0, (1 << D) - 1) if job["decay_mode"] == "mult" else rng.randint(1, 30)
    n = {"acc": _edge_biased(rng, amin, amax), "decay": dec, "threshold": _edge_biased(rng, 1, smax)}
    if job["kind"] == "lif":
        n["v"] = _edge_biased(rng, smin, smax)
    else:
        n.update(u=_edge_biased(rng, smin, smax), b=_edge_biased(rng, 0, 1 << D), q=rng.randint(0, 1),
                 rho=_edge_biased(rng, 0, (1 << D) - 1), beta=_edge_biased(rng, 0, smax))
    return n


def reference(job: dict, n: dict[str, int]) -> dict[str, int]:
    """The contract's update of one neuron (golden.contract)."""
    a = lambda v: np.array([v], dtype=np.int64)  # noqa: E731
    S, D, mode = job["state_bits"], job["decay_bits"], job["decay_mode"]
    if job["kind"] == "lif":
        s, st = lif_step(a(n["acc"]), LIFState(a(n["v"])), LIFParams(a(n["decay"]), a(n["threshold"]), S, D, mode,
                                                                      job["reset"]))
        return {"spike": int(s[0]), "v_next": int(st.v[0])}
    b, q, rho = n["b"], n["q"], n["rho"]
    big_b = saturate(a(n["threshold"] + ((n["beta"] * b) >> D)), S)
    u = saturate(decay(a(n["u"]), a(n["decay"]), D, mode) + n["acc"] - q * big_b, S)
    spike = int(u[0] > big_b[0])
    return {"spike": spike, "u_next": int(u[0]), "b_next": ((rho * b) >> D) + spike * ((1 << D) - rho)}


@cocotb.test()
async def neuron_unit(dut):
    job = load_job()
    rng = random.Random(job.get("seed", 0))
    lat = int(job["latency"])
    clk = port(dut, "clk")
    Clock(clk, 10, unit="ns").start(start_high=False)
    port(dut, "rst").value = 0
    ins = ["acc", "decay", "threshold"] + (["v"] if job["kind"] == "lif" else ["u", "b", "q", "rho", "beta"])
    outs = ["spike", "v_next"] if job["kind"] == "lif" else ["spike", "u_next", "b_next"]
    signed_out = {"v_next": job["state_bits"], "u_next": job["state_bits"]}
    hin = {k: port(dut, k) for k in ins}
    masks = {k: (1 << (len(h) if hasattr(h, "__len__") else 1)) - 1 for k, h in hin.items()}
    hout = {k: port(dut, k) for k in outs}
    sent: list[dict[str, int]] = []
    errors: list[str] = []
    count = int(job.get("count", 2000))
    for cycle in range(count + lat):
        await FallingEdge(clk)
        if cycle < count:
            n = draw(job, rng)
            sent.append(n)
            for k, v in n.items():
                hin[k].value = v & masks[k]
        await ReadOnly()
        # the neuron driven `lat` cycles ago is at the outputs now (registered at each edge)
        i = cycle - lat
        if i >= 0:
            got = {k: int(h.value) for k, h in hout.items()}
            got = {k: to_signed(v, signed_out[k]) if k in signed_out else v for k, v in got.items()}
            want = reference(job, sent[i])
            if got != want and len(errors) < 10:
                errors.append(f"neuron {i} {sent[i]}: rtl={got} golden={want}")
    assert not errors, f"{len(errors)}+ mismatches; first: " + "\n".join(errors)
