"""How close `animate` runs to the rate of its model calls alone, measured in turns.

One process, one backend: each round times the per-frame work `bench` times (the source
prepared once, then kp_detector + process_kp_driving + generate per frame, batch 1) on
the driving clip's frames already decoded and resized in memory, then the whole animate
job (decoding, inference, drawing and encoding side by side, into an .mp4), then the
calls alone again. A shared machine's slow spells (single bench rounds stray by half the
median here) weigh on both alike; the ratio of each job to the mean of the two runs
around it is what the issue's 95% goal compares.

    .venv/bin/python scripts/measure_animate.py --bundle DIR [--backend tflite]
        [--threads 2] [--rounds 3]
        [--source ../shared/media/source.png --driving ../shared/media/driving.mp4]
"""
from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

from fomm_convert.animation.jobs import frame_size, prepare, run_animate
from fomm_convert.animation.loop import Source, animate_frames
from fomm_convert.fomm.animation import Normalisation
from fomm_convert.media import open_video, read_image

RELATIVE = Normalisation(relative=True, adapt_scale=True)

MEDIA = Path(__file__).resolve().parent.parent.parent / "shared" / "media"


def calls_alone(backend, image, frames) -> float:
    """Frames per second of the model calls alone over the decoded frames."""
    start = time.perf_counter()
    source = Source.prepare(backend, image)
    count = sum(len(batch.prediction) for batch in animate_frames(
        backend, source, iter(frames), mode=RELATIVE, batch_size=1))
    return count / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--backend", default="tflite")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source", default=str(MEDIA / "source.png"))
    parser.add_argument("--driving", default=str(MEDIA / "driving.mp4"))
    args = parser.parse_args()
    prepared = prepare(args.bundle, args.backend, threads=args.threads)
    size = frame_size(prepared.spec)
    image = read_image(args.source, size)
    frames = list(open_video(args.driving).frames(size))
    ratios = []
    with tempfile.TemporaryDirectory() as scratch:
        before = calls_alone(prepared.backend, image, frames)
        for round_ in range(args.rounds):
            summary = run_animate(prepared, args.source, args.driving,
                                  Path(scratch) / "out.mp4", mode=RELATIVE,
                                  batch_size=1, stream=io.StringIO(), force=True)
            after = calls_alone(prepared.backend, image, frames)
            ratios.append(summary["frames_per_second"] / ((before + after) / 2))
            print(f"round {round_ + 1}: calls alone {before:.2f} / {after:.2f} frames/s, "
                  f"animate {summary['frames_per_second']:.2f} end to end (inference "
                  f"{summary['inference_frames_per_second']:.2f}): {ratios[-1]:.1%}",
                  flush=True)
            before = after
    print(f"{args.backend}, {args.threads} thread(s), {len(frames)} frames: animate at "
          f"{statistics.median(ratios):.1%} of the calls alone (median of {len(ratios)}; "
          f"{min(ratios):.1%} to {max(ratios):.1%})")


if __name__ == "__main__":
    main()
