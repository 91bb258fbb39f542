"""AXI4 and AXI4-Lite interface signatures, from the manager's side (``Out`` is driven by the manager).

Member names are the AMBA signal names, so a component that exposes ``m_axi`` flattened with ``_`` gets the port
names (``m_axi_araddr``, ...) that FPGA vendor tools recognise as an interface.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

ADDR_BITS = 32
ID_BITS = 1
BURST_INCR = 1
RESP_OKAY = 0


class AxiSignature(wiring.Signature):
    """AXI4 with INCR bursts; no lock / cache / prot / qos (their defaults apply)."""

    def __init__(self, data_bits: int, addr_bits: int = ADDR_BITS, id_bits: int = ID_BITS):
        self.data_bits = data_bits
        super().__init__({
            "awid": Out(id_bits), "awaddr": Out(addr_bits), "awlen": Out(8), "awsize": Out(3), "awburst": Out(2),
            "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wlast": Out(1), "wvalid": Out(1), "wready": In(1),
            "bid": In(id_bits), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "arid": Out(id_bits), "araddr": Out(addr_bits), "arlen": Out(8), "arsize": Out(3), "arburst": Out(2),
            "arvalid": Out(1), "arready": In(1),
            "rid": In(id_bits), "rdata": In(data_bits), "rresp": In(2), "rlast": In(1), "rvalid": In(1),
            "rready": Out(1),
        })


class AxiLiteSignature(wiring.Signature):
    def __init__(self, addr_bits: int, data_bits: int = 32):
        super().__init__({
            "awaddr": Out(addr_bits), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_bits), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_bits), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })
