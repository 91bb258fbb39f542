"""The BatchTile search as a straightforward Python loop: BatchTile's oracle, and the baseline
`codesign.bench.batchtile` times it against.

For each hardware, each layer GEMM and each point of the mapping grid, in the order of
`codesign.compiler.batchtile.Costs` (the resident points ``(bm extent, bn extent, order)`` with order fastest, then the
``K_SPLITS`` K chunks), the cycles are computed with plain Python floats, one point at a time, by the formulas of
`codesign.compiler.batchtile.price_mappings` written out line by line; points that do not fit (or repeat another
point) are skipped, and the cheapest point is kept. No torch or numpy runs in the loop, so this is what the search
would cost without the batched tensor program, and, written independently of it, a check on its indexing.
When `price_mappings` changes, this loop changes with it: `tests/codesign/compiler/test_batchtile.py` compares the two
point by point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from codesign.compiler.batchtile import EXTENT_BITS, N_EXTENTS, N_RESIDENT, Constants
from codesign.compiler.depthwise import per_channel_gemms, plan_depthwise
from codesign.compiler.mapping import K_SPLITS, MAX_ROW_BYTES, Gemm, Mapping, enumerate_mappings
from codesign.errors import InputError
from codesign.hw import isa
from codesign.hw.config import HardwareConfig, ceil_div
from codesign.hw.timing import bank_cycles, depthwise_chains

GRID_POINTS = N_RESIDENT + K_SPLITS


@dataclass
class NaiveSearch:
    """Per hardware: per layer, the grid's cycles (inf where masked), the first cheapest index (-1 when nothing
    fits) and its cycles; and the network total of the best cycles."""
    cycles: list[list[list[float]]]      # [H][L][G]
    index: list[list[int]]               # [H][L]
    best: list[list[float]]              # [H][L]
    totals: list[float]                  # [H]


def _round_up(value: float, step: float) -> float:
    """BatchTile's ``_round_up`` on plain floats (sizes are fractional where digits are averaged)."""
    return math.ceil(value / step) * step


def _extent(exponent: int, tiles: float) -> float:
    return tiles if exponent >= EXTENT_BITS else min(2.0 ** exponent, tiles)


def tile_digits(cfg: HardwareConfig, gemm: Gemm) -> tuple[float, float, float]:
    """Column tiles, the sum of their digits and the widest tile's digits, channels sorted by bits (as
    `codesign.compiler.batchtile.tile_digits`: tile j's widest column is sorted channel
    ``min((j + 1) * cols, N) - 1``)."""
    bits = sorted(gemm.bits)
    n_tiles = ceil_div(gemm.n, cfg.cols)
    digits = [ceil_div(bits[min((j + 1) * cfg.cols, gemm.n) - 1], cfg.digit_bits) for j in range(n_tiles)]
    return float(n_tiles), float(sum(digits)), float(max(digits))


@dataclass(frozen=True)
class _Pair:
    """What every grid point of one GEMM on one config shares (BatchTile's [H, L] tensors, for one pair)."""
    constants: Constants
    latency: float
    count: float
    k: float
    bus: float
    burst_bytes: float
    m_tiles: float
    n_tiles: float
    avg_d: float
    max_d: float
    p_act: float
    p_wgt: float
    param_slot: float
    bank: float
    max_k: float
    act_buf: float
    wgt_buf: float
    param_buf: float
    out_fits: bool
    store_time: float
    act_slot: float             # whole K
    wgt_slot: float             # whole K, the average column tile
    widest_slot: float          # whole K, the widest column tile
    kc_largest: float


def _pair(cfg: HardwareConfig, gemm: Gemm, count: int, c: Constants, latency: float) -> _Pair:
    latency = latency * c.latency_scale
    words = isa.word_bytes(cfg)
    bus = float(words.bus)
    param_slot = float(ceil_div(words.param, words.bus) * words.bus)
    out_slot = float(ceil_div(cfg.rows * words.out, words.bus) * words.bus)
    k, p_act, p_wgt = float(gemm.k), float(words.act), float(words.wgt)
    n_tiles, sum_d, max_d = tile_digits(cfg, gemm)
    avg_d = sum_d / n_tiles
    act_buf, wgt_buf = float(cfg.act_buf_bytes), float(cfg.wgt_buf_bytes)
    return _Pair(
        constants=c, latency=latency, count=float(count), k=k, bus=bus, burst_bytes=min(256 * bus, 4096.0),
        m_tiles=float(ceil_div(gemm.m, cfg.rows)), n_tiles=n_tiles, avg_d=avg_d, max_d=max_d, p_act=p_act,
        p_wgt=p_wgt, param_slot=param_slot, bank=float(bank_cycles(cfg)),
        max_k=float(cfg.max_k), act_buf=act_buf, wgt_buf=wgt_buf,
        param_buf=float(cfg.param_buf_bytes), out_fits=2 * out_slot <= cfg.out_buf_bytes,
        store_time=out_slot / bus * c.beat + latency + c.burst + c.command,
        act_slot=_round_up(k * p_act, bus), wgt_slot=_round_up(k * avg_d * p_wgt, bus),
        widest_slot=_round_up(k * max_d * p_wgt, bus),
        kc_largest=math.floor(min(act_buf / 2 / p_act, wgt_buf / 2 / (max_d * p_wgt), float(cfg.max_k), k)))


def _load_time(p: _Pair, nbytes: float) -> float:
    c = p.constants
    commands = math.ceil(nbytes / MAX_ROW_BYTES)
    bursts = max(math.ceil(nbytes / p.burst_bytes), commands)
    return nbytes / p.bus * c.beat + bursts * (p.latency + c.burst) + commands * c.command


def _fetch_time(p: _Pair, commands: float) -> float:
    """The program's share of the read channel: its commands, fetched `isa.FETCH_BYTES` per request."""
    c = p.constants
    return commands * isa.COMMAND_BYTES / p.bus * c.beat + \
        commands * isa.COMMAND_BYTES / isa.FETCH_BYTES * (p.latency + c.burst)


def _resident_point(p: _Pair, bm_e: int, bn_e: int, order: int) -> float:
    """Blocks of ``bm`` row tiles and ``bn`` column tiles stay resident; order 0 keeps weights outer."""
    bm, bn = _extent(bm_e, p.m_tiles), _extent(bn_e, p.n_tiles)
    fits = (bm_e >= EXTENT_BITS or 2.0 ** bm_e < p.m_tiles) and 2 * bm * p.act_slot <= p.act_buf and \
        (bn_e >= EXTENT_BITS or 2.0 ** bn_e < p.n_tiles) and 2 * bn * p.widest_slot <= p.wgt_buf and \
        2 * bn * p.param_slot <= p.param_buf and p.k <= p.max_k and p.out_fits
    if not fits:
        return math.inf
    c = p.constants
    m_blocks, n_blocks = math.ceil(p.m_tiles / bm), math.ceil(p.n_tiles / bn)
    tile_time = max(p.k * p.avg_d + c.tile_gap, p.bank)     # pipelined tiles; a short one waits for the bank
    steps = m_blocks * n_blocks
    last_tiles = (p.m_tiles - (m_blocks - 1) * bm) * (p.n_tiles - (n_blocks - 1) * bn)
    tiles_per_step = (p.m_tiles * p.n_tiles - last_tiles) / (steps - 1) if steps > 1 else last_tiles
    step_fetch = _fetch_time(p, 2 * tiles_per_step)          # a COMPUTE and a STORE per tile
    a_load = _load_time(p, bm * p.act_slot) + step_fetch + _fetch_time(p, 1)
    w_load = _load_time(p, bn * p.wgt_slot) + _load_time(p, bn * p.param_slot) + _fetch_time(p, 2)
    unit = max(tile_time, p.store_time, 2 * c.decode)
    body = tiles_per_step * unit
    both = a_load + w_load
    tail = (last_tiles - 1) * unit + tile_time + p.bank + p.store_time + c.fixed + 2 * p.latency
    if order == 0:
        cycles = both + (n_blocks - 1) * max(both, body) + (steps - n_blocks) * max(a_load, body) + tail
    else:
        cycles = both + (m_blocks - 1) * max(both, body) + (steps - m_blocks) * max(w_load + step_fetch, body) + \
            tail
    return cycles * p.count


def _depthwise_point(p: _Pair, cfg: HardwareConfig, gemm: Gemm) -> float:
    """A depthwise layer's one program, its geometry from the compiler's own plan (`plan_depthwise`, which also
    decides whether it fits): groups outer, bands inner."""
    try:
        plan = plan_depthwise(cfg, gemm)
    except InputError:
        return math.inf
    c, window = p.constants, gemm.window
    kh, kw = window.kernel
    bands = plan.bands()
    steps = plan.steps
    last_tiles = len(bands[-1]) * (plan.x_tiles - (plan.strips - 1) * plan.strip_tiles)
    per_step = (plan.tiles - last_tiles) / (steps - 1) if steps > 1 else last_tiles
    chains = len(depthwise_chains(kh, kw, window.stride))
    tile_time = max(chains * (cfg.rows - 1) + p.k * p.avg_d + c.tile_gap, p.bank)
    unit = max(tile_time, p.store_time, 2 * c.decode)
    rows = plan.band_in()
    if plan.strips > 1:                       # one 2-D command, a burst (or more) per row
        band_load = rows * plan.strip_bytes / p.bus * c.beat + c.command + \
            rows * math.ceil(plan.strip_bytes / p.burst_bytes) * (p.latency + c.burst)
    else:
        band_load = _load_time(p, rows * plan.strip_bytes)
    a_load = band_load + _fetch_time(p, 2 * per_step) + _fetch_time(p, 1)
    w_load = _load_time(p, p.wgt_slot) + _load_time(p, p.param_slot) + _fetch_time(p, 2)
    both, body = a_load + w_load, per_step * unit
    tail = (last_tiles - 1) * unit + tile_time + p.bank + p.store_time + c.fixed + 2 * p.latency
    cycles = both + (plan.groups - 1) * max(both, body) + (steps - plan.groups) * max(a_load, body) + tail
    return cycles * p.count


def _fallback_point(cfg: HardwareConfig, gemm: Gemm, count: int, constants: Constants, latency: float) -> float:
    """A depthwise layer as one N = 1 GEMM per channel, each at its cheapest point."""
    return count * sum(min(price_grid(cfg, fallback, n, constants, latency=latency))
                       for fallback, n in per_channel_gemms(gemm))


def _split_point(p: _Pair, split: int) -> float:
    """Bm = bn = 1 and K in chunks of the largest chunk that fits, halved ``split`` times."""
    kc = math.floor(p.kc_largest / 2.0 ** split)
    split_act = _round_up(kc * p.p_act, p.bus)
    fits = 1 <= kc < p.k and 2 * split_act <= p.act_buf and \
        2 * _round_up(kc * (p.max_d * p.p_wgt), p.bus) <= p.wgt_buf and 2 * p.param_slot <= p.param_buf and p.out_fits
    if not fits:
        return math.inf
    c = p.constants
    chunks = math.ceil(p.k / kc)
    k_last = p.k - (chunks - 1) * kc
    tiles = p.m_tiles * p.n_tiles

    def chunk_step(length: float, last: bool) -> tuple[float, float, float]:
        commands = 5.0 if last else 4.0
        load = _load_time(p, _round_up(length * p.p_act, p.bus)) + \
            _load_time(p, _round_up(length * (p.avg_d * p.p_wgt), p.bus)) + _load_time(p, p.param_slot) + \
            _fetch_time(p, commands)
        tile = length * p.avg_d + c.tile_gap
        if last:                                  # the emitting chunks are a bank's turn apart at least
            tile = max(tile, p.bank - (chunks - 1) * (kc * p.avg_d + c.tile_gap))
        work = max(tile, commands * c.decode)
        return load, max(work, p.store_time) if last else work, work

    full_load, full_body, _ = chunk_step(kc, last=False)
    last_load, last_body, last_work = chunk_step(k_last, last=True)
    cycles = full_load + tiles * ((chunks - 1) * max(full_load, full_body) + max(last_load, last_body)) - \
        max(last_load, last_body) + last_work + p.bank + p.store_time + c.fixed + 2 * p.latency
    return cycles * p.count


def price_grid(cfg: HardwareConfig, gemm: Gemm, count: int = 1, constants: Constants = Constants(), *,
               latency: float = 20.0) -> list[float]:
    """Cycles of every grid point of ``gemm`` on ``cfg`` (times ``count``), ``math.inf`` where the point is masked.
    A point's fit is checked first and only the points that fit are priced, as a loop would."""
    p = _pair(cfg, gemm, count, constants, latency)
    if gemm.window is not None:
        return [_depthwise_point(p, cfg, gemm), _fallback_point(cfg, gemm, count, constants, latency)] + \
            [math.inf] * (GRID_POINTS - 2)
    cycles = []
    for index in range(GRID_POINTS):
        if index < N_RESIDENT:
            cycles.append(_resident_point(p, index // (N_EXTENTS * 2), (index // 2) % N_EXTENTS, index % 2))
        else:
            cycles.append(_split_point(p, index - N_RESIDENT))
    return cycles


def search(configs: list[HardwareConfig], gemms: list[Gemm], counts: list[int] | None = None,
           constants: Constants = Constants(), *, latency: float = 20.0) -> NaiveSearch:
    """Price every grid point of every GEMM on every config, one at a time, and keep the cheapest per pair."""
    counts = counts or [1] * len(gemms)
    result = NaiveSearch([], [], [], [])
    for cfg in configs:
        grids, indices, bests = [], [], []
        for gemm, count in zip(gemms, counts):
            grid = price_grid(cfg, gemm, count, constants, latency=latency)
            index, best = -1, math.inf
            for i, value in enumerate(grid):
                if value < best:
                    index, best = i, value
            grids.append(grid)
            indices.append(index)
            bests.append(best)
        result.cycles.append(grids)
        result.index.append(indices)
        result.best.append(bests)
        result.totals.append(sum(bests))
    return result


def price_mapping(cfg: HardwareConfig, gemm: Gemm, mapping: Mapping, count: int = 1,
                  constants: Constants = Constants(), *, latency: float = 20.0) -> float:
    """One mapping's cycles by the same formulas: what a caller without BatchTile uses one mapping at a time."""
    p = _pair(cfg, gemm, count, constants, latency)
    if gemm.window is not None:
        return min(_depthwise_point(p, cfg, gemm), _fallback_point(cfg, gemm, count, constants, latency))
    if mapping.kc:
        for split in range(K_SPLITS):
            if math.floor(p.kc_largest / 2.0 ** split) == mapping.kc:
                return _split_point(p, split)
        return math.inf

    def exponent(extent: int, tiles: float) -> int:
        return EXTENT_BITS if extent == tiles else extent.bit_length() - 1

    return _resident_point(p, exponent(mapping.bm, p.m_tiles), exponent(mapping.bn, p.n_tiles),
                           0 if mapping.order == "weights" else 1)


def api_search(configs: list[HardwareConfig], gemms: list[Gemm], counts: list[int],
               constants: Constants = Constants(), *, latency: float = 20.0) -> list[list[float]]:
    """The search written with the library's one-mapping API: for every (hardware, layer), enumerate the valid
    mappings (`codesign.compiler.mapping.enumerate_mappings`, the compiler's own fit checks) and price each one."""
    best = []
    for cfg in configs:
        row = []
        for gemm, count in zip(gemms, counts):
            mappings = [Mapping()] if gemm.window is not None else enumerate_mappings(cfg, gemm)
            row.append(min((price_mapping(cfg, gemm, mp, count, constants, latency=latency) for mp in mappings),
                           default=math.inf))
        best.append(row)
    return best
