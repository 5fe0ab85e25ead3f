"""A benchmark report (run.bench) as Markdown for people: the setting, the floor, one table
row per (backend, threads), and the int8 quality when measured."""
from __future__ import annotations

import statistics

from .memory import PARTS


def _spread(samples) -> float:
    """(slowest - fastest) / median of a row's frame times."""
    ordered = sorted(samples)
    return (ordered[-1] - ordered[0]) / statistics.median(ordered)


def _ms(value) -> str:
    return "-" if value is None else f"{value:.0f}"


def _speedup(row) -> str:
    """The row's speed-up against PyTorch eager; a dash when torch was not measured."""
    return f"{row['speedup_vs_torch']:.2f}x" if "speedup_vs_torch" in row else "-"


def _floor(report: dict) -> str:
    if report["flops"] is None:
        return "FLOPs: not counted for this architecture (bench/flops.py), so no floor."
    return (f"FLOPs per frame (encode-once): reference "
            f"{report['flops']['reference']['frame']:.1f} G, TFLite/SavedModel graph "
            f"{report['flops']['xnnpack']['frame']:.1f} G, ONNX graph "
            f"{report['flops']['mlas']['frame']:.1f} G; floor of the reference frame on one "
            f"core: {report['flop_floor_ms']:.0f} ms.")


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# fomm-convert bench: {report['spec']} {'x'.join(map(str, report['frame_shape']))}",
             "",
             f"{m['cpu']}, {m['cores']} cores; float32 matmul {m['matmul_gflops_per_core']} "
             f"GFLOP/s per core (OpenBLAS {m['openblas_core']}); load average at start "
             f"{m['load_average'][0]:.2f}, at end {m['load_average_end'][0]:.2f}.",
             f"Batch 1, median of {report['repeats']} interleaved rounds after "
             f"{report['warmup']} warm-up run(s). Frame = kp_detector + process_kp_driving + "
             "generate (source encoded once). generator = the full generator without "
             "encode-once.",
             _floor(report),
             "Memory (bench/memory.py): USS = private memory, after loading and at its peak; "
             "its parts after the warm-up (resident pages of the model files, of the "
             "libraries, XNNPACK's packed weights, anonymous); of the anonymous memory, "
             "loading heap = what loading added (the runtime's copies of the weights, e.g. "
             "onnxruntime's initializers); running = peak USS - USS after loading (what the "
             "first calls add: activations, kept or transient, and XNNPACK's packing, "
             "done at a signature's first call).",
             "Spread = (slowest - fastest) / median frame time over the rounds.", "",
             "| backend | threads | frames/s | frame ms | spread | vs torch | kp_detector ms | "
             "process_kp ms | generator ms | generate (encoded) ms | floor ms | "
             "peak RSS MB | size MB | USS loaded MB | USS peak MB | model files MB | "
             "libraries MB | packed weights MB | anonymous MB | loading heap MB | running MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * 8]
    for r in report["results"]:
        lines.append(
            f"| {r['backend']} | {r['threads']} | {r['frames_per_second']:.2f} | "
            f"{r['frame_ms']:.1f} | {_spread(r['samples_ms']['frame']):.0%} | "
            f"{_speedup(r)} | "
            f"{r['kp_detector_ms']:.1f} | {r['process_kp_driving_ms']:.2f} | "
            f"{r['generator_ms']:.1f} | {r['generator_encoded_ms']:.1f} | "
            f"{_ms(r['flop_floor_ms'])} | {r['peak_rss_mb']:.0f} | {r['artifact_mb']:.1f} | "
            f"{r['uss_loaded_mb']:.0f} | {r['uss_peak_mb']:.0f} | "
            + " | ".join(f"{r['parts_mb'][part]:.0f}" for part in PARTS)
            + f" | {r['loaded_anonymous_mb']:.0f} | "
            f"{r['uss_peak_mb'] - r['uss_loaded_mb']:.0f} |")
    if "int8_quality" in report:
        q = report["int8_quality"]
        lines += ["", f"int8 TFLite vs float32 TFLite on {q['frames']} frames of "
                      f"{q['driving']}: PSNR mean {q['psnr_db_mean']:.2f} dB (min "
                      f"{q['psnr_db_min']:.2f}), max pixel difference {q['max_abs']:.3f}, "
                      f"keypoint drift max {q['keypoint_drift_max']:.2e}."]
    return "\n".join(lines) + "\n"
