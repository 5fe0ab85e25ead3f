"""Peak memory of `fomm-convert animate` against the driving video's length.

Writes synthetic 64x64 clips (30 fps) of the given lengths, animates each with the tiny
bundle in a fresh process, and prints that process's peak RSS (ru_maxrss; the ffmpeg
decoder and encoder are separate processes, not counted). Streaming means the number does
not grow with the clip's length.

    .venv/bin/python scripts/animate_memory.py [--bundle DIR] [--seconds 10 60]
        [--backend tflite] [--out-suffix .mp4]

Without --bundle, a tiny bundle (tests/fixtures) is built into a temporary directory first.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

MEASURE = r"""
import json, resource, sys, time
from fomm_convert.cli import cli
start = time.perf_counter()
try:
    cli.main(sys.argv[1:], prog_name="fomm-convert", standalone_mode=False)
finally:
    print("MEMORY " + json.dumps({
        "self_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seconds": time.perf_counter() - start}), file=sys.stderr)
"""


def clip_frames(n: int, size: int = 64):
    """A bright disc wandering over a gradient, one frame at a time."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    background = np.stack([0.2 + 0.5 * y, 0.3 + 0.2 * x, 0.5 - 0.3 * y], -1)
    for i in range(n):
        t = 2 * np.pi * i / 90
        cx, cy = 0.5 + 0.25 * np.cos(t), 0.5 + 0.25 * np.sin(1.3 * t)
        frame = background.copy()
        frame[(x - cx) ** 2 + (y - cy) ** 2 < 0.03] = (0.9, 0.7, 0.6)
        yield np.rint(frame * 255).astype(np.uint8)


def write_clip(path: Path, seconds: int, fps: int = 30):
    from fomm_convert.media import open_writer
    with open_writer(path, fps) as writer:
        for frame in clip_frames(seconds * fps):
            writer.write(frame)


def build_bundle(out: Path):
    subprocess.run([sys.executable, "-m", "fomm_convert.cli", "build", "--config",
                    str(ROOT / "tests/fixtures/configs/tiny.yaml"), "--checkpoint",
                    str(ROOT / "tests/fixtures/tiny-seed7.pth.tar"), "--out", str(out),
                    "--formats", "tflite,onnx"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--seconds", type=int, nargs="+", default=[10, 60])
    parser.add_argument("--backend", default="tflite")
    parser.add_argument("--out-suffix", default=".mp4")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bundle = args.bundle
        if bundle is None:
            bundle = tmp / "tiny"
            print("building a tiny bundle ...", file=sys.stderr)
            build_bundle(bundle)
        source = tmp / "source.png"
        import imageio.v3 as iio
        iio.imwrite(source, next(clip_frames(1)))
        rows = []
        for seconds in args.seconds:
            clip = tmp / f"clip-{seconds}s.mp4"
            write_clip(clip, seconds)
            out = tmp / f"out-{seconds}s{args.out_suffix}"
            start = time.perf_counter()
            result = subprocess.run([sys.executable, "-c", MEASURE, "animate", "--bundle",
                                     str(bundle), "--source", str(source), "--driving",
                                     str(clip), "--out", str(out), "--backend", args.backend,
                                     "--batch-size", str(args.batch_size)],
                                    cwd=ROOT, capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(result.stderr)
            line = [l for l in result.stderr.splitlines() if l.startswith("MEMORY ")][-1]
            row = {"seconds_of_video": seconds, "frames": seconds * 30,
                   **json.loads(line[len("MEMORY "):]),
                   "wall_seconds": time.perf_counter() - start}
            row["frames_per_second"] = row["frames"] / row.pop("seconds")
            rows.append(row)
            print(f"{seconds:4d} s clip ({row['frames']} frames, {args.backend}, "
                  f"{args.out_suffix}, batch {args.batch_size}): peak RSS "
                  f"{row['self_max_rss_mb']:.1f} MB, {row['frames_per_second']:.0f} frames/s "
                  f"end to end")
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
