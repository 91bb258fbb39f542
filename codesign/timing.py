"""Closed-form cycle counts of the datapath, the ground truth the cost model is built on.

`ArrayCore` runs a tile in three phases after its command handshake:

    feed   K * D         one weight digit per cycle, D = ceil(max column bits / g) digits per reduction step
    flush  rows + cols - 1   the feed register's last beat, then zero digits that push it through the skew
                             lines to PE(rows-1, cols-1)
    drain  rows + 5      one row per cycle into the five-stage requantization pipeline (only when the tile emits)

The RTL tests check that the measured count equals this formula for every tile they run, with no tolerance.
"""

from .config import HardwareConfig

#: Pipeline stages of the requantization unit; `rtl_gen.requant_unit.RequantUnit` is built with this many.
REQUANT_LATENCY = 5


def fill_cycles(cfg: HardwareConfig) -> int:
    return cfg.rows + cfg.cols - 1


def drain_cycles(cfg: HardwareConfig) -> int:
    return cfg.rows + REQUANT_LATENCY


def tile_cycles(cfg: HardwareConfig, k: int, weight_bits: int, *, emit: bool = True) -> int:
    """Cycles of one `ArrayCore` tile with K reduction steps whose widest weight column has ``weight_bits`` bits."""
    return k * cfg.digits(weight_bits) + fill_cycles(cfg) + (drain_cycles(cfg) if emit else 0)
