"""What animate-many is asked to do: a jobs file (CSV with a header row, or JSON Lines), one
job per row with `source`, `driving`, `out` and any of animate's own options as a field of
the same name; or, for --reconstruct, a folder or a list of videos.

The fields are animate's own parameters (animation.jobs.animate) and the animation mode
options of the bundle's model family (FOMM: relative, adapt_scale; TPSMM: mode), read from
animate's signature and the family's OPTIONS (animation/options.py): an option added to
either is a job field without a second list. What a
run sets for every job (the backend, threads, ...) is not a job's.
"""
from __future__ import annotations

import csv
import inspect
import io
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..animation.jobs import animate, animation
from ..errors import FommError, cut
from ..limits import JOBS_MAX_BYTES, MAX_JOBS
from .results import RESULTS

# animate's parameters that a run sets for all its jobs (or that are not options at all).
RUN_PARAMETERS = ("bundle", "config", "backend", "checkpoint", "threads", "batch_size", "force",
                  "notify", "stream", "sources")
OUT = "out"  # the output's field: a name under --out
# Videos --reconstruct takes from a folder (ffmpeg reads them all; a folder holds others).
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".gif")
BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


class JobsError(FommError):
    """A jobs file or a list of videos that cannot be read as one."""


@dataclass(frozen=True)
class Field:
    name: str
    kind: type  # bool, int or str
    required: bool
    default: object = None


@dataclass
class Job:
    """One job: `key` names it in the results file (its output's name, or the video's)."""
    key: str
    kind: str  # "animate" or "reconstruct"
    inputs: dict  # role ("source", "driving"; "video") -> Path
    out: str | None = None  # under --out
    options: dict = field(default_factory=dict)  # the other fields, defaults filled in
    row: str = field(default="", compare=False)  # where it was read, for messages


def job_fields(spec) -> dict[str, Field]:
    """The job options of a bundle of `spec`, with their types and defaults: animate's
    required ones (the inputs and the output), the family's animation mode options, then
    animate's other options (the order of animate's command line)."""
    fields = _fields(animate, skip=RUN_PARAMETERS)
    # The family's options (its animation module's OPTIONS): a choice is text, else on/off;
    # None takes the spec's default.
    modes = {o.name: Field(o.name, str if o.choices else bool, False, None)
             for o in animation(spec).OPTIONS}
    required = {n: f for n, f in fields.items() if f.required}
    return {**required, **modes, **{n: f for n, f in fields.items() if not f.required}}


def _fields(function, skip) -> dict[str, Field]:
    hints = typing.get_type_hints(function)
    fields = {}
    for name, param in inspect.signature(function).parameters.items():
        if name in skip or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        required = param.default is inspect.Parameter.empty
        fields[name] = Field(name, _base_type(name, hints.get(name, str)), required,
                             None if required else param.default)
    return fields


def input_fields(fields: dict[str, Field]) -> tuple[str, ...]:
    """The job fields that name input files: the required ones but the output."""
    return tuple(f.name for f in fields.values() if f.required and f.name != OUT)


def _base_type(name: str, hint) -> type:
    kinds = [k for k in typing.get_args(hint) or (hint,) if k is not type(None)]
    if len(kinds) != 1 or kinds[0] not in (bool, int, str):
        raise TypeError(f"animate's option {name}: {hint} is not a job field's type")
    return kinds[0]


def read_jobs(path, spec) -> list[Job]:
    """The jobs of a .csv or .jsonl file for a bundle of `spec`; inputs relative to the
    file's folder. A mistake is a JobsError naming the file and its row."""
    path = Path(path)
    text = _read_text(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(path, text)
    elif suffix in (".jsonl", ".ndjson"):
        rows = _jsonl_rows(path, text)
    else:
        raise JobsError(f"{path}: a jobs file is .csv (a header row) or .jsonl (JSON Lines), "
                        f"not '{suffix}'")
    fields = job_fields(spec)
    jobs = [_job(path, where, values, fields) for where, values in rows]
    if not jobs:
        raise JobsError(f"{path}: holds no job")
    _check_distinct(path, jobs)
    return jobs


def reconstruct_jobs(path) -> list[Job]:
    """One reconstruction job per video: the videos of a folder (by suffix, sorted), or the
    lines of a list file (paths relative to it; blank lines and # comments skipped)."""
    path = Path(path)
    if path.is_dir():
        videos = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES
                        and not p.name.startswith(".") and p.is_file())
        jobs = [Job(p.name, "reconstruct", {"video": p}, row=str(p)) for p in videos]
    else:
        lines = _read_text(path).splitlines()
        jobs = [Job(line.strip(), "reconstruct", {"video": path.parent / line.strip()},
                    row=f"{path}: line {n}")
                for n, line in enumerate(lines, 1)
                if line.strip() and not line.lstrip().startswith("#")]
    if not jobs:
        raise JobsError(f"{path}: holds no video (folders: {', '.join(VIDEO_SUFFIXES)})")
    _check_distinct(path, jobs)
    return jobs


def _read_text(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(JOBS_MAX_BYTES + 1)
    except FileNotFoundError:
        raise JobsError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise JobsError(f"{path}: is a directory") from None
    except OSError as exc:
        raise JobsError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(data) > JOBS_MAX_BYTES:
        raise JobsError(f"{path}: larger than {JOBS_MAX_BYTES} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JobsError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _csv_rows(path: Path, text: str):
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return []
        names = [h.strip() for h in header]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate is not None:
            raise JobsError(f"{path}: line 1: the field '{cut(duplicate)}' is there twice")
        rows = []
        for cells in reader:
            where = f"{path}: line {reader.line_num}"
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(names):
                raise JobsError(f"{where}: {len(cells)} cells for {len(names)} fields")
            rows.append((where, {n: c for n, c in zip(names, cells) if c.strip()}))
            _bound(path, rows)
        return rows
    except csv.Error as exc:
        raise JobsError(f"{path}: line {reader.line_num}: not CSV ({exc})") from None


def _jsonl_rows(path: Path, text: str):
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}: line {n}"
        try:
            values = json.loads(line)
        except ValueError as exc:
            raise JobsError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(values, dict):
            raise JobsError(f"{where}: a job is a JSON object, not {type(values).__name__}")
        rows.append((where, {k: v for k, v in values.items() if v is not None}))
        _bound(path, rows)
    return rows


def _bound(path: Path, rows: list):
    if len(rows) > MAX_JOBS:
        raise JobsError(f"{path}: more than {MAX_JOBS} jobs")


def _job(path: Path, where: str, values: dict, fields: dict[str, Field]) -> Job:
    unknown = [name for name in values if name not in fields]
    if unknown:
        raise JobsError(f"{where}: unknown field '{cut(unknown[0])}' (a job's fields: "
                        f"{', '.join(fields)})")
    missing = [f.name for f in fields.values() if f.required and f.name not in values]
    if missing:
        raise JobsError(f"{where}: no '{missing[0]}'")
    given = {name: _convert(where, fields[name], value) for name, value in values.items()}
    inputs = {name: path.parent / given[name] for name in input_fields(fields)}
    out = _out_name(where, given[OUT])
    options = {f.name: given.get(f.name, f.default) for f in fields.values() if not f.required}
    return Job(out, "animate", inputs, out, options, where)


def _convert(where: str, spec: Field, value):
    if spec.kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in BOOLEANS:
            return BOOLEANS[value.strip().lower()]
        raise JobsError(f"{where}: {spec.name}: '{cut(value)}' is not true or false")
    if spec.kind is int:
        try:
            if isinstance(value, bool) or not float(value).is_integer():
                raise ValueError
            return int(float(value))
        except (TypeError, ValueError):
            raise JobsError(f"{where}: {spec.name}: '{cut(value)}' is not a whole number") \
                from None
    if not isinstance(value, str) or not value.strip():
        raise JobsError(f"{where}: {spec.name}: '{cut(value)}' is not text")
    return value.strip()


def _out_name(where: str, name: str) -> str:
    """A relative path under --out: no absolute path, no '..', no hidden part (the run's own
    files are hidden or results.jsonl)."""
    parts = PurePosixPath(name).parts
    if (not parts or PurePosixPath(name).is_absolute() or "\\" in name
            or any(p in ("..", ".") or p.startswith(".") for p in parts)
            or name == RESULTS):
        raise JobsError(f"{where}: out: '{cut(name)}' is not a plain name under --out "
                        f"(no absolute path, '..', hidden part or {RESULTS})")
    return str(PurePosixPath(*parts))


def _check_distinct(path: Path, jobs: list[Job]):
    seen = {}
    for job in jobs:
        if job.key in seen:
            raise JobsError(f"{job.row}: '{cut(job.key)}' is also the job of {seen[job.key]}"
                            f" (one job an output)")
        seen[job.key] = job.row.removeprefix(f"{path}: ")
