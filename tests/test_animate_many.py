"""`fomm-convert animate-many`: the jobs file's fields are animate's own options and the
bundle's model family's, its mistakes are one line naming the row; the results file and the
scheduler lose nothing (a rerun skips what is done, a job whose worker died is retried up to
a bound); and on a tiny bundle, outputs equal a plain `animate` per job byte for byte, a
corrupt video fails alone, a rerun after a kill -9 of a worker or of the driver finishes
only the missing jobs, and --reconstruct gives `reconstruct`'s L1 per video; under
--engine ray (a local head on 127.0.0.1 started by the test), the same bytes and a killed
actor's job retried.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np
import pytest

import fomm_convert
from fomm_convert.animation.options import every_option
from fomm_convert.cli.animate import _common_options, animate_command
from fomm_convert.errors import FommError
from fomm_convert.families import family_of
from fomm_convert.many import jobfile, run as many_run
from fomm_convert.many.engine import Lost
from fomm_convert.many.progress import JobsBar
from fomm_convert.many.results import RESULTS, Results, output_sha256
from fomm_convert.spec import load_spec

from conftest import FIXTURES, ROOT, require_module, sigint_as_at_a_terminal


FOMM, TPSMM = load_spec("vox"), load_spec("tpsmm-vox")  # specs of each model family


def u8(x):
    return np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)


def write_clip(path, frames, fps=12):
    imageio_v2.mimwrite(path, list(frames), fps=fps, macro_block_size=1)
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Two 64x64 source pictures, two 14-frame clips, a 140-frame one, and a corrupt
    .mp4 (an ftyp box that claims more bytes than the file has)."""
    root = tmp_path_factory.mktemp("media")
    with np.load(FIXTURES / "tiny.npz") as data:
        source, driving = u8(data["source"][0].transpose(1, 2, 0)), \
            u8(data["driving"].transpose(0, 2, 3, 1))
    frames = np.concatenate([driving, driving[::-1][1:-1]])
    iio.imwrite(root / "a.png", source)
    iio.imwrite(root / "b.png", source[::-1])
    iio.imwrite(root / "small.png", source[::2, ::2])
    write_clip(root / "d1.mp4", frames)
    write_clip(root / "d2.mp4", frames[::-1])
    write_clip(root / "long.mp4", np.concatenate([frames] * 10))
    (root / "bad.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + b"garbage" * 20)
    return root


def run_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "fomm_convert.cli", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, **kwargs)


def records(out) -> list[dict]:
    return [json.loads(line) for line in (Path(out) / RESULTS).read_text().splitlines()]


def final(out) -> dict:
    return {r["job"]: r for r in records(out)}


# ------------------------------------------------------------------------ the jobs file

def test_job_fields_are_animates_own_options():
    """The fields are animate's options on the command line, less those of every command
    of its family (bundle, backend, threads, ...): the same names, read from animate() and
    the bundle's model family's animation modes."""
    common = {p.name for p in _common_options(lambda: None).__click_params__}
    cli = [p.name for p in animate_command.params if p.name not in common]
    assert cli == ["source", "driving", "out", "relative", "adapt_scale", "mode", "best_frame",
                   "visualize", "crop"]

    def theirs(spec):  # the command line's options less the other families'
        title = family_of(spec).title
        return [n for n in cli if n not in every_option() or title in every_option()[n][1]]
    fields = jobfile.job_fields(FOMM)
    assert list(fields) == theirs(FOMM) == [
        "source", "driving", "out", "relative", "adapt_scale", "best_frame", "visualize",
        "crop"]
    assert list(jobfile.job_fields(TPSMM)) == theirs(TPSMM) == [
        "source", "driving", "out", "mode", "best_frame", "visualize", "crop"]
    assert jobfile.input_fields(fields) == ("source", "driving")


def test_an_option_added_to_animate_is_a_job_field(monkeypatch, tmp_path):
    def animate(bundle, source, driving, out, *, backend="tflite", loops: int = 1,
                notify=print, **mode_options):
        pass
    monkeypatch.setattr(jobfile, "animate", animate)
    (tmp_path / "jobs.csv").write_text("source,driving,out,mode,loops\n"
                                       "a.png,d.mp4,o.mp4,avd,2\n")
    job, = jobfile.read_jobs(tmp_path / "jobs.csv", TPSMM)
    assert job.options == {"mode": "avd", "loops": 2}
    with pytest.raises(jobfile.JobsError, match="line 2: unknown field 'mode'"):
        jobfile.read_jobs(tmp_path / "jobs.csv", FOMM)


def test_csv_and_json_lines_give_the_same_jobs(tmp_path):
    (tmp_path / "jobs.csv").write_text(
        "source,driving,out,relative,best_frame,crop\n"
        "faces/a.png,d1.mp4,a1.mp4,,,\n"
        "b.png,d2.mp4,sub/b.gif,false,yes,center\n")
    (tmp_path / "jobs.jsonl").write_text(
        '{"source": "faces/a.png", "driving": "d1.mp4", "out": "a1.mp4"}\n\n'
        '{"source": "b.png", "driving": "d2.mp4", "out": "sub/b.gif", "relative": false, '
        '"best_frame": "yes", "crop": "center"}\n')
    csv_jobs = jobfile.read_jobs(tmp_path / "jobs.csv", FOMM)
    assert csv_jobs == jobfile.read_jobs(tmp_path / "jobs.jsonl", FOMM)
    first, second = csv_jobs
    assert first.inputs == {"source": tmp_path / "faces/a.png", "driving": tmp_path / "d1.mp4"}
    assert first.options == {"relative": None, "adapt_scale": None, "best_frame": False,
                             "visualize": False, "crop": "none"}
    assert (second.key, second.options["relative"], second.options["best_frame"],
            second.options["crop"]) == ("sub/b.gif", False, True, "center")


@pytest.mark.parametrize("name, text, message", [
    ("jobs.csv", "source,driving,out,speed\na,b,c.mp4,2\n", "line 2: unknown field 'speed'"),
    ("jobs.jsonl", '{"source": "a", "driving": "b", "out": "c.mp4"}\n'
                   '{"source": "a", "driving": "b", "out": "d.mp4", "loop": 1}\n',
     "line 2: unknown field 'loop'"),
    ("jobs.csv", "source,driving,out,relative\na,b,c.mp4,maybe\n",
     "line 2: relative: 'maybe' is not true or false"),
    ("jobs.csv", "source,driving\na,b\n", "line 2: no 'out'"),
    ("jobs.csv", "source,driving,out\na,b,../c.mp4\n", "line 2: out: '../c.mp4' is not a plain"),
    ("jobs.csv", "source,driving,out\na,b,/tmp/c.mp4\n", "is not a plain name"),
    ("jobs.csv", "source,driving,out\na,b,results.jsonl\n", "is not a plain name"),
    ("jobs.csv", "source,driving,out\na,b,c.mp4\nx,y,c.mp4\n",
     "line 3: 'c.mp4' is also the job of line 2"),
    ("jobs.csv", "source,driving,out\na,b,c.mp4,extra\n", "line 2: 4 cells for 3 fields"),
    ("jobs.csv", "source,driving,source\n", "line 1: the field 'source' is there twice"),
    ("jobs.jsonl", '["a", "b"]\n', "line 1: a job is a JSON object, not list"),
    ("jobs.jsonl", '{"source": \n', "line 1: not JSON"),
    ("jobs.txt", "a,b,c\n", "a jobs file is .csv"),
    ("jobs.csv", "source,driving,out\n", "holds no job"),
])
def test_a_bad_jobs_file_is_one_line_naming_the_row(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(jobfile.JobsError) as info:
        jobfile.read_jobs(path, FOMM)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    assert "\n" not in str(info.value)


def test_bytes_that_are_not_text(tmp_path):
    (tmp_path / "jobs.csv").write_bytes(b"source,driving,out\n\xff\xfe,b,c.mp4\n")
    with pytest.raises(jobfile.JobsError, match="not UTF-8 text"):
        jobfile.read_jobs(tmp_path / "jobs.csv", FOMM)


def test_videos_to_reconstruct_from_a_folder_or_a_list(tmp_path):
    for name in ("b.mp4", "a.gif", "notes.txt", ".hidden.mp4"):
        (tmp_path / name).write_bytes(b"")
    assert [(j.key, j.inputs["video"]) for j in jobfile.reconstruct_jobs(tmp_path)] == [
        ("a.gif", tmp_path / "a.gif"), ("b.mp4", tmp_path / "b.mp4")]
    (tmp_path / "list.txt").write_text("# test set\nb.mp4\n\nclips/c.mov\n")
    assert [(j.key, j.inputs["video"]) for j in jobfile.reconstruct_jobs(
        tmp_path / "list.txt")] == [("b.mp4", tmp_path / "b.mp4"),
                                     ("clips/c.mov", tmp_path / "clips/c.mov")]


# ------------------------------------------------------------------------ results, scheduler

def test_a_job_is_done_only_with_its_digest_and_its_output(tmp_path):
    job = jobfile.Job("o.mp4", "animate", {}, "o.mp4")
    out = tmp_path / "o.mp4"
    out.write_bytes(b"frames")
    results = Results(tmp_path / RESULTS)
    assert not results.ours(job)
    results.append({"job": "o.mp4", "status": "started", "digest": "d1"})
    assert results.ours(job) and not results.done(job, "d1", out)
    results.append({"job": "o.mp4", "status": "ok", "digest": "d1",
                    "output_sha256": output_sha256(out)})
    results.close()
    with open(tmp_path / RESULTS, "ab") as f:  # a driver killed mid-line
        f.write(b'{"job": "o.mp4", "status": "fa')
    again = Results(tmp_path / RESULTS)
    assert again.done(job, "d1", out)
    assert not again.done(job, "d2", out)  # another input, option or bundle
    out.write_bytes(b"edited")
    assert not again.done(job, "d1", out)
    out.unlink()
    assert not again.done(job, "d1", out)
    again.append({"job": "o.mp4", "status": "failed", "digest": "d1"})
    again.close()
    lines = (tmp_path / RESULTS).read_text().splitlines()
    assert json.loads(lines[-1])["status"] == "failed" and len(lines) == 4


class FakeEngine:
    """Two workers; the worker of each job named in `dies` dies under it that many times."""

    def __init__(self, dies: dict):
        self.dies, self.running, self.stopped = dict(dies), [], False

    def free(self):
        return 2 - len(self.running)

    def submit(self, task):
        self.running.append(task)

    def wait(self):
        task = self.running.pop(0)
        if self.dies.get(task["key"], 0) > 0:
            self.dies[task["key"]] -= 1
            return [(task, Lost("the worker was killed by SIGKILL"))]
        return [(task, {"status": "ok", "frames": 3, "seconds": 0.1, "warnings": []})]

    def stop(self):
        self.stopped = True


def test_a_job_whose_worker_dies_is_retried_up_to_the_bound(tmp_path):
    pending = [(jobfile.Job(k, "animate", {}, k, {}), f"digest-{k}", False) for k in "abc"]
    results = Results(tmp_path / RESULTS)
    engine = FakeEngine({"a": 1, "b": 5})
    many_run._schedule(engine, pending, results, 2, False, tmp_path,
                       JobsBar(3, open(os.devnull, "w")))
    results.close()
    lines = records(tmp_path)
    assert [(r["job"], r["status"], r["attempt"]) for r in lines if r["job"] == "a"] == [
        ("a", "started", 1), ("a", "started", 2), ("a", "ok", 2)]
    b = [r for r in lines if r["job"] == "b"]
    assert [r["status"] for r in b] == ["started"] * 3 + ["failed"]
    assert b[-1]["error"] == "the worker was killed by SIGKILL, on each of 3 tries"
    assert final(tmp_path)["c"]["status"] == "ok" and engine.stopped


# ------------------------------------------------------------------------ on a bundle

JOBS = """source,driving,out,relative,best_frame,visualize
a.png,d1.mp4,a1.mp4,,,
a.png,d2.mp4,a2.gif,false,,
b.png,d1.mp4,b1,,true,true
b.png,bad.mp4,bad.mp4,,,
small.png,d1.mp4,small.gif,,,
"""
PLAIN = {"a1.mp4": ("a.png", "d1.mp4", []), "a2.gif": ("a.png", "d2.mp4", ["--absolute"]),
         "b1": ("b.png", "d1.mp4", ["--best-frame", "--visualize"])}


def same_output(a: Path, b: Path) -> bool:
    return output_sha256(a) == output_sha256(b) is not None


@pytest.fixture(scope="module")
def plain(synthetic_bundle, media, tmp_path_factory):
    """Each job of JOBS by a plain `animate` of its own (one thread, as a worker runs)."""
    out = tmp_path_factory.mktemp("plain")
    for name, (source, driving, extra) in PLAIN.items():
        result = run_cli("animate", "--bundle", synthetic_bundle.bundle, "--source",
                         media / source, "--driving", media / driving, "--out", out / name,
                         "--threads", 1, *extra)
        assert result.returncode == 0, result.stderr
    return out


def test_outputs_equal_plain_animate_and_a_corrupt_video_fails_alone(synthetic_bundle, media,
                                                                      plain, tmp_path):
    (media / "jobs.csv").write_text(JOBS)
    out = tmp_path / "out"
    result = run_cli("animate-many", "--bundle", synthetic_bundle.bundle, "--jobs",
                     media / "jobs.csv", "--out", out, "--workers", 2)
    assert result.returncode == 1, result.stderr
    for name in PLAIN:
        assert same_output(out / name, plain / name), name
    ends = {r["job"]: r for r in records(out) if r["status"] != "started"}
    assert len(ends) == 5 and [k for k, r in ends.items() if r["status"] == "failed"] == [
        "bad.mp4"]
    error = ends["bad.mp4"]["error"]
    assert error.startswith(f"{media / 'bad.mp4'}: truncated")
    warning = f"{media / 'small.png'}: 32x32 is smaller than the model's 64x64 frame"
    assert ends["small.gif"]["warnings"][0].startswith(warning)
    assert [line for line in result.stderr.splitlines()
            if line.startswith(("failed:", "warning:"))] == [
        f"warning: small.gif: {ends['small.gif']['warnings'][0]}",
        f"failed: bad.mp4: {error}"]
    assert sorted(p.name for p in out.iterdir()) == ["a1.mp4", "a2.gif", "b1", RESULTS,
                                                     "small.gif"]
    assert {r["frames"] for r in ends.values() if r["status"] == "ok"} == {14}

    again = run_cli("animate-many", "--bundle", synthetic_bundle.bundle, "--jobs",
                    media / "jobs.csv", "--out", out)
    assert "4 of 5 jobs done (4 by an earlier run), 1 failed" in again.stdout, again.stdout
    assert [r["job"] for r in records(out)[len(ends) * 2:]] == ["bad.mp4"] * 2


def test_a_tpsmm_job_takes_its_mode(tpsmm_bundle, media, tmp_path):
    """A TPSMM bundle's jobs take `mode` (its family's option) and give plain animate's
    bytes in each mode; FOMM's `relative` is not a TPSMM job's field."""
    bundle = tpsmm_bundle("tiny")
    modes = ("relative", "standard", "avd")
    rows = "".join(f"{media / 'a.png'},{media / 'd1.mp4'},{m}.mp4,{m}\n" for m in modes)
    (tmp_path / "jobs.csv").write_text("source,driving,out,mode\n" + rows)
    out = tmp_path / "out"
    result = run_cli("animate-many", "--bundle", bundle, "--jobs", tmp_path / "jobs.csv",
                     "--out", out, "--workers", 2)
    assert result.returncode == 0, result.stderr
    for mode in modes:
        plain = tmp_path / f"plain-{mode}.mp4"
        one = run_cli("animate", "--bundle", bundle, "--source", media / "a.png", "--driving",
                      media / "d1.mp4", "--out", plain, "--mode", mode, "--threads", 1)
        assert one.returncode == 0, one.stderr
        assert same_output(out / f"{mode}.mp4", plain), mode
    assert not same_output(out / "avd.mp4", out / "standard.mp4")
    (tmp_path / "fomm.csv").write_text(f"source,driving,out,relative\n{media / 'a.png'},"
                                       f"{media / 'd1.mp4'},r.mp4,true\n")
    refused = run_cli("animate-many", "--bundle", bundle, "--jobs", tmp_path / "fomm.csv",
                      "--out", tmp_path / "out2")
    assert refused.returncode != 0
    assert "fomm.csv: line 2: unknown field 'relative'" in refused.stderr, refused.stderr


def test_an_output_no_run_recorded_is_replaced_only_with_force(synthetic_bundle, media,
                                                               tmp_path):
    (tmp_path / "jobs.csv").write_text(f"source,driving,out\n{media / 'a.png'},"
                                       f"{media / 'd1.mp4'},mine.mp4\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.mp4").write_bytes(b"the user's")
    args = ("animate-many", "--bundle", synthetic_bundle.bundle, "--jobs",
            tmp_path / "jobs.csv", "--out", out, "--workers", 1)
    result = run_cli(*args)
    assert result.returncode == 1 and "exists; pass --force" in result.stderr
    assert (out / "mine.mp4").read_bytes() == b"the user's"
    assert run_cli(*args, "--force").returncode == 0
    assert (out / "mine.mp4").read_bytes() != b"the user's"


def workers_of(pid: int) -> list[int]:
    """The worker processes of a driver (not multiprocessing's resource tracker, which
    ends by itself when the driver does)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    found = []
    for child in path.read_text().split() if path.exists() else []:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
        except OSError:
            pass
    return found


def wait_for(condition, seconds=120):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_killed_worker_has_its_job_retried(synthetic_bundle, media, tmp_path):
    """kill -9 of the worker writing the long job: the job is tried again and its output
    equals the same job's under another name."""
    (media / "long.csv").write_text("source,driving,out\n" + "".join(
        f"a.png,{clip},{name}\n" for clip, name in (("long.mp4", "long.mp4"),
                                                    ("long.mp4", "twin.mp4"),
                                                    ("d1.mp4", "short.mp4"))))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "fomm_convert.cli", "animate-many",
                             "--bundle", str(synthetic_bundle.bundle), "--jobs",
                             str(media / "long.csv"), "--out", str(out), "--workers", "2"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: out.is_dir() and list(out.glob(".long.mp4.partial-*")))
    victim = int(next(out.glob(".long.mp4.partial-*")).name.split("-")[1].split(".")[0])
    assert victim in workers_of(proc.pid)
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    long = [(r["status"], r["attempt"]) for r in records(out) if r["job"] == "long.mp4"]
    assert long == [("started", 1), ("started", 2), ("ok", 2)]
    assert same_output(out / "long.mp4", out / "twin.mp4")
    assert sorted(p.name for p in out.iterdir()) == ["long.mp4", RESULTS, "short.mp4",
                                                     "twin.mp4"]


def copies_command(bundle, jobs, driving, names, out):
    """A jobs file animating a.png with `driving` into each of `names`, and the command
    running it on 2 workers into `out`."""
    jobs.write_text("source,driving,out\n" + "".join(
        f"a.png,{driving},{name}\n" for name in names))
    return [sys.executable, "-m", "fomm_convert.cli", "animate-many", "--bundle", str(bundle),
            "--jobs", str(jobs), "--out", str(out), "--workers", "2"], out


def test_a_rerun_after_kill_9_of_the_driver_does_only_the_missing_jobs(
        synthetic_bundle, media, plain, tmp_path):
    """Eight copies of one job: the driver is killed once two are recorded; its workers
    stop with it; the rerun does only the jobs not recorded ok, and every output is
    plain animate's."""
    names = [f"copy{i}.mp4" for i in range(8)]
    args, out = copies_command(synthetic_bundle.bundle, media / "copies.csv", "d1.mp4", names,
                               tmp_path / "out")
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ok_before = lambda: [r["job"] for r in records(out) if r["status"] == "ok"]  # noqa: E731
    wait_for(lambda: (out / RESULTS).exists() and len(ok_before()) >= 2)
    workers = workers_of(proc.pid)
    proc.kill()
    proc.wait()
    wait_for(lambda: not any(Path(f"/proc/{w}").exists() for w in workers), 30)
    done = ok_before()
    assert 2 <= len(done) < len(names), done
    count = len(records(out))
    mtimes = {name: (out / name).stat().st_mtime_ns for name in done}
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rerun = records(out)[count:]
    assert {r["job"] for r in rerun} == set(names) - set(done)
    assert all(r["status"] in ("started", "ok") for r in rerun)
    assert mtimes == {name: (out / name).stat().st_mtime_ns for name in done}
    for name in names:
        assert same_output(out / name, plain / "a1.mp4"), name
    assert sorted(p.name for p in out.iterdir()) == sorted(names + [RESULTS])


def test_ctrl_c_leaves_finished_outputs_and_their_records(synthetic_bundle, media, tmp_path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) once a job is recorded:
    exit 130, the finished outputs and their records stay, the jobs underway leave nothing
    and no worker; the rerun does the rest."""
    names = [f"long{i}.mp4" for i in range(4)]
    args, out = copies_command(synthetic_bundle.bundle, media / "longs.csv", "long.mp4", names,
                               tmp_path / "out")
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=sigint_as_at_a_terminal)
    ok_now = lambda: [r["job"] for r in records(out) if r["status"] == "ok"]  # noqa: E731
    wait_for(lambda: (out / RESULTS).exists() and ok_now())
    workers = workers_of(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and stderr.endswith("interrupted\n"), stderr
    assert not any(Path(f"/proc/{w}").exists() for w in workers)
    done = ok_now()
    assert 1 <= len(done) < len(names)
    assert all(r["status"] in ("started", "ok") for r in records(out))
    assert sorted(p.name for p in out.iterdir()) == sorted(done + [RESULTS])
    count = len(records(out))
    assert subprocess.run(args, cwd=ROOT, capture_output=True).returncode == 0
    assert {r["job"] for r in records(out)[count:]} == set(names) - set(done)
    for name in names:
        assert same_output(out / name, out / names[0]), name


def test_reconstruct_gives_reconstructs_l1_per_video(synthetic_bundle, media, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("d1.mp4", "d2.mp4"):
        (clips / name).write_bytes((media / name).read_bytes())
    expected = {}
    for name in ("d1.mp4", "d2.mp4"):
        result = run_cli("reconstruct", "--bundle", synthetic_bundle.bundle, "--video",
                         clips / name, "--threads", 1, "--json", tmp_path / f"{name}.json")
        assert result.returncode == 0, result.stderr
        expected[name] = json.loads((tmp_path / f"{name}.json").read_text())
    out = tmp_path / "out"
    result = run_cli("animate-many", "--bundle", synthetic_bundle.bundle, "--reconstruct",
                     clips, "--out", out)
    assert result.returncode == 0, result.stderr
    got = final(out)
    for name, report in expected.items():
        assert got[name]["l1"] == report["l1"] and got[name]["frames"] == report["frames"]
        assert got[name]["l1_per_frame"] == report["l1_per_frame"]
        assert f"{name}: L1 {report['l1']:.6f} over 14 frames" in result.stdout
    # The original's figure: every frame of every video, one mean.
    overall = np.mean(expected["d1.mp4"]["l1_per_frame"] + expected["d2.mp4"]["l1_per_frame"])
    assert f"reconstruction L1: {overall:.6f} over 28 frames of 2 videos" in result.stdout


# ------------------------------------------------------------------------ Ray

@pytest.fixture(scope="module")
def ray_head():
    """A Ray head in this process on 127.0.0.1 (2 CPUs, no dashboard), stopped after."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
    ray = require_module("ray", "ray")
    import logging
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False, logging_level=logging.ERROR)
    address = ray.get_runtime_context().gcs_address
    assert address.startswith("127.0.0.1:"), address
    yield address
    ray.shutdown()


def test_ray_gives_the_bytes_of_local_and_plain_animate(synthetic_bundle, media, plain,
                                                        ray_head, tmp_path):
    """The jobs of JOBS as Ray tasks (inputs, bundle and outputs through the object store):
    plain animate's bytes, and the corrupt video fails alone with local's line."""
    (media / "jobs.csv").write_text(JOBS)
    out = tmp_path / "out"
    summary = fomm_convert.animate_many(synthetic_bundle.bundle, out,
                                        jobs=media / "jobs.csv", engine="ray", workers=2,
                                        stream=open(os.devnull, "w"), notify=lambda _: None)
    assert summary["ok"] == 4 and [key for key, _ in summary["failed"]] == ["bad.mp4"]
    assert summary["failed"][0][1].startswith(f"{media / 'bad.mp4'}: truncated")
    assert [(k, w.split(":")[0]) for k, w in summary["warnings"]] == [
        ("small.gif", str(media / "small.png"))]  # the user's path, not the worker's copy
    for name in PLAIN:
        assert same_output(out / name, plain / name), name
    assert sorted(p.name for p in out.iterdir()) == ["a1.mp4", "a2.gif", "b1", RESULTS,
                                                     "small.gif"]


def ray_processes(title: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(
                    title.encode()):
                found.append(int(proc.name))
        except OSError:
            pass
    return found


def test_ray_retries_the_job_of_a_killed_worker(synthetic_bundle, media, ray_head, tmp_path):
    """`--engine ray --address` (the running head): kill -9 of the actor running the long
    job, which is tried again on a new actor; its output equals its twin's."""
    (media / "long.csv").write_text("source,driving,out\na.png,long.mp4,long.mp4\n"
                                    "a.png,long.mp4,twin.mp4\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "fomm_convert.cli", "animate-many",
                             "--bundle", str(synthetic_bundle.bundle), "--jobs",
                             str(media / "long.csv"), "--out", str(out), "--engine", "ray",
                             "--address", ray_head, "--workers", "2"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(ray_processes("ray::RayWorker.run")) == 2)
    os.kill(ray_processes("ray::RayWorker.run")[0], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    attempts = [r["attempt"] for r in records(out) if r["status"] == "ok"]
    assert sorted(attempts) == [1, 2], records(out)
    assert same_output(out / "long.mp4", out / "twin.mp4")


def test_without_ray_the_engine_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(FommError) as info:
        many_run.open_engine("ray", {}, 1, 1)
    assert str(info.value) == ("animate-many --engine ray needs ray, which is not "
                               "installed: pip install 'fomm-convert[ray]'")
