"""The TPSMM torch reference as a backend (`--backend torch` of a TPSMM spec): each
signature of tpsmm/signatures.py computed by the reference networks (the TPS systems
solved as the original solves them, torch.inverse; the relative mode's scale from
float64 hull areas, as the original's scipy), in the signatures' names and layouts.

Each call runs on one thread unless `threads` says otherwise: the original was recorded
so (../shared/oracle-tpsmm), and on one thread the reference gives its bits (every array
of the tiny, tiny-rect and vox-256 cases, per frame). With two, the detector's float32
sums come in another order: keypoints moved by 3.6e-7 on tiny-rect, which its warped
source at full size amplified to 1.1e-4, past the contract's 1e-4.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager

import numpy as np
import torch

from ...runtime.base import check_inputs
from ...runtime.batching import check_shapes
from ..signatures import FEATURES, OCCLUSION, RELATIVE_FLAG, signatures
from ..torch_model import build_models, load_networks, normalize_kp
from . import SignatureCalls


def _nchw(image: torch.Tensor) -> torch.Tensor:
    """A channels-last view, as the original's tensor of a contiguous NHWC picture (its
    driving frames, a flipped source): the same bits. A picture with other strides (demo.py's
    RGB slice of an RGBA file) sends the original's detector down its NCHW path, whose
    keypoints differ by ~4e-7 (docs/runtimes.md, "Other seeds")."""
    return image.permute(0, 3, 1, 2)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


@contextmanager
def _threads(count: int):
    """torch's intra-op threads while a call runs (the process's are restored)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class TorchBackend(SignatureCalls):
    """dtype: the arithmetic (float64: the original's computation without its float32
    noise, the reference build's gates hold TPSMM's formats to; inputs and outputs stay
    float32)."""

    def __init__(self, spec, checkpoint, threads: int | None = None, dtype=torch.float32):
        self.threads = threads or 1
        self.dtype = dtype
        self.spec = spec
        self.num_kp = spec.num_kp
        self.frame_shape = spec.frame_shape
        self.signatures = signatures(spec)
        self.nets = {name: net.to(dtype) for name, net in load_networks(
            build_models(spec.model_params()), checkpoint.networks,
            str(checkpoint.path)).items()}

    @torch.inference_mode()
    def call(self, model: str, signature: str, inputs: dict) -> dict:
        """One signature's outputs for named inputs, checked against the contract."""
        sig = self.signatures[model][signature]
        check_inputs(f"{model} {signature}", sig.input_names, inputs)
        check_shapes(sig, inputs, sys.maxsize)
        tensors = {k: torch.from_numpy(np.array(v, np.float32)).to(self.dtype)
                   for k, v in inputs.items()}
        with _threads(self.threads):
            out = getattr(self, f"_{model}_{signature}")(**tensors)
        return {name: np.ascontiguousarray(out[name].numpy(), np.float32)
                for name in sig.output_names}

    def _kp_detector_serving_default(self, image):
        return {"value": self.nets["kp_detector"](_nchw(image))}

    def _process_kp_driving_serving_default(self, kp_driving, kp_driving_initial, kp_source,
                                            **flag):
        relative = float(flag[RELATIVE_FLAG]) > 0.5
        return {"value": normalize_kp("relative" if relative else "standard", kp_source,
                                      kp_driving, kp_driving_initial, None)}

    def _avd_network_serving_default(self, kp_source, kp_driving):
        return {"value": self.nets["avd_network"](kp_source, kp_driving)}

    def _generator_serving_default(self, source_image, kp_driving, kp_source):
        source = _nchw(source_image)
        motion = self.nets["dense_motion_network"](source, kp_driving, kp_source)
        out = self.nets["inpainting_network"](source, motion)
        return {"prediction": _nhwc(out["prediction"]), "deformed": _nhwc(out["deformed"]),
                "deformation": motion["deformation"],
                "contribution_maps": _nhwc(motion["contribution_maps"]),
                **{name: _nhwc(m) for name, m in zip(OCCLUSION, motion["occlusion_map"])},
                "tps_theta": motion["tps_theta"],
                "tps_control_params": motion["tps_control_params"]}

    def _generator_encode_source(self, source_image):
        source = _nchw(source_image)
        maps = self.nets["inpainting_network"].encode(source)  # finest first
        return {"source_down": _nhwc(self.nets["dense_motion_network"].downsample(source)),
                **{name: _nhwc(m) for name, m in zip(FEATURES, reversed(maps))}}

    def _generator_generate(self, source_image, source_down, kp_driving, kp_source,
                            **features):
        motion = self.nets["dense_motion_network"].motion(_nchw(source_down), kp_driving,
                                                          kp_source)
        maps = [_nchw(features[name]) for name in reversed(FEATURES)]
        out = self.nets["inpainting_network"].decode(maps, _nchw(source_image), motion)
        return {"prediction": _nhwc(out["prediction"])}
