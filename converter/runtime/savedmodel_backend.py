"""Reloaded SavedModels of a bundle (DIR/savedmodel/<model>/), through their signatures."""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from ..signatures import MODELS
from .base import SignatureBackend


class SavedModelBackend(SignatureBackend):
    def __init__(self, spec, bundle, threads: int | None = None):
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        self.num_kp = spec.num_kp
        self.estimate_jacobian = spec.estimate_jacobian
        self.frame_shape = spec.frame_shape
        root = Path(bundle) / "savedmodel"
        missing = [m for m in MODELS if not (root / m / "saved_model.pb").exists()]
        if missing:
            raise FileNotFoundError(f"{root}: no SavedModel for {', '.join(missing)}")
        self.loaded = {m: tf.saved_model.load(str(root / m)) for m in MODELS}

    def call(self, model, signature, inputs):
        out = self.loaded[model].signatures[signature](**inputs)
        return {k: v.numpy() for k, v in out.items()}
