"""The calibration's bookkeeping (the sweep itself is `make calibrate`: minutes of Verilator)."""

import json
import warnings

import numpy as np
import pytest

from codesign.compiler.batchtile import Constants, load_constants
from codesign.compiler.mapping import Gemm, Mapping
from codesign.errors import InputError
from sim.measure import calibrate


def test_cases_round_trip_and_split_deterministically(tmp_path):
    cases = [{"config": "8x8-g2-bus64", "latency": 20, "description": f"case {i}", "held_out": calibrate._held_out(
        f"case {i}"), "measured": 1000 + i, "bit_exact": True, "measured_bytes": 500 + i,
        "gemm": Gemm(8, 16, 8, (2,) * 8), "mapping": Mapping(bm=1, bn=2)} for i in range(40)]
    path = tmp_path / "cases.json"
    calibrate.save_cases(cases, path)
    assert calibrate.load_cases(path) == cases
    held = sum(c["held_out"] for c in cases)
    assert 10 < held < 30                                    # a hash split, about half
    assert [calibrate._held_out(c["description"]) for c in cases] == [c["held_out"] for c in cases]


def test_fit_recovers_constants_from_the_models_own_predictions():
    """Fed cycles that the model itself produced with known constants, least squares finds them again."""
    truth = Constants(beat=1.1, burst=6.0, command=12.0, tile_gap=7.0, fixed=60.0)
    cases = []
    for m, k, n in ((13, 40, 11), (30, 100, 17), (24, 64, 24), (6, 600, 5)):
        for mapping in (Mapping(), Mapping(bm=2, bn=1, order="acts")):
            for latency in (0, 20, 60):
                case = {"config": "8x8-g2-bus64", "gemm": Gemm(m, k, n, (4,) * n), "mapping": mapping,
                        "latency": latency}
                case["measured"] = calibrate._predictions([case], truth)[0]
                cases.append(case)
    fitted, _ = calibrate.fit(cases)
    assert np.max(np.abs(calibrate.errors(cases, fitted))) < 1e-3


def test_the_model_says_when_it_runs_uncalibrated(tmp_path):
    with pytest.warns(UserWarning, match="uncalibrated"):
        assert load_constants(tmp_path / "none.json") == Constants()
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"constants": {"beat": 1.0, "burst": 2.0, "command": 3.0, "tile_gap": 4.0,
                                              "fixed": 5.0, "calibrated": True}}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_constants(path) == Constants(1.0, 2.0, 3.0, 4.0, 5.0, calibrated=True)


def test_refit_without_measurements_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="--refit needs"):
        calibrate.calibrate(out=tmp_path / "c.json", report=tmp_path / "r.json", refit=True,
                            cases_path=tmp_path / "missing.json")
    assert not (tmp_path / "c.json").exists()
