import json

import pytest

from codesign.errors import InputError
from codesign.hw.config import HardwareConfig, ceil_div


def test_default_round_trips_through_json():
    cfg = HardwareConfig()
    assert HardwareConfig.from_json(cfg.to_json()) == cfg
    assert HardwareConfig.from_json(cfg.replace(rows=3, digit_bits=4).to_json()).rows == 3


def test_is_frozen():
    with pytest.raises(AttributeError):
        HardwareConfig().rows = 4


@pytest.mark.parametrize("field, value, allowed", [
    ("rows", 0, "from 1 to 64"),
    ("cols", 65, "from 1 to 64"),
    ("digit_bits", 3, "one of [1, 2, 4, 8]"),
    ("act_bits", 1, "from 2 to 16"),
    ("axi_data_bits", 96, "one of [64, 128, 256]"),
    ("act_buf_bytes", 3000, "a power of two"),
    ("rows", 2.5, "an integer"),
    ("rows", True, "an integer"),
])
def test_invalid_values_name_field_value_and_range(field, value, allowed):
    with pytest.raises(InputError) as info:
        HardwareConfig(**{field: value})
    message = str(info.value)
    assert message.startswith(f"{field}: {value!r} is not allowed")
    assert allowed in message


def test_acc_bits_must_hold_the_largest_sum():
    # 4096 products of 255 and -128 need 28 bits plus sign.
    assert HardwareConfig.acc_bits_needed(8, 8, 4096) == 28
    HardwareConfig(acc_bits=28, max_k=4096)
    with pytest.raises(InputError, match=r"acc_bits: 27 is not allowed; expected >= 28"):
        HardwareConfig(acc_bits=27, max_k=4096)


def test_acc_bits_needed_is_tight():
    for act_bits, weight_bits, k in [(8, 8, 1), (4, 2, 7), (8, 8, 4096), (2, 2, 1)]:
        bits = HardwareConfig.acc_bits_needed(act_bits, weight_bits, k)
        largest = k * ((1 << act_bits) - 1) * (1 << (weight_bits - 1))
        assert largest <= (1 << (bits - 1)) - 1 < 2 * largest


def test_unknown_field_and_bad_json_are_refused():
    with pytest.raises(InputError, match="config: 'row'"):
        HardwareConfig.from_dict({"row": 4})
    with pytest.raises(InputError, match="valid JSON"):
        HardwareConfig.from_json("{rows: 4")
    with pytest.raises(InputError, match="--config"):
        HardwareConfig.load("/nonexistent/hw.json")


def test_a_bad_config_file_names_the_file(tmp_path):
    path = tmp_path / "hw.json"
    path.write_text('{"rows": 4,\n "cols": }')
    with pytest.raises(InputError, match=r"^--config: '.*hw.json' is not allowed; expected a valid "
                                         r"HardwareConfig JSON file \(line 2, column 10: Expecting value\)$"):
        HardwareConfig.load(path)
    path.write_text('{"rows": 0}')
    with pytest.raises(InputError, match=r"^.*hw.json rows: 0 is not allowed; expected an integer from 1 to 64"):
        HardwareConfig.load(path)
    path.write_text("[1]")
    with pytest.raises(InputError, match=r"hw.json config: 'list' is not allowed"):
        HardwareConfig.load(path)
    with pytest.raises(InputError, match="not a directory"):
        HardwareConfig.load(tmp_path)


def test_an_output_buffer_no_tile_fits_is_refused_by_the_double_buffering_rule():
    # 16 x 16 at 8 bits: a tile is 16 words of 16 bytes; two of them (double buffering) need 512 bytes.
    assert HardwareConfig(rows=16, cols=16, out_buf_bytes=512).out_tile_bytes == 256
    with pytest.raises(InputError, match=r"^out_buf_bytes: 256 is not allowed; expected >= 512: two output tiles "
                                         r"of 256 bytes"):
        HardwareConfig(rows=16, cols=16, out_buf_bytes=256)


@pytest.mark.parametrize("fields", [{}, {"rows": 3, "cols": 5, "axi_data_bits": 256}, {"cols": 7, "act_bits": 5},
                                    {"rows": 64, "cols": 64, "act_bits": 16, "acc_bits": 40, "out_buf_bytes": 1 << 16},
                                    {"rows": 1, "cols": 1, "act_bits": 2, "axi_data_bits": 128}])
def test_out_tile_bytes_is_the_compilers_output_slot(fields):
    from codesign.compiler.mapping import Gemm, Mapping, plan

    cfg = HardwareConfig(**fields)
    assert cfg.out_tile_bytes == plan(cfg, Gemm(1, 1, 1, (2,)), Mapping()).out_slot


def test_derived_quantities():
    cfg = HardwareConfig(digit_bits=2, weight_bits_max=8)
    assert cfg.digits_max == 4
    assert [cfg.digits(b) for b in range(1, 9)] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert cfg.shift_max == cfg.acc_bits + cfg.mult_bits
    assert json.loads(cfg.to_json())["digit_bits"] == 2
    assert cfg.digest() != cfg.replace(rows=4).digest()


@pytest.mark.parametrize("a, b, want", [(0, 8, 0), (1, 8, 1), (8, 8, 1), (9, 8, 2), (7, 1, 7), (-9, 8, -1),
                                        ((1 << 80) + 1, 1 << 40, (1 << 40) + 1)])
def test_ceil_div_is_exact_integer_ceiling(a, b, want):
    assert ceil_div(a, b) == want            # exact past float precision too
