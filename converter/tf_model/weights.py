"""Fill the TF models from a checkpoint through a declarative table (weight_table.yaml
here for FOMM; each model family has its own).

`apply_weights` is all or nothing: it checks every checkpoint tensor and every TF variable
before assigning anything, and on any failure raises one `WeightTableError` that lists
every offender (unused tensors, unset variables, shape mismatches with both shapes,
duplicate assignments). On success it returns a `WeightReport` saying, for each torch key,
which rule took it, where it went, and what was dropped and why. `apply_networks` does
it for every network of a checkpoint at once; a table's `entries` drop the checkpoint's
other top-level entries by name (optimizer state, networks inference never runs).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..errors import FommError

TABLE_PATH = Path(__file__).resolve().parent / "weight_table.yaml"


# ---------------------------------------------------------------- transforms
class TransformError(ValueError):
    """A tensor cannot go through its transform (wrong rank or layout)."""


def _conv_oihw_to_hwio(a: np.ndarray) -> np.ndarray:
    if a.ndim != 4:
        raise TransformError(f"expected a 4-D OIHW conv weight, got shape {list(a.shape)}")
    return np.transpose(a, (2, 3, 1, 0))


def _depthwise_c1kk_to_kkc1(a: np.ndarray) -> np.ndarray:
    if a.ndim != 4 or a.shape[1] != 1:
        raise TransformError(f"expected a [C, 1, k, k] depthwise kernel, got shape "
                             f"{list(a.shape)}")
    return np.transpose(a, (2, 3, 0, 1))


def _vector(a: np.ndarray) -> np.ndarray:
    if a.ndim != 1:
        raise TransformError(f"expected a 1-D tensor, got shape {list(a.shape)}")
    return a


def _linear_oi_to_io(a: np.ndarray) -> np.ndarray:
    if a.ndim != 2:
        raise TransformError(f"expected a 2-D [out, in] linear weight, got shape "
                             f"{list(a.shape)}")
    return a.T


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "conv_oihw_to_hwio": _conv_oihw_to_hwio,  # torch [O, I, kh, kw] -> TF [kh, kw, I, O]
    "depthwise_c1kk_to_kkc1": _depthwise_c1kk_to_kkc1,  # [C, 1, k, k] -> [k, k, C, 1]
    "bn_gamma": _vector,  # BatchNorm weight -> gamma
    "bn_beta": _vector,  # BatchNorm bias -> beta
    "bn_moving_mean": _vector,  # running_mean -> moving_mean
    "bn_moving_variance": _vector,  # running_var -> moving_variance
    "norm_gamma": _vector,  # InstanceNorm (affine) weight -> gamma
    "norm_beta": _vector,  # InstanceNorm (affine) bias -> beta
    "linear_oi_to_io": _linear_oi_to_io,  # torch Linear [out, in] -> TF [in, out]
    "identity": lambda a: a,
}


# ---------------------------------------------------------------- the table
@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern
    target: str | None = None  # TF path template; None for a drop rule
    transform: str | None = None
    drop: str | None = None  # the reason, for a drop rule

    def target_for(self, match: re.Match) -> str:
        return self.target.format(**match.groupdict())


def load_table(path: str | Path = TABLE_PATH) -> list[Rule]:
    """The ordered rules of a weight table YAML, validated."""
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise ValueError(f"{path}: expected a mapping with a list of rules")
    return _rules(data["rules"], f"{path}: rules")


def load_entry_rules(path: str | Path = TABLE_PATH) -> list[Rule]:
    """A weight table's `entries` (none if absent): drop rules matching the checkpoint's
    top-level entry names that are not networks."""
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    rules = _rules(data.get("entries") or [], f"{path}: entries")
    kept = [rule.name for rule in rules if rule.drop is None]
    if kept:
        raise ValueError(f"{path}: entries: {kept[0]} is not a drop rule (networks are "
                         "the models given, not table entries)")
    return rules


def _rules(items: list, where_all: str) -> list[Rule]:
    rules, names = [], set()
    for i, raw in enumerate(items):
        where = f"{where_all}[{i}]"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a mapping")
        unknown = set(raw) - {"name", "pattern", "target", "transform", "drop"}
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
        name = raw.get("name")
        if not name or name in names:
            raise ValueError(f"{where}: missing or duplicate name {name!r}")
        names.add(name)
        try:
            pattern = re.compile(raw["pattern"])
        except (KeyError, re.error) as exc:
            raise ValueError(f"{where} ({name}): bad or missing pattern: {exc}") from None
        if "drop" in raw:
            if "target" in raw or "transform" in raw:
                raise ValueError(f"{where} ({name}): a drop rule has no target or transform")
            rules.append(Rule(name, pattern, drop=str(raw["drop"])))
            continue
        if raw.get("transform") not in TRANSFORMS:
            raise ValueError(f"{where} ({name}): transform must be one of {sorted(TRANSFORMS)}")
        groups = set(re.findall(r"{(\w+)}", raw.get("target") or ""))
        if not raw.get("target") or not groups <= set(pattern.groupindex):
            raise ValueError(f"{where} ({name}): target must use only the pattern's groups")
        rules.append(Rule(name, pattern, target=raw["target"], transform=raw["transform"]))
    return rules


def match_rule(rules: list[Rule], key: str) -> tuple[Rule | None, re.Match | None]:
    for rule in rules:
        match = rule.pattern.fullmatch(key)
        if match:
            return rule, match
    return None, None


# ---------------------------------------------------------------- report and error
@dataclass
class WeightEntry:
    torch_key: str
    torch_shape: tuple
    dtype: str
    rule: str
    tf_path: str | None = None  # None when dropped
    tf_shape: tuple | None = None
    transform: str | None = None
    dropped: str | None = None  # the drop reason

    def to_dict(self) -> dict:
        return {"torch_key": self.torch_key, "torch_shape": list(self.torch_shape),
                "dtype": self.dtype, "rule": self.rule, "tf_path": self.tf_path,
                "tf_shape": None if self.tf_shape is None else list(self.tf_shape),
                "transform": self.transform, "dropped": self.dropped}


@dataclass
class WeightReport:
    net: str
    entries: list[WeightEntry] = field(default_factory=list)

    @property
    def assigned(self) -> list[WeightEntry]:
        return [e for e in self.entries if e.dropped is None]

    @property
    def dropped(self) -> list[WeightEntry]:
        return [e for e in self.entries if e.dropped is not None]

    def parameter_count(self) -> int:
        return int(sum(np.prod(e.tf_shape, dtype=np.int64) for e in self.assigned))

    def summary(self) -> str:
        reasons: dict[str, int] = {}
        for e in self.dropped:
            reasons[e.dropped] = reasons.get(e.dropped, 0) + 1
        dropped = "; ".join(f"{n} x {r}" for r, n in reasons.items()) or "nothing"
        return (f"{self.net}: {len(self.assigned)} tensors assigned "
                f"({self.parameter_count()} values), dropped {dropped}")

    def to_dict(self) -> dict:
        return {"net": self.net, "summary": self.summary(),
                "entries": [e.to_dict() for e in self.entries]}


@dataclass
class WeightProblems:
    """Everything wrong with one network's checkpoint against its TF model."""
    net: str
    unmatched: list[str] = field(default_factory=list)  # torch keys no rule matches
    missing_targets: list[tuple[str, str, str]] = field(default_factory=list)  # key, rule, path
    unset: list[str] = field(default_factory=list)  # TF paths no tensor sets
    mismatched: list[tuple[str, tuple, str, tuple | None, tuple, str]] = \
        field(default_factory=list)  # key, torch shape, path, converted shape, TF shape, note
    duplicates: list[tuple[str, list[str]]] = field(default_factory=list)  # path, keys
    bad_dtype: list[tuple[str, str]] = field(default_factory=list)  # key, dtype
    absent: bool = False  # the checkpoint has no entry of this network's name
    unused_entry: bool = False  # a top-level entry neither a network nor dropped by a rule

    def __bool__(self) -> bool:
        return any((self.unmatched, self.missing_targets, self.unset, self.mismatched,
                    self.duplicates, self.bad_dtype, self.absent, self.unused_entry))

    def lines(self) -> list[str]:
        out = []
        if self.absent:
            out.append(f"the checkpoint has no {self.net} entry")
        if self.unused_entry:
            out.append(f"unused checkpoint entry {self.net}: no entry rule matches it")
        for key in self.unmatched:
            out.append(f"unused checkpoint tensor {key}: no rule matches it")
        for key, rule, path in self.missing_targets:
            out.append(f"unused checkpoint tensor {key}: rule {rule} maps it to {path}, "
                       f"which the TF model does not have")
        for path in self.unset:
            out.append(f"TF variable {path} is not set by any checkpoint tensor")
        for key, shape, path, converted, tf_shape, note in self.mismatched:
            got = f" -> {list(converted)}" if converted is not None else ""
            out.append(f"shape mismatch: {key} {list(shape)}{got} vs TF {path} "
                       f"{list(tf_shape)}" + (f" ({note})" if note else ""))
        for path, keys in self.duplicates:
            out.append(f"TF variable {path} is assigned more than once: by {', '.join(keys)}")
        for key, dtype in self.bad_dtype:
            out.append(f"checkpoint tensor {key} has dtype {dtype}, expected a float tensor")
        return out


class WeightTableError(FommError, ValueError):
    """A checkpoint does not fit the TF model; `.problems` holds every offender by kind."""

    def __init__(self, problems: list[WeightProblems]):
        self.problems = problems
        parts = []
        for p in problems:
            lines = p.lines()
            parts.append(f"{p.net}: {len(lines)} problem(s):\n" +
                         "\n".join(f"  - {line}" for line in lines))
        super().__init__("checkpoint does not fit the TF model\n" + "\n".join(parts))

    def counts(self) -> str:
        """Per network: how many tensors are missing, unexpected, of the wrong shape."""
        out = []
        for p in self.problems:
            wrong_shape = {m[2] for m in p.mismatched}  # TF variables, counted once
            missing = [path for path in p.unset if path not in wrong_shape]
            kinds = [f"{len(missing)} missing",
                     f"{len(p.unmatched) + len(p.missing_targets)} unexpected",
                     f"{len(p.mismatched)} of another shape"]
            kinds += [f"{len(p.duplicates)} assigned twice"] if p.duplicates else []
            kinds += [f"{len(p.bad_dtype)} not float"] if p.bad_dtype else []
            kinds = ["absent"] if p.absent else ["unexpected"] if p.unused_entry else kinds
            out.append(f"{p.net} {', '.join(kinds)}")
        return "; ".join(out)

    def examples(self, limit: int = 2) -> str:
        """The first few shape mismatches, the checkpoint's shape and the model's."""
        mismatched = [m for p in self.problems for m in p.mismatched][:limit]
        out = []
        for key, shape, _, converted, tf_shape, _ in mismatched:
            turned = f" (as {list(converted)})" if converted not in (None, shape) else ""
            out.append(f"{key} {list(shape)}{turned} vs the model's {list(tf_shape)}")
        return "; ".join(out)


# ---------------------------------------------------------------- applying the table
def apply_weights(tf_module, state_dict: Mapping[str, np.ndarray], net_name: str,
                  rules: list[Rule] | None = None) -> WeightReport:
    """Set every variable of `tf_module` from `state_dict` through the table, or raise
    WeightTableError (nothing assigned) listing every problem at once."""
    from .blocks import named_variables

    rules = load_table() if rules is None else rules
    variables = OrderedDict(named_variables(tf_module))
    problems = WeightProblems(net_name)
    report = WeightReport(net_name)
    takers: dict[str, list[str]] = {}
    pending = []
    for key, tensor in state_dict.items():
        array = np.asarray(tensor)
        rule, match = match_rule(rules, key)
        if rule is None:
            problems.unmatched.append(key)
            continue
        entry = WeightEntry(key, tuple(array.shape), str(array.dtype), rule.name)
        if rule.drop is not None:
            entry.dropped = rule.drop
            report.entries.append(entry)
            continue
        path = rule.target_for(match)
        variable = variables.get(path)
        if variable is None:
            problems.missing_targets.append((key, rule.name, path))
            continue
        takers.setdefault(path, []).append(key)
        tf_shape = tuple(variable.shape.as_list())
        if not np.issubdtype(array.dtype, np.floating):
            problems.bad_dtype.append((key, str(array.dtype)))
            continue
        try:
            value = TRANSFORMS[rule.transform](array)
        except TransformError as exc:
            problems.mismatched.append((key, tuple(array.shape), path, None, tf_shape,
                                        str(exc)))
            continue
        if tuple(value.shape) != tf_shape:
            problems.mismatched.append((key, tuple(array.shape), path, tuple(value.shape),
                                        tf_shape, f"after {rule.transform}"))
            continue
        entry.tf_path, entry.tf_shape, entry.transform = path, tf_shape, rule.transform
        report.entries.append(entry)
        pending.append((variable, value))
    problems.duplicates = [(path, keys) for path, keys in takers.items() if len(keys) > 1]
    problems.unset = [path for path in variables if path not in takers]
    if problems:
        raise WeightTableError([problems])
    for variable, value in pending:
        variable.assign(np.ascontiguousarray(value, dtype=np.float32))
    return report


def apply_networks(modules: Mapping[str, object], entries: Mapping[str, object],
                   rules: list[Rule], entry_rules: list[Rule] = ()) -> dict[str, WeightReport]:
    """Each network of `modules` ({name: TF module}) set from the checkpoint entry of the
    same name ({name: state dict}) through `rules`; every other entry must match a drop
    rule of `entry_rules` (its value is never read). Problems of every network and entry
    are raised together in one WeightTableError. Returns {entry: WeightReport}, a dropped
    entry's holding one dropped row under its own name."""
    reports, problems = {}, []
    for net, module in modules.items():
        if net not in entries:
            problems.append(WeightProblems(net, absent=True))
            continue
        try:
            reports[net] = apply_weights(module, entries[net], net, rules)
        except WeightTableError as exc:
            problems.extend(exc.problems)
    for name in entries:
        if name in modules:
            continue
        rule, _ = match_rule(list(entry_rules), name)
        if rule is None:
            problems.append(WeightProblems(name, unused_entry=True))
            continue
        reports[name] = WeightReport(name, [WeightEntry(name, (), "entry", rule.name,
                                                        dropped=rule.drop)])
    if problems:
        raise WeightTableError(problems)
    return reports


def _state(checkpoint, net: str) -> Mapping[str, np.ndarray]:
    if isinstance(checkpoint, Mapping):
        return checkpoint[net]
    return getattr(checkpoint, net)


def build_tf_models(spec, checkpoint, *, return_reports: bool = False):
    """The TF (kp_detector, generator) of a spec with the checkpoint's weights applied.

    `checkpoint` has `.kp_detector` and `.generator` state dicts (fomm_convert.checkpoint.
    Checkpoint) or is a mapping with those keys. Problems in both networks are raised
    together in one WeightTableError. With return_reports, also returns
    {"kp_detector": WeightReport, "generator": WeightReport}.
    """
    from . import build_models

    kp_detector, generator = build_models(spec)
    modules = {"kp_detector": kp_detector, "generator": generator}
    reports = apply_networks(modules, {net: _state(checkpoint, net) for net in modules},
                             load_table())
    if return_reports:
        return kp_detector, generator, reports
    return kp_detector, generator
