"""Board tops (UART host link), the host driver and the Yosys/nextpnr build flow (see README.md)."""
