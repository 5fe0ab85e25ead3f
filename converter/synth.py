"""Seeded synthetic FOMM checkpoints: the original's layout, our own random weights.

They stand in for trained checkpoints in tests and demos: every key and shape of the
spec's networks, values drawn so that the models are numerically healthy (peaked
keypoint heatmaps, well-conditioned jacobians, unsaturated outputs). Each tensor comes
from numpy.random.default_rng([seed, crc32('<net>/<key>')]), so it depends only on the
seed, the network and the key, never on the order of generation.
"""
from __future__ import annotations

import os
import re
import tempfile
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from .checkpoint import SYNTHETIC_KEY, SYNTHETIC_TAG
from .errors import FommError, one_line
from .io import write_atomic
from .paths import CHECKPOINTS, synthetic_checkpoint_name
from .spec import Spec
from .torch_model import build_models
from .torch_model.blocks import gaussian_kernel

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
        "optimizer_generator": _adam_state(generator),
        "optimizer_discriminator": _adam_state(None),
        "optimizer_kp_detector": _adam_state(kp_detector),
        "epoch": 0,
        SYNTHETIC_KEY: {"generator": SYNTHETIC_TAG, "seed": int(seed), "config": spec.name},
    }


def synth_state_dict(spec: Spec, net: str, reference, seed: int) -> OrderedDict:
    """Arrays for every entry of a reference state_dict (only its keys and shapes are used)."""
    keys = set(reference)
    return OrderedDict((key, _value(spec, net, key, tuple(ref.shape), keys, seed))
                       for key, ref in reference.items())


def _value(spec: Spec, net: str, key: str, shape: tuple, keys: set, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, zlib.crc32(f"{net}/{key}".encode("utf-8"))])
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


def _adam_state(module) -> dict:
    """An Adam state_dict as the original's training loop saves it, without moments."""
    n_params = 0 if module is None else len(list(module.parameters()))
    return {"state": {},
            "param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "eps": 1e-8,
                              "weight_decay": 0, "amsgrad": False, "initial_lr": 2e-4,
                              "params": list(range(n_params))}]}


class SynthError(FommError):
    """The checkpoint cannot be written where the user asked (one line)."""


def write_checkpoint(spec: Spec, seed: int, out, zip: bool = False) -> Path:
    """torch.save the checkpoint to `out` atomically (legacy serialisation unless zip).
    An unwritable place is refused before the model work, in one line."""
    out = Path(out)
    _check_writable(out)
    checkpoint = make_checkpoint(spec, seed)
    try:
        # Saving to a file object names the zip's folder 'archive', whatever the file name,
        # so zip files of the same spec and seed are byte-identical.
        return write_atomic(out, writer=lambda f: torch.save(
            checkpoint, f, _use_new_zipfile_serialization=bool(zip)))
    except (OSError, RuntimeError) as exc:  # a full disk; torch's zip writer says RuntimeError
        raise SynthError(f"{out}: cannot write it ({_reason(exc)})") from None


def _check_writable(out: Path):
    """Make the folder (as before) and try a file in it, so a read-only place fails now."""
    if out.is_dir():
        raise SynthError(f"{out}: is a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SynthError(f"{out}: cannot create its folder ({_reason(exc)})") from None
    try:
        fd, probe = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".probe")
    except OSError as exc:
        raise SynthError(f"{out}: cannot write there ({_reason(exc)})") from None
    os.close(fd)
    os.unlink(probe)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or one_line(exc)


def synthetic_checkpoint(spec: Spec, seed: int) -> Path:
    """The seeded synthetic checkpoint of a spec, made once under checkpoints/."""
    path = CHECKPOINTS / synthetic_checkpoint_name(spec.name, seed)
    if not path.exists():
        write_checkpoint(spec, seed, path)
    return path
