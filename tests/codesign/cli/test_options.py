"""The shared options (`codesign.cli.options`): one type, one range and one message wherever a command takes them."""

import pytest

from codesign.cli.main import main
from sim import SIMULATORS

# Every command with --latency, with the arguments it needs to get that far: the check runs while parsing.
LATENCY_COMMANDS = {
    "sim gemm": ["sim", "gemm", "--m", "4", "--k", "8", "--n", "3", "--bits", "4", "--system"],
    "sim layer": ["sim", "layer", "--layer", "layer.json"],
    "map": ["map", "--layers", "layers.json"],
    "verify": ["verify", "--model", "model.json", "--config", "hw.json"],
    "ohq": ["ohq", "--model", "model.pt", "--fast"],
}


@pytest.mark.parametrize("value", ["-1", "10001"])
@pytest.mark.parametrize("command", sorted(LATENCY_COMMANDS))
def test_latency_out_of_range_exits_2_with_one_line(tmp_path, capsys, command, value):
    out = tmp_path / "out"
    output = "--out" if command in ("verify", "ohq") else "--json"
    assert main([*LATENCY_COMMANDS[command], "--latency", value, output, str(out)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"codesign {command}: error: --latency: {value} is not allowed; expected an integer from 0 to "
                     "10000 cycles"]
    assert not out.exists()


@pytest.mark.parametrize("command", sorted(LATENCY_COMMANDS))
def test_latency_is_an_integer(capsys, command):
    with pytest.raises(SystemExit) as info:
        main([*LATENCY_COMMANDS[command], "--latency", "2.5"])
    assert info.value.code == 2
    assert "--latency: invalid int value: '2.5'" in capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(LATENCY_COMMANDS))
def test_each_command_keeps_its_latency_default(command):
    from codesign.cli.main import build_parser

    args = build_parser().parse_args(LATENCY_COMMANDS[command])
    assert args.latency == (0 if command == "sim gemm" else 20)
    assert isinstance(args.latency, int)


@pytest.mark.parametrize("argv", [["sim", "gemm", "--m", "1", "--k", "1", "--n", "1", "--bits", "4"],
                                  ["sim", "layer", "--layer", "layer.json"],
                                  ["ohq", "--model", "model.pt"]])
def test_an_unknown_simulator_exits_2(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--simulator", "bogus"])
    assert info.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_the_simulator_choices_are_the_runners():
    from codesign.cli.main import build_parser

    args = build_parser().parse_args(["sim", "layer", "--layer", "x.json", "--simulator", SIMULATORS[-1]])
    assert args.simulator == SIMULATORS[-1] and SIMULATORS == ("verilator", "icarus")
