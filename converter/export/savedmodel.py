"""SavedModel export: one directory per model, named signatures, plain tf.saved_model.load.

Signature and input/output names are the same in every format:
- kp_detector: serving_default(image) -> value, jacobian
- process_kp_driving: serving_default(kp_driving, kp_driving_jacobian, kp_driving_initial,
  kp_driving_initial_jacobian, kp_source, kp_source_jacobian, use_relative_movement,
  use_relative_jacobian, adapt_movement_scale) -> value, jacobian
- generator: serving_default(source_image, kp_driving, kp_driving_jacobian, kp_source,
  kp_source_jacobian) -> prediction, mask, occlusion_map, deformation, sparse_deformed,
  deformed; encode_source(source_image) -> source_features, source_down;
  generate(source_features, source_down, kp_*) -> prediction
(no jacobian inputs or outputs for models without jacobians).
"""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from ..tf_model.process_kp import ProcessKpDriving

MODELS = ("kp_detector", "process_kp_driving", "generator")


def model_functions(spec, kp_detector, generator, batch: int | None = None) -> dict:
    """{model: (tf.Module owning the variables, {signature: tf.function})}."""
    process = ProcessKpDriving(spec.num_kp, spec.estimate_jacobian)
    return {
        "kp_detector": (kp_detector, {"serving_default": kp_detector.serving_function(batch)}),
        "process_kp_driving": (process, {"serving_default": process.serving_function()}),
        "generator": (generator, {
            "serving_default": generator.serving_function(batch),
            "encode_source": generator.encode_source_function(batch),
            "generate": generator.generate_function(batch)}),
    }


def export_savedmodels(functions: dict, out_dir: Path) -> dict[str, Path]:
    """Write out_dir/<model>/ for each model; returns their paths."""
    paths = {}
    for name, (module, signatures) in functions.items():
        root = tf.Module()
        root.model = module  # tracks the variables
        for sig_name, fn in signatures.items():
            setattr(root, sig_name, fn)
        path = Path(out_dir) / name
        tf.saved_model.save(root, str(path), signatures=signatures)
        _pin_fingerprint(path)
        paths[name] = path
    return paths


def _pin_fingerprint(path: Path):
    """Drop the random uuid TF writes into fingerprint.pb, so that the same inputs give
    the same bytes (the content hashes it also holds are deterministic)."""
    from tensorflow.core.protobuf import fingerprint_pb2
    file = path / "fingerprint.pb"
    fingerprint = fingerprint_pb2.FingerprintDef.FromString(file.read_bytes())
    fingerprint.ClearField("uuid")
    file.write_bytes(fingerprint.SerializeToString(deterministic=True))
