"""The TF signature functions of the three models, as the SavedModels, the TFLite files and
the tf backend run them.

    functions = model_functions(spec, kp_detector, generator)
    # {model: (tf.Module owning the variables, {signature name: tf.function})}

Every input (name, shape, dtype, order) comes from the I/O contract, fomm_convert.signatures.
The Python parameter names of each closure are the input names the SavedModel and TFLite
signatures carry (and the closures' names name the traced functions): they are spelled out,
and signature_function checks them against the contract.
"""
from __future__ import annotations

import inspect

import tensorflow as tf

from ..signatures import Signature, signatures
from .process_kp import ProcessKpDriving


def tensor_specs(signature: Signature, batch: int | None = None) -> list[tf.TensorSpec]:
    """The TensorSpecs of a signature's inputs, in order (batch None: dynamic)."""
    return [tf.TensorSpec(t.full_shape(batch), tf.as_dtype(t.dtype), name=t.name)
            for t in signature.inputs]


def signature_function(python_function, signature: Signature, batch: int | None = None):
    """tf.function(python_function) over the signature's inputs; its parameters must be
    the signature's input names, in order."""
    params = tuple(inspect.signature(python_function).parameters)
    if params != signature.input_names:
        raise ValueError(f"{signature.model} {signature.name}: the function takes {params}, "
                         f"the signature {signature.input_names}")
    return tf.function(python_function, input_signature=tensor_specs(signature, batch))


def kp_detector_function(detector, signature: Signature, batch: int | None = None):
    """serving_default(image) -> value[, jacobian]."""
    def kp_detector(image):
        return detector(image)
    return signature_function(kp_detector, signature, batch)


def process_kp_function(process: ProcessKpDriving, signature: Signature,
                        batch: int | None = None):
    """serving_default(kp_driving[, _jacobian], kp_driving_initial[, _jacobian],
    kp_source[, _jacobian], the three flags) -> value[, jacobian]."""
    if process.estimate_jacobian:
        def process_kp(kp_driving, kp_driving_jacobian, kp_driving_initial,
                       kp_driving_initial_jacobian, kp_source, kp_source_jacobian,
                       use_relative_movement, use_relative_jacobian, adapt_movement_scale):
            return process(kp_driving, kp_driving_jacobian, kp_driving_initial,
                           kp_driving_initial_jacobian, kp_source, kp_source_jacobian,
                           use_relative_movement, use_relative_jacobian, adapt_movement_scale)
    else:
        def process_kp(kp_driving, kp_driving_initial, kp_source, use_relative_movement,
                       use_relative_jacobian, adapt_movement_scale):
            return process(kp_driving, None, kp_driving_initial, None, kp_source, None,
                           use_relative_movement, use_relative_jacobian, adapt_movement_scale)
    return signature_function(process_kp, signature, batch)


def generator_function(model, signature: Signature, batch: int | None = None, outputs=None):
    """serving_default(source_image, <keypoint inputs>) -> dict of `outputs` (default: all)."""
    def select(result):
        return {k: v for k, v in result.items() if outputs is None or k in outputs}

    if model.estimate_jacobian:
        def generator(source_image, kp_driving, kp_driving_jacobian, kp_source,
                      kp_source_jacobian):
            return select(model(source_image, kp_driving, kp_driving_jacobian, kp_source,
                                kp_source_jacobian))
    else:
        def generator(source_image, kp_driving, kp_source):
            return select(model(source_image, kp_driving, kp_source))
    return signature_function(generator, signature, batch)


def encode_source_function(model, signature: Signature, batch: int | None = None):
    """encode_source(source_image) -> source_features, source_down."""
    def encode_source(source_image):
        return model.encode_source(source_image)
    return signature_function(encode_source, signature, batch)


def generate_function(model, signature: Signature, batch: int | None = None):
    """generate(source_features, source_down, <keypoint inputs>) -> prediction."""
    if model.estimate_jacobian:
        def generate(source_features, source_down, kp_driving, kp_driving_jacobian,
                     kp_source, kp_source_jacobian):
            return model.generate(source_features, source_down, kp_driving,
                                  kp_driving_jacobian, kp_source, kp_source_jacobian)
    else:
        def generate(source_features, source_down, kp_driving, kp_source):
            return model.generate(source_features, source_down, kp_driving, kp_source)
    return signature_function(generate, signature, batch)


def model_functions(spec, kp_detector, generator, batch: int | None = None) -> dict:
    """{model: (tf.Module owning the variables, {signature: tf.function})}, in export order.
    batch: a fixed batch for every input but the flags (None: dynamic)."""
    sigs = signatures(spec)
    process = ProcessKpDriving(spec.num_kp, spec.estimate_jacobian)
    gen = sigs["generator"]
    return {
        "kp_detector": (kp_detector, {"serving_default": kp_detector_function(
            kp_detector, sigs["kp_detector"]["serving_default"], batch)}),
        "process_kp_driving": (process, {"serving_default": process_kp_function(
            process, sigs["process_kp_driving"]["serving_default"], batch)}),
        "generator": (generator, {
            "serving_default": generator_function(generator, gen["serving_default"], batch),
            "encode_source": encode_source_function(generator, gen["encode_source"], batch),
            "generate": generate_function(generator, gen["generate"], batch)}),
    }
