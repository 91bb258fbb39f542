# User entry points, each one `codesign` subcommand (or pytest / ruff); `make help` lists them. Every target but `help`
# depends on `setup`, which makes .venv once (idempotent: re-runs only when pyproject.toml changes), so each target
# works on a fresh clone with nothing installed beforehand. `make` alone is `make setup`.

PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
CODESIGN := $(BIN)/codesign
CONFIG   ?=
JOBS     ?= 2

SEARCH   := build/search
ARGS     ?=
# `make rtl` builds the searched design's accelerator when there is one (CONFIG=... overrides)
DESIGN   := $(wildcard $(SEARCH)/design.json)
RTL_ARG  := $(if $(CONFIG),--config $(CONFIG),$(if $(DESIGN),--design $(DESIGN),))

.PHONY: setup help search rtl verify synth pe-table calibrate test test-slow lint bench bench-rtl bench-quant \
	bench-batchtile bench-depthwise bench-search bench-ohq clean

setup: $(STAMP)             ## make .venv and install the project with its dev tools (once; again when pyproject.toml changes)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	@# Icarus is the optional second simulator: install it when apt can, carry on without it otherwise.
	@command -v iverilog >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends iverilog) >/dev/null 2>&1; } || \
		echo "note: iverilog not installed; the Icarus tests will be skipped"
	touch $(STAMP)

help:                      ## this list: every target and what it does
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

search: setup              ## JAQ co-search on digits -> build/search/{design.json,report.md,model.pt,...}; resumes (ARGS=--restart)
	$(CODESIGN) search --out $(SEARCH) $(ARGS)

rtl: setup                 ## Verilog + manifest: CONFIG=hw.json, else build/search/design.json's hardware, else the default
	$(CODESIGN) rtl $(RTL_ARG) --out build/rtl

synth: setup               ## accelerator area by category, SWEEP_CONFIGS -> build/synth/sweep.json (CONFIG=...: one, + Fmax)
	$(CODESIGN) synth $(if $(CONFIG),--config $(CONFIG),--sweep) --out build/synth

pe-table: setup            ## regenerate the committed PE area table codesign/data/pe_area.json
	$(CODESIGN) synth --pe-table codesign/data/pe_area.json

calibrate: setup           ## fit the cost model to RTL cycle counts -> build/calibration.json, build/bench/costmodel.{json,png}
	$(CODESIGN) calibrate --out build/calibration.json --report build/bench/costmodel.json

verify: setup              ## the searched network on the RTL: bit-exact, cycles measured vs predicted -> build/verify/verify.json
	$(CODESIGN) verify --design $(SEARCH)/design.json --out build/verify/verify.json

test: setup                ## the CI suite (long sweeps excluded)
	$(BIN)/pytest -n $(JOBS) -m "not slow" tests

test-slow: setup           ## the long sweeps only
	$(BIN)/pytest -n $(JOBS) -m slow tests

lint: setup                ## ruff: pyflakes, pycodestyle, import order, pyupgrade, bugbear (pyproject.toml)
	$(BIN)/ruff check .

bench: bench-rtl bench-quant bench-batchtile bench-depthwise calibrate bench-search bench-ohq  ## every benchmark and the calibration -> build/bench/

bench-rtl: setup           ## RTL generation, simulation and synthesis figures -> build/bench/rtl.json
	$(CODESIGN) bench rtl --out build/bench/rtl.json

bench-quant: setup         ## CSQ memory, digits QAT accuracy, training time -> build/bench/quant.json
	$(CODESIGN) bench quant --out build/bench/quant.json

bench-search: setup        ## make search from scratch + its network on the RTL, against the targets -> build/bench/search.json
	$(CODESIGN) bench search --out build/bench/search.json

bench-batchtile: setup     ## BatchTile search step (MobileNetV2 x 64 hw) vs a Python loop -> build/bench/batchtile.json
	$(CODESIGN) bench batchtile --out build/bench/batchtile.json

bench-depthwise: setup     ## MobileNetV2-224 per accelerator: depthwise share of cycles, utilization, DRAM -> build/bench/depthwise.json
	$(CODESIGN) bench depthwise --out build/bench/depthwise.json

bench-ohq: setup           ## OHQ on the digits network: RTL-measured cycles vs accuracy, ILP time -> build/bench/ohq.json
	$(CODESIGN) bench ohq --out build/bench/ohq.json

clean:                     ## remove build/ (every output; .venv stays)
	rm -rf build
