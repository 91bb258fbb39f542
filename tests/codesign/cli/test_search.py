"""`codesign search`: bad input is refused before anything trains (the search itself: tests/codesign/jaq)."""

import pytest

from codesign.cli.main import main


def test_a_missing_space_file_exits_2(tmp_path, capsys):
    assert main(["search", "--out", str(tmp_path), "--space", str(tmp_path / "missing.json")]) == 2
    assert "codesign search: error: --space: " in capsys.readouterr().err
    assert not (tmp_path / "design.json").exists()


def test_act_bits_must_be_integers(tmp_path, capsys):
    assert main(["search", "--out", str(tmp_path), "--act-bits", "8,x"]) == 2
    assert "--act-bits: '8,x' is not allowed; expected comma-separated integers" in capsys.readouterr().err


def test_an_unknown_device_is_an_argparse_error(tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["search", "--out", str(tmp_path), "--device", "tpu"])
    assert info.value.code == 2
