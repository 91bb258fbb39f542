"""`TileHarness`: `ArrayCore` fed from memories, so a testbench runs a whole tile per await.

The testbench writes the tile's stream words straight into the harness memories (one VPI write per word, no clock
edges), sets the command and pulses ``start``; the harness streams the words into the core at full rate and
collects the output rows, and the testbench awaits ``done`` once. No Python runs per clock cycle, so Verilator,
not the testbench, sets the speed. With ``stall`` set, an LFSR drops ``valid`` on the input streams and ``ready``
on the output stream at random, to prove the core's handshakes under backpressure at the same speed.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from codesign.hw.config import HardwareConfig
from rtl_gen.array_core import ArrayCore, command_layout


class TileHarness(wiring.Component):
    """Ports
        start       In   1                 pulse: run ``command`` over the words in the memories
        command     In   command_layout    the tile command, held while the tile runs
        act_beats   In   32                number of words of ``act_mem`` to stream (K, or a depthwise tile's
                                       `codesign.hw.timing.depthwise_inputs`)
        wgt_beats   In   32                number of words of ``wgt_mem`` to stream (K * D)
        stall       In   1                 random bubbles on every stream
        done        Out  1                 the tile finished, drain included; ``out_mem`` holds its rows
        cycles      Out  32                the core's busy cycles of the tile (`codesign.hw.timing.tile_cycles`)
    Memories (written by the testbench through VPI): ``act_mem``, ``wgt_mem``; read back: ``out_mem``.
    """

    def __init__(self, cfg: HardwareConfig, *, act_depth: int, wgt_depth: int):
        self.cfg = cfg
        self.act_depth = act_depth
        self.wgt_depth = wgt_depth
        super().__init__({
            "start": In(1),
            "command": In(command_layout(cfg)),
            "act_beats": In(32),
            "wgt_beats": In(32),
            "stall": In(1),
            "done": Out(1),
            "cycles": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.core = core = ArrayCore(cfg)
        m.submodules.act_mem = act_mem = memory.Memory(shape=cfg.act_bits * max(cfg.rows, cfg.cols),
                                                       depth=self.act_depth, init=[])
        m.submodules.wgt_mem = wgt_mem = memory.Memory(shape=cfg.digit_bits * cfg.cols, depth=self.wgt_depth, init=[])
        m.submodules.out_mem = out_mem = memory.Memory(shape=cfg.act_bits * cfg.cols, depth=cfg.rows, init=[])
        act_read = act_mem.read_port(domain="comb")
        wgt_read = wgt_mem.read_port(domain="comb")
        out_write = out_mem.write_port()

        act_addr = Signal(32)
        wgt_addr = Signal(32)
        out_addr = Signal(range(cfg.rows + 1))
        running = Signal()
        cmd_valid = Signal()

        # A 16-bit maximal-length LFSR; each stream stalls on its own tap pattern.
        lfsr = Signal(16, init=0xACE1)
        m.d.sync += lfsr.eq(lfsr >> 1 | ((lfsr[0] ^ lfsr[2] ^ lfsr[3] ^ lfsr[5]) << 15))
        act_open = ~self.stall | lfsr[0] | lfsr[7]
        wgt_open = ~self.stall | lfsr[3] | lfsr[11]
        out_open = ~self.stall | lfsr[5] | lfsr[13]

        m.d.comb += [
            core.cmd.payload.eq(self.command),
            core.cmd.valid.eq(cmd_valid),
            act_read.addr.eq(act_addr),
            core.act.payload.eq(act_read.data),
            core.act.valid.eq(running & (act_addr < self.act_beats) & act_open),
            wgt_read.addr.eq(wgt_addr),
            core.wgt.payload.eq(wgt_read.data),
            core.wgt.valid.eq(running & (wgt_addr < self.wgt_beats) & wgt_open),
            core.out.ready.eq(out_open),
            out_write.addr.eq(out_addr),
            out_write.data.eq(core.out.payload),
            out_write.en.eq(core.out.valid & core.out.ready),
            self.cycles.eq(core.cycles),
        ]
        with m.If(core.act.valid & core.act.ready):
            m.d.sync += act_addr.eq(act_addr + 1)
        with m.If(core.wgt.valid & core.wgt.ready):
            m.d.sync += wgt_addr.eq(wgt_addr + 1)
        with m.If(out_write.en):
            m.d.sync += out_addr.eq(out_addr + 1)

        with m.If(self.start):
            m.d.sync += [cmd_valid.eq(1), act_addr.eq(0), wgt_addr.eq(0), out_addr.eq(0), self.done.eq(0)]
        with m.Elif(cmd_valid & core.cmd.ready):
            m.d.sync += [cmd_valid.eq(0), running.eq(1)]
        with m.Elif(running & ~core.busy & ~core.draining):
            m.d.sync += [running.eq(0), self.done.eq(1)]
        return m
