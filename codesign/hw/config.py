"""`HardwareConfig`: the one description of an accelerator instance.

The Amaranth generator, the integer reference, the cost model, the testbenches and the emitted C header all read
this object; no hardware parameter is written down anywhere else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path

from codesign.errors import InputError
from codesign.files import read_json

DIGIT_BITS = (1, 2, 4, 8)
AXI_DATA_BITS = (64, 128, 256)


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for integers, exact at any size (no float). The one integer ceiling of the project: tile
    counts, digits, words and bus-aligned slots (``ceil_div(n, bus) * bus``) all use it."""
    return -(-a // b)


@dataclass(frozen=True)
class HardwareConfig:
    """A systolic low-bit accelerator: PE array, arithmetic widths, on-chip buffers and bus.

    Arithmetic
        ``act_bits`` is the widest activation (signed or unsigned, chosen per tile); ``weight_bits_max`` the widest
        per-channel weight (always signed). Weights enter the PEs ``digit_bits`` (g) bits per cycle, so a reduction
        step over a column tile with b-bit weights costs ``ceil(b / g)`` cycles. ``acc_bits`` must hold the largest
        possible sum of ``max_k`` products; the config is refused otherwise. Requantization multiplies by an unsigned
        ``mult_bits``-bit integer and shifts right by up to ``acc_bits + mult_bits``.
    Memory
        Buffer sizes are in bytes, per buffer. Programs double-buffer them (one half holds a tile being loaded while
        the other is computed on; the controller's dependency tokens order the two). The parameter buffer holds the
        per-channel requantization records. ``axi_data_bits`` is the width of the AXI4 memory bus.
    """

    # ---- PE array
    rows: int = 8
    cols: int = 8
    # ---- arithmetic
    act_bits: int = 8
    weight_bits_max: int = 8
    digit_bits: int = 2
    acc_bits: int = 32
    max_k: int = 4096
    mult_bits: int = 16
    # ---- on-chip buffers and bus
    act_buf_bytes: int = 16384
    wgt_buf_bytes: int = 16384
    out_buf_bytes: int = 8192
    param_buf_bytes: int = 4096
    axi_data_bits: int = 64

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise InputError(f.name, value, "an integer")
        _check_range("rows", self.rows, 1, 64)
        _check_range("cols", self.cols, 1, 64)
        _check_range("act_bits", self.act_bits, 2, 16)
        _check_range("weight_bits_max", self.weight_bits_max, 2, 16)
        if self.digit_bits not in DIGIT_BITS:
            raise InputError("digit_bits", self.digit_bits, f"one of {list(DIGIT_BITS)}")
        _check_range("max_k", self.max_k, 1, 1 << 20)
        # 16: the width of the multiplier field in the ISA's per-channel parameter record (codesign.hw.isa).
        _check_range("mult_bits", self.mult_bits, 1, 16)
        _check_range("acc_bits", self.acc_bits, 2, 40)
        need = self.acc_bits_needed(self.act_bits, self.weight_bits_max, self.max_k)
        if self.acc_bits < need:
            raise InputError(
                "acc_bits", self.acc_bits,
                f">= {need}: max_k={self.max_k} products of a {self.act_bits}-bit activation and a "
                f"{self.weight_bits_max}-bit weight need {need} bits (or lower max_k)")
        if self.acc_bits + self.mult_bits > 56:
            # The requantization product (acc + bias) * mult must fit the int64 of the reference model.
            raise InputError("mult_bits", self.mult_bits, f"at most {56 - self.acc_bits} with acc_bits={self.acc_bits}")
        if self.axi_data_bits not in AXI_DATA_BITS:
            raise InputError("axi_data_bits", self.axi_data_bits, f"one of {list(AXI_DATA_BITS)}")
        for name, largest in (("act_buf_bytes", 1 << 24), ("wgt_buf_bytes", 1 << 24), ("out_buf_bytes", 1 << 24),
                              ("param_buf_bytes", 1 << 16)):
            value = getattr(self, name)
            if not 256 <= value <= largest or value & (value - 1):
                raise InputError(name, value, f"a power of two from 256 to {largest}")
        if 2 * self.out_tile_bytes > self.out_buf_bytes:
            # Every mapping double-buffers output tiles (codesign.compiler.mapping.fit_problem): with less, none fits.
            raise InputError(
                "out_buf_bytes", self.out_buf_bytes,
                f">= {2 * self.out_tile_bytes}: two output tiles of {self.out_tile_bytes} bytes (rows={self.rows} "
                f"words of cols={self.cols} x act_bits={self.act_bits} bits, each padded to a power of two bytes, "
                f"the tile to whole {self.axi_data_bits}-bit bus beats), as double buffering needs")

    # ---- derived quantities (read by the generator, the reference and the cost model alike)
    @staticmethod
    def acc_bits_needed(act_bits: int, weight_bits: int, k: int) -> int:
        """Signed accumulator width that holds any sum of ``k`` products without overflow.

        The largest product magnitude is an unsigned ``act_bits`` maximum times the most negative weight.
        """
        largest = k * ((1 << act_bits) - 1) * (1 << (weight_bits - 1))
        return largest.bit_length() + 1

    @property
    def digits_max(self) -> int:
        """Digits of the widest weight: cycles per reduction step at ``weight_bits_max``."""
        return ceil_div(self.weight_bits_max, self.digit_bits)

    @property
    def shift_max(self) -> int:
        """Largest requantization right shift."""
        return self.acc_bits + self.mult_bits

    @property
    def shift_bits(self) -> int:
        return self.shift_max.bit_length()

    @property
    def k_bits(self) -> int:
        return self.max_k.bit_length()

    @property
    def out_tile_bytes(self) -> int:
        """Output-buffer bytes of one requantized ``rows`` x ``cols`` tile: ``rows`` out words of ``cols *
        act_bits`` bits, each padded to a power-of-two number of bytes (`codesign.hw.isa.word_bytes`), the tile
        padded to whole bus beats (the ``out_slot`` of `codesign.compiler.mapping.plan`; a test holds them equal)."""
        word = 1 << (ceil_div(self.cols * self.act_bits, 8) - 1).bit_length()
        bus = self.axi_data_bits // 8
        return ceil_div(self.rows * word, bus) * bus

    def digits(self, weight_bits: int) -> int:
        """Cycles per reduction step for a column tile whose widest weight has ``weight_bits`` bits."""
        return ceil_div(weight_bits, self.digit_bits)

    # ---- serialization
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> HardwareConfig:
        if not isinstance(data, dict):
            raise InputError("config", type(data).__name__, "a JSON object of HardwareConfig fields")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError("config", unknown[0], f"one of the fields {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> HardwareConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError("config", "JSON text", f"valid JSON (line {exc.lineno}, column {exc.colno}: "
                                                    f"{exc.msg})") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path, what: str = "--config") -> HardwareConfig:
        """The configuration in the JSON file ``path``; any error names the file (and the field)."""
        data = read_json(path, what, "HardwareConfig JSON file")
        try:
            return cls.from_dict(data)
        except InputError as exc:
            raise exc.within(str(path)) from None

    def digest(self) -> str:
        """Short stable hash of the configuration, for build directories and caches."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    def replace(self, **changes) -> HardwareConfig:
        return dataclasses.replace(self, **changes)


def _check_range(name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise InputError(name, value, f"an integer from {lo} to {hi}")
