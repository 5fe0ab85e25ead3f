"""The fomm-convert command line: each command parses, calls one function, reports."""
from __future__ import annotations

import sys

import click

from . import __version__


class UserError(click.ClickException):
    """An error the user can act on, printed as one line."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fomm-convert")
def cli():
    """Convert First Order Motion Model checkpoints into verified deployment artifacts."""


def main():
    cli(prog_name="fomm-convert")


if __name__ == "__main__":
    sys.exit(main())
