"""The shape rules of TFLite's windowed and matrix ops: convolutions, pooling, depth <->
space, resizing, batched matmul (tflite_rules explains a rule's form). Only the batch may
be a polynomial here: spatial sizes and channels are numbers in every file of ours.
"""
from __future__ import annotations

from .tflite_dims import le, show
from .tflite_rules import broadcast, need, shown, values

SAME, VALID = 0, 1  # Padding


def _spatial(size, kernel, stride, dilation, padding, what):
    need(isinstance(size, int) and stride >= 1 and dilation >= 1 and kernel >= 1
         and padding in (SAME, VALID), lambda: f"{what}: a window over {show(size)}")
    effective = (kernel - 1) * dilation + 1
    out = (size + stride - 1) // stride if padding == SAME else \
        (size + stride - effective) // stride
    need(out >= 1, lambda: f"{what}: a window of {effective} over {size}")
    return out


def _window(options, shape, kh, kw, what, dilation=True):
    need(len(shape) == 4, lambda: f"{what} of {shown(shape)}")
    dh, dw = (options["dilation_h"], options["dilation_w"]) if dilation else (1, 1)
    return (_spatial(shape[1], kh, options["stride_h"], dh, options["padding"], what),
            _spatial(shape[2], kw, options["stride_w"], dw, options["padding"], what))


def conv(options, args, n):
    x, w = args[0].shape, args[1].shape
    need(len(w) == 4 and len(x) == 4 and x[3] == w[3],
         lambda: f"CONV_2D of {shown(x)} by {shown(w)}")
    _bias(args, w[0], "CONV_2D")
    h, wd = _window(options, x, w[1], w[2], "CONV_2D")
    return [((x[0], h, wd, w[0]), None)]


def depthwise(options, args, n):
    x, w = args[0].shape, args[1].shape
    need(len(w) == 4 and len(x) == 4 and w[0] == 1 and
         w[3] == x[3] * options["depth_multiplier"],
         lambda: f"DEPTHWISE_CONV_2D of {shown(x)} by {shown(w)}")
    _bias(args, w[3], "DEPTHWISE_CONV_2D")
    h, wd = _window(options, x, w[1], w[2], "DEPTHWISE_CONV_2D")
    return [((x[0], h, wd, w[3]), None)]


def _bias(args, channels, what):
    need(len(args) == 3 and args[2] is not None and args[2].shape == (channels,),
         lambda: f"{what} without a bias of {channels}")


def pool(options, args, n):
    x = args[0].shape
    h, w = _window(options, x, options["filter_h"], options["filter_w"], options["op"],
                   dilation=False)
    return [((x[0], h, w, x[3]), None)]


def fully_connected(options, args, n):
    """Ours (TPSMM's resnet18 fc, its AVD network's Linear layers): a (B, in) input, or
    (B, 1, 1, in) in the batch-1 files (the pooled map, whose flattening the converter
    folds in), by (out, in) weights in the default format, with a bias of out, to
    (B, out). The kernel flattens any input to (count / in, in); ours never need more
    (nor keep_num_dims)."""
    x, w = args[0].shape, args[1].shape
    need(len(x) in (2, 4) and all(d == 1 for d in x[1:-1]) and len(w) == 2
         and isinstance(w[1], int) and x[-1] == w[1]
         and options["weights_format"] == 0 and not options["keep_num_dims"],
         lambda: f"FULLY_CONNECTED of {shown(x)} by {shown(w)}")
    _bias(args, w[0], "FULLY_CONNECTED")
    return [((x[0], w[0]), None)]


def depth_to_space(options, args, n):
    x, b = args[0].shape, options["block_size"]
    need(len(x) == 4 and b >= 1 and isinstance(x[3], int) and x[3] % (b * b) == 0,
         lambda: f"DEPTH_TO_SPACE of {shown(x)} by {b}")
    return [((x[0], x[1] * b, x[2] * b, x[3] // (b * b)), None)]


def space_to_depth(options, args, n):
    x, b = args[0].shape, options["block_size"]
    need(len(x) == 4 and b >= 1 and all(isinstance(d, int) and d % b == 0 for d in x[1:3]),
         lambda: f"SPACE_TO_DEPTH of {shown(x)} by {b}")
    return [((x[0], x[1] // b, x[2] // b, x[3] * b * b), None)]


def batch_matmul(options, args, n):
    a, b = args[0].shape, args[1].shape
    need(2 <= len(a) <= 5 and 2 <= len(b) <= 5,
         lambda: f"BATCH_MATMUL of {shown(a)} and {shown(b)}")
    m, k = (a[-1], a[-2]) if options["adj_x"] else (a[-2], a[-1])
    k2, cols = (b[-1], b[-2]) if options["adj_y"] else (b[-2], b[-1])
    need(k == k2, lambda: f"BATCH_MATMUL of {shown(a)} and {shown(b)}")
    return [(broadcast(a[:-2], b[:-2]) + (m, cols), None)]


def resize(options, args, n):
    shape, size = args[0].shape, values(args[1], "size")
    need(len(shape) == 4 and args[1].shape == (2,) and all(le(1, s) for s in size),
         lambda: f"RESIZE of {shown(shape)} to {shown(size)}")
    return [((shape[0], size[0], size[1], shape[3]), None)]
