"""The TF graph of a checkpoint against the torch reference, layer by layer, with reports."""
from __future__ import annotations

from pathlib import Path

from ..paths import ARTIFACTS


def layer_check(config, checkpoint, report_dir: Path | None = None):
    """(ParityReport, the folder its report.json and report.md were written to)."""
    from ..checkpoint import load_checkpoint
    from ..parity.layers import layer_parity
    from ..spec import load_spec
    from ..tf_model.process_kp import ProcessKpDriving
    from ..tf_model.weights import build_tf_models

    spec = load_spec(config)
    ckpt = load_checkpoint(checkpoint)
    kp_detector, generator = build_tf_models(spec, ckpt)
    report = layer_parity(spec, ckpt, kp_detector,
                          ProcessKpDriving(spec.num_kp, spec.estimate_jacobian), generator)
    out = report_dir or ARTIFACTS / "parity" / spec.name
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "report.json")
    report.write_markdown(out / "report.md", title=f"Per-layer parity: {spec.name}")
    return report, out
