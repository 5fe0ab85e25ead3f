"""Dataset specs: which model a checkpoint holds and how to run it.

Two inputs are accepted and resolved to the same `Spec`:
- our spec YAML (specs/<name>.yaml), and
- an original-format config YAML (the upstream `config/*.yaml`, for custom-trained
  models), of which only `dataset_params.frame_shape`, `model_params` and (FOMM)
  `animate_params.normalization_params` matter; its model params say its family.

A spec names its model family (`family`, default fomm: families.py); the family's schema
(its package's `spec` module) resolves the model parameters and its own settings. Every
field is checked: an unknown or missing one is an error that names the file and the
field's dotted path, because a silently ignored option is how converted models end up
"distorted". A spec is hostile input too: YAML without aliases, of bounded size and depth;
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
from .errors import FommError, cut, one_line, shown, warn
from .families import DEFAULT, FAMILIES, UnknownFamily, family
from .paths import is_file_name, is_plain_name, spec_file

# specs/ ships as the package fomm_convert.specs, in a checkout and in a wheel alike.
SPECS_DIR = Path(str(files("fomm_convert.specs")))

# A field the original has no default for.
REQUIRED = object()
# The fields of every spec; a family's schema adds its SETTINGS.
SPEC_FIELDS = {"name", "family", "description", "upstream_config", "frame_shape", "checkpoint",
               "model_params"}
# Model params that are numbers, not integers (in every family that has them).
FLOAT_FIELDS = ("temperature", "scale_factor", "kp_variance")
# The setting --align-corners overrides (families whose grid_sample convention is a choice).
ALIGN_CORNERS = "grid_sample_align_corners"


class SpecError(FommError, ValueError):
    """A spec or config file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class SpecParts:
    """What a family's schema resolves: model params by section (its own layout), its
    settings as to_dict records them, keypoints per frame, the grid_sample convention."""
    params: dict
    settings: dict
    num_kp: int
    align_corners: bool


@dataclass(frozen=True)
class Spec:
    name: str
    path: Path
    family: str  # families.FAMILIES
    frame_shape: tuple  # (H, W, C)
    checkpoint: str | None  # file name under checkpoints/
    params: dict  # the resolved model params by section, as the family's schema holds them
    settings: dict  # the family's own resolved fields (animation defaults, conventions)
    num_kp: int  # keypoints per frame
    align_corners: bool  # grid_sample convention (FOMM: False is torch >= 1.3's default)
    description: str = ""

    # Sections by the original's names (a family has those its configs have).
    @property
    def common(self) -> dict:
        return self.params["common_params"]

    @property
    def kp_detector(self) -> dict:
        return self.params["kp_detector_params"]

    @property
    def generator(self) -> dict:
        return self.params["generator_params"]

    @property
    def dense_motion(self) -> dict:
        return self.params["dense_motion_params"]

    @property
    def estimate_jacobian(self) -> bool:
        return self.common.get("estimate_jacobian", False)

    def kp_detector_kwargs(self) -> dict:
        return {**self.common, **self.kp_detector}

    def generator_kwargs(self) -> dict:
        return {**self.common, **self.generator, "dense_motion_params": dict(self.dense_motion)}

    def model_params(self) -> dict:
        """The model params in the original configs' layout."""
        return family(self.family).facet("spec").model_params(self.params)

    def to_dict(self) -> dict:
        """The resolved spec, every default filled in (recorded in bundles). The default
        family is not written: specs resolved before families existed, and the bundle
        versions digested from them, stay what they were."""
        named = {} if self.family == DEFAULT else {"family": self.family}
        return {"name": self.name, **named, "frame_shape": list(self.frame_shape),
                "checkpoint": self.checkpoint, **self.settings,
                "model_params": self.model_params()}

    def with_align_corners(self, value: bool) -> "Spec":
        if ALIGN_CORNERS not in self.settings:
            raise SpecError(f"{self.path}: a {family(self.family).title} model has no "
                            f"{ALIGN_CORNERS} choice (its grid_sample always aligns "
                            f"corners): --align-corners does not apply")
        return dataclasses.replace(self, align_corners=bool(value),
                                   settings={**self.settings, ALIGN_CORNERS: bool(value)})


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
    try:
        row = family(data.get("family", DEFAULT))
    except UnknownFamily as exc:
        raise SpecError(f"{path}: family: {exc}") from None
    schema = row.facet("spec")
    reject_unknown(path, "", data, SPEC_FIELDS | set(schema.SETTINGS))
    for field in ("name", "frame_shape", "checkpoint", "model_params"):
        if field not in data:
            raise SpecError(f"{path}: {field}: missing")
    checkpoint = None if data["checkpoint"] is None \
        else _name(path, "checkpoint", data["checkpoint"], is_file_name)
    if not isinstance(description := data.get("description", ""), str):
        raise SpecError(f"{path}: description: expected text, got {shown(description)}")
    name = _name(path, "name", data["name"])
    frame_shape = _frame_shape(path, data["frame_shape"])
    return _spec(path, name, row.name, frame_shape, checkpoint, description,
                 schema.resolve(path, data, frame_shape, original=False))


def _from_original_config(path: Path, data: dict) -> Spec:
    """An upstream config: the family whose MARKER its common_params hold (the
    default family's, which says what is wrong, when none does); its frame shape, else
    the family's demo default."""
    dataset = mapping(path, "dataset_params", data["dataset_params"])
    model_params = data.get("model_params")
    common = model_params.get("common_params") if isinstance(model_params, dict) else None
    row = next((f for name, f in FAMILIES.items() if name != DEFAULT
                and isinstance(common, dict) and f.facet("spec").MARKER in common),
               family(DEFAULT))
    schema = row.facet("spec")
    frame_shape = dataset.get("frame_shape", schema.DEFAULT_FRAME_SHAPE)
    if frame_shape is None:
        raise SpecError(f"{path}: dataset_params.frame_shape: missing")
    if "model_params" not in data:
        raise SpecError(f"{path}: model_params: missing")
    if not is_plain_name(path.stem):
        raise SpecError(f"{path}: the config's file name {shown(path.stem)} names the model: "
                        f"rename it to letters, digits, '_', '.' and '-'")
    frame_shape = _frame_shape(path, frame_shape)
    return _spec(path, path.stem, row.name, frame_shape, None, "original-format config",
                 schema.resolve(path, data, frame_shape, original=True))


def _spec(path, name, family_name, frame_shape, checkpoint, description, parts: SpecParts):
    return Spec(name=name, path=path, family=family_name, frame_shape=tuple(frame_shape),
                checkpoint=checkpoint, params=parts.params, settings=parts.settings,
                num_kp=parts.num_kp, align_corners=parts.align_corners,
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


def section(path, where, values, fields: dict, int_ranges: dict, nested=()) -> dict:
    """A section of model params: `fields` maps each field to its default (REQUIRED: none),
    booleans by a boolean default, integers checked against `int_ranges` (smallest,
    largest), FLOAT_FIELDS as positive numbers; `nested` fields (sections inside this one)
    are returned as they are, for their own check."""
    values = mapping(path, where, values)
    reject_unknown(path, where, values, fields)
    out = {}
    for field, default in fields.items():
        if field in values:
            value = values[field]
            if default is not REQUIRED and isinstance(default, bool):
                value = boolean(path, f"{where}.{field}", value)
            elif field not in nested:
                value = _number(path, f"{where}.{field}", value, int_ranges)
            out[field] = value
        elif default is REQUIRED:
            raise SpecError(f"{path}: {where}.{field}: missing")
        else:
            out[field] = default
    return out


def mapping(path, where, value) -> dict:
    """A section that may be absent (None: empty) but is a mapping when present."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"{path}: {where}: expected a mapping, got {shown(value)}")
    return value


def reject_unknown(path, where, values, allowed):
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


def boolean(path, where, value):
    if not isinstance(value, bool):
        raise SpecError(f"{path}: {where}: expected true or false, got {shown(value)}")
    return value


def _number(path, where, value, int_ranges):
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
        low, high = int_ranges[field]
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
