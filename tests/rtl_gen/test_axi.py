"""AXI4 and AXI4-Lite signatures: the AMBA member names, widths and directions, seen from the manager."""

import pytest
from amaranth.hdl import Shape
from amaranth.lib import wiring

from rtl_gen.axi import ADDR_BITS, BURST_INCR, ID_BITS, RESP_OKAY, AxiLiteSignature, AxiSignature

# Channel -> (members the manager drives, members the subordinate drives)
AXI4 = {
    "aw": ({"awid", "awaddr", "awlen", "awsize", "awburst", "awvalid"}, {"awready"}),
    "w": ({"wdata", "wstrb", "wlast", "wvalid"}, {"wready"}),
    "b": ({"bready"}, {"bid", "bresp", "bvalid"}),
    "ar": ({"arid", "araddr", "arlen", "arsize", "arburst", "arvalid"}, {"arready"}),
    "r": ({"rready"}, {"rid", "rdata", "rresp", "rlast", "rvalid"}),
}
AXI_LITE = {
    "aw": ({"awaddr", "awprot", "awvalid"}, {"awready"}),
    "w": ({"wdata", "wstrb", "wvalid"}, {"wready"}),
    "b": ({"bready"}, {"bresp", "bvalid"}),
    "ar": ({"araddr", "arprot", "arvalid"}, {"arready"}),
    "r": ({"rready"}, {"rdata", "rresp", "rvalid"}),
}


def widths(signature) -> dict[str, int]:
    return {name: Shape.cast(member.shape).width for name, member in signature.members.items()}


def directions(signature, flow) -> set[str]:
    return {name for name, member in signature.members.items() if member.flow == flow}


@pytest.mark.parametrize("data_bits", [64, 128, 256])
def test_axi4_members_and_widths(data_bits):
    signature = AxiSignature(data_bits)
    assert signature.data_bits == data_bits
    assert directions(signature, wiring.Out) == set().union(*(out for out, _ in AXI4.values()))
    assert directions(signature, wiring.In) == set().union(*(back for _, back in AXI4.values()))
    w = widths(signature)
    assert (w["wdata"], w["rdata"], w["wstrb"]) == (data_bits, data_bits, data_bits // 8)
    assert (w["awaddr"], w["araddr"]) == (ADDR_BITS, ADDR_BITS) == (32, 32)
    assert (w["awlen"], w["arlen"], w["awsize"], w["arsize"], w["awburst"], w["arburst"]) == (8, 8, 3, 3, 2, 2)
    assert (w["bresp"], w["rresp"]) == (2, 2)
    assert w["awid"] == w["arid"] == w["bid"] == w["rid"] == ID_BITS
    assert all(w[name] == 1 for name in w if name.endswith(("valid", "ready", "last")))


def test_axi4_address_and_id_widths_are_parameters():
    w = widths(AxiSignature(64, addr_bits=40, id_bits=4))
    assert (w["awaddr"], w["araddr"], w["awid"], w["rid"]) == (40, 40, 4, 4)


def test_axi_lite_members_and_widths():
    signature = AxiLiteSignature(8)
    assert directions(signature, wiring.Out) == set().union(*(out for out, _ in AXI_LITE.values()))
    assert directions(signature, wiring.In) == set().union(*(back for _, back in AXI_LITE.values()))
    w = widths(signature)
    assert (w["awaddr"], w["araddr"], w["wdata"], w["rdata"], w["wstrb"], w["awprot"]) == (8, 8, 32, 32, 4, 3)


def test_the_subordinate_side_is_the_flipped_signature():
    flipped = AxiSignature(64).flip()
    assert flipped.members["arvalid"].flow == wiring.In and flipped.members["arready"].flow == wiring.Out
    assert flipped.members["rdata"].flow == wiring.Out


def test_protocol_constants():
    assert (BURST_INCR, RESP_OKAY) == (0b01, 0b00)
