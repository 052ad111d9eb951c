"""cocotb testbench of a neuron update unit (any kind: ``hdl/kinds/<kind>.py``).

A unit is a fixed-latency pipeline without handshakes. The job holds the test vectors that the
kind's hardware definition computed from the golden contract (``UnitKind.vectors``: random
inputs over the whole legal range, extremes included, and the contract's outputs). The testbench
drives a new neuron every cycle and checks the outputs ``latency`` cycles later. It knows nothing
about any kind.

Job keys: ``latency``, ``inputs`` and ``outputs`` (port name -> list of ints, one per neuron),
``signed`` (output port name -> width, for two's complement outputs).
"""
from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from .coreio import to_signed
from .drivers import port
from .job import load_job


@cocotb.test()
async def neuron_unit(dut):
    job = load_job()
    lat = int(job["latency"])
    inputs, outputs = job["inputs"], job["outputs"]
    signed_out = {k: int(v) for k, v in job.get("signed", {}).items()}
    count = len(next(iter(inputs.values())))
    clk = port(dut, "clk")
    Clock(clk, 10, unit="ns").start(start_high=False)
    port(dut, "rst").value = 0
    hin = {k: port(dut, k) for k in inputs}
    masks = {k: (1 << (len(h) if hasattr(h, "__len__") else 1)) - 1 for k, h in hin.items()}
    hout = {k: port(dut, k) for k in outputs}
    errors: list[str] = []
    for cycle in range(count + lat):
        await FallingEdge(clk)
        if cycle < count:
            for k, values in inputs.items():
                hin[k].value = int(values[cycle]) & masks[k]
        await ReadOnly()
        # the neuron driven `lat` cycles ago is at the outputs now (registered at each edge)
        i = cycle - lat
        if i >= 0:
            got = {k: int(h.value) for k, h in hout.items()}
            got = {k: to_signed(v, signed_out[k]) if k in signed_out else v for k, v in got.items()}
            want = {k: int(v[i]) for k, v in outputs.items()}
            if got != want and len(errors) < 10:
                sent = {k: int(v[i]) for k, v in inputs.items()}
                errors.append(f"neuron {i} {sent}: rtl={got} golden={want}")
    assert not errors, f"{len(errors)}+ mismatches; first: " + "\n".join(errors)
