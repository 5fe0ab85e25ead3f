"""A bench report as a picture (`fomm-convert bench --plot FILE`, docs/performance.md):
frame time and private memory at its peak per backend, one bar per thread count, the frame
time's bar spanning its fastest to slowest round. From a fresh run or from the JSON of an
earlier one (`--from-json`), so the docs' figure can be redrawn without rerunning it.

matplotlib (the `plot` extra) is imported only when a plot is drawn."""
from __future__ import annotations

from numbers import Real
from pathlib import Path

from ..extras import extras_named
from ..limits import BENCH_REPORT_MAX_BYTES
from . import BenchError


def read_report(path) -> dict:
    """A bench JSON (bench --json) with what a plot needs checked: one-line BenchError.
    Bounded and refused as a bundle's JSON files are (bundle.manifest.read_json)."""
    from ..bundle.manifest import BundleError, read_json
    try:
        report = read_json(Path(path), BENCH_REPORT_MAX_BYTES, "bench report")
    except BundleError as exc:
        raise BenchError(str(exc)) from None
    check_report(report, path)
    return report


def check_report(report, where) -> None:
    """The fields a plot reads, of the types it reads them as."""
    if not isinstance(report, dict) or not isinstance(report.get("results"), list) \
            or not report["results"]:
        raise BenchError(f"{where}: not a bench report: no 'results' list")
    for i, row in enumerate(report["results"]):
        if not isinstance(row, dict):
            raise BenchError(f"{where}: results[{i}] is not an object")
        for key, kind in (("backend", str), ("threads", int), ("frame_ms", Real),
                          ("uss_peak_mb", Real)):
            if key == "uss_peak_mb" and row.get(key) is None:
                continue  # not measured: no memory bar
            if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool):
                raise BenchError(f"{where}: results[{i}].{key} is missing or not a "
                                 f"{'number' if kind is Real else kind.__name__}")
        samples = row.get("samples_ms", {}).get("frame", [])
        if not isinstance(samples, list) or not all(isinstance(s, Real) for s in samples):
            raise BenchError(f"{where}: results[{i}].samples_ms.frame is not a list of numbers")


def pyplot_or_error():
    """matplotlib's pyplot on its file-only backend, else a one-line MissingExtra naming the
    extra (the CLI asks before a run, not after its minutes)."""
    with extras_named("--plot"):
        import matplotlib
    matplotlib.use("Agg")  # files only: no display is needed or opened
    from matplotlib import pyplot
    return pyplot


def _title(report: dict) -> str:
    shape = "x".join(str(n) for n in report.get("frame_shape", [])[:2])
    machine = report.get("machine") if isinstance(report.get("machine"), dict) else {}
    where = ", ".join(str(machine[k]) for k in ("cpu",) if k in machine)
    if "cores" in machine:
        where += f", {machine['cores']} cores"
    return (f"fomm-convert bench: {report.get('spec', '?')} {shape}, batch 1, median of "
            f"{report.get('repeats', '?')} rounds" + (f"\n{where}" if where else ""))


def plot(report: dict, path) -> Path:
    """Draw `report` (run.bench's, or read_report's) to `path` (PNG, SVG or PDF by its
    suffix); returns the path."""
    check_report(report, "bench report")
    pyplot = pyplot_or_error()
    rows = report["results"]
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    threads = sorted({r["threads"] for r in rows})
    by_key = {(r["backend"], r["threads"]): r for r in rows}
    height = 0.8 / len(threads)
    figure, (time_axis, memory_axis) = pyplot.subplots(
        1, 2, figsize=(11, 1.6 + 0.42 * len(backends)), sharey=True)
    for j, count in enumerate(threads):
        ys, ms, low, high, mb, mb_ys = [], [], [], [], [], []
        for i, backend in enumerate(backends):
            row = by_key.get((backend, count))
            if row is None:
                continue
            samples = row.get("samples_ms", {}).get("frame") or [row["frame_ms"]]
            ys.append(i + (j - (len(threads) - 1) / 2) * height)
            ms.append(row["frame_ms"])
            low.append(max(row["frame_ms"] - min(samples), 0))
            high.append(max(max(samples) - row["frame_ms"], 0))
            if row.get("uss_peak_mb") is not None:
                mb_ys.append(ys[-1])
                mb.append(row["uss_peak_mb"])
        label = f"{count} thread{'s' if count > 1 else ''}"
        spread = [low, high] if any(low) or any(high) else None  # no samples: no bar
        time_axis.barh(ys, ms, height, xerr=spread, label=label, capsize=2)
        memory_axis.barh(mb_ys, mb, height, label=label)
    time_axis.set_yticks(range(len(backends)), backends)
    time_axis.invert_yaxis()
    time_axis.set_xlabel("frame ms (median; bar: fastest to slowest round)")
    memory_axis.set_xlabel("private memory at its peak (USS), MB")
    time_axis.legend(loc="lower right")
    for axis in (time_axis, memory_axis):
        axis.grid(axis="x", alpha=0.3)
    figure.suptitle(_title(report), fontsize=10)
    figure.tight_layout()
    path = Path(path)
    try:
        figure.savefig(path, dpi=90)
    except (OSError, ValueError) as exc:
        raise BenchError(f"{path}: cannot write the plot ({exc})") from None
    finally:
        pyplot.close(figure)
    return path
