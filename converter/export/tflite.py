"""TFLite export: every signature of the three SavedModels, builtin ops only, with metadata.

    sources = tflite_sources(spec, savedmodel_dir, kp_detector, scratch)
    paths = export_tflite(sources, out_dir, "fp16", metadata, family=family_of(spec))

Files: out_dir/<model>.tflite (float32), <model>.fp16.tflite (float16 weights, computed
in float32 on CPU) and, opt-in, <model>.int8.tflite (dynamic-range int8 weights); the
static variants <model>.static[.fp16].tflite hold the same signatures with every batch
dimension 1, for runtimes that cannot resize inputs (LiteRT.js, GPU delegates). In the
reduced variants the family's float32_only models (families.py; FOMM's keypoint detector
and normalisation) are converted as float32, in files named after the variant, and the
family's reduced_networks models (TPSMM's generator) are the float32 conversion with only
the named networks' weights stored as float16, or their kernels as int8
(tflite_reduced). Each file
carries the SavedModel's signatures with the same signature, input and output names, and
the caller's metadata as UTF-8 JSON in a named `Model.metadata` entry
(formats.METADATA_NAME) which interpreters ignore. The TFLite converter is deterministic
for a given SavedModel (the `CONVERSION_METADATA` it adds holds the TF version and a
structural hash, no time; `min_runtime_version` is derived from the ops; both are kept),
and so is our rewrite of the flatbuffer (tflite_file): the same SavedModel and metadata
give byte-identical files. Files are written atomically. Reading them back needs no
tensorflow: tflite_file, tflite_ops.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping

from ..formats import METADATA_NAME, effective_precision, tflite_filename
from ..io import write_atomic
from ..signatures import MODELS, signatures
from .tflite_file import metadata_bytes, tflite_signatures, with_metadata
from .tflite_reduced import STORAGES, reduced_weights
from .tflite_ops import op_report


class TFLiteExportError(RuntimeError):
    """A conversion that would not give a builtin-ops-only file with the right signatures."""


# ------------------------------------------------------------------------------ export
def tflite_sources(spec, savedmodel_dir: Path, kp_detector, scratch: Path) -> dict[str, Path]:
    """The SavedModels the TFLite files are converted from: savedmodel_dir/<model>/, but for
    the keypoint detector, which is written under scratch with its convolutions summed in
    chunks (tf_model/accumulation.py: TFLite's kernels accumulate term by term, and the
    detector's keypoints need every digit). kp_detector: the reference-structured model
    the SavedModel's was made from (its variables are shared, not copied)."""
    from ..tf_model.accumulation import KP_DETECTOR_CHUNK, chunked_accumulation
    from ..tf_model.functions import kp_detector_function
    from .savedmodel import export_savedmodels

    detector = chunked_accumulation(kp_detector, KP_DETECTOR_CHUNK)
    signature = signatures(spec)["kp_detector"]["serving_default"]
    sources = {model: Path(savedmodel_dir) / model for model in MODELS}
    sources.update(export_savedmodels(
        {"kp_detector": (detector, {"serving_default": kp_detector_function(detector,
                                                                             signature)})},
        Path(scratch)))
    return sources


def static_tflite_sources(spec, kp_detector, generator, scratch: Path) -> dict[str, Path]:
    """Batch-1 SavedModels of the three models, under scratch: the static files' sources
    (the detector chunked as in tflite_sources; generator: the exported fast graph)."""
    from ..tf_model.accumulation import KP_DETECTOR_CHUNK, chunked_accumulation
    from ..tf_model.functions import model_functions
    from .savedmodel import export_savedmodels

    detector = chunked_accumulation(kp_detector, KP_DETECTOR_CHUNK)
    return export_savedmodels(model_functions(spec, detector, generator, batch=1),
                              Path(scratch))


def export_tflite(sources: Path | Mapping[str, Path], out_dir: Path, precision: str,
                  metadata: Mapping[str, dict], static: bool = False, *,
                  family, networks: Mapping | None = None,
                  cache: Path | None = None) -> dict[str, Path]:
    """Convert each model's SavedModel into out_dir/<model>[.static][.fp16|.int8].tflite
    (static: the sources have batch 1, static_tflite_sources); family: the model family
    (families.Family) whose models they are.

    In the fp16 and int8 variants, a model the family lists in reduced_networks stores
    only those networks' weights as float16 (int8: their kernels as int8), every other
    constant float32 (tflite_reduced; networks: the checkpoint's {network: state dict});
    its other models go through the converter's float16 or dynamic-range int8 pass but
    the float32_only ones. cache: a folder (a build's scratch) keeping each
    SavedModel's float32 conversion for the other variants made from it in the build:
    the converter is deterministic, so the files are those a conversion of their own gives.

    sources: {model: SavedModel directory} (tflite_sources), or one directory holding
    <model>/ for each model.

    `metadata[model]` (JSON-able) is embedded as METADATA_NAME, with `variant` (the
    file's precision suffix) and `precision` (what the file really holds: float32 for the
    family's float32_only models) added unless the caller set them. Raises TFLiteExportError when a
    model would need select-TF (Flex) or custom ops, or when the file's signatures differ
    from the SavedModel's.
    """
    models = family.models
    tflite_filename(models[0], precision)  # validates the precision
    if not isinstance(sources, Mapping):
        sources = {model: Path(sources) / model for model in models}
    missing = [m for m in models if m not in metadata or m not in sources]
    if missing:
        raise ValueError(f"no metadata or SavedModel for {', '.join(missing)}")
    effective = {m: effective_precision(m, precision, family) for m in models}
    payloads = {m: metadata_bytes({"variant": precision, "precision": effective[m],
                                   **metadata[m], **(static_metadata(m, metadata[m])
                                                     if static else {})}) for m in models}
    converted = {}
    for model in models:  # convert all before writing any
        source = Path(sources[model])
        flatbuffer = _convert(source, effective[model], family.reduced_networks.get(model),
                              networks, cache)
        flatbuffer = with_metadata(flatbuffer, {METADATA_NAME: payloads[model]})
        expected, found = savedmodel_signatures(source), tflite_signatures(flatbuffer)
        differ = sorted(k for k in set(expected) | set(found)
                        if _canonical(found.get(k)) != _canonical(expected.get(k)))
        if differ:
            raise TFLiteExportError(
                f"{model}: TFLite signatures differ from the SavedModel's: " + "; ".join(
                    f"{k}: {found.get(k)} != {expected.get(k)}" for k in differ))
        converted[model] = flatbuffer
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {model: write_atomic(out_dir / tflite_filename(model, precision, static),
                                flatbuffer)
            for model, flatbuffer in converted.items()}


def static_metadata(model: str, metadata: dict) -> dict:
    """What a static file says differently: batch 1 in every shape."""
    return {"batch": "static: every batch dimension is 1; call once per frame",
            "signatures": {name: {side: [{**row, "shape": [1, *row["shape"][1:]]
                                          if row["shape"][:1] == ["B"] else row["shape"]}
                                         for row in rows] for side, rows in sig.items()}
                           for name, sig in metadata["signatures"].items()}}


def _convert(source: Path, precision: str, reduced_networks, networks, cache) -> bytes:
    """A model's flatbuffer in a variant (export_tflite)."""
    if precision in STORAGES and reduced_networks:
        weights = [w for net in reduced_networks for w in networks[net].values()]
        return reduced_weights(_float32(source, cache), weights, precision)
    return _float32(source, cache) if precision == "fp32" else convert_savedmodel(source,
                                                                                  precision)


def _float32(source: Path, cache: Path | None) -> bytes:
    """convert_savedmodel(source, "fp32"), once per source when a cache folder is given."""
    if cache is None:
        return convert_savedmodel(source, "fp32")
    Path(cache).mkdir(parents=True, exist_ok=True)
    kept = Path(cache) / hashlib.sha256(str(Path(source).resolve()).encode()).hexdigest()
    if not kept.exists():
        write_atomic(kept, convert_savedmodel(source, "fp32"))
    return kept.read_bytes()


def convert_savedmodel(path: Path, precision: str) -> bytes:
    """One SavedModel (all its signatures) -> TFLite flatbuffer, builtin ops only."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(path), signature_keys=sorted(savedmodel_signatures(path)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = False
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":  # dynamic range: int8 weights, float activations
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        flatbuffer = converter.convert()
    except Exception as exc:  # ConverterError; the message lists the offending ops
        raise TFLiteExportError(f"{path.name}: conversion with builtin ops only failed: "
                                f"{exc}") from exc
    foreign = sorted({row["op"] for row in op_report(flatbuffer) if not row["builtin"]})
    if foreign:
        raise TFLiteExportError(f"{path.name}: non-builtin ops {', '.join(foreign)}")
    return flatbuffer


def savedmodel_signatures(path: Path) -> dict:
    """{signature: {"inputs": [(name, shape)], "outputs": [...]}} from saved_model.pb."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((Path(path) / "saved_model.pb").read_bytes())

    def tensors(infos):
        return [(name, tuple(d.size for d in info.tensor_shape.dim))
                for name, info in sorted(infos.items())]
    return {key: {"inputs": tensors(sig.inputs), "outputs": tensors(sig.outputs)}
            for key, sig in sorted(saved.meta_graphs[0].signature_def.items())
            if not key.startswith("__")}


def _canonical(signature: dict | None):
    """Inputs and outputs as sorted (name, shape) lists: the order in a file is no contract."""
    return None if signature is None else {k: sorted(v) for k, v in signature.items()}
