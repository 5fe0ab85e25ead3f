"""ONNX export of the three FOMM models from the torch reference.

Route: torch.onnx.export (the TorchScript tracer, opset 17) of thin wrappers around
converter/torch_model. The reference already uses a closed-form 2x2 inverse, so nothing
hits aten::linalg_inv; grid_sample becomes ONNX GridSample (opset >= 16). The TF graph
is not a usable source: tf2onnx has no GridSample handler, so our TF warp would export as
gathers (docs/field-notes.md).

Five files, one per signature, with the names every format uses (see
converter/export/savedmodel.py), NHWC float32 at the edges, batch axis dynamic:
- kp_detector.onnx: image (B,H,W,C) -> value (B,K,2)[, jacobian (B,K,2,2)]
- process_kp_driving.onnx: kp_driving[, kp_driving_jacobian], kp_driving_initial[,
  kp_driving_initial_jacobian], kp_source[, kp_source_jacobian], use_relative_movement,
  use_relative_jacobian, adapt_movement_scale (scalars, 0.0/1.0) -> value[, jacobian]
- generator.onnx: source_image, kp_driving[, kp_driving_jacobian], kp_source[,
  kp_source_jacobian] -> prediction (B,H,W,C), mask (B,h,w,K+1), occlusion_map (B,h,w,1)
  when estimated, deformation (B,h,w,2), sparse_deformed (B,K+1,h,w,C), deformed (B,H,W,C)
- generator.encode_source.onnx: source_image -> source_features (B,H/2^n,W/2^n,F),
  source_down (B,h,w,C)
- generator.generate.onnx: source_features, source_down, kp_* -> prediction
Source-side inputs (source_image, source_features, source_down, kp_source*, and
kp_driving_initial*) may have batch 1 or kp_driving's batch; they are broadcast in-graph.
The generator's three files keep their weights in one external data file beside them,
generator.weights (each tensor once, page-aligned): the full generator's weights contain
the other two's.

Each file carries the caller's metadata as JSON in metadata_props["fomm_convert.json"]
and a readable doc_string, passes onnx.checker (full check), uses ONNX-domain ops only,
and is byte-identical for the same inputs. Files are written atomically.
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ..bundle import write_atomic
from ..runtime.onnx_backend import FILES, METADATA_KEY, WEIGHTS_FILE
from ..spec import Spec
from .. import algebra, architecture
from ..torch_model import build_models, load_weights
from ..torch_model.process_kp import ProcessKpDriving

OPSET = 17


# ------------------------------------------------------------------------ fast modules
# The exported graphs compute the reference's function with less work: the rewrites of
# the TF fast graph (converter/tf_model/fast.py, algebra in converter/tf_model/algebra.py)
# as torch modules swapped into copies of the reference models. ONNX gets DepthToSpace
# (pixel_shuffle, CRD order) where TF has depth_to_space (DCR order): the algebra's
# phase-major channel blocks are reordered to channel-major here.

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
    if norm.eps != architecture.BN_EPSILON:
        raise ValueError(f"BatchNorm eps {norm.eps} (expected {architecture.BN_EPSILON})")
    return algebra.fold_bn(_hwio(conv.weight), conv.bias.detach().numpy(), *_bn(norm))


class FusedConv(nn.Module):
    """conv + bias [+ ReLU]; by Winograd F(m x m, 3x3) when `tile` m is 2 or 4
    (architecture.winograd_tile; the TF twin of F(2x2, 3x3) is converter/tf_model/fast.py).

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
            u = algebra.winograd_kernels(kernel, self.tile)  # [a, a, I, O]
            u = u.reshape(a * a, *u.shape[2:]).transpose(0, 2, 1)  # [a*a, O, I]
            self.entries, self.cout, self.cin = u.shape
            self.register_buffer("u", torch.from_numpy(np.ascontiguousarray(u)))
            bt, _, at = algebra.WINOGRAD[self.tile]
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
                     architecture.winograd_tile(np.shape(kernel), padding, size, target))


def _halved(size, times: int = 1):
    return None if size is None else (size[0] >> times, size[1] >> times)


def _downsampled(frame_shape, scale):
    step = 1 if scale == 1 else int(1 / scale)
    return (-(-frame_shape[0] // step), -(-frame_shape[1] // step))


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
        self.phase = architecture.use_phase_conv(size)
        if self.phase:
            self.register_buffer("weight", _oihw(_to_crd(algebra.phase_kernels(kernel), 3)))
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
        alpha, shift = algebra.bn_factors(*_bn(ref.norm1), epsilon=ref.norm1.eps)
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
        kernel = algebra.stride2_kernel(_hwio(ref.weight))
        self.register_buffer("weight", _oihw(_to_crd(kernel, 3)))
        self.register_buffer("bias", torch.from_numpy(np.repeat(ref.bias.detach().numpy(), 4)))

    def forward(self, x):
        p = self.padding
        out = nn.functional.conv2d(nn.functional.pad(x, [p, p, p, p]), self.weight, self.bias,
                                   stride=2)
        return nn.functional.pixel_shuffle(out, 2)


def _fast_hourglass(hourglass, size, target):
    for i, block in enumerate(hourglass.encoder.down_blocks):
        hourglass.encoder.down_blocks[i] = FastDownBlock(block, _halved(size, i), target)
    n = len(hourglass.decoder.up_blocks)
    for i, block in enumerate(hourglass.decoder.up_blocks):
        hourglass.decoder.up_blocks[i] = FastUpBlock(block, _halved(size, n - i))


def fast_torch_models(spec: Spec, kp_detector, generator, winograd: str | None = "mlas",
                      kp_winograd: str | None = None):
    """Copies of two reference models of `spec` (weights loaded, eval mode) with the fast
    blocks swapped in: the same entry points (forward, encode, generate, ...), the same
    function. winograd, kp_winograd: the targets of architecture.winograd_tile for the generator
    ("mlas": onnxruntime) and the detector (None, as in converter/tf_model/fast.py)."""
    kp_detector, generator = copy.deepcopy(kp_detector), copy.deepcopy(generator)
    frame = tuple(spec.frame_shape[:2])
    _fast_hourglass(kp_detector.predictor,
                    _downsampled(frame, spec.kp_detector.get("scale_factor", 1)), kp_winograd)
    _fast_hourglass(generator.dense_motion_network.hourglass,
                    _downsampled(frame, spec.dense_motion.get("scale_factor", 1)), winograd)
    generator.first = FastSameBlock(generator.first, frame, winograd)
    for i, block in enumerate(generator.down_blocks):
        generator.down_blocks[i] = FastDownBlock(block, _halved(frame, i), winograd)
    size = _halved(frame, len(generator.down_blocks))
    for i, block in enumerate(generator.up_blocks):
        generator.up_blocks[i] = FastUpBlock(block, (size[0] << i, size[1] << i))
    for name, block in list(generator.bottleneck.named_children()):
        setattr(generator.bottleneck, name, FastResBlock(block, size, winograd))
    if frame[0] % 2 == 0 and frame[1] % 2 == 0 and generator.final.out_channels < 16:
        generator.final = Stride2Conv(generator.final)
    return kp_detector.eval(), generator.eval()


# ------------------------------------------------------------------------ wrappers

def _nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def _to_batch(x: torch.Tensor, batch) -> torch.Tensor:
    """A batch of 1 (or of `batch`) as a batch of `batch`: ONNX Expand broadcasts both."""
    return x.expand(batch, *x.shape[1:])


class _Signature(nn.Module):
    """A model entry point with named inputs (positional, in `inputs` order) and outputs."""
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def _kps(self, named: dict, batch) -> tuple[dict, dict]:
        """kp_driving and kp_source dicts of the reference; kp_source broadcast to batch."""
        driving = {"value": named["kp_driving"]}
        source = {"value": _to_batch(named["kp_source"], batch)}
        if "kp_driving_jacobian" in named:
            driving["jacobian"] = named["kp_driving_jacobian"]
            source["jacobian"] = _to_batch(named["kp_source_jacobian"], batch)
        return driving, source


def _kp_inputs(estimate_jacobian: bool, *prefixes: str) -> tuple[str, ...]:
    return tuple(n for p in prefixes
                 for n in ((p, f"{p}_jacobian") if estimate_jacobian else (p,)))


class KPDetectorSignature(_Signature):
    def __init__(self, kp_detector, estimate_jacobian: bool):
        super().__init__()
        self.kp_detector = kp_detector
        self.inputs = ("image",)
        self.outputs = ("value", "jacobian") if estimate_jacobian else ("value",)

    def forward(self, image):
        out = self.kp_detector(_nchw(image))
        return tuple(out[k] for k in self.outputs)


class ProcessKpSignature(_Signature):
    def __init__(self, num_kp: int, estimate_jacobian: bool):
        super().__init__()
        self.process = ProcessKpDriving(num_kp, estimate_jacobian)
        self.inputs = tuple(self.process.input_names())
        self.outputs = tuple(self.process.output_names())

    def forward(self, *args):
        named = dict(zip(self.inputs, args))
        out = self.process(
            named["kp_driving"], named.get("kp_driving_jacobian"), named["kp_driving_initial"],
            named.get("kp_driving_initial_jacobian"), named["kp_source"],
            named.get("kp_source_jacobian"), named["use_relative_movement"],
            named["use_relative_jacobian"], named["adapt_movement_scale"])
        return tuple(out[k] for k in self.outputs)


class GeneratorSignature(_Signature):
    """serving_default: the full generator with its diagnostic outputs.

    The source is encoded at its own batch and broadcast afterwards, as in the TF graph."""

    def __init__(self, generator, estimate_jacobian: bool, estimate_occlusion: bool):
        super().__init__()
        self.generator = generator
        self.inputs = ("source_image",) + _kp_inputs(estimate_jacobian, "kp_driving",
                                                     "kp_source")
        self.outputs = ("prediction", "mask") + (("occlusion_map",) if estimate_occlusion
                                                 else ()) \
            + ("deformation", "sparse_deformed", "deformed")

    def forward(self, *args):
        named = dict(zip(self.inputs, args))
        gen = self.generator
        batch = named["kp_driving"].shape[0]
        source = _nchw(named["source_image"])
        features = _to_batch(gen.encode(source), batch)
        down = _to_batch(gen.dense_motion_network.downsample(source), batch)
        kp_driving, kp_source = self._kps(named, batch)
        motion = gen.dense_motion_network.motion(down, kp_driving, kp_source)
        out = {"prediction": _nhwc(gen.decode(features, motion)),
               "mask": _nhwc(motion["mask"]),
               "deformation": motion["deformation"],
               "sparse_deformed": motion["sparse_deformed"].permute(0, 1, 3, 4, 2),
               "deformed": _nhwc(gen.deform(_to_batch(source, batch), motion["deformation"]))}
        if "occlusion_map" in motion:
            out["occlusion_map"] = _nhwc(motion["occlusion_map"])
        return tuple(out[k] for k in self.outputs)


class EncodeSourceSignature(_Signature):
    def __init__(self, generator):
        super().__init__()
        self.generator = generator
        self.inputs = ("source_image",)
        self.outputs = ("source_features", "source_down")

    def forward(self, source_image):
        source = _nchw(source_image)
        return (_nhwc(self.generator.encode(source)),
                _nhwc(self.generator.dense_motion_network.downsample(source)))


class GenerateSignature(_Signature):
    def __init__(self, generator, estimate_jacobian: bool):
        super().__init__()
        self.generator = generator
        self.inputs = ("source_features", "source_down") + _kp_inputs(
            estimate_jacobian, "kp_driving", "kp_source")
        self.outputs = ("prediction",)

    def forward(self, *args):
        named = dict(zip(self.inputs, args))
        batch = named["kp_driving"].shape[0]
        features = _to_batch(_nchw(named["source_features"]), batch)
        down = _to_batch(_nchw(named["source_down"]), batch)
        kp_driving, kp_source = self._kps(named, batch)
        return (_nhwc(self.generator.generate(features, down, kp_driving, kp_source)),)


# ------------------------------------------------------------------------ declarations

# Inputs whose batch is the driving batch; every other batched input has batch 1 or that.
_DRIVING_BATCH = {"image", "kp_driving", "kp_driving_jacobian"}
_SCALARS = {"use_relative_movement", "use_relative_jacobian", "adapt_movement_scale"}


@dataclass
class OnnxSignature:
    """One exported graph: the file's stem, its module and example inputs."""
    model: str  # kp_detector, process_kp_driving or generator
    signature: str  # serving_default, encode_source or generate
    module: _Signature
    example: tuple  # example inputs, in module.inputs order

    @property
    def stem(self) -> str:
        return Path(FILES[self.model, self.signature]).stem

    def dynamic_axes(self) -> dict:
        axes = {}
        for name in self.module.inputs:
            if name not in _SCALARS:
                axes[name] = {0: "batch" if name in _DRIVING_BATCH else "source_batch"}
        if self.signature == "encode_source":
            axes.update({name: {0: "source_batch"} for name in self.module.outputs})
        else:
            axes.update({name: {0: "batch"} for name in self.module.outputs})
        return axes


def _input_shapes(spec: Spec, generator) -> dict:
    """Per-example shapes (no batch) of every input, NHWC."""
    height, width, channels = spec.frame_shape
    k = spec.num_kp
    with torch.no_grad():
        probe = torch.zeros(1, channels, height, width)
        features = generator.encode(probe).shape
        down = generator.dense_motion_network.downsample(probe).shape
    return {
        "image": (height, width, channels), "source_image": (height, width, channels),
        "source_features": (features[2], features[3], features[1]),
        "source_down": (down[2], down[3], down[1]),
        "kp_driving": (k, 2), "kp_driving_initial": (k, 2), "kp_source": (k, 2),
        "kp_driving_jacobian": (k, 2, 2), "kp_driving_initial_jacobian": (k, 2, 2),
        "kp_source_jacobian": (k, 2, 2),
    }


def _example(names, shapes, driving_batch=2) -> tuple:
    """Deterministic example inputs (the trace does not depend on their values)."""
    rng = np.random.default_rng(0)
    out = []
    for name in names:
        if name in _SCALARS:
            out.append(torch.tensor(1.0))
            continue
        batch = driving_batch if name in _DRIVING_BATCH else 1
        shape = (batch, *shapes[name])
        if name.endswith("_jacobian"):
            value = np.eye(2) + 0.1 * rng.standard_normal(shape)
        elif name.startswith("kp_"):
            value = rng.uniform(-0.8, 0.8, shape)
        else:
            value = rng.uniform(0, 1, shape)
        out.append(torch.from_numpy(value.astype(np.float32)))
    return tuple(out)


def onnx_signatures(spec: Spec, kp_detector, generator) -> list[OnnxSignature]:
    """The five graphs of a model pair (modules in eval mode, weights loaded)."""
    jac = spec.estimate_jacobian
    occlusion = generator.dense_motion_network.occlusion is not None
    modules = [
        ("kp_detector", "serving_default", KPDetectorSignature(kp_detector, jac)),
        ("process_kp_driving", "serving_default", ProcessKpSignature(spec.num_kp, jac)),
        ("generator", "serving_default", GeneratorSignature(generator, jac, occlusion)),
        ("generator", "encode_source", EncodeSourceSignature(generator)),
        ("generator", "generate", GenerateSignature(generator, jac)),
    ]
    shapes = _input_shapes(spec, generator)
    return [OnnxSignature(model, signature, module.eval(), _example(module.inputs, shapes))
            for model, signature, module in modules]


# ------------------------------------------------------------------------ export

def to_onnx(sig: OnnxSignature) -> onnx.ModelProto:
    """Trace and convert one signature (no metadata yet)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript; and the tracer warns about shape values it records as it should.
        warnings.simplefilter("ignore")
        torch.onnx.export(sig.module, sig.example, buffer, dynamo=False,
                          opset_version=OPSET, input_names=list(sig.module.inputs),
                          output_names=list(sig.module.outputs),
                          dynamic_axes=sig.dynamic_axes(), do_constant_folding=True,
                          export_params=True)
    return onnx.load_model_from_string(buffer.getvalue())


def describe(sig: OnnxSignature, model: onnx.ModelProto, metadata: dict) -> str:
    """The doc_string: what the file is, then its inputs and outputs with shapes."""
    def shape(value):
        dims = value.type.tensor_type.shape.dim
        return "(" + ",".join(d.dim_param or str(d.dim_value) for d in dims) + ")"
    lines = [f"fomm-convert {sig.model} {sig.signature}"]
    if isinstance(metadata.get("description"), str):
        lines.append(metadata["description"])
    lines.append("inputs (float32, NHWC images): " + ", ".join(
        f"{v.name} {shape(v)}" for v in model.graph.input))
    lines.append("outputs: " + ", ".join(f"{v.name} {shape(v)}" for v in model.graph.output))
    lines.append(f"metadata: JSON in metadata_props['{METADATA_KEY}']")
    return "\n".join(lines)


def declare_io(sig: OnnxSignature, model: onnx.ModelProto) -> onnx.ModelProto:
    """Make the graph's interface exactly the signature's.

    The tracer drops inputs that the graph does not use (use_relative_jacobian of a model
    without jacobians): they are put back, unused, so that every model of a format takes
    the same inputs. Its symbolic shape inference also names output dimensions wrongly
    (an image height called "batch"): outputs are declared from a run of the module, the
    batch axis symbolic and the others static, and the intermediate shape annotations are
    dropped (onnx.checker's full check infers them again, and fails on any conflict)."""
    graph = model.graph
    declared = {v.name: v for v in graph.input}
    axes = sig.dynamic_axes()
    inputs = []
    for name, example in zip(sig.module.inputs, sig.example):
        if name in declared:
            value = onnx.ValueInfoProto()
            value.CopyFrom(declared[name])
        else:
            shape = [axes[name][0], *example.shape[1:]] if name in axes else []
            value = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)
        inputs.append(value)
    unknown = set(declared) - set(sig.module.inputs)
    if unknown:
        raise ValueError(f"{sig.stem}: unexpected graph inputs {sorted(unknown)}")
    del graph.input[:]
    graph.input.extend(inputs)

    with torch.no_grad():
        results = sig.module(*sig.example)
    if [o.name for o in graph.output] != list(sig.module.outputs):
        raise ValueError(f"{sig.stem}: graph outputs {[o.name for o in graph.output]}")
    del graph.output[:]
    graph.output.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                           [axes[name][0], *result.shape[1:]])
        for name, result in zip(sig.module.outputs, results))
    del graph.value_info[:]
    return model


def finish(sig: OnnxSignature, model: onnx.ModelProto, metadata: dict) -> onnx.ModelProto:
    """Fix the interface, attach metadata and doc_string, name the graph, validate."""
    declare_io(sig, model)
    model.graph.name = sig.stem
    model.doc_string = describe(sig, model, metadata)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(metadata, sort_keys=True, ensure_ascii=False)
    onnx.checker.check_model(model, full_check=True)
    foreign = sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node
                      if n.domain not in ("", "ai.onnx")})
    if foreign:
        raise ValueError(f"{sig.stem}: non-standard ops {foreign}")
    return model


def op_types(model: onnx.ModelProto) -> list[str]:
    return sorted({n.op_type for n in model.graph.node})


def export_onnx(spec: Spec, checkpoint, out_dir: Path, metadata: dict[str, dict]
                ) -> dict[str, Path]:
    """Write the five ONNX files of a spec and checkpoint into out_dir.

    checkpoint: a fomm_convert.checkpoint.Checkpoint (or a path to one). metadata maps a
    model name (kp_detector, process_kp_driving, generator) or a file stem
    (generator.encode_source, ...) to a JSON-able dict; a stem's entry wins over its
    model's. Returns {file stem: path}.
    """
    from ..checkpoint import Checkpoint, load_checkpoint
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(checkpoint)
    kp_detector, generator = build_models(spec)
    load_weights(kp_detector, checkpoint.kp_detector, f"{checkpoint.path}: kp_detector")
    load_weights(generator, checkpoint.generator, f"{checkpoint.path}: generator")
    # The detector stays in the reference structure, as in the TF export (converter/build.py).
    _, generator = fast_torch_models(spec, kp_detector, generator)
    models = []
    for sig in onnx_signatures(spec, kp_detector, generator):
        meta = metadata.get(sig.stem, metadata.get(sig.model, {}))
        json.dumps(meta)  # fail early on anything not JSON-able
        models.append((sig, finish(sig, to_onnx(sig), meta)))
    # The generator's three files hold the same weights (generate's and encode_source's
    # are subsets of the full generator's): one external data file for all three.
    weights = SharedWeights(WEIGHTS_FILE)
    for sig, model in models:
        if sig.model == "generator":
            weights.externalise(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / WEIGHTS_FILE, weights.data())
    paths = {}
    for sig, model in models:
        path = out_dir / FILES[sig.model, sig.signature]
        write_atomic(path, model.SerializeToString(deterministic=True))
        paths[sig.stem] = path
    return paths


class SharedWeights:
    """One external data file for several models: each distinct tensor stored once (by
    content), at a page-aligned offset so that onnxruntime can map it."""

    ALIGN = 4096
    MIN_BYTES = 1024  # smaller tensors (shapes, biases of small layers) stay inline

    def __init__(self, location: str):
        self.location = location
        self.chunks: list[bytes] = []
        self.size = 0
        self.offsets: dict[bytes, int] = {}

    def externalise(self, model: onnx.ModelProto):
        """Move the model's large initializers into this file (in place)."""
        for tensor in model.graph.initializer:
            data = tensor.raw_data
            if len(data) < self.MIN_BYTES:
                continue
            key = hashlib.sha256(data).digest()
            if key not in self.offsets:
                pad = -self.size % self.ALIGN
                self.chunks.append(b"\0" * pad)
                self.offsets[key] = self.size + pad
                self.chunks.append(data)
                self.size += pad + len(data)
            tensor.ClearField("raw_data")
            tensor.data_location = onnx.TensorProto.EXTERNAL
            del tensor.external_data[:]
            for name, value in (("location", self.location),
                                ("offset", str(self.offsets[key])), ("length", str(len(data)))):
                entry = tensor.external_data.add()
                entry.key, entry.value = name, value

    def data(self) -> bytes:
        return b"".join(self.chunks)
