"""skipcore: bit-exact FPGA cores for recurrent spiking networks with skip recurrent connections."""

__version__ = "0.1.0"
