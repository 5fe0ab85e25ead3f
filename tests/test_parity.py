"""Per-layer parity machinery: recording torch intermediates by the oracle's names, and
comparing/reporting layer by layer with tolerances from parity/tolerances.yaml."""
from __future__ import annotations

import json
from collections import OrderedDict

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES, ORACLE, config_path, require_oracle
from torch import nn

from fomm_convert.spec import load_spec
from fomm_convert.torch_model import build_models, load_weights
from fomm_convert import parity
from fomm_convert.parity.compare import (EXTRA, EXTRA_ALLOWED, FAIL, MISSING, NO_TOLERANCE, PASS, SHAPE,
                            ParityError, ParityReport, Tolerances, compare, load_tolerances)
from fomm_convert.parity.record import DOCUMENTED_EXTRAS, ROOT, record_torch

PREFIXES = ("kp_source/", "kp_driving0/", "generator/", "generator_abs/")


# ------------------------------------------------------------------------------ recording

class Pair(nn.Module):
    def forward(self, x):
        return {"double": 2 * x, "parts": (x[:, :1], [x[:, 1:]]), "none": None}


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
        self.pair = Pair()
        self.shared = nn.Identity()

    def forward(self, x, offset=0.0):
        out = self.body(x)
        out += offset  # in place, after body's hook fired
        parts = self.pair(out)
        self.shared(out)
        return [self.shared(parts["double"]), out.sum()]


def test_record_torch_names_and_copies():
    torch.manual_seed(0)
    toy = Toy().eval()
    x = torch.randn(2, 3)
    recorded = record_torch(toy, x, prefix="toy/", offset=5.0)
    assert list(recorded) == [
        "toy/body.0", "toy/body.1", "toy/body",
        "toy/pair:double", "toy/pair:parts:0", "toy/pair:parts:1:0",
        "toy/shared", "toy/shared#1",
        f"toy/{ROOT}:0", f"toy/{ROOT}:1"]
    with torch.no_grad():
        body = toy.body(x)
    # Copied at hook time: the in-place "+= offset" after the hook is not seen.
    np.testing.assert_array_equal(recorded["toy/body"], body.numpy())
    np.testing.assert_array_equal(recorded["toy/pair:double"], 2 * (body + 5).numpy())
    assert recorded[f"toy/{ROOT}:1"].shape == ()
    assert all(isinstance(v, np.ndarray) for v in recorded.values())


def test_record_torch_removes_its_hooks_even_on_error():
    toy = Toy().eval()
    with pytest.raises(RuntimeError):
        record_torch(toy, torch.randn(2, 4))  # wrong width for the Linear
    assert all(not m._forward_hooks for m in toy.modules())
    record_torch(toy, torch.randn(2, 3))
    assert all(not m._forward_hooks for m in toy.modules())


@pytest.fixture(scope="module")
def tiny_recording():
    """Our torch reference on the oracle's tiny inputs, recorded like the oracle did."""
    require_oracle("tiny_intermediates.npz")
    kp_detector, generator = build_models(load_spec(config_path("tiny")))
    checkpoint = torch.load(FIXTURES / "tiny-seed7.pth.tar", map_location="cpu",
                            weights_only=True)
    for module, key in ((kp_detector, "kp_detector"), (generator, "generator")):
        state = OrderedDict((k, v.numpy()) for k, v in checkpoint[key].items())
        load_weights(module, state, key)
    data = np.load(FIXTURES / "tiny.npz")

    def tensor(name, rows=slice(None)):
        return torch.from_numpy(np.ascontiguousarray(data[name][rows]))

    kp_source = {"value": tensor("kp_source_value"), "jacobian": tensor("kp_source_jacobian")}
    recorded = OrderedDict()
    recorded.update(record_torch(kp_detector, tensor("source"), prefix="kp_source/"))
    recorded.update(record_torch(kp_detector, tensor("driving", slice(0, 1)),
                                 prefix="kp_driving0/"))
    for prefix, norm in (("generator/", "norm_rel1_adapt1"), ("generator_abs/",
                                                              "norm_rel0_adapt0")):
        kp_driving = {"value": tensor(f"{norm}_value", slice(0, 1)),
                      "jacobian": tensor(f"{norm}_jacobian", slice(0, 1))}
        recorded.update(record_torch(generator, tensor("source"), kp_driving=kp_driving,
                                     kp_source=kp_source, prefix=prefix))
    oracle = np.load(ORACLE / "tiny_intermediates.npz")
    return OrderedDict((k, oracle[k]) for k in oracle.files), recorded


def test_torch_reference_records_the_oracle_names(tiny_recording):
    oracle, ours = tiny_recording
    for prefix in PREFIXES:
        theirs = [k for k in oracle if k.startswith(prefix)]
        mine = [k for k in ours if k.startswith(prefix)]
        assert theirs, prefix
        assert not set(theirs) - set(mine), prefix
        extras = {k[len(prefix):] for k in set(mine) - set(theirs)}
        assert extras <= set(DOCUMENTED_EXTRAS), extras
        # Same execution order.
        assert [k for k in mine if k in set(theirs)] == theirs
    assert set(ours) - set(oracle) == {f"{p}{ROOT}:deformation"
                                       for p in ("generator/", "generator_abs/")}


def test_torch_reference_reproduces_the_oracle_intermediates(tiny_recording):
    oracle, ours = tiny_recording
    report = compare(oracle, ours, load_tolerances(profile="fp32"),
                     allow_extra=[f"*{name}" for name in DOCUMENTED_EXTRAS])
    report.check()
    # The numbers the task holds us to, independent of the YAML.
    for layer in report.layers:
        limit = 1e-5 if layer.name.endswith(":value") else 1e-4
        assert layer.max_abs <= limit, (layer.name, layer.max_abs)
    assert {r.status for r in report.extra} == {EXTRA_ALLOWED}


# ---------------------------------------------------------------------------- tolerances

def test_stages_of_the_oracle_names():
    tol = load_tolerances()
    expected = {
        "kp_source/<root>:value": ("keypoint_value", 1e-5),
        "kp_driving0/<root>:jacobian": ("keypoint_jacobian", 1e-4),
        "kp_source/jacobian": ("features", 1e-4),
        "kp_source/predictor.encoder:0": ("features", 1e-4),
        "generator/dense_motion_network:deformation": ("dense_motion", 1e-4),
        "generator/dense_motion_network.mask": ("features", 1e-4),
        "generator/<root>:mask": ("dense_motion", 1e-4),
        "generator/<root>:occlusion_map": ("dense_motion", 1e-4),
        "generator/<root>:prediction": ("image", 1e-4),
        "generator_abs/<root>:deformed": ("warped", 1e-4),
        "generator/dense_motion_network:sparse_deformed": ("warped", 1e-4),
        "generator/bottleneck.r0.conv2": ("features", 1e-4),
    }
    for name, (stage, value) in expected.items():
        got = tol.for_name(name)
        assert (got.stage, got.metric, got.value) == (stage, "max_abs", value), name
    fp16 = load_tolerances(profile="fp16")
    assert fp16.for_name("generator/<root>:prediction").value == 1e-2


def test_tolerance_profiles_inherit_and_are_checked(tmp_path):
    path = tmp_path / "tol.yaml"
    path.write_text("""
stages: {a: {metric: max_abs}, b: {metric: max_rel}}
rules: [{regex: "^a", stage: a}, {glob: "*", stage: b}]
profiles:
  base: {a: 1.0e-3, b: null}
  tflite-fp16: {inherit: base, b: 0.5}
""")
    tol = load_tolerances(path, profile="tflite-fp16")
    assert tol.for_name("a/x").value == 1e-3 and tol.for_name("z").metric == "max_rel"
    assert tol.for_name("z").value == 0.5
    with pytest.raises(ValueError, match="no profile"):
        load_tolerances(path, profile="int4")
    path.write_text(path.read_text().replace("base: {a: 1.0e-3, b: null}", "base: {a: 1}"))
    with pytest.raises(ValueError, match="no entry for stage 'b'"):
        load_tolerances(path, profile="base")


# ------------------------------------------------------------------------------- compare

def synthetic_intermediates():
    """A small stand-in for a recording, with the oracle's kinds of names, in order."""
    rng = np.random.default_rng(0)
    shapes = OrderedDict([
        ("kp_source/down", (1, 3, 8, 8)),
        ("kp_source/predictor.encoder.down_blocks.0.conv", (1, 4, 8, 8)),
        ("kp_source/predictor.encoder.down_blocks.0", (1, 4, 4, 4)),
        ("kp_source/kp", (1, 5, 2, 2)),
        ("kp_source/<root>:value", (1, 5, 2)),
        ("kp_source/<root>:jacobian", (1, 5, 2, 2)),
        ("generator/first.conv", (1, 4, 8, 8)),
        ("generator/dense_motion_network:deformation", (1, 4, 4, 2)),
        ("generator/bottleneck.r0.conv2", (1, 4, 4, 4)),
        ("generator/final", (1, 3, 8, 8)),
        ("generator/<root>:prediction", (1, 3, 8, 8)),
    ])
    return OrderedDict((k, rng.uniform(-2, 2, s).astype(np.float32)) for k, s in shapes.items())


def perturbed(reference, changes):
    out = OrderedDict((k, v.copy()) for k, v in reference.items())
    for name, delta in changes.items():
        out[name].flat[3] += np.float32(delta)
    return out


def test_identical_intermediates_pass():
    reference = synthetic_intermediates()
    report = compare(reference, perturbed(reference, {}))
    assert report.passed and report.first_divergence is None
    assert [r.name for r in report.layers] == list(reference)
    assert all(r.status == PASS and r.max_abs == 0 and r.would_pass_at is None
               for r in report.layers)
    assert report.check() is report


def test_a_perturbed_layer_is_the_first_divergence():
    reference = synthetic_intermediates()
    target = "kp_source/predictor.encoder.down_blocks.0"
    # The error propagates downstream (larger there); the first failure is what counts.
    candidate = perturbed(reference, {target: 3e-4, "kp_source/kp": 5e-3,
                                      "generator/final": 0.2})
    report = compare(reference, candidate)
    assert not report.passed
    assert report.first_divergence == target
    layer = report.layer(target)
    assert layer.status == FAIL and layer.tolerance == 1e-4 and layer.stage == "features"
    assert layer.max_abs == pytest.approx(3e-4, rel=1e-3)
    assert layer.max_rel == pytest.approx(layer.max_abs / np.abs(reference[target]).max())
    assert layer.would_pass_at == 1e-3  # reported only: the layer still fails
    assert report.layer("kp_source/kp").would_pass_at == 1e-2
    assert report.layer("generator/final").would_pass_at == 1.0
    assert [r.name for r in report.failures] == [target, "kp_source/kp", "generator/final"]
    assert report.layer("kp_source/down").status == PASS
    with pytest.raises(ParityError) as caught:
        report.check()
    assert caught.value.report is report
    assert target in str(caught.value) and "would pass at 0.001" in str(caught.value)


def test_keypoint_values_have_the_tighter_tolerance():
    reference = synthetic_intermediates()
    report = compare(reference, perturbed(reference, {"kp_source/<root>:value": 2e-5,
                                                      "kp_source/<root>:jacobian": 2e-5}))
    value = report.layer("kp_source/<root>:value")
    assert (value.status, value.tolerance, value.would_pass_at) == (FAIL, 1e-5, 1e-4)
    assert report.layer("kp_source/<root>:jacobian").status == PASS
    assert report.first_divergence == "kp_source/<root>:value"


def test_shape_mismatch_and_missing_names_fail():
    reference = synthetic_intermediates()
    candidate = perturbed(reference, {})
    candidate["generator/first.conv"] = np.transpose(candidate["generator/first.conv"],
                                                     (0, 2, 3, 1))  # NHWC by mistake
    del candidate["kp_source/kp"]
    report = compare(reference, candidate)
    assert report.first_divergence == "kp_source/kp"
    missing = report.layer("kp_source/kp")
    assert missing.status == MISSING and missing.would_pass_at is None
    shape = report.layer("generator/first.conv")
    assert shape.status == SHAPE and shape.candidate_shape == [1, 8, 8, 4]
    assert shape.max_abs is None and shape.would_pass_at is None
    assert {r.name for r in report.failures} == {"kp_source/kp", "generator/first.conv"}


def test_candidate_only_names_fail_unless_allowed():
    reference = synthetic_intermediates()
    candidate = perturbed(reference, {})
    candidate["generator/<root>:deformation"] = np.zeros((1, 4, 4, 2), np.float32)
    candidate["generator/surprise"] = np.zeros(1, np.float32)
    report = compare(reference, candidate, allow_extra=["*<root>:deformation"])
    assert report.first_divergence is None  # every reference layer passed...
    assert not report.passed  # ...but an unexpected name is a failure
    assert report.layer("generator/<root>:deformation").status == EXTRA_ALLOWED
    assert [r.name for r in report.failures] == ["generator/surprise"]
    assert report.layer("generator/surprise").status == EXTRA


def test_non_finite_candidates_fail():
    reference = synthetic_intermediates()
    candidate = perturbed(reference, {})
    candidate["generator/final"].flat[0] = np.nan
    candidate["generator/<root>:prediction"].flat[0] = np.inf
    report = compare(reference, candidate)
    for name in ("generator/final", "generator/<root>:prediction"):
        layer = report.layer(name)
        assert layer.status == FAIL and layer.max_abs == np.inf and layer.would_pass_at is None
    assert report.first_divergence == "generator/final"


def test_order_and_uniform_tolerances():
    reference = synthetic_intermediates()
    names = list(reference)
    candidate = perturbed(reference, {names[2]: 0.05, names[5]: 0.05})
    report = compare(reference, candidate, 0.1)
    assert report.passed and report.profile.startswith("uniform")
    report = compare(reference, candidate, Tolerances.uniform(0.01),
                     order=[names[5], names[0]])
    assert [r.name for r in report.layers][:3] == [names[5], names[0], names[1]]
    assert report.first_divergence == names[5]


def test_max_scaled_is_absolute_up_to_magnitude_one_and_relative_beyond():
    """Issue 21's policy: 1e-4 of an array within [-1, 1] is 1e-4; of one reaching 19,
    1.9e-3 (TPSMM's InstanceNorm activations)."""
    tolerances = Tolerances.uniform(1e-4, "max_scaled")
    small, large = np.array([0.5, -0.25]), np.array([19.0, -3.0])
    report = compare({"a": small, "b": large},
                     {"a": small + [1.5e-4, 0], "b": large + [1.5e-3, 0]}, tolerances)
    assert [r.status for r in report.layers] == ["fail", "pass"]
    assert report.layers[0].max_scaled == pytest.approx(1.5e-4)
    assert report.layers[1].max_scaled == pytest.approx(1.5e-3 / 19)


def test_no_tolerance_is_reported_and_fails(tmp_path):
    import yaml
    data = yaml.safe_load((Path(parity.__file__).parent / "tolerances.yaml").read_text())
    data["profiles"]["fp16"]["features"] = None  # "not measured yet"
    (tmp_path / "tol.yaml").write_text(yaml.safe_dump(data))
    reference = synthetic_intermediates()
    report = compare(reference, perturbed(reference, {}),
                     load_tolerances(tmp_path / "tol.yaml", profile="fp16"))
    assert report.layer("generator/<root>:prediction").status == PASS
    layer = report.layer("generator/final")
    assert layer.status == NO_TOLERANCE and layer.would_pass_at == 1e-6
    assert report.first_divergence == "kp_source/down"


# -------------------------------------------------------------------------------- reports

def failing_report():
    reference = synthetic_intermediates()
    candidate = perturbed(reference, {"kp_source/predictor.encoder.down_blocks.0": 3e-4})
    candidate["generator/final"].flat[0] = np.nan
    del candidate["kp_source/kp"]
    candidate["extra/name"] = np.zeros(2, np.float32)
    return reference, compare(reference, candidate)


def test_report_round_trips_through_json(tmp_path):
    _, report = failing_report()
    path = report.write_json(tmp_path / "report.json")
    text = path.read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert data["summary"]["first_divergence"] == "kp_source/predictor.encoder.down_blocks.0"
    assert data["summary"]["passed"] is False
    again = ParityReport.from_json(text)
    assert again == report
    assert again.first_divergence == report.first_divergence
    assert again.layer("generator/final").max_abs == np.inf


def test_markdown_lists_every_layer_and_highlights_the_divergence(tmp_path):
    reference, report = failing_report()
    text = report.write_markdown(tmp_path / "report.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == len(reference) + 1  # plus the extra name
    for name in [*reference, "extra/name"]:
        assert f"`{name}`" in text
    assert "**FAILED**" in text
    assert "First divergence: `kp_source/predictor.encoder.down_blocks.0`" in text
    first_row = next(r for r in rows if "first divergence" in r)
    assert "down_blocks.0`" in first_row and "would pass at 0.001" in first_row
    assert "**MISSING**" in text and "**EXTRA**" in text


def test_passing_report_markdown():
    reference = synthetic_intermediates()
    text = compare(reference, reference).to_markdown()
    assert "**PASSED**" in text and "First divergence" not in text
