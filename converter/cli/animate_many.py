"""`fomm-convert animate-many`: a jobs file (or a set of videos to reconstruct) run by
workers that each load the bundle once, on this machine or on Ray."""
from __future__ import annotations

import functools

import click

from ..many.engine import ENGINES
from .animate import _common_options, _notify, _terminate_cleanly


@click.command("animate-many")
@functools.partial(_common_options, threads_help="Threads of each worker's runtime "
                   "(default 1).", configs=False)
@click.option("--jobs", "jobs", type=click.Path(dir_okay=False), default=None,
              help="CSV (a header row) or JSON Lines: a job per row with source, driving, "
                   "out (a name under --out: .mp4, .gif or a PNG folder) and any of "
                   "animate's own options as a field (best_frame, visualize, crop, and "
                   "the model family's: relative, adapt_scale for FOMM, mode for TPSMM); "
                   "source and driving relative to the file.")
@click.option("--reconstruct", type=click.Path(), default=None,
              help="Instead of --jobs: reconstruct each video of a folder (or of a list "
                   "file, one path a line) and report per-video and overall L1.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder of the outputs and of results.jsonl (a line per job's start "
                   "and end).")
@click.option("--engine", type=click.Choice(ENGINES), default="local",
              show_default=True,
              help="local: worker processes on this machine; ray: Ray actors on a local "
                   "Ray started for the run, or on the cluster at --address.")
@click.option("--address", default=None,
              help="With --engine ray: an existing cluster's address (default: start a "
                   "local Ray for the run).")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Workers, each with the bundle loaded (default: the cores, or the "
                   "cluster's CPUs, divided by --threads).")
@click.option("--retries", type=click.IntRange(0), default=2, show_default=True,
              help="Tries again a job whose worker died under it (kill -9, out of memory).")
def animate_many_command(bundle, backend, checkpoint, batch_size, threads, force, jobs,
                         reconstruct, out, engine, address, workers, retries):
    """Many animations with one bundle, nothing lost: outputs written whole and recorded
    in OUT/results.jsonl as they finish; a rerun does only what is missing or changed;
    a bad input fails its own job. --force replaces outputs no run of this command wrote."""
    from ..many.run import animate_many
    if address is not None and engine != "ray":
        raise click.UsageError("--address is for --engine ray")
    _terminate_cleanly()
    summary = animate_many(bundle, out, jobs=jobs, reconstruct=reconstruct, engine=engine,
                           address=address, workers=workers, threads=threads,
                           backend=backend, checkpoint=checkpoint, batch_size=batch_size,
                           force=force, retries=retries, notify=_notify)
    for key, warning in summary["warnings"]:
        click.echo(f"warning: {key}: {warning}", err=True)
    for key, error in summary["failed"]:
        click.echo(f"failed: {key}: {error}", err=True)
    for key, video in summary.get("videos", {}).items():
        click.echo(f"{key}: L1 {video['l1']:.6f} over {video['frames']} frames")
    if summary.get("l1") is not None:
        click.echo(f"reconstruction L1: {summary['l1']:.6f} over "
                   f"{sum(v['frames'] for v in summary['videos'].values())} frames of "
                   f"{len(summary['videos'])} videos")
    click.echo(f"{summary['ok']} of {summary['jobs']} jobs done ({summary['skipped']} by an "
               f"earlier run), {len(summary['failed'])} failed; this run: "
               f"{summary['frames']} frames in {summary['seconds']:.1f} s; "
               f"{summary['results']}")
    if summary["failed"]:
        raise SystemExit(1)
