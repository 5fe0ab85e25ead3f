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
    "synth": "fomm_convert.synth:synth_command",
    "predict": "fomm_convert.predict:predict_command",
    "demo": "fomm_convert.demo:demo_command",
    "build": "fomm_convert.build:build_command",
    "build-all": "fomm_convert.build_all:build_all_command",
    "verify": "fomm_convert.verify:verify_command",
    "inspect": "fomm_convert.inspect_cmd:inspect_command",
    "parity": "fomm_convert.parity_cmd:parity_command",
    "animate": "fomm_convert.animate:animate_command",
    "reconstruct": "fomm_convert.animate:reconstruct_command",
    "bench": "fomm_convert.bench:bench_command",
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
