"""What machine a benchmark ran on: its CPU, versions, load, and the float32 matmul
throughput of one core that the FLOP floor divides by."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

# Every thread-count setting of the frameworks a worker runs (worker.py sets them all).
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "TF_NUM_INTRAOP_THREADS")


def matmul_gflops(size: int = 2048, repeats: int = 5) -> dict:
    """float32 matmul throughput of one core (numpy/OpenBLAS), measured in a subprocess
    with one BLAS thread and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset (there only: they
    select slower kernels)."""
    code = f"""
import ctypes, json, time, numpy as np
a = np.random.default_rng(0).standard_normal(({size}, {size})).astype(np.float32)
b = np.random.default_rng(1).standard_normal(({size}, {size})).astype(np.float32)
a @ b
times = []
for _ in range({repeats}):
    start = time.perf_counter()
    a @ b
    times.append(time.perf_counter() - start)
core = None
for line in open("/proc/self/maps"):
    if "openblas" in line.lower():
        lib = ctypes.CDLL(line.split()[-1])
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename64_", "openblas_get_corename"):
            if hasattr(lib, name):
                getattr(lib, name).restype = ctypes.c_char_p
                core = getattr(lib, name)().decode()
                break
        break
print(json.dumps({{"gflops": 2 * {size} ** 3 / min(times) / 1e9, "openblas_core": core}}))
"""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update({name: "1" for name in THREAD_ENV})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(size=size, repeats=repeats, statistic="best")
    return result


def machine_info() -> dict:
    model, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model is None:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    versions = {}
    for package in ("numpy", "torch", "tensorflow", "ai-edge-litert", "onnxruntime"):
        try:
            from importlib.metadata import version
            versions[package] = version(package)
        except Exception:  # not installed
            versions[package] = None
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(),
            "simd": sorted(f for f in flags if f.startswith(("avx", "fma", "amx"))),
            "python": platform.python_version(), "versions": versions,
            "load_average": list(os.getloadavg())}
