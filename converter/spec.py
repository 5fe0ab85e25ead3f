"""Dataset specs: which FOMM model a checkpoint holds and how to run it.

Two inputs are accepted and resolved to the same `Spec`:
- our spec YAML (specs/<name>.yaml), and
- an original-format config YAML (the upstream `config/*.yaml`, for custom-trained
  models), of which only `dataset_params.frame_shape`, `model_params` and
  `animate_params.normalization_params` matter.

Every field is checked: an unknown or missing one is an error that names the file and
the field's dotted path, because a silently ignored option is how converted models end
up "distorted".
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import yaml

from .errors import FommError

# specs/ ships as the package fomm_convert.specs, in a checkout and in a wheel alike.
SPECS_DIR = Path(str(files("fomm_convert.specs")))

# Model parameters the original modules accept, with the original's defaults
# (REQUIRED where the original has none).
REQUIRED = object()
MODEL_FIELDS = {
    "common_params": {
        "num_kp": REQUIRED,
        "num_channels": REQUIRED,
        "estimate_jacobian": False,
    },
    "kp_detector_params": {
        "block_expansion": REQUIRED,
        "max_features": REQUIRED,
        "num_blocks": REQUIRED,
        "temperature": REQUIRED,
        "scale_factor": 1,
        "single_jacobian_map": False,
        "pad": 0,
    },
    "generator_params": {
        "block_expansion": REQUIRED,
        "max_features": REQUIRED,
        "num_down_blocks": REQUIRED,
        "num_bottleneck_blocks": REQUIRED,
        "estimate_occlusion_map": False,
        "dense_motion_params": REQUIRED,
    },
    "dense_motion_params": {
        "block_expansion": REQUIRED,
        "max_features": REQUIRED,
        "num_blocks": REQUIRED,
        "scale_factor": 1,
        "kp_variance": 0.01,
    },
}
# Sections of model_params that belong to training only.
TRAINING_ONLY = {"discriminator_params"}

SPEC_FIELDS = {
    "name", "description", "upstream_config", "frame_shape", "checkpoint",
    "normalization", "grid_sample_align_corners", "model_params",
}
NORMALIZATION_FIELDS = {"relative": True, "adapt_scale": True}


class SpecError(FommError, ValueError):
    """A spec or config file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class Spec:
    name: str
    path: Path
    frame_shape: tuple  # (H, W, C)
    checkpoint: str | None  # file name under checkpoints/
    relative: bool
    adapt_scale: bool
    align_corners: bool  # grid_sample convention (False: torch >= 1.3 default)
    common: dict
    kp_detector: dict
    generator: dict  # without dense_motion_params
    dense_motion: dict
    description: str = ""

    @property
    def num_kp(self) -> int:
        return self.common["num_kp"]

    @property
    def estimate_jacobian(self) -> bool:
        return self.common["estimate_jacobian"]

    def kp_detector_kwargs(self) -> dict:
        return {**self.common, **self.kp_detector}

    def generator_kwargs(self) -> dict:
        return {**self.common, **self.generator, "dense_motion_params": dict(self.dense_motion)}

    def model_params(self) -> dict:
        gen = dict(self.generator, dense_motion_params=dict(self.dense_motion))
        return {"common_params": dict(self.common),
                "kp_detector_params": dict(self.kp_detector),
                "generator_params": gen}

    def to_dict(self) -> dict:
        """The resolved spec, every default filled in (recorded in bundles)."""
        return {
            "name": self.name,
            "frame_shape": list(self.frame_shape),
            "checkpoint": self.checkpoint,
            "normalization": {"relative": self.relative, "adapt_scale": self.adapt_scale},
            "grid_sample_align_corners": self.align_corners,
            "model_params": self.model_params(),
        }

    def with_align_corners(self, value: bool) -> "Spec":
        return dataclasses.replace(self, align_corners=bool(value))


def available_specs() -> list[str]:
    return sorted(p.stem for p in SPECS_DIR.glob("*.yaml"))


def load_spec(name_or_path: str | Path) -> Spec:
    """Load a spec by dataset name (specs/NAME.yaml), spec path, or original config path."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = SPECS_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise SpecError(f"unknown dataset '{name_or_path}': no {path} "
                            f"(known: {', '.join(available_specs())})")
    if not path.is_file():
        raise SpecError(f"{path}: no such spec or config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}".splitlines()[0]) from None
    return spec_from_data(path, data)


def spec_from_data(path: Path, data) -> Spec:
    """A Spec from parsed YAML/JSON (either format); `path` names it in errors."""
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping at the top level")
    if "dataset_params" in data:
        return _from_original_config(path, data)
    return _from_spec(path, data)


def _from_spec(path: Path, data: dict) -> Spec:
    _reject_unknown(path, "", data, SPEC_FIELDS)
    for field in ("name", "frame_shape", "checkpoint", "model_params"):
        if field not in data:
            raise SpecError(f"{path}: {field}: missing")
    norm = data.get("normalization", {})
    if not isinstance(norm, dict):
        raise SpecError(f"{path}: normalization: expected a mapping")
    _reject_unknown(path, "normalization", norm, NORMALIZATION_FIELDS)
    norm = {k: _bool(path, f"normalization.{k}", norm.get(k, d))
            for k, d in NORMALIZATION_FIELDS.items()}
    checkpoint = None if data["checkpoint"] is None else str(data["checkpoint"])
    return _build(path, str(data["name"]), data["frame_shape"], checkpoint,
                  norm, _bool(path, "grid_sample_align_corners",
                              data.get("grid_sample_align_corners", False)),
                  data["model_params"], str(data.get("description", "")))


def _from_original_config(path: Path, data: dict) -> Spec:
    frame_shape = (data.get("dataset_params") or {}).get("frame_shape")
    if frame_shape is None:
        raise SpecError(f"{path}: dataset_params.frame_shape: missing")
    if "model_params" not in data:
        raise SpecError(f"{path}: model_params: missing")
    params = ((data.get("animate_params") or {}).get("normalization_params") or {})
    norm = {"relative": _bool(path, "animate_params.normalization_params.use_relative_movement",
                              params.get("use_relative_movement", True)),
            "adapt_scale": _bool(path, "animate_params.normalization_params.adapt_movement_scale",
                                 params.get("adapt_movement_scale", False))}
    return _build(path, path.stem, frame_shape, None, norm, False, data["model_params"],
                  "original-format config")


def _build(path, name, frame_shape, checkpoint, norm, align_corners, model_params, description):
    if (not isinstance(frame_shape, (list, tuple)) or len(frame_shape) != 3
            or not all(isinstance(v, int) and v > 0 for v in frame_shape)):
        raise SpecError(f"{path}: frame_shape: expected [H, W, C] positive integers, "
                        f"got {frame_shape!r}")
    if not isinstance(model_params, dict):
        raise SpecError(f"{path}: model_params: expected a mapping")
    allowed = set(MODEL_FIELDS) - {"dense_motion_params"} | TRAINING_ONLY
    _reject_unknown(path, "model_params", model_params, allowed)
    resolved = {}
    for section in ("common_params", "kp_detector_params", "generator_params"):
        resolved[section] = _section(path, f"model_params.{section}",
                                     model_params.get(section), MODEL_FIELDS[section])
    dense = _section(path, "model_params.generator_params.dense_motion_params",
                     resolved["generator_params"].pop("dense_motion_params"),
                     MODEL_FIELDS["dense_motion_params"])
    common = resolved["common_params"]
    if common["num_channels"] != frame_shape[2]:
        raise SpecError(f"{path}: model_params.common_params.num_channels: "
                        f"{common['num_channels']} does not match frame_shape {frame_shape}")
    for field, where in (("scale_factor", "kp_detector_params"),):
        _check_scale(path, f"model_params.{where}.{field}", resolved[where][field])
    _check_scale(path, "model_params.generator_params.dense_motion_params.scale_factor",
                 dense["scale_factor"])
    return Spec(name=name, path=path, frame_shape=tuple(frame_shape), checkpoint=checkpoint,
                relative=norm["relative"], adapt_scale=norm["adapt_scale"],
                align_corners=align_corners, common=common,
                kp_detector=resolved["kp_detector_params"],
                generator=resolved["generator_params"], dense_motion=dense,
                description=description)


def _section(path, where, values, fields):
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise SpecError(f"{path}: {where}: expected a mapping")
    _reject_unknown(path, where, values, fields)
    out = {}
    for field, default in fields.items():
        if field in values:
            value = values[field]
            if default is not REQUIRED and isinstance(default, bool):
                value = _bool(path, f"{where}.{field}", value)
            elif field != "dense_motion_params":
                value = _number(path, f"{where}.{field}", value, default)
            out[field] = value
        elif default is REQUIRED:
            raise SpecError(f"{path}: {where}.{field}: missing")
        else:
            out[field] = default
    return out


def _reject_unknown(path, where, values, allowed):
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        prefix = f"{where}." if where else ""
        raise SpecError(f"{path}: {prefix}{unknown[0]}: unknown field"
                        + (f" (also: {', '.join(unknown[1:])})" if unknown[1:] else ""))


def _bool(path, where, value):
    if not isinstance(value, bool):
        raise SpecError(f"{path}: {where}: expected true or false, got {value!r}")
    return value


def _number(path, where, value, default):
    integral = where.rsplit(".", 1)[-1] not in ("temperature", "scale_factor", "kp_variance")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{path}: {where}: expected a number, got {value!r}")
    if integral:
        if value != int(value) or value < 0:
            raise SpecError(f"{path}: {where}: expected a non-negative integer, got {value!r}")
        return int(value)
    if value <= 0:
        raise SpecError(f"{path}: {where}: expected a positive number, got {value!r}")
    return float(value)


def _check_scale(path, where, scale):
    if scale > 1 or (scale != 1 and abs(1 / scale - round(1 / scale)) > 1e-9):
        raise SpecError(f"{path}: {where}: {scale} must be 1 or 1/n for an integer n")
