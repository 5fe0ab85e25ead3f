"""Per-layer parity of the TPSMM TF graph against its torch reference (= the original:
tests/test_tpsmm_torch.py), on fixed inputs.

Every network is fed the reference's inputs, so a divergence is pinned to the layer that
made it: the keypoint detector the images (source, two driving frames), the relative
normalisation the reference's keypoints, the AVD network the reference's source and
driving keypoints, the dense motion network the source and the reference's relative
keypoints, the inpainting network the source and the reference's dense motion. Names are
`<stage>/<module path>` as the original's forward hooks name its modules (a module run
twice: `#1`; dict and list outputs: `:<key>`, `:<i>`); the reference runs every module
of the original (ModuleLists are never called), so the report names them all.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from ..hull import movement_scale
from ..parity.compare import ParityReport, compare, load_tolerances
from ..parity.record import ROOT, record_torch
from .torch_model import build_models, load_networks, normalize_kp

KEYPOINTS = f"{ROOT}:fg_kp"  # the original's networks return {"fg_kp": ...}


def _nchw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(0, 3, 1, 2)))


def _keypoints(recorded: dict, prefix: str) -> torch.Tensor:
    """Our reference returns the keypoints themselves: named as the original's dict."""
    value = recorded.pop(prefix + ROOT)
    recorded[prefix + KEYPOINTS] = value
    return torch.from_numpy(value)


def torch_intermediates(model_params: dict, state_dicts, source, driving):
    """(every module's output by name, the inputs each stage was fed): source (1, H, W, 3)
    and driving (2, H, W, 3) NHWC images; state_dicts: {network: state dict}."""
    nets = load_networks(build_models(model_params), state_dicts, "reference")
    recorded = OrderedDict()
    kps = {}
    for name, image in (("kp_source", source), ("kp_driving0", driving[:1]),
                        ("kp_driving1", driving[1:2])):
        recorded.update(record_torch(nets["kp_detector"], _nchw(image), prefix=f"{name}/"))
        kps[name] = _keypoints(recorded, f"{name}/")
    with torch.no_grad():
        norm = normalize_kp("relative", kps["kp_source"], kps["kp_driving1"],
                            kps["kp_driving0"], None)
    recorded[f"process_kp_driving/{KEYPOINTS}"] = norm.numpy()
    recorded[f"process_kp_driving/{ROOT}:adapt_movement_scale"] = np.array(
        [movement_scale(kps["kp_source"].numpy(), kps["kp_driving0"].numpy())], np.float32)
    recorded.update(record_torch(nets["avd_network"], kps["kp_source"], kps["kp_driving1"],
                                 prefix="avd_network/"))
    _keypoints(recorded, "avd_network/")
    image = _nchw(source)
    recorded.update(record_torch(nets["dense_motion_network"], image, norm, kps["kp_source"],
                                 prefix="dense_motion_network/"))
    motion = {"deformation": torch.from_numpy(
                  recorded[f"dense_motion_network/{ROOT}:deformation"]),
              "occlusion_map": [torch.from_numpy(recorded[
                  f"dense_motion_network/{ROOT}:occlusion_map:{i}"]) for i in range(4)]}
    inpainting = nets["inpainting_network"]
    recorded.update(record_torch(inpainting, image, motion, prefix="inpainting_network/"))
    with torch.no_grad():  # the original's warped_encoder_maps, one of its outputs
        warped = inpainting.warped_features(inpainting.encode(image), motion["deformation"],
                                            motion["occlusion_map"])
    for i, value in enumerate(warped):
        recorded[f"inpainting_network/{ROOT}:warped_encoder_maps:{i}"] = value.numpy()
    feeds = {"kp": {k: v.numpy() for k, v in kps.items()}, "norm": norm.numpy(),
             "motion": {"deformation": motion["deformation"].numpy(),
                        "occlusion_map": [m.numpy() for m in motion["occlusion_map"]]}}
    return recorded, feeds


def tf_intermediates(models: dict, source, driving, feeds) -> dict:
    """The TF networks' taps under the same names, each fed the reference's inputs."""
    from .tf_model import ProcessKpDriving

    def nhwc(a):
        return np.ascontiguousarray(np.transpose(a, (0, 2, 3, 1)))

    candidate = OrderedDict()

    def run(prefix, call):
        taps = {}
        call(taps)
        candidate.update({prefix + name: value for name, value in taps.items()})
    for name, image in (("kp_source", source), ("kp_driving0", driving[:1]),
                        ("kp_driving1", driving[1:2])):
        run(f"{name}/", lambda taps, image=image: models["kp_detector"](image, taps=taps))
    kp = feeds["kp"]
    out = ProcessKpDriving()(kp["kp_driving1"], kp["kp_driving0"], kp["kp_source"], 1.0)
    for key, value in out.items():
        candidate[f"process_kp_driving/{ROOT}:{key}"] = value.numpy()
    run("avd_network/", lambda taps: models["avd_network"](kp["kp_source"], kp["kp_driving1"],
                                                           taps=taps))
    run("dense_motion_network/", lambda taps: models["dense_motion_network"](
        source, feeds["norm"], kp["kp_source"], taps=taps))
    motion = feeds["motion"]
    motion = {"deformation": motion["deformation"],
              "occlusion_map": [nhwc(m) for m in motion["occlusion_map"]]}
    run("inpainting_network/", lambda taps: models["inpainting_network"](source, motion,
                                                                         taps=taps))
    return candidate


def layer_parity(model_params: dict, state_dicts, models: dict, source, driving,
                 profile: str = "fp32") -> ParityReport:
    """Compare every layer of the TF networks (build_tf_models) with the torch reference
    on source (1, H, W, 3) and two driving frames; never raises."""
    reference, feeds = torch_intermediates(model_params, state_dicts, source, driving)
    candidate = tf_intermediates(models, source, driving, feeds)
    return compare(reference, candidate, load_tolerances(profile=profile))
