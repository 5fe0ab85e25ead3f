"""TPSMM's ONNX export: one file per signature of tpsmm/signatures.py, traced from the
torch reference (tpsmm/onnx_wrappers.py) and written as FOMM's are (export/onnx.py:
opset 17, NHWC float32 at the edges, batch axes dynamic, metadata in metadata_props, the
generator's three files sharing generator.weights):

- kp_detector.onnx: image (B,H,W,3) -> value (B,5K,2)
- process_kp_driving.onnx: kp_driving (B,5K,2), kp_driving_initial, kp_source (batch 1
  or B), use_relative_movement (scalar 0/1) -> value
- avd_network.onnx: kp_source (batch 1 or B), kp_driving (B,5K,2) -> value
- generator.onnx: source_image, kp_driving, kp_source -> prediction, deformation,
  contribution_maps, occlusion_map_0..3, deformed, tps_theta, tps_control_params
- generator.encode_source.onnx: source_image -> source_down, source_features_0..3
- generator.generate.onnx: source_image, source_down, source_features_0..3, kp_driving,
  kp_source -> prediction

The TPS systems are solved in the graph by elimination with partial pivoting
(tpsmm/tps_solve.py): elementwise ops, comparisons, ReduceMax/ReduceSum, MatMul with
constant 0/1 masks and Where; no inverse, no solve, no gather. grid_sample is GridSample
(bilinear, zeros, align_corners=True).
"""
from __future__ import annotations

from pathlib import Path

from ..export.onnx import write_onnx
from .onnx_wrappers import onnx_signatures
from .torch_model import build_models, load_networks


def export_onnx(spec, checkpoint, metadata: dict[str, dict], out_dir: Path
                ) -> dict[str, Path]:
    """Write the six ONNX files of a TPSMM spec and checkpoint (a Checkpoint read with
    family "tpsmm", or a path to one) into out_dir. metadata maps a model name
    (kp_detector, process_kp_driving, avd_network, generator) or a file stem
    (generator.encode_source, ...) to a JSON-able dict, a stem's entry winning over its
    model's. Returns {file stem: path}."""
    from ..checkpoint import Checkpoint, load_checkpoint
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(checkpoint, family=spec.family)
    nets = load_networks(build_models(spec.model_params(), tps_solve="elimination"),
                         checkpoint.networks, str(checkpoint.path))
    return write_onnx(onnx_signatures(spec, nets), out_dir, metadata)
