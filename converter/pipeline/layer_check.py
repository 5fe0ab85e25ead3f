"""The TF graph of a checkpoint against the torch reference, layer by layer, with reports."""
from __future__ import annotations

from pathlib import Path

from ..paths import ARTIFACTS


def layer_check(config, checkpoint, report_dir: Path | None = None):
    """(ParityReport, the folder its report.json and report.md were written to)."""
    from ..checkpoint import load_checkpoint
    from ..families import family_of
    from ..spec import load_spec

    spec = load_spec(config)
    convert = family_of(spec).facet("convert")
    report = convert.layer_report(spec, load_checkpoint(checkpoint, family=spec.family))
    out = report_dir or ARTIFACTS / "parity" / spec.name
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "report.json")
    report.write_markdown(out / "report.md", title=f"Per-layer parity: {spec.name}")
    return report, out
