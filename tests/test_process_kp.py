"""In-graph keypoint normalisation: the module against the torch reference and
the oracle, and the TFLite conversion (builtins only, dynamic batch)."""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import tensorflow as tf
from conftest import FIXTURES, ORACLE, require_oracle
from oracle_policy import FLAG_COMBINATIONS, random_kp, reference_normalisation

from fomm_convert.signatures import FLAGS, signatures
from fomm_convert.spec import load_spec
from fomm_convert.tf_model.functions import process_kp_function
from fomm_convert.tf_model.process_kp import ProcessKpDriving, movement_scale



# ----------------------------------------------------------------- module vs torch reference

def run_module(module, driving, initial, source, flags):
    jac = module.estimate_jacobian
    out = module(driving["value"], driving.get("jacobian") if jac else None,
                 initial["value"], initial.get("jacobian") if jac else None,
                 source["value"], source.get("jacobian") if jac else None, *flags)
    return {k: v.numpy() for k, v in out.items()}


@pytest.mark.parametrize("initial_batch", [1, 4])
@pytest.mark.parametrize("flags", FLAG_COMBINATIONS, ids=lambda f: "rel{:g}-jac{:g}-adapt{:g}"
                         .format(*f))
def test_module_matches_torch_normalize_kp(flags, initial_batch):
    rng = np.random.default_rng([23, initial_batch, *map(int, flags)])
    driving = random_kp(rng, 4, 10)
    initial = random_kp(rng, initial_batch, 10)
    source = random_kp(rng, 1, 10)
    got = run_module(ProcessKpDriving(10, True), driving, initial, source, flags)
    want = reference_normalisation(driving, initial, source, flags)
    assert set(got) == {"value", "jacobian"}
    np.testing.assert_allclose(got["value"], want["value"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got["jacobian"], want["jacobian"], rtol=0, atol=1e-5)
    if not flags[0]:
        np.testing.assert_array_equal(got["value"], driving["value"])
    if not (flags[0] and flags[1]):
        np.testing.assert_array_equal(got["jacobian"], driving["jacobian"])


@pytest.mark.parametrize("flags", FLAG_COMBINATIONS)
def test_module_without_jacobians(flags):
    rng = np.random.default_rng(29)
    driving, initial, source = (random_kp(rng, b, 5, jacobian=False) for b in (3, 1, 1))
    got = run_module(ProcessKpDriving(5, False), driving, initial, source, flags)
    want = reference_normalisation(driving, initial, source, flags)
    assert set(got) == {"value"}
    np.testing.assert_allclose(got["value"], want["value"], rtol=0, atol=1e-6)


def test_module_with_degenerate_hulls_is_finite_and_uses_scale_one():
    line = np.asarray([[[0, 0], [0.25, 0.25], [0.5, 0.5]]], np.float32)
    same = np.zeros((1, 3, 2), np.float32)
    driving = np.asarray([[[0.1, 0.2], [0.3, 0.1], [-0.2, 0.4]]] * 2, np.float32)
    module = ProcessKpDriving(3, False)
    for source, initial in ((line, same), (same, line), (same, same)):
        adapted = module(driving, None, initial, None, source, None, 1.0, 0.0, 1.0)["value"]
        plain = module(driving, None, initial, None, source, None, 1.0, 0.0, 0.0)["value"]
        assert np.isfinite(adapted.numpy()).all()
        np.testing.assert_array_equal(adapted.numpy(), plain.numpy())


def test_module_rejects_mismatched_jacobian_arguments():
    kp = np.zeros((1, 3, 2), np.float32)
    jac = np.tile(np.eye(2, dtype=np.float32), (1, 3, 1, 1))
    with pytest.raises(ValueError, match="jacobians"):
        ProcessKpDriving(3, True)(kp, None, kp, None, kp, None, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="no jacobians"):
        ProcessKpDriving(3, False)(kp, jac, kp, jac, kp, jac, 1.0, 1.0, 1.0)


# ------------------------------------------------------------------------------ the oracle

def oracle_case(name):
    path = FIXTURES / f"{name}.npz"
    if not path.exists():
        require_oracle(f"{name}.npz")
        path = ORACLE / f"{name}.npz"
    return np.load(path)


@pytest.mark.parametrize("case", ["tiny", "tiny-single-jac", "vox-256"])
def test_module_reproduces_the_oracle_normalisation(case):
    data = oracle_case(case)
    num_kp = data["kp_source_value"].shape[1]
    source = {"value": data["kp_source_value"], "jacobian": data["kp_source_jacobian"]}
    driving = {"value": data["kp_driving_value"], "jacobian": data["kp_driving_jacobian"]}
    initial = {k: v[:1] for k, v in driving.items()}
    scale = movement_scale(tf.constant(source["value"]), tf.constant(initial["value"]))
    assert abs(scale.numpy()[0] / data["adapt_movement_scale"] - 1) <= 1e-6
    module = ProcessKpDriving(num_kp, True)
    for rel, adapt in itertools.product((1, 0), (1, 0)):
        # The oracle ties use_relative_jacobian to use_relative_movement, like demo.py.
        got = run_module(module, driving, initial, source, (rel, rel, adapt))
        prefix = f"norm_rel{rel}_adapt{adapt}"
        np.testing.assert_allclose(got["value"], data[f"{prefix}_value"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(got["jacobian"], data[f"{prefix}_jacobian"], rtol=0,
                                   atol=1e-4)


# ---------------------------------------------------------------------------------- TFLite

def serving_signature(num_kp: int, jacobian: bool):
    """The contract's process_kp_driving signature, for any number of keypoints."""
    spec = load_spec("vox")
    common = {**spec.common, "num_kp": num_kp, "estimate_jacobian": jacobian}
    spec = dataclasses.replace(spec, params={**spec.params, "common_params": common},
                               num_kp=num_kp)
    return signatures(spec)["process_kp_driving"]["serving_default"]


def to_tflite(module) -> bytes:
    function = process_kp_function(
        module, serving_signature(module.num_kp, module.estimate_jacobian))
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


@pytest.fixture(scope="module", params=[True, False], ids=["jacobian", "no-jacobian"])
def tflite_case(request):
    module = ProcessKpDriving(10, request.param)
    return module, to_tflite(module)


def test_tflite_uses_builtin_ops_only(tflite_case):
    from ai_edge_litert.interpreter import Interpreter
    module, flatbuffer = tflite_case
    interpreter = Interpreter(model_content=flatbuffer)
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
    signature = interpreter.get_signature_list()["serving_default"]
    assert sorted(signature["inputs"]) == sorted(module.input_names())
    assert sorted(signature["outputs"]) == (["jacobian", "value"] if module.estimate_jacobian
                                            else ["value"])


@pytest.mark.parametrize("batch", [1, 4])
def test_tflite_matches_tf(tflite_case, batch):
    from ai_edge_litert.interpreter import Interpreter
    module, flatbuffer = tflite_case
    runner = Interpreter(model_content=flatbuffer).get_signature_runner("serving_default")
    rng = np.random.default_rng([31, batch])
    jac = module.estimate_jacobian
    driving, initial, source = (random_kp(rng, b, 10, jac) for b in (batch, 1, 1))
    for flags in FLAG_COMBINATIONS:
        inputs = {"kp_driving": driving["value"], "kp_driving_initial": initial["value"],
                  "kp_source": source["value"]}
        if jac:
            inputs.update(kp_driving_jacobian=driving["jacobian"],
                          kp_driving_initial_jacobian=initial["jacobian"],
                          kp_source_jacobian=source["jacobian"])
        inputs.update({name: np.float32(f) for name, f in zip(FLAGS, flags)})
        got = runner(**inputs)
        want = run_module(module, driving, initial, source, flags)
        assert set(got) == set(want)
        for name in want:
            assert got[name].shape == want[name].shape
            np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-6)
