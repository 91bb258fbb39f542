"""The hardware half of the co-search space: the accelerator candidates the hardware generation network chooses from.

A candidate is a full `HardwareConfig`; the space is the product of the PE-array rows and columns, the digit
width g, the activation / weight buffer sizes and the bus width, every other field at its default. Each candidate
carries the area estimate the search's budget uses (`codesign.compiler.batchtile.area_luts`, the PE array's LUTs
from the
committed PE table, and `brams`, the buffers' block RAMs).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

from codesign.compiler.batchtile import area_luts, brams
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig


@dataclass(frozen=True)
class HardwareSpace:
    rows: tuple[int, ...] = (4, 8, 16)
    cols: tuple[int, ...] = (4, 8, 16)
    digit_bits: tuple[int, ...] = (1, 2, 4)
    act_buf_bytes: tuple[int, ...] = (4096, 16384)
    wgt_buf_bytes: tuple[int, ...] = (4096, 16384)
    axi_data_bits: tuple[int, ...] = (64,)

    def candidates(self) -> list[HardwareConfig]:
        """Every combination, in a fixed order (rows slowest); a combination `HardwareConfig` refuses is an
        error naming it, since the space is the user's input."""
        configs = []
        for values in itertools.product(*(getattr(self, name) for name in FIELDS)):
            fields = dict(zip(FIELDS, values))
            try:
                configs.append(HardwareConfig(**fields))
            except InputError as exc:
                raise InputError("hardware space", fields, f"valid HardwareConfig fields ({exc})") from None
        return configs

    def to_dict(self) -> dict:
        return {name: list(values) for name, values in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> HardwareSpace:
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise InputError("hardware space", unknown[0], f"one of {list(FIELDS)}")
        for name, values in data.items():
            if not isinstance(values, (list, tuple)) or not values or \
                    any(not isinstance(v, int) or isinstance(v, bool) for v in values):
                raise InputError(f"hardware space.{name}", values, "a non-empty list of integers")
        return cls(**{name: tuple(values) for name, values in data.items()})


FIELDS = tuple(HardwareSpace.__dataclass_fields__)


def hardware_name(cfg: HardwareConfig) -> str:
    """A candidate in one line, as reports and progress lines show it."""
    return (f"{cfg.rows}x{cfg.cols} g{cfg.digit_bits} act{cfg.act_buf_bytes // 1024}K "
            f"wgt{cfg.wgt_buf_bytes // 1024}K bus{cfg.axi_data_bits}")


def area(cfg: HardwareConfig) -> dict:
    """The search's area figures of one candidate."""
    return {"area_luts": area_luts(cfg), "brams": brams(cfg)}
