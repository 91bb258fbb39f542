"""RTL-measured layer costs: agreement with BatchTile, one measurement per digit count, the cache and its keys."""

import json
from dataclasses import replace

import pytest

import sim.measure.layer_costs
from codesign.hw.config import HardwareConfig
from codesign.ir.layers import Conv2d, Linear
from codesign.ohq.cost_table import BatchTilePricer, cost_table
from sim.measure.layer_costs import RtlPricer, measurement_fingerprint

# The 4x4 configuration of tests/sim/system/test_runner.py, so its simulation model is already built.
CFG = HardwareConfig(rows=4, cols=4, digit_bits=2, axi_data_bits=128, act_buf_bytes=256, wgt_buf_bytes=256,
                     out_buf_bytes=256, param_buf_bytes=256)
LAYERS = [Conv2d("conv", 2, 8, 3, padding=1, in_h=6, in_w=6),
          Conv2d("dw", 8, 8, 3, padding=1, groups=8, in_h=6, in_w=6), Linear("fc", 32, 5)]


class NoSimulation(Exception):
    pass


def _refuse_simulation(calls):
    def run_session(cfg, jobs, **kwargs):
        calls.append(cfg)
        raise NoSimulation
    return run_session


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    cache = tmp_path_factory.mktemp("layer_costs")
    pricer = RtlPricer(CFG, cache_dir=cache)
    table = cost_table(pricer, CFG, LAYERS, [1, 2, 4])
    return cache, pricer, table


def test_measured_costs_agree_with_batchtile_and_grow_with_the_digits(measured):
    _, pricer, table = measured
    assert pricer.simulated == 9 and pricer.cached == 0
    predicted = cost_table(BatchTilePricer(CFG), CFG, LAYERS, [1, 2, 4])
    for name in table.costs:
        cycles = [table.cost(name, d).cycles for d in (1, 2, 4)]
        assert cycles == sorted(cycles) and cycles[0] < cycles[-1]
        for d in (1, 2, 4):
            assert table.cost(name, d).cycles == pytest.approx(predicted.cost(name, d).cycles, rel=0.15)
            assert table.cost(name, d).dram_bytes > 0 and table.cost(name, d).energy_pj > 0


def test_a_second_call_reads_the_cache_and_simulates_nothing(measured, monkeypatch):
    cache, _, table = measured
    calls = []
    monkeypatch.setattr(sim.measure.layer_costs, "run_session", _refuse_simulation(calls))
    pricer = RtlPricer(CFG, cache_dir=cache)
    again = cost_table(pricer, CFG, LAYERS, [1, 2, 4])
    assert again.costs == table.costs and calls == [] and pricer.cached == 9
    # 3 bits are two digits at g = 2, like 4: the same measurement
    three = [replace(layer, w_bits=3) for layer in LAYERS]
    assert pricer(three) == [table.cost(layer.name, 2) for layer in LAYERS] and calls == []


def test_another_hardware_configuration_misses_the_cache(measured, monkeypatch):
    cache, _, _ = measured
    calls = []
    monkeypatch.setattr(sim.measure.layer_costs, "run_session", _refuse_simulation(calls))
    with pytest.raises(NoSimulation):
        RtlPricer(CFG.replace(axi_data_bits=256), cache_dir=cache)(LAYERS[:1])
    with pytest.raises(NoSimulation):
        RtlPricer(CFG, latency=40, cache_dir=cache)(LAYERS[:1])
    assert len(calls) == 2


def test_a_corrupt_or_foreign_cache_file_is_measured_again_never_used(measured, monkeypatch):
    cache, _, _ = measured
    pricer = RtlPricer(CFG, cache_dir=cache)
    path = pricer.path(pricer.key(LAYERS[2]))
    original = path.read_text()
    calls = []
    monkeypatch.setattr(sim.measure.layer_costs, "run_session", _refuse_simulation(calls))
    try:
        for text in ("{not json", json.dumps({**json.loads(original), "key": {"other": 1}})):
            path.write_text(text)
            with pytest.warns(UserWarning, match="unusable"), pytest.raises(NoSimulation):
                pricer(LAYERS[2:])
    finally:
        path.write_text(original)
    assert len(calls) == 2


def test_the_fingerprint_follows_the_calibration(tmp_path):
    fitted = tmp_path / "calibration.json"
    missing = measurement_fingerprint(fitted)
    fitted.write_text('{"constants": {"beat": 1.0}}')
    first = measurement_fingerprint(fitted)
    fitted.write_text('{"constants": {"beat": 1.1}}')
    assert len({missing, first, measurement_fingerprint(fitted)}) == 3
