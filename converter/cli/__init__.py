"""The fomm-convert command line: each command parses its options, makes one call into the
pipeline below it, and reports.

A command's module is imported when it is named (or listed by --help); it imports the
pipeline only when it runs, so `fomm-convert --help` and the lite commands never import
torch or TensorFlow. Every error a user can cause is a FommError, reported as one line
(a missing optional package names the extra to install); what is accepted but probably
wrong (a FommWarning) is one "warning:" line.
"""
from __future__ import annotations

import importlib
import warnings

import click

from ..errors import FommError, FommWarning, one_line
from ..extras import extras_named
from ..version import __version__
from .quiet import quiet_native_logs

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
    "animate-many": "animate_many:animate_many_command",
    "bench": "bench:bench_command",
    "web": "web:web_command",
}
# Ctrl-C: the shell's convention for a process ended by SIGINT (128 + 2).
INTERRUPTED = 130


def _show_warning(verbose: bool):
    """Our warnings as one line each; a library's (Pillow, TF, ...) only with --verbose."""
    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, FommWarning):
            click.echo(f"warning: {message}", err=True)
        elif verbose:
            click.echo(f"{filename}:{lineno}: {category.__name__}: {message}", err=True)
    return show


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)

    def invoke(self, ctx):
        verbose = bool(ctx.params.get("verbose"))
        # The command's name, before click resolves it (click 8.5 keeps it here).
        command = " ".join(getattr(ctx, "_protected_args", [])[:1])
        try:
            with warnings.catch_warnings(), quiet_native_logs(not verbose), \
                    extras_named(f"fomm-convert {command}".strip()):
                warnings.simplefilter("always" if verbose else "default")
                warnings.showwarning = _show_warning(verbose)
                return super().invoke(ctx)
        except FommError as exc:
            raise click.ClickException(one_line(exc)) from None
        except OSError as exc:  # a file the user named, or a full or read-only disk
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or one_line(exc)}") from None
        except KeyboardInterrupt:  # whatever was being written has been removed on the way
            click.echo("interrupted", err=True)
            ctx.exit(INTERRUPTED)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fomm-convert")
@click.option("-v", "--verbose", is_flag=True,
              help="Also show the runtimes' own log lines and libraries' warnings.")
def cli(verbose):
    """Convert First Order Motion Model checkpoints into verified deployment artifacts."""


def main():
    cli(prog_name="fomm-convert")
