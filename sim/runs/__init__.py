"""Workloads on the RTL: one GEMM, one layer, a whole network."""
