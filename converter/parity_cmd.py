"""`fomm-convert parity`: the TF graph against the torch reference, layer by layer."""
from __future__ import annotations

from pathlib import Path

import click

from .paths import ARTIFACTS


@click.command("parity")
@click.option("--config", required=True, help="Spec name/path or original-format config.")
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False))
@click.option("--report", "report_dir", type=click.Path(file_okay=False),
              help="Where report.json and report.md go (default artifacts/parity/<name>).")
def parity_command(config, checkpoint, report_dir):
    """Per-layer parity of the TF graph with the torch reference; exit 1 on failure."""
    from fomm_convert.parity.layers import layer_parity

    from .checkpoint import CheckpointError, load_checkpoint
    from .spec import SpecError, load_spec
    from .tf_model.process_kp import ProcessKpDriving
    from .tf_model.weights import WeightTableError, build_tf_models
    try:
        spec = load_spec(config)
        ckpt = load_checkpoint(checkpoint)
        kp_detector, generator = build_tf_models(spec, ckpt)
    except (SpecError, CheckpointError, WeightTableError) as exc:
        raise click.ClickException(str(exc))
    report = layer_parity(spec, ckpt, kp_detector,
                          ProcessKpDriving(spec.num_kp, spec.estimate_jacobian), generator)
    out = Path(report_dir) if report_dir else ARTIFACTS / "parity" / spec.name
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "report.json")
    report.write_markdown(out / "report.md", title=f"Per-layer parity: {spec.name}")
    worst = max((l for l in report.layers if l.max_abs is not None), key=lambda l: l.max_abs)
    click.echo(f"{len(report.layers)} layers; worst {worst.name} max abs {worst.max_abs:.2e}; "
               f"report {out / 'report.md'}")
    if not report.passed:
        raise click.ClickException(f"parity FAILED, first divergence {report.first_divergence}")
    click.echo("parity passed")
