"""Compare a candidate's intermediates with a reference's, layer by layer, and report.

    report = compare(reference, candidate, load_tolerances(profile="fp32"))
    report.write_json(path); report.write_markdown(path)
    report.check()  # raises ParityError (carrying the report) unless every layer passed

Every reference layer is checked (shape, max abs, max rel, the stage's tolerance), in
execution order (the reference's order); nothing stops at the first failure. The first
failing layer is `first_divergence`. For each failing layer the smallest tolerance of the
ladder that would have passed is reported - and not applied: the layer still fails.
Names only the candidate has are reported too; they fail unless allowed (`allow_extra`).
"""
from __future__ import annotations

import fnmatch
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import yaml

TOLERANCES_PATH = Path(__file__).resolve().parent / "tolerances.yaml"
METRICS = ("max_abs", "max_rel", "max_scaled")
REL_EPS = 1e-12

PASS = "pass"
FAIL = "fail"  # metric above tolerance, or non-finite values where the reference has none
SHAPE = "shape-mismatch"
MISSING = "missing"  # in the reference, not in the candidate
NO_TOLERANCE = "no-tolerance"  # the profile has no number for this stage (not measured)
EXTRA = "extra"  # in the candidate only, not allowed
EXTRA_ALLOWED = "extra-allowed"


# ------------------------------------------------------------------------------ tolerances

@dataclass(frozen=True)
class Rule:
    stage: str
    glob: str | None = None
    regex: str | None = None

    def matches(self, name: str) -> bool:
        if self.glob is not None:
            return fnmatch.fnmatchcase(name, self.glob)
        return re.search(self.regex, name) is not None


@dataclass(frozen=True)
class Tolerance:
    stage: str
    metric: str
    value: float | None  # None: not measured for this profile


@dataclass(frozen=True)
class Tolerances:
    """Stage rules and one profile's numbers (see tolerances.yaml)."""
    profile: str
    rules: tuple
    metrics: Mapping[str, str]  # stage -> metric
    values: Mapping[str, float | None]  # stage -> tolerance
    ladder: tuple

    def stage_of(self, name: str) -> str:
        for rule in self.rules:
            if rule.matches(name):
                return rule.stage
        raise KeyError(f"no tolerance rule matches layer {name!r}")

    def for_name(self, name: str) -> Tolerance:
        stage = self.stage_of(name)
        return Tolerance(stage, self.metrics[stage], self.values[stage])

    @classmethod
    def uniform(cls, value: float, metric: str = "max_abs", ladder=None) -> "Tolerances":
        """One tolerance for every layer (stage "all"); handy for ad-hoc checks."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
        return cls(profile=f"uniform-{metric}-{value:g}", rules=(Rule("all", glob="*"),),
                   metrics={"all": metric}, values={"all": float(value)},
                   ladder=tuple(ladder or DEFAULT_LADDER))


DEFAULT_LADDER = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def load_tolerances(path: str | Path | None = None, profile: str = "fp32") -> Tolerances:
    """Read a tolerances YAML (default: parity/tolerances.yaml) for one profile.

    A profile may say `inherit: <other profile>` and override some stages.
    """
    path = Path(path) if path is not None else TOLERANCES_PATH
    data = yaml.safe_load(path.read_text())
    where = f"{path}"
    stages = data.get("stages") or {}
    metrics = {}
    for stage, spec in stages.items():
        metric = (spec or {}).get("metric", "max_abs")
        if metric not in METRICS:
            raise ValueError(f"{where}: stages.{stage}.metric: unknown metric {metric!r}")
        metrics[stage] = metric
    rules = []
    for i, raw in enumerate(data.get("rules") or []):
        keys = set(raw) - {"stage"}
        if keys not in ({"glob"}, {"regex"}):
            raise ValueError(f"{where}: rules[{i}]: needs exactly one of glob or regex")
        if raw.get("stage") not in metrics:
            raise ValueError(f"{where}: rules[{i}]: unknown stage {raw.get('stage')!r}")
        if "regex" in raw:
            re.compile(raw["regex"])
        rules.append(Rule(raw["stage"], glob=raw.get("glob"), regex=raw.get("regex")))
    values = _profile_values(data.get("profiles") or {}, profile, where, seen=())
    unknown = sorted(set(values) - set(metrics))
    if unknown:
        raise ValueError(f"{where}: profiles.{profile}: unknown stage {unknown[0]!r}")
    absent = sorted(set(metrics) - set(values))
    if absent:
        raise ValueError(f"{where}: profiles.{profile}: no entry for stage {absent[0]!r} "
                         "(write null when not measured yet)")
    ladder = tuple(float(v) for v in data.get("ladder") or DEFAULT_LADDER)
    if list(ladder) != sorted(ladder):
        raise ValueError(f"{where}: ladder must be increasing")
    return Tolerances(profile=profile, rules=tuple(rules), metrics=metrics,
                      values={k: (None if v is None else float(v)) for k, v in values.items()},
                      ladder=ladder)


def _profile_values(profiles, name, where, seen):
    if name not in profiles:
        raise ValueError(f"{where}: no profile {name!r} (known: {', '.join(profiles)})")
    if name in seen:
        raise ValueError(f"{where}: profiles inherit in a cycle: {' -> '.join(seen)}")
    entry = dict(profiles[name] or {})
    parent = entry.pop("inherit", None)
    base = _profile_values(profiles, parent, where, (*seen, name)) if parent else {}
    return {**base, **entry}


# ---------------------------------------------------------------------------------- report

@dataclass
class LayerResult:
    name: str
    status: str
    stage: str | None = None
    metric: str | None = None
    tolerance: float | None = None
    reference_shape: list | None = None
    candidate_shape: list | None = None
    max_abs: float | None = None
    max_rel: float | None = None
    max_scaled: float | None = None
    would_pass_at: float | None = None  # smallest ladder tolerance that would have passed

    @property
    def passed(self) -> bool:
        return self.status in (PASS, EXTRA_ALLOWED)


@dataclass
class ParityReport:
    profile: str
    layers: list  # LayerResult, in execution (reference) order
    extra: list = field(default_factory=list)  # LayerResult for candidate-only names
    ladder: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.layers) and all(r.passed for r in self.extra)

    @property
    def failures(self) -> list:
        return [r for r in self.layers if not r.passed] + [r for r in self.extra
                                                           if not r.passed]

    @property
    def first_divergence(self) -> str | None:
        """The first reference layer, in execution order, that did not pass."""
        return next((r.name for r in self.layers if not r.passed), None)

    def layer(self, name: str) -> LayerResult:
        for result in [*self.layers, *self.extra]:
            if result.name == name:
                return result
        raise KeyError(name)

    def summary(self) -> dict:
        counts: dict[str, int] = {}
        for result in [*self.layers, *self.extra]:
            counts[result.status] = counts.get(result.status, 0) + 1
        return {"profile": self.profile, "passed": self.passed, "layers": len(self.layers),
                "counts": counts, "first_divergence": self.first_divergence}

    def check(self) -> "ParityReport":
        """Raise ParityError unless every layer passed; returns self otherwise."""
        if not self.passed:
            raise ParityError(self)
        return self

    # ------------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        return {"summary": self.summary(), "ladder": list(self.ladder),
                "layers": [_encode(asdict(r)) for r in self.layers],
                "extra": [_encode(asdict(r)) for r in self.extra]}

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict) -> "ParityReport":
        return cls(profile=data["summary"]["profile"],
                   layers=[LayerResult(**_decode(r)) for r in data["layers"]],
                   extra=[LayerResult(**_decode(r)) for r in data["extra"]],
                   ladder=list(data.get("ladder", [])))

    @classmethod
    def from_json(cls, text: str) -> "ParityReport":
        return cls.from_dict(json.loads(text))

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n")
        return path

    # -------------------------------------------------------------------- Markdown
    def to_markdown(self, title: str = "Parity report") -> str:
        lines = [f"# {title}", ""]
        verdict = "PASSED" if self.passed else "FAILED"
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.summary()["counts"].items()))
        lines.append(f"**{verdict}** - profile `{self.profile}`, {len(self.layers)} layers "
                     f"({counts}).")
        if self.first_divergence is not None:
            first = self.layer(self.first_divergence)
            lines += ["", f"**First divergence: `{first.name}`** ({_describe(first)})."]
        failing = self.failures
        if failing:
            lines += ["", "Failing layers and the smallest ladder tolerance that would have "
                      "passed (reported only, not applied):", ""]
            for result in failing:
                lines.append(f"- `{result.name}`: {_describe(result)}")
        lines += ["", "| # | layer | stage | shape | max abs | max rel | tolerance | status |",
                  "|---:|---|---|---|---:|---:|---:|---|"]
        for i, result in enumerate([*self.layers, *self.extra], start=1):
            name = f"`{result.name}`"
            if result.name == self.first_divergence:
                name = f"**{name} (first divergence)**"
            status = result.status if result.passed else f"**{result.status.upper()}**"
            if result.would_pass_at is not None:
                status += f" (would pass at {result.would_pass_at:g})"
            tolerance = "-" if result.tolerance is None else \
                f"{result.tolerance:g} ({result.metric})"
            lines.append(f"| {i} | {name} | {result.stage or '-'} | {_shape(result)} | "
                         f"{_number(result.max_abs)} | {_number(result.max_rel)} | "
                         f"{tolerance} | {status} |")
        return "\n".join(lines) + "\n"

    def write_markdown(self, path: str | Path, title: str = "Parity report") -> Path:
        path = Path(path)
        path.write_text(self.to_markdown(title))
        return path


class ParityError(AssertionError):
    """Parity failed; `.report` holds the full ParityReport."""

    def __init__(self, report: ParityReport):
        self.report = report
        failing = report.failures
        shown = "; ".join(f"{r.name}: {_describe(r)}" for r in failing[:5])
        more = f"; and {len(failing) - 5} more" if len(failing) > 5 else ""
        super().__init__(f"parity failed ({report.profile}): {len(failing)} of "
                         f"{len(report.layers) + len(report.extra)} layers; first divergence "
                         f"{report.first_divergence}; {shown}{more}")


def _describe(result: LayerResult) -> str:
    if result.status == MISSING:
        return "missing from the candidate"
    if result.status in (EXTRA, EXTRA_ALLOWED):
        return "only in the candidate"
    if result.status == SHAPE:
        return f"shape {result.candidate_shape} != reference {result.reference_shape}"
    measured = getattr(result, result.metric) if result.metric else None
    text = f"{result.metric} {_number(measured)}"
    if result.status == NO_TOLERANCE:
        return text + f", no {result.stage} tolerance in this profile"
    text += f" vs tolerance {result.tolerance:g}"
    if result.status == FAIL:
        text += (f", would pass at {result.would_pass_at:g}" if result.would_pass_at
                 is not None else ", beyond the ladder")
    return text


def _shape(result: LayerResult) -> str:
    ref, cand = result.reference_shape, result.candidate_shape
    if ref is not None and cand is not None and ref != cand:
        return f"{tuple(ref)} vs {tuple(cand)}"
    shape = ref if ref is not None else cand
    return "-" if shape is None else str(tuple(shape))


def _number(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def _encode(row: dict) -> dict:
    """JSON has no NaN or Infinity: such floats become strings."""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in row.items()}


def _decode(row: dict) -> dict:
    return {k: (float(v) if isinstance(v, str) and v in ("nan", "inf", "-inf") else v)
            for k, v in row.items()}


# ------------------------------------------------------------------------------- compare

def compare(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray],
            tolerances: Tolerances | float | None = None, order: Iterable[str] | None = None,
            allow_extra: Iterable[str] = ()) -> ParityReport:
    """Check every reference layer against the candidate; never stops early.

    reference, candidate: name -> array (same layout; the candidate's taps must already be
    in the reference's layout, e.g. NCHW). tolerances: a Tolerances, a number (one max-abs
    tolerance for every layer), or None for the fp32 profile of parity/tolerances.yaml.
    order: execution order of the names (default: the reference's order); reference
    names not in `order` follow in the reference's order. allow_extra: glob patterns of
    candidate-only names that are expected (documented extras).
    """
    if tolerances is None:
        tolerances = load_tolerances()
    elif not isinstance(tolerances, Tolerances):
        tolerances = Tolerances.uniform(float(tolerances))
    names = list(reference)
    if order is not None:
        ordered = [n for n in dict.fromkeys(order) if n in reference]
        seen = set(ordered)
        names = ordered + [n for n in names if n not in seen]
    layers = [_compare_layer(name, reference[name], candidate.get(name), tolerances)
              for name in names]
    allow_extra = list(allow_extra)
    extra = []
    for name in candidate:
        if name not in reference:
            allowed = any(fnmatch.fnmatchcase(name, pattern) for pattern in allow_extra)
            extra.append(LayerResult(name=name, status=EXTRA_ALLOWED if allowed else EXTRA,
                                     candidate_shape=list(np.shape(candidate[name]))))
    return ParityReport(profile=tolerances.profile, layers=layers, extra=extra,
                        ladder=list(tolerances.ladder))


def _compare_layer(name, ref, cand, tolerances: Tolerances) -> LayerResult:
    tol = tolerances.for_name(name)
    result = LayerResult(name=name, status=PASS, stage=tol.stage, metric=tol.metric,
                         tolerance=tol.value, reference_shape=list(np.shape(ref)))
    if cand is None:
        result.status = MISSING
        return result
    result.candidate_shape = list(np.shape(cand))
    if result.candidate_shape != result.reference_shape:
        result.status = SHAPE
        return result
    ref = np.asarray(ref, dtype=np.float64)
    cand = np.asarray(cand, dtype=np.float64)
    result.max_abs, result.max_rel, result.max_scaled = _errors(ref, cand)
    measured = getattr(result, tol.metric)
    if tol.value is None:
        result.status = NO_TOLERANCE
    elif not measured <= tol.value:  # also catches NaN
        result.status = FAIL
    if result.status != PASS:
        result.would_pass_at = next((t for t in tolerances.ladder if measured <= t), None)
    return result


def _errors(ref: np.ndarray, cand: np.ndarray) -> tuple[float, float, float]:
    """(max abs, max rel, max scaled); non-finite values count as infinitely wrong unless
    both sides hold the same non-finite value (NaN and NaN, +inf and +inf)."""
    if ref.size == 0:
        return 0.0, 0.0, 0.0
    same = (ref == cand) | (np.isnan(ref) & np.isnan(cand))
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(ref - cand))
    diff = np.where(np.isnan(diff), np.inf, diff)
    max_abs = float(diff.max())
    finite = np.abs(ref[np.isfinite(ref)])
    scale = max(float(finite.max()) if finite.size else 0.0, REL_EPS)
    return max_abs, max_abs / scale, max_abs / max(scale, 1.0)
