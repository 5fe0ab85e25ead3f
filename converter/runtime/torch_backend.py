"""The torch reference as a backend (the baseline every artifact is measured against)."""
from __future__ import annotations

import numpy as np
import torch

from ..spec import Spec
from ..torch_model import build_models, load_weights, normalize_kp
from .base import Arrays, SpecBackend


def _to_nchw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(0, 3, 1, 2), np.float32))


def _to_nhwc(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.numpy().transpose(0, 2, 3, 1))


def _kp(arrays: Arrays) -> dict:
    return {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in arrays.items()}


def _np(kp: dict) -> Arrays:
    return {k: v.numpy() for k, v in kp.items()}


class TorchBackend(SpecBackend):
    def __init__(self, spec: Spec, checkpoint, threads: int | None = None):
        if threads:
            torch.set_num_threads(threads)
        super().__init__(spec)
        kp_detector, generator = build_models(spec)
        self.kp = load_weights(kp_detector, checkpoint.kp_detector,
                               f"{checkpoint.path}: kp_detector")
        self.gen = load_weights(generator, checkpoint.generator, f"{checkpoint.path}: generator")

    @torch.inference_mode()
    def kp_detector(self, image):
        return _np(self.kp(_to_nchw(image)))

    @torch.inference_mode()
    def process_kp_driving(self, kp_driving, kp_driving_initial, kp_source,
                           use_relative_movement, use_relative_jacobian, adapt_movement_scale):
        out = normalize_kp(kp_source=_kp(kp_source), kp_driving=_kp(kp_driving),
                           kp_driving_initial=_kp(kp_driving_initial),
                           adapt_movement_scale=adapt_movement_scale,
                           use_relative_movement=use_relative_movement,
                           use_relative_jacobian=use_relative_jacobian)
        return _np(out)

    def _broadcast_source(self, source: torch.Tensor, kp_driving: dict, kp_source: dict):
        n = kp_driving["value"].shape[0]
        if source.shape[0] != n:
            source = source.expand(n, *source.shape[1:])
        kp_source = {k: v.expand(n, *v.shape[1:]) if v.shape[0] != n else v
                     for k, v in kp_source.items()}
        return source, kp_source

    @torch.inference_mode()
    def generator(self, source_image, kp_driving, kp_source):
        kp_driving = _kp(kp_driving)
        source, kp_source = self._broadcast_source(_to_nchw(source_image), kp_driving,
                                                   _kp(kp_source))
        out = self.gen(source, kp_driving=kp_driving, kp_source=kp_source)
        layout = {"prediction": (0, 2, 3, 1), "deformed": (0, 2, 3, 1), "mask": (0, 2, 3, 1),
                  "occlusion_map": (0, 2, 3, 1), "deformation": (0, 1, 2, 3),
                  "sparse_deformed": (0, 1, 3, 4, 2)}
        return {k: np.ascontiguousarray(v.numpy().transpose(layout[k])) for k, v in out.items()}

    @torch.inference_mode()
    def encode_source(self, source_image):
        source = _to_nchw(source_image)
        return {"source_features": _to_nhwc(self.gen.encode(source)),
                "source_down": _to_nhwc(self.gen.dense_motion_network.downsample(source))}

    @torch.inference_mode()
    def generate(self, encoded, kp_driving, kp_source):
        kp_driving = _kp(kp_driving)
        n = kp_driving["value"].shape[0]
        features, down = (_to_nchw(encoded[k]) for k in ("source_features", "source_down"))
        if features.shape[0] != n:
            features = features.expand(n, *features.shape[1:])
            down = down.expand(n, *down.shape[1:])
        _, kp_source = self._broadcast_source(features, kp_driving, _kp(kp_source))
        return _to_nhwc(self.gen.generate(features, down, kp_driving, kp_source))
