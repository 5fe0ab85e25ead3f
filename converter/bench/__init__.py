"""`fomm-convert bench`: per-frame speed of every backend of a bundle, side by side with
PyTorch eager on the same checkpoint, on this machine.

What is measured, per backend and thread count (each (backend, threads) in its own
subprocess, worker.py, so that its memory and thread settings are its own):
- kp_detector (one driving frame), process_kp_driving (relative, adapted scale),
  generator (the full serving_default with its diagnostics: no encode-once) and
  generator_encoded (`generate` from the source encoded once);
- frame: the per-frame pipeline an application runs with encode-once, timed as one unit
  (kp_detector on the driving frame + process_kp_driving + generate); frames/s = 1000 /
  frame_ms;
- memory (memory.py): private memory (USS) after loading and at its peak, what holds it
  (the model files' resident pages, libraries, anonymous memory; what loading added, e.g.
  XNNPACK's packed weights, and what the first calls added), peak RSS (VmHWM over the
  whole run), and the size of the files the backend loads.
Timing (run.py): batch 1, after `warmup` runs of everything; then `repeats` rounds, each
round timing every item once in every worker of a thread count, the workers' order
rotated from round to round (interleaved: a slow spell of a shared machine hits every
backend); the median of the rounds is reported, with their spread. Thread counts run one
after the other, so only one thread count's workers are alive at a time.

The floor: FLOPs per frame counted analytically from the spec (flops.py), divided by this
machine's float32 matmul throughput on one core (machine.py). `flop_floor_ms` is the
reference function's encode-once frame on one thread; each result also has the floor of
the graph its backend runs at its thread count.

With quality media (DIR/source.png and DIR/driving.mp4), the report also states what the
dynamic-range int8 TFLite generator costs in quality against float32 TFLite
(parity/quality.py): PSNR of the predicted frames and keypoint drift on real media.

Modules: flops, machine, memory, backends (which backends a bundle holds), worker (the
timing subprocess and its protocol; `python -m fomm_convert.bench` runs it), run (bench,
int8_quality), report (Markdown). Lite: no torch or tensorflow outside the workers.
"""
from ..errors import FommError


class BenchError(FommError):
    """A benchmark that cannot run: a missing backend, bad settings, a dead worker."""
