"""Weight algebra of the fast graphs, in numpy only (no TensorFlow, no torch).

Shared by the TF fast graph (tf_model/fast.py) and its torch twin (torch_model/fast.py),
from which the ONNX files are exported; which conv takes which rewrite is decided in
architecture.py. Kernels are HWIO ([kh, kw, in, out], TF's
layout); every rewrite is computed in float64 and rounded to float32 once.

- `fold_bn`: conv followed by inference BatchNorm -> one conv.
- `phase_kernels`: nearest upsample x2 followed by a 3x3 conv (pad 1) -> one 2x2 conv
  with 4*C_out channels on the low-resolution input (then depth-to-space and a crop).
- `winograd_kernels`: a 3x3 conv (pad 1) -> the 16 (36) matrices of Winograd F(2x2, 3x3)
  (F(4x4, 3x3)); `phase_winograd_kernels`: the phase conv's 2x2 kernel -> the 9 matrices
  of F(2x2, 2x2).
- `stride2_kernel`: a KxK conv with few output channels -> a stride-2 conv with 4*C_out
  channels (then depth-to-space).
- `pairwise_sum`: partial sums of any framework's tensors added as a balanced tree (the
  chunked convolutions of the TFLite and ExecuTorch keypoint detectors).
"""
from __future__ import annotations

import numpy as np

from .architecture import BN_EPSILON

# Phase s of an output row/column (see phase_kernels) -> for each tap t of the 2x2 window,
# the rows (columns) of the 3x3 kernel whose taps land on that low-resolution pixel.
PHASE_TAPS = (((0, 1), (2,)), ((0,), (1, 2)))

# Winograd F(2, 3) (Lavin & Gray 2016): y = A^T [(G g) * (B^T d)] for a 4-tap input tile d,
# a 3-tap kernel g and 2 outputs; in 2-D, Y = A^T [(G g G^T) * (B^T d B)] A.
WINOGRAD_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
                       np.float64)
WINOGRAD_G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float64)
WINOGRAD_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)
# Winograd F(4, 3) (points 0, +-1, +-2, infinity): 6-tap input tiles, 4 outputs; in 2-D
# 36 multiplies per 16 outputs where F(2, 3) takes 64, but transforms with entries up to 8
# round more: a 256-channel 64x64 layer lands 5.8e-5 off float64 (outputs up to 7), where
# F(2, 3) is 2.7e-6 and the direct conv 2.2e-6.
WINOGRAD_F4_BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                           [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
                          np.float64)
WINOGRAD_F4_G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                          [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
                         np.float64)
WINOGRAD_F4_AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                           [0, 1, -1, 8, -8, 1]], np.float64)
# Output tile m -> (B^T, G, A^T) of F(m x m, 3x3).
WINOGRAD = {2: (WINOGRAD_BT, WINOGRAD_G, WINOGRAD_AT),
            4: (WINOGRAD_F4_BT, WINOGRAD_F4_G, WINOGRAD_F4_AT)}
# Winograd F(2, 2) (points 0, 1, infinity), for the 2x2 phase conv: y0 = d0 g0 + d1 g1 =
# (d0 - d1) g0 + d1 (g0 + g1), y1 = d1 g0 + d2 g1 = d1 (g0 + g1) + (d2 - d1) g1; every
# transform entry is 0 or +-1 (G sums two taps), so it rounds like the direct conv.
WINOGRAD_2TAP = (np.array([[1, -1, 0], [0, 1, 0], [0, -1, 1]], np.float64),
                 np.array([[1, 0], [1, 1], [0, 1]], np.float64),
                 np.array([[1, 1, 0], [0, 1, 1]], np.float64))


def bn_factors(gamma, beta, mean, variance, epsilon: float = BN_EPSILON):
    """(alpha, shift) in float64: BN(x) = x * alpha + shift."""
    gamma, beta, mean, variance = (np.asarray(v, np.float64) for v in
                                   (gamma, beta, mean, variance))
    alpha = gamma / np.sqrt(variance + epsilon)
    return alpha, beta - mean * alpha


def fold_bn(kernel, bias, gamma, beta, mean, variance, epsilon: float = BN_EPSILON):
    """An HWIO conv followed by inference BN as one conv: (kernel, bias), float32."""
    alpha, shift = bn_factors(gamma, beta, mean, variance, epsilon)
    kernel = np.asarray(kernel, np.float64) * alpha
    bias = np.asarray(bias, np.float64) * alpha + shift
    return kernel.astype(np.float32), bias.astype(np.float32)


def phase_kernels(kernel) -> np.ndarray:
    """A 3x3 HWIO kernel applied after nearest upsampling x2 -> the [2, 2, I, 4*O] kernel
    of the equivalent low-resolution convolution (float32, summed in float64).

    Upsampled output row u = 2i + a reads upsampled rows u-1, u, u+1, i.e. low-resolution
    rows (a=0) i-1 <- kernel row 0, i <- rows 1, 2; (a=1) i <- rows 0, 1, i+1 <- row 2.
    Over the input padded by 1, a VALID 2x2 window at (r, c) covers low-resolution rows
    r-1 and r: it serves output rows 2r-1 (a=1, sub-phase s=0) and 2r (a=0, s=1), so
    output row u = 2r - 1 + s. Phase (s_y, s_x) is output channel block s_y*2 + s_x
    (TF depth_to_space order): depth_to_space gives the output shifted by one pixel,
    (2H+2, 2W+2), and the image is its [1:2H+1, 1:2W+1] crop. The pad rows of the
    low-resolution input are exactly the upsampled image's zero padding.
    """
    return _phase_kernels(kernel).astype(np.float32)


def _phase_kernels(kernel) -> np.ndarray:
    kernel = np.asarray(kernel, np.float64)
    if kernel.shape[:2] != (3, 3):
        raise ValueError(f"expected a 3x3 kernel, got {kernel.shape}")
    cin, cout = kernel.shape[2:]
    out = np.zeros((2, 2, cin, 4, cout), np.float64)
    for sy in range(2):
        for sx in range(2):
            for ty in range(2):
                for tx in range(2):
                    out[ty, tx, :, sy * 2 + sx] = sum(
                        kernel[dy, dx] for dy in PHASE_TAPS[sy][ty]
                        for dx in PHASE_TAPS[sx][tx])
    return out.reshape(2, 2, cin, 4 * cout)


def winograd_kernels(kernel, tile: int = 2) -> np.ndarray:
    """A 3x3 HWIO kernel -> U = G g G^T per (in, out) for F(tile x tile, 3x3): [a, a, I, O]
    float32 (a = tile + 2); U[i, j] is the (I, O) matrix that multiplies the transformed
    input tile's entry (i, j)."""
    kernel = np.asarray(kernel, np.float64)
    if kernel.shape[:2] != (3, 3):
        raise ValueError(f"expected a 3x3 kernel, got {kernel.shape}")
    return _transformed(kernel, WINOGRAD[tile][1])


def phase_winograd_kernels(kernel) -> np.ndarray:
    """A 3x3 HWIO kernel applied after nearest upsampling x2 -> the [3, 3, I, 4*O] matrices
    U of F(2x2, 2x2) for its phase conv's 2x2 kernel (`phase_kernels`), summed in float64
    and rounded once."""
    return _transformed(_phase_kernels(kernel), WINOGRAD_2TAP[1])


def _transformed(kernel, g) -> np.ndarray:
    return np.einsum("ia,jb,abco->ijco", g, g, kernel).astype(np.float32)


def stride2_kernel(kernel) -> np.ndarray:
    """A stride-1 KxK HWIO conv with 'same' padding p = (K-1)/2 (K odd) -> the kernel of

        conv(x, kernel, pad p) == depth_to_space(conv(pad(x, p), kernel', stride 2), 2)

    (depth_to_space in TF's DCR order: output pixel (2P+a, 2Q+b) is channel block a*2+b;
    the input's height and width must be even). Output row 2P + a reads padded rows
    2P + a + d (d < K), i.e. row a + d of the stride-2 window at 2P: kernel' is
    [K+1, K+1, I, 4*O] with kernel'[a+dy, b+dx, :, (a*2+b)*O:...] = kernel[dy, dx].
    Few output channels waste most of a GEMM micro-kernel's lanes (the generator's final
    7x7 conv has 3); this has 4x as many, for (K+1)^2 / K^2 as many multiply-adds (1.31x
    for K = 7), and runs 2.5-3x faster on XNNPACK and onnxruntime alike.
    """
    kernel = np.asarray(kernel, np.float64)
    k, cin, cout = kernel.shape[0], kernel.shape[2], kernel.shape[3]
    if kernel.shape[1] != k or k % 2 != 1:
        raise ValueError(f"expected a square kernel of odd size, got {kernel.shape}")
    out = np.zeros((k + 1, k + 1, cin, 4, cout), np.float64)
    for a in range(2):
        for b in range(2):
            out[a:a + k, b:b + k, :, a * 2 + b, :] = kernel
    return out.reshape(k + 1, k + 1, cin, 4 * cout).astype(np.float32)


def pairwise_sum(parts: list):
    """parts[0] + parts[1] + ... as a balanced tree of adds (numpy, TF or torch tensors)."""
    while len(parts) > 1:
        parts = [parts[i] + parts[i + 1] if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]
