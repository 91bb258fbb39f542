import random

import pytest

from codesign.errors import InputError
from codesign.hw import isa
from codesign.hw.config import HardwareConfig
from codesign.hw.isa import Compute, Dma, End, Opcode


def _random_command(rng: random.Random):
    deps = {name: bool(rng.getrandbits(1)) for name in ("pop_prev", "pop_next", "push_prev", "push_next")}
    kind = rng.choice([Opcode.LOAD_ACT, Opcode.LOAD_WGT, Opcode.LOAD_PARAM, Opcode.STORE, Opcode.COMPUTE, Opcode.END])
    if kind == Opcode.END:
        return End(**deps)
    table = isa.COMPUTE_FIELDS if kind == Opcode.COMPUTE else isa.DMA_FIELDS
    values = {name: rng.getrandbits(width) for name, width in table if name not in deps and name != "opcode"}
    if kind == Opcode.COMPUTE:
        values = {k: (bool(v) if k in ("act_signed", "accumulate", "emit", "relu") else v) for k, v in values.items()}
        return Compute(**deps, **values)
    return Dma(opcode=kind, **deps, **values)


def test_encode_decode_round_trip():
    rng = random.Random(7)
    commands = [_random_command(rng) for _ in range(500)]
    for command in commands:
        word = isa.encode(command)
        assert 0 <= word < 1 << isa.COMMAND_BITS
        assert isa.decode(word) == command
    assert isa.disassemble_bytes(isa.assemble(commands)) == commands


def test_field_positions_are_lsb_first():
    word = isa.encode(Dma(opcode=Opcode.STORE, dram_addr=0x12345678, push_prev=True))
    assert word & 0xF == Opcode.STORE
    assert (word >> 6) & 1 == 1                                  # push_prev is header bit 6
    assert (word >> 8) & 0xFFFFFFFF == 0x12345678                # dram_addr follows the 8-bit header


def test_field_overflow_is_refused_by_name():
    with pytest.raises(InputError, match=r"COMPUTE.k: 65536 .* from 0 to 65535"):
        isa.encode(Compute(k=1 << 16))


def test_illegal_opcode_names_the_allowed_ones():
    with pytest.raises(InputError, match=r"opcode: 0 .*1 \(LOAD_ACT\)"):
        isa.decode(0)
    with pytest.raises(InputError, match="multiple of 16"):
        isa.disassemble_bytes(bytes(17))
    good = isa.assemble([Compute(k=1), Compute(k=2)])
    with pytest.raises(InputError, match=r"^command 2 \(byte 32\) opcode: 15 is not allowed"):
        isa.disassemble_bytes(good + b"\xff" * 16)          # the third word is the bad one


def test_disassembler_is_readable():
    text = isa.disassemble(isa.assemble([
        Dma(opcode=Opcode.LOAD_WGT, dram_addr=0x1000, buf_addr=0x200, rows=2, row_bytes=64, dram_stride=128,
            push_next=True),
        Compute(act_addr=0, wgt_addr=0x200, k=16, emit=True, relu=True, pop_prev=True),
        Dma(opcode=Opcode.STORE, dram_addr=0x8000, buf_addr=0x40, rows=1, row_bytes=64),
        End(),
    ]))
    lines = text.splitlines()
    assert lines[0] == "    0: LOAD_WGT  dram=0x1000 -> buf=0x200 2x64B stride=128  [push_next]"
    assert "k=16" in lines[1] and "emit,relu" in lines[1] and "[pop_prev]" in lines[1]
    assert "buf=0x40 -> dram=0x8000" in lines[2]
    assert lines[3].endswith("END")


@pytest.mark.parametrize("rows, cols, g, bus, want", [
    (8, 8, 2, 64, (8, 2, 64, 8, 8)),
    (3, 5, 1, 128, (4, 1, 64, 8, 16)),      # words pad to a power of two bytes
    (16, 16, 8, 256, (16, 16, 128, 16, 32)),
])
def test_word_bytes(rows, cols, g, bus, want):
    words = isa.word_bytes(HardwareConfig(rows=rows, cols=cols, digit_bits=g, axi_data_bits=bus))
    assert (words.act, words.wgt, words.param, words.out, words.bus) == want
