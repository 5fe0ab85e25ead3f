"""Where a TFLite frame's time goes, per op, for several variants of one bundle side by side
(issue 23: the dynamic-batch file against its static twin), at each thread count.

Each variant's files are compiled by our runtime (runtime/litert_c.py: LiteRT's C API,
XNNPACK, the weight cache) with LiteRT's op profiler on, and the bench's frame item is run
(bench/worker.py, timed_items: kp_detector + process_kp_driving + generate, source encoded
once, batch 1): after a warm-up the variants take turns, frame by frame (A B, B A, ...),
so that a load on the machine weighs on them alike. Per variant it prints the frame's
median wall and CPU time, the median of the paired ratios to the first variant, whether
each item's outputs are bit-identical to the first variant's, and per model: its ops, how
many XNNPACK partitions they form, the ops left to TFLite's own kernels (which run on one
thread) with their time, and the sum of the ops' times per call. --summaries DIR keeps
LiteRT's full summaries (run order, top ops, by node type). The profiler's own cost is in
every figure (--no-profile: the frames alone); compare rows of one run only.

    .venv/bin/python scripts/profile_tflite.py --bundle DIR [--variants tflite,tflite-static]
                                               [--threads 1,2] [--rounds 7] [--summaries DIR]
"""
from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

import numpy as np

from fomm_convert.bench.worker import timed_items
from fomm_convert.bundle.open import open_bundle
from fomm_convert.formats import FORMATS
from fomm_convert.runtime import load_backend

# A row of the summary's tables: node type, start, first, avg ms, %, cdf% ...
_ROW = re.compile(r"\s*(.+?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)%\s+([\d.]+)%")
_DELEGATED = "Delegate/"  # XNNPACK's ops are named so; TFLite's kernels by their op


def run_order(summary: str) -> list[tuple[str, float]]:
    """(node type, average ms per run) of every op of the summary, in run order."""
    table = summary.split("Run Order", 1)[1].split("Top by Computation Time", 1)[0]
    return [(m.group(1), float(m.group(4))) for m in map(_ROW.match, table.splitlines()) if m]


def model_profile(summary: str) -> dict:
    """Ops, XNNPACK partitions (runs of delegated ops), the ops outside XNNPACK (count and
    ms by type) and the ops' summed ms per call."""
    rows = run_order(summary)
    partitions, outside, previous = 0, {}, False
    for name, ms in rows:
        delegated = name.startswith(_DELEGATED)
        partitions += delegated and not previous
        if not delegated:
            count, total = outside.get(name, (0, 0.0))
            outside[name] = (count + 1, total + ms)
        previous = delegated
    return {"ops": len(rows), "partitions": partitions, "outside": outside,
            "op_ms": sum(ms for _, ms in rows),
            "outside_ms": sum(ms for _, ms in outside.values())}


def _timed(call) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()  # CPU: user + system, all threads
    out = call()
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3, out


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return np.array_equal(np.asarray(a), np.asarray(b))


def profile_threads(opened, variants, threads: int, rounds: int, summaries: Path | None,
                    profile: bool = True):
    backends, items = {}, {}
    for name in variants:
        opened.gate([name])  # no runtime is the first to parse a file
        backends[name] = load_backend(name, spec=opened.spec, bundle=opened.path,
                                      threads=threads, profile=profile)
        items[name] = timed_items(backends[name], opened.spec)
    first = variants[0]
    outputs = {name: {item: call() for item, call in items[name].items()} for name in variants}
    identical = {name: sorted(item for item, out in outputs[name].items()
                              if not _same(out, outputs[first][item])) for name in variants}
    for name in variants:
        items[name]["frame"]()
        for model in backends[name].models.values() if profile else ():
            model.start_profile()
    wall = {name: [] for name in variants}
    cpu = {name: [] for name in variants}
    for r in range(rounds):
        for name in variants if r % 2 == 0 else variants[::-1]:
            ms, cpu_ms, _ = _timed(items[name]["frame"])
            wall[name].append(ms)
            cpu[name].append(cpu_ms)
    print(f"\n## {threads} thread(s), {rounds} frames each, taking turns; load average "
          f"{open('/proc/loadavg').read().split()[0]} at the end\n")
    print("| variant | frame ms (median) | CPU ms per frame | paired ratio to "
          f"{first} | outputs that differ from {first}'s |")
    print("|---|---:|---:|---:|---|")
    for name in variants:
        ratio = statistics.median(a / b for a, b in zip(wall[name], wall[first]))
        print(f"| {name} | {statistics.median(wall[name]):.1f} | "
              f"{statistics.median(cpu[name]):.1f} | {ratio:.3f} | "
              f"{', '.join(identical[name]) or 'none (bit-identical)'} |")
    if profile:
        _print_profiles(backends, threads, summaries)
    for backend in backends.values():
        for compiled in backend.models.values():
            compiled.close()


def _print_profiles(backends, threads: int, summaries: Path | None):
    print("\n| variant | model | ops | XNNPACK partitions | op ms per frame | outside "
          "XNNPACK: ms | outside XNNPACK: ops |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name, backend in backends.items():
        for model, compiled in backend.models.items():
            summary = compiled.profile_summary()
            if summaries:
                (summaries / f"{name}-{threads}t-{model}.txt").write_text(summary)
            p = model_profile(summary)
            outside = ", ".join(f"{op} {n} ({ms:.2f} ms)"
                                for op, (n, ms) in sorted(p["outside"].items()))
            print(f"| {name} | {model} | {p['ops']} | {p['partitions']} | {p['op_ms']:.1f} | "
                  f"{p['outside_ms']:.2f} | {outside or 'none'} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--variants", default="tflite,tflite-static",
                        help="TFLite formats of the bundle; the first is the yardstick")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--summaries", type=Path, help="keep LiteRT's summaries here")
    parser.add_argument("--no-profile", action="store_true",
                        help="time the frames only, without the profiler's cost")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in FORMATS or FORMATS[v].kind != "tflite"]
    if unknown:
        parser.error(f"not TFLite formats: {', '.join(unknown)}")
    if args.summaries:
        args.summaries.mkdir(parents=True, exist_ok=True)
    opened = open_bundle(args.bundle, check=False)  # each format is gated when opened
    print(f"load average at start: {open('/proc/loadavg').read().strip()}")
    for threads in (int(t) for t in args.threads.split(",")):
        profile_threads(opened, variants, threads, args.rounds, args.summaries,
                        not args.no_profile)


if __name__ == "__main__":
    main()
