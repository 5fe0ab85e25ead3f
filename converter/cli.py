"""The fomm-convert command line.

Each command lives beside the code it drives and is imported only when it runs, so that
`fomm-convert --help` and the lite commands never import torch or tensorflow.
"""
from __future__ import annotations

import importlib
import sys

import click

from . import __version__

COMMANDS = {
    "synth": "converter.synth:synth_command",
    "predict": "converter.predict:predict_command",
    "demo": "converter.demo:demo_command",
    "build": "converter.build:build_command",
    "build-all": "converter.build_all:build_all_command",
    "verify": "converter.verify:verify_command",
    "inspect": "converter.inspect_cmd:inspect_command",
    "parity": "converter.parity_cmd:parity_command",
    "animate": "converter.animate:animate_command",
    "reconstruct": "converter.animate:reconstruct_command",
    "bench": "converter.bench:bench_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fomm-convert")
def cli():
    """Convert First Order Motion Model checkpoints into verified deployment artifacts."""


def main():
    cli(prog_name="fomm-convert")


if __name__ == "__main__":
    sys.exit(main())
