"""The model families, one registry row each: what a spec's `family` field selects.

A row holds a family's facts (its artifact models and their signatures, the checkpoint
entries holding its inference networks, the licence of its official weights, the formats
`build` can make of it) and the package that implements the interface below. The
pipeline, bundle, runtimes, parity and animation ask the row; none of them branches on a
family's name. A third family is a package implementing INTERFACE and a row here
(docs/design.md, "Model families"; tests/test_layout.py holds the walls).

FOMM's code lives where it always has (torch_model/, tf_model/, signatures.py, ...); its
package, fomm/, is thin modules pointing at it. TPSMM's lives in tpsmm/.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from types import ModuleType
from typing import Mapping

from .errors import FommError, shown
from .formats import FORMAT_NAMES, FORMATS
from .signatures import SIGNATURE_NAMES
from .tpsmm.architecture import NETWORKS as TPSMM_NETWORKS
from .tpsmm.signatures import SIGNATURE_NAMES as TPSMM_SIGNATURE_NAMES


@dataclass(frozen=True)
class Facet:
    provides: str  # what the module defines
    layer: str  # the shared package whose layer it sits in (tests/test_layout.py)
    missing: str  # what a family without the module cannot do, for the one-line error


# The interface: module of a family package -> Facet. Every family implements all but
# `convert` (a family without it has no formats yet).
INTERFACE = {
    "spec": Facet("SETTINGS, MARKER (the common param of its upstream configs), "
                  "DEFAULT_FRAME_SHAPE, resolve(path, data, frame_shape, original) -> "
                  "spec.SpecParts, model_params(params)", "spec", "a spec"),
    "signatures": Facet("MODELS, SIGNATURE_NAMES, signatures(spec) -> {model: {name: "
                        "Signature}}, ROLES (model -> what it does)", "signatures",
                        "signatures"),
    "synth": Facet("make_checkpoint(spec, seed): a seeded checkpoint in the original's "
                   "layout", "synth", "synthetic checkpoints"),
    "runtime": Facet("CHECKPOINT_BACKENDS: backend name -> 'module:Class' of the backends "
                     "that run a checkpoint; SignatureCalls: the family's model calls over "
                     "`call(model, signature, inputs)`, which every bundle backend offers "
                     "for the family's bundles", "runtime", "a checkpoint backend"),
    "predict": Facet("predict(backend, source, driving, batch_size, positions): the oracle "
                     "contract's arrays", "pipeline", "predict"),
    "animation": Facet("OPTIONS (animation.options.Option: animate's options of the "
                       "family), KEYPOINT_GROUP (keypoints drawn in one colour), "
                       "defaults(spec), mode(spec, **options), reconstruction_mode(spec): "
                       "how the animate loop normalises keypoints (and the mode's "
                       "frames_per_call(default): its batch when none is asked for)", "animation", "animation"),
    "convert": Facet("make(...), misfit(error, spec, path), weight_reports(spec, "
                     "checkpoint), layer_report(spec, checkpoint), reference(spec, "
                     "checkpoint) and format_parity(reference, candidate, frame_shape, "
                     "profile): the TF graph, its weight table, per-layer and end-to-end "
                     "parity and the exporters", "pipeline",
                     "conversion (the TF graph, its weight table, the exporters)"),
}


@dataclass(frozen=True)
class Licence:
    """The licence and attribution of a family's official weights."""
    paper: str
    repository: str
    spdx: str
    url: str


@dataclass(frozen=True)
class Family:
    name: str  # the spec's `family`
    title: str  # in messages
    long_name: str  # the model's name in its paper
    package: str  # the package implementing INTERFACE, under fomm_convert
    signature_names: dict  # model -> its signatures' names; models in export order
    networks: tuple[str, ...]  # the checkpoint entries inference reads, in build order
    licence: Licence
    formats: tuple[str, ...]  # the formats `build` can make of it
    # Models whose files stay float32 in the reduced-precision TFLite variants
    # (formats.effective_precision).
    float32_only: frozenset = frozenset()
    # Model -> the checkpoint networks whose weights alone its fp16 files store as float16
    # and its int8 files (their kernels) as int8 (export/tflite_reduced.py: every other
    # constant stays float32); a model not listed goes through the TFLite converter's
    # float16 or dynamic-range int8 pass, which reduces every float constant.
    reduced_networks: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    # Whether the browser page and runtimes (web/, runtime/browser/) run its bundles.
    web: bool = True

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.signature_names)

    @property
    def default_formats(self) -> tuple[str, ...]:
        """What `build` makes when no format is asked for: the default ones it has."""
        return tuple(name for name in self.formats if FORMATS[name].default)

    def facet(self, name: str) -> ModuleType:
        """The family package's module `name` of INTERFACE (imported now); a FamilyError
        when the family does not implement it yet."""
        facet = INTERFACE[name]
        module = f"fomm_convert.{self.package}.{name}"
        if importlib.util.find_spec(module) is None:
            raise FamilyError(f"{self.title} models: {facet.missing} is not "
                              f"available yet")
        return importlib.import_module(module)

    def signatures(self, spec) -> dict:
        return self.facet("signatures").signatures(spec)


FAMILIES = {f.name: f for f in (
    Family("fomm", "FOMM", "First Order Motion Model", "fomm", SIGNATURE_NAMES,
           ("generator", "kp_detector"),
           Licence("Aliaksandr Siarohin, Stéphane Lathuilière, Sergey Tulyakov, Elisa Ricci, "
                   "Nicu Sebe. First Order Motion Model for Image Animation. NeurIPS 2019.",
                   "https://github.com/AliaksandrSiarohin/first-order-model", "CC-BY-NC-4.0",
                   "https://creativecommons.org/licenses/by-nc/4.0/"),
           FORMAT_NAMES,
           # process_kp_driving has no weights to shrink, and the float16 pass rounds every
           # float constant, including its hull grid scale 2**16 (-> 65504): normalised
           # keypoints moved by 3e-2 on the tiny oracle. The detector stays float32 in both
           # reduced variants: its temperature-0.1 softmax turns weight rounding into
           # keypoint error, which every warped pixel inherits. With float16 weights its
           # vox-256 keypoints were 7.7e-3 off the original, the absolute-mode frames 2.2e-2
           # and sparse_deformed 7.0e-2 (vox-512: 6.0e-2, 8.5e-2, and the build's chained
           # frame 1.4e-2 failed its gate); any one hourglass block rounded alone moves them
           # 8e-4 to 6e-3, so none can be spared. Float32 costs 28.5 MB on vox (the fp16
           # variant's detector file 28.6 -> 57.1 MB) and no time (XNNPACK computes in
           # float32 either way: 36 ms per call at 1 thread, both). int8 moved keypoints by
           # 0.075 on vox-256; the detector is 2.6 of ~110 GFLOP per frame.
           frozenset({"process_kp_driving", "kp_detector"})),
    Family("tpsmm", "TPSMM", "Thin-Plate Spline Motion Model", "tpsmm", TPSMM_SIGNATURE_NAMES,
           TPSMM_NETWORKS,
           Licence("Jian Zhao, Hui Zhang. Thin-Plate Spline Motion Model for Image "
                   "Animation. CVPR 2022.",
                   "https://github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model", "MIT",
                   "https://opensource.org/licenses/MIT"),
           # The float16 variants store only the inpainting network's weights as float16
           # (reduced_networks below): with the converter's float16 pass, which rounds
           # every constant, tiny-rect's avd frame was 1.09e-2 from the float64 reference
           # at the build's gate (> 1e-2): the dense motion network's weights alone moved
           # it 4.6e-3, the generator's biases, norms and anti-alias kernels with the TPS
           # regularisation 3.1e-3. With every constant but the inpainting weights
           # float32: 8.0e-4 (relative 9.4e-4, standard 1.0e-3), 6.6e-4 from the original,
           # dense motion's outputs the float32 file's (docs/performance.md). The cost:
           # dense motion's bytes stay float32 (on vox 38 of the generator's 63 M values).
           # The int8 variant (opt-in, as FOMM's) stores only the inpainting network's
           # kernels as int8 (per output channel, read into float32 by DEQUANTIZE): the
           # converter's dynamic-range pass, which quantizes every network's weights and
           # computes with int8 activations, moved the avd frame by 0.22 (its profile: 0.1).
           ("savedmodel", "tflite", "tflite-fp16", "tflite-int8", "onnx", "tflite-static",
            "tflite-static-fp16"),
           # Its keypoint models, as FOMM's (issue 21: keypoints within float32's 1e-5 in
           # every variant); the AVD network's output is keypoints too.
           frozenset({"kp_detector", "process_kp_driving", "avd_network"}),
           reduced_networks={"generator": ("inpainting_network",)}),
)}
# The family of a spec that names none: every spec and bundle from before families.
DEFAULT = "fomm"


class UnknownFamily(ValueError):
    """A family name the registry does not hold."""


class FamilyError(FommError):
    """What a model family does not implement yet (one line)."""


def family(name: str) -> Family:
    """The row of a family's name (UnknownFamily naming the known ones)."""
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):  # a name from a file may be anything
        raise UnknownFamily(f"unknown model family {shown(name)} (known: "
                            f"{', '.join(FAMILIES)})") from None


def family_of(spec) -> Family:
    return family(spec.family)


def family_of_record(spec_record: dict) -> Family:
    """The family of a resolved spec as a manifest records it (Spec.to_dict: the default
    family is not written)."""
    return family(spec_record.get("family", DEFAULT))
