"""The RTL's command layouts agree bit for bit with `codesign.hw.isa.encode` / `decode` for every field."""

from dataclasses import fields

import numpy as np
import pytest
from amaranth.hdl import Shape

from codesign.hw import isa
from codesign.hw.isa import Compute, Dma, End, Opcode
from rtl_gen import commands

LAYOUTS = [(commands.HEADER, isa.HEADER_FIELDS), (commands.DMA, isa.DMA_FIELDS),
           (commands.COMPUTE, isa.COMPUTE_FIELDS)]


def random_command(rng, cls, opcode):
    values = {}
    table = dict(isa.COMPUTE_FIELDS if cls is Compute else isa.DMA_FIELDS if cls is Dma else isa.HEADER_FIELDS)
    for f in fields(cls):
        if f.name == "opcode":
            continue
        value = int(rng.integers(0, 1 << table[f.name], dtype=np.int64))       # any value its width holds
        values[f.name] = bool(value) if isinstance(f.default, bool) else value
    return cls(opcode=opcode, **values)


@pytest.mark.parametrize("layout, table", LAYOUTS, ids=["header", "dma", "compute"])
def test_layouts_follow_the_isa_field_tables(layout, table):
    assert Shape.cast(layout).width == isa.COMMAND_BITS
    offset = 0
    for name, width in table:
        assert (layout[name].offset, Shape.cast(layout[name].shape).width) == (offset, width), name
        offset += width
    # then only the reserved bits, where any are left (no zero-width field: Verilator warns about its `[-1:0]` wire)
    assert list(dict(layout)) == [name for name, _ in table] + (["_reserved"] if offset < isa.COMMAND_BITS else [])


@pytest.mark.parametrize("cls, opcodes", [(Dma, [Opcode.LOAD_ACT, Opcode.LOAD_WGT, Opcode.LOAD_PARAM, Opcode.STORE]),
                                          (Compute, [Opcode.COMPUTE])])
def test_encoded_commands_read_back_through_the_layouts(cls, opcodes):
    layout = commands.COMPUTE if cls is Compute else commands.DMA
    rng = np.random.default_rng(len(opcodes))
    for i in range(40):
        command = random_command(rng, cls, opcodes[i % len(opcodes)])
        word = isa.encode(command)
        view = layout.from_bits(word)
        header = commands.HEADER.from_bits(word)
        for f in fields(cls):
            assert int(getattr(view, f.name)) == int(getattr(command, f.name)), f.name
        for name, _ in isa.HEADER_FIELDS:
            assert int(getattr(header, name)) == int(getattr(command, name))
        # and the other way: a command built in the layout encodes to the same word, and decodes to the command
        built = layout.const({f.name: int(getattr(command, f.name)) for f in fields(cls)}).as_bits()
        assert built == word
        assert isa.decode(built) == command


def test_end_is_a_bare_header():
    word = isa.encode(End(push_prev=True))
    header = commands.HEADER.from_bits(word)
    assert (header.opcode, header.push_prev, header.pop_prev) == (Opcode.END, 1, 0)
    assert word >> 8 == 0
