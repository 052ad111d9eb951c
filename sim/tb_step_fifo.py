"""cocotb testbench of ``hdl/step_fifo.py`` (``StepFIFO``): a word queue that counts whole steps.

Reference model: an ideal queue of ``depth`` words (``collections.deque``). Every cycle the
testbench checks, against the model state after the previous clock edge, ``w.ready`` (not full),
``r.valid`` (the oldest word was written two or more cycles ago), ``r.payload`` (that word),
``steps`` (markers written two or more cycles ago and not read) and ``space`` (free words); the
words read must be the words written, in order. Random idle cycles on ``w`` and
random backpressure on ``r``.

Job keys: ``layout`` (``[[field, bits], ...]``, must contain ``end_step``), ``depth``, ``count``,
``gap``, ``backpressure``, ``marker_rate``, ``seed``.
"""
from __future__ import annotations

import random
from collections import deque

import cocotb
from cocotb.clock import Clock

from .drivers import CycleLoop, Layout, StreamDriver, StreamMonitor, port
from .job import load_job


@cocotb.test()
async def step_fifo(dut):
    job = load_job()
    layout = Layout([tuple(f) for f in job["layout"]])
    depth = int(job["depth"])
    rng = random.Random(job.get("seed", 0))
    marker = layout.names.index("end_step")
    words = []
    for _ in range(int(job.get("count", 400))):
        w = [rng.getrandbits(b) for _, b in layout.fields]
        w[marker] = int(rng.random() < job.get("marker_rate", 0.3))
        words.append(tuple(w))
    clk = port(dut, "clk")
    Clock(clk, 10, unit="ns").start(start_high=False)
    drv = StreamDriver(dut, prefix="w__", fields=layout, gap=job.get("gap", 0.3), seed=rng.getrandbits(32))
    mon = StreamMonitor(dut, prefix="r__", fields=layout, backpressure=job.get("backpressure", 0.3),
                        seed=rng.getrandbits(32))
    steps_h, space_h = port(dut, "steps"), port(dut, "space")
    model: deque = deque()
    errors: list[str] = []

    class Check:
        def drive(self, cycle):
            pass

        def sample(self, cycle):
            # a word written in cycle n is readable (and a marker counted) from cycle n + 2
            ready = [w for w, n in model if n <= cycle - 2]
            got = (int(drv.ready.value), int(mon.valid.value), int(steps_h.value), int(space_h.value))
            want = (int(len(model) < depth), int(bool(model) and model[0][1] <= cycle - 2),
                    sum(w[marker] for w in ready), depth - len(model))
            if got != want:
                errors.append(f"cycle {cycle}: (w.ready, r.valid, steps, space) rtl={got} model={want}")
            if want[1] and mon.layout.unpack(int(mon.fields[0].value)) != model[0][0]:
                errors.append(f"cycle {cycle}: r.payload {mon.layout.unpack(int(mon.fields[0].value))} "
                              f"!= oldest word {model[0][0]}")

    drv.on_transfer.append(lambda c, w: model.append((w, c)))

    def take(cycle, word):
        expect = model.popleft()[0] if model else None
        if word != expect:
            errors.append(f"cycle {cycle}: read {word}, model {expect}")

    mon.on_transfer.append(take)
    loop = CycleLoop(clk, [Check(), drv, mon])
    await loop.reset(port(dut, "rst"))
    drv.send(words)
    await loop.run(lambda: len(mon.received) == len(words) or len(errors) > 10, 50 * len(words) + 100,
                   what="the FIFO test")
    await loop.idle(3)
    errors += mon.protocol_errors
    assert not errors, f"{len(errors)} errors; first: " + "\n".join(errors[:5])
