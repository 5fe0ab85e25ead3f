"""The TPSMM TF graph straight from a checkpoint through its weight table (`--backend tf`
of a TPSMM spec; no export)."""
from __future__ import annotations

from ...runtime.tf_backend import FunctionsBackend
from ..tf_model import build_tf_models
from ..tf_model.functions import model_functions
from . import SignatureCalls


def spec_functions(spec, checkpoint, batch: int | None = None) -> tuple[dict, dict]:
    """(the four TF networks with a checkpoint's weights, their signature functions)."""
    params = spec.model_params()
    models = build_tf_models(params, checkpoint.networks)
    return models, model_functions(models, params, spec.frame_shape, batch)


class TFBackend(FunctionsBackend, SignatureCalls):
    def __init__(self, spec, checkpoint, threads: int | None = None):
        super().__init__(spec, spec_functions(spec, checkpoint)[1], threads)
