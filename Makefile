# `make demo` and `make test` do all set-up on a fresh machine (a venv in .venv).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEMO_QUERY := loadgen_output,classified_digits,framework=pytorch,loadgen_mode=AccuracyOnly,loadgen_scenario=Offline

.PHONY: install data demo test lint bench clean hint
.DEFAULT_GOAL := install

# The venv's axq is the checkout's (editable). Its .pth file also puts the checkout itself on
# sys.path, as `pip install -e` used to: setuptools' editable finder is asked only after
# sys.path, where, from the folder above a clone called axq, the clone is found first and
# imported as an empty namespace package `axq`. A package found on sys.path wins over that;
# so setuptools' banner that warns of such folders ("Editable installation.") is not shown.
$(BIN)/axq: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install -q -e '.[dev,yolo]'
	$(BIN)/python -c 'import os, sysconfig; print(os.getcwd(), file=open(os.path.join(sysconfig.get_path("purelib"), "axq_checkout.pth"), "w"))'
	touch $(BIN)/axq

# The line to run so that `axq ...` works in this shell; said unless PATH already finds this axq.
hint:
	@if [ "$$(command -v axq)" != "$(abspath $(BIN))/axq" ]; then \
	  echo "axq is installed in $(BIN), which is not on PATH; to type \`axq ...\` in this shell, run:"; \
	  echo "    . $(BIN)/activate"; \
	fi

# `make install` ends with the hint; as demo's or test's prerequisite it leaves that to them.
install: $(BIN)/axq data
	@$(if $(filter-out install,$(or $(MAKECMDGOALS),install)),:,$(MAKE) --no-print-directory -s hint)

# Fashion-MNIST from Debian's dataset-fashion-mnist where apt is available (best effort).
data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  ($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
	  || echo "note: could not install dataset-fashion-mnist; Fashion-MNIST needs fashion_mnist_dir=..."; \
	fi

demo: install
	$(BIN)/axq byquery $(DEMO_QUERY) , get accuracy_report
	@$(MAKE) --no-print-directory -s hint

# pytest's exit code 5 (no tests collected) counts as a failure.
test: install
	$(BIN)/python -m pytest -q; code=$$?; \
	if [ $$code -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$code

# mypy: recipe folders are not packages (many hold a code.py): with explicit package bases each
# recipe file is the module entries.<recipe>.<file>, and entries/lib (MYPYPATH) holds the
# packages recipes import (axq_mlperf).
RECIPE_FILES = $(filter-out entries/lib/%,$(wildcard entries/*/*.py))
lint: install
	$(BIN)/ruff check axq entries tests benchmarks
	MYPYPATH=entries/lib $(BIN)/mypy --explicit-package-bases axq entries/lib/axq_mlperf $(RECIPE_FILES)

bench: install
	$(BIN)/python benchmarks/bench_overhead.py
	$(BIN)/python benchmarks/bench_harness.py

clean:
	rm -rf $(VENV) build *.egg-info
