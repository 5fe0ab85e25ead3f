"""End-to-end parity of an exported format against the torch reference, on fixed inputs.

Every model of the format is checked twice:
- stage by stage, each fed the reference's own inputs (kp_detector on the images,
  process_kp_driving on the reference keypoints in all four modes, the generator and the
  encode-once path on the reference's normalised keypoints), so each number is that
  artifact's own error;
- chained, the format's keypoints driving its own generator, as an application runs it
  (`chain/<root>:prediction`).
Names follow the tap convention of parity/tolerances.yaml (`<stage>/<root>:<output>`).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..fixtures import fixed_inputs
from ..keypoints import detect_frames
from .compare import ParityReport, compare, load_tolerances

MODES = [(rel, adapt) for rel in (1, 0) for adapt in (1, 0)]


def put(out: dict, stage: str, arrays: dict):
    for key, value in arrays.items():
        out[f"{stage}/<root>:{key}"] = np.asarray(value)


def detected(backend, source, driving, feeds: dict | None):
    """The detector's stage, every family's first: (the outputs so far, this backend's
    keypoints {source, driving}, the keypoints the next stages are fed (feeds or its
    own) and their initial driving frame)."""
    out = OrderedDict()
    own = {"source": backend.kp_detector(source), "driving": detect_frames(backend, driving)}
    put(out, "kp_detector/source", own["source"])
    put(out, "kp_detector/driving", own["driving"])
    kps = feeds or own
    return out, own, kps, {k: v[:1] for k, v in kps["driving"].items()}


def run_stages(backend, source, driving, feeds: dict | None = None) -> tuple[dict, dict]:
    """(outputs by name, the keypoints this backend computed) for the fixed inputs.

    feeds: the reference's keypoints (source, driving, normalised); None when this
    backend is the reference itself.
    """
    out, own, kps, initial = detected(backend, source, driving, feeds)
    for rel, adapt in MODES:
        norm = backend.process_kp_driving(kps["driving"], initial, kps["source"],
                                          bool(rel), bool(rel), bool(adapt))
        put(out, f"process_kp_driving/rel{rel}_adapt{adapt}", norm)
        if (rel, adapt) == (1, 1):
            own.setdefault("norm", norm)
    norm = kps.get("norm", own["norm"])
    put(out, "generator", backend.generator(source, norm, kps["source"]))
    encoded = backend.encode_source(source)
    put(out, "generate", {"prediction": backend.generate(encoded, norm, kps["source"])})
    # The whole chain on this backend's own keypoints.
    own_initial = {k: v[:1] for k, v in own["driving"].items()}
    own_norm = backend.process_kp_driving(own["driving"], own_initial, own["source"],
                                          True, True, True)
    put(out, "chain", {"prediction": backend.generate(encoded, own_norm, own["source"])})
    return out, own


def format_parity(reference, candidate, frame_shape, profile: str,
                  stages=run_stages) -> ParityReport:
    """Compare a candidate backend with the reference backend; never raises. stages: a
    family's run_stages(backend, source, driving, feeds) (FOMM's by default)."""
    source, driving = fixed_inputs(frame_shape)
    expected, feeds = stages(reference, source, driving)
    got, _ = stages(candidate, source, driving, feeds=feeds)
    return compare(expected, got, load_tolerances(profile=profile))
