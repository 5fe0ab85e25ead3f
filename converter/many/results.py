"""The results file of animate-many (results.jsonl under --out): a JSON line per event of a
job, appended whole (one write, then fsync) as it happens, so that a kill at any moment
leaves every finished job recorded:

    {"job": KEY, "status": "started", "digest": D, "attempt": 1}
    {"job": KEY, "status": "ok", "digest": D, "frames": N, "seconds": S, "output_sha256": ...}
    {"job": KEY, "status": "failed", "digest": D, "error": "one line", ...}

A job's last line is its state. A rerun skips a job whose last line is "ok" with the job's
digest (its inputs' sha256, its options, the run's backend and batch size, the bundle's
version) and whose output is still the one recorded (its sha256); an output that a line of
the file names was written by a run of this command, and is replaced without --force.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..errors import FommError
from ..io import file_sha256
from ..limits import RESULTS_MAX_BYTES

RESULTS = "results.jsonl"


class ResultsError(FommError):
    """A results file that cannot be read or written."""


def job_digest(job, input_sha256: dict, run: dict) -> str:
    """sha256 of what a job's output depends on: `input_sha256` (role -> its file's sha256),
    the job's options (every field, defaults filled in) and `run` (bundle version, backend,
    checkpoint, batch size)."""
    text = json.dumps({"kind": job.kind, "inputs": input_sha256, "options": job.options,
                       "out": job.out, "run": run}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def output_sha256(path) -> str | None:
    """sha256 of an output file, or of a folder of frames (each name and its sha256, in
    order); None when there is none."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for frame in sorted(path.iterdir()):
        digest.update(f"{frame.name}\0{file_sha256(frame)}\n".encode())
    return digest.hexdigest()


class Results:
    """The file's records, read once (the last per job), and appended to as jobs go."""

    def __init__(self, path):
        self.path = Path(path)
        self.last: dict[str, dict] = {}
        self._read()
        try:
            self._file = open(self.path, "ab")
        except OSError as exc:
            raise ResultsError(f"{self.path}: cannot write it ({exc.strerror})") from None
        if self._file.tell() and not self._ends_with_newline():
            self._file.write(b"\n")  # the end of a line a killed run left half-written

    def _read(self):
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size > RESULTS_MAX_BYTES:
            raise ResultsError(f"{self.path}: larger than {RESULTS_MAX_BYTES} bytes; move it "
                               f"away to start afresh")
        with open(self.path, "rb") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:  # e.g. the half line of a killed run: it recorded nothing
                    continue
                if isinstance(record, dict) and isinstance(record.get("job"), str):
                    self.last[record["job"]] = record

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def done(self, job, digest: str, out: Path | None) -> bool:
        """Whether the job's last record is its success with this digest, and its output
        (if it writes one) is still the one recorded."""
        record = self.last.get(job.key) or {}
        if record.get("status") != "ok" or record.get("digest") != digest:
            return False
        return out is None or output_sha256(out) == record.get("output_sha256")

    def ours(self, job) -> bool:
        """Whether a run of this command recorded the job (its output is then ours)."""
        return job.key in self.last

    def append(self, record: dict):
        line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
        try:
            self._file.write(line.encode())
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise ResultsError(f"{self.path}: cannot write it ({exc.strerror})") from None
        self.last[record["job"]] = record

    def close(self):
        self._file.close()
