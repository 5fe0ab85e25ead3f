"""The fomm-convert command line: each command parses its options, makes one call into the
pipeline below it, and reports.

Commands are imported only when they run, so that `fomm-convert --help` and the lite
commands never import torch or TensorFlow. Every error a user can cause is a FommError and
is reported as one line.
"""
from __future__ import annotations

import importlib

import click

from ..version import __version__
from ..errors import FommError, one_line

COMMANDS = {
    "synth": "synth:synth_command",
    "predict": "predict:predict_command",
    "demo": "demo:demo_command",
    "build": "build:build_command",
    "build-all": "build_all:build_all_command",
    "verify": "verify:verify_command",
    "inspect": "inspect:inspect_command",
    "parity": "parity:parity_command",
    "animate": "animate:animate_command",
    "reconstruct": "animate:reconstruct_command",
    "bench": "bench:bench_command",
}
# What each command does, for `--help` without importing it.
SUMMARIES = {
    "synth": "Write a seeded synthetic checkpoint with the original FOMM layout.",
    "predict": "Run one backend on an oracle-style NPZ and write the oracle's arrays.",
    "demo": "Build (once) and verify a bundle, then animate a drawn face with it.",
    "build": "Convert a checkpoint into a verified release bundle.",
    "build-all": "Build every dataset whose checkpoint is in checkpoints/.",
    "verify": "Recheck a bundle's files against its manifest and rerun its parity checks.",
    "inspect": "Show an artifact's metadata and signatures, or a checkpoint's mapping.",
    "parity": "Per-layer parity of the TF graph with the torch reference.",
    "animate": "Animate a source image with the motion of a driving video.",
    "reconstruct": "Animate a video's first frame with the video; report the L1 error.",
    "bench": "Time every format of a bundle against PyTorch eager.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)

    def format_commands(self, ctx, formatter):
        """The command list from SUMMARIES: listing commands imports none of them."""
        rows = [(name, SUMMARIES[name]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FommError as exc:
            raise click.ClickException(one_line(exc)) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fomm-convert")
def cli():
    """Convert First Order Motion Model checkpoints into verified deployment artifacts."""


def main():
    cli(prog_name="fomm-convert")
