"""The bench's memory figures (bench/memory.py) and the TFLite backend's release of its
model files' pages, on the tiny bundle. Linux only (/proc/self); nothing here is timed."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fomm_convert.bench.memory import PARTS, parts, uss_bytes
from fomm_convert.bench.worker import Worker

from conftest import ROOT, TINY_CHECKPOINT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc/self")

# In a fresh process: resident private bytes of the tiny generator file under a prepared
# Interpreter before and after release_file_pages, whether the released interpreter still
# gives the outputs of one that never released its pages, and the files' residency right
# after a TFLite backend is made.
FILE_PAGES = """
import json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from fomm_convert.bench.memory import parts
from fomm_convert.bundle.open import open_bundle
from fomm_convert.fixtures import demo_inputs
from fomm_convert.runtime.tflite_backend import release_file_pages
opened = open_bundle(sys.argv[1], check=False)
path = opened.path / "tflite" / "kp_detector.tflite"
source, _ = demo_inputs(opened.spec.frame_shape, frames=1)
image = np.asarray(source, np.float32)
released = Interpreter(model_path=str(path))
released.allocate_tensors()
before = parts([path])["model_files"]
release_file_pages(path)
after = parts([path])["model_files"]
got = released.get_signature_runner()(image=image)["value"]
want = Interpreter(model_path=str(path)).get_signature_runner()(image=image)["value"]
backend = opened.backend("tflite", threads=1)
paths = list(backend.paths.values())
print(json.dumps({"size": path.stat().st_size, "before": before, "after": after,
                  "same": bool(np.array_equal(got, want)),
                  "backend": parts(paths)["model_files"],
                  "backend_size": sum(p.stat().st_size for p in paths)}))
"""


def test_parts_partition_the_private_memory():
    """smaps' mappings, split into the parts, add up to smaps_rollup's USS read just
    before and just after."""
    before, split, after = uss_bytes(), parts(), uss_bytes()
    assert set(split) == set(PARTS)
    assert split["libraries"] > 0 and split["anonymous"] > 0
    assert 0.99 * min(before, after) <= sum(split.values()) <= 1.01 * max(before, after)


def test_tflite_backend_hands_back_its_model_files_pages(tiny_bundle):
    """Preparing an Interpreter (XNNPACK packs its own copies) leaves the whole file
    resident; release_file_pages hands its pages back, what a call reads again faults in
    from the file unchanged, and the backend does it for all of its files."""
    run = subprocess.run([sys.executable, "-c", FILE_PAGES, str(tiny_bundle)], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["before"] > 0.5 * found["size"], found
    assert found["after"] < 0.1 * found["size"], found
    assert found["same"]
    assert found["backend"] < 0.1 * found["backend_size"], found


def test_worker_reports_consistent_memory(tiny_bundle):
    worker = Worker("tflite", 1, tiny_bundle, TINY_CHECKPOINT, warmup=1)
    try:
        worker.round()
        memory = worker.finish()
    finally:
        worker.kill()
    assert {"uss_loaded_mb", "uss_ready_mb", "uss_peak_mb", "peak_rss_mb", "parts_mb",
            "loading_mb", "loaded_anonymous_mb", "first_calls_anonymous_mb"} <= set(memory)
    assert 0 < memory["uss_loaded_mb"] <= memory["uss_peak_mb"]
    assert memory["uss_ready_mb"] <= memory["uss_peak_mb"] <= memory["peak_rss_mb"]
    assert sum(memory["parts_mb"].values()) == pytest.approx(memory["uss_ready_mb"], rel=0.05)
    assert memory["loading_mb"] > 0 and memory["loaded_anonymous_mb"] > 0
    assert all(value >= 0 for value in memory["parts_mb"].values())
