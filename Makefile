# srbench: `make bench` and `make test` each create .venv and install on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The shared data folder beside the checkout, when there is one and nothing else was set.
ifneq ($(wildcard ../shared/datasets),)
SRBENCH_DATA ?= $(abspath ../shared/datasets)
export SRBENCH_DATA
endif

.PHONY: bench test install report clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

bench: $(STAMP)
	$(BIN)/srbench bench --out reports

report: $(STAMP)
	$(BIN)/srbench report --out reports

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)
