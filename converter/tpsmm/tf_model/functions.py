"""The TF functions of the TPSMM models, batch dynamic (or fixed), as TFLite and
SavedModel conversion take them: {model: (tf.Module owning the variables, {signature:
tf.function})}. Inputs and outputs are the contract's (tpsmm/signatures.py);
source-side inputs take batch 1 or the driving batch. Every batch dimension is None
unless `batch` is given (the flags stay scalars).
"""
from __future__ import annotations

import tensorflow as tf

from ..architecture import dense_motion_size, inpainting_plan, num_keypoints
from ..signatures import FEATURES
from .generator import Generator
from .normalize import ProcessKpDriving


def _spec(batch, *shape, name):
    return tf.TensorSpec([batch, *shape], tf.float32, name=name)


def model_functions(models: dict, model_params: dict, frame_shape, batch=None) -> dict:
    """models: build_models' four networks; frame_shape (H, W, ...)."""
    height, width = frame_shape[:2]
    num_tps = model_params["common_params"]["num_tps"]
    kp = (num_keypoints(num_tps), 2)
    generator = Generator(models["dense_motion_network"], models["inpainting_network"])
    process = ProcessKpDriving()
    gen = model_params["generator_params"]
    plan = inpainting_plan(gen["block_expansion"], gen["max_features"],
                           gen["num_down_blocks"])
    widths = [gen["block_expansion"]] + [out for _, out in plan.down]
    # source_features_i (the contract's order): the encoder's map of H >> (3 - i).
    last = len(FEATURES) - 1
    features = [_spec(batch, height >> (last - i), width >> (last - i), widths[last - i],
                      name=name) for i, name in enumerate(FEATURES)]
    down = (*dense_motion_size((height, width),
                               model_params["dense_motion_params"]["scale_factor"]), 3)
    image = _spec(batch, height, width, 3, name="source_image")

    @tf.function(input_signature=[_spec(batch, height, width, 3, name="image")])
    def kp_detector(image):
        return {"value": models["kp_detector"](image)}

    @tf.function(input_signature=[_spec(batch, *kp, name="kp_driving"),
                                  _spec(batch, *kp, name="kp_driving_initial"),
                                  _spec(batch, *kp, name="kp_source"),
                                  tf.TensorSpec([], tf.float32, name="use_relative_movement")])
    def process_kp_driving(kp_driving, kp_driving_initial, kp_source, use_relative_movement):
        return {"value": process(kp_driving, kp_driving_initial, kp_source,
                                 use_relative_movement)["fg_kp"]}

    @tf.function(input_signature=[_spec(batch, *kp, name="kp_source"),
                                  _spec(batch, *kp, name="kp_driving")])
    def avd_network(kp_source, kp_driving):
        return {"value": models["avd_network"](kp_source, kp_driving)}

    keypoints = [_spec(batch, *kp, name="kp_driving"), _spec(batch, *kp, name="kp_source")]

    @tf.function(input_signature=[image, *keypoints])
    def serving_default(source_image, kp_driving, kp_source):
        return generator(source_image, kp_driving, kp_source)

    @tf.function(input_signature=[image])
    def encode_source(source_image):
        return generator.encode_source(source_image)

    @tf.function(input_signature=[image, *features, _spec(batch, *down, name="source_down"),
                                  *keypoints])
    def generate(source_image, source_features_0, source_features_1, source_features_2,
                 source_features_3, source_down, kp_driving, kp_source):
        encoded = dict(zip(FEATURES, (source_features_0, source_features_1,
                                             source_features_2, source_features_3)))
        return generator.generate(source_image, {**encoded, "source_down": source_down},
                                  kp_driving, kp_source)

    return {"kp_detector": (models["kp_detector"], {"serving_default": kp_detector}),
            "process_kp_driving": (process, {"serving_default": process_kp_driving}),
            "avd_network": (models["avd_network"], {"serving_default": avd_network}),
            "generator": (generator, {"serving_default": serving_default,
                                      "encode_source": encode_source, "generate": generate})}
