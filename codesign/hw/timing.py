"""Closed-form cycle counts of the datapath, the ground truth the cost model is built on.

`ArrayCore` feeds a tile after its command handshake, one weight digit per cycle, and takes the next command in the
cycle after the last one: tiles are pipelined, so the array's skew is crossed once per run of tiles, not per tile.

    feed   K * D             D = ceil(max column bits / g) digits per reduction step

A depthwise tile (``rows`` output pixels of one output row by ``cols`` channels, K = kh * kw taps) runs the
taps chain by chain: one chain per kernel row, or two for stride 2 (the even taps, then the odd ones). Each chain
starts with ``rows - 1`` one-cycle preload beats that fill the columns' sliding windows (`rtl_gen.systolic_array`):

    depthwise feed   chains * (rows - 1) + K * D

An emitting tile's last digit crosses the array (``fill``, rows + cols - 1 cycles to PE(rows-1, cols-1)), each PE's
sum moving into the held bank behind it, and the bank drains one row per cycle through the requantization pipeline:

    bank   fill + drain + 1  from an emitting tile's last beat to the first cycle the bank is free again

So the next emitting tile's last step starts at least `bank_cycles` after the previous emitting tile's last beat;
it waits at that step's first digit otherwise (bubbles the feed counts do not include; never in the accelerator on
tiles of ``bank_cycles`` or more). The RTL tests check that the measured counts equal these formulas for every tile
they run, with no tolerance.
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
    """Cycles from the held bank's capture of PE(rows-1, cols-1) to the cycle after the tile's last output: one row
    per cycle into the requantization pipeline."""
    return 1 + cfg.rows + REQUANT_LATENCY


def bank_cycles(cfg: HardwareConfig) -> int:
    """Cycles from an emitting tile's last beat to the first cycle the next emitting tile's last step may start: the
    last digit's way to PE(rows-1, cols-1), the drain, and the cycle the bank is released in."""
    return fill_cycles(cfg) + drain_cycles(cfg) + 1


def tile_cycles(cfg: HardwareConfig, k: int, weight_bits: int) -> int:
    """Feed cycles of one `ArrayCore` tile with K reduction steps whose widest weight column has ``weight_bits``
    bits (with or without emit: its last digits cross the array, and its sums drain, under the next tile)."""
    return k * cfg.digits(weight_bits)


def depthwise_chains(kh: int, kw: int, stride: int) -> tuple[int, ...]:
    """Taps per chain of a depthwise tile, in the order the array runs them: per kernel row, the taps ``p, p + s,
    ...`` of each stride phase p that has any."""
    return tuple(len(range(p, kw, stride)) for _ in range(kh) for p in range(stride) if p < kw)


def depthwise_inputs(cfg: HardwareConfig, kh: int, kw: int, stride: int) -> int:
    """Activation beats of a depthwise tile: each chain reads ``rows - 1 + taps`` input pixels."""
    return sum(cfg.rows - 1 + taps for taps in depthwise_chains(kh, kw, stride))


def depthwise_tile_cycles(cfg: HardwareConfig, kh: int, kw: int, stride: int, weight_bits: int) -> int:
    """Feed cycles of one depthwise `ArrayCore` tile whose widest channel has ``weight_bits`` bits."""
    chains = len(depthwise_chains(kh, kw, stride))
    return chains * (cfg.rows - 1) + kh * kw * cfg.digits(weight_bits)
