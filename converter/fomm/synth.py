"""FOMM's synthetic weights (the family interface's `synth`): every key and shape of the
spec's networks, values drawn so that the models are numerically healthy (peaked keypoint
heatmaps, well-conditioned jacobians, unsaturated outputs), in the original's layout."""
from __future__ import annotations

import re
from collections import OrderedDict

import numpy as np
import torch

from ..spec import Spec
from ..synth import adam_state, key_rng
from ..torch_model import build_models
from ..torch_model.blocks import gaussian_kernel

# Convolutions whose He-normal scale is changed, and why.
_KP_GAIN = 2.0  # sharper heatmaps: keypoints spread over the image, not all at its centre
_JACOBIAN_STD = 0.1  # times 1/sqrt(fan_in): small, so jacobians stay near the identity
_RESIDUAL_CONV2 = re.compile(r"^bottleneck\.r\d+\.conv2\.weight$")
_RESIDUAL_GAIN = 0.5  # each residual block would otherwise double the activation variance


def make_checkpoint(spec: Spec, seed: int) -> dict:
    """The checkpoint dict for a spec and seed (torch tensors, the original's layout)."""
    kp_detector, generator = build_models(spec)
    nets = {net: OrderedDict((key, torch.from_numpy(value)) for key, value in
                             synth_state_dict(spec, net, module.state_dict(), seed).items())
            for net, module in (("generator", generator), ("kp_detector", kp_detector))}
    return {
        "generator": nets["generator"],
        "discriminator": OrderedDict(),
        "kp_detector": nets["kp_detector"],
        "optimizer_generator": adam_state(generator),
        "optimizer_discriminator": adam_state(None),
        "optimizer_kp_detector": adam_state(kp_detector),
        "epoch": 0,
    }


def synth_state_dict(spec: Spec, net: str, reference, seed: int) -> OrderedDict:
    """Arrays for every entry of a reference state_dict (only its keys and shapes are used)."""
    keys = set(reference)
    return OrderedDict((key, _value(spec, net, key, tuple(ref.shape), keys, seed))
                       for key, ref in reference.items())


def _value(spec: Spec, net: str, key: str, shape: tuple, keys: set, seed: int) -> np.ndarray:
    rng = key_rng(seed, net, key)
    module, _, leaf = key.rpartition(".")
    if leaf == "num_batches_tracked":
        return np.zeros((), np.int64)
    if f"{module}.running_mean" in keys:  # BatchNorm: close to the identity map
        values = {"weight": lambda: 1 + rng.normal(0, 0.05, shape),
                  "bias": lambda: rng.normal(0, 0.05, shape),
                  "running_mean": lambda: rng.normal(0, 0.05, shape),
                  "running_var": lambda: rng.uniform(0.5, 1.5, shape)}
        return values[leaf]().astype(np.float32)
    if module in ("down", "dense_motion_network.down"):  # anti-aliasing buffer
        scale = (spec.kp_detector if net == "kp_detector" else spec.dense_motion)["scale_factor"]
        return gaussian_kernel(shape[0], scale)
    if leaf == "weight" and len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        if net == "kp_detector" and key == "jacobian.weight":
            return rng.normal(0, _JACOBIAN_STD / np.sqrt(fan_in), shape).astype(np.float32)
        return (rng.normal(0, np.sqrt(2 / fan_in), shape) * _gain(net, key)).astype(np.float32)
    if leaf == "bias" and len(shape) == 1:
        if net == "kp_detector" and key == "jacobian.bias":  # identity per 2x2 jacobian map
            identity = np.tile([1.0, 0.0, 0.0, 1.0], shape[0] // 4)
            return (identity + rng.normal(0, 0.05, shape)).astype(np.float32)
        return rng.normal(0, 0.01, shape).astype(np.float32)
    raise ValueError(f"no synthesis rule for {net} entry {key} {list(shape)}")


def _gain(net: str, key: str) -> float:
    if net == "kp_detector" and key == "kp.weight":
        return _KP_GAIN
    if net == "generator" and _RESIDUAL_CONV2.match(key):
        return _RESIDUAL_GAIN
    return 1.0
