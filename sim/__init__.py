"""Simulation side: cocotb testbenches, the harnesses they drive, the runners, and cycle measurement."""
