"""The README points newcomers at docs/examples/: every file there must work with the command it names."""

import json
from pathlib import Path

from codesign.cli.main import main
from codesign.hw.config import HardwareConfig
from codesign.ir.layers import load_layers

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_the_example_config_is_valid_and_the_example_layers_map_on_it(tmp_path, capsys):
    cfg = HardwareConfig.load(EXAMPLES / "hardware.json")
    assert (cfg.rows, cfg.cols) == (16, 8)
    assert len(load_layers(EXAMPLES / "layers.json")) == 5
    out = tmp_path / "map.json"
    assert main(["map", "--config", str(EXAMPLES / "hardware.json"), "--layers", str(EXAMPLES / "layers.json"),
                 "--json", str(out)]) == 0
    mapped = json.loads(out.read_text())
    assert mapped["total_cycles"] > 0 and "block1.depthwise" in capsys.readouterr().out


def test_the_example_layer_runs_bit_exact_on_the_rtl(tmp_path):
    out = tmp_path / "layer.json"
    assert main(["sim", "layer", "--layer", str(EXAMPLES / "layer.json"), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["bit_exact"]
