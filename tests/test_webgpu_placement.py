"""The WebGPU placements recorded for the shipped TPSMM specs (export/webgpu_placement.json,
measured by scripts/measure_webgpu.py on each spec's static files): every op of the
kp_detector and of the generator's three graphs on the GPU (issue 22 item 2), and a
bundle's tflite/ops.md reporting the record of a graph with that digest as measured.
Whether a spec's files still have these digests is the script's to measure (it builds
them); test_browser*.py check the tiny configs' records against a live run."""
from __future__ import annotations

import pytest

from fomm_convert.export.tflite_ops import measured_placements, op_report_markdown
from fomm_convert.spec import available_specs, load_spec

GRAPHS = {("kp_detector.static.tflite", "serving_default"),
          *(("generator.static.tflite", s) for s in ("encode_source", "generate",
                                                     "serving_default"))}
TPSMM_SPECS = [name for name in available_specs() if load_spec(name).family == "tpsmm"]


@pytest.mark.parametrize("name", TPSMM_SPECS)
def test_every_op_of_a_tpsmm_spec_runs_on_the_gpu(name):
    records = {digest: r for digest, r in measured_placements()["graphs"].items()
               if name in r["configs"]}
    assert {(r["file"], r["signature"]) for r in records.values()} == GRAPHS, name
    for digest, record in records.items():
        assert (record["gpu_ops"], record["cpu"]) == (record["ops"], []), record
        rows = [{"subgraph": 0, "signature": record["signature"], "op": "CONV_2D",
                 "count": record["ops"], "gpu": "yes", "gpu_count": record["ops"],
                 "notes": [], "graph_digest": digest}]
        page = op_report_markdown({record["file"]: rows})
        assert (f"measured: {record['ops']} of {record['ops']} ops on the GPU; on the CPU: "
                "none.") in page
