"""cocotb testbench of ``hdl/readout_engine.py`` (``ReadoutEngine``): spikes of the last hidden
layer -> one readout word per step.

Reference model: contract section 4 on the artifact's readout, through its readout kind
(``golden.readouts``): ``acc_c = bias_c + sum_j w[c, j] S_j``, the kind's step, ``m`` its value;
prediction = argmax with ties to the lowest class, all state 0 at the start of every sequence.
Random spike vectors, their events in random order with random idle cycles, several
sequences back to back, random backpressure on the output.

Job keys: ``artifact`` (a .skc whose readout is under test), ``index_bits``, ``class_bits``,
``sequences`` (list of lengths), ``density``, ``gap``, ``backpressure``, ``seed``.
"""
from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.clock import Clock

from skipcore.golden.artifact import load
from skipcore.golden import readouts

from .coreio import split_readout
from .drivers import CycleLoop, Layout, StreamDriver, StreamMonitor, port
from .job import load_job


@cocotb.test()
async def readout_engine(dut):
    job = load_job()
    art = load(job["artifact"])
    r = art.readout
    M, N, R = r.classes, r.w.shape[1], art.widths.readout_bits
    rng = random.Random(job.get("seed", 0))
    nprng = np.random.default_rng(job.get("seed", 0))
    words, expected = [], []
    kind = readouts.get(r.kind)
    params = kind.params(art, r)
    for length in job["sequences"]:
        state = kind.initial_state(M, 1)
        for t in range(length):
            s = (nprng.random(N) < job.get("density", 0.4)).astype(np.int64)
            acc = (r.w_shifted @ s + r.bias)[None, :]
            state = kind.step(acc, state, params)
            m = kind.value(state)
            expected.append((tuple(int(v) for v in m[0]), int(np.argmax(m[0])), int(t == length - 1)))
            idx = list(np.flatnonzero(s))
            rng.shuffle(idx)
            words += [(int(j), 0, 0) for j in idx] + [(0, 1, int(t == length - 1))]
    clk = port(dut, "clk")
    Clock(clk, 10, unit="ns").start(start_high=False)
    drv = StreamDriver(dut, prefix="i_ev__", fields=Layout([("index", job["index_bits"]), ("end_step", 1),
                                                            ("end_seq", 1)]),
                       gap=job.get("gap", 0.3), seed=rng.getrandbits(32))
    mon = StreamMonitor(dut, prefix="o__", fields=Layout([("readout", M * R), ("prediction", job["class_bits"]),
                                                          ("end_seq", 1)]),
                        backpressure=job.get("backpressure", 0.3), seed=rng.getrandbits(32))
    loop = CycleLoop(clk, [drv, mon])
    await loop.reset(port(dut, "rst"))
    drv.send(words)
    await loop.run(lambda: len(mon.received) >= len(expected), 60 * (len(words) + M * len(expected)) + 200,
                   what="the readout test")
    await loop.idle(10)
    errors = list(mon.protocol_errors)
    got = [(tuple(split_readout(ro, M, R)), pr, es) for _, (ro, pr, es) in mon.received]
    for i, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            errors.append(f"step word {i}: rtl (m, argmax, end_seq)={g} model={e}")
            break
    if len(got) != len(expected):
        errors.append(f"{len(got)} output words, model {len(expected)}")
    assert not errors, "\n".join(errors[:5])
