"""`codesign bench NAME`: every benchmark behind one subcommand, with the flags and defaults it had as a module."""

import json

import pytest
import torch

from codesign.cli.bench import NAMES
from codesign.cli.main import build_parser, main
from codesign.compiler.naive_pricing import GRID_POINTS


def test_an_unknown_benchmark_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", "nosuch"])
    assert info.value.code == 2
    assert "invalid choice: 'nosuch'" in capsys.readouterr().err


def test_bench_help_lists_every_benchmark(capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", "--help"])
    assert info.value.code == 0
    listed = capsys.readouterr().out
    assert NAMES == ("batchtile", "depthwise", "quant", "rtl", "search", "ohq")
    for name in NAMES:
        assert name in listed


@pytest.mark.parametrize("argv, expected", [
    (["batchtile"], {"out": "build/bench/batchtile.json", "device": "cpu", "iterations": 30, "threads": 2,
                     "weights": "8", "hw_limit": None, "layer_limit": None}),
    (["quant"], {"out": "build/bench/quant.json", "device": "cpu", "fp_epochs": 20, "qat_epochs": 8,
                 "search_epochs": 3}),
    (["rtl", "--out", "r.json"], {"build_dir": "build/bench", "skip_synth": False, "fmax": False}),
    (["search"], {"out": "build/bench/search.json", "dir": "build/bench/search", "device": "cpu"}),
    (["ohq"], {"out": "build/bench/ohq.json", "report_dir": "build/ohq"}),
])
def test_the_defaults_are_the_modules_old_ones(argv, expected):
    args = vars(build_parser().parse_args(["bench", *argv]))
    assert {key: str(args[key]) if key == "build_dir" else args[key] for key in expected} == expected


def test_rtl_needs_its_out(capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", "rtl"])
    assert info.value.code == 2


def test_batchtile_writes_its_report(tmp_path, capsys):
    out = tmp_path / "bench" / "batchtile.json"
    assert main(["bench", "batchtile", "--out", str(out), "--iterations", "2", "--hw-limit", "2", "--layer-limit",
                 "3", "--weights", "mixed"]) == 0
    report = json.loads(out.read_text())
    for key in ("iteration_ms_median", "iteration_ms_all", "layers", "hw_candidates", "mappings_total",
                "grid_points", "device", "threads", "naive_seconds", "naive_speedup", "argmin_identical",
                "target_ms", "paper_ms", "load_average", "load_average_before", "naive_scope", "tight_loop_speedup",
                "naive_best_identical", "cpus", "torch", "machine"):
        assert key in report, key
    assert report["hw_candidates"] == 2 and report["grid_points"] == GRID_POINTS
    assert len(report["iteration_ms_all"]) == 2 and report["device"] == "cpu" and report["threads"] == 2
    assert report["argmin_identical"] and report["valid_identical"] and report["mappings_total"] > 0
    assert report["target_ms"] == 15 and report["paper_ms"] == 150
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--iterations", "0"], ["--hw-limit", "-1"], ["--threads", "0"],
                                  ["--layer-limit", "0"]])
def test_batchtile_refuses_bad_counts(tmp_path, capsys, argv):
    assert main(["bench", "batchtile", "--out", str(tmp_path / "b.json"), *argv]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"codesign bench batchtile: error: {argv[0]}: {argv[1]} is not allowed; expected a positive "
                     "integer"]
    assert not (tmp_path / "b.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the guard is for machines without CUDA")
@pytest.mark.parametrize("name", ["batchtile", "quant"])
def test_cuda_is_refused_without_a_gpu(tmp_path, capsys, name):
    assert main(["bench", name, "--device", "cuda", "--out", str(tmp_path / "b.json")]) == 2
    assert capsys.readouterr().err.startswith(f"codesign bench {name}: error: --device: 'cuda' is not allowed")
    assert not (tmp_path / "b.json").exists()
