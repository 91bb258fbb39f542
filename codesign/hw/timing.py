"""Closed-form cycle counts of the datapath, the ground truth the cost model is built on.

`ArrayCore` runs a tile in two phases after its command handshake, and an emitting tile drains in a third that
overlaps the next tile:

    feed   K * D             one weight digit per cycle, D = ceil(max column bits / g) digits per reduction step
    flush  rows + cols - 1   the feed register's last beat, then zero digits that push it through the skew lines to
                             PE(rows-1, cols-1)
    drain  1 + rows + 5      (only when the tile emits) one cycle copies the sums and the requantization parameters
                             into the held bank, then one row per cycle into the five-stage requantization pipeline

A depthwise tile (``rows`` output pixels of one output row by ``cols`` channels, K = kh * kw taps) runs the
taps chain by chain: one chain per kernel row, or two for stride 2 (the even taps, then the odd ones). Each chain
starts with ``rows - 1`` one-cycle preload beats that fill the columns' sliding windows (`rtl_gen.systolic_array`):

    depthwise feed   chains * (rows - 1) + K * D

The array is busy for the feed and the flush (`tile_cycles`); the next tile's handshake can come in the cycle of the
copy. The held bank is free again `drain_cycles` after the copy, so an emitting tile whose flush ends sooner after
the previous emitting tile's copy waits for it (the bare core with back-to-back tiles shorter than the drain; never
in the accelerator, whose per-command gap is longer). The RTL tests check that the measured counts equal these
formulas for every tile they run, with no tolerance.
"""

from codesign.hw.config import HardwareConfig

#: Pipeline stages of the requantization unit; `rtl_gen.requant_unit.RequantUnit` is built with this many.
REQUANT_LATENCY = 5


#: The depthwise kernels and strides the array runs (the command's ``kw`` and ``stride`` fields).
DW_KERNEL_MAX = 7
DW_STRIDES = (1, 2)


def fill_cycles(cfg: HardwareConfig) -> int:
    return cfg.rows + cfg.cols - 1


def drain_cycles(cfg: HardwareConfig) -> int:
    """Cycles from the end of an emitting tile's flush to its last output, and from its copy into the held bank to
    the first cycle the bank can take the next tile."""
    return 1 + cfg.rows + REQUANT_LATENCY


def tile_cycles(cfg: HardwareConfig, k: int, weight_bits: int) -> int:
    """Busy cycles of one `ArrayCore` tile with K reduction steps whose widest weight column has ``weight_bits``
    bits (with or without emit: the drain overlaps the next tile)."""
    return k * cfg.digits(weight_bits) + fill_cycles(cfg)


def depthwise_chains(kh: int, kw: int, stride: int) -> tuple[int, ...]:
    """Taps per chain of a depthwise tile, in the order the array runs them: per kernel row, the taps ``p, p + s,
    ...`` of each stride phase p that has any."""
    return tuple(len(range(p, kw, stride)) for _ in range(kh) for p in range(stride) if p < kw)


def depthwise_inputs(cfg: HardwareConfig, kh: int, kw: int, stride: int) -> int:
    """Activation beats of a depthwise tile: each chain reads ``rows - 1 + taps`` input pixels."""
    return sum(cfg.rows - 1 + taps for taps in depthwise_chains(kh, kw, stride))


def depthwise_tile_cycles(cfg: HardwareConfig, kh: int, kw: int, stride: int, weight_bits: int) -> int:
    """Busy cycles of one depthwise `ArrayCore` tile whose widest channel has ``weight_bits`` bits."""
    chains = len(depthwise_chains(kh, kw, stride))
    return chains * (cfg.rows - 1) + kh * kw * cfg.digits(weight_bits) + fill_cycles(cfg)
