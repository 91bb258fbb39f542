"""The synthesis flow (Yosys + nextpnr through YoWASP) and the committed PE area table it produces.

Tests marked ``synth`` run the tools: a few seconds each once the WASM cache is warm (~30 s once before that), about
a minute for the smallest whole accelerator. The table tests only read ``codesign/data/pe_area.json``.
"""

import itertools
import json
from importlib.resources import files

import pytest

from codesign.errors import InputError
from codesign.hw.config import DIGIT_BITS, HardwareConfig
from rtl_gen.emit import to_verilog
from rtl_gen.pe import PE
from rtl_gen.synth import AREA_CATEGORIES, CONTROL, FAMILIES, area_breakdown, synthesize, synthesize_accelerator

TABLE_WEIGHT_BITS = (2, 4, 8)
COUNTS = ("luts", "ffs", "carries", "dsps", "brams", "lutrams")

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


# ---- the whole accelerator, by area category

@pytest.mark.synth
def test_accelerator_area_by_category(tmp_path):
    cfg = HardwareConfig(rows=2, cols=2, digit_bits=2, act_buf_bytes=256, wgt_buf_bytes=256, out_buf_bytes=256,
                         param_buf_bytes=256, axi_data_bits=64)
    report = synthesize_accelerator(cfg, tmp_path, fmax=False)
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert (report["device"], report["fmax_mhz"]) == ("LFE5U-85F", None)
    breakdown = report["area_breakdown"]
    categories = breakdown["categories"]
    assert sorted(categories) == sorted([*AREA_CATEGORIES, CONTROL])
    for category in ("pe_array", "requant", "dma", CONTROL):
        assert categories[category]["luts"] > 0, category
    assert categories["pe_array"]["dsps"] >= cfg.rows * cfg.cols      # a multiplier per PE
    assert categories["buffers"]["brams"] + categories["buffers"]["lutrams"] > 0
    for metric in ("luts", "luts_ffs"):
        assert sum(share[metric] for share in breakdown["shares"].values()) == pytest.approx(1, abs=0.002)
    for count in COUNTS:
        assert sum(c[count] for c in categories.values()) == breakdown["totals"][count], count
    # The kept boundaries cost some cross-module optimization; block RAMs and multipliers are never merged.
    for count in ("dsps", "brams"):
        assert breakdown["totals"][count] == report[count], count
    for count in ("luts", "ffs"):
        assert report[count] <= breakdown["totals"][count] <= 1.25 * report[count], count
    assert report["seconds"]["yosys_breakdown"] > 0


def test_area_breakdown_counts_every_instance():
    """A module instantiated twice counts twice, towards its nearest categorized ancestor."""
    def module(**cells):
        return {"num_cells_by_type": cells}

    stat = {
        "modules": {
            "\\top": module(LUT4=1, **{"top.core.dma": 1, "top.core.compute.core.array": 1, "top.core.act_buf": 1,
                                       "top.core.compute.core.requant_0": 1}),
            "\\top.core.dma": module(LUT4=2, TRELLIS_FF=1),
            "\\top.core.compute.core.array": module(**{"top.core.compute.core.array.pe": 3}),
            "\\top.core.compute.core.array.pe": module(LUT4=4, MULT18X18D=1),
            "\\top.core.act_buf": module(DP16KD=2),
            "\\top.core.compute.core.requant_0": module(LUT4=5),
        },
        "design": {"num_cells_by_type": {"LUT4": 20, "TRELLIS_FF": 1, "MULT18X18D": 3, "DP16KD": 2, "top.core.dma": 1}},
    }
    breakdown = area_breakdown(stat, "top", FAMILIES["ecp5"])
    counts = {category: (c["luts"], c["ffs"], c["dsps"], c["brams"]) for category, c in breakdown["categories"].items()}
    assert counts == {"pe_array": (12, 0, 3, 0), "requant": (5, 0, 0, 0), "buffers": (0, 0, 0, 2),
                      "dma": (2, 1, 0, 0), CONTROL: (1, 0, 0, 0)}
    assert breakdown["shares"]["pe_array"] == {"luts": 0.6, "luts_ffs": 0.5714}
    assert breakdown["totals"]["luts"] == 20


def test_area_breakdown_names_a_missing_category():
    stat = {"modules": {"\\top": {"num_cells_by_type": {"LUT4": 1}}}, "design": {"num_cells_by_type": {"LUT4": 1}}}
    with pytest.raises(RuntimeError, match=r"no module of 'top' matches the area categories "
                                           r"\['buffers', 'dma', 'pe_array', 'requant'\]"):
        area_breakdown(stat, "top", FAMILIES["ecp5"])


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
