"""animate-many: the jobs of a jobs file (or the reconstructions of a set of videos) run by
workers that each load the bundle once, on this machine's cores or on Ray, nothing lost:
each job's start and end are recorded as they happen (results.py), a rerun skips what is
done, a job's failure is its own, a job whose worker dies is retried on another, up to a
bound.
"""
from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path

import numpy as np

from ..animation.jobs import default_backend, prepare
from ..errors import FommError
from ..io import file_sha256, output_lock
from .engine import ENGINES, Lost
from .jobfile import read_jobs, reconstruct_jobs
from .progress import JobsBar
from .results import RESULTS, Results, job_digest


class ManyError(FommError):
    """animate-many refused its arguments."""


def open_engine(name: str, setup: dict, workers: int | None, jobs: int, *,
                address: str | None = None, threads: int = 1, retries: int = 2):
    """The engine of ENGINES named, with no more workers than jobs (each loads the bundle
    as it starts); a dead worker is replaced at most once a try of a job."""
    restarts = jobs * (retries + 1)
    if name == "local":
        from .local import LocalEngine
        return LocalEngine(setup, min(workers or default_workers(threads), jobs), restarts)
    from .ray_engine import RayEngine
    return RayEngine(setup, workers, jobs, restarts, address=address, threads=threads)


def default_workers(threads: int) -> int:
    """This machine's cores divided by the threads a worker runs."""
    return max(1, (os.cpu_count() or 1) // threads)


def animate_many(bundle, out, *, jobs=None, reconstruct=None, engine: str = "local",
                 address: str | None = None, workers: int | None = None,
                 threads: int | None = None, backend: str | None = None, checkpoint=None,
                 batch_size: int | None = None, force: bool = False, retries: int = 2,
                 stream=None, notify=print) -> dict:
    """Run every job of `jobs` (a .csv or .jsonl file) or reconstruct every video of
    `reconstruct` (a folder or a list file), recording each in `out`/results.jsonl; returns
    the run's summary (reconstruct: per-video and overall L1, as the original's
    reconstruction mode computes it, over every frame of every video).

    threads: per worker (default 1); workers: default the cores (local) or the cluster's
    CPUs (Ray) divided by threads; retries: how often a job whose worker died is tried
    again; force: replace outputs that no run of this command recorded."""
    if (jobs is None) == (reconstruct is None):
        raise ManyError("give a jobs file or --reconstruct VIDEOS, one of them")
    if engine not in ENGINES:
        raise ManyError(f"--engine: '{engine}' is not one of {', '.join(ENGINES)}")
    if retries < 0:
        raise ManyError(f"--retries: {retries} is below 0")
    threads = threads or 1
    backend = default_backend(backend, bundle)
    prepared = prepare(bundle, backend, checkpoint, threads)  # checked; loaded by workers
    job_list = read_jobs(jobs, prepared.spec) if jobs is not None else \
        reconstruct_jobs(reconstruct)
    for notice in prepared.notices:
        notify(notice)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ManyError(f"{out}: cannot make the folder ({exc.strerror})") from None
    run = {"bundle": prepared.manifest["version"], "backend": backend,
           "batch_size": batch_size}
    setup = {"bundle": str(prepared.bundle.path), "backend": backend,
             "checkpoint": None if checkpoint is None else str(checkpoint),
             "threads": threads, "batch_size": batch_size}
    with output_lock(out / RESULTS, "animate-many"):
        results = Results(out / RESULTS)
        try:
            start = time.perf_counter()
            pending, skipped = _plan(job_list, out, run, results)
            if pending:
                _schedule(open_engine(engine, setup, workers, len(pending),
                                      address=address, threads=threads, retries=retries),
                          pending, results, retries, force, out,
                          JobsBar(len(pending), stream, len(skipped)))
        finally:
            results.close()
    return _summary(job_list, results, skipped, time.perf_counter() - start, out)


def _plan(job_list, out: Path, run: dict, results: Results):
    """[(job, digest, ours)] still to do (ours: an earlier run recorded the job, so what is
    at its output is ours to replace), and the keys of the jobs an earlier run did. A job
    whose input cannot be read fails here, recorded."""
    hashes, pending, skipped = {}, [], set()
    for job in job_list:
        try:
            shas = {role: _sha256(hashes, path) for role, path in job.inputs.items()}
        except ManyError as exc:
            results.append({"job": job.key, "status": "failed", "error": str(exc),
                            "digest": None, "attempt": 0, "frames": 0, "seconds": 0})
            continue
        digest = job_digest(job, shas, run)
        if results.done(job, digest, None if job.out is None else out / job.out):
            skipped.add(job.key)
        else:
            pending.append((job, digest, results.ours(job)))
    # Jobs of one source in a row: a worker encodes a picture once for all of them.
    pending.sort(key=lambda item: str(item[0].inputs.get("source", "")))
    return pending, skipped


def _sha256(hashes: dict, path: Path) -> str:
    if path not in hashes:
        try:
            hashes[path] = file_sha256(path)
        except FileNotFoundError:
            hashes[path] = ManyError(f"{path}: no such file")
        except IsADirectoryError:
            hashes[path] = ManyError(f"{path}: is a directory")
        except OSError as exc:
            hashes[path] = ManyError(f"{path}: cannot read it ({exc.strerror})")
    if isinstance(hashes[path], ManyError):
        raise hashes[path]
    return hashes[path]


def _schedule(engine, pending: list, results: Results, retries: int, force: bool,
              out: Path, bar: JobsBar):
    queue, attempts, running = deque(pending), {}, 0
    by_key = {item[0].key: item for item in pending}
    try:
        while queue or running:
            while queue and engine.free():
                job, digest, ours = queue.popleft()
                attempts[job.key] = attempts.get(job.key, 0) + 1
                results.append({"job": job.key, "status": "started", "digest": digest,
                                "attempt": attempts[job.key]})
                engine.submit(_task(job, out, force or ours))
                running += 1
                bar.started()
            for task, outcome in engine.wait():
                running -= 1
                job, digest, _ = by_key[task["key"]]
                tries = attempts[job.key]
                if isinstance(outcome, Lost):
                    if tries <= retries:
                        queue.appendleft(by_key[job.key])
                        bar.ended(None)
                        continue
                    outcome = {"status": "failed", "frames": 0, "seconds": None,
                               "error": f"{outcome.reason}, on each of {tries} tries"}
                results.append({"job": job.key, "digest": digest, "attempt": tries,
                                **outcome})
                bar.ended(outcome)
    except BaseException:
        bar.close(ok=False)
        raise
    finally:
        engine.stop()
    bar.close()


def _task(job, out_root: Path, force: bool) -> dict:
    return {"key": job.key, "kind": job.kind,
            "inputs": {role: str(path) for role, path in job.inputs.items()},
            "out": None if job.out is None else str(out_root / job.out),
            "options": job.options, "force": force}


def _summary(job_list, results: Results, skipped: set, seconds: float, out: Path) -> dict:
    """The run's figures; frames and warnings are this run's (not the skipped jobs')."""
    records = [results.last.get(job.key, {}) for job in job_list]
    ok = [r for r in records if r.get("status") == "ok"]
    now = [r for r in records if r.get("job") not in skipped]
    summary = {"jobs": len(job_list), "ok": len(ok), "skipped": len(skipped),
               "failed": [(r["job"], r.get("error")) for r in records
                          if r.get("status") == "failed"],
               "frames": sum(r.get("frames", 0) for r in now if r.get("status") == "ok"),
               "warnings": [(r["job"], w) for r in now for w in r.get("warnings", [])],
               "seconds": seconds, "results": str(out / RESULTS)}
    if job_list and job_list[0].kind == "reconstruct":
        videos = {r["job"]: {"l1": r["l1"], "frames": r["frames"]} for r in ok}
        # The original's reconstruction loss: the mean over every frame of every video.
        per_frame = [e for r in ok for e in r["l1_per_frame"]]
        summary.update(videos=videos, l1=float(np.mean(per_frame)) if per_frame else None)
    return summary
