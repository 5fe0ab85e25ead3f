"""`fomm-convert bench --bundle DIR --checkpoint CKPT [--threads 1,2] [--repeats 5]
[--json PATH] [--plot FILE] [--backends tflite,onnx,...] [--quality-media DIR]`, or
`fomm-convert bench --from-json BENCH.json --plot FILE` to draw an earlier run
(fomm_convert.bench)."""
from __future__ import annotations

from pathlib import Path

import click

from ..bench import BenchError
from ..bench.backends import BENCH_BACKENDS


def _threads(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        raise click.BadParameter("thread counts must be >= 1")
    return values


@click.command("bench")
@click.option("--bundle", type=click.Path(exists=True, file_okay=False),
              help="A bundle directory (fomm-convert build).")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False),
              help="The bundle's checkpoint, for the PyTorch eager baseline.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False),
              help="Also write the report as JSON here.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Also draw frame time and memory per backend and thread count here "
                   "(.png, .svg or .pdf; needs the plot extra).")
@click.option("--from-json", "from_json", type=click.Path(dir_okay=False),
              help="Draw --plot from this earlier report (bench --json) instead of running.")
@click.option("--threads", default="1,2", show_default=True, help="Thread counts.")
@click.option("--repeats", default=5, show_default=True, type=int,
              help="Interleaved timed rounds (the median is reported).")
@click.option("--warmup", default=1, show_default=True, type=int,
              help="Untimed runs of everything before the rounds.")
@click.option("--backends", help="Comma-separated subset of: " + ", ".join(BENCH_BACKENDS)
              + " (default: torch, every format of the bundle and openvino when "
              "installed; onnx-web, onnx-webgpu, litert-js[-webgpu] only when named).")
@click.option("--quality-media", type=click.Path(file_okay=False),
              help="Directory with source.png and driving.mp4: also measure int8 vs fp32.")
@click.option("--quality-frames", default=32, show_default=True, type=int)
def bench_command(bundle, checkpoint, json_path, plot_path, from_json, threads, repeats, warmup,
                  backends, quality_media, quality_frames):
    """Frames per second of every backend of a bundle vs PyTorch eager, on this machine."""
    from ..bench.plot import plot, pyplot_or_error, read_report
    if plot_path:
        pyplot_or_error()  # before a run's minutes, not after them
    if from_json:
        if not plot_path or bundle or checkpoint or json_path:
            raise click.UsageError("--from-json takes --plot FILE and no --bundle, "
                                   "--checkpoint or --json")
        click.echo(f"plot: {plot(read_report(from_json), plot_path)}")
        return
    if not bundle or not checkpoint:
        raise click.UsageError("--bundle and --checkpoint are needed (or --from-json)")
    from ..bench.report import markdown
    from ..bench.run import bench
    from ..io import write_json
    chosen = [b.strip() for b in backends.split(",") if b.strip()] if backends else None
    try:
        report = bench(Path(bundle), Path(checkpoint), _threads(threads), repeats, warmup,
                       chosen, echo=lambda text: click.echo(text, err=True),
                       quality_media=Path(quality_media) if quality_media else None,
                       quality_frames=quality_frames)
    except BenchError as exc:  # whole: a dead worker's message ends with its log
        raise click.ClickException(str(exc))
    click.echo(markdown(report), nl=False)
    if json_path:
        write_json(json_path, report)
    if plot_path:
        click.echo(f"plot: {plot(report, plot_path)}", err=True)
