"""`codesign ohq`: its own checks, made before any model is loaded or trained (the flow: tests/codesign/ohq)."""

import pytest

from codesign.cli.main import main


@pytest.mark.parametrize("argv, message", [
    (["--calibration-images", "0"], "--calibration-images: 0 is not allowed; expected a positive number of images"),
    (["--latency", "-1"], "--latency: -1 is not allowed; expected an integer from 0 to 10000 cycles"),
    (["--bits", "2,x"], "--bits: '2,x' is not allowed; expected comma-separated integers"),
    (["--input-shape", "1,8"], "--input-shape: '1,8' is not allowed; expected C,H,W"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert main(["ohq", "--model", str(tmp_path / "model.pt"), "--data", "none", "--fast", "--out", str(out),
                 *argv]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("codesign ohq: error: ") and message in lines[0]
    assert not out.exists()


def test_the_default_network_is_for_digits_only(tmp_path, capsys):
    """Without --model the digits network runs; another data set needs the user's model (nothing is trained)."""
    assert main(["ohq", "--data", "cifar10", "--data-path", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "--model: None is not allowed; expected a model for the cifar10 data" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_hw_is_an_alias_of_config():
    from codesign.cli.main import build_parser

    assert build_parser().parse_args(["ohq", "--hw", "hw.json"]).config == "hw.json"
    assert build_parser().parse_args(["ohq"]).model is None
