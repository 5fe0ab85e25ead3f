"""The five graphs the ONNX export traces: torch wrappers with the I/O of the signatures
leaf (converter/signatures.py: names, shapes, batch roles), and their declarations
(example inputs, dynamic axes).

The wrappers take and give NHWC tensors, in the leaf's order. Source-side inputs (batch
role SOURCE: 1 or the driving batch) are broadcast to the driving batch in-graph. Another
family's wrappers (tpsmm/onnx_export.py) build on the same pieces: SignatureModule,
OnnxSignature, example_inputs and the layout helpers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..formats import onnx_file
from ..signatures import DRIVING, SOURCE, Signature, all_signatures
from ..spec import Spec
from ..torch_model.process_kp import ProcessKpDriving

# The ONNX name of the driving batch, shared by every DRIVING tensor.
DRIVING_AXIS = "batch"


def axis_names(contract: Signature) -> dict[str, str]:
    """{tensor name: the symbol of its batch axis} (flags have none).

    Each source-side input has its own symbol: each may be 1 beside a driving batch of N,
    independently of the others (docs/design.md, "Semantics"). Source-side outputs (encode_source's)
    are at the batch of the signature's one source input."""
    names = {t.name: DRIVING_AXIS if t.batch == DRIVING else f"{t.name}_batch"
             for t in contract.inputs if t.batch is not None}
    sources = [names[t.name] for t in contract.inputs if t.batch == SOURCE]
    for t in contract.outputs:
        if t.batch == SOURCE and len(sources) != 1:
            raise ValueError(f"{contract.model} {contract.name}: source-side output "
                             f"{t.name} beside {len(sources)} source inputs")
        names[t.name] = DRIVING_AXIS if t.batch == DRIVING else sources[0]
    return names


def nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def to_batch(x: torch.Tensor, batch) -> torch.Tensor:
    """A batch of 1 (or of `batch`) as a batch of `batch`: ONNX Expand broadcasts both.

    The other axes are kept with -1: with x's own sizes in the target shape, OpenVINO
    gives the batch of x (1), not `batch`."""
    return x.expand(batch, *[-1] * (x.dim() - 1))


class SignatureModule(nn.Module):
    """A model entry point with named inputs (positional, in `inputs` order) and outputs,
    those of its contract."""
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def __init__(self, contract: Signature):
        super().__init__()
        self.inputs, self.outputs = contract.input_names, contract.output_names

    def _kps(self, named: dict, batch) -> tuple[dict, dict]:
        """kp_driving and kp_source dicts of the reference; kp_source broadcast to batch."""
        driving = {"value": named["kp_driving"]}
        source = {"value": to_batch(named["kp_source"], batch)}
        if "kp_driving_jacobian" in named:
            driving["jacobian"] = named["kp_driving_jacobian"]
            source["jacobian"] = to_batch(named["kp_source_jacobian"], batch)
        return driving, source


class KPDetectorSignature(SignatureModule):
    def __init__(self, kp_detector, contract: Signature):
        super().__init__(contract)
        self.kp_detector = kp_detector

    def forward(self, image):
        out = self.kp_detector(nchw(image))
        return tuple(out[k] for k in self.outputs)


class ProcessKpSignature(SignatureModule):
    def __init__(self, num_kp: int, estimate_jacobian: bool, contract: Signature):
        super().__init__(contract)
        self.process = ProcessKpDriving(num_kp, estimate_jacobian)

    def forward(self, *args):
        named = dict(zip(self.inputs, args))
        out = self.process(
            named["kp_driving"], named.get("kp_driving_jacobian"), named["kp_driving_initial"],
            named.get("kp_driving_initial_jacobian"), named["kp_source"],
            named.get("kp_source_jacobian"), named["use_relative_movement"],
            named["use_relative_jacobian"], named["adapt_movement_scale"])
        return tuple(out[k] for k in self.outputs)


class GeneratorSignature(SignatureModule):
    """serving_default: the full generator with its diagnostic outputs.

    The source is encoded at its own batch and broadcast afterwards, as in the TF graph."""

    def __init__(self, generator, contract: Signature):
        super().__init__(contract)
        self.generator = generator
        occlusion = generator.dense_motion_network.occlusion is not None
        if occlusion != ("occlusion_map" in self.outputs):
            raise ValueError(f"the generator {'has' if occlusion else 'has no'} occlusion "
                             f"map, its signature says otherwise")

    def forward(self, *args):
        named = dict(zip(self.inputs, args))
        gen = self.generator
        batch = named["kp_driving"].shape[0]
        source = nchw(named["source_image"])
        features = to_batch(gen.encode(source), batch)
        down = to_batch(gen.dense_motion_network.downsample(source), batch)
        kp_driving, kp_source = self._kps(named, batch)
        motion = gen.dense_motion_network.motion(down, kp_driving, kp_source)
        out = {"prediction": nhwc(gen.decode(features, motion)),
               "mask": nhwc(motion["mask"]),
               "deformation": motion["deformation"],
               "sparse_deformed": motion["sparse_deformed"].permute(0, 1, 3, 4, 2),
               "deformed": nhwc(gen.deform(to_batch(source, batch), motion["deformation"]))}
        if "occlusion_map" in motion:
            out["occlusion_map"] = nhwc(motion["occlusion_map"])
        return tuple(out[k] for k in self.outputs)


class EncodeSourceSignature(SignatureModule):
    def __init__(self, generator, contract: Signature):
        super().__init__(contract)
        self.generator = generator

    def forward(self, source_image):
        source = nchw(source_image)
        return (nhwc(self.generator.encode(source)),
                nhwc(self.generator.dense_motion_network.downsample(source)))


class GenerateSignature(SignatureModule):
    def __init__(self, generator, contract: Signature):
        super().__init__(contract)
        self.generator = generator

    def forward(self, *args):
        named = dict(zip(self.inputs, args))
        batch = named["kp_driving"].shape[0]
        features = to_batch(nchw(named["source_features"]), batch)
        down = to_batch(nchw(named["source_down"]), batch)
        kp_driving, kp_source = self._kps(named, batch)
        return (nhwc(self.generator.generate(features, down, kp_driving, kp_source)),)


# ------------------------------------------------------------------------ declarations

@dataclass
class OnnxSignature:
    """One exported graph: its contract, module and example inputs."""
    contract: Signature
    module: SignatureModule
    example: tuple  # example inputs, in module.inputs order

    @property
    def model(self) -> str:  # kp_detector, process_kp_driving or generator
        return self.contract.model

    @property
    def signature(self) -> str:  # serving_default, encode_source or generate
        return self.contract.name

    @property
    def stem(self) -> str:
        return Path(onnx_file(self.model, self.signature)).stem

    def dynamic_axes(self) -> dict:
        """{tensor name: {0: axis name}} of every batched input, then output."""
        return {name: {0: axis} for name, axis in axis_names(self.contract).items()}


def example_inputs(contract: Signature, driving_batch=2) -> tuple:
    """Deterministic example inputs (the trace does not depend on their values)."""
    rng = np.random.default_rng(0)
    out = []
    for t in contract.inputs:
        if t.batch is None:
            out.append(torch.tensor(1.0))
            continue
        shape = tuple(t.full_shape(driving_batch if t.batch == DRIVING else 1))
        if t.name.endswith("_jacobian"):
            value = np.eye(2) + 0.1 * rng.standard_normal(shape)
        elif t.name.startswith("kp_"):
            value = rng.uniform(-0.8, 0.8, shape)
        else:
            value = rng.uniform(0, 1, shape)
        out.append(torch.from_numpy(value.astype(np.float32)))
    return tuple(out)


def onnx_signatures(spec: Spec, kp_detector, generator) -> list[OnnxSignature]:
    """The five graphs of a model pair (modules in eval mode, weights loaded), in the
    signatures leaf's order."""
    wrappers = {
        ("kp_detector", "serving_default"): lambda c: KPDetectorSignature(kp_detector, c),
        ("process_kp_driving", "serving_default"):
            lambda c: ProcessKpSignature(spec.num_kp, spec.estimate_jacobian, c),
        ("generator", "serving_default"): lambda c: GeneratorSignature(generator, c),
        ("generator", "encode_source"): lambda c: EncodeSourceSignature(generator, c),
        ("generator", "generate"): lambda c: GenerateSignature(generator, c),
    }
    return [OnnxSignature(c, wrappers[c.model, c.name](c).eval(), example_inputs(c))
            for c in all_signatures(spec)]
