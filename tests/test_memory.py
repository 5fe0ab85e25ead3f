"""The bench's memory figures (bench/memory.py) and how the TFLite backend holds its
weights, on the tiny bundle. Linux only (/proc/self)."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from fomm_convert.bench.memory import PARTS, parts, uss_bytes
from fomm_convert.bench.worker import Worker

from conftest import ROOT, TINY_CHECKPOINT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc/self")

# In a fresh process: XNNPACK's packed weights (the weight cache's memory file) after the
# generator's encode_source and generate, and after its serving_default too, which uses
# the same weights; then, every model having run, the model files' resident pages.
PACKED = """
import json, sys
from fomm_convert.bench.memory import parts
from fomm_convert.bundle.open import open_bundle
from fomm_convert.fixtures import demo_inputs
opened = open_bundle(sys.argv[1], check=False)
backend = opened.backend("tflite", threads=1)
source, driving = demo_inputs(opened.spec.frame_shape, frames=2)
kp_source, kp_driving = backend.kp_detector(source), backend.kp_detector(driving)
kp_driving = backend.process_kp_driving(kp_driving, kp_driving, kp_source, True, True, True)
encoded = backend.encode_source(source)
backend.generate(encoded, kp_driving, kp_source)
once = parts()["packed_weights"]
backend.generator(source, kp_driving, kp_source)
paths = list(backend.paths.values())
print(json.dumps({"once": once, "all": parts()["packed_weights"],
                  "resident": parts(paths)["model_files"],
                  "files": sum(p.stat().st_size for p in paths)}))
"""


def test_parts_partition_the_private_memory():
    """smaps' mappings, split into the parts, add up to smaps_rollup's USS read just
    before and just after."""
    before, split, after = uss_bytes(), parts(), uss_bytes()
    assert set(split) == set(PARTS)
    assert split["libraries"] > 0 and split["anonymous"] > 0
    assert 0.99 * min(before, after) <= sum(split.values()) <= 1.01 * max(before, after)


def test_shared_weights_are_packed_once(tiny_bundle):
    """The generator's serving_default shares every weight with encode_source and generate:
    with XNNPACK's weight cache its first call packs nothing more (the Interpreter packed
    each signature apart: 2.3x the file on vox-256). Once each signature has run, the
    files' pages are no longer resident."""
    run = subprocess.run([sys.executable, "-c", PACKED, str(tiny_bundle)], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["once"] > 0.3 * found["files"], found
    assert found["all"] < 1.05 * found["once"], found
    # Every signature has run: the files' pages have been handed back (file_pages.py).
    assert found["resident"] < 0.1 * found["files"], found


def ticks_in_the_middle(call) -> int:
    """Ticks of a thread that ticks every millisecond, in the middle half of call()."""
    ticks, done = [], threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)
    thread = threading.Thread(target=tick)
    thread.start()
    time.sleep(0.02)
    start = time.perf_counter()
    call()
    end = time.perf_counter()
    done.set()
    thread.join()
    quarter = (end - start) / 4
    return sum(start + quarter <= t <= end - quarter for t in ticks)


def test_a_tflite_call_lets_other_threads_run(tiny_bundle):
    """The runtime releases the GIL while it runs (animate decodes and encodes in other
    threads meanwhile). A call that held it would let no tick into the middle half of the
    call, however idle the machine; released, a tick lands there unless the scheduler gives
    the ticker no core for that whole span, which a busy machine may do to one call but
    not to five in a row."""
    from fomm_convert.bundle.open import open_bundle
    from fomm_convert.fixtures import demo_inputs
    opened = open_bundle(tiny_bundle, check=False)
    backend = opened.backend("tflite", threads=1)
    source, driving = demo_inputs(opened.spec.frame_shape, frames=64)
    kp_source, kp_driving = backend.kp_detector(source), backend.kp_detector(driving)
    backend.generator(source, kp_driving, kp_source)  # XNNPACK prepares it
    counts = []
    for _ in range(5):
        counts.append(ticks_in_the_middle(lambda: backend.generator(source, kp_driving,
                                                                    kp_source)))
        if counts[-1]:
            break
    assert counts[-1] > 0, counts


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


def test_a_mapping_gone_before_its_pages_are_handed_back(tmp_path):
    """A model file's mapping freed after /proc/self/maps was read (another model of the
    same file, destroyed meanwhile) has nothing left to hand back: no error. Any other
    madvise failure still raises."""
    import mmap
    from fomm_convert.runtime.file_pages import release_file_pages
    model = tmp_path / "model.tflite"
    model.write_bytes(b"\0" * mmap.PAGESIZE * 4)
    with open(model, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        maps = (tmp_path / "maps").open("w")
        with open("/proc/self/maps") as real:
            maps.write(real.read())
        maps.close()
    # The file's mapping listed in `maps` is gone now: madvise answers ENOMEM.
    assert str(model) in (tmp_path / "maps").read_text()
    release_file_pages(model, maps=str(tmp_path / "maps"))
    (tmp_path / "bad").write_text(f"1-1001 r--p 00000000 00:00 0 {model}\n")  # unaligned: EINVAL
    with pytest.raises(OSError, match="madvise failed"):
        release_file_pages(model, maps=str(tmp_path / "bad"))
