"""Portable graphs: exact where int64 is emulated as int32, and static files for runtimes
that cannot resize (issue 9). The numbers are checked in the third-party runtimes by
test_openvino.py and test_browser.py; here, what makes them portable."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from fomm_convert import exact
from fomm_convert.export.tflite_file import read_tflite_metadata
from fomm_convert.families import FAMILIES
from fomm_convert.formats import FORMATS, onnx_files, tflite_filename
from fomm_convert.signatures import MODELS

TFLITE_INT64 = 4  # TensorType.INT64 (schema.fbs)


def _numpy_div(x, divisor):
    return np.floor_divide(x, divisor)


def test_exact_sign_of_large_products_against_python_integers():
    """sign(a*b + c*d) in int32 limbs equals the sign of the exact (Python) integer, over
    operands up to the bound, with many exact ties and near-ties."""
    rng = random.Random(9)
    bound = exact.SPLIT_BIAS
    pool = [bound, -bound, 0, 1, -1, bound - 1, 1 - bound, 2 ** 22, -2 ** 22, 2047, -2048]
    pool += [rng.randint(-bound, bound) for _ in range(2000)]
    a, b, c, d = (np.array([rng.choice(pool) for _ in range(100_000)], np.int32)
                  for _ in range(4))
    c[:30_000], d[:30_000] = -a[:30_000], b[:30_000]  # a*b + c*d == 0
    c[:10_000] += 1  # ... and one off it
    limbs = [exact.limbs(v, _numpy_div) for v in (a, b, c, d)]
    for columns in exact.columns(*limbs):
        assert np.abs(columns).max() < 2 ** 25  # int32, and far from its limit
    top, lower = exact.sign_parts(*limbs, _numpy_div)
    truth = [int(p) * int(q) + int(r) * int(s) for p, q, r, s in zip(a, b, c, d)]
    positive = (top > 0) | ((top == 0) & (lower > 0))
    zero = (top == 0) & (lower == 0)
    assert (positive == np.array([t > 0 for t in truth])).all()
    assert (zero == np.array([t == 0 for t in truth])).all()
    assert zero.sum() >= 20_000
    carried = exact.carried(exact.columns(*limbs), _numpy_div)
    assert all(((limb >= 0) & (limb < exact.BASE)).all() for limb in carried[:-1])
    assert [sum(int(limb[n]) * exact.BASE ** k for k, limb in enumerate(carried))
            for n in range(0, 100_000, 997)] == truth[::997]


def _tflite_tensor_types(path) -> set:
    from ai_edge_litert import schema_py_generated as schema
    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    return {model.Subgraphs(s).Tensors(t).Type() for s in range(model.SubgraphsLength())
            for t in range(model.Subgraphs(s).TensorsLength())}


def test_no_int64_tensor_in_any_tflite_file(tiny_bundle):
    files = sorted((tiny_bundle / "tflite").glob("*.tflite"))
    assert len(files) == 3 * sum(f.kind == "tflite" for f in FORMATS.values())
    with_int64 = [f.name for f in files if TFLITE_INT64 in _tflite_tensor_types(f)]
    assert not with_int64


def input_dependent_int64(path) -> list[str]:
    """The int64 tensors of an ONNX graph whose values depend on its inputs' values (a
    Shape or Size output depends on shapes only: the int64 shape operands are fine)."""
    import onnx
    from onnx import TensorProto, shape_inference
    graph = shape_inference.infer_shapes(onnx.load(str(path), load_external_data=False)).graph
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*graph.value_info, *graph.input, *graph.output)}
    depends, found = {i.name for i in graph.input}, []
    for node in graph.node:  # topologically sorted (ONNX requires it)
        if node.op_type in ("Shape", "Size") or not any(i in depends for i in node.input):
            continue
        for out in node.output:
            depends.add(out)
            if types.get(out) == TensorProto.INT64:
                found.append(f"{node.op_type} {out}")
    return found


def test_no_input_dependent_int64_in_any_onnx_file(tiny_bundle):
    for name in onnx_files(FAMILIES["fomm"]).values():
        assert input_dependent_int64(tiny_bundle / "onnx" / name) == [], name


def test_the_check_sees_int64_arithmetic(tmp_path):
    """The check above can fail: an int64 product of an input is found."""
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["wide"], to=TensorProto.INT64),
         helper.make_node("Mul", ["wide", "wide"], ["square"]),
         helper.make_node("Shape", ["x"], ["shape"]),
         helper.make_node("Cast", ["square"], ["y"], to=TensorProto.FLOAT)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"]),
         helper.make_tensor_value_info("shape", TensorProto.INT64, [1])])
    onnx.save(helper.make_model(graph), tmp_path / "wide.onnx")
    assert input_dependent_int64(tmp_path / "wide.onnx") == ["Cast wide", "Mul square"]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_static_files_have_batch_1_and_the_dynamic_files_names(tiny_bundle, precision):
    from fomm_convert.export.tflite_file import tflite_signatures
    for model in MODELS:
        static = tiny_bundle / "tflite" / tflite_filename(model, precision, static=True)
        dynamic = tiny_bundle / "tflite" / tflite_filename(model, precision)
        found, reference = (tflite_signatures(p.read_bytes()) for p in (static, dynamic))
        assert set(found) == set(reference)
        for name, sig in found.items():
            for side in ("inputs", "outputs"):
                shapes, expected = dict(sig[side]), dict(reference[name][side])
                assert set(shapes) == set(expected), (model, name, side)
                for tensor, shape in shapes.items():
                    want = expected[tensor]
                    # Flags are scalars; every other tensor has its batch first.
                    assert shape == (want if not want else (1, *want[1:])), (model, tensor)
        meta = read_tflite_metadata(static)
        assert meta["batch"].startswith("static") and meta["model"] == model
        image = meta["signatures"]["serving_default"]["inputs"][0]
        assert image["shape"][0] == 1
        assert meta["variant"] == precision


def test_static_backend_splits_batches_and_keeps_source_batch_1(tiny_bundle):
    """The static files behind a batch of 3 (source batch 1) give the dynamic files'
    numbers; a process_kp_driving source of batch 3 is refused (its scale is one number)."""
    from fomm_convert.bundle.open import open_bundle
    bundle = open_bundle(tiny_bundle)
    static, dynamic = bundle.backend("tflite-static"), bundle.backend("tflite")
    rng = np.random.default_rng(2)
    h, w, c = bundle.spec.frame_shape
    source = rng.uniform(0, 1, (1, h, w, c)).astype(np.float32)
    driving = rng.uniform(0, 1, (3, h, w, c)).astype(np.float32)
    kp_s, kp_d = dynamic.kp_detector(source), dynamic.kp_detector(driving)
    for key, value in static.kp_detector(driving).items():
        assert np.abs(value - kp_d[key]).max() <= 1e-6
    got, want = static.generator(source, kp_d, kp_s), dynamic.generator(source, kp_d, kp_s)
    assert got["prediction"].shape == (3, h, w, c)
    for key in want:
        assert np.abs(got[key] - want[key]).max() <= 1e-6, key
    initial = {k: v[:1] for k, v in kp_d.items()}
    norm = static.process_kp_driving(kp_d, initial, kp_s, True, True, True)
    for key, value in dynamic.process_kp_driving(kp_d, initial, kp_s, True, True, True).items():
        assert np.abs(norm[key] - value).max() <= 1e-6
    with pytest.raises(ValueError, match="kp_source takes batch 1"):
        static.process_kp_driving(kp_d, initial, kp_d, True, True, True)


def test_manifest_and_ops_page_list_the_static_files(tiny_bundle):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert {"tflite-static", "tflite-static-fp16"} <= set(manifest["formats"])
    assert manifest["parity"]["tflite-static"]["passed"]
    ops = json.loads((tiny_bundle / "tflite" / "ops.json").read_text())
    assert {tflite_filename(m, "fp32", static) for m in MODELS
            for static in (False, True)} == set(ops)
