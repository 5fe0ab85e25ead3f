"""The TPSMM generator: the dense motion network and the inpainting network as one model,
with three entry points that share its graph:
- `__call__(source_image, kp_driving, kp_source)`: the frames with their diagnostic
  outputs (the oracle's per-mode arrays);
- `encode_source(source_image)`: what depends on the source only (the inpainting
  encoder's four maps and the dense-motion downsample), computed once per video;
- `generate(source_image, <encode_source's outputs>, kp_driving, kp_source)`: the frames
  from them.
The source side may have batch 1 beside a driving batch of B: it is tiled in the graph.
"""
from __future__ import annotations

import tensorflow as tf

from ..signatures import FEATURES
from .dense_motion import DenseMotionNetwork
from .inpainting import InpaintingNetwork

# The contract's names of the inpainting encoder's maps, in the encoder's order (finest
# first: source_features_3 is full size, source_features_0 H/8, as occlusion_map_i).
ENCODER_MAPS = tuple(reversed(FEATURES))
# encode_source's outputs: those maps and the source at the dense-motion size.
ENCODED = (*FEATURES, "source_down")


class Generator(tf.Module):
    def __init__(self, dense_motion_network: DenseMotionNetwork,
                 inpainting_network: InpaintingNetwork):
        super().__init__()
        self.dense_motion_network = dense_motion_network
        self.inpainting_network = inpainting_network

    def encode_source(self, source_image) -> dict:
        maps = self.inpainting_network.encode(source_image)
        return {**dict(zip(ENCODER_MAPS, maps)),
                "source_down": self.dense_motion_network.downsample(source_image)}

    def _frames(self, source_image, encoded, kp_driving, kp_source) -> dict:
        motion = self.dense_motion_network.motion(encoded["source_down"], kp_driving,
                                                  kp_source)
        frames = self.inpainting_network.decode([encoded[n] for n in ENCODER_MAPS],
                                                source_image, motion["deformation"],
                                                motion["occlusion_map"])
        return {**motion, **frames}

    def __call__(self, source_image, kp_driving, kp_source) -> dict:
        """prediction and deformed (B, H, W, C), deformation (B, h, w, 2), contribution_maps
        (B, h, w, K+1), occlusion_map_0 .. _3 (B, H/8 .. H, W/8 .. W, 1), tps_theta
        (B, K, 2, 3), tps_control_params (B, K, 5, 2)."""
        source_image = tf.convert_to_tensor(source_image, tf.float32)
        out = self._frames(source_image, self.encode_source(source_image), kp_driving,
                           kp_source)
        maps = out.pop("occlusion_map")
        return {**out, **{f"occlusion_map_{i}": m for i, m in enumerate(maps)}}

    def generate(self, source_image, encoded: dict, kp_driving, kp_source) -> dict:
        """{prediction} from encode_source's outputs: the same frames as __call__."""
        encoded = {name: tf.convert_to_tensor(encoded[name], tf.float32) for name in ENCODED}
        frames = self._frames(tf.convert_to_tensor(source_image, tf.float32), encoded,
                              kp_driving, kp_source)
        return {"prediction": frames["prediction"]}
