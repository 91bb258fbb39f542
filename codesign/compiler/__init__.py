"""The compiler: the mapping space, the BatchTile cost model (and its straightforward-loop oracle), the mapper,
GEMM -> program (layout, schedule, commands), network -> programs."""
