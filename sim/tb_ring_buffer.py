"""cocotb testbench of ``hdl/ring_buffer.py`` (``RingBuffer``): a layer's spike history, replayed
``span`` steps later.

The testbench plays the layer engine's side of the protocol (``ring_write_signature``): for each
step it waits for a complete replay (``o_steps != 0``), takes the replay words from ``o`` under
random backpressure until the marker, then writes the step's spike words (every group once, in
group order, random masks, optional idle cycles between them) and pulses ``step_done`` (with
``clear`` on the last step of a sequence). Sequences of random lengths follow each other.

Reference model: the replay of step s is the non-zero spike words of step ``s - span`` of the same
sequence, in group order, then a marker; nothing but the marker for ``s < span``.

Job keys: ``span``, ``depth``, ``groups``, ``lanes``, ``sequences`` (list of lengths),
``backpressure``, ``write_gap``, ``zero_rate``, ``seed``.
"""
from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock

from .drivers import CycleLoop, Layout, port
from .job import load_job


class Engine:
    """The layer engine's half of the ring protocol, as a CycleLoop part."""

    def __init__(self, dut, job: dict, rng: random.Random) -> None:
        self.G, self.P, self.span = int(job["groups"]), int(job["lanes"]), int(job["span"])
        gb = max(1, (self.G - 1).bit_length())
        self.layout = Layout([("group", gb), ("mask", self.P), ("end_step", 1), ("end_seq", 1)])
        self.rng = rng
        self.bp = float(job.get("backpressure", 0.3))
        self.write_gap = float(job.get("write_gap", 0.0))
        self.zero_rate = float(job.get("zero_rate", 0.3))
        self.w = {k: port(dut, f"w__{k}") for k in ("valid", "group", "mask", "step_done", "clear")}
        self.o_valid, self.o_ready, self.o_payload = port(dut, "o__valid"), port(dut, "o__ready"), port(dut, "o__payload")
        self.o_steps = port(dut, "o_steps")
        for h in self.w.values():
            h.value = 0
        self.o_ready.value = 0
        self.steps = [(n, s) for n in job["sequences"] for s in range(n)]  # (length, step)
        self.k = 0  # index into self.steps
        self.history: list[list[int]] = []  # masks of each step of the current sequence
        self.state = "WAIT"
        self.replay: list[tuple[int, ...]] = []
        self.masks: list[int] = []
        self.g = 0
        self.errors: list[str] = []
        self.ready_now = 0

    @property
    def done(self) -> bool:
        return self.k >= len(self.steps)

    def expected(self, s: int) -> list[tuple[int, ...]]:
        words = []
        if s >= self.span:
            words = [(g, m, 0, 0) for g, m in enumerate(self.history[s - self.span]) if m]
        return words + [(0, 0, 1, 0)]

    def drive(self, cycle: int) -> None:
        w = self.w
        ready = 1 if self.state == "CONSUME" and self.rng.random() >= self.bp else 0
        if ready != self.ready_now:
            self.o_ready.value = ready
            self.ready_now = ready
        w["valid"].value = 0
        w["step_done"].value = 0
        w["clear"].value = 0
        if self.state == "WRITE" and not (self.write_gap and self.rng.random() < self.write_gap):
            w["valid"].value = 1
            w["group"].value = self.g
            w["mask"].value = self.masks[self.g]
            self.writing = True
        else:
            self.writing = False
        if self.state == "STEP_DONE":
            length, s = self.steps[self.k]
            w["step_done"].value = 1
            w["clear"].value = int(s == length - 1)

    def sample(self, cycle: int) -> None:
        if self.done:
            return
        length, s = self.steps[self.k]
        if self.state == "WAIT":
            if int(self.o_steps.value):
                self.state, self.replay = "CONSUME", []
        elif self.state == "CONSUME":
            if self.ready_now and int(self.o_valid.value):
                word = self.layout.unpack(int(self.o_payload.value))
                self.replay.append(word)
                if word[2]:  # the marker: compare, then write this step's spikes
                    got = [w[:3] for w in self.replay]
                    want = [w[:3] for w in self.expected(s)]
                    if got != want:
                        self.errors.append(f"sequence step {s} (of {length}), replay rtl={got} model={want}")
                    self.masks = [0 if self.rng.random() < self.zero_rate else self.rng.randint(1, (1 << self.P) - 1)
                                  for _ in range(self.G)]
                    self.state, self.g = "WRITE", 0
        elif self.state == "WRITE":
            if self.writing:
                self.g += 1
                if self.g == self.G:
                    self.state = "STEP_DONE"
        elif self.state == "STEP_DONE":
            self.history.append(self.masks)
            if s == length - 1:
                self.history = []
            self.k += 1
            self.state = "WAIT"


@cocotb.test()
async def ring_buffer(dut):
    job = load_job()
    rng = random.Random(job.get("seed", 0))
    clk = port(dut, "clk")
    Clock(clk, 10, unit="ns").start(start_high=False)
    eng = Engine(dut, job, rng)
    loop = CycleLoop(clk, [eng])
    await loop.reset(port(dut, "rst"))
    total = sum(job["sequences"])
    await loop.run(lambda: eng.done or len(eng.errors) > 5, 200 * total * (eng.G + 4) + 200, what="the ring test")
    assert not eng.errors, "\n".join(eng.errors[:5])
