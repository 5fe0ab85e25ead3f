"""Dataset specs: which FOMM model a checkpoint holds and how to run it.

Two inputs are accepted and resolved to the same `Spec`:
- our spec YAML (specs/<name>.yaml), and
- an original-format config YAML (the upstream `config/*.yaml`, for custom-trained
  models), of which only `dataset_params.frame_shape`, `model_params` and
  `animate_params.normalization_params` matter.

Every field is checked: an unknown or missing one is an error that names the file and
the field's dotted path, because a silently ignored option is how converted models end
up "distorted". A spec is hostile input too: YAML without aliases, of bounded size and depth;
every number in its range (limits.py); the frame a size the networks can take.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import yaml

from . import limits
from .architecture import downsample_step, downsampled_size
from .errors import FommError, cut, one_line, shown, warn
from .paths import is_file_name, is_plain_name, spec_file

# specs/ ships as the package fomm_convert.specs, in a checkout and in a wheel alike.
SPECS_DIR = Path(str(files("fomm_convert.specs")))

# Model parameters the original modules accept, with the original's defaults
# (REQUIRED where the original has none).
REQUIRED = object()
MODEL_FIELDS = {
    "common_params": {"num_kp": REQUIRED, "num_channels": REQUIRED, "estimate_jacobian": False},
    "kp_detector_params": {
        "block_expansion": REQUIRED, "max_features": REQUIRED, "num_blocks": REQUIRED,
        "temperature": REQUIRED, "scale_factor": 1, "single_jacobian_map": False, "pad": 0},
    "generator_params": {
        "block_expansion": REQUIRED, "max_features": REQUIRED, "num_down_blocks": REQUIRED,
        "num_bottleneck_blocks": REQUIRED, "estimate_occlusion_map": False,
        "dense_motion_params": REQUIRED},
    "dense_motion_params": {
        "block_expansion": REQUIRED, "max_features": REQUIRED, "num_blocks": REQUIRED,
        "scale_factor": 1, "kp_variance": 0.01},
}
# Sections of model_params that belong to training only.
TRAINING_ONLY = {"discriminator_params"}

SPEC_FIELDS = {"name", "description", "upstream_config", "frame_shape", "checkpoint",
               "normalization", "grid_sample_align_corners", "model_params"}
NORMALIZATION_FIELDS = {"relative": True, "adapt_scale": True}
# Integer fields: (smallest, largest) allowed (limits.py says why).
INT_RANGES = {"num_kp": (1, limits.MAX_NUM_KP), "num_channels": (1, limits.MAX_CHANNELS),
              "block_expansion": (1, limits.MAX_BLOCK_EXPANSION),
              "max_features": (1, limits.MAX_FEATURES), "num_blocks": (1, limits.MAX_NUM_BLOCKS),
              "num_down_blocks": (0, limits.MAX_DOWN_BLOCKS),
              "num_bottleneck_blocks": (0, limits.MAX_BOTTLENECK_BLOCKS),
              "pad": (0, limits.MAX_KP_PAD)}
FLOAT_FIELDS = ("temperature", "scale_factor", "kp_variance")


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
        return {"name": self.name, "frame_shape": list(self.frame_shape),
                "checkpoint": self.checkpoint,
                "normalization": {"relative": self.relative, "adapt_scale": self.adapt_scale},
                "grid_sample_align_corners": self.align_corners,
                "model_params": self.model_params()}

    def with_align_corners(self, value: bool) -> "Spec":
        return dataclasses.replace(self, align_corners=bool(value))


def available_specs() -> list[str]:
    return sorted(p.stem for p in SPECS_DIR.glob("*.yaml"))


def load_spec(name_or_path: str | Path) -> Spec:
    """Load a spec by dataset name (specs/NAME.yaml), spec path, or original config path;
    paths.spec_file says which a bare name means (and warns when a file is passed over)."""
    path = spec_file(name_or_path, SPECS_DIR, warn)
    if not path.is_file():
        raise SpecError(f"unknown dataset '{name_or_path}': no {path} (known: "
                        f"{', '.join(available_specs())})" if path != Path(name_or_path) else
                        f"{path}: {'a directory, not a' if path.is_dir() else 'no such'} spec "
                        f"or config file")
    return spec_from_data(path, read_yaml(path))


class _Refused(yaml.YAMLError):
    """What the bounded loader will not compose."""


class _BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader without aliases (a few bytes of them expand into gigabytes) and
    with at most limits.YAML_MAX_DEPTH levels of nesting (the composer recurses per level)."""
    depth = 0

    def compose_node(self, parent, index):
        line = self.peek_event().start_mark.line + 1
        if self.check_event(yaml.AliasEvent):
            raise _Refused(f"line {line}: YAML aliases (*name) are not accepted")
        if self.depth >= limits.YAML_MAX_DEPTH:
            raise _Refused(f"line {line}: nested more than {limits.YAML_MAX_DEPTH} levels deep")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def read_yaml(path: Path):
    """One YAML document of at most limits.SPEC_MAX_BYTES, without aliases; one-line errors."""
    try:
        with open(path, "rb") as f:
            raw = f.read(limits.SPEC_MAX_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(raw) > limits.SPEC_MAX_BYTES:
        raise SpecError(f"{path}: larger than {limits.SPEC_MAX_BYTES} bytes: not a spec")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return _BoundedLoader(text).get_single_data()
    except _Refused as exc:
        raise SpecError(f"{path}: {exc}") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # ValueError: 5000 digits
        mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
        reason = f"{problem} (line {mark.line + 1})" if problem and mark else one_line(exc)
        # The parser's reason quotes the file: cut as the line it was before (240).
        raise SpecError(cut(f"{path}: not valid YAML: {reason}", 240)) from None


def spec_from_data(path: Path, data) -> Spec:
    """A Spec from parsed YAML/JSON (either format); `path` names it in errors. Every
    value is checked (types, ranges, the frame multiples the model needs) before any
    model work."""
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
    norm = _mapping(path, "normalization", data.get("normalization", {}))
    _reject_unknown(path, "normalization", norm, NORMALIZATION_FIELDS)
    norm = {k: _bool(path, f"normalization.{k}", norm.get(k, d))
            for k, d in NORMALIZATION_FIELDS.items()}
    checkpoint = None if data["checkpoint"] is None \
        else _name(path, "checkpoint", data["checkpoint"], is_file_name)
    if not isinstance(description := data.get("description", ""), str):
        raise SpecError(f"{path}: description: expected text, got {shown(description)}")
    return _build(path, _name(path, "name", data["name"]), data["frame_shape"],
                  checkpoint, norm, _bool(path, "grid_sample_align_corners",
                                          data.get("grid_sample_align_corners", False)),
                  data["model_params"], description)


def _from_original_config(path: Path, data: dict) -> Spec:
    frame_shape = _mapping(path, "dataset_params", data["dataset_params"]).get("frame_shape")
    if frame_shape is None:
        raise SpecError(f"{path}: dataset_params.frame_shape: missing")
    if "model_params" not in data:
        raise SpecError(f"{path}: model_params: missing")
    animate = _mapping(path, "animate_params", data.get("animate_params"))
    params = _mapping(path, "animate_params.normalization_params",
                      animate.get("normalization_params"))
    norm = {"relative": _bool(path, "animate_params.normalization_params.use_relative_movement",
                              params.get("use_relative_movement", True)),
            "adapt_scale": _bool(path, "animate_params.normalization_params.adapt_movement_scale",
                                 params.get("adapt_movement_scale", False))}
    if not is_plain_name(path.stem):
        raise SpecError(f"{path}: the config's file name {shown(path.stem)} names the model: "
                        f"rename it to letters, digits, '_', '.' and '-'")
    return _build(path, path.stem, frame_shape, None, norm, False, data["model_params"],
                  "original-format config")


def _build(path, name, frame_shape, checkpoint, norm, align_corners, model_params, description):
    frame_shape = _frame_shape(path, frame_shape)
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
    _check_frame(path, frame_shape, common, resolved["kp_detector_params"],
                 resolved["generator_params"], dense)
    return Spec(name=name, path=path, frame_shape=tuple(frame_shape), checkpoint=checkpoint,
                relative=norm["relative"], adapt_scale=norm["adapt_scale"],
                align_corners=align_corners, common=common,
                kp_detector=resolved["kp_detector_params"],
                generator=resolved["generator_params"], dense_motion=dense,
                description=description)


def _frame_shape(path, value) -> list:
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or not all(type(v) is int and v > 0 for v in value)):
        raise SpecError(f"{path}: frame_shape: expected [H, W, C] positive integers, "
                        f"got {shown(value)}")
    if max(value[:2]) > limits.MAX_FRAME_SIDE or value[2] > limits.MAX_CHANNELS:
        raise SpecError(f"{path}: frame_shape: {shown(value)} has more than "
                        f"{limits.MAX_FRAME_SIDE} pixels on a side or "
                        f"{limits.MAX_CHANNELS} channels")
    return list(value)


def _check_frame(path, frame_shape, common, kp, gen, dense):
    """The frame sizes the original's networks need, and their largest activation: each
    hourglass concatenates every upsampled level with its skip, so the frame downsampled
    by its scale_factor must divide by 2**num_blocks; the generator outputs the frame's
    size only if it divides by 2**num_down_blocks; the 7x7 heatmap conv needs a pixel."""
    (h, w, c), gen_where = frame_shape, "model_params.generator_params"
    kp_size, dense_size = (downsampled_size(frame_shape, p["scale_factor"]) for p in (kp, dense))
    for where, params, size in (("model_params.kp_detector_params", kp, kp_size),
                                (f"{gen_where}.dense_motion_params", dense, dense_size)):
        scale, multiple = params["scale_factor"], 2 ** params["num_blocks"]
        if size[0] % multiple or size[1] % multiple:
            raise SpecError(
                f"{path}: frame_shape: {h}x{w} does not suit {where}: downsampled by "
                f"scale_factor {scale} it is {size[0]}x{size[1]}, which its num_blocks "
                f"{params['num_blocks']} needs to be a multiple of {multiple} (frames of a "
                f"multiple of {downsample_step(scale) * multiple} suit)")
    if min(kp_size) + 2 * kp["pad"] - 6 < 1:
        raise SpecError(f"{path}: frame_shape: {h}x{w} leaves the keypoint detector's 7x7 "
                        f"heatmap conv (pad {kp['pad']}) no pixel of its input")
    multiple = 2 ** gen["num_down_blocks"]
    if h % multiple or w % multiple:
        raise SpecError(f"{path}: frame_shape: {h}x{w} does not suit {gen_where}: its "
                        f"num_down_blocks {gen['num_down_blocks']} needs a multiple of "
                        f"{multiple} (the original would output a smaller frame)")
    largest = max(h * w * gen["block_expansion"],
                  dense_size[0] * dense_size[1]
                  * ((common["num_kp"] + 1) * (c + 1) + dense["block_expansion"]),
                  kp_size[0] * kp_size[1] * (c + kp["block_expansion"]))
    if largest > limits.MAX_ACTIVATION:
        raise SpecError(f"{path}: model_params: the frame {h}x{w} and these widths need an "
                        f"activation of {largest} values per frame, more than "
                        f"{limits.MAX_ACTIVATION}")


def _section(path, where, values, fields):
    values = _mapping(path, where, values)
    _reject_unknown(path, where, values, fields)
    out = {}
    for field, default in fields.items():
        if field in values:
            value = values[field]
            if default is not REQUIRED and isinstance(default, bool):
                value = _bool(path, f"{where}.{field}", value)
            elif field != "dense_motion_params":
                value = _number(path, f"{where}.{field}", value)
            out[field] = value
        elif default is REQUIRED:
            raise SpecError(f"{path}: {where}.{field}: missing")
        else:
            out[field] = default
    return out


def _mapping(path, where, value) -> dict:
    """A section that may be absent (None: empty) but is a mapping when present."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"{path}: {where}: expected a mapping, got {shown(value)}")
    return value


def _reject_unknown(path, where, values, allowed):
    unknown = [cut(k) if isinstance(k, str) else shown(k)
               for k in sorted(set(values) - set(allowed), key=str)]
    if unknown:
        also = f" (also: {cut(', '.join(unknown[1:]), 80)})" if unknown[1:] else ""
        raise SpecError(f"{path}: {where}{'.' if where else ''}{unknown[0]}: unknown field{also}")


def _name(path, where, value, check=is_plain_name) -> str:
    """A spec's name (artifact folders and archives are named by it) is a plain name; its
    checkpoint is one file name under checkpoints/ (no folder, no '..')."""
    if not check(value):
        kind = "a plain name (letters, digits, '_', '.' and '-')" if check is is_plain_name \
            else "a file name"
        raise SpecError(f"{path}: {where}: expected {kind}, no folder, got {shown(value)}")
    return value


def _bool(path, where, value):
    if not isinstance(value, bool):
        raise SpecError(f"{path}: {where}: expected true or false, got {shown(value)}")
    return value


def _number(path, where, value):
    field = where.rsplit(".", 1)[-1]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{path}: {where}: expected a number, got {shown(value)}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        finite = False
    if field not in FLOAT_FIELDS:
        if not finite or value != int(value) or value < 0:
            raise SpecError(f"{path}: {where}: expected a non-negative integer, "
                            f"got {shown(value)}")
        low, high = INT_RANGES[field]
        if not low <= value <= high:
            raise SpecError(f"{path}: {where}: {int(value)} is outside {low}..{high}")
        return int(value)
    if not finite or value <= 0:
        raise SpecError(f"{path}: {where}: expected a positive finite number, "
                        f"got {shown(value)}")
    value = float(value)
    if field != "scale_factor":
        if not limits.MIN_POSITIVE_PARAM <= value <= limits.MAX_POSITIVE_PARAM:
            raise SpecError(f"{path}: {where}: {value} is outside "
                            f"{limits.MIN_POSITIVE_PARAM}..{limits.MAX_POSITIVE_PARAM}")
    elif value > 1 or (value != 1 and abs(1 / value - round(1 / value)) > 1e-9):
        raise SpecError(f"{path}: {where}: {value} must be 1 or 1/n for an integer n")
    elif 1 / value > limits.MAX_DOWNSAMPLE:
        raise SpecError(f"{path}: {where}: {value} is below 1/{limits.MAX_DOWNSAMPLE}")
    return value
