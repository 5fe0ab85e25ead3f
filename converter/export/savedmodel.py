"""SavedModel export: one directory per model, named signatures, plain tf.saved_model.load.

The signatures, their inputs and outputs are the I/O contract's (fomm_convert.signatures),
the same in every format; tf_model.functions.model_functions makes their tf.functions.
"""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf


def export_savedmodels(functions: dict, out_dir: Path) -> dict[str, Path]:
    """Write out_dir/<model>/ for each model of {model: (tf.Module, {signature: tf.function})}
    (model_functions); returns their paths."""
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
