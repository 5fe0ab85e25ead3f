"""The build's parity reports: one-line verdicts, the manifest's summary, the bundle's
parity/ and tflite/ops pages, and the report left beside a failed bundle."""
from __future__ import annotations

from pathlib import Path

from ..formats import tflite_filename
from ..io import write_json


def verdict(report) -> str:
    counts = report.summary()
    if report.passed:
        return f"pass ({counts['layers']} checks)"
    return f"FAIL at {report.first_divergence} ({counts['counts']})"


def summary(report) -> dict:
    worst = {}
    for layer in report.layers:
        if layer.max_abs is not None and layer.stage:
            worst[layer.stage] = max(worst.get(layer.stage, 0.0), float(layer.max_abs))
    return {"profile": report.profile, "passed": report.passed,
            "checks": len(report.layers), "max_abs_by_stage": {
                k: float(f"{v:.3g}") for k, v in sorted(worst.items())}}


def _markdown(reports: dict, title) -> str:
    return "\n\n".join(r.to_markdown(title=title(name)) for name, r in reports.items()) + "\n"


def write_reports(root: Path, reports: dict, weight_reports: dict, tflite_formats, models):
    """parity/report.{json,md}, parity/weights.json and, with TFLite files, tflite/ops.*."""
    parity = root / "parity"
    parity.mkdir()
    write_json(parity / "report.json", {name: r.to_dict() for name, r in reports.items()})
    (parity / "report.md").write_text(_markdown(reports, lambda name: (
        f"Parity: {'per layer, TF graph' if name == 'layers' else name} vs the torch reference")))
    write_json(parity / "weights.json", {net: r.to_dict() for net, r in weight_reports.items()})
    if tflite_formats:
        from ..export.tflite_ops import op_report, op_report_markdown
        # The float32 files, dynamic and static (the GPU delegates' files): by file name.
        names = [tflite_filename(model, "fp32", static) for static in (False, True)
                 for model in models]
        ops = {name: op_report(root / "tflite" / name) for name in names
               if (root / "tflite" / name).exists()}
        if ops:
            write_json(root / "tflite" / "ops.json", ops)
            (root / "tflite" / "ops.md").write_text(op_report_markdown(ops))


def fail(final: Path, reports: dict, error):
    """Leave a readable report beside where the bundle would have been, and raise
    error(message, report path)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    stem = final.parent / f"{final.name}.parity-failed"
    write_json(Path(f"{stem}.json"), {name: r.to_dict() for name, r in reports.items()})
    Path(f"{stem}.md").write_text(_markdown(reports, lambda name: f"Parity: {name}"))
    failed = [f"{name} at {r.first_divergence}" for name, r in reports.items() if not r.passed]
    raise error(f"parity failed ({'; '.join(failed)}): no bundle written; report {stem}.md",
                Path(f"{stem}.md"))
