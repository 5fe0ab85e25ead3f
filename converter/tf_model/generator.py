"""Occlusion-aware generator: encode the source, warp its features, decode the frame.

Three entry points share one graph:
- `__call__(source_image, kp_driving, kp_driving_jacobian, kp_source, kp_source_jacobian)`:
  the full generator with its diagnostic outputs;
- `encode_source(source_image)`: what depends on the source only (its features and its
  dense-motion downsample), computed once per video;
- `generate(source_features, source_down, kp_driving, ...)`: a batch of frames from them.
Models without jacobians take no jacobian inputs. Source-side inputs may have batch 1 or
kp_driving's batch: they are tiled in-graph to kp_driving's batch.
"""
from __future__ import annotations

import tensorflow as tf

from ..architecture import generator_channels
from ..signatures import keypoint_names
from . import ops
from .blocks import (Block, Conv2d, DownBlock2d, ResBlock2d, SameBlock2d, Sequential,
                     UpBlock2d, assign_paths)
from .dense_motion import DenseMotionNetwork


def warp(x: tf.Tensor, deformation: tf.Tensor, align_corners: bool) -> tf.Tensor:
    """Sample x (B, H, W, C) at a (B, h, w, 2) field, resized bilinearly to (H, W) if needed."""
    height, width = ops.static_hw(x)
    field = ops.resize_bilinear(deformation, height, width)
    return ops.grid_sample(x, field[:, :, :, 0:1], field[:, :, :, 1:2], align_corners)


class OcclusionAwareGenerator(Block):
    def __init__(self, num_channels, num_kp, block_expansion, max_features, num_down_blocks,
                 num_bottleneck_blocks, estimate_occlusion_map=False, dense_motion_params=None,
                 estimate_jacobian=False, align_corners=False, frame_shape=None):
        super().__init__()
        self.dense_motion_network = DenseMotionNetwork(
            num_kp=num_kp, num_channels=num_channels,
            estimate_occlusion_map=estimate_occlusion_map, align_corners=align_corners,
            **(dense_motion_params or {}))
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3)
        down, up, bottleneck = generator_channels(block_expansion, max_features, num_down_blocks)
        self.down_blocks = [DownBlock2d(i, o) for i, o in down]
        self.up_blocks = [UpBlock2d(i, o) for i, o in up]
        self.bottleneck = Sequential({f"r{i}": ResBlock2d(bottleneck, kernel_size=3, padding=1)
                                      for i in range(num_bottleneck_blocks)})
        self.final = Conv2d(block_expansion, num_channels, kernel_size=7, padding=3)
        self.num_kp = num_kp
        self.num_channels = num_channels
        self.estimate_jacobian = bool(estimate_jacobian)
        self.estimate_occlusion_map = bool(estimate_occlusion_map)
        self.align_corners = bool(align_corners)
        self._frame_shape = tuple(frame_shape) if frame_shape is not None else None
        assign_paths(self)

    # ------------------------------------------------------------ inputs
    @property
    def frame_shape(self) -> tuple | None:
        return self._frame_shape

    @property
    def keypoint_inputs(self) -> tuple[str, ...]:
        """Names (and positional order) of the keypoint inputs of this model."""
        jac = self.estimate_jacobian
        return keypoint_names("kp_driving", jac) + keypoint_names("kp_source", jac)

    def _bind_keypoints(self, args, kwargs) -> dict:
        names = self.keypoint_inputs
        if len(args) > len(names):
            raise TypeError(f"expected keypoint inputs {names}, got {len(args)} positional")
        bound = dict(zip(names, args))
        for name, value in kwargs.items():
            if name in bound:
                raise TypeError(f"{name} given twice")
            if name not in names:
                raise TypeError(f"unexpected input {name!r} (this model takes {names})")
            bound[name] = value
        missing = [n for n in names if n not in bound]
        if missing:
            raise TypeError(f"missing keypoint inputs: {', '.join(missing)}")
        bound = {name: tf.convert_to_tensor(value, tf.float32) for name, value in bound.items()}
        bound.setdefault("kp_driving_jacobian", None)
        bound.setdefault("kp_source_jacobian", None)
        return bound

    # ------------------------------------------------------------ graph pieces
    def encode_source(self, source_image, taps=None) -> dict:
        """{source_features: the output of first + down_blocks, source_down: the source at
        the dense-motion resolution}."""
        source_image = tf.convert_to_tensor(source_image, tf.float32)
        features = self.first(source_image, taps)
        for block in self.down_blocks:
            features = block(features, taps)
        return {"source_features": features,
                "source_down": self.dense_motion_network.downsample(source_image, taps)}

    def _decode(self, source_features, source_down, kps, taps, source_image=None) -> dict:
        batch = ops.batch_size(kps["kp_driving"])
        features = ops.tile_to_batch(source_features, batch)
        source_down = ops.tile_to_batch(source_down, batch)
        kp_source = ops.tile_to_batch(kps["kp_source"], batch)
        jac_source = kps["kp_source_jacobian"]
        if jac_source is not None:
            jac_source = ops.tile_to_batch(jac_source, batch)
        motion = self.dense_motion_network.motion(
            source_down, kps["kp_driving"], kps["kp_driving_jacobian"], kp_source, jac_source,
            taps)
        out = warp(features, motion["deformation"], self.align_corners)
        result = {"mask": motion["mask"], "sparse_deformed": motion["sparse_deformed"]}
        if "occlusion_map" in motion:
            occlusion = motion["occlusion_map"]
            result["occlusion_map"] = occlusion
            out = out * ops.resize_bilinear(occlusion, *ops.static_hw(out))
        if source_image is not None:
            result["deformed"] = warp(ops.tile_to_batch(source_image, batch),
                                      motion["deformation"], self.align_corners)
        out = self.bottleneck(out, taps)
        for block in self.up_blocks:
            out = block(out, taps)
        result["prediction"] = tf.sigmoid(self.final(out, taps))
        result["deformation"] = motion["deformation"]
        layouts = {"sparse_deformed": "sparse", "deformation": "raw"}
        for key, value in result.items():
            self._tap(taps, value, f":{key}", layouts.get(key, "nhwc"))
        return result

    # ------------------------------------------------------------ entry points
    def __call__(self, source_image, *keypoints, taps=None, **named) -> dict:
        """prediction (B,H,W,C), mask (B,h,w,K+1), occlusion_map (B,h,w,1) if estimated,
        deformation (B,h,w,2), sparse_deformed (B,K+1,h,w,C), deformed (B,H,W,C)."""
        kps = self._bind_keypoints(keypoints, named)
        source_image = tf.convert_to_tensor(source_image, tf.float32)
        encoded = self.encode_source(source_image, taps)
        return self._decode(encoded["source_features"], encoded["source_down"], kps, taps,
                            source_image=source_image)

    def generate(self, source_features, source_down, *keypoints, taps=None, **named) -> dict:
        """{prediction} from encode_source's outputs; the same frames as __call__."""
        kps = self._bind_keypoints(keypoints, named)
        result = self._decode(tf.convert_to_tensor(source_features, tf.float32),
                              tf.convert_to_tensor(source_down, tf.float32), kps, taps)
        return {"prediction": result["prediction"]}


def generator_from_spec(spec) -> OcclusionAwareGenerator:
    """The TF generator of a Spec (variables zero until weights are applied)."""
    return OcclusionAwareGenerator(**spec.generator_kwargs(), align_corners=spec.align_corners,
                                   frame_shape=spec.frame_shape)
