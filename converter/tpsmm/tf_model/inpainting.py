"""Inpainting network: encode the source, warp and occlude its features at four scales,
decode the frame, and blend it with the warped source by the finest occlusion map.
Torch reference: converter/tpsmm/torch_model/inpainting.py."""
from __future__ import annotations

import tensorflow as tf

from ...tf_model import ops
from ...tf_model.blocks import (Block, Conv2d, DownBlock2d, InstanceNorm2d, ResBlock2d,
                                SameBlock2d, UpBlock2d, assign_paths)
from ..architecture import inpainting_plan


def deform(x: tf.Tensor, deformation: tf.Tensor) -> tf.Tensor:
    """Warp x (batch 1 or B) by a (B, h, w, 2) field, resized bilinearly (corners
    aligned) when x's size differs."""
    height, width = ops.static_hw(x)
    field = ops.resize_bilinear(deformation, height, width, align_corners=True)
    x = ops.tile_to_batch(x, ops.batch_size(deformation))
    return ops.grid_sample(x, field[:, :, :, 0:1], field[:, :, :, 1:2], True)


class InpaintingNetwork(Block):
    def __init__(self, num_channels, block_expansion, max_features, num_down_blocks):
        """The original's arguments but multi_mask (always True:
        architecture.network_arguments)."""
        super().__init__()
        plan = inpainting_plan(block_expansion, max_features, num_down_blocks)
        norm = InstanceNorm2d
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3,
                                 norm=norm)
        self.down_blocks = [DownBlock2d(i, o, norm=norm) for i, o in plan.down]
        self.up_blocks = [UpBlock2d(i, o, norm=norm) for i, o in plan.up]
        self.resblock = [ResBlock2d(c, kernel_size=3, padding=1, norm=norm)
                         for c in plan.resblock]
        self.final = Conv2d(block_expansion, num_channels, kernel_size=7, padding=3)
        assign_paths(self)

    def encode(self, source_image, taps=None) -> list:
        """The source's features at H, H/2, H/4, H/8: what depends on the source only."""
        maps = [self.first(tf.convert_to_tensor(source_image, tf.float32), taps)]
        for block in self.down_blocks:
            maps.append(block(maps[-1], taps))
        return maps

    def decode(self, encoder_maps, source_image, deformation, occlusion_map, taps=None):
        """{"deformed": the source warped at full size, "prediction"}; encoder maps and
        source may have batch 1, the batch is the deformation's."""
        warped = [self._tap(taps, deform(features, deformation) * occlusion,
                            f":warped_encoder_maps:{i}")
                  for i, (features, occlusion) in enumerate(zip(encoder_maps[::-1],
                                                                occlusion_map))]
        out = warped[0]
        for i, block in enumerate(self.up_blocks):
            out = block(self.resblock[2 * i + 1](self.resblock[2 * i](out, taps), taps), taps)
            if i + 1 < len(self.up_blocks):
                out = tf.concat([out, warped[i + 1]], axis=-1)
        deformed = self._tap(taps, deform(tf.convert_to_tensor(source_image, tf.float32),
                                          deformation), ":deformed")
        occlusion = occlusion_map[-1]
        out = tf.sigmoid(self.final(out * (1 - occlusion) + warped[-1], taps))
        prediction = out * (1 - occlusion) + deformed * occlusion
        return {"deformed": deformed, "prediction": self._tap(taps, prediction, ":prediction")}

    def __call__(self, source_image, dense_motion, taps=None):
        return self.decode(self.encode(source_image, taps), source_image,
                           dense_motion["deformation"], dense_motion["occlusion_map"], taps)
