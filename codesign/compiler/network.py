"""A whole exported integer network compiled for the accelerator: every layer's GEMMs, priced by BatchTile and
lowered with their best mappings to programs (`codesign ohq --programs`, `codesign verify`).

Each accelerator layer (`codesign.ir.layers.placement`) is compiled from the integer model's own inputs to it; the
host forms the operands with `codesign.ir.executor.gemm_operands` (im2col; the classifier's weights repeated for each
pooled pixel), or, for a depthwise layer on the array's depthwise mode, the padded input frames of
`codesign.compiler.depthwise`. Each GEMM gets its BatchTile-best mapping for the
whole image batch (M = images * H_out * W_out), so the cycles BatchTile predicts are for the programs that run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codesign.compiler.batchtile import load_constants
from codesign.compiler.mapper import best_mappings, gemm_entries
from codesign.compiler.mapping import Mapping
from codesign.compiler.program import Program, compile_depthwise, compile_gemm
from codesign.errors import InputError
from codesign.files import atomic_write_bytes, atomic_write_json, check_file_name
from codesign.hw.config import HardwareConfig
from codesign.ir.executor import gemm_operands, run_model
from codesign.ir.layers import check_layer_bits, from_integer_model, gemms
from codesign.quant.export import IntegerLayer, IntegerModel


def check_model(cfg: HardwareConfig, model: IntegerModel) -> None:
    """Refuse a model that ``cfg`` cannot run, naming the layer and the field, before anything is simulated."""
    for layer, lowered in zip(model.layers, from_integer_model(model)):
        try:
            layer.requant.validate(cfg, layer.out_shape[0])
        except InputError as exc:
            raise exc.within(layer.name) from None
        check_layer_bits(cfg, lowered)
        if max(layer.in_bits) > cfg.act_bits:             # an add's second input too
            raise InputError(f"{layer.name} in_bits", max(layer.in_bits), f"at most act_bits={cfg.act_bits}")
        for entry in gemms(lowered):
            if entry.gemm.k > cfg.max_k:
                raise InputError(f"{layer.name} K", entry.gemm.k, f"at most max_k={cfg.max_k}")


def price_network(cfg: HardwareConfig, model: IntegerModel, images: int, latency: float) -> tuple[dict, bool]:
    """Per accelerator layer: its lowered GEMMs' weight bits -> BatchTile's best mapping and predicted cycles
    (a depthwise layer's channels of equal bits share one entry, priced ``count`` times)."""
    constants = load_constants()
    layers = from_integer_model(model, batch=images)
    entries, owner = gemm_entries(layers)
    plans: dict[str, dict[tuple[int, ...], dict]] = {}
    for (_, gemm, _), index, best in zip(entries, owner, best_mappings(cfg, entries, constants, latency=latency)):
        plans.setdefault(layers[index].name, {})[gemm.bits] = best
    return plans, constants.calibrated


def compile_layer(cfg: HardwareConfig, layer: IntegerLayer, x: np.ndarray, plan: dict) -> list[Program]:
    """The programs of one layer from its NHWC input ``x``; ``plan`` maps each GEMM's bits to its best mapping
    (`price_network`). A depthwise layer that BatchTile priced on the depthwise mode is one DW_COMPUTE program."""
    whole = plan.get(tuple(int(b) for b in layer.w_bits), {}) if layer.kind == "dwconv" else {}
    if whole.get("depthwise"):
        return [compile_depthwise(cfg, np.asarray(x).transpose(0, 3, 1, 2), layer.weight[:, 0], layer.w_bits,
                                  layer.requant, stride=layer.stride, padding=layer.padding,
                                  act_signed=layer.in_signed[0], name=layer.name)]
    if "fallback" in whole:                  # its per-channel GEMMs, keyed by their bits as grouped convs are
        plan = {(bits,): entry for bits, entry in zip(dict.fromkeys(int(b) for b in layer.w_bits), whole["fallback"])}
    programs: list[Program] = []
    for a, w, bits, requant in gemm_operands(layer, x):
        mapping = Mapping(**plan[tuple(int(b) for b in bits)]["mapping"])
        programs.append(compile_gemm(cfg, a, w, bits, requant, mapping, act_signed=layer.in_signed[0],
                                     name=layer.name))
    return programs


def compile_network(cfg: HardwareConfig, model: IntegerModel, images_int: np.ndarray, *,
                    latency: float = 20) -> list[dict]:
    """Every accelerator program of the network for one batch of images: per program its layer, its index within
    the layer and the `Program`. Each layer is compiled from the integer model's own inputs to it, which the RTL
    reproduces bit for bit (`run_network` checks that), so no simulation is needed."""
    check_model(cfg, model)
    x = np.asarray(images_int, dtype=np.int64)
    golden = run_model(model, x, cfg)
    plans, _ = price_network(cfg, model, len(x), latency)
    compiled = []
    for layer in model.layers:
        if layer.name in plans:
            programs = compile_layer(cfg, layer, golden[layer.inputs[0]], plans[layer.name])
            compiled += [{"layer": layer.name, "index": i, "program": p} for i, p in enumerate(programs)]
    return compiled


def write_programs(out_dir: str | Path, compiled: list[dict]) -> Path:
    """Each program as ``<layer>.<index>.bin`` (its commands, `codesign disasm` reads them) and
    ``<layer>.<index>.dram`` (its DRAM image: the segments one after another), and ``programs.json`` listing them
    with the addresses a host driver needs (segments, PROG_ADDR / PROG_LEN, the output region)."""
    out_dir = Path(out_dir)
    entries = []
    for item in compiled:
        check_file_name("layer name", item["layer"])        # it becomes a file name here: no path out of out_dir
        program, stem = item["program"], f"{item['layer']}.{item['index']}"
        atomic_write_bytes(out_dir / f"{stem}.bin", program.binary)
        segments, offset = [], 0
        for addr, blob in program.memory:
            segments.append({"addr": addr, "offset": offset, "bytes": len(blob)})
            offset += len(blob)
        atomic_write_bytes(out_dir / f"{stem}.dram", b"".join(blob for _, blob in program.memory))
        entries.append({"layer": item["layer"], "index": item["index"], "commands": f"{stem}.bin",
                        "dram": f"{stem}.dram", "segments": segments, "prog_addr": program.prog_addr,
                        "prog_len": len(program.commands), "out_addr": program.out_addr,
                        "out_bytes": program.out_bytes, "compute_cycles": program.compute_cycles})
    return atomic_write_json(out_dir / "programs.json", {"programs": entries})
