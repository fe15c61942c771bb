# srbench: `make bench` and `make test` each create .venv and install on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The data folder (one sub-folder per dataset: Set5/, Set14/, T91/): `make bench DATA=DIR`
# (or `make test DATA=DIR`) wins; else $SRBENCH_DATA; else the shared folder beside the
# checkout, when there is one. DATA goes through SRBENCH_DATA so that bench, test and
# train all see the same folder.
ifeq ($(origin DATA),command line)
SRBENCH_DATA := $(abspath $(DATA))
export SRBENCH_DATA
else ifneq ($(wildcard ../shared/datasets),)
SRBENCH_DATA ?= $(abspath ../shared/datasets)
export SRBENCH_DATA
endif

.PHONY: bench bench-standard test install report clean-venv

install: $(STAMP)

# setuptools cautions about every editable install of a package-dir mapping
# (srbench._methods lives in methods/); the install is as intended, so that note is muted.
# A venv made before the distribution was renamed (srbench -> srbench-sisr) still holds the
# old one: it is removed first.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip uninstall --quiet --yes srbench 2>/dev/null || true
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e '.[test]'
	@# The numba kernels (SC, NE+NNLS, SSIM) compile once per checkout (about 20 s) into
	@# __pycache__: done here, as a build step, rather than in the first benchmark run.
	$(BIN)/python -m srbench.jit
	@# Bytecode of srbench's own modules, as pip writes it for an ordinary install: an editable
	@# install leaves it to the first import, which never writes it where PYTHONDONTWRITEBYTECODE
	@# is set (compiling the sources then costs every `srbench` command about 0.25 s).
	$(BIN)/python -m compileall -q srbench methods
	touch $(STAMP)

bench: $(STAMP)
	$(BIN)/srbench bench --out reports

# The four sets of every SR paper since 2015 (Set5, Set14, BSD100, Urban100), one cell at a time
# like every timing in the report; `srbench bench --suite standard --jobs auto` runs two cells
# side by side (39 minutes on two cores). Its own report folder, so the published paper report stays as it is;
# the store is shared, so Set5/Set14 cells already computed by `make bench` are reused.
bench-standard: $(STAMP)
	$(BIN)/srbench bench --suite standard --out reports/standard

report: $(STAMP)
	$(BIN)/srbench report --out reports

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)
