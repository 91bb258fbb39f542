"""The synthesis flow (Yosys + nextpnr through YoWASP) and the committed PE area table it produces.

Tests marked ``synth`` run the tools: a few seconds each once the WASM cache is warm (~30 s once before that).
The table tests only read ``codesign/data/pe_area.json``.
"""

import itertools
import json
from importlib.resources import files

import pytest

from codesign.config import DIGIT_BITS, HardwareConfig
from codesign.errors import InputError
from rtl_gen.emit import to_verilog
from rtl_gen.pe import PE
from rtl_gen.synth import synthesize

TABLE_WEIGHT_BITS = (2, 4, 8)

# Far more ports than the 206 pins of the iCE40 HX8K CT256, little logic; the two register stages give nextpnr a
# register-to-register path to time (port-to-register paths are unconstrained out of context).
WIDE_VERILOG = """
module wide(input clk, input [299:0] a, output reg [299:0] q);
  reg [299:0] r;
  always @(posedge clk) begin
    r <= a;
    q <= r ^ {r[0], r[299:1]};
  end
endmodule
"""


@pytest.mark.synth
def test_pe_synthesizes_on_ice40(tmp_path):
    cfg = HardwareConfig(digit_bits=2, weight_bits_max=4)
    report = synthesize(to_verilog(PE(cfg), "pe"), "pe", tmp_path, seeds=(1, 2))
    assert (report["family"], report["device"], report["rejected"]) == ("ice40", "iCE40HX8K-CT256", {})
    assert report["luts"] > 0 and report["carries"] > 0
    assert report["ffs"] >= cfg.acc_bits                     # at least the accumulator survives synthesis
    assert report["cells"] > report["luts"]                  # generic gates are finer than 4-input LUTs
    assert 10 < report["fmax_mhz"] < 500
    assert sorted(report["fmax_mhz_per_seed"]) == ["1", "2"]
    assert report["tools"]["yosys"].startswith("Yosys ")
    assert report["seconds"]["total"] > 0


@pytest.mark.synth
def test_too_many_ports_for_ice40_falls_back_to_ecp5(tmp_path):
    report = synthesize(WIDE_VERILOG, "wide", tmp_path, seeds=(1,))
    assert (report["family"], report["device"], report["out_of_context"]) == ("ecp5", "LFE5U-85F", True)
    assert report["rejected"] == {"iCE40HX8K-CT256": ["ports: 601 bits, 206 pins"]}
    assert report["ffs"] == 600
    assert report["fmax_mhz"] > 0


@pytest.mark.synth
def test_missing_top_names_it(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)Yosys \(generic\.ys, top 'nope'\) failed.*Module `nope' not found"):
        synthesize(WIDE_VERILOG, "nope", tmp_path)


def test_unknown_family_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"family: 'xilinx' is not allowed; expected one of \['ecp5', 'ice40'\]"):
        synthesize(WIDE_VERILOG, "wide", tmp_path, family="xilinx")


# ---- the committed PE area table

@pytest.fixture(scope="module")
def table():
    return json.loads(files("codesign.data").joinpath("pe_area.json").read_text())


def rows_by_key(table):
    return {(row["digit_bits"], row["weight_bits_max"]): row for row in table["rows"]}


def test_table_covers_every_digit_and_weight_width(table):
    assert len(table["rows"]) == 12
    assert sorted(rows_by_key(table)) == sorted(itertools.product(DIGIT_BITS, TABLE_WEIGHT_BITS))
    assert "make pe-table" in table["regenerate"]
    assert table["tools"]["yosys"].startswith("Yosys ")
    for row in table["rows"]:
        assert row["device"] == "iCE40HX8K-CT256"
        assert min(row["cells"], row["luts"], row["ffs"], row["logic_cells"], row["fmax_mhz"]) > 0


@pytest.mark.parametrize("metric", ["cells", "luts", "logic_cells"])
def test_table_area_grows_with_digit_width(table, metric):
    """Wider digits, wider multiplier: strictly more area at every weight width."""
    rows = rows_by_key(table)
    for wb in TABLE_WEIGHT_BITS:
        areas = [rows[g, wb][metric] for g in DIGIT_BITS]
        assert areas == sorted(set(areas)), (wb, areas)


@pytest.mark.parametrize("metric", ["cells", "luts", "logic_cells"])
def test_table_area_never_shrinks_with_weight_width(table, metric):
    """More digits only widen the shifted activation; once g covers the weight the PE no longer changes."""
    rows = rows_by_key(table)
    for g in DIGIT_BITS:
        areas = [rows[g, wb][metric] for wb in TABLE_WEIGHT_BITS]
        assert areas == sorted(areas), (g, areas)
