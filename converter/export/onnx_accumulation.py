"""Short accumulations in the keypoint detector's ONNX convolutions.

OpenVINO's CPU plugin (brgconv) sums each output of a Conv over all its cin*kh*kw terms in
one float32 chain, so its rounding error grows with the square root of that length: on
vox-256 it is 4-5x onnxruntime's for the 1024-channel layers, and the temperature-0.1
softmax turns that into keypoints 2e-5 off the original's. Each Conv with more than
CHANNELS input channels is therefore written as a running sum of Convs over consecutive
CHANNELS-channel slices of its input (the bias in the first): the same function, each
slice a chain of at most CHANNELS*kh*kw terms, then cin/CHANNELS additions. onnxruntime's
error does not grow with the length, and stays at its level (per-layer and vox-256
numbers in tests/test_openvino.py).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

CHANNELS = 16


def split_convs(model: onnx.ModelProto, channels: int = CHANNELS) -> onnx.ModelProto:
    """Rewrite in place every ungrouped Conv whose weight is an initializer with more than
    `channels` input channels; returns the model."""
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    nodes, added = [], []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = weights.get(node.input[1]) if node.op_type == "Conv" else None
        if weight is None or attrs.get("group", 1) != 1 or weight.dims[1] <= channels:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weight)
        bias = list(node.input[2:3])
        total = None
        starts = range(0, w.shape[1], channels)
        for i, start in enumerate(starts):
            stop = min(start + channels, w.shape[1])
            name = f"{node.name}/in{start}-{stop}"
            for suffix, value in (("starts", start), ("ends", stop), ("axes", 1)):
                added.append(numpy_helper.from_array(np.array([value], np.int64),
                                                     f"{name}/{suffix}"))
            added.append(numpy_helper.from_array(np.ascontiguousarray(w[:, start:stop]),
                                                 f"{name}/weight"))
            nodes.append(helper.make_node(
                "Slice", [node.input[0], f"{name}/starts", f"{name}/ends", f"{name}/axes"],
                [f"{name}/x"], name=f"{name}/Slice"))
            part = f"{name}/y"
            nodes.append(helper.make_node("Conv", [f"{name}/x", f"{name}/weight",
                                                   *(bias if i == 0 else [])],
                                          [part], name=f"{name}/Conv", **attrs))
            if total is not None:
                out = node.output[0] if i == len(starts) - 1 else f"{name}/sum"
                nodes.append(helper.make_node("Add", [total, part], [out],
                                              name=f"{name}/Add"))
                part = out
            total = part
    used = {name for node in nodes for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    return model
