"""design.json: built from a finished run's results, written with its hardware.json, loaded back, bad files refused."""

import json
from types import SimpleNamespace

import pytest

from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.jaq.design import (
    DESIGN_VERSION,
    SUMMARY_KEYS,
    TARGET_ACC_LOSS,
    TARGET_CYCLES_RATIO,
    build_design,
    design_file,
    load_design,
    write_design,
)

HW = HardwareConfig(rows=8, cols=8, digit_bits=2)


def figures(acc, cycles, **extra):
    return {"acc": acc, "acc_val": acc - 0.01, "cycles": cycles, "energy_pj": 10.0 * cycles, "dram_bytes": 5000,
            "area_luts": 1234.0, "brams": 12.0, "hardware_name": "8x8 g2 act16K wgt16K bus64",
            "mean_weight_bits": 4.5, "train_seconds": 3.0, **extra}


def finished_run():
    """What `build_design` reads of a `SearchRun`: its settings, constants and results."""
    settings = SimpleNamespace(batch=8, max_luts=50_000, max_cycles=None, latency=20.0,
                               to_dict=lambda: {"batch": 8, "epochs": 1})
    retrained = {
        "chosen": figures(0.95, 600.0, subnet={"depths": [1, 1, 1]}, hardware=HW.to_dict(),
                          layers=[{"name": "stem", "mapping": {"bm": 1}}]),
        "int8": figures(0.955, 1000.0), "int4": figures(0.94, 700.0), "fixed_hw": figures(0.93, 800.0),
        "random": figures(0.90, 900.0),
    }
    derived = {"arch": {"depths": [1, 1, 1]}, "bits": {"stem": {"w": [4, 4], "a": 8}}, "note": ""}
    state = {"results": {"retrained": retrained, "search_derived": derived}}
    return SimpleNamespace(settings=settings, constants=SimpleNamespace(calibrated=True), state=state)


def test_build_design_states_the_figures_and_targets():
    design = build_design(finished_run(), 12.5)
    assert design["version"] == DESIGN_VERSION and design["hardware"] == HW.to_dict()
    assert design["cycles"] == 600.0 and design["cycles_per_image"] == 600.0 / 8
    assert design["cycles_ratio_vs_int8"] == pytest.approx(0.6)
    assert (design["acc_int8"], design["cycles_int8"], design["acc_int4"], design["cycles_int4"]) == (
        0.955, 1000.0, 0.94, 700.0)
    targets = design["targets"]
    assert targets["cycles_ratio_vs_int8"] == {"value": pytest.approx(0.6), "at_most": TARGET_CYCLES_RATIO,
                                               "met": True}
    assert targets["acc_loss_vs_int8"]["value"] == pytest.approx(0.005)
    assert targets["acc_loss_vs_int8"]["met"] == (0.005 <= TARGET_ACC_LOSS)
    assert set(design["baselines"]) == {"int8", "int4", "fixed_hw", "random"}
    assert set(design["baselines"]["random"]) == set(SUMMARY_KEYS)
    assert design["network"] == {"arch": {"depths": [1, 1, 1]}, "subnet": {"depths": [1, 1, 1]}}
    assert design["mappings"] == [{"name": "stem", "mapping": {"bm": 1}}]
    assert design["hardware_choice"].startswith("the hardware generation network's")
    assert design["calibrated"] and design["seconds"] == 12.5 and design["settings"] == {"batch": 8, "epochs": 1}


def test_a_missed_target_says_so():
    run = finished_run()
    run.state["results"]["retrained"]["chosen"].update(cycles=900.0, acc=0.9)
    run.state["results"]["search_derived"]["note"] = "fixed by --hw"
    design = build_design(run, 1.0)
    assert not design["targets"]["cycles_ratio_vs_int8"]["met"] and not design["targets"]["acc_loss_vs_int8"]["met"]
    assert design["hardware_choice"] == "fixed by --hw"


def test_write_and_load_round_trip(tmp_path):
    design = build_design(finished_run(), 2.0)
    path = write_design(tmp_path / "out", design)
    assert path == tmp_path / "out" / "design.json"
    assert load_design(path) == json.loads(json.dumps(design))
    assert HardwareConfig.load(tmp_path / "out" / "hardware.json") == HW
    assert not list((tmp_path / "out").glob("*.tmp"))


@pytest.mark.parametrize("content, allowed", [
    (None, "an existing design.json"),
    ("{not json", "a valid design.json written by `codesign search` (line 1, column 2"),
    ("[1, 2]", f"a design.json of version {DESIGN_VERSION}"),
    (json.dumps({"version": 99}), f"a design.json of version {DESIGN_VERSION}"),
    (json.dumps({"version": DESIGN_VERSION, "hardware": {}, "bits": {}}),
     "the keys ['network', 'cycles', 'acc', 'files']"),
    ('{"version": 1,\n "acc": }', "a valid design.json written by `codesign search` (line 2, column 9"),
])
def test_a_bad_design_file_is_refused(tmp_path, content, allowed):
    path = tmp_path / "design.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError) as info:
        load_design(path)
    assert info.value.field == "design" and info.value.value == str(path) and allowed in info.value.allowed


def test_a_design_with_a_bad_hardware_field_names_the_field(tmp_path):
    design = build_design(finished_run(), 1.0)
    design["hardware"]["digit_bits"] = 3
    path = tmp_path / "design.json"
    path.write_text(json.dumps(design))
    with pytest.raises(InputError, match="^digit_bits: 3 is not allowed"):
        load_design(path)


@pytest.mark.parametrize("files, value", [
    (None, None), ([], []), ({}, {}), ({"integer_model": "/etc/passwd"}, "/etc/passwd"),
    ({"integer_model": "../integer_model.json"}, "../integer_model.json"),
    ({"integer_model": "sub/../../x.json"}, "sub/../../x.json"), ({"integer_model": "link.json"}, "link.json"),
    ({"integer_model": 3}, 3),
])
def test_design_files_must_stay_in_the_designs_folder(tmp_path, files, value):
    folder = tmp_path / "design"
    folder.mkdir()
    (tmp_path / "integer_model.json").write_text("{}")
    (folder / "link.json").symlink_to(tmp_path / "integer_model.json")
    design = build_design(finished_run(), 1.0)
    design["files"] = files
    path = folder / "design.json"
    path.write_text(json.dumps(design))
    with pytest.raises(InputError) as info:
        load_design(path)
    assert str(path) in info.value.field and "files" in info.value.field
    assert info.value.value == value


def test_a_design_without_files_names_the_key(tmp_path):
    design = build_design(finished_run(), 1.0)
    del design["files"]
    path = tmp_path / "design.json"
    path.write_text(json.dumps(design))
    with pytest.raises(InputError, match=r"^design: .* expected the keys \['files'\]$"):
        load_design(path)


def test_design_file_resolves_inside_the_folder(tmp_path):
    design = build_design(finished_run(), 1.0)
    path = write_design(tmp_path / "out", design)
    assert design_file(path, design, "integer_model") == tmp_path / "out" / "integer_model.json"
    with pytest.raises(InputError, match=r"files.nothing: 'missing' is not allowed"):
        design_file(path, design, "nothing")
