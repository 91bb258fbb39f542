"""The collateral rendered beside the Verilog: C header, FuseSoC core file, datasheet and Verilator waivers.

The header is compiled and run (when gcc is present) so that every value it defines is checked against the Python
definitions it is generated from.
"""

import dataclasses
import shutil
import subprocess

import pytest

from codesign.hw import csr, isa
from codesign.hw.config import HardwareConfig
from rtl_gen.accelerator import Accelerator
from rtl_gen.collateral import write_collateral
from rtl_gen.emit import VERILATOR_WAIVERS

TOP = "accelerator"
CONFIGS = {
    "default": HardwareConfig(),
    "wide": HardwareConfig(rows=4, cols=16, act_bits=4, digit_bits=4, axi_data_bits=128, param_buf_bytes=1024),
}
GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed: the C header cannot be compiled")

# Distinct values that fill each field of the command formats, so that a misplaced field shows in the words.
DMA = isa.Dma(opcode=isa.Opcode.STORE, pop_prev=True, push_next=True, dram_addr=0x89ABCDEF, buf_addr=0x123456,
              rows=0xBEEF, row_bytes=0x1234, dram_stride=0xF00DCAFE)
COMPUTE = isa.Compute(pop_next=True, push_prev=True, act_addr=0xABCDEF, wgt_addr=0x654321, out_addr=0x0F0F0F,
                      param_addr=0xC0DE, k=0x7FFF, act_signed=True, emit=False, relu=True, out_bits=0x1D)


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def rendered(request, tmp_path_factory):
    cfg = CONFIGS[request.param]
    out_dir = tmp_path_factory.mktemp(request.param)
    return cfg, out_dir, write_collateral(cfg, Accelerator(cfg), TOP, out_dir)


def test_writes_header_core_datasheet_and_waivers(rendered):
    _, out_dir, paths = rendered
    assert [p.name for p in paths] == [f"{TOP}.h", f"{TOP}.core", f"{TOP}.md", f"{TOP}.vlt"]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(p.name for p in paths)   # no temporary files left


@needs_gcc
def test_header_compiles_cleanly(rendered):
    _, out_dir, _ = rendered
    _gcc("-fsyntax-only", "-x", "c", str(out_dir / f"{TOP}.h"))


@needs_gcc
def test_header_values_match_the_python_definitions(rendered, tmp_path):
    cfg, out_dir, _ = rendered
    expected = _expected_values(cfg)
    source = tmp_path / "values.c"
    source.write_text(_values_program(expected))
    _gcc("-I", str(out_dir), "-o", str(tmp_path / "values"), str(source))
    run = subprocess.run([str(tmp_path / "values")], capture_output=True, text=True, check=True)
    printed = dict(line.split("\t") for line in run.stdout.splitlines())
    assert {name: int(value) for name, value in printed.items()} == expected


def test_core_file_names_the_verilog_the_waivers_and_its_targets(rendered):
    cfg, out_dir, _ = rendered
    text = (out_dir / f"{TOP}.core").read_text()
    assert text.startswith("CAPI=2:\n")
    assert f"name: codesign:accel:{TOP}:" in text and cfg.digest() in text
    assert f"      - {TOP}.v\n    file_type: verilogSource\n" in text
    assert f"      - {TOP}.vlt\n    file_type: vlt\n" in text
    assert "  default:\n" in text and "  lint:\n" in text and "  verilate:\n" in text
    assert text.count(f"toplevel: {TOP}\n") == 3


def test_core_file_is_capi2_yaml(rendered):
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: the core file is checked as text only")
    _, out_dir, _ = rendered
    core = yaml.safe_load((out_dir / f"{TOP}.core").read_text().removeprefix("CAPI=2:\n"))
    assert core["filesets"]["rtl"] == {"files": [f"{TOP}.v"], "file_type": "verilogSource"}
    assert core["filesets"]["waivers"] == {"files": [f"{TOP}.vlt"], "file_type": "vlt"}
    assert core["targets"]["default"] == {"filesets": ["rtl"], "toplevel": TOP}
    # Verilator reads the waivers before the Verilog they apply to.
    assert core["targets"]["lint"]["filesets"] == core["targets"]["verilate"]["filesets"] == ["waivers", "rtl"]
    assert core["targets"]["lint"]["tools"] == {"verilator": {"mode": "lint-only", "verilator_options": ["-Wall"]}}
    assert core["targets"]["verilate"]["tools"] == {"verilator": {"mode": "cc", "exe": "false"}}


def test_waivers_name_each_rule_for_the_verilog_only(rendered):
    _, out_dir, _ = rendered
    lines = (out_dir / f"{TOP}.vlt").read_text().splitlines()
    assert lines[0] == "`verilator_config"
    directives = [line for line in lines[1:] if line and not line.startswith("//")]
    assert directives == [f'lint_off -rule {rule} -file "*{TOP}.v"' for rule in VERILATOR_WAIVERS]
    # Verilator reads a backtick or a comment that starts with its own name as a directive.
    comments = [line.removeprefix("//").strip().lower() for line in lines[1:] if line.startswith("//")]
    assert all("`" not in c and not c.startswith("verilator") for c in comments)
    assert all(len(line) <= 120 for line in lines)


def test_header_states_the_counter_width_of_the_hardware_contract(monkeypatch, tmp_path):
    # The width comes from csr.COUNTER_BITS wherever the header names it: change it and the header follows.
    monkeypatch.setattr(csr, "COUNTER_BITS", 40)
    cfg = CONFIGS["default"]
    header = write_collateral(cfg, Accelerator(cfg), TOP, tmp_path)[0].read_text()
    assert "A 40-bit counter reads as a _LO / _HI" in header and "#define CDSA_COUNTER_BITS              40u" in header
    assert "counters: 40 bits" in header
    assert not any(text in header for text in ("64-bit counter", "48-bit", "48 bits"))


def test_datasheet_covers_config_registers_and_opcodes(rendered):
    cfg, out_dir, _ = rendered
    text = (out_dir / f"{TOP}.md").read_text()
    for name, value in cfg.to_dict().items():
        assert f"| `{name}` | {value} |" in text
    for register in csr.REGISTERS:
        assert f"| 0x{register.offset:02X} | {register.name} | {register.access} |" in text
    for opcode in isa.Opcode:
        assert f"| {opcode.value} | {opcode.name} |" in text
    assert "| `m_axi_awaddr` | output | 32 |" in text and "| `s_axil_wdata` | input | 32 |" in text
    assert "| 0x04 | VERSION | ro | major << 16 \\| minor |" in text   # a `|` in a cell would split it
    assert "| 127..96 | `dram_stride` |" in text


def test_enum_comments_come_from_the_source_with_their_continuation_lines(rendered):
    _, out_dir, _ = rendered
    text = (out_dir / f"{TOP}.md").read_text()
    assert ("| 3 | ALIGNMENT | a DMA address / length / stride not a multiple of the bus width, or a COMPUTE "
            "address not a multiple of its word size |") in text
    # The comment-only line after DONE in `csr.Status` documents the error field, not DONE.
    assert "| 0x2 | DONE | set when a program ends (with or without an error), cleared by START |" in text


# ---- helpers
def _gcc(*args: str) -> None:
    result = subprocess.run([GCC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", *args],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _expected_values(cfg: HardwareConfig) -> dict[str, int]:
    """C expression -> the value the Python definitions give it."""
    values = {f"CDSA_REG_{r.name}": r.offset for r in csr.REGISTERS}
    values |= {f"CDSA_{name}": value for name, value in csr.config_values(cfg).items()}
    values |= {"CDSA_ID_VALUE": csr.ID_VALUE, "CDSA_VERSION": csr.VERSION,
               "CDSA_COMMAND_BYTES": isa.COMMAND_BYTES, "CDSA_PARAM_RECORD_BYTES": isa.PARAM_RECORD_BYTES}
    values |= {f"CDSA_CONTROL_{m.name}": m.value for m in csr.Control}
    values |= {f"CDSA_STATUS_{m.name}": m.value for m in csr.Status}
    values |= {f"CDSA_ERROR_{m.name}": m.value for m in csr.Error}
    values |= {f"CDSA_OP_{m.name}": m.value for m in isa.Opcode}
    values |= {f"CDSA_{name.upper()}_WORD_BYTES": n for name, n in dataclasses.asdict(isa.word_bytes(cfg)).items()}
    for prefix, table in (("HEADER", isa.HEADER_FIELDS), ("DMA", isa.DMA_FIELDS), ("COMPUTE", isa.COMPUTE_FIELDS)):
        lsb = 0
        for name, width in table:
            if prefix == "HEADER" or (name, width) not in isa.HEADER_FIELDS:
                values[f"CDSA_{prefix}_{name.upper()}_LSB"] = lsb
                values[f"CDSA_{prefix}_{name.upper()}_WIDTH"] = width
            lsb += width
    for label, command in (("dma", DMA), ("compute", COMPUTE)):
        word = isa.encode(command)
        values |= {f"{label}[{i}]": (word >> (32 * i)) & 0xFFFFFFFF for i in range(4)}
    values |= {f"CDSA_GET(compute, COMPUTE_{name.upper()})": int(getattr(COMPUTE, name))
               for name, _ in isa.COMPUTE_FIELDS[len(isa.HEADER_FIELDS):]}
    values["CDSA_STATUS_ERROR(0x0702u)"] = csr.Error.PROGRAM_OVERRUN
    return values


def _values_program(expected: dict[str, int]) -> str:
    """A C program that packs `DMA` and `COMPUTE` with CDSA_SET, then prints each expression of ``expected``."""
    sets = [f"    CDSA_SET({label}, {_field_macro(fmt, name)}, {int(getattr(command, name))}u);"
            for label, fmt, command, table in (("dma", "DMA", DMA, isa.DMA_FIELDS),
                                               ("compute", "COMPUTE", COMPUTE, isa.COMPUTE_FIELDS))
            for name, _ in table]
    prints = [f'    printf("%s\\t%llu\\n", "{expr}", (unsigned long long)({expr}));' for expr in expected]
    return "\n".join([
        "#include <stdio.h>",
        f'#include "{TOP}.h"',
        "int main(void)",
        "{",
        "    uint32_t dma[CDSA_COMMAND_WORDS] = {0}, compute[CDSA_COMMAND_WORDS] = {0};",
        *sets,
        *prints,
        "    return 0;",
        "}",
        "",
    ])


def _field_macro(fmt: str, name: str) -> str:
    header = {n for n, _ in isa.HEADER_FIELDS}
    return f"{'HEADER' if name in header else fmt}_{name.upper()}"
