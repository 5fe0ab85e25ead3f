"""TPSMM animate's frames against exact arithmetic (issue 22): is the distance of our
frames to the original's its float32 noise or ours? On the same frames, per mode:

  original - float64   the original demo's make_animation loop (tests/test_tpsmm_animate.py)
                       on the torch reference in float32 (the original's bits) against the
                       same loop on its float64 copy (tpsmm/convert.py's `reference`, what
                       the build's and verify's gates hold the formats to)
  backend - float64    each bundle backend's animate loop (animation/loop.py, animate's
                       default batch, --threads) against the float64 loop
  backend - original   the same frames against the float32 loop (what
                       tests/test_tpsmm_animate_backends.py holds to 1e-4)

Max abs over all frames (and the clip's frame it is on), mean abs; frames as floats before
8-bit encoding. The whole sample clip by default; `--frames 100:112 --lossless` is the
test's clip (those frames written lossless: each through 8 bits).

    .venv/bin/python ../shared/oracle-tpsmm/make_weights.py --seed 7 \
        --table ../shared/oracle-tpsmm/statedicts/tiny.json --out CK
    fomm-convert build --config ../shared/oracle-tpsmm/configs/tiny.yaml --checkpoint CK \
        --out B --formats savedmodel,tflite,onnx
    OMP_NUM_THREADS=1 .venv/bin/python scripts/measure_tpsmm_animate_noise.py \
        --bundle B --checkpoint CK [--backends savedmodel,tflite,onnx,openvino] \
        [--modes relative,standard,avd] [--threads 1] [--frames 100:112 --lossless]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT.parent / "shared" / "media"
sys.path.insert(0, str(ROOT / "tests"))  # the original's loop, as the tests run it

from fomm_convert import media  # noqa: E402
from fomm_convert.animation.jobs import animation_mode, frame_size, prepare  # noqa: E402
from fomm_convert.animation.loop import Source, animate_frames  # noqa: E402
from fomm_convert.errors import FommError  # noqa: E402
from fomm_convert.tpsmm.architecture import MODES  # noqa: E402
from fomm_convert.tpsmm.convert import reference  # noqa: E402
from test_tpsmm_animate import make_animation  # noqa: E402


def in_float64(net):
    """A float64 network called as make_animation calls the float32 ones: the float32
    pictures it is given promoted (exactly) to float64."""
    def call(*args):
        return net(*(a.double() if torch.is_tensor(a) and a.dtype == torch.float32 else a
                     for a in args))
    return call


def ours(prepared, source, frames, mode: str) -> np.ndarray:
    """animate's frames on a bundle backend (run_animate's loop and default batch)."""
    backend, mode = prepared.backend, animation_mode(prepared.spec, mode=mode)
    batches = animate_frames(backend, Source.prepare(backend, source), frames, mode=mode,
                             batch_size=mode.frames_per_call(prepared.batch_size))
    return np.concatenate([batch.prediction for batch in batches])


def distance(got, expected, first: int) -> str:
    """'max (frame) / mean' of |got - expected|, frames numbered as in the clip."""
    diff = np.abs(np.asarray(got, np.float64) - np.asarray(expected, np.float64))
    per_frame = diff.reshape(len(diff), -1).max(axis=1)
    return f"{per_frame.max():.3e} ({first + int(per_frame.argmax())}) / {diff.mean():.1e}"


def frame_range(text: str) -> slice:
    """START:STOP (either may be empty) of the clip's frames."""
    try:
        start, stop = (int(x) if x else None for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not START:STOP") from None
    return slice(start, stop)


def timed(what: str, compute):
    start = time.perf_counter()
    out = compute()
    print(f"{what}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="a TPSMM bundle")
    parser.add_argument("--checkpoint", required=True, help="the one it was built from")
    parser.add_argument("--backends", default="savedmodel,tflite,onnx,openvino")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--threads", type=int, default=1,
                        help="the backends' (0: each runtime's own default, as animate and "
                        "the tests run without --threads)")
    parser.add_argument("--frames", type=frame_range, default=":",
                        help="START:STOP of the clip (default: all)")
    parser.add_argument("--lossless", action="store_true",
                        help="each frame through 8 bits, as the test's lossless clip")
    parser.add_argument("--source", default=str(MEDIA / "source.png"))
    parser.add_argument("--driving", default=str(MEDIA / "driving.mp4"))
    args = parser.parse_args()
    modes = args.modes.split(",")
    if set(modes) - set(MODES):
        parser.error(f"--modes {args.modes}: each one of {', '.join(MODES)}")
    torch.set_num_threads(1)
    prepared = {name: prepare(args.bundle, name, threads=args.threads or None)
                for name in args.backends.split(",")}
    bundle = next(iter(prepared.values())).bundle
    if bundle.spec.family != "tpsmm":
        parser.error(f"--bundle {args.bundle}: a {bundle.spec.family} bundle, not a TPSMM one")
    held_to = reference(bundle.spec, bundle.load_checkpoint(args.checkpoint))
    size = frame_size(bundle.spec)
    source = media.read_image(args.source, size)
    clip = list(media.open_video(args.driving).frames(size))
    first = args.frames.indices(len(clip))[0]  # the clip's number of frames[0]
    frames = np.stack(clip[args.frames])
    if args.lossless:
        frames = np.stack([media.to_uint8(f) for f in frames]) / np.float32(255)
    exact_nets = {name: in_float64(net) for name, net in held_to.exact.nets.items()}
    print(f"{len(frames)} frames from {first}, {bundle.path.name}; max abs (frame) / mean abs")
    print("| mode | frames of | - float64 | - original |\n|---|---|---|---|")
    for mode in modes:
        exact = timed(f"{mode} float64", lambda: make_animation(exact_nets, source, frames,
                                                                 mode))
        original = timed(f"{mode} original", lambda: make_animation(held_to.original.nets,
                                                                     source, frames, mode))
        print(f"| {mode} | original (torch float32) | {distance(original, exact, first)} | - |",
              flush=True)
        for name, backend in prepared.items():
            got = timed(f"{mode} {name}", lambda: ours(backend, source, frames, mode))
            print(f"| {mode} | {name} | {distance(got, exact, first)} | "
                  f"{distance(got, original, first)} |", flush=True)


if __name__ == "__main__":
    try:
        main()
    except FommError as exc:  # a bundle, checkpoint or clip refused: one line
        sys.exit(f"error: {exc}")
