"""Per-layer parity of the TF graph against the torch reference, on fixed inputs.

Each stage is fed the same inputs on both sides (the generator gets the torch
reference's normalised keypoints), so a divergence is pinned to the layer that made it
instead of being inherited from an earlier stage.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from ..fixtures import fixed_inputs
from ..torch_model import build_models, load_weights, normalize_kp

from .compare import ParityReport, compare, load_tolerances
from .record import DOCUMENTED_EXTRAS, record_torch

PREFIXES = ("kp_source/", "kp_driving0/", "kp_driving1/", "process_kp_driving/", "generator/")


def _nchw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(0, 3, 1, 2)))


def _prefixed(prefix: str, taps: dict) -> dict:
    return {prefix + name: value for name, value in taps.items()}


def torch_intermediates(spec, checkpoint, source, driving) -> tuple[dict, dict]:
    """(intermediates by name, the keypoints fed to the generator)."""
    kp_detector, generator = build_models(spec)
    load_weights(kp_detector, checkpoint.kp_detector, "kp_detector")
    load_weights(generator, checkpoint.generator, "generator")
    recorded = OrderedDict()
    kps = {}
    for prefix, image in (("kp_source/", source), ("kp_driving0/", driving[:1]),
                          ("kp_driving1/", driving[1:2])):
        taps = record_torch(kp_detector, _nchw(image), prefix=prefix)
        recorded.update(taps)
        kps[prefix] = {k: torch.from_numpy(taps[f"{prefix}<root>:{k}"])
                       for k in ("value", "jacobian") if f"{prefix}<root>:{k}" in taps}
    with torch.no_grad():
        norm = normalize_kp(kp_source=kps["kp_source/"], kp_driving=kps["kp_driving1/"],
                            kp_driving_initial=kps["kp_driving0/"], adapt_movement_scale=True,
                            use_relative_movement=True, use_relative_jacobian=True)
    for key, value in norm.items():
        recorded[f"process_kp_driving/<root>:{key}"] = value.numpy()
    recorded.update(record_torch(generator, _nchw(source), kp_driving=norm,
                                 kp_source=kps["kp_source/"], prefix="generator/"))
    feeds = {"kp_source": {k: v.numpy() for k, v in kps["kp_source/"].items()},
             "kp_driving0": {k: v.numpy() for k, v in kps["kp_driving0/"].items()},
             "kp_driving1": {k: v.numpy() for k, v in kps["kp_driving1/"].items()},
             "norm": {k: v.numpy() for k, v in norm.items()}}
    return recorded, feeds


def tf_intermediates(kp_detector, process_kp, generator, source, driving, feeds) -> dict:
    """The TF models' taps under the same names, each stage fed the reference's inputs."""
    candidate = OrderedDict()
    for prefix, image in (("kp_source/", source), ("kp_driving0/", driving[:1]),
                          ("kp_driving1/", driving[1:2])):
        taps = {}
        kp_detector(image, taps=taps)
        candidate.update(_prefixed(prefix, taps))
    jac = "jacobian" in feeds["kp_source"]

    def kp_args(kp):
        return (kp["value"], kp["jacobian"]) if jac else (kp["value"], None)
    out = process_kp(*kp_args(feeds["kp_driving1"]), *kp_args(feeds["kp_driving0"]),
                     *kp_args(feeds["kp_source"]), 1.0, 1.0, 1.0)
    for key, value in out.items():
        candidate[f"process_kp_driving/<root>:{key}"] = value.numpy()
    taps = {}
    keypoints = [feeds["norm"]["value"], feeds["kp_source"]["value"]]
    if jac:
        keypoints = [feeds["norm"]["value"], feeds["norm"]["jacobian"],
                     feeds["kp_source"]["value"], feeds["kp_source"]["jacobian"]]
    generator(source, *keypoints, taps=taps)
    candidate.update(_prefixed("generator/", taps))
    return candidate


def layer_parity(spec, checkpoint, kp_detector, process_kp, generator,
                 profile: str = "fp32") -> ParityReport:
    """Compare every layer of the TF models with the torch reference; never raises."""
    source, driving = fixed_inputs(spec.frame_shape)
    reference, feeds = torch_intermediates(spec, checkpoint, source, driving)
    candidate = tf_intermediates(kp_detector, process_kp, generator, source, driving, feeds)
    allowed = [f"{prefix}{name}" for prefix in PREFIXES for name in DOCUMENTED_EXTRAS]
    return compare(reference, candidate, load_tolerances(profile=profile), allow_extra=allowed)
