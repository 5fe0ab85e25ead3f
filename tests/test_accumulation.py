"""Chunked accumulation (the TFLite keypoint detector): the same function and variables as
the reference-structured model, with the long convolutions summed in chunks."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from fomm_convert.signatures import signatures
from fomm_convert.tf_model.accumulation import ChunkedConv2d, chunked_accumulation, pairwise_sum
from fomm_convert.tf_model.blocks import Conv2d, named_modules, named_variables
from fomm_convert.tf_model.functions import kp_detector_function

from conftest import fast_first
from test_fast import OP_TOL, VALUE_TOL, _models, conv_case, torch_conv
from test_tf_model import smooth_images


@pytest.mark.parametrize("cin, k, padding", [(35, 7, 3), (35, 7, 0), (16, 3, 1), (20, 3, 2),
                                             (5, 1, 0)])
def test_chunked_conv_matches_torch(cin, k, padding):
    x, kernel, bias = conv_case(np.random.default_rng(cin + k + padding), cin, 6, k, 11, 9)
    conv = Conv2d(cin, 6, k, padding)
    conv.kernel.assign(kernel)
    conv.bias.assign(bias)
    chunked = ChunkedConv2d(conv, 4)
    expected = torch_conv(x, kernel, bias, padding)
    assert np.abs(chunked(x).numpy() - expected).max() <= OP_TOL
    assert chunked.kernel is conv.kernel and chunked.bias is conv.bias


def test_pairwise_sum_adds_every_part_once():
    parts = [tf.constant([float(2 ** i)]) for i in range(7)]
    assert float(pairwise_sum(parts)[0]) == 127.0
    assert float(pairwise_sum(parts[:1])[0]) == 1.0


@pytest.mark.parametrize("config", fast_first("tiny", "tiny-single-jac", "tiny-pad"))
def test_chunked_detector_equals_reference_structured(config):
    spec, (kp_detector, _) = _models(config)
    chunked = chunked_accumulation(kp_detector, 2)
    # Every conv over more than 2 channels is chunked; the original keeps its own.
    convs = {p: m for p, m in named_modules(chunked) if isinstance(m, Conv2d)}
    assert convs and all(isinstance(m, ChunkedConv2d) == (int(m.kernel.shape[2]) > 2)
                         for m in convs.values())
    assert any(isinstance(m, ChunkedConv2d) for m in convs.values())
    assert not any(isinstance(m, ChunkedConv2d) for _, m in named_modules(kp_detector))
    # The same variables under the same paths, shared rather than copied.
    ours, reference = named_variables(chunked), named_variables(kp_detector)
    assert [p for p, _ in ours] == [p for p, _ in reference]
    assert all(a is b for (_, a), (_, b) in zip(ours, reference))
    images = smooth_images(2, spec.frame_shape, seed=3)
    signature = signatures(spec)["kp_detector"]["serving_default"]
    got = kp_detector_function(chunked, signature)(images)
    expected = kp_detector_function(kp_detector, signature)(images)
    assert set(got) == set(expected)
    for key in expected:
        tol = VALUE_TOL if key == "value" else 1e-4
        assert np.abs(got[key].numpy() - expected[key].numpy()).max() <= tol, key
