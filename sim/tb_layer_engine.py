"""cocotb testbench of ``hdl/layer_engine.py`` (``LayerEngine``): one hidden layer, alone.

The testbench stands in for the engine's neighbours in the core:

* input queue: whole steps of input events (the quantised inputs, or spikes for a layer fed by
  spikes) arrive at random times; ``i_step_ready`` says a whole step is queued, ``i_ev`` presents
  its words (optionally with injected idle cycles inside a step, ``stall``);
* ring: the engine's own ring writes are recorded and replayed as recurrent events (neuron
  addresses in increasing order, then a marker) ``span`` steps later; ``i_rec_ready`` says the
  replay of the next step is queued;
* output queue of ``out_fifo_depth`` words drained at random (backpressure): ``o_space_ok`` says
  it has ``out_room`` words free (the plan's: a whole step and the marker still in the engine's
  output register), and the engine's words must never overflow it.

Reference model: the contract (``golden.model.run`` of the one-layer artifact). Checked per step:
``dbg_spikes`` equals golden's S[t]; the output words are the non-zero spike words in group order
then a marker carrying ``end_seq``; the ring gets every group once, in order, then ``step_done``
(with ``clear`` at the end of a sequence); and without stalls ``dbg_cycles`` equals the bound
``G (input_events + recurrent_events + own_events) + G + c`` exactly.

Job keys: ``artifact`` (.skc with one hidden layer), ``data`` (.npz with ``x`` (B, T, C)),
``groups``, ``lanes``, ``neurons``, ``span``, ``constant_cycles``, ``input_index_bits``,
``value_bits`` (0 for spikes), ``rec_index_bits``, ``group_bits``, ``out_room``, ``out_fifo_depth``,
``arrival``, ``drain``, ``stall``, ``seed``.
"""
from __future__ import annotations

import random
from collections import deque

import cocotb
import numpy as np
from cocotb.clock import Clock

from skipcore.golden.artifact import load
from skipcore.golden.model import run as golden_run

from .drivers import CycleLoop, Layout, port
from .job import load_job


class LayerHarness:
    """Input queue, replay queue and output queue around the engine (a CycleLoop part)."""

    def __init__(self, dut, job: dict, x: np.ndarray, golden_spikes: np.ndarray, rng: random.Random) -> None:
        self.G, self.P, self.N = int(job["groups"]), int(job["lanes"]), int(job["neurons"])
        self.span, self.c = int(job["span"]), int(job["constant_cycles"])
        self.rng = rng
        self.arrival, self.drain, self.stall = job.get("arrival", 0.3), job.get("drain", 0.5), job.get("stall", 0.0)
        vb = int(job["value_bits"])
        fields = [("index", int(job["input_index_bits"]))] + ([("value", vb)] if vb else []) + [("end_step", 1),
                                                                                               ("end_seq", 1)]
        self.in_layout = Layout(fields)
        self.rec_layout = Layout([("index", int(job["rec_index_bits"])), ("end_step", 1), ("end_seq", 1)])
        self.word_layout = Layout([("group", int(job["group_bits"])), ("mask", self.P), ("end_step", 1),
                                   ("end_seq", 1)])
        self.h = {n: port(dut, n) for n in ("i_ev__valid", "i_ev__ready", "i_ev__payload", "i_step_ready",
                                             "o_words__valid", "o_words__ready", "o_words__payload", "o_space_ok",
                                             "dbg_valid", "dbg_spikes", "dbg_cycles")}
        if self.span:
            self.h.update({n: port(dut, n) for n in ("i_rec__valid", "i_rec__ready", "i_rec__payload",
                                                      "i_rec_ready", "ring__valid", "ring__group", "ring__mask",
                                                      "ring__step_done", "ring__clear")})
        B, T, _ = x.shape
        self.B, self.T = B, T
        self.golden = golden_spikes
        # input steps (words) in order, and input events per step
        self.steps_in: list[list[tuple[int, ...]]] = []
        self.events = np.zeros((B, T), dtype=np.int64)
        mask = (1 << vb) - 1 if vb else 0
        for b in range(B):
            for t in range(T):
                chans = [int(c) for c in np.flatnonzero(x[b, t])]
                rng.shuffle(chans)
                ws = [((c, int(x[b, t, c]) & mask, 0, 0) if vb else (c, 0, 0)) for c in chans]
                ws.append(((0, 0, 1, int(t == T - 1)) if vb else (0, 1, int(t == T - 1))))
                self.steps_in.append(ws)
                self.events[b, t] = len(chans)
        self.in_q: deque = deque()
        self.in_markers = 0
        self.next_step_in = 0
        self.rec_q: deque = deque()
        self.rec_markers = 0
        self.out_q = 0  # words held in the output queue
        self.cap, self.room = int(job["out_fifo_depth"]), int(job["out_room"])
        self.history: list[list[int]] = []  # spikes (neuron lists) of the current sequence, from ring writes
        self.step = 0  # global step index being computed
        self.ring_writes: list[tuple[int, int]] = []
        self.words: list[tuple[int, ...]] = []
        self.word_steps = 0  # steps whose output words (marker included) have arrived
        self.ring_steps = 0  # steps whose ring writes (step_done included) have arrived
        self.errors: list[str] = []
        self.cycles: list[int] = []
        self.spikes_seen: list[int] = []
        self._stall_now = False
        for n in ("i_ev__valid", "i_step_ready", "o_space_ok"):
            self.h[n].value = 0
        self.h["o_words__ready"].value = 1
        if self.span:
            self.h["i_rec__valid"].value = 0
            self.h["i_rec_ready"].value = 0
            self._queue_replay()  # replay of step 0 (empty)

    def _queue_replay(self) -> None:
        """Queue the replay of the step about to be computed (self.step)."""
        t = self.step % self.T
        idx = []
        if t >= self.span:
            idx = self.history[t - self.span]
        self.rec_q.extend((i, 0, 0) for i in idx)
        self.rec_q.append((0, 1, 0))
        self.rec_markers += 1

    def drive(self, cycle: int) -> None:
        h = self.h
        if self.next_step_in < len(self.steps_in) and self.rng.random() < self.arrival:
            self.in_q.extend(self.steps_in[self.next_step_in])
            self.next_step_in += 1
            self.in_markers += 1
        if self.out_q and self.rng.random() < self.drain:
            self.out_q -= 1
        self._stall_now = bool(self.stall) and self.rng.random() < self.stall
        valid = bool(self.in_q) and not self._stall_now
        h["i_ev__valid"].value = int(valid)
        if self.in_q:
            h["i_ev__payload"].value = self.in_layout.pack(self.in_q[0])
        h["i_step_ready"].value = int(self.in_markers > 0)
        h["o_space_ok"].value = int(self.cap - self.out_q >= self.room)
        if self.span:
            h["i_rec__valid"].value = int(bool(self.rec_q))
            if self.rec_q:
                h["i_rec__payload"].value = self.rec_layout.pack(self.rec_q[0])
            h["i_rec_ready"].value = int(self.rec_markers > 0)

    def sample(self, cycle: int) -> None:
        h = self.h
        if self.in_q and not self._stall_now and int(h["i_ev__ready"].value):
            w = self.in_q.popleft()
            if w[-2]:
                self.in_markers -= 1
        if self.span and self.rec_q and int(h["i_rec__ready"].value):
            w = self.rec_q.popleft()
            if w[1]:
                self.rec_markers -= 1
        if int(h["o_words__valid"].value):
            word = self.word_layout.unpack(int(h["o_words__payload"].value))
            self.words.append(word)
            self.out_q += 1
            if self.out_q > self.cap:
                self.errors.append(f"cycle {cycle}: output word without reserved room (queue {self.out_q} > {self.cap})")
            if word[2]:             # the marker (a cycle after DONE: the output register)
                self._check_words()
        if self.span and int(h["ring__valid"].value):
            self.ring_writes.append((int(h["ring__group"].value), int(h["ring__mask"].value)))
        if self.span and int(h["ring__step_done"].value):   # a cycle after DONE (output registers)
            self._check_ring(int(h["ring__clear"].value))
        if int(h["dbg_valid"].value):
            self._finish_step(cycle, int(h["dbg_spikes"].value), int(h["dbg_cycles"].value))

    @property
    def done(self) -> bool:
        steps = self.B * self.T
        return self.step >= steps and self.word_steps >= steps and (not self.span or self.ring_steps >= steps)

    def _masks(self, spikes: np.ndarray) -> list[int]:
        P = self.P
        return [sum(int(spikes[g * P + p]) << p for p in range(P) if g * P + p < self.N) for g in range(self.G)]

    def _check_words(self) -> None:
        """The words of one step, at its marker: golden's non-zero groups in order, then the marker."""
        b, t = divmod(self.word_steps, self.T)
        masks = self._masks(self.golden[b, t]) if b < self.B else []
        want = [(g, m, 0, 0) for g, m in enumerate(masks) if m] + [(0, 0, 1, int(t == self.T - 1))]
        if [w[:3] + (w[3] if w[2] else 0,) for w in self.words] != want:
            self.errors.append(f"sample {b}, step {t}: output words rtl={self.words} expected={want}")
        self.words = []
        self.word_steps += 1

    def _check_ring(self, clear: int) -> None:
        """The ring's writes of one step, at its step_done: every group once, in order, with
        golden's masks; ``clear`` at the end of a sequence."""
        b, t = divmod(self.ring_steps, self.T)
        masks = self._masks(self.golden[b, t]) if b < self.B else []
        if self.ring_writes != list(enumerate(masks)):
            self.errors.append(f"sample {b}, step {t}: ring writes rtl={self.ring_writes} expected={list(enumerate(masks))}")
        if clear != int(t == self.T - 1):
            self.errors.append(f"sample {b}, step {t}: ring clear rtl={clear} expected={int(t == self.T - 1)}")
        self.ring_writes = []
        self.ring_steps += 1

    def _finish_step(self, cycle: int, spikes: int, cycles: int) -> None:
        b, t = divmod(self.step, self.T)
        where = f"sample {b}, step {t}"
        gold = self.golden[b, t]
        got = np.array([(spikes >> i) & 1 for i in range(self.N)], dtype=np.int64)
        if not np.array_equal(got, gold):
            i = int(np.flatnonzero(got != gold)[0])
            self.errors.append(f"{where}, neuron {i}: spike rtl={got[i]} golden={gold[i]}")
        rec = len(self.history[t - self.span]) if self.span and t >= self.span else 0
        bound = self.G * (int(self.events[b, t]) + rec) + self.G + self.c
        self.cycles.append(cycles)
        if not self.stall and cycles != bound:
            self.errors.append(f"{where}: dbg_cycles {cycles} != bound {bound}")
        if self.stall and cycles < bound:
            self.errors.append(f"{where}: dbg_cycles {cycles} < bound {bound} with stalls")
        self.history.append([int(i) for i in np.flatnonzero(got)])
        if t == self.T - 1:
            self.history = []
        self.step += 1
        if self.span and self.step < self.B * self.T:
            self._queue_replay()


@cocotb.test()
async def layer_engine(dut):
    job = load_job()
    art = load(job["artifact"])
    with np.load(job["data"], allow_pickle=False) as z:
        x = z["x"].astype(np.int64)
    gold = golden_run(art, x, traces=True, quantized=True).spikes[0].astype(np.int64)
    rng = random.Random(job.get("seed", 0))
    clk = port(dut, "clk")
    Clock(clk, 10, unit="ns").start(start_high=False)
    harness = LayerHarness(dut, job, x, gold, rng)
    loop = CycleLoop(clk, [harness])
    await loop.reset(port(dut, "rst"))
    B, T = x.shape[:2]
    await loop.run(lambda: harness.done or len(harness.errors) > 5, 400 * B * T * (harness.G + 4) + 500,
                   what="the layer test")
    assert not harness.errors, "\n".join(harness.errors[:5])
