# One command sets up and runs the demo (make demo), one runs the tests (make test); make
# test-fast runs the tests of none of the slow, browser and network tiers (CONTRIBUTING.md).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
FC     := $(VENV)/bin/fomm-convert
STAMP  := $(VENV)/.installed

.PHONY: install web demo test test-fast all bench clean

# The venv holds the toolchain pinned in pyproject.toml; rebuilt only when that changes.
install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: install web
	$(FC) demo
	@echo "TPSMM: $(FC) demo --dataset tpsmm-vox (a synthetic build and 96 frames at 256x256: ~35 min and 7 GB of memory on 2 shared cores)"

# The browser runtimes (runtime/browser, web/): Debian chromium, node + npm, and web/'s
# npm packages from its lockfile. Root installs what is missing; anyone else is told what
# to install (their browser tests then skip, naming it; with CI=true they fail).
WEB_STAMP := web/node_modules/.installed
ROOT_USER := $(filter 0,$(shell id -u))
APT       := DEBIAN_FRONTEND=noninteractive apt-get
web:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ -n "$(ROOT_USER)" ]; then $(APT) update && $(APT) install -y chromium; \
	  else echo "browser backends: install chromium (sudo apt-get install chromium)"; fi; fi
	@if ! command -v npm >/dev/null; then \
	  if [ -n "$(ROOT_USER)" ]; then $(APT) update && $(APT) install -y nodejs npm; \
	  else echo "browser backends: install node and npm (sudo apt-get install nodejs npm)"; fi; fi
	@if command -v npm >/dev/null; then $(MAKE) -s --no-print-directory $(WEB_STAMP); fi

# npm ci again whenever the lockfile changes (no install scripts: none is needed).
$(WEB_STAMP): web/package.json web/package-lock.json
	npm ci --prefix web --ignore-scripts --no-audit --no-fund
	touch $@

# A bundle for every dataset whose checkpoint is in checkpoints/ (skipped ones are listed).
all: install
	$(FC) build-all

# Both run the tests in two pytest-xdist workers, a file's tests in one (its module fixtures
# made once); the session's builds are made once for both (tests/conftest.py: once_per_run).
XDIST := -n 2 --dist loadfile

test: install web
	$(PY) -m pytest -q $(XDIST)

# The registry is reached only to make the venv (missing, or pyproject.toml changed).
test-fast: install
	$(PY) -m pytest -q -m "not slow and not browser and not network" $(XDIST)

# Speed and memory of every format of a synthetic vox bundle (and OpenVINO on its ONNX
# files) against PyTorch eager (minutes, ExecuTorch's export 4 to 11 of them; noisy on a
# shared machine: it interleaves rounds and reports medians).
BENCH := artifacts/bench
MEDIA := $(wildcard ../shared/media/driving.mp4)
bench: install
	$(FC) build --dataset vox --synthetic --force --out $(BENCH)/vox \
	    --formats savedmodel,tflite,tflite-fp16,tflite-int8,onnx,tflite-static,tflite-static-fp16,executorch
	$(FC) bench --bundle $(BENCH)/vox --checkpoint checkpoints/vox-synthetic-seed7.pth.tar \
	    --threads 1,2 --repeats 5 --json $(BENCH)/vox.json $(if $(MEDIA),--quality-media ../shared/media)
	$(FC) build --dataset tpsmm-vox --synthetic --force --out $(BENCH)/tpsmm-vox
	$(FC) bench --bundle $(BENCH)/tpsmm-vox --checkpoint checkpoints/tpsmm-vox-synthetic-seed7.pth.tar \
	    --threads 1,2 --repeats 5 --json $(BENCH)/tpsmm-vox.json

clean:
	rm -rf $(VENV) artifacts
