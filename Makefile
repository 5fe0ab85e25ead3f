# One command sets up and runs the demo (make demo), one runs the tests (make test).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
FC     := $(VENV)/bin/fomm-convert
STAMP  := $(VENV)/.installed

.PHONY: install demo test all clean

# The venv holds the toolchain pinned in pyproject.toml; rebuilt only when that changes.
install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: install
	$(FC) demo

# A bundle for every dataset whose checkpoint is in checkpoints/ (skipped ones are listed).
all: install
	$(FC) build-all

test: install
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) artifacts
