"""`codesign map`: the shared integer `--latency` reaches the cost model."""

import json

import pytest

from codesign.cli.main import main
from codesign.ir.layers import Conv2d, Linear, save_layers


@pytest.fixture
def layers(tmp_path):
    path = tmp_path / "layers.json"
    save_layers(path, [Conv2d("c1", 3, 8, 3, padding=1, in_h=8, in_w=8), Linear("fc", 512, 10, w_bits=4)])
    return path


def test_map_prices_at_the_given_integer_latency(tmp_path, layers, capsys):
    near, far = tmp_path / "near.json", tmp_path / "far.json"
    assert main(["map", "--layers", str(layers), "--latency", "0", "--json", str(near)]) == 0
    assert main(["map", "--layers", str(layers), "--latency", "200", "--json", str(far)]) == 0
    near, far = json.loads(near.read_text()), json.loads(far.read_text())
    assert near["latency"] == 0 and far["latency"] == 200 and isinstance(far["latency"], int)
    assert far["total_cycles"] > near["total_cycles"]
    assert "total:" in capsys.readouterr().out


def test_map_default_latency_is_20(tmp_path, layers):
    out = tmp_path / "map.json"
    assert main(["map", "--layers", str(layers), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["latency"] == 20


def test_json_dash_puts_the_result_alone_on_stdout(layers, capsys):
    assert main(["map", "--layers", str(layers), "--json", "-"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["latency"] == 20
    assert "total:" in err


def test_bad_layers_are_refused_before_torch_is_imported(tmp_path):
    """The small JSON inputs are read first: a typo costs milliseconds, not torch's import."""
    import subprocess
    import sys

    bad = tmp_path / "layers.json"
    bad.write_text("[{")
    code = ("import sys; from codesign.cli.main import main; "
            f"assert main(['map', '--layers', {str(bad)!r}]) == 2; assert 'torch' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("codesign map: error: layers file: ")
