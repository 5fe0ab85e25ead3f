"""The streaming loop: driving frames in batches through the models, the source's work
done once; and the original's reconstruction measure on top of it.

The source is encoded once (encode_source) and its keypoints detected once; each batch
costs the keypoint detector (per frame, at batch 1, as the original demo runs it), the
animation mode's keypoint normalisation (the model family's: its package's `animation`
module, e.g. FOMM's process_kp_driving flags) and generate. At most one batch of frames
is held.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

import numpy as np

from ..keypoints import detect_frames, stack_kp
from ..media import MediaError


@dataclass
class Source:
    """Everything the source contributes, computed once: the image (H, W, 3), its
    keypoints (batch 1) and its encoding for `generate`."""
    image: np.ndarray
    kp: dict
    encoded: dict

    @classmethod
    def prepare(cls, backend, image: np.ndarray) -> "Source":
        batch = np.array(image, np.float32)[None]  # a copy: the caller's frame is not kept
        return cls(batch[0], backend.kp_detector(batch), backend.encode_source(batch))


@dataclass
class Batch:
    """One batch of the animation: driving frames (B, H, W, 3), their raw keypoints and the
    generated frames (B, H, W, 3), floats in [0, 1]."""
    driving: np.ndarray
    kp_driving: dict
    prediction: np.ndarray


def animate_frames(backend, source: Source, frames, *, mode, batch_size: int = 4,
                   kp_initial: dict | None = None, keypoints=None):
    """Yield a `Batch` per `batch_size` driving frames pulled from the iterable `frames`.

    mode: the family's animation mode (mode.normalise(backend, kp_driving, kp_initial,
    kp_source) gives the generator's keypoints).
    kp_initial: the driving keypoints motion is measured from (default: the first frame's,
    as the original); keypoints: the frames' keypoints when already known (an iterable in
    the same order), so the detector is not run again. Holds at most one batch of frames.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    frames = iter(frames)
    known = iter(keypoints) if keypoints is not None else None
    while True:
        chunk = list(islice(frames, batch_size))
        if not chunk:
            return
        driving = np.stack(chunk).astype(np.float32, copy=False)
        del chunk  # the caller's frames are released; only the stacked copy stays
        if known is not None:
            kps = [next(known, None) for _ in range(len(driving))]
            if any(kp is None for kp in kps):
                raise MediaError("the video has more frames than on the first pass")
            kp_driving = stack_kp(kps)
        else:
            kp_driving = detect_frames(backend, driving)
        if kp_initial is None:
            kp_initial = {k: v[:1] for k, v in kp_driving.items()}
        norm = mode.normalise(backend, kp_driving, kp_initial, source.kp)
        prediction = backend.generate(source.encoded, norm, source.kp)
        yield Batch(driving, kp_driving, np.asarray(prediction, np.float32))


@dataclass
class Reconstruction:
    l1: float
    per_frame: list
    frames: int


def reconstruct_frames(backend, frames, *, mode, batch_size: int = 4, source=None,
                       on_batch=None):
    """The original's reconstruction: the first frame (or `source`) animated in the
    family's reconstruction mode (FOMM: absolute keypoints, no relative motion, no scale
    adaptation) by every frame; returns the mean over frames of each frame's mean
    absolute error against the real frame.

    on_batch(batch, source) sees each Batch (to write or draw it).
    """
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise MediaError("the video has no frames")
    source = Source.prepare(backend, first if source is None else source)
    frames, first = _prepend([first], frames), None
    per_frame = []
    for batch in animate_frames(backend, source, frames, mode=mode, batch_size=batch_size):
        errors = np.abs(batch.prediction.astype(np.float64) - batch.driving).mean(axis=(1, 2, 3))
        per_frame.extend(float(e) for e in errors)
        if on_batch is not None:
            on_batch(batch, source)
    return Reconstruction(float(np.mean(per_frame)), per_frame, len(per_frame))


def _prepend(holder: list, rest):
    """holder's one item, then rest; unlike itertools.chain, it does not keep the item
    alive until the end."""
    yield holder.pop()
    yield from rest
