"""cocotb testbench for any stream-through block whose output words equal its input words (a FIFO
or a register slice). Reference model: an ideal FIFO (``collections.deque``).

Job keys (see :mod:`skipcore.sim.job`): ``in_prefix``/``out_prefix`` (default ``in_``/``out_``),
``fields`` (payload names), ``widths`` (bits per field) or ``layout`` (``[[name, bits], ...]``
packed into one ``{prefix}payload`` port), ``count`` (random words to send),
``gap``/``backpressure`` (probabilities), ``seed``, ``capacity`` (optional: the block must accept a
word whenever it holds fewer than ``capacity``), ``max_cycles``, ``clk``/``rst`` names and
``result`` (JSON path for the statistics).
"""
from __future__ import annotations

import json
import random
from collections import deque

import cocotb
from cocotb.clock import Clock

from .drivers import CycleLoop, Layout, StreamDriver, StreamMonitor, port
from .job import load_job


@cocotb.test()
async def stream_through(dut):
    job = load_job()
    if job.get("layout"):  # one packed payload port (Amaranth stream.Signature: x__payload)
        fields = Layout([tuple(f) for f in job["layout"]])
        widths = [w for _, w in fields.fields]
    else:
        fields = job.get("fields", ["data"])
        widths = job.get("widths", [8] * len(fields))
    rng = random.Random(job.get("seed", 0))
    words = [tuple(rng.getrandbits(w) for w in widths) for _ in range(int(job.get("count", 100)))]
    clk, rst = port(dut, job.get("clk", "clk")), port(dut, job.get("rst", "rst"))
    Clock(clk, 10, unit="ns").start(start_high=False)
    drv = StreamDriver(dut, prefix=job.get("in_prefix", "in_"), fields=fields, gap=job.get("gap", 0.3),
                       seed=rng.getrandbits(32))
    mon = StreamMonitor(dut, prefix=job.get("out_prefix", "out_"), fields=fields,
                        backpressure=job.get("backpressure", 0.3), seed=rng.getrandbits(32))
    model: deque = deque()
    capacity = job.get("capacity")
    errors: list[str] = []

    class CapacityCheck:
        def drive(self, cycle):
            pass

        def sample(self, cycle):
            # occupancy before this cycle's edge: words accepted but not yet delivered
            if capacity is not None and drv.current is not None and len(model) < capacity and not int(drv.ready.value):
                errors.append(f"cycle {cycle}: in_ready low with {len(model)} < capacity {capacity} words held")

    drv.on_transfer.append(lambda c, w: model.append(w))

    def check(cycle, word):
        if not model:
            errors.append(f"cycle {cycle}: output {word} with nothing sent")
            return
        expect = model.popleft()
        if word != expect:
            errors.append(f"word {len(mon.received) - 1}: rtl={word} expected={expect} (cycle {cycle})")

    mon.on_transfer.append(check)
    loop = CycleLoop(clk, [CapacityCheck(), drv, mon])
    await loop.reset(rst)
    drv.send(words)
    cycles = await loop.run(lambda: len(mon.received) == len(words), job.get("max_cycles", 100 * len(words) + 100),
                            what="the stream")
    await loop.idle(5)
    if len(mon.received) != len(words):
        errors.append(f"{len(mon.received) - len(words)} extra output words")
    errors += mon.protocol_errors
    if job.get("result"):
        with open(job["result"], "w") as fh:
            json.dump({"words": len(words), "cycles": cycles, "errors": errors[:20]}, fh)
    assert not errors, "; ".join(errors[:5])
