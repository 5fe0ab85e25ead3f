"""TPSMM's ONNX export: one file per signature of tpsmm/signatures.py, traced from torch
wrappers around the reference networks (tpsmm/torch_model) with those signatures' I/O, and
written as FOMM's are (export/onnx.py: opset 17, NHWC float32 at the edges, batch axes
dynamic, source-side inputs of batch 1 or the driving batch, metadata in metadata_props,
the generator's three files sharing generator.weights):

- kp_detector.onnx: image (B,H,W,3) -> value (B,5K,2)
- process_kp_driving.onnx: kp_driving (B,5K,2), kp_driving_initial, kp_source (batch 1
  or B), use_relative_movement (scalar 0/1) -> value
- avd_network.onnx: kp_source (batch 1 or B), kp_driving (B,5K,2) -> value
- generator.onnx: source_image, kp_driving, kp_source -> prediction, deformation,
  contribution_maps, occlusion_map_0..3, deformed, tps_theta, tps_control_params
- generator.encode_source.onnx: source_image -> source_down, source_features_0..3
- generator.generate.onnx: source_image, source_down, source_features_0..3, kp_driving,
  kp_source -> prediction

What differs from the reference as a backend (tpsmm/runtime/torch_backend.py):
- the TPS systems are solved by unrolled elimination with partial pivoting
  (tpsmm/tps_solve.py): elementwise ops, comparisons, ReduceMax/ReduceSum, MatMul with
  constant 0/1 masks and Where; no inverse or solve op (TFLite and the GPU delegates have
  none), no gather by computed indices;
- the TPS is fitted and evaluated in double-float (tpsmm/torch_model/tps.py's "double-float"
  solve: L in double-float, one step of iterative refinement, the warp rounded once), as
  the TF graph's: on ill-conditioned systems float32's warp put the frames beyond the
  parity gate;
- the relative mode's scale is computed in the graph from FOMM's int32-exact hull areas
  (torch_model/process_kp.py: no input-dependent int64, so OpenVINO's int32 emulation of
  int64 stays exact), where the reference uses float64 areas on the host;
- the keypoint detector's head (pool, fc, 2 sigmoid - 1) is double-float
  (tpsmm/keypoint_head.py), as the TF graph's: the warps amplify keypoint rounding.
grid_sample is GridSample (bilinear, zeros, align_corners=True).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..export.onnx import write_onnx
from ..export.onnx_signatures import (OnnxSignature, SignatureModule, example_inputs, nchw,
                                      nhwc, to_batch)
from ..torch_model.process_kp import movement_scale
from .signatures import FEATURES, OCCLUSION, signatures
from .torch_model import build_models, load_networks
from .torch_model.keypoint_detector import exported_head


class KPDetectorSignature(SignatureModule):
    def __init__(self, nets, contract):
        super().__init__(contract)
        self.kp_detector = nets["kp_detector"]

    def forward(self, image):
        features = self.kp_detector.fg_encoder.features(nchw(image))
        return (exported_head(self.kp_detector, features),)


class ProcessKpSignature(SignatureModule):
    """relative (flag > 0.5): (kp_driving - kp_driving_initial) * scale + kp_source, the
    scale sqrt(hull area of kp_source[0] / hull area of kp_driving_initial[0]) over all 5K
    points (1 when a hull is degenerate); standard: kp_driving."""

    def forward(self, kp_driving, kp_driving_initial, kp_source, use_relative_movement):
        scale = movement_scale(kp_source, kp_driving_initial)
        moved = (kp_driving - kp_driving_initial) * scale + kp_source
        return (torch.where(use_relative_movement > 0.5, moved, kp_driving),)


class AVDSignature(SignatureModule):
    def __init__(self, nets, contract):
        super().__init__(contract)
        self.avd_network = nets["avd_network"]

    def forward(self, kp_source, kp_driving):
        return (self.avd_network(to_batch(kp_source, kp_driving.shape[0]), kp_driving),)


class _GeneratorModule(SignatureModule):
    def __init__(self, nets, contract):
        super().__init__(contract)
        self.dense_motion_network = nets["dense_motion_network"]
        self.inpainting_network = nets["inpainting_network"]


class GeneratorSignature(_GeneratorModule):
    """serving_default: the frame and the oracle's diagnostics (the reference's forward
    in its two halves, encode and motion). The source is encoded at its own batch and
    broadcast afterwards, as in FOMM's graphs: OpenVINO mis-sizes the networks' own
    broadcasts of a batch-1 source (tps.fit's Concat, a batch of 0 from decode)."""

    def forward(self, source_image, kp_driving, kp_source):
        batch = kp_driving.shape[0]
        source = nchw(source_image)
        down = to_batch(self.dense_motion_network.downsample(source), batch)
        motion = self.dense_motion_network.motion(down, kp_driving, to_batch(kp_source, batch))
        maps = [to_batch(m, batch) for m in self.inpainting_network.encode(source)]
        out = self.inpainting_network.decode(maps, to_batch(source, batch), motion)
        named = {"prediction": nhwc(out["prediction"]), "deformed": nhwc(out["deformed"]),
                 "deformation": motion["deformation"],
                 "contribution_maps": nhwc(motion["contribution_maps"]),
                 **{name: nhwc(m) for name, m in zip(OCCLUSION, motion["occlusion_map"])},
                 "tps_theta": motion["tps_theta"],
                 "tps_control_params": motion["tps_control_params"]}
        return tuple(named[name] for name in self.outputs)


class EncodeSourceSignature(_GeneratorModule):
    def forward(self, source_image):
        source = nchw(source_image)
        maps = self.inpainting_network.encode(source)  # finest first
        named = {"source_down": nhwc(self.dense_motion_network.downsample(source)),
                 **{name: nhwc(m) for name, m in zip(FEATURES, reversed(maps))}}
        return tuple(named[name] for name in self.outputs)


class GenerateSignature(_GeneratorModule):
    def forward(self, *args):
        named = dict(zip(self.inputs, args))
        batch = named["kp_driving"].shape[0]

        def source_side(name):
            return to_batch(nchw(named[name]), batch)
        motion = self.dense_motion_network.motion(source_side("source_down"),
                                                  named["kp_driving"],
                                                  to_batch(named["kp_source"], batch))
        maps = [source_side(name) for name in reversed(FEATURES)]
        out = self.inpainting_network.decode(maps, source_side("source_image"), motion)
        return (nhwc(out["prediction"]),)


WRAPPERS = {("kp_detector", "serving_default"): KPDetectorSignature,
            ("process_kp_driving", "serving_default"): lambda nets, c: ProcessKpSignature(c),
            ("avd_network", "serving_default"): AVDSignature,
            ("generator", "serving_default"): GeneratorSignature,
            ("generator", "encode_source"): EncodeSourceSignature,
            ("generator", "generate"): GenerateSignature}


def onnx_signatures(spec, nets: dict) -> list[OnnxSignature]:
    """The six graphs of a TPSMM spec's networks (built by tpsmm/torch_model with
    tps_solve "double-float", weights loaded), in the signatures' order."""
    if nets["dense_motion_network"].tps_solve != "double-float":
        raise ValueError("the ONNX graphs fit the TPS in double-float "
                         "(build_models(..., tps_solve='double-float'))")
    out = []
    for model, sigs in signatures(spec).items():
        for contract in sigs.values():
            module = WRAPPERS[model, contract.name](nets, contract).eval()
            out.append(OnnxSignature(contract, module, example_inputs(contract)))
    return out


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
    nets = load_networks(build_models(spec.model_params(), tps_solve="double-float"),
                         checkpoint.networks, str(checkpoint.path))
    return write_onnx(onnx_signatures(spec, nets), out_dir, metadata)
