"""Simulation side: cocotb testbenches, the harnesses they drive, the runners, and cycle measurement."""

# The simulators `sim.build` builds for. Here rather than in sim/build.py so that the CLI can offer the choice
# without importing Amaranth and the runner at start-up (`codesign --help`).
SIMULATORS = ("verilator", "icarus")
