"""The Ray engine: the jobs as tasks of Ray actors that each hold a loaded bundle, on a
local Ray started for the run (127.0.0.1, no dashboard) or on an existing cluster.

Nothing assumes a shared filesystem: the bundle travels once through Ray's object store
(a tar, unpacked on each worker and checked there against its manifest, whose sha256 the
driver sends), each input file with the jobs that read it, and each output back to the
driver, which writes it where the job says (ship.py). A worker node needs fomm-convert
with its lite extra and ray installed. A local Ray started for the run listens on
127.0.0.1 only, with no dashboard.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ..bundle.manifest import MANIFEST
from ..errors import one_line
from ..extras import extras_named
from ..io import pid_alive
from .engine import Lost, Restarts, SetupFailed
from .results import output_sha256
from .ship import pack_folder, pack_output, place_output, unpack_folder
from .work import Worker, describe

HOME = "fomm-animate-many"  # under the worker's temporary folder: a folder per actor
STOP_SECONDS = 10  # for the actors to remove their folders before they are killed
LOCAL_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's node address is 127.0.0.1


class RayWorker:
    """A Ray actor: the shipped bundle unpacked and checked, a Worker on it."""

    def __init__(self, bundle_tar: bytes, manifest_sha256: str, setup: dict):
        self.home = _actor_home()
        self.error = None
        try:
            unpack_folder(bundle_tar, self.home / "bundle")
            manifest = self.home / "bundle" / MANIFEST
            if hashlib.sha256(manifest.read_bytes()).hexdigest() != manifest_sha256:
                raise SetupFailed(f"{manifest}: not the manifest the driver sent")
            self.worker = Worker(**{**setup, "bundle": self.home / "bundle"})
        except Exception as exc:  # noqa: BLE001 - the driver stops the run with it
            self.error = describe(exc)

    def ready(self):
        return self.error

    def run(self, task: dict, *blobs: bytes) -> dict:
        if self.error is not None:
            return {"setup_failed": self.error}
        work = self.home / "job"
        shutil.rmtree(work, ignore_errors=True)
        local, names = dict(task), {}
        local["inputs"] = {}
        for i, ((role, path), blob) in enumerate(zip(task["inputs"].items(), blobs)):
            copy = work / "in" / str(i) / Path(path).name
            copy.parent.mkdir(parents=True)
            copy.write_bytes(blob)
            local["inputs"][role], names[str(copy)] = str(copy), path
        if task["out"] is not None:
            local["out"] = str(work / "out" / Path(task["out"]).name)
            names[local["out"]] = task["out"]
        result = self.worker.run({**local, "force": True})
        if result["status"] == "ok" and task["out"] is not None:
            result["output"] = pack_output(Path(local["out"]))
        shutil.rmtree(work, ignore_errors=True)
        for copy, original in names.items():  # messages name the user's files
            result["warnings"] = [w.replace(copy, original) for w in result["warnings"]]
            if result.get("error"):
                result["error"] = result["error"].replace(copy, original)
        return result

    def close(self):
        """Its folder removed (a killed actor's goes when the next one starts)."""
        shutil.rmtree(self.home, ignore_errors=True)


def _actor_home() -> Path:
    """A folder of this actor's own; those of dead actors (killed, Ray stopped) go."""
    root = Path(tempfile.gettempdir()) / f"{HOME}-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    for old in root.iterdir():
        if not pid_alive(old.name):
            shutil.rmtree(old, ignore_errors=True)
    home = root / str(os.getpid())
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    return home


class RayEngine:
    name = "ray"

    def __init__(self, setup: dict, workers: int | None, jobs: int, max_restarts: int, *,
                 address: str | None, threads: int):
        if address is None:
            # A Ray of this machine alone: every one of its servers on 127.0.0.1 (by
            # default Ray binds the machine's address, to be joined by other nodes).
            os.environ.setdefault(LOCAL_ONLY, "0")
        with extras_named("animate-many --engine ray"):
            import ray
        self.ray, self.started = ray, not ray.is_initialized()
        if self.started:
            # Its notices (e.g. that token authentication is on, which it is by default
            # for a local Ray) would break the progress line; errors still show.
            logging.getLogger("ray").setLevel(logging.ERROR)
            options = dict(include_dashboard=False, logging_level=logging.ERROR,
                           log_to_driver=False, configure_logging=False)
            try:
                if address is None:
                    ray.init(num_cpus=os.cpu_count(), _node_ip_address="127.0.0.1", **options)
                else:
                    ray.init(address=address, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise SetupFailed(f"ray at {address or 'a local Ray'}: {one_line(exc)}") \
                    from None
        self.actors, self.idle, self.running, self.blobs = [], [], {}, {}
        bundle = Path(setup["bundle"])
        manifest_sha256 = hashlib.sha256((bundle / MANIFEST).read_bytes()).hexdigest()
        self.bundle_ref = ray.put(pack_folder(bundle))
        self.actor_class = ray.remote(RayWorker).options(num_cpus=threads, max_restarts=0,
                                                         max_task_retries=0)
        self.args = (self.bundle_ref, manifest_sha256, setup)
        cpus = int(ray.cluster_resources().get("CPU", 0))
        workers = min(workers or max(1, cpus // threads), jobs)
        if workers * threads > cpus:  # an actor holds its CPUs: the others would never start
            self.stop()
            raise SetupFailed(f"--workers {workers} x --threads {threads} needs "
                              f"{workers * threads} CPUs; the Ray cluster has {cpus}")
        self.restarts = Restarts(max_restarts)
        self.idle = [self.actor_class.remote(*self.args) for _ in range(workers)]
        self.actors = list(self.idle)
        for error in ray.get([actor.ready.remote() for actor in self.idle]):
            if error is not None:
                self.stop()
                raise SetupFailed(error)
        # self.running: ObjectRef -> (actor, task, input paths); self.blobs: input path ->
        # [ObjectRef, tasks holding it]

    def free(self) -> int:
        return len(self.idle)

    def submit(self, task: dict):
        actor = self.idle.pop()
        paths = list(task["inputs"].values())
        refs = [self._blob(path) for path in paths]
        self.running[actor.run.remote(task, *refs)] = (actor, task, paths)

    def _blob(self, path: str):
        if path not in self.blobs:
            self.blobs[path] = [self.ray.put(Path(path).read_bytes()), 0]
        self.blobs[path][1] += 1
        return self.blobs[path][0]

    def _release(self, paths):
        for path in paths:
            self.blobs[path][1] -= 1
            if not self.blobs[path][1]:
                del self.blobs[path]

    def wait(self) -> list:
        from ray.exceptions import RayActorError, RayError
        ready, _ = self.ray.wait(list(self.running), num_returns=1)
        events = []
        for ref in ready:
            actor, task, paths = self.running.pop(ref)
            self._release(paths)
            try:
                result = self.ray.get(ref)
            except RayActorError:
                events.append((task, Lost("its Ray worker died")))
                self._replace(actor)
                continue
            except RayError as exc:
                result = {"status": "failed", "error": f"ray: {one_line(exc)}", "frames": 0,
                          "seconds": None, "warnings": []}
            if "setup_failed" in result:
                raise SetupFailed(result["setup_failed"])
            events.append((task, self._landed(task, result)))
            self.idle.append(actor)
        return events

    def _landed(self, task: dict, result: dict) -> dict:
        """The worker's output written here; a failure to write it is the job's."""
        payload = result.pop("output", None)
        if payload is None:
            return result
        try:
            place_output(Path(task["out"]), payload, task["force"])
        except Exception as exc:  # noqa: BLE001 - the job's failure, as in a local worker
            return {**result, "status": "failed", "error": describe(exc)}
        return {**result, "output_sha256": output_sha256(task["out"])}

    def _replace(self, actor):
        self.actors.remove(actor)
        if not self.restarts.allow(len(self.actors)):
            return
        replacement = self.actor_class.remote(*self.args)
        self.actors.append(replacement)
        self.idle.append(replacement)

    def stop(self):
        closing = [actor.close.remote() for actor in self.actors]
        if closing:
            self.ray.wait(closing, num_returns=len(closing), timeout=STOP_SECONDS)
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors, self.idle, self.running, self.blobs = [], [], {}, {}
        if self.started:
            self.ray.shutdown()
