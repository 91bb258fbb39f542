"""BatchTile: the cost of every mapping of every layer on every hardware candidate, as one batched tensor program.

Shapes: H hardware candidates x L layer GEMMs x G mapping-grid points. The grid is the mapping space of
`codesign.mapping`: activation-block extents ``bm`` and weight-block extents ``bn`` (powers of two below the
dimension, and the whole dimension), both loop orders, and K chunks (the largest that fits, then halvings). Channel
grouping is always on: sorting channels by bits minimizes the sum over column tiles of their widest column, so the
ungrouped mappings are dominated. Points that do not fit the buffers, or repeat another point, are masked.

The cycle model follows the compiler's program (`codesign.compiler`) step by step. A step loads a group of blocks
and runs the tiles that use them; with two buffer halves, a step's loads overlap the previous step's computes and
stores, so

    cycles = L_first + sum over the other steps of max(L_next, C, S) + C_last + fixed

with, per step, ``L`` the load time (beats, bursts, commands), ``C`` the array time (`codesign.timing` per tile
plus a per-tile gap) and ``S`` the store time. Blocks at the edges are averaged (the mean tiles per block), so
the model is exact for dimensions that divide and close otherwise. The free constants (`Constants`) are fitted to
RTL measurements by `codesign.calibrate`; without `build/calibration.json` the defaults apply and
`load_constants` says so.

Energy uses per-access figures from Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm): DRAM 1.3-2.6 nJ per
64-bit access (we take 2.0 nJ: 250 pJ/byte), SRAM 10 pJ per 64-bit read at 8 KiB growing with the square root of
the size, an 8-bit multiply 0.2 pJ and a 32-bit add 0.1 pJ (a g-bit digit product costs g/8 of the multiply).
Area is per hardware: the PE table (`codesign/data/pe_area.json`, iCE40 LUTs per PE) times the PEs, plus block
RAMs for the buffers.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import torch

from . import isa
from .config import HardwareConfig
from .mapping import K_SPLITS, MAX_ROW_BYTES, Gemm, Mapping
from .timing import REQUANT_LATENCY

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
    calibrated: bool = False


def load_constants(path: Path = CALIBRATION_PATH) -> Constants:
    """The fitted constants when ``path`` exists, else the defaults (and a warning: the model is uncalibrated)."""
    if path.is_file():
        fit = json.loads(path.read_text())["constants"]
        return Constants(**{k: float(v) for k, v in fit.items() if k != "calibrated"}, calibrated=True)
    import warnings

    warnings.warn(f"{path} not found: the cost model runs uncalibrated (make calibrate)", stacklevel=2)
    return Constants()


# ---- inputs as tensors

@dataclass
class HardwareBatch:
    configs: list[HardwareConfig]
    t: dict                      # name -> float tensor [H]

    @classmethod
    def from_configs(cls, configs: list[HardwareConfig], device: str = "cpu") -> HardwareBatch:
        rows = []
        for cfg in configs:
            words = isa.word_bytes(cfg)
            rows.append({
                "rows": cfg.rows, "cols": cfg.cols, "g": cfg.digit_bits, "bus": words.bus, "max_k": cfg.max_k,
                "act_buf": cfg.act_buf_bytes, "wgt_buf": cfg.wgt_buf_bytes, "out_buf": cfg.out_buf_bytes,
                "param_buf": cfg.param_buf_bytes, "p_act": words.act, "p_wgt": words.wgt, "p_out": words.out,
                "param_slot": _round_up(words.param, words.bus),
                "out_slot": _round_up(cfg.rows * words.out, words.bus),
                "fill": cfg.rows + cfg.cols - 1, "drain": cfg.rows + REQUANT_LATENCY,
                "area_luts": area_luts(cfg), "brams": brams(cfg),
            })
        t = {k: torch.tensor([r[k] for r in rows], dtype=torch.float64, device=device) for k in rows[0]}
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

    @classmethod
    def from_gemms(cls, gemms: list[Gemm], counts=None, names=None, device: str = "cpu") -> LayerBatch:
        n_max = max(g.n for g in gemms)
        bits = torch.stack([torch.nn.functional.pad(torch.sort(torch.tensor(g.bits, dtype=torch.float64)).values,
                                                    (0, n_max - g.n), value=float(max(g.bits))) for g in gemms])

        def col(values):
            return torch.tensor(values, dtype=torch.float64, device=device)

        return cls(gemms, col(counts or [1] * len(gemms)), col([g.m for g in gemms]), col([g.k for g in gemms]),
                   col([g.n for g in gemms]), bits.to(device), names or [f"gemm{i}" for i in range(len(gemms))])


def area_luts(cfg: HardwareConfig) -> float:
    """PE LUTs from the committed PE table (nearest weight width at or above the config's) times the PEs."""
    table = json.loads(resources.files("codesign.data").joinpath("pe_area.json").read_text())["rows"]
    rows = [r for r in table if r["digit_bits"] == cfg.digit_bits and r["weight_bits_max"] >= cfg.weight_bits_max]
    row = min(rows, key=lambda r: r["weight_bits_max"]) if rows else max(
        (r for r in table if r["digit_bits"] == cfg.digit_bits), key=lambda r: r["weight_bits_max"])
    return float(row["luts"] * cfg.rows * cfg.cols)


def brams(cfg: HardwareConfig) -> float:
    return float(sum(-(-b // BRAM_BYTES) for b in (cfg.act_buf_bytes, cfg.wgt_buf_bytes, cfg.out_buf_bytes,
                                                    cfg.param_buf_bytes)))


def _round_up(value, step):
    return -(-value // step) * step


# ---- the model

@dataclass
class Costs:
    cycles: torch.Tensor         # [H, L, G], +inf where the point is masked
    dram_bytes: torch.Tensor     # [H, L, G]
    energy_pj: torch.Tensor      # [H, L, G]
    valid: torch.Tensor          # [H, L, G] bool
    grid: dict                   # the grid's coordinates: name -> tensor [H, L, G]

    def best(self) -> dict:
        """Per (hardware, layer): the cheapest valid point's index, cycles, bytes and energy."""
        cycles, index = self.cycles.min(dim=-1)
        pick = index.unsqueeze(-1)
        return {"index": index, "cycles": cycles, "dram_bytes": self.dram_bytes.gather(-1, pick).squeeze(-1),
                "energy_pj": self.energy_pj.gather(-1, pick).squeeze(-1),
                **{k: v.gather(-1, pick).squeeze(-1) for k, v in self.grid.items()}}


def tile_digits(hw: HardwareBatch, layers: LayerBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per (hardware, layer): column tiles, the sum of their digits, and the widest tile's digits, channels grouped
    by bits: column tile j's widest column is sorted channel ``min((j + 1) * cols, N) - 1``."""
    cols, g = hw.t["cols"][:, None, None], hw.t["g"][:, None, None]
    n = layers.n[None, :, None]
    n_tiles = torch.ceil(layers.n[None, :] / hw.t["cols"][:, None])                       # [H, L]
    j = torch.arange(int(n_tiles.max()), dtype=torch.float64, device=n.device)[None, None, :]
    last = torch.minimum((j + 1) * cols, n) - 1                                             # [H, L, J]
    bits = layers.sorted_bits[None].expand(len(hw.configs), -1, -1).gather(-1, last.long().clamp(min=0))
    digits = torch.ceil(bits / g) * (j < n_tiles[..., None])
    return n_tiles, digits.sum(-1), digits.max(-1).values


def grid_points(device: str = "cpu") -> dict:
    """The G grid coordinates: extent exponents (``EXTENT_BITS`` means the whole dimension), order, K split."""
    e = torch.arange(EXTENT_BITS + 1)
    bm, bn, order = torch.meshgrid(e, e, torch.arange(2), indexing="ij")
    resident = {"bm_exp": bm.flatten(), "bn_exp": bn.flatten(), "order": order.flatten(),
                "split": torch.zeros(bm.numel(), dtype=torch.long)}
    splits = torch.arange(1, K_SPLITS + 1)
    split = {"bm_exp": torch.zeros(K_SPLITS, dtype=torch.long), "bn_exp": torch.zeros(K_SPLITS, dtype=torch.long),
             "order": torch.zeros(K_SPLITS, dtype=torch.long), "split": splits}
    return {k: torch.cat([resident[k], split[k]]).to(device) for k in resident}


def price_mappings(hw: HardwareBatch, layers: LayerBatch, constants: Constants = Constants(), *,
                   latency: float = 20.0, mask: bool = True) -> Costs:
    """Cycles, DRAM bytes and energy of every grid point on every (hardware, layer); see the module docstring."""
    c = constants
    t = {k: v[:, None, None] for k, v in hw.t.items()}                  # [H, 1, 1]
    m, k, count = (x[None, :, None] for x in (layers.m, layers.k, layers.count))
    grid = {name: v[None, None, :].to(torch.float64) for name, v in grid_points(layers.m.device).items()}
    bus = t["bus"]

    m_tiles = torch.ceil(m / t["rows"])
    n_tiles, sum_d, max_d = (x[..., None] for x in tile_digits(hw, layers))
    avg_d = sum_d / n_tiles

    def extent(exp, tiles):
        return torch.where(exp >= EXTENT_BITS, tiles, torch.minimum(2.0 ** exp, tiles))

    bm, bn = extent(grid["bm_exp"], m_tiles), extent(grid["bn_exp"], n_tiles)
    # A point repeats another when its power of two reaches the whole dimension.
    split = grid["split"] > 0
    fresh = split | (((grid["bm_exp"] >= EXTENT_BITS) | (2.0 ** grid["bm_exp"] < m_tiles)) &
                     ((grid["bn_exp"] >= EXTENT_BITS) | (2.0 ** grid["bn_exp"] < n_tiles)))

    # ---- K chunk: the whole K (resident), or the largest that fits and its halvings
    kc_largest = torch.floor(torch.minimum(torch.minimum(t["act_buf"] / 2 / t["p_act"],
                                                         t["wgt_buf"] / 2 / (max_d * t["p_wgt"])),
                                           torch.minimum(t["max_k"], k)))
    kc = torch.where(split, torch.floor(kc_largest / 2.0 ** (grid["split"] - 1)), k)
    chunks = torch.ceil(k / kc.clamp(min=1))
    act_slot = _ceil_to(kc * t["p_act"], bus)
    wgt_slot_max = _ceil_to(kc * max_d * t["p_wgt"], bus)
    valid = fresh & (kc >= 1) & (kc <= t["max_k"]) & torch.where(split, kc < k, k <= t["max_k"])
    valid &= 2 * bm * act_slot <= t["act_buf"]
    valid &= 2 * bn * wgt_slot_max <= t["wgt_buf"]
    valid &= 2 * bn * t["param_slot"] <= t["param_buf"]
    valid &= 2 * t["out_slot"] <= t["out_buf"]

    # ---- one step of each kind
    def load_time(nbytes):
        commands = torch.ceil(nbytes / MAX_ROW_BYTES)
        bursts = torch.maximum(torch.ceil(nbytes / torch.minimum(256 * bus, torch.full_like(bus, 4096.0))), commands)
        return nbytes / bus * c.beat + bursts * (latency + c.burst) + commands * c.command

    wgt_bytes_per_tile = _ceil_to(kc * avg_d * t["p_wgt"], bus)
    a_load = load_time(bm * act_slot)
    w_load = load_time(bn * wgt_bytes_per_tile) + load_time(bn * t["param_slot"])
    m_blocks, n_blocks = torch.ceil(m_tiles / bm), torch.ceil(n_tiles / bn)
    tiles_per_step = (m_tiles / m_blocks) * (n_tiles / n_blocks)
    tile_time = kc * avg_d + t["fill"] + torch.where(split, t["drain"] / chunks, t["drain"]) + c.tile_gap
    store_time = (t["out_slot"] / bus * c.beat + latency + c.burst + c.command) / torch.where(split, chunks, 1.0)
    compute = tiles_per_step * tile_time
    stores = tiles_per_step * store_time

    weights_outer = grid["order"] == 0
    steps = torch.where(split, m_tiles * n_tiles * chunks, m_blocks * n_blocks)
    firsts = torch.where(split, steps, torch.where(weights_outer, n_blocks, m_blocks))   # steps loading both
    both = a_load + w_load
    streaming = torch.where(weights_outer, a_load, w_load)
    body = torch.maximum(compute, stores)
    cycles = both + (firsts - 1) * torch.maximum(both, body) + (steps - firsts) * torch.maximum(streaming, body) \
        + compute + store_time + c.fixed
    cycles = cycles * count

    # ---- DRAM traffic and energy
    # How often each operand is loaded: per array tile with a K split, else once per outer block of the other.
    a_loads = torch.where(split, n_tiles, torch.where(weights_outer, n_blocks, 1.0))
    w_loads = torch.where(split, m_tiles, torch.where(weights_outer, 1.0, m_blocks))
    a_bytes = m_tiles * act_slot * chunks * a_loads
    w_bytes = n_tiles * (wgt_bytes_per_tile + t["param_slot"]) * chunks * w_loads
    out_bytes = m_tiles * n_tiles * t["out_slot"]
    dram = (a_bytes + w_bytes + out_bytes) * count
    sram_pj = E_SRAM_PJ_PER_BYTE_8KIB * torch.sqrt(t["act_buf"] / 8192)
    digit_ops = m_tiles * t["rows"] * k * n_tiles * t["cols"] * avg_d
    energy = dram * E_DRAM_PJ_PER_BYTE + 2 * dram * sram_pj + \
        count * digit_ops * (E_MULT8_PJ * t["g"] / 8 + E_ADD32_PJ)

    inf = torch.tensor(math.inf, dtype=torch.float64, device=cycles.device)
    shape = cycles.shape
    return Costs(cycles=torch.where(valid, cycles, inf) if mask else cycles, dram_bytes=dram.expand(shape),
                 energy_pj=energy.expand(shape), valid=valid.expand(shape),
                 grid={"bm": bm.expand(shape), "bn": bn.expand(shape), "kc": kc.expand(shape),
                       "order": grid["order"].expand(shape), "split": grid["split"].expand(shape)})


def _ceil_to(value, step):
    return torch.ceil(value / step) * step


def constants_dict(constants: Constants) -> dict:
    return asdict(constants)


def grid_index(costs: Costs, h: int, layer: int, mapping: Mapping) -> int:
    """The grid point of ``mapping`` (grouped) for hardware ``h`` and layer ``layer``."""
    g = {k: v[h, layer] for k, v in costs.grid.items()}
    order = 0 if mapping.order == "weights" else 1
    if mapping.kc:
        hits = (g["split"] > 0) & (g["kc"] == mapping.kc)
    else:
        hits = (g["split"] == 0) & (g["bm"] == mapping.bm) & (g["bn"] == mapping.bn) & (g["order"] == order)
    found = torch.nonzero(hits).flatten()
    if len(found) == 0:
        raise KeyError(f"mapping {mapping} is not in the priced space")
    return int(found[0])


def predict(cfg: HardwareConfig, gemm: Gemm, mapping: Mapping, constants: Constants = Constants(), *,
            latency: float = 20.0) -> float:
    """The model's cycles for one mapping (the batched model on a batch of one)."""
    costs = price_mappings(HardwareBatch.from_configs([cfg]), LayerBatch.from_gemms([gemm]), constants,
                           latency=latency, mask=False)
    return float(costs.cycles[0, 0, grid_index(costs, 0, 0, mapping)])
