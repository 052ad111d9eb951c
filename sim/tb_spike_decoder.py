"""cocotb testbench of ``hdl/spike_decoder.py`` (``SpikeDecoder``): spike words to spike events.

Reference model: a data word ``(group g, mask)`` becomes one event per set bit p, lowest first,
``index = g * lanes + p``; a marker word becomes one marker event (``end_step``, ``end_seq`` kept);
a word with an empty mask is dropped. Random idle cycles on the input, random backpressure on the
output. Without either, the decoder must sustain one event per cycle (checked).

Job keys: ``groups``, ``lanes``, ``index_bits``, ``count`` (words), ``gap``, ``backpressure``,
``empty_rate``, ``marker_rate``, ``seed``.
"""
from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock

from .drivers import CycleLoop, Layout, StreamDriver, StreamMonitor, port
from .job import load_job


def expand(word: tuple[int, int, int, int], lanes: int) -> list[tuple[int, int, int]]:
    """Reference: the events of one word (group, mask, end_step, end_seq)."""
    group, mask, end_step, end_seq = word
    if end_step:
        return [(0, 1, end_seq)]
    return [(group * lanes + p, 0, 0) for p in range(lanes) if (mask >> p) & 1]


@cocotb.test()
async def spike_decoder(dut):
    job = load_job()
    G, P, ib = int(job["groups"]), int(job["lanes"]), int(job["index_bits"])
    gb = max(1, (G - 1).bit_length())
    rng = random.Random(job.get("seed", 0))
    words = []
    for _ in range(int(job.get("count", 300))):
        if rng.random() < job.get("marker_rate", 0.2):
            words.append((0, 0, 1, rng.randint(0, 1)))
        else:
            mask = 0 if rng.random() < job.get("empty_rate", 0.05) else rng.randint(1, (1 << P) - 1)
            words.append((rng.randrange(G), mask, 0, 0))
    expected = [e for w in words for e in expand(w, P)]
    clk = port(dut, "clk")
    Clock(clk, 10, unit="ns").start(start_high=False)
    gap, bp = job.get("gap", 0.3), job.get("backpressure", 0.3)
    drv = StreamDriver(dut, prefix="i__", fields=Layout([("group", gb), ("mask", P), ("end_step", 1), ("end_seq", 1)]),
                       gap=gap, seed=rng.getrandbits(32))
    mon = StreamMonitor(dut, prefix="o__", fields=Layout([("index", ib), ("end_step", 1), ("end_seq", 1)]),
                        backpressure=bp, seed=rng.getrandbits(32))
    loop = CycleLoop(clk, [drv, mon])
    await loop.reset(port(dut, "rst"))
    drv.send(words)
    start = loop.cycle
    cycles = await loop.run(lambda: len(mon.received) >= len(expected) and drv.idle, 50 * len(words) + 100,
                            what="the decoder test")
    await loop.idle(5)
    got = [w for _, w in mon.received]
    errors = list(mon.protocol_errors)
    for i, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            errors.append(f"event {i}: rtl={g} model={e}")
            break
    if len(got) != len(expected):
        errors.append(f"{len(got)} events, model {len(expected)}")
    if not gap and not bp:
        empty = sum(1 for w in words if not w[2] and not w[1])
        if cycles - start > len(expected) + empty + 2:
            errors.append(f"throughput: {cycles - start} cycles for {len(expected)} events (+{empty} empty words)")
    assert not errors, "\n".join(errors[:5])
