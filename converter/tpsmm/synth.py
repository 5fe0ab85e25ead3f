"""TPSMM's synthetic weights (the family interface's `synth`): the layout the original's
train_avd.py saves (the stage the published checkpoints come from: the four inference
networks, the AVD optimizer's state, `bg_predictor` in `bg` configs, the epoch), values
drawn so that the models are numerically healthy: keypoints spread over the frame, TPS
systems well conditioned, contribution maps not uniform, occlusions and frames not
saturated."""
from __future__ import annotations

import re
from collections import OrderedDict

import numpy as np
import torch

from ..spec import Spec
from ..synth import adam_state, key_rng
from ..torch_model.blocks import gaussian_kernel
from .architecture import BG_PREDICTOR
from .torch_model import build_models
from .torch_model.resnet import ResNet18

# He-normal gains, and why: residual branches would double the activation variance per
# block; the occlusion and final convs feed sigmoids (unsaturated at half the scale); the
# contribution-map logits are nearly uniform at He's scale.
_GAINS = ((re.compile(r"(^|\.)layer\d+\.\d+\.conv2\.weight$|^resblock\.\d+\.conv2\.weight$"),
           0.5),
          (re.compile(r"^occlusion\.\d+\.weight$|^final\.weight$"), 0.5),
          (re.compile(r"^maps\.weight$"), 2.0))
_NORM = re.compile(r"(^|\.)norm\d*$")  # InstanceNorm2d(affine) modules
_LOGITS = "fg_encoder.fc"  # the detector's keypoint logits


def make_checkpoint(spec: Spec, seed: int) -> dict:
    """The checkpoint dict for a spec and seed (torch tensors, the original's layout)."""
    models = build_models(spec.model_params())
    nets = {net: _state(net, module.state_dict(), seed, spec) for net, module in models.items()}
    checkpoint = {"inpainting_network": nets["inpainting_network"],
                  "dense_motion_network": nets["dense_motion_network"],
                  "kp_detector": nets["kp_detector"], "avd_network": nets["avd_network"],
                  "optimizer_avd": adam_state(models["avd_network"])}
    if spec.common["bg"]:
        background = ResNet18(BG_PREDICTOR["outputs"], BG_PREDICTOR["in_channels"])
        checkpoint["bg_predictor"] = _state(
            "bg_predictor", OrderedDict((BG_PREDICTOR["prefix"] + k, v)
                                        for k, v in background.state_dict().items()), seed, spec)
    checkpoint["epoch"] = 0
    return checkpoint


def _state(net: str, reference, seed: int, spec: Spec) -> OrderedDict:
    """Tensors for every entry of a reference state_dict (its keys and shapes only)."""
    keys = set(reference)
    last = _last_linear(net, reference)
    return OrderedDict((key, torch.from_numpy(_value(net, key, tuple(ref.shape), keys, last,
                                                     seed, spec)))
                       for key, ref in reference.items())


def _last_linear(net: str, reference) -> str | None:
    """The AVD decoder's output layer (its keypoint-like outputs get their own scale)."""
    if net != "avd_network":
        return None
    return max((k.rsplit(".", 1)[0] for k, v in reference.items()
                if k.startswith("decoder.") and k.endswith(".weight") and v.dim() == 2),
               key=lambda module: int(module.split(".")[1]))


def _value(net, key, shape, keys, last, seed, spec) -> np.ndarray:
    rng = key_rng(seed, net, key)
    module, _, leaf = key.rpartition(".")
    if leaf == "num_batches_tracked":
        return np.zeros((), np.int64)
    if f"{module}.running_mean" in keys or (_NORM.search(module) and len(shape) == 1):
        # BatchNorm (running statistics) or InstanceNorm's affine: near the identity map
        values = {"weight": lambda: 1 + rng.normal(0, 0.05, shape),
                  "bias": lambda: rng.normal(0, 0.05, shape),
                  "running_mean": lambda: rng.normal(0, 0.05, shape),
                  "running_var": lambda: rng.uniform(0.5, 1.5, shape)}
        return values[leaf]().astype(np.float32)
    if net == "dense_motion_network" and key == "down.weight":  # the anti-alias kernel
        return gaussian_kernel(shape[0], spec.dense_motion["scale_factor"])
    if leaf == "weight" and len(shape) in (2, 4):
        fan_in = int(np.prod(shape[1:]))
        if module in (_LOGITS, f"{BG_PREDICTOR['prefix']}fc"):
            # keypoints 2 sigmoid - 1 spread over the frame; the background's near zero
            std = 1.0 if module == _LOGITS else 0.01
            return rng.normal(0, std / np.sqrt(fan_in), shape).astype(np.float32)
        gain = 0.1 if module == last else next(
            (g for pattern, g in _GAINS if pattern.search(key)), 1.0)
        return (rng.normal(0, np.sqrt(2 / fan_in), shape) * gain).astype(np.float32)
    if leaf == "bias" and len(shape) == 1:
        if module == _LOGITS:
            return rng.uniform(-1, 1, shape).astype(np.float32)
        if module == last:  # normalised keypoints in about [-0.7, 0.7]
            return rng.uniform(-0.6, 0.6, shape).astype(np.float32)
        if module == f"{BG_PREDICTOR['prefix']}fc":  # near the identity affine transform
            return (np.array([1.0, 0, 0, 0, 1, 0]) + rng.normal(0, 0.01, shape)).astype(
                np.float32)
        return rng.normal(0, 0.01, shape).astype(np.float32)
    raise ValueError(f"no synthesis rule for {net} entry {key} {list(shape)}")
