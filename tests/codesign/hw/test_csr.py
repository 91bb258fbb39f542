from codesign.hw import csr
from codesign.hw.config import HardwareConfig


def test_register_offsets_are_unique_aligned_and_in_range():
    offsets = [r.offset for r in csr.REGISTERS]
    assert len(set(offsets)) == len(offsets)
    assert all(o % 4 == 0 and o < 1 << csr.ADDR_BITS for o in offsets)
    assert len({r.name for r in csr.REGISTERS}) == len(csr.REGISTERS)


def test_every_counter_has_both_halves_and_config_is_discoverable():
    for name in csr.COUNTERS:
        assert csr.OFFSETS[f"{name.upper()}_HI"] == csr.OFFSETS[f"{name.upper()}_LO"] + 4
    cfg = HardwareConfig(rows=4, cols=6, digit_bits=4, axi_data_bits=128)
    values = csr.config_values(cfg)
    assert values["CFG_ROWS"] == 4 and values["CFG_COLS"] == 6 and values["CFG_DIGIT_BITS"] == 4
    assert values["CFG_AXI_DATA_BITS"] == 128 and values["CFG_PARAM_BUF_BYTES"] == cfg.param_buf_bytes
