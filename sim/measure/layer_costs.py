"""RTL-measured layer costs, cached: OHQ's on-chip quantization awareness (OQA) for `codesign ohq`.

`RtlPricer(cfg)(layers)` compiles each accelerator layer with its best mapping (`sim.runs.layer.compile_layer`: random
operands within the layer's bits) and runs it on the whole accelerator in simulation; every layer that the cache
does not hold runs in one simulation, because starting one costs seconds. Every run is checked bit-exact against
the integer reference. Cycles and DRAM bytes (read + written, the program's own fetch included) come from the
accelerator's performance counters. Energy is BatchTile's estimate for the same mapping with its DRAM term taken
from the measured bytes (`codesign.compiler.batchtile.dram_pj_per_byte`): the RTL has no energy counter.

The cache holds one JSON file per measurement in ``build/cache/layer_costs/``, named by a hash of its key: the
layer's shape (every field but its name and weight bits), its per-channel weight *digit* counts (3- and 4-bit
weights share one measurement at g = 2: the hardware's cost depends on the digits alone), the hardware
configuration, the memory latency, the simulator, and a fingerprint of every source that decides the measured
figures (`measurement_fingerprint`: the RTL generator, the whole hardware contract, compiler and layer IR packages
(BatchTile and its calibration file pick the mapping), the runs, the testbench and the driver). A file repeats its
key; one that does not parse, or holds another key, is measured again and overwritten, with a warning, and never
used.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict
from pathlib import Path

import codesign.compiler
import codesign.hw
import codesign.ir
import rtl_gen
from codesign.compiler.batchtile import CALIBRATION_PATH, dram_pj_per_byte, load_constants
from codesign.files import atomic_write_json
from codesign.hw.config import HardwareConfig
from codesign.ir.layers import Layer, layers_to_json
from codesign.ohq.cost_table import LayerCost
from sim.build import source_fingerprint
from sim.runs import gemm
from sim.runs import layer as layer_module
from sim.runs.layer import compile_layer, layer_report
from sim.system import driver, memory
from sim.system import runner as system_runner
from sim.system import testbench as tb_system
from sim.system.runner import run_session

DEFAULT_CACHE = Path("build/cache/layer_costs")
CACHE_VERSION = 1


def measurement_fingerprint(calibration: Path = CALIBRATION_PATH) -> str:
    """Hash of every source that decides a layer's measured cycles and bytes (see the module docstring)."""
    sources = source_fingerprint(rtl_gen, codesign.hw, codesign.compiler, codesign.ir, layer_module, gemm,
                                 system_runner, tb_system, driver, memory)
    fitted = calibration.read_bytes() if calibration.is_file() else b"uncalibrated"
    return hashlib.sha256(sources.encode() + fitted).hexdigest()


class RtlPricer:
    """Measured costs of layers on the RTL (see the module docstring). ``simulated`` counts the layers run by this
    pricer, ``cached`` those read from the cache."""

    source = "measured"

    def __init__(self, cfg: HardwareConfig, *, latency: int = 20, simulator: str = "verilator",
                 cache_dir: Path = DEFAULT_CACHE):
        self.cfg, self.latency, self.simulator, self.cache_dir = cfg, latency, simulator, Path(cache_dir)
        self.description = f"RTL-measured ({simulator}, memory latency {latency} cycles)"
        self.fingerprint = measurement_fingerprint()
        self.simulated = self.cached = 0

    def key(self, layer: Layer) -> dict:
        shape = {k: v for k, v in layers_to_json([layer])[0].items() if k not in ("name", "w_bits")}
        digits = [self.cfg.digits(b) for b in layer.w_bits]
        return {"version": CACHE_VERSION, "layer": shape,
                "digits": digits[0] if len(set(digits)) == 1 else digits, "config": self.cfg.to_dict(),
                "latency": self.latency, "simulator": self.simulator, "sources": self.fingerprint}

    def path(self, key: dict) -> Path:
        return self.cache_dir / f"{_digest(key)[:24]}.json"

    def __call__(self, layers: list[Layer]) -> list[LayerCost]:
        keys = [self.key(x) for x in layers]
        found = {_digest(k): self._read(k) for k in keys}
        missing = {}
        for k, x in zip(keys, layers):
            if found[_digest(k)] is None:
                missing.setdefault(_digest(k), (k, x))
        if missing:
            found.update(self._measure(list(missing.values())))
        self.cached += len({_digest(k) for k in keys}) - len(missing)
        return [found[_digest(k)] for k in keys]

    def _read(self, key: dict) -> LayerCost | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            if data["key"] != key:
                raise ValueError("the file holds another key")
            return LayerCost(**data["cost"])
        except (ValueError, KeyError, TypeError) as exc:
            warnings.warn(f"layer cost cache {path}: unusable ({exc}); measuring again", stacklevel=3)
            return None

    def _measure(self, cases: list[tuple[dict, Layer]]) -> dict[str, LayerCost]:
        constants = load_constants()
        compiled = [compile_layer(self.cfg, x, latency=self.latency, constants=constants) for _, x in cases]
        outputs = run_session(self.cfg, [job for c in compiled for job in c.jobs], simulator=self.simulator)
        per_byte = dram_pj_per_byte(self.cfg.act_buf_bytes)
        costs, start = {}, 0
        for (key, x), c in zip(cases, compiled):
            report = layer_report(c, outputs[start:start + len(c.jobs)], self.cfg)
            start += len(c.jobs)
            if not report["bit_exact"]:
                raise RuntimeError(f"layer {x.name}: the RTL's result differs from the integer reference "
                                   f"({self.simulator}, {self.cfg.to_dict()})")
            energy = report["energy_pj_predicted"] + \
                (report["dram_bytes_measured"] - report["dram_bytes_predicted"]) * per_byte
            cost = LayerCost(cycles=float(report["cycles_measured"]), dram_bytes=float(report["dram_bytes_measured"]),
                             energy_pj=float(energy))
            atomic_write_json(self.path(key), {"key": key, "cost": asdict(cost),
                                               "cycles_predicted": report["cycles_predicted"],
                                               "mapping": report["mapping"]})
            costs[_digest(key)] = cost
        self.simulated += len(cases)
        return costs


def _digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
