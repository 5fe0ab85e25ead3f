"""What an artifact or a checkpoint holds (`fomm-convert inspect`).

- `inspect FILE.tflite|FILE.onnx`: the metadata and signatures, read by our own readers
  (no runtime parses the file; no TensorFlow, torch or onnx package).
- `inspect --config C --checkpoint K`: every checkpoint tensor, the weight-table rule that
  took it (or dropped it) and its TF variable, plus the ignored top-level entries.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import FommError
from ..formats import METADATA_NAME, ONNX_WEIGHTS_FILE


def describe_artifact(path: Path) -> dict:
    if not path.is_file():
        raise FommError(f"{path}: no such file")
    if path.suffix == ".tflite":
        from ..export.tflite_file import read_tflite_metadata, tflite_signatures
        from ..export.tflite_ops import op_report
        ops = op_report(path)  # a junk file: TFLiteFileError, one line
        try:
            metadata = read_tflite_metadata(path)
        except KeyError:
            metadata = None  # not one of ours: its signatures and ops are still worth showing
        return {"file": str(path), "metadata": metadata,
                "signatures": tflite_signatures(path), "ops": ops}
    if path.suffix == ".onnx":
        return _describe_onnx(path)
    raise FommError(f"{path}: not a .tflite or .onnx file")


def _describe_onnx(path: Path) -> dict:
    """Read by our own protobuf walk (no runtime parses it), after the ONNX gate's checks
    of the file (standard domains; external data only from generator.weights beside it)."""
    from ..bundle.artifacts import metadata_json, read_onnx
    from ..bundle.models_check.onnx import check_onnx_file
    facts = read_onnx(path)
    weights = path.parent / ONNX_WEIGHTS_FILE
    check_onnx_file(path, weights.stat().st_size if weights.is_file() else None, facts)
    props = dict(facts.metadata)
    raw = props.pop(METADATA_NAME, None)  # none: not one of ours, still worth showing
    metadata = None if raw is None else metadata_json(path, raw)
    return {"file": str(path), "metadata": metadata, "other_metadata": props,
            "description": facts.description, "inputs": facts.inputs,
            "outputs": facts.outputs}


def describe_checkpoint(config: str, checkpoint: str) -> str:
    from ..checkpoint import load_checkpoint
    from ..families import family_of
    from ..spec import load_spec

    spec = load_spec(config)
    convert = family_of(spec).facet("convert")
    ckpt = load_checkpoint(checkpoint, family=spec.family)
    try:
        reports = convert.weight_reports(spec, ckpt)
    except Exception as exc:
        misfit = convert.misfit(exc, spec, ckpt.path)
        if misfit is None:
            raise
        raise misfit from None
    lines = [f"{ckpt.path}  sha256 {ckpt.sha256}"
             f"{'  (SYNTHETIC weights)' if ckpt.synthetic else ''}",
             f"ignored entries: {', '.join(ckpt.ignored) or 'none'}"]
    for net, report in reports.items():
        lines.append(f"\n{report.summary()}")
        for e in report.entries:
            target = f"{e.tf_path} ({e.transform})" if e.dropped is None \
                else f"dropped: {e.dropped}"
            lines.append(f"  {e.torch_key:64s} {str(tuple(e.torch_shape)):18s} "
                         f"{e.rule:18s} {target}")
    return "\n".join(lines)
