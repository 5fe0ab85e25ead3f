# One command sets up and runs the demo (make demo), one runs the tests (make test).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
FC     := $(VENV)/bin/fomm-convert
STAMP  := $(VENV)/.installed

.PHONY: install demo test all bench clean

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

# Speed of every format of a synthetic vox bundle against PyTorch eager (minutes; noisy on
# a shared machine: it interleaves rounds and reports medians).
BENCH := artifacts/bench
MEDIA := $(wildcard ../shared/media/driving.mp4)
bench: install
	$(FC) build --dataset vox --synthetic --force --out $(BENCH)/vox \
	    --formats savedmodel,tflite,tflite-fp16,tflite-int8,onnx
	$(FC) bench --bundle $(BENCH)/vox --checkpoint checkpoints/vox-synthetic-seed7.pth.tar \
	    --threads 1,2 --repeats 5 --json $(BENCH)/vox.json $(if $(MEDIA),--quality-media ../shared/media)

clean:
	rm -rf $(VENV) artifacts
