"""Mapping space, the BatchTile cost model (and its straightforward-loop oracle), the mapper, GEMM -> program, network -> programs."""
