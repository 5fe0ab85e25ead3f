"""The torch fast twin: copies of the reference models with the same function and less
work, the source of the ONNX export (converter/export/onnx.py).

    fast_kp_detector, fast_generator = fast_torch_models(spec, kp_detector, generator)

The rewrites of the TF fast graph (converter/tf_model/fast.py explains them; weight
algebra in converter/algebra.py, every decision in converter/architecture.py) as torch
modules swapped into deep copies of the reference models, so the entry points (forward,
encode, generate, ...) stay the reference's own code. ONNX gets DepthToSpace
(pixel_shuffle, CRD order) where TF has depth_to_space (DCR order): the algebra's
phase-major channel blocks are reordered to channel-major here.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..algebra import (WINOGRAD, bn_factors, fold_bn, phase_kernels, stride2_kernel,
                       winograd_kernels)
from ..architecture import (BN_EPSILON, downsampled_size, halved, use_phase_conv,
                            use_stride2_final, winograd_tile)
from ..spec import Spec


def _hwio(weight: torch.Tensor) -> np.ndarray:
    return weight.detach().numpy().transpose(2, 3, 1, 0)


def _oihw(kernel: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(kernel, np.float32)
                                                 .transpose(3, 2, 0, 1)))


def _to_crd(values: np.ndarray, axis: int) -> np.ndarray:
    """Phase-major (s*C + c, TF's DCR) -> channel-major (c*4 + s, torch's pixel_shuffle)
    along one axis of size 4*C."""
    values = np.moveaxis(np.asarray(values), axis, -1)
    shape = values.shape
    values = values.reshape(*shape[:-1], 4, shape[-1] // 4)
    values = np.swapaxes(values, -1, -2).reshape(shape)
    return np.ascontiguousarray(np.moveaxis(values, -1, axis))


def _bn(norm: nn.BatchNorm2d) -> tuple[np.ndarray, ...]:
    return tuple(t.detach().numpy() for t in (norm.weight, norm.bias, norm.running_mean,
                                               norm.running_var))


def _folded(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    if norm.eps != BN_EPSILON:
        raise ValueError(f"BatchNorm eps {norm.eps} (expected {BN_EPSILON})")
    return fold_bn(_hwio(conv.weight), conv.bias.detach().numpy(), *_bn(norm))


class FusedConv(nn.Module):
    """conv + bias [+ ReLU]; by Winograd F(m x m, 3x3) when `tile` m is 2 or 4
    (architecture.winograd_tile; the TF twin of F(2x2, 3x3) is converter/tf_model/winograd.py).

    The Winograd form is laid out for onnxruntime's threads: every step is one op it runs
    in parallel (a strided slice per tile entry and adds between them ran on one thread:
    a 64x64x256 layer took 33 ms at 1 thread and at 2). With a = m + 2: input transform,
    one convolution with the a*a fixed (a, a) stride-m filters of B^T d B over each channel
    (channels moved into the batch); products, one batched MatMul of the a*a (O, I)
    matrices U[i, j] with the (I, tiles) transformed inputs; output transform, one MatMul
    by the (m*m, a*a) matrix of A^T M A; then DepthToSpace."""

    def __init__(self, kernel, bias, padding: int, relu: bool, tile: int = 0):
        super().__init__()
        kernel = np.asarray(kernel, np.float32)
        self.padding, self.relu, self.tile = int(padding), bool(relu), int(tile)
        self.register_buffer("bias", torch.from_numpy(np.asarray(bias, np.float32)))
        if self.tile:
            a = self.tile + 2
            u = winograd_kernels(kernel, self.tile)  # [a, a, I, O]
            u = u.reshape(a * a, *u.shape[2:]).transpose(0, 2, 1)  # [a*a, O, I]
            self.entries, self.cout, self.cin = u.shape
            self.register_buffer("u", torch.from_numpy(np.ascontiguousarray(u)))
            bt, _, at = WINOGRAD[self.tile]
            transform = np.einsum("ir,jq->ijrq", bt, bt).reshape(a * a, 1, a, a)
            self.register_buffer("input_transform",
                                 torch.from_numpy(transform.astype(np.float32)))
            output = np.einsum("pi,qj->pqij", at, at).reshape(self.tile ** 2, a * a)
            self.register_buffer("output_transform",
                                 torch.from_numpy(output.astype(np.float32)))
        else:
            self.register_buffer("weight", _oihw(kernel))

    def forward(self, x):
        if self.tile:
            return self._winograd(x, int(x.shape[2]), int(x.shape[3]))
        out = nn.functional.conv2d(x, self.weight, self.bias, padding=self.padding)
        return torch.relu(out) if self.relu else out

    def _winograd(self, x, h, w):
        m, entries, cout, cin = self.tile, self.entries, self.cout, self.cin
        th, tw = h // m, w // m
        # (B*I, a*a, th, tw): entry (i, j) of every input tile's B^T d B.
        v = nn.functional.conv2d(x.reshape(-1, 1, h, w), self.input_transform, stride=m,
                                 padding=1)
        v = v.reshape(-1, cin, entries, th * tw).transpose(1, 2)  # (B, a*a, I, tiles)
        products = torch.matmul(self.u, v)  # (B, a*a, O, tiles)
        y = torch.matmul(self.output_transform, products.reshape(-1, entries, cout * th * tw))
        # (B, m*m, O, ...) output pixel (p, q) major -> channel-major for pixel_shuffle (CRD).
        y = y.reshape(-1, m * m, cout, th, tw).transpose(1, 2).reshape(-1, m * m * cout, th,
                                                                       tw)
        out = nn.functional.pixel_shuffle(y, m) + self.bias.reshape(1, -1, 1, 1)
        return torch.relu(out) if self.relu else out


def _fused(kernel, bias, padding, relu, size, target) -> FusedConv:
    return FusedConv(kernel, bias, padding, relu,
                     winograd_tile(np.shape(kernel), padding, size, target))


class FastSameBlock(nn.Module):
    def __init__(self, ref, size, target):
        super().__init__()
        self.conv = _fused(*_folded(ref.conv, ref.norm), ref.conv.padding[0], True, size,
                           target)

    def forward(self, x):
        return self.conv(x)


class FastDownBlock(FastSameBlock):
    """FastSameBlock's conv, then the 2x2 average pool."""

    def forward(self, x):
        return nn.functional.avg_pool2d(self.conv(x), 2)


class FastUpBlock(nn.Module):
    """Nearest upsample x2 + 3x3 conv + BN + ReLU as one 2x2 conv with 4*C_out channels
    (BN folded), ReLU, DepthToSpace and a one-pixel crop (algebra.phase_kernels); on
    small inputs (architecture.use_phase_conv) upsample + the folded 3x3 conv."""

    def __init__(self, ref, size=None):
        super().__init__()
        if tuple(ref.conv.kernel_size) != (3, 3) or tuple(ref.conv.padding) != (1, 1):
            raise ValueError("the phase rewrite needs a 3x3 conv with padding 1")
        kernel, bias = _folded(ref.conv, ref.norm)
        self.phase = use_phase_conv(size)
        if self.phase:
            self.register_buffer("weight", _oihw(_to_crd(phase_kernels(kernel), 3)))
            self.register_buffer("bias", torch.from_numpy(np.repeat(bias, 4)))
        else:
            self.register_buffer("weight", _oihw(kernel))
            self.register_buffer("bias", torch.from_numpy(bias))

    def forward(self, x):
        if not self.phase:
            up = nn.functional.interpolate(x, scale_factor=2)
            return torch.relu(nn.functional.conv2d(up, self.weight, self.bias, padding=1))
        out = torch.relu(nn.functional.conv2d(x, self.weight, self.bias, padding=1))
        return nn.functional.pixel_shuffle(out, 2)[:, :, 1:-1, 1:-1]


class FastResBlock(nn.Module):
    def __init__(self, ref, size, target):
        super().__init__()
        alpha, shift = bn_factors(*_bn(ref.norm1), epsilon=ref.norm1.eps)
        self.register_buffer("scale", torch.from_numpy(alpha.astype(np.float32)[:, None, None]))
        self.register_buffer("shift", torch.from_numpy(shift.astype(np.float32)[:, None, None]))
        self.conv1 = _fused(*_folded(ref.conv1, ref.norm2), ref.conv1.padding[0], True, size,
                            target)
        self.conv2 = _fused(_hwio(ref.conv2.weight), ref.conv2.bias.detach().numpy(),
                            ref.conv2.padding[0], False, size, target)

    def forward(self, x):
        return self.conv2(self.conv1(torch.relu(x * self.scale + self.shift))) + x


class Stride2Conv(nn.Module):
    """A KxK 'same' conv with few output channels as a stride-2 conv with 4x the output
    channels and DepthToSpace (algebra.stride2_kernel); needs an even size."""

    def __init__(self, ref: nn.Conv2d):
        super().__init__()
        self.padding = int(ref.padding[0])
        kernel = stride2_kernel(_hwio(ref.weight))
        self.register_buffer("weight", _oihw(_to_crd(kernel, 3)))
        self.register_buffer("bias", torch.from_numpy(np.repeat(ref.bias.detach().numpy(), 4)))

    def forward(self, x):
        p = self.padding
        out = nn.functional.conv2d(nn.functional.pad(x, [p, p, p, p]), self.weight, self.bias,
                                   stride=2)
        return nn.functional.pixel_shuffle(out, 2)


def _fast_hourglass(hourglass, size, target):
    for i, block in enumerate(hourglass.encoder.down_blocks):
        hourglass.encoder.down_blocks[i] = FastDownBlock(block, halved(size, i), target)
    n = len(hourglass.decoder.up_blocks)
    for i, block in enumerate(hourglass.decoder.up_blocks):
        hourglass.decoder.up_blocks[i] = FastUpBlock(block, halved(size, n - i))


def fast_torch_models(spec: Spec, kp_detector, generator, winograd: str | None = "mlas",
                      kp_winograd: str | None = None):
    """Copies of two reference models of `spec` (weights loaded, eval mode) with the fast
    blocks swapped in: the same entry points (forward, encode, generate, ...), the same
    function. winograd, kp_winograd: the targets of architecture.winograd_tile for the generator
    ("mlas": onnxruntime) and the detector (None, as in converter/tf_model/fast.py)."""
    kp_detector, generator = copy.deepcopy(kp_detector), copy.deepcopy(generator)
    frame = tuple(spec.frame_shape[:2])
    _fast_hourglass(kp_detector.predictor,
                    downsampled_size(frame, spec.kp_detector.get("scale_factor", 1)),
                    kp_winograd)
    _fast_hourglass(generator.dense_motion_network.hourglass,
                    downsampled_size(frame, spec.dense_motion.get("scale_factor", 1)), winograd)
    generator.first = FastSameBlock(generator.first, frame, winograd)
    for i, block in enumerate(generator.down_blocks):
        generator.down_blocks[i] = FastDownBlock(block, halved(frame, i), winograd)
    size = halved(frame, len(generator.down_blocks))
    for i, block in enumerate(generator.up_blocks):
        generator.up_blocks[i] = FastUpBlock(block, (size[0] << i, size[1] << i))
    for name, block in list(generator.bottleneck.named_children()):
        setattr(generator.bottleneck, name, FastResBlock(block, size, winograd))
    if use_stride2_final(frame, generator.final.out_channels):
        generator.final = Stride2Conv(generator.final)
    return kp_detector.eval(), generator.eval()
