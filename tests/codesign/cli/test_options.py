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


# ---- numbers: finite, in range, checked where the flag is declared

@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 0.0, 1.5])
def test_a_fraction_is_finite_and_in_its_range(value):
    from codesign.cli.options import fraction
    from codesign.errors import InputError

    with pytest.raises(InputError, match="expected a fraction in"):
        fraction("--budget", value)


def test_finite_range_says_its_bounds():
    from codesign.cli.options import finite_range
    from codesign.errors import InputError

    assert finite_range(0, 2)("--x", 2.0) == 2.0
    with pytest.raises(InputError, match=r"--x: -1 is not allowed; expected a finite number >= 0 and <= 2"):
        finite_range(0, 2)("--x", -1)
    assert finite_range()("--x", -1e300) == -1e300


@pytest.mark.parametrize("text", ["0.5,nan", "inf", "", "0.5,,0.7"])
def test_a_list_of_numbers_is_finite(text):
    from codesign.cli.options import floats
    from codesign.errors import InputError

    with pytest.raises(InputError, match="comma-separated finite numbers"):
        floats("--budgets", text)


def test_verify_images_is_none_when_not_given():
    from codesign.cli.main import build_parser

    assert build_parser().parse_args(["verify"]).images is None


# ---- outputs: checked first, nothing left behind

def test_output_checks_accept_new_places_and_create_nothing(tmp_path):
    from codesign.cli.options import STDOUT, output_dir, output_file

    assert output_file("--out", tmp_path / "a" / "b" / "r.json") == tmp_path / "a" / "b" / "r.json"
    assert output_dir("--out", tmp_path / "c" / "d") == tmp_path / "c" / "d"
    assert output_file("--json", "-", stdout=True) == STDOUT
    assert output_file("--out", tmp_path / "-") == tmp_path / "-"        # only where stdout is allowed is - stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("check, place, allowed", [
    ("file", "adir", "a file path, not an existing directory"),
    ("file", "afile/r.json", "a file below a directory, not below the file"),
    ("file", "afile/x/r.json", "a file below a directory, not below the file"),
    ("dir", "afile", "a directory, not an existing file"),
    ("dir", "afile/sub", "a directory below a directory, not below the file"),
    ("dir", "/proc/codesign", "a directory in a writable place"),
])
def test_output_checks_refuse_bad_places(tmp_path, monkeypatch, check, place, allowed):
    from codesign.cli.options import output_dir, output_file
    from codesign.errors import InputError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError) as info:
        (output_file if check == "file" else output_dir)("--out", place)
    assert (info.value.field, info.value.value) == ("--out", place) and allowed in info.value.allowed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]


def test_every_leaf_command_names_itself_in_its_errors():
    from codesign.cli.main import build_parser

    top = build_parser()
    for action in top._subparsers._group_actions:
        for parser in action.choices.values():
            nested = [a for a in parser._actions if isinstance(a, type(action))]
            leaves = [sub for a in nested for sub in a.choices.values()] or [parser]
            for leaf in leaves:
                assert leaf.get_default("prog") == leaf.prog, leaf.prog


def test_argparse_errors_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as info:
        main(["sim", "layer", "--layer", "layer.json", "--seed", "x"])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "codesign sim layer: error: argument --seed: invalid int value: 'x' (see codesign sim layer --help)"]
