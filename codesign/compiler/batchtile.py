"""BatchTile: the cost of every mapping of every layer on every hardware candidate, as one batched tensor program.

Shapes: H hardware candidates x L layer GEMMs x G mapping-grid points. The grid is the mapping space of
`codesign.compiler.mapping`: activation-block extents ``bm`` and weight-block extents ``bn`` (powers of two below the
dimension, and the whole dimension), both loop orders, and K chunks (the largest that fits, then halvings). Channel
grouping is always on: sorting channels by bits minimizes the sum over column tiles of their widest column, so the
ungrouped mappings are dominated. Points that do not fit the buffers, or repeat another point, are masked.

The cycle model follows the compiler's schedule (`codesign.compiler.schedule`) step by step. A step loads a group
of blocks and runs the tiles that use them; with two buffer halves, a step's loads overlap the previous step's
computes and stores, so

    cycles = L_first + sum over the other steps of max(L_next, C, S) + C_last + fixed

with, per step, ``L`` the load time (beats, bursts, commands), ``C`` the array time (`codesign.hw.timing` per tile
plus a per-tile gap; tiles are pipelined, an emitting tile's skew and drain overlapping the next tiles, so a tile
costs at least the bank's turn (`codesign.hw.timing.bank_cycles`), and the last one is paid once at the end) and
``S`` the store time. Blocks at the edges are averaged (the mean tiles per block), so the model is exact for
dimensions that divide and close otherwise. The free constants (`Constants`) are fitted to RTL measurements by
`sim.measure.calibrate` (`make calibrate`); without `build/calibration.json` the fit
shipped with the package applies, else the defaults, and `load_constants` says so.

A depthwise layer (a GEMM with a `Window`) has two points, not a grid: point 0 is the program of
`codesign.compiler.depthwise` (groups outer with their weights resident, bands of frame rows streaming, each band's
DW_COMPUTE tiles at `codesign.hw.timing.depthwise_tile_cycles`), priced by `_price_depthwise` in the same tensors;
point 1 is the fallback for buffers too small for it, one N = 1 GEMM per channel
(`codesign.compiler.depthwise.per_channel_gemms`), each at its best mapping (priced in a second batch, at the
layer's own bits even when ``digits`` is given: in the search an upper bound). The other points are masked.

`price_mappings` is built from named parts: the terms a (hardware, layer) pair shares (`_pairs`: tile and digit
counts, load and fetch times), the resident points (`_blocks`: extents, steps and fit; `_step_times`; their
totals in `_price_resident`), the K split points (`_chunks`, `_chunk_step`, `_price_split`) and the grid's totals
(`_totals`). `codesign.compiler.naive_pricing` prices the same grid one point at a time, as an oracle.

Energy uses per-access figures from Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm): DRAM 1.3-2.6 nJ per
64-bit access (we take 2.0 nJ: 250 pJ/byte), SRAM 10 pJ per 64-bit read at 8 KiB growing with the square root of
the size, an 8-bit multiply 0.2 pJ and a 32-bit add 0.1 pJ (a g-bit digit product costs g/8 of the multiply).
Area is per hardware: the PE table (`codesign/data/pe_area.json`, iCE40 LUTs per PE) times the PEs, plus block
RAMs for the buffers.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

import torch

from codesign.compiler.depthwise import per_channel_gemms
from codesign.compiler.mapping import K_SPLITS, MAX_ROW_BYTES, Gemm, Mapping
from codesign.files import json_key, json_object, read_json
from codesign.hw import isa
from codesign.hw.config import HardwareConfig, ceil_div
from codesign.hw.timing import bank_cycles

CALIBRATION_PATH = Path("build/calibration.json")
EXTENT_BITS = 12                # block extents 1, 2, ..., 2048 array tiles, and the whole dimension

# Horowitz, ISSCC 2014, 45 nm (see the module docstring).
E_DRAM_PJ_PER_BYTE = 250.0
E_SRAM_PJ_PER_BYTE_8KIB = 10.0 / 8
E_MULT8_PJ = 0.2
E_ADD32_PJ = 0.1
BRAM_BYTES = 2048               # an ECP5 DP16KD holds 18 Kbit: 2 KiB of data


@dataclass(frozen=True)
class Constants:
    """The model's free constants, in cycles. ``burst`` is added to the memory latency for each burst."""
    beat: float = 1.0           # per bus beat
    burst: float = 4.0          # per burst, on top of the latency
    command: float = 6.0        # per DMA command
    tile_gap: float = 5.0       # per COMPUTE, between array passes
    fixed: float = 40.0         # per program: start, fetch, END
    decode: float = 2.0         # per command the controller checks and dispatches
    latency_scale: float = 1.0  # the share of the memory latency a burst pays (1: bursts served one at a time)
    calibrated: bool = False


def load_constants(path: Path = CALIBRATION_PATH) -> Constants:
    """The fitted constants when ``path`` exists; for the default path, else the fit shipped with the package
    (`codesign/data/calibration.json`, the last `make calibrate` of this RTL, so a fresh clone predicts as well as
    a calibrated checkout); else the defaults, with a warning: the model is uncalibrated."""
    if path.is_file():
        data = json_object(read_json(path, "calibration", "JSON file written by `make calibrate`"), str(path),
                           "a JSON object with the fitted 'constants'")
        names = [f.name for f in fields(Constants) if f.name != "calibrated"]
        fit = json_key(data, "constants", f"{path} ", f"an object of numbers: {names}",
                       lambda v: isinstance(v, dict) and set(v) - {"calibrated"} <= set(names) and all(
                           isinstance(v[k], (int, float)) and not isinstance(v[k], bool) and math.isfinite(v[k])
                           for k in v if k != "calibrated"))
        return Constants(**{k: float(v) for k, v in fit.items() if k != "calibrated"}, calibrated=True)
    if path == CALIBRATION_PATH:
        shipped = resources.files("codesign.data").joinpath("calibration.json")
        if shipped.is_file():
            return load_constants(Path(str(shipped)))
    warnings.warn(f"{path} not found: the cost model runs uncalibrated (make calibrate)", stacklevel=2)
    return Constants()


def dram_pj_per_byte(act_buf_bytes):
    """Energy of a byte moved between DRAM and a buffer: the DRAM access, then the buffer's write and read (SRAM
    energy grows with the square root of its size). Takes a number or a tensor."""
    return E_DRAM_PJ_PER_BYTE + 2 * E_SRAM_PJ_PER_BYTE_8KIB * (act_buf_bytes / 8192) ** 0.5


# ---- inputs as tensors

@dataclass
class HardwareBatch:
    configs: list[HardwareConfig]
    t: dict                      # name -> float tensor [H]

    @classmethod
    def from_configs(cls, configs: list[HardwareConfig], device: str = "cpu",
                     dtype: torch.dtype = torch.float32) -> HardwareBatch:
        rows = []
        for cfg in configs:
            words = isa.word_bytes(cfg)
            rows.append({
                "rows": cfg.rows, "cols": cfg.cols, "g": cfg.digit_bits, "bus": words.bus, "max_k": cfg.max_k,
                "act_buf": cfg.act_buf_bytes, "wgt_buf": cfg.wgt_buf_bytes, "out_buf": cfg.out_buf_bytes,
                "param_buf": cfg.param_buf_bytes, "p_act": words.act, "p_wgt": words.wgt, "p_out": words.out,
                "param_slot": ceil_div(words.param, words.bus) * words.bus,
                "out_slot": ceil_div(cfg.rows * words.out, words.bus) * words.bus,
                "bank": bank_cycles(cfg),
                "area_luts": area_luts(cfg), "brams": brams(cfg),
            })
        t = {k: torch.tensor([r[k] for r in rows], dtype=dtype, device=device) for k in rows[0]}
        return cls(configs, t)


@dataclass
class LayerBatch:
    gemms: list[Gemm]
    count: torch.Tensor          # [L] how many times each GEMM runs (a grouped conv's groups)
    m: torch.Tensor
    k: torch.Tensor
    n: torch.Tensor
    sorted_bits: torch.Tensor    # [L, Nmax] ascending, padded with the last value
    names: list[str]
    window: dict | None = None   # depthwise layers' geometry, [L] each (zeros elsewhere), and ``depthwise`` [L] bool

    @classmethod
    def from_gemms(cls, gemms: list[Gemm], counts=None, names=None, device: str = "cpu",
                   dtype: torch.dtype = torch.float32) -> LayerBatch:
        n_max = max(g.n for g in gemms)
        bits = torch.stack([torch.nn.functional.pad(torch.sort(torch.tensor(g.bits, dtype=dtype)).values,
                                                    (0, n_max - g.n), value=float(max(g.bits))) for g in gemms])

        def col(values):
            return torch.tensor(values, dtype=dtype, device=device)

        windows = [g.window for g in gemms]
        window = None
        if any(windows):
            window = {name: col([getattr(w, name) if w else 0 for w in windows])
                      for name in ("height", "width", "stride", "padding", "images")}
            window["kh"] = col([w.kernel[0] if w else 0 for w in windows])
            window["kw"] = col([w.kernel[1] if w else 0 for w in windows])
            window["depthwise"] = torch.tensor([w is not None for w in windows], device=device)
        return cls(gemms, col(counts or [1] * len(gemms)), col([g.m for g in gemms]), col([g.k for g in gemms]),
                   col([g.n for g in gemms]), bits.to(device), names or [f"gemm{i}" for i in range(len(gemms))],
                   window)


def area_luts(cfg: HardwareConfig) -> float:
    """PE LUTs from the committed PE table (nearest weight width at or above the config's) times the PEs."""
    table = json.loads(resources.files("codesign.data").joinpath("pe_area.json").read_text())["rows"]
    rows = [r for r in table if r["digit_bits"] == cfg.digit_bits and r["weight_bits_max"] >= cfg.weight_bits_max]
    row = min(rows, key=lambda r: r["weight_bits_max"]) if rows else max(
        (r for r in table if r["digit_bits"] == cfg.digit_bits), key=lambda r: r["weight_bits_max"])
    return float(row["luts"] * cfg.rows * cfg.cols)


def brams(cfg: HardwareConfig) -> float:
    return float(sum(ceil_div(b, BRAM_BYTES) for b in (cfg.act_buf_bytes, cfg.wgt_buf_bytes, cfg.out_buf_bytes,
                                                    cfg.param_buf_bytes)))


# ---- the model

N_EXTENTS = EXTENT_BITS + 1
N_RESIDENT = N_EXTENTS * N_EXTENTS * 2


@dataclass
class Costs:
    """The priced grid. The G axis is the resident points, ``(bm, bn, order)`` with order fastest (extent index
    ``EXTENT_BITS`` is the whole dimension), then the ``K_SPLITS`` K chunks."""
    cycles: torch.Tensor         # [H, L, G], +inf where the point is masked
    dram_bytes: torch.Tensor     # [H, L, G]
    energy_pj: torch.Tensor      # [H, L, G]
    valid: torch.Tensor          # [H, L, G] bool
    m_tiles: torch.Tensor        # [H, L]: what decoding a grid index needs
    n_tiles: torch.Tensor
    k: torch.Tensor
    kc_largest: torch.Tensor

    def decode(self, index: torch.Tensor) -> dict:
        """Grid indices [H, L] -> the mappings' coordinates: bm, bn (array tiles), order (0 weights, 1 acts),
        kc (0 for the whole K)."""
        resident = index < N_RESIDENT
        bm_e, bn_e, order = index // (N_EXTENTS * 2), (index // 2) % N_EXTENTS, index % 2
        split = (index - N_RESIDENT).clamp(min=0)
        return {
            "bm": torch.where(resident, _extent(bm_e.to(self.m_tiles.dtype), self.m_tiles), 1.0),
            "bn": torch.where(resident, _extent(bn_e.to(self.n_tiles.dtype), self.n_tiles), 1.0),
            "order": torch.where(resident, order, 0),
            "kc": torch.where(resident, 0.0, torch.floor(self.kc_largest / 2.0 ** split)),
        }

    def best(self) -> dict:
        """Per (hardware, layer): the cheapest valid point's index, cycles, bytes, energy and coordinates."""
        cycles, index = self.cycles.min(dim=-1)
        pick = index.unsqueeze(-1)
        return {"index": index, "cycles": cycles, "dram_bytes": self.dram_bytes.gather(-1, pick).squeeze(-1),
                "energy_pj": self.energy_pj.gather(-1, pick).squeeze(-1), **self.decode(index)}


def tile_digits(hw: HardwareBatch, layers: LayerBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per (hardware, layer): column tiles, the sum of their digits, and the widest tile's digits, channels grouped
    by bits: column tile j's widest column is sorted channel ``min((j + 1) * cols, N) - 1``. Computed once per
    distinct (cols, g) of the batch, which is all they depend on (a search's candidates share a few)."""
    shapes, which = torch.unique(torch.stack([hw.t["cols"], hw.t["g"]], dim=1), dim=0, return_inverse=True)
    cols, g = shapes[:, 0, None, None], shapes[:, 1, None, None]
    n = layers.n[None, :, None]
    n_tiles = torch.ceil(layers.n[None, :] / shapes[:, 0, None])                          # [U, L]
    j = torch.arange(int(n_tiles.max()), dtype=n.dtype, device=n.device)[None, None, :]
    last = torch.minimum((j + 1) * cols, n) - 1                                             # [U, L, J]
    bits = layers.sorted_bits[None].expand(len(shapes), -1, -1).gather(-1, last.long().clamp(min=0))
    digits = torch.ceil(bits / g) * (j < n_tiles[..., None])
    return n_tiles[which], digits.sum(-1)[which], digits.max(-1).values[which]


def _extent(exp, tiles):
    return torch.where(exp >= EXTENT_BITS, tiles, torch.minimum(2.0 ** exp, tiles))


def _round_up(value, step):
    """``ceil(value / step) * step`` on tensors: the tensor twin of `codesign.hw.config.ceil_div` (times the step),
    because the model's sizes are float tensors, fractional where digits are averaged, and differentiable."""
    return torch.ceil(value / step) * step


def price_mappings(hw: HardwareBatch, layers: LayerBatch, constants: Constants = Constants(), *,
                   latency: float = 20.0, mask: bool = True, digits: tuple | None = None) -> Costs:
    """Cycles, DRAM bytes and energy of every grid point on every (hardware, layer); see the module docstring.

    The resident points are outer products: what depends on the activation block lives on one axis, what depends
    on the weight block on another, and only the final combination is computed on the whole grid.

    ``digits``, when given, is ``(sum, max)`` of the column tiles' digits per (hardware, layer) [H, L] in place of
    the layers' fixed bits: the search passes `expected_tile_digits` there, and the costs are differentiable in it.
    """
    p = _pairs(hw, layers, constants, latency * constants.latency_scale, digits)
    H, L = p.m_tiles.shape
    cycles = torch.empty(H, L, N_RESIDENT + K_SPLITS, dtype=p.dtype, device=p.device)
    dram = torch.empty_like(cycles)
    valid = torch.empty(H, L, N_RESIDENT + K_SPLITS, dtype=torch.bool, device=p.device)
    # The resident part is written in place through [H, L, E(bm), E(bn), order] views, without stacking copies.
    resident = [x[..., :N_RESIDENT].view(H, L, N_EXTENTS, N_EXTENTS, 2) for x in (cycles, dram, valid)]
    _price_resident(p, *resident)
    kc_largest = _price_split(p, cycles[..., N_RESIDENT:], dram[..., N_RESIDENT:], valid[..., N_RESIDENT:])
    if layers.window is not None:
        dw_cycles, dw_dram, dw_valid = _price_depthwise(p, layers.window)
        depthwise = layers.window["depthwise"][None, :]
        fb_cycles, fb_dram, fb_valid = _price_fallback(hw, layers, constants, latency)
        valid &= ~depthwise[..., None]
        valid[..., 0] |= depthwise & dw_valid
        valid[..., 1] |= depthwise & fb_valid
        for point, (c_dw, d_dw) in enumerate(((dw_cycles, dw_dram), (fb_cycles, fb_dram))):
            cycles[..., point] = torch.where(depthwise, c_dw, cycles[..., point])
            dram[..., point] = torch.where(depthwise, d_dw, dram[..., point])
    return _totals(p, cycles, dram, valid, kc_largest, mask)


def _price_fallback(hw: HardwareBatch, layers: LayerBatch, constants: Constants,
                    latency: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per (hardware, layer) [H, L]: the depthwise layers' fallback, their per-channel GEMMs each at its best
    point, summed (zeros for the other layers)."""
    gemms, counts, owner = [], [], []
    for index, gemm in enumerate(layers.gemms):
        if gemm.window is not None:
            for fallback, count in per_channel_gemms(gemm):
                gemms.append(fallback)
                counts.append(count)
                owner.append(index)
    dtype, device = layers.m.dtype, layers.m.device
    best = price_mappings(hw, LayerBatch.from_gemms(gemms, counts, device=device, dtype=dtype), constants,
                          latency=latency).best()
    H, L = best["cycles"].shape[0], len(layers.gemms)
    index = torch.tensor(owner, device=device).expand(H, -1)
    cycles = torch.zeros(H, L, dtype=dtype, device=device).scatter_add(1, index, best["cycles"].to(dtype))
    dram = torch.zeros(H, L, dtype=dtype, device=device).scatter_add(1, index, best["dram_bytes"].to(dtype))
    return cycles, dram, torch.isfinite(cycles)


# ---- what every point of a (hardware, layer) pair shares

@dataclass
class _Pairs:
    """Per (hardware, layer) pair: hardware values [H, 1] (``t``), layer values [1, L], their products [H, L]."""
    c: Constants
    latency: float                # the share of the memory latency each burst pays
    t: dict
    m: torch.Tensor
    k: torch.Tensor
    count: torch.Tensor
    m_tiles: torch.Tensor         # row tiles
    n_tiles: torch.Tensor         # column tiles
    avg_d: torch.Tensor           # digits of the average column tile
    max_d: torch.Tensor           # digits of the widest column tile
    param_slot: torch.Tensor      # [H, 1, 1]
    store_time: torch.Tensor      # one burst per array tile
    out_fits: torch.Tensor        # two output slots fit the output buffer
    out_bytes: torch.Tensor       # C, written once
    compute_pj: torch.Tensor      # the array's arithmetic, per GEMM

    @property
    def bus(self) -> torch.Tensor:
        return self.t["bus"]

    @property
    def dtype(self) -> torch.dtype:
        return self.m.dtype

    @property
    def device(self) -> torch.device:
        return self.m.device

    def load_time(self, nbytes):
        """One contiguous load: its beats, its bursts (each paying the latency) and its DMA commands."""
        c, bus = self.c, self.bus
        extra = (1,) * (nbytes.dim() - 2)             # hardware values broadcast over the trailing axes
        burst_bytes = torch.clamp(256 * bus, max=4096.0)
        commands = torch.ceil(nbytes / MAX_ROW_BYTES)
        bursts = torch.maximum(torch.ceil(nbytes / burst_bytes.reshape(*burst_bytes.shape, *extra)), commands)
        return nbytes / bus.reshape(*bus.shape, *extra) * c.beat + bursts * (self.latency + c.burst) + \
            commands * c.command

    @property
    def fetch(self) -> torch.Tensor:
        """[H, 1]: one command's share of the read channel: 16 bytes, fetched 128 bytes per request."""
        c = self.c
        return isa.COMMAND_BYTES / self.bus * c.beat + isa.COMMAND_BYTES / isa.FETCH_BYTES * (self.latency + c.burst)

    def fetch_time(self, commands):
        """The fetch of ``commands`` commands per point (one multiply: the grid is large and the model is bound by
        its passes over it)."""
        fetch = self.fetch
        return commands * fetch.reshape(*fetch.shape, *(1,) * (commands.dim() - 2))


def _pairs(hw: HardwareBatch, layers: LayerBatch, c: Constants, latency: float, digits: tuple | None) -> _Pairs:
    """Tile and digit counts of every pair, and the terms every grid point shares."""
    t = {name: v[:, None] for name, v in hw.t.items()}                   # [H, 1]
    m, k, count = (x[None, :] for x in (layers.m, layers.k, layers.count))   # [1, L]
    n_tiles, sum_d, max_d = tile_digits(hw, layers)
    if digits is not None:
        sum_d, max_d = digits
    m_tiles = torch.ceil(m / t["rows"])                                  # [H, L]
    avg_d = sum_d / n_tiles
    return _Pairs(
        c=c, latency=latency, t=t, m=m, k=k, count=count, m_tiles=m_tiles, n_tiles=n_tiles, avg_d=avg_d,
        max_d=max_d, param_slot=t["param_slot"][..., None],
        store_time=t["out_slot"] / t["bus"] * c.beat + latency + c.burst + c.command,
        out_fits=2 * t["out_slot"] <= t["out_buf"], out_bytes=m_tiles * n_tiles * t["out_slot"],
        # First of avg_d's uses, as it always was: autograd sums a tensor's gradients in the order of its uses.
        compute_pj=m_tiles * t["rows"] * k * n_tiles * t["cols"] * avg_d * (E_MULT8_PJ * t["g"] / 8 + E_ADD32_PJ))


# ---- resident points [H, L, E(bm), E(bn), order]

@dataclass
class _Blocks:
    """The resident grid: block extents and counts on their own axes [H, L, E] (bm, then bn), step counts on the
    whole grid [H, L, E, E], and the whole-K slots [H, L, 1]."""
    bm: torch.Tensor
    bn: torch.Tensor
    m_blocks: torch.Tensor
    n_blocks: torch.Tensor
    steps: torch.Tensor
    last_tiles: torch.Tensor      # the last step holds the edge blocks
    tiles_per_step: torch.Tensor  # the other steps share the rest evenly
    act_slot: torch.Tensor
    wgt_slot: torch.Tensor        # the average column tile
    fits: torch.Tensor            # [H, L, E, E]


def _blocks(p: _Pairs) -> _Blocks:
    """The block extents (powers of two, and the whole dimension; a power of two past the dimension repeats it and
    is masked), the steps they make, and which fit the buffers double-buffered."""
    t, k, bus = p.t, p.k, p.bus
    e = torch.arange(N_EXTENTS, dtype=p.dtype, device=p.device)
    bm, bn = _extent(e, p.m_tiles[..., None]), _extent(e, p.n_tiles[..., None])        # [H, L, E]
    fresh_m = (e >= EXTENT_BITS) | (2.0 ** e < p.m_tiles[..., None])
    fresh_n = (e >= EXTENT_BITS) | (2.0 ** e < p.n_tiles[..., None])
    act_slot = _round_up(k * t["p_act"], bus)[..., None]
    wgt_slot = _round_up(k * p.avg_d * t["p_wgt"], bus)[..., None]
    widest_slot = _round_up(k * p.max_d * t["p_wgt"], bus)[..., None]
    ok_m = fresh_m & (2 * bm * act_slot <= t["act_buf"][..., None])
    ok_n = fresh_n & (2 * bn * widest_slot <= t["wgt_buf"][..., None]) & \
        (2 * bn * p.param_slot <= t["param_buf"][..., None])
    fits = ok_m[..., :, None] & ok_n[..., None, :] & (k <= t["max_k"])[..., None, None] & \
        p.out_fits[..., None, None]
    m_blocks, n_blocks = torch.ceil(p.m_tiles[..., None] / bm), torch.ceil(p.n_tiles[..., None] / bn)
    steps = m_blocks[..., :, None] * n_blocks[..., None, :]
    last_tiles = (p.m_tiles[..., None] - (m_blocks - 1) * bm)[..., :, None] * \
        (p.n_tiles[..., None] - (n_blocks - 1) * bn)[..., None, :]
    tiles_per_step = torch.where(steps > 1, ((p.m_tiles * p.n_tiles)[..., None, None] - last_tiles) /
                                 (steps - 1).clamp(min=1), last_tiles)
    return _Blocks(bm=bm, bn=bn, m_blocks=m_blocks, n_blocks=n_blocks, steps=steps, last_tiles=last_tiles,
                   tiles_per_step=tiles_per_step, act_slot=act_slot, wgt_slot=wgt_slot, fits=fits)


@dataclass
class _StepTimes:
    """Per resident point [H, L, E, E]: a step's loads, its work, and what follows the last load."""
    a_load: torch.Tensor          # an activation block and the step's commands
    w_load: torch.Tensor          # a weight block and its parameters
    step_fetch: torch.Tensor      # the step's COMPUTEs and STOREs
    body: torch.Tensor            # the step's tiles
    tail: torch.Tensor


def _step_times(p: _Pairs, b: _Blocks) -> _StepTimes:
    c, t = p.c, p.t
    a_load = p.load_time(b.bm * b.act_slot)
    w_load = p.load_time(b.bn * b.wgt_slot) + p.load_time(b.bn * p.param_slot)
    # Tiles are pipelined: a tile's skew and drain overlap the next tile; only a tile shorter than the bank's turn
    # waits for the held bank.
    tile_time = torch.maximum(p.k * p.avg_d + c.tile_gap, t["bank"])[..., None, None]
    # Every step also fetches its commands (a COMPUTE and a STORE per tile) over the same read channel.
    step_fetch = p.fetch_time(2 * b.tiles_per_step)
    fetch = p.fetch[..., None, None]                    # one command, [H, 1, 1, 1]
    a_load = a_load[..., :, None] + step_fetch + fetch
    w_load = w_load[..., None, :] + 2 * fetch
    # A step is as slow as its slowest unit: the array, the stores, or the decoder (a COMPUTE and a STORE per tile).
    unit = torch.clamp(torch.maximum(tile_time, p.store_time[..., None, None]), min=2 * c.decode)
    # After the last load: the last step's tiles, each stored while the next computes, then the last one's drain and
    # store (not a unit: a store-bound tile would be counted twice), the first fetch, the last response.
    # (last_tiles - 1) * unit + tile_time + ..., with the per-pair terms summed first: two passes over the grid.
    tail = b.last_tiles * unit + (tile_time - unit + (t["bank"] + p.store_time)[..., None, None] + c.fixed +
                                  2 * p.latency)
    return _StepTimes(a_load=a_load, w_load=w_load, step_fetch=step_fetch, body=b.tiles_per_step * unit, tail=tail)


def _price_resident(p: _Pairs, cycles: torch.Tensor, dram: torch.Tensor, valid: torch.Tensor) -> None:
    """Fill the resident points: the first step loads both blocks; a step that moves the outer block too overlaps
    both loads with the previous step's work, the others only the inner block's."""
    b = _blocks(p)
    s = _step_times(p, b)
    both = s.a_load + s.w_load
    peak = torch.maximum(both, s.body)
    cycles[..., 0] = both + (b.n_blocks[..., None, :] - 1) * peak + \
        (b.steps - b.n_blocks[..., None, :]) * torch.maximum(s.a_load, s.body) + s.tail
    cycles[..., 1] = both + (b.m_blocks[..., :, None] - 1) * peak + \
        (b.steps - b.m_blocks[..., :, None]) * torch.maximum(s.w_load + s.step_fetch, s.body) + s.tail
    valid[..., 0] = b.fits
    valid[..., 1] = b.fits
    a_total = (p.m_tiles * b.act_slot[..., 0])[..., None, None]
    w_total = (p.n_tiles[..., None] * (b.wgt_slot + p.param_slot))[..., None]
    # C, and the program: a COMPUTE and a STORE per tile and the END, plus a load per block (two for a weight
    # block: its digit planes and its parameters), 16 bytes each.
    fixed_bytes = (p.out_bytes + isa.COMMAND_BYTES * (2 * p.m_tiles * p.n_tiles + 1))[..., None, None]
    per_step = isa.COMMAND_BYTES * b.steps
    dram[..., 0] = a_total * b.n_blocks[..., None, :] + (w_total + fixed_bytes) + \
        (per_step + 2 * isa.COMMAND_BYTES * b.n_blocks[..., None, :])                   # A again per weight block
    dram[..., 1] = (a_total + fixed_bytes) + w_total * b.m_blocks[..., :, None] + \
        (2 * per_step + isa.COMMAND_BYTES * b.m_blocks[..., :, None])                   # W again per act block


# ---- K split points [H, L, S]

@dataclass
class _Chunks:
    largest: torch.Tensor         # [H, L] the largest K chunk that fits
    kc: torch.Tensor              # [H, L, S] it and its halvings
    count: torch.Tensor           # chunks per tile
    k_last: torch.Tensor          # each tile's last chunk: shorter, and it drains and stores


def _chunks(p: _Pairs) -> _Chunks:
    t, k = p.t, p.k
    largest = torch.floor(torch.minimum(torch.minimum(t["act_buf"] / 2 / t["p_act"],
                                                      t["wgt_buf"] / 2 / (p.max_d * t["p_wgt"])),
                                        torch.minimum(t["max_k"], k)))
    s = torch.arange(K_SPLITS, dtype=p.dtype, device=p.device)
    kc = torch.floor(largest[..., None] / 2.0 ** s)
    count = torch.ceil(k[..., None] / kc.clamp(min=1))
    return _Chunks(largest=largest, kc=kc, count=count, k_last=k[..., None] - (count - 1) * kc)


def _chunk_step(p: _Pairs, ch: _Chunks, length: torch.Tensor, last: bool):
    """One chunk of one tile: its loads (A, W and parameters, and its commands), its time in the step (the last
    chunk waits for the previous tile's store), its bytes, and its own work."""
    c, t, bus = p.c, p.t, p.bus[..., None]
    p_act, p_wgt = t["p_act"][..., None], (p.avg_d * t["p_wgt"])[..., None]
    act, wgt = _round_up(length * p_act, bus), _round_up(length * p_wgt, bus)
    commands = 5.0 if last else 4.0               # three loads and a COMPUTE, and the STORE after the last
    load = p.load_time(act) + p.load_time(wgt) + p.load_time(p.param_slot.expand_as(length)) + \
        commands * p.fetch[..., None]
    tile = length * p.avg_d[..., None] + c.tile_gap
    if last:                                      # the emitting chunks are a bank's turn apart at least
        full = ch.kc * p.avg_d[..., None] + c.tile_gap
        tile = torch.maximum(tile, t["bank"][..., None] - (ch.count - 1) * full)
    work = torch.clamp(tile, min=commands * c.decode)
    body = torch.maximum(work, p.store_time[..., None]) if last else work
    return load, body, act + wgt + p.param_slot, work


def _price_split(p: _Pairs, cycles: torch.Tensor, dram: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Fill the K split points (bm = bn = 1, every tile loads its chunks in turn); return the largest chunk."""
    c, t, bus = p.c, p.t, p.bus[..., None]
    ch = _chunks(p)
    tiles = (p.m_tiles * p.n_tiles)[..., None]
    full_load, full_body, full_bytes, _ = _chunk_step(p, ch, ch.kc, last=False)
    last_load, last_body, last_bytes, last_work = _chunk_step(p, ch, ch.k_last, last=True)
    # The loads of a step overlap the previous step's work; the program ends with the last chunk's own work, its
    # drain and its store.
    cycles[...] = full_load + tiles * ((ch.count - 1) * torch.maximum(full_load, full_body) +
                                       torch.maximum(last_load, last_body)) - torch.maximum(last_load, last_body) + \
        last_work + (t["bank"] + p.store_time)[..., None] + c.fixed + 2 * p.latency
    # The program: three loads and a COMPUTE per chunk, a STORE per tile, the END; 16 bytes each.
    dram[...] = tiles * ((ch.count - 1) * full_bytes + last_bytes) + p.out_bytes[..., None] + \
        isa.COMMAND_BYTES * (tiles * (4 * ch.count + 1) + 1)
    valid[...] = (ch.kc >= 1) & (ch.kc < p.k[..., None]) & \
        (2 * _round_up(ch.kc * t["p_act"][..., None], bus) <= t["act_buf"][..., None]) & \
        (2 * _round_up(ch.kc * (p.max_d * t["p_wgt"])[..., None], bus) <= t["wgt_buf"][..., None]) & \
        (2 * p.param_slot <= t["param_buf"][..., None]) & p.out_fits[..., None]
    return ch.largest


# ---- depthwise layers [H, L]

def _price_depthwise(p: _Pairs, window: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cycles, DRAM bytes and fit of every layer's depthwise program (`codesign.compiler.depthwise`); meaningful
    where the layer is depthwise. Steps are bands (or a band's strips); the first step of a group loads its weights
    too."""
    c, t, bus = p.c, p.t, p.bus
    w = {name: v[None, :] for name, v in window.items()}                     # [1, L]
    kh, kw, s, pad = w["kh"].clamp(min=1), w["kw"].clamp(min=1), w["stride"].clamp(min=1), w["padding"]
    out_h = torch.floor((w["height"] + 2 * pad - kh) / s) + 1
    out_w = torch.floor((w["width"] + 2 * pad - kw) / s) + 1
    x_tiles = torch.ceil(out_w / t["rows"])                                   # [H, L]
    frame_w = torch.maximum(w["width"] + 2 * pad, (x_tiles * t["rows"] - 1) * s + kw)
    row_bytes = _round_up(frame_w * t["p_out"], bus)
    half = t["act_buf"] / 2
    # Strips (`codesign.compiler.depthwise.strip_geometry`) when kh whole frame rows do not fit a half.
    whole = (kh * row_bytes <= half) & (row_bytes < 1 << 16)
    slack = torch.where(torch.remainder(t["rows"] * s * t["p_out"], bus) == 0, 0.0,
                        torch.clamp(bus / t["p_out"] - 1, min=0))
    room = torch.minimum(torch.floor(half / kh / bus) * bus, 65536 - bus)
    fit_tiles = torch.floor((torch.floor(room / t["p_out"]) - kw - slack) / s + 1) / t["rows"]
    strip_tiles = torch.where(whole, x_tiles, torch.clamp(torch.floor(fit_tiles), max=x_tiles))
    strip_bytes = torch.where(whole, row_bytes, _round_up(
        ((strip_tiles.clamp(min=1) * t["rows"] - 1) * s + kw + slack) * t["p_out"], bus))
    strips = torch.ceil(x_tiles / strip_tiles.clamp(min=1))
    band_rows = torch.floor(half / strip_bytes)
    band_out = torch.minimum(out_h, torch.floor((band_rows - kh) / s) + 1).clamp(min=1)
    bands = torch.ceil(out_h / band_out)
    last_out = out_h - (bands - 1) * band_out
    band_in = (band_out - 1) * s + kh
    rows_read = (bands - 1) * band_in + (last_out - 1) * s + kh              # per group, image and strip
    groups, images = p.n_tiles, w["images"]
    steps = groups * images * bands * strips
    tiles = groups * images * out_h * x_tiles
    last_tiles = last_out * (x_tiles - (strips - 1) * strip_tiles)
    wgt_slot = _round_up(p.k * p.avg_d * t["p_wgt"], bus)
    fits = (strip_tiles >= 1) & (p.k <= t["max_k"]) & p.out_fits & \
        (2 * _round_up(p.k * p.max_d * t["p_wgt"], bus) <= t["wgt_buf"]) & (2 * t["param_slot"] <= t["param_buf"])
    chains = kh * torch.where((s == 2) & (kw > 1), 2.0, 1.0)
    tile_time = torch.maximum(chains * (t["rows"] - 1) + p.k * p.avg_d + c.tile_gap, t["bank"])
    unit = torch.clamp(torch.maximum(tile_time, p.store_time), min=2 * c.decode)
    per_step = torch.where(steps > 1, (tiles - last_tiles) / (steps - 1).clamp(min=1), last_tiles)
    # A band of whole rows is one contiguous load; a strip one 2-D command, a burst (or more) per row, each paying
    # the latency as the contiguous loads' bursts do.
    strip_load = band_in * strip_bytes / bus * c.beat + c.command + \
        band_in * torch.ceil(strip_bytes / torch.clamp(256 * bus, max=4096.0)) * (p.latency + c.burst)
    band_load = torch.where(strips > 1, strip_load, p.load_time(band_in * strip_bytes))
    a_load = band_load + p.fetch_time(2 * per_step) + p.fetch
    w_load = p.load_time(wgt_slot) + p.load_time(t["param_slot"].expand_as(wgt_slot)) + 2 * p.fetch
    both, body = a_load + w_load, per_step * unit
    tail = (last_tiles - 1) * unit + tile_time + t["bank"] + p.store_time + c.fixed + 2 * p.latency
    cycles = both + (groups - 1) * torch.maximum(both, body) + (steps - groups) * torch.maximum(a_load, body) + tail
    # The program: a load per step, a COMPUTE and a STORE per tile, two loads per group, the END; 16 bytes each.
    dram = groups * (images * strips * rows_read * strip_bytes + wgt_slot + t["param_slot"]) + tiles * t["out_slot"] + \
        isa.COMMAND_BYTES * (steps + 2 * tiles + 2 * groups + 1)
    return cycles, dram, fits


# ---- the grid [H, L, G]

def _totals(p: _Pairs, cycles: torch.Tensor, dram: torch.Tensor, valid: torch.Tensor, kc_largest: torch.Tensor,
            mask: bool) -> Costs:
    """Every point times the layer's count, its energy (DRAM traffic and the array's arithmetic), the masked points
    at infinity."""
    t = p.t
    cycles.mul_(p.count[..., None])
    dram.mul_(p.count[..., None])
    energy = dram * dram_pj_per_byte(t["act_buf"])[..., None] + (p.count * p.compute_pj)[..., None]
    if mask:
        cycles.masked_fill_(~valid, math.inf)
    return Costs(cycles=cycles, dram_bytes=dram, energy_pj=energy, valid=valid, m_tiles=p.m_tiles,
                 n_tiles=p.n_tiles, k=p.k.expand_as(p.m_tiles), kc_largest=kc_largest)


def grid_index(costs: Costs, h: int, layer: int, mapping: Mapping) -> int:
    """The grid point of ``mapping`` (grouped) for hardware ``h`` and layer ``layer``."""
    if mapping.kc:
        largest = float(costs.kc_largest[h, layer])
        for split in range(K_SPLITS):
            if math.floor(largest / 2 ** split) == mapping.kc:
                return N_RESIDENT + split
        raise KeyError(f"K chunk {mapping.kc} is not among the priced chunks of {largest:.0f} and its halvings")

    def exponent(extent: int, tiles: float) -> int:
        if extent == tiles:
            return EXTENT_BITS
        if extent & (extent - 1):
            raise KeyError(f"block extent {extent} is neither a power of two nor the whole dimension")
        return extent.bit_length() - 1

    bm_e = exponent(mapping.bm, float(costs.m_tiles[h, layer]))
    bn_e = exponent(mapping.bn, float(costs.n_tiles[h, layer]))
    return (bm_e * N_EXTENTS + bn_e) * 2 + (0 if mapping.order == "weights" else 1)


def _one_point(cfg: HardwareConfig, gemm: Gemm, mapping: Mapping, constants: Constants,
               latency: float) -> tuple[Costs, int]:
    costs = price_mappings(HardwareBatch.from_configs([cfg], dtype=torch.float64),
                           LayerBatch.from_gemms([gemm], dtype=torch.float64), constants, latency=latency, mask=False)
    return costs, 0 if gemm.window else grid_index(costs, 0, 0, mapping)


def predict(cfg: HardwareConfig, gemm: Gemm, mapping: Mapping, constants: Constants = Constants(), *,
            latency: float = 20.0) -> float:
    """The model's cycles for one mapping (the batched model on a batch of one); a depthwise GEMM has one program,
    whatever the mapping."""
    costs, point = _one_point(cfg, gemm, mapping, constants, latency)
    return float(costs.cycles[0, 0, point])


def predict_dram_bytes(cfg: HardwareConfig, gemm: Gemm, mapping: Mapping) -> float:
    """The model's DRAM bytes for one mapping, read and written, the program's own fetch included (what the
    accelerator's ``bytes_read`` and ``bytes_written`` counters count, to within the fetch's last bus beat)."""
    costs, point = _one_point(cfg, gemm, mapping, Constants(), 0.0)
    return float(costs.dram_bytes[0, 0, point])


def expected_tile_digits(bit_probs: torch.Tensor, bit_values, cols: int, g: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Expected digits of each column tile when output channel i has ``bit_values[b]`` bits with probability
    ``bit_probs[i, b]`` (independently): differentiable in ``bit_probs``.

    Channels are grouped by their expected bits (the order is not differentiated). A tile's digits are
    ``ceil(max bits / g)``, and ``E[D] = sum over d >= 1 of P(D >= d) = sum_d (1 - prod_i F_i((d - 1) g))`` with
    ``F_i`` channel i's cumulative distribution. Returns the sum over tiles and the largest tile's expectation.
    """
    values = torch.as_tensor(bit_values, dtype=bit_probs.dtype, device=bit_probs.device)
    order = torch.argsort((bit_probs * values).sum(-1).detach(), stable=True)
    probs = bit_probs[order]
    n = probs.shape[0]
    tiles = ceil_div(n, cols)
    probs = torch.cat([probs, probs.new_zeros(tiles * cols - n, probs.shape[1])]).reshape(tiles, cols, -1)
    d_max = int(math.ceil(float(values.max()) / g))
    thresholds = g * torch.arange(d_max, dtype=values.dtype, device=values.device)        # (d - 1) g, d = 1..
    below = (values[None, :] <= thresholds[:, None]).to(probs.dtype)                        # [d, B]
    cdf = torch.einsum("tcb,db->tcd", probs, below)                                          # F_i((d-1) g)
    padding = torch.arange(tiles * cols, device=probs.device).reshape(tiles, cols) >= n    # padded: always <= any
    cdf = torch.where(padding[..., None], torch.ones_like(cdf), cdf)
    expected = (1 - cdf.prod(dim=1)).sum(-1)                                                # [tiles]
    return expected.sum(), expected.max()

