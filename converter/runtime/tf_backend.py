"""The TF graph, straight from a checkpoint through the weight table (no export)."""
from __future__ import annotations

import tensorflow as tf

from ..tf_model.functions import model_functions
from ..tf_model.weights import build_tf_models
from .base import SignatureBackend, SpecBackend


class FunctionsBackend(SpecBackend):
    """A spec's TF signature functions ({model: (module, {signature: tf.function})}) as a
    backend's `call`; a family's tf backend adds its model calls and builds them."""

    def __init__(self, spec, functions: dict, threads: int | None = None):
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        super().__init__(spec)
        self.functions = functions

    def call(self, model, signature, inputs):
        out = self.functions[model][1][signature](**inputs)
        return {k: v.numpy() for k, v in out.items()}


class TFBackend(FunctionsBackend, SignatureBackend):
    def __init__(self, spec, checkpoint, threads: int | None = None):
        super().__init__(spec, model_functions(spec, *build_tf_models(spec, checkpoint)),
                         threads)
