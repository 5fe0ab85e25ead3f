"""TPSMM's coordinate grids (converter/tpsmm/tf_model/grid.py): computed in the graph, so
that the float16 TFLite files hold the float32 grid bit for bit (their converter rounds
every float constant: a rounded grid moved the tiny config's avd frame by 9e-3 of the
fp16 profile's 1e-2), and every op of it one the GPU delegate takes."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from fomm_convert.export.tflite import convert_savedmodel
from fomm_convert.export.tflite_ops import op_report
from fomm_convert.tf_model import ops
from fomm_convert.tpsmm.tf_model.grid import grid_maps


def float16_tflite(function, folder) -> bytes:
    """The function as the tflite-fp16 format converts a model (export/tflite.py's
    convert_savedmodel, from a SavedModel of it)."""
    module = tf.Module()
    module.grids = function
    tf.saved_model.save(module, str(folder), signatures=function.get_concrete_function())
    return convert_savedmodel(folder, "fp16")


@pytest.mark.parametrize("height, width", [(64, 64), (48, 80), (384, 384)])
def test_the_float16_file_holds_the_float32_grid_bit_for_bit(height, width, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    expected = ops.coordinate_grid(height, width)
    # the grid a float16 constant would hold is off (what this module avoids)
    assert np.abs(expected.astype(np.float16).astype(np.float32) - expected).max() > 1e-5

    @tf.function(input_signature=[tf.TensorSpec([1, 10, 2], tf.float32)])
    def grids(kp):
        gx, gy = grid_maps(height, width, kp, copies=3)
        return {"x": gx, "y": gy}
    flatbuffer = float16_tflite(grids, tmp_path / "grids")
    rows = op_report(flatbuffer)
    assert "DEQUANTIZE" in {r["op"] for r in rows}  # float16 constants: the pass ran
    assert all(r["gpu"] == "yes" for r in rows), rows
    kp = np.random.default_rng(0).uniform(-1, 1, (1, 10, 2)).astype(np.float32)
    for out in (Interpreter(model_content=flatbuffer).get_signature_runner()(kp=kp),
                {k: v.numpy() for k, v in grids(kp).items()}):
        assert out["x"].shape == out["y"].shape == (1, height, width, 3)
        for copy in range(3):
            assert np.array_equal(out["x"][0, :, :, copy], expected[:, :, 0])
            assert np.array_equal(out["y"][0, :, :, copy], expected[:, :, 1])


def test_a_grid_float16_cannot_index_is_refused():
    with pytest.raises(ValueError, match="4000x8"):
        grid_maps(4000, 8, tf.zeros([1, 10, 2]))
