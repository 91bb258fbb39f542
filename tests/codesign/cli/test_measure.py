"""`codesign calibrate` (the sweep itself is `make calibrate`: minutes of Verilator)."""

import json

from codesign.cli.main import build_parser, main
from sim.measure import calibrate


def test_refit_without_measurements_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(calibrate, "CASES_PATH", tmp_path / "missing.json")
    out, report = tmp_path / "c.json", tmp_path / "r.json"
    assert main(["calibrate", "--refit", "--out", str(out), "--report", str(report)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("codesign calibrate: error: --refit: ")
    assert "--refit needs a run without --refit first" in lines[0]
    assert not out.exists() and not report.exists()


def test_the_flags_and_defaults_of_make_calibrate():
    args = build_parser().parse_args(["calibrate"])
    assert (str(args.out), str(args.report), args.refit) == ("build/calibration.json", "build/bench/costmodel.json",
                                                             False)


def test_refit_fits_saved_measurements_and_writes_the_fit_report_and_plot(tmp_path, monkeypatch, capsys):
    """The whole command without a simulator: measurements the model itself produced with known constants."""
    from codesign.compiler.batchtile import Constants
    from codesign.compiler.mapping import Gemm, Mapping

    truth = Constants(beat=1.1, burst=6.0, command=12.0, tile_gap=7.0, fixed=60.0)
    cases = []
    for m, k, n in ((13, 40, 11), (30, 100, 17), (24, 64, 24), (6, 600, 5)):
        for mapping in (Mapping(), Mapping(bm=2, bn=1, order="acts")):
            for latency in (0, 20, 60):
                description = f"{m}x{k}x{n} {mapping} latency={latency}"
                case = {"config": "8x8-g2-bus64", "gemm": Gemm(m, k, n, (4,) * n), "mapping": mapping,
                        "latency": latency, "description": description, "held_out": calibrate._held_out(description),
                        "bit_exact": True}
                case["measured"] = int(round(calibrate._predictions([case], truth)[0]))
                cases.append(case)
    monkeypatch.setattr(calibrate, "CASES_PATH", tmp_path / "cases.json")
    calibrate.save_cases(cases, tmp_path / "cases.json")
    out, report = tmp_path / "c.json", tmp_path / "bench" / "costmodel.json"
    assert main(["calibrate", "--refit", "--out", str(out), "--report", str(report)]) == 0
    fitted, held_out = json.loads(out.read_text()), json.loads(report.read_text())
    assert fitted["constants"]["calibrated"] and held_out["mape_pct"] < 1.0
    assert held_out["cases"] + held_out["fit_cases"] == len(cases)
    assert {"load_average", "cpus", "machine", "torch", "date"} <= set(held_out)     # bench_environment's record
    assert report.with_suffix(".png").is_file()
    printed = capsys.readouterr().out
    assert "held out" in printed and f"wrote {out}" in printed
