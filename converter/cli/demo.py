"""`fomm-convert demo`."""
from __future__ import annotations

import click


@click.command("demo")
@click.option("--dataset", default="vox", show_default=True, help="Dataset spec to demo.")
def demo_command(dataset):
    """Build (once) and verify a bundle, then animate a drawn face with it."""
    from ..pipeline.demo import demo
    demo(dataset)
