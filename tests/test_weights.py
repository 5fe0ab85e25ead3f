"""The declarative weight table: total both ways on every known config, and every kind of
misfit reported at once."""
from __future__ import annotations

import json
import re
from collections import OrderedDict

import numpy as np
import pytest

from fomm_convert.spec import load_spec
from fomm_convert.tf_model import build_models, named_variables
from fomm_convert.tf_model.weights import (TRANSFORMS, Rule, WeightTableError, apply_weights,
                               build_tf_models, load_table)

from conftest import EXTRA_CONFIGS, FIXTURES, SPEC_TABLES, config_path

# Every fact table the oracle holds, with the config that must consume it.
TABLE_CONFIGS = {**{table: spec for spec, table in SPEC_TABLES.items()},
                 **{name: name for name in EXTRA_CONFIGS}}
NETS = ("kp_detector", "generator")


def fact_table(name: str) -> dict:
    return json.loads((FIXTURES / "statedicts" / f"{name}.json").read_text())


def zero_state(table: dict, net: str) -> OrderedDict:
    return OrderedDict((key, np.zeros(shape, dtype=dtype)) for key, shape, dtype in table[net])


@pytest.fixture(scope="module")
def tiny_models():
    return build_models(load_spec(config_path("tiny")))


def test_every_fact_table_is_listed():
    on_disk = {p.stem for p in (FIXTURES / "statedicts").glob("*.json")} - {"INDEX"}
    assert on_disk == set(TABLE_CONFIGS)


@pytest.mark.parametrize("table_name", sorted(TABLE_CONFIGS))
def test_table_consumes_fact_table(table_name):
    table = fact_table(table_name)
    spec = load_spec(config_path(TABLE_CONFIGS[table_name]))
    assert list(spec.frame_shape) == table["frame_shape"]
    models = dict(zip(NETS, build_models(spec)))
    for net in NETS:
        report = apply_weights(models[net], zero_state(table, net), net)  # raises on any misfit
        keys = [key for key, _, _ in table[net]]
        assert [e.torch_key for e in report.entries] == keys
        assert {e.tf_path for e in report.assigned} == {p for p, _ in named_variables(models[net])}
        dropped = [e.torch_key for e in report.dropped]
        assert dropped == [k for k in keys if k.endswith(".num_batches_tracked")]
        assert all(e.dropped == "BatchNorm step counter, unused at inference"
                   for e in report.dropped)


def test_tf_paths_read_like_torch_keys(tiny_models):
    _, generator = tiny_models
    report = apply_weights(generator, zero_state(fact_table("tiny"), "generator"), "generator")
    by_key = {e.torch_key: e for e in report.entries}
    conv = by_key["dense_motion_network.hourglass.encoder.down_blocks.0.conv.weight"]
    assert conv.tf_path == "dense_motion_network.hourglass.encoder.down_blocks.0.conv.kernel"
    assert (conv.rule, conv.transform) == ("conv_kernel", "conv_oihw_to_hwio")
    assert conv.torch_shape == (16, 24, 3, 3) and conv.tf_shape == (3, 3, 24, 16)
    bn = {by_key[f"bottleneck.r1.norm2.{k}"].tf_path for k in
          ("weight", "bias", "running_mean", "running_var")}
    assert bn == {f"bottleneck.r1.norm2.{k}" for k in
                  ("gamma", "beta", "moving_mean", "moving_variance")}
    down = by_key["dense_motion_network.down.weight"]
    assert (down.tf_path, down.transform) == ("dense_motion_network.down.kernel",
                                              "depthwise_c1kk_to_kkc1")
    assert down.tf_shape == (5, 5, 3, 1)
    assert report.to_dict()["entries"][0]["torch_key"] == report.entries[0].torch_key


def test_values_are_transposed_not_reshaped(tiny_models):
    kp_detector, _ = tiny_models
    state = zero_state(fact_table("tiny"), "kp_detector")
    rng = np.random.default_rng(0)
    state = OrderedDict((k, rng.standard_normal(v.shape).astype(v.dtype)) for k, v in
                        state.items())
    apply_weights(kp_detector, state, "kp_detector")
    variables = dict(named_variables(kp_detector))
    np.testing.assert_array_equal(variables["kp.kernel"].numpy(),
                                  state["kp.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(variables["down.kernel"].numpy(),
                                  state["down.weight"].transpose(2, 3, 0, 1))
    np.testing.assert_array_equal(variables["predictor.decoder.up_blocks.1.norm.moving_variance"]
                                  .numpy(), state["predictor.decoder.up_blocks.1.norm.running_var"])


# ---------------------------------------------------------------- misfits
RENAMED = ("predictor.encoder.down_blocks.1.conv.weight",
           "predictor.encoder.down_blocks.1.convolution.weight")
MISSING = "predictor.decoder.up_blocks.0.norm.running_mean"
EXTRA = "predictor.extra.weight"
RESHAPED = "kp.bias"


def _misfit(state, *kinds):
    state = OrderedDict(state)
    if "renamed" in kinds:
        state = OrderedDict((RENAMED[1] if k == RENAMED[0] else k, v) for k, v in state.items())
    if "missing" in kinds:
        del state[MISSING]
    if "extra" in kinds:
        state[EXTRA] = np.zeros([4, 4, 3, 3], np.float32)
    if "reshaped" in kinds:
        state[RESHAPED] = np.zeros([7], np.float32)
    return state


def _error(module, state) -> WeightTableError:
    with pytest.raises(WeightTableError) as info:
        apply_weights(module, state, "kp_detector")
    return info.value


def test_renamed_tensor(tiny_models):
    kp_detector, _ = tiny_models
    error = _error(kp_detector, _misfit(zero_state(fact_table("tiny"), "kp_detector"),
                                        "renamed"))
    (problems,) = error.problems
    assert problems.missing_targets == [(RENAMED[1], "conv_kernel",
                                         "predictor.encoder.down_blocks.1.convolution.kernel")]
    assert problems.unset == ["predictor.encoder.down_blocks.1.conv.kernel"]
    assert RENAMED[1] in str(error) and "down_blocks.1.conv.kernel is not set" in str(error)


def test_missing_tensor(tiny_models):
    kp_detector, _ = tiny_models
    error = _error(kp_detector, _misfit(zero_state(fact_table("tiny"), "kp_detector"),
                                        "missing"))
    (problems,) = error.problems
    assert problems.unset == ["predictor.decoder.up_blocks.0.norm.moving_mean"]
    assert not (problems.unmatched or problems.missing_targets or problems.mismatched)


def test_extra_tensor(tiny_models):
    kp_detector, _ = tiny_models
    error = _error(kp_detector, _misfit(zero_state(fact_table("tiny"), "kp_detector"), "extra"))
    (problems,) = error.problems
    assert problems.missing_targets == [(EXTRA, "conv_kernel", "predictor.extra.kernel")]
    assert not problems.unset
    assert f"unused checkpoint tensor {EXTRA}" in str(error)


def test_unmatched_tensor(tiny_models):
    kp_detector, _ = tiny_models
    state = zero_state(fact_table("tiny"), "kp_detector")
    state["predictor.scale"] = np.zeros([1], np.float32)
    (problems,) = _error(kp_detector, state).problems
    assert problems.unmatched == ["predictor.scale"]


def test_wrongly_shaped_tensor(tiny_models):
    kp_detector, _ = tiny_models
    error = _error(kp_detector, _misfit(zero_state(fact_table("tiny"), "kp_detector"),
                                        "reshaped"))
    (problems,) = error.problems
    assert [(m[0], m[1], m[2], m[4]) for m in problems.mismatched] == [
        (RESHAPED, (7,), "kp.bias", (5,))]
    assert "kp.bias [7]" in str(error) and "[5]" in str(error)


def test_all_misfits_in_one_error_and_nothing_assigned(tiny_models):
    kp_detector, _ = tiny_models
    before = {p: v.numpy().copy() for p, v in named_variables(kp_detector)}
    rng = np.random.default_rng(1)
    state = OrderedDict((k, rng.standard_normal(v.shape).astype(v.dtype)) for k, v in
                        zero_state(fact_table("tiny"), "kp_detector").items())
    error = _error(kp_detector, _misfit(state, "renamed", "missing", "extra", "reshaped"))
    (problems,) = error.problems
    assert len(problems.missing_targets) == 2  # the renamed and the extra tensor
    assert len(problems.unset) == 2  # the renamed one's target and the missing one
    assert len(problems.mismatched) == 1
    message = str(error)
    for fragment in (RENAMED[1], EXTRA, "up_blocks.0.norm.moving_mean", "kp.bias [7]"):
        assert fragment in message
    assert all(np.array_equal(before[p], v.numpy()) for p, v in named_variables(kp_detector))


def test_duplicate_assignment_is_reported(tiny_models):
    kp_detector, _ = tiny_models
    state = zero_state(fact_table("tiny"), "kp_detector")
    # A table whose rules send two checkpoint tensors to the same TF variable.
    rules = load_table()
    rules.insert(0, Rule("alias", re.compile(r"kp\.extra"), target="kp.bias",
                         transform="identity"))
    state["kp.extra"] = np.zeros([5], np.float32)
    with pytest.raises(WeightTableError) as info:
        apply_weights(kp_detector, state, "kp_detector", rules)
    assert info.value.problems[0].duplicates == [("kp.bias", ["kp.bias", "kp.extra"])]
    assert "assigned more than once" in str(info.value)


def test_256_checkpoint_does_not_load_into_512_config():
    """The anti-aliasing kernel's shape ties a checkpoint to its scale factor."""
    spec = load_spec(config_path("vox-512"))
    table = fact_table("vox-256")
    with pytest.raises(WeightTableError) as info:
        build_tf_models(spec, {net: zero_state(table, net) for net in NETS})
    by_net = {p.net: p for p in info.value.problems}
    assert set(by_net) == set(NETS)  # both networks reported in one error
    assert [m[0] for m in by_net["kp_detector"].mismatched] == ["down.weight"]
    assert [m[0] for m in by_net["generator"].mismatched] == ["dense_motion_network.down.weight"]


def test_table_rules_are_valid():
    rules = load_table()
    assert [r.name for r in rules][0] == "bn_step_counter"
    assert all(r.drop or r.transform in TRANSFORMS for r in rules)
    with pytest.raises(Exception, match="depthwise"):
        TRANSFORMS["depthwise_c1kk_to_kkc1"](np.zeros([3, 2, 5, 5], np.float32))
