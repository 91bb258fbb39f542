"""`map_layers`: the best mapping of every layer on one accelerator, chosen by BatchTile (`codesign map`)."""

from __future__ import annotations

from codesign.compiler.batchtile import Constants, HardwareBatch, LayerBatch, load_constants, price_mappings
from codesign.compiler.depthwise import per_channel_gemms, plan_depthwise
from codesign.compiler.mapping import Gemm, Mapping, check_fits, plan, simple_mapping
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.ir.layers import Layer, check_layer_bits, gemms, placement


def best_mappings(cfg: HardwareConfig, entries: list[tuple[str, Gemm, int]], constants: Constants, *,
                  latency: float) -> list[dict]:
    """Per (name, GEMM, count): the cheapest mapping and its predicted cycles, DRAM bytes and energy. A GEMM
    that no mapping fits is an error naming it and the buffer that is too small. A depthwise GEMM (one with a
    window) runs as one program of the compiler's (`codesign.compiler.depthwise`, ``depthwise`` true, its
    ``mapping`` the default) or, where that is dearer or does not fit, as its per-channel GEMMs, whose own best
    mappings are under ``fallback``."""
    costs = price_mappings(HardwareBatch.from_configs([cfg]), LayerBatch.from_gemms(
        [g for _, g, _ in entries], counts=[c for _, _, c in entries]), constants, latency=latency)
    best = {key: value[0] for key, value in costs.best().items()}
    results = []
    for i, (name, gemm, count) in enumerate(entries):
        if not bool(costs.valid[0, i].any()):
            if gemm.window is not None:
                plan_depthwise(cfg, gemm, name)                                  # raises, naming the buffer
            else:
                check_fits(plan(cfg, gemm, simple_mapping(cfg, gemm, name)), name)
            raise InputError(name, f"M={gemm.m} K={gemm.k} N={gemm.n}", "a GEMM that some mapping fits")
        mapping = Mapping(bm=int(best["bm"][i]), bn=int(best["bn"][i]), kc=int(best["kc"][i]),
                          order=("weights", "acts")[int(best["order"][i])], group=True)
        windowed = gemm.window is not None and int(best["index"][i]) == 0
        extra = {}
        if gemm.window is not None:
            mapping = Mapping()
            if not windowed:
                extra["fallback"] = best_mappings(cfg, [(f"{name}[{b}-bit]", g, n) for (g, n), b in zip(
                    per_channel_gemms(gemm), dict.fromkeys(gemm.bits))], constants, latency=latency)
        results.append({"name": name, "m": gemm.m, "k": gemm.k, "n": gemm.n, "count": count, **extra,
                        "depthwise": windowed, "mapping": mapping.to_dict(),
                        "cycles": float(best["cycles"][i]),
                        "dram_bytes": float(best["dram_bytes"][i]), "energy_pj": float(best["energy_pj"][i])})
    return results


def gemm_entries(layers: list[Layer]) -> tuple[list[tuple[str, Gemm, int]], list[int]]:
    """The accelerator GEMMs of ``layers`` as `best_mappings` takes them, ``(name, GEMM, count)``, a layer that
    lowers to several GEMMs naming them ``layer[i]``; and for each, the index in ``layers`` of the layer it came
    from (host layers have none)."""
    entries, owner = [], []
    for index, layer in enumerate(layers):
        lowered = gemms(layer)
        for i, entry in enumerate(lowered):
            entries.append((f"{layer.name}[{i}]" if len(lowered) > 1 else layer.name, entry.gemm, entry.count))
            owner.append(index)
    return entries, owner


def map_layers(cfg: HardwareConfig, layers: list[Layer], *, latency: float = 20.0,
               constants: Constants | None = None) -> dict:
    """Every accelerator layer's GEMMs with their best mappings, the host layers, and the totals. A layer whose
    bits ``cfg`` cannot take is refused first (`check_layer_bits`)."""
    for layer in layers:
        check_layer_bits(cfg, layer)
    constants = constants or load_constants()
    entries, _ = gemm_entries(layers)
    host = [layer.name for layer in layers if placement(layer) == "host"]
    mapped = best_mappings(cfg, entries, constants, latency=latency) if entries else []
    return {
        "config": cfg.to_dict(), "latency": latency, "calibrated": constants.calibrated,
        "layers": mapped, "host_layers": host,
        "total_cycles": sum(r["cycles"] for r in mapped), "total_dram_bytes": sum(r["dram_bytes"] for r in mapped),
        "total_energy_pj": sum(r["energy_pj"] for r in mapped),
    }
