"""What a backend's process holds in memory, measured from /proc/self (Linux).

- USS, the process's private memory: Private_Clean + Private_Dirty of
  /proc/self/smaps_rollup, the pages no other process maps (a file mapped by this
  process alone counts, resident pages of the model files included).
- Peak RSS: VmHWM of /proc/self/status (the kernel's high-water mark).
- Peak USS: the kernel keeps no high-water mark of it, so a Sampler thread reads
  smaps_rollup every few ms while the backend loads and runs its first calls (the memory
  pass); the timed rounds run without it. A peak shorter than the interval, or inside a
  call that holds the GIL, can escape it (peak RSS cannot).
- What holds it: each mapping of /proc/self/smaps is in one part (parts): the model
  files (the weights as loaded, where a runtime maps its files: resident pages of them),
  the other files (the runtimes' libraries), XNNPACK's in-memory weight cache (the packed
  weights of the TFLite backend, a memory file) and anonymous memory (heaps, anonymous and
  other memory-file mappings: everything else a runtime allocates). The parts add up to the USS of
  that moment (smaps_rollup's, read as well, checks it). Stages tell the anonymous memory
  apart: what loading added (loaded_anonymous: the runtime's own copies of the weights -
  onnxruntime's initializers and prepacked weights, and the runtime's import), and what
  the first call of every item added (first_calls_anonymous: activation arenas and
  workspaces, and whatever a runtime prepares on first use, e.g. the weights XNNPACK
  unpacks from float16 to float32).
"""
from __future__ import annotations

import threading
from pathlib import Path

MB = 2 ** 20
PARTS = ("model_files", "libraries", "packed_weights", "anonymous")
# The memory file XNNPACK's in-memory weight cache packs into (runtime/litert_c.py).
WEIGHT_CACHE = "/memfd:XNNPack in-memory weight cache"


def uss_bytes(rollup: str = "/proc/self/smaps_rollup") -> int:
    """Private_Clean + Private_Dirty of a smaps_rollup file."""
    total = 0
    with open(rollup) as lines:
        for line in lines:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1]) * 1024
    return total


def peak_rss_bytes(status: str = "/proc/self/status") -> int:
    for line in Path(status).read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{status}: no VmHWM")


def _part(name: str, files: set[str]) -> str:
    if name in files:
        return "model_files"
    if name.startswith(WEIGHT_CACHE):
        return "packed_weights"
    if name.startswith("/") and not name.startswith("/memfd:"):
        return "libraries"
    return "anonymous"  # [heap], [stack], anonymous and memory-file mappings


def parts(files=(), smaps: str = "/proc/self/smaps") -> dict[str, int]:
    """Private bytes of each part (PARTS) of this process's mappings; files: the paths whose
    mappings are the model files."""
    files = {str(Path(f).resolve()) for f in files}
    out = dict.fromkeys(PARTS, 0)
    part = "anonymous"
    with open(smaps) as lines:  # line by line: reading it whole would grow the heap
        for line in lines:
            head = line.split(None, 5)
            if "-" in head[0] and not head[0].endswith(":"):  # a mapping's header line
                part = _part(head[5].strip() if len(head) > 5 else "", files)
            elif head[0] in ("Private_Clean:", "Private_Dirty:"):
                out[part] += int(head[1]) * 1024
    return out


class Sampler:
    """The highest USS seen by a thread that reads it every `interval` seconds, from its
    start until stop()."""

    def __init__(self, interval: float = 0.005):
        self.interval, self.peak = interval, uss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, uss_bytes())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, uss_bytes())
        return self.peak


class Stages:
    """USS and its parts at the stages of a memory pass: start (before loading), loaded
    (the backend made), ready (after the warm-up: every item called)."""

    def __init__(self, files=()):
        self.files, self.at, self.uss = list(files), {}, {}

    def mark(self, stage: str):
        self.at[stage] = parts(self.files)
        self.uss[stage] = uss_bytes()

    def report(self, peak_uss: int, peak_rss: int) -> dict:
        """The JSON-able figures, in MB (the module docstring says what each is)."""
        uss = self.uss
        ready = self.at["ready"]
        anonymous = {stage: p["anonymous"] for stage, p in self.at.items()}
        return {
            "uss_loaded_mb": uss["loaded"] / MB, "uss_ready_mb": uss["ready"] / MB,
            "uss_peak_mb": max(peak_uss, *uss.values()) / MB, "peak_rss_mb": peak_rss / MB,
            "parts_mb": {name: ready[name] / MB for name in PARTS},
            "loading_mb": (uss["loaded"] - uss["start"]) / MB,
            "loaded_anonymous_mb": (anonymous["loaded"] - anonymous["start"]) / MB,
            "first_calls_anonymous_mb": (anonymous["ready"] - anonymous["loaded"]) / MB,
        }
