"""The TF graph, straight from a checkpoint through the weight table (no export)."""
from __future__ import annotations

import tensorflow as tf

from ..tf_model.functions import model_functions
from ..tf_model.weights import build_tf_models
from .base import SignatureBackend


class TFBackend(SignatureBackend):
    def __init__(self, spec, checkpoint, threads: int | None = None):
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        super().__init__(spec)
        self.functions = model_functions(spec, *build_tf_models(spec, checkpoint))

    def call(self, model, signature, inputs):
        out = self.functions[model][1][signature](**inputs)
        return {k: v.numpy() for k, v in out.items()}
