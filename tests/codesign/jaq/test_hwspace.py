"""The hardware search space: the candidate product in a fixed order, validation naming the field, names and area."""

import pytest

from codesign.compiler.batchtile import area_luts, brams
from codesign.errors import InputError
from codesign.hw.config import HardwareConfig
from codesign.jaq.hwspace import FIELDS, HardwareSpace, area, hardware_name


def test_the_default_space_is_the_full_product_rows_slowest():
    space = HardwareSpace()
    candidates = space.candidates()
    assert len(candidates) == 3 * 3 * 3 * 2 * 2 * 1 == len(set(candidates))
    assert candidates[0] == HardwareConfig(rows=4, cols=4, digit_bits=1, act_buf_bytes=4096, wgt_buf_bytes=4096)
    assert candidates[1] == candidates[0].replace(wgt_buf_bytes=16384)       # the last field fastest
    assert candidates[-1] == HardwareConfig(rows=16, cols=16, digit_bits=4, act_buf_bytes=16384, wgt_buf_bytes=16384)
    assert [c.rows for c in candidates] == sorted(c.rows for c in candidates)
    # every other field at its default
    default = HardwareConfig()
    assert all(c.max_k == default.max_k and c.out_buf_bytes == default.out_buf_bytes for c in candidates)


def test_a_small_space():
    space = HardwareSpace(rows=(8,), cols=(8, 4), digit_bits=(2,), act_buf_bytes=(1024,), wgt_buf_bytes=(512,),
                          axi_data_bits=(64, 128))
    assert [(c.cols, c.axi_data_bits) for c in space.candidates()] == [(8, 64), (8, 128), (4, 64), (4, 128)]


def test_dict_round_trip():
    space = HardwareSpace(rows=(2, 4), digit_bits=(8,))
    data = space.to_dict()
    assert list(data) == list(FIELDS) and data["rows"] == [2, 4]
    assert HardwareSpace.from_dict(data) == space
    assert HardwareSpace.from_dict({"cols": [16]}) == HardwareSpace(cols=(16,))


@pytest.mark.parametrize("data, field", [
    ({"banks": [2]}, "hardware space"),
    ({"rows": []}, "hardware space.rows"),
    ({"rows": 4}, "hardware space.rows"),
    ({"cols": [4, "8"]}, "hardware space.cols"),
    ({"digit_bits": [True]}, "hardware space.digit_bits"),
])
def test_from_dict_refuses_bad_input(data, field):
    with pytest.raises(InputError) as info:
        HardwareSpace.from_dict(data)
    assert info.value.field == field


def test_a_combination_the_config_refuses_names_it():
    with pytest.raises(InputError, match=r"^hardware space: .*'digit_bits': 3.* is not allowed; expected valid "
                                         r"HardwareConfig fields \(digit_bits: 3"):
        HardwareSpace(digit_bits=(2, 3)).candidates()


def test_name_and_area():
    cfg = HardwareConfig(rows=8, cols=16, digit_bits=2, act_buf_bytes=4096, wgt_buf_bytes=16384, axi_data_bits=128)
    assert hardware_name(cfg) == "8x16 g2 act4K wgt16K bus128"
    assert area(cfg) == {"area_luts": area_luts(cfg), "brams": brams(cfg)}
    smaller = area(cfg.replace(rows=4))
    assert smaller["area_luts"] == area(cfg)["area_luts"] / 2 and smaller["brams"] == area(cfg)["brams"]
