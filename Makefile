# quantlab: set-up, demo, tests and benchmarks. Needs only Python 3.11+, pip and make.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export MPLBACKEND ?= Agg
export PYTHONHASHSEED ?= 0

.PHONY: venv demo test bench chaos lint typecheck clean-cache help

help:
	@echo "make demo   - create .venv, install, run the main job on the bundled data (writes reports/)"
	@echo "make test   - create/update .venv and run the whole test suite"
	@echo "make bench  - run benchmarks/ and write benchmarks/results.json and results.md"
	@echo "make chaos [N=500] [JOBS=4] - the bridge fault-injection suite; writes benchmarks/chaos.md and chaos.json (replay: make chaos SEED=1234; BRACKETS=1: with exit rules, into benchmarks/brackets/)"
	@echo "make lint   - ruff over the tree;  make typecheck - mypy strict on quantlab, bridge, research (both run by .ci/run)"

venv: $(STAMP)

$(STAMP): pyproject.toml setup.cfg requirements/constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "quantlab needs Python >= 3.11, found " + sys.version.split()[0] + ": install python3.11 and run make again (or make PYTHON=/path/to/python3.11)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
	@touch $(STAMP)

DEMO_GRID := fast=5:100:1,slow=10:250:2
WF_GRID := fast=5:100:5,slow=20:250:10

demo: venv
	@echo "== bundled market data"
	$(BIN)/quantlab data list
	@echo "== data-quality check (XNYS calendar, OHLC relations, duplicates, gaps)"
	$(BIN)/quantlab data check
	@echo "== optimize: $$(echo '$(DEMO_GRID)' | tr , ' ') on SPY, 30% held out"
	$(BIN)/quantlab optimize --strategy sma_cross --symbols SPY --grid "$(DEMO_GRID)" --metric sharpe \
		--constraint "max_drawdown>-0.35" --top 10 --holdout 0.3
	@echo "== walk-forward: 3-year training, 1-year test windows"
	$(BIN)/quantlab walkforward --strategy sma_cross --symbols SPY --grid "$(WF_GRID)" --train 3y --test 1y --embargo 5d
	@echo "== live bridge, replay mode: the same kernel, sizing, risk gate and ledger on bundled bars (no IB needed)"
	rm -f reports/demo-bridge-ledger.db reports/demo-bridge-ledger.db-*
	$(BIN)/bridge run --replay --strategy sma_cross --symbols SPY --params fast=20,slow=50 --start 2021-01-01 \
		--ledger reports/demo-bridge-ledger.db --log-level WARNING
	@echo "== runs so far"
	$(BIN)/quantlab runs
	@echo "Open reports/index.html (offline pages: equity, heatmaps, folds, overfitting; QuantStats tearsheets)."

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

# Fault-injection suite (docs/bridge.md): N seeded schedules on JOBS workers; SEED=1234 replays one.
N ?= 500
JOBS ?= 4
chaos: venv
	if [ -n "$(SEED)" ]; then PYTHONPATH=$(CURDIR) $(BIN)/python -m tests.chaos --seed $(SEED) $(if $(BRACKETS),--brackets); \
	else PYTHONPATH=$(CURDIR) $(BIN)/python -m tests.chaos --n $(N) --jobs $(JOBS) $(if $(BRACKETS),--brackets --out benchmarks/brackets,--out benchmarks); fi

# ruff over the whole tree (settings in pyproject.toml). `ruff format --check .` joins it
# once the tree has been formatted in one commit (the lead does that after the merges).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy strict (setup.cfg: the one exemption is numba kernel modules, see tests/test_typing_policy.py)
typecheck: venv
	$(BIN)/mypy quantlab bridge research

clean-cache:
	rm -rf .cache/numba
