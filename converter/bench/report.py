"""A benchmark report (run.bench) as Markdown for people: the setting, the floor, one table
row per (backend, threads), and the int8 quality when measured."""
from __future__ import annotations


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
             f"FLOPs per frame (encode-once): reference "
             f"{report['flops']['reference']['frame']:.1f} G, TFLite/SavedModel graph "
             f"{report['flops']['xnnpack']['frame']:.1f} G, ONNX graph "
             f"{report['flops']['mlas']['frame']:.1f} G; floor of the reference frame on one "
             f"core: {report['flop_floor_ms']:.0f} ms.", "",
             "| backend | threads | frames/s | frame ms | vs torch | kp_detector ms | "
             "process_kp ms | generator ms | generate (encoded) ms | floor ms | "
             "peak RSS MB | size MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        lines.append(
            f"| {r['backend']} | {r['threads']} | {r['frames_per_second']:.2f} | "
            f"{r['frame_ms']:.1f} | {r.get('speedup_vs_torch', float('nan')):.2f}x | "
            f"{r['kp_detector_ms']:.1f} | {r['process_kp_driving_ms']:.2f} | "
            f"{r['generator_ms']:.1f} | {r['generator_encoded_ms']:.1f} | "
            f"{r['flop_floor_ms']:.0f} | {r['peak_rss_mb']:.0f} | {r['artifact_mb']:.1f} |")
    if "int8_quality" in report:
        q = report["int8_quality"]
        lines += ["", f"int8 TFLite vs float32 TFLite on {q['frames']} frames of "
                      f"{q['driving']}: PSNR mean {q['psnr_db_mean']:.2f} dB (min "
                      f"{q['psnr_db_min']:.2f}), max pixel difference {q['max_abs']:.3f}, "
                      f"keypoint drift max {q['keypoint_drift_max']:.2e}."]
    return "\n".join(lines) + "\n"
