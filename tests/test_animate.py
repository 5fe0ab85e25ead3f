"""`fomm-convert animate` and `reconstruct`: the demo's input preparation, streaming,
outputs, best frame, errors, flat memory and the lite install."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
from click.testing import CliRunner

from fomm_convert import media
from fomm_convert.animation import best_frame, drawing, jobs, loop, progress
from fomm_convert.cli import cli
from fomm_convert.fomm.animation import Normalisation
from fomm_convert.keypoints import detect_frame
from fomm_convert.pipeline.predict import predict

from conftest import (FIXTURES, ORACLE, ROOT, SHARED, require_module, require_shared,
                      sigint_as_at_a_terminal)

CKPT = str(FIXTURES / "tiny-seed7.pth.tar")
MEDIA = SHARED / "media"
FPS = 12
ABSOLUTE = Normalisation(relative=False, adapt_scale=False)  # the reconstruction's


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def ok(result):
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def write_video(path, frames, fps=FPS, lossless=False):
    """An .mp4 written with imageio (H.264; lossless RGB when asked)."""
    extra = dict(codec="libx264rgb", pixelformat="rgb24", output_params=["-crf", "0"]) \
        if lossless else {}
    imageio_v2.mimwrite(path, [np.asarray(f) for f in frames], fps=fps, macro_block_size=1,
                        **extra)
    return path


def u8(x):
    return np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)


def png_frames(directory) -> np.ndarray:
    names = sorted(Path(directory).iterdir())
    assert [p.name for p in names] == [f"frame_{i:06d}.png" for i in range(len(names))]
    return np.stack([iio.imread(p) for p in names])


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    """The session's tiny bundle: the same config and checkpoint; animate picks its tflite
    files as it would a tflite,onnx bundle's (formats.FASTEST_FIRST)."""
    return tiny_bundle


@pytest.fixture(scope="module")
def oracle():
    with np.load(FIXTURES / "tiny.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def files(tmp_path_factory, oracle):
    """A 128x128 RGBA source PNG (the oracle's source, upscaled, with a varying alpha) and
    a 14-frame 64x64 driving video from the oracle's driving frames (there and back)."""
    root = tmp_path_factory.mktemp("inputs")
    source = np.kron(u8(oracle["source"][0].transpose(1, 2, 0)), np.ones((2, 2, 1), np.uint8))
    alpha = np.linspace(64, 255, 128).astype(np.uint8)[None, :, None].repeat(128, 0)
    iio.imwrite(root / "source.png", np.concatenate([source, alpha], -1))
    driving = u8(oracle["driving"].transpose(0, 2, 3, 1))
    driving = np.concatenate([driving, driving[::-1][1:-1]])
    write_video(root / "driving.mp4", driving)
    return {"source": root / "source.png", "driving": root / "driving.mp4",
            "frames": len(driving), "root": root}


def backend(bundle, name="tflite"):
    return jobs.prepare(bundle, name, CKPT if name in ("tf", "torch") else None, None).backend


# ------------------------------------------------------------------------ resize parity

def test_resize_matches_skimage():
    skimage = require_module("skimage.transform")
    rng = np.random.default_rng(0)
    cases = [((402, 402, 4), (256, 256)), ((256, 256, 3), (64, 64)), ((50, 70, 3), (64, 64)),
             ((64, 64, 3), (200, 130)), ((300, 37, 3), (64, 90)), ((5, 7, 1), (64, 64)),
             ((40, 30), (17, 45)), ((33, 500, 3), (17, 3)), ((2, 2, 3), (1, 1)),
             ((64, 64, 3), (64, 32))]
    worst = 0.0
    for shape, size in cases:
        for dtype in (np.uint8, np.uint16, np.float32, np.float64):
            if np.issubdtype(dtype, np.integer):
                image = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
            else:
                image = rng.random(shape).astype(dtype)
            expected = skimage.resize(image, size)
            got = media.resize_like_demo(image, size)
            assert got.shape == expected.shape and got.dtype == expected.dtype, (shape, dtype)
            worst = max(worst, float(np.abs(got.astype(np.float64) - expected).max()))
    assert worst <= 1e-6, worst


def test_source_and_driving_match_the_oracle():
    """source.png resized to 256x256 and flipped is the oracle's `source`; frames 40..47
    of driving.mp4 decoded with imageio-ffmpeg are its `driving`."""
    require_shared("media/source.png", "media/driving.mp4", "oracle/vox-256.npz")
    with np.load(ORACLE / "vox-256.npz") as data:
        source, driving, rows = data["source"], data["driving"], data["driving_frame_indices"]
    ours = media.read_image(MEDIA / "source.png", (256, 256))
    assert ours.dtype == np.float32 and ours.shape == (256, 256, 3)
    assert np.abs(ours[:, ::-1].transpose(2, 0, 1)[None] - source).max() <= 1e-6
    video = media.open_video(MEDIA / "driving.mp4")
    assert video.fps == 30 and video.size == (256, 256) and not video.has_audio
    frames = []
    for index, frame in enumerate(video.frames((256, 256))):
        if index in rows:
            frames.append(frame)
        if index >= rows.max():
            break
    assert np.abs(np.stack(frames).transpose(0, 3, 1, 2) - driving).max() <= 1e-6


def test_read_image_modes_and_errors(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "rgb.png", rgb)
    iio.imwrite(tmp_path / "grey.png", rgb[..., 0])
    iio.imwrite(tmp_path / "rgba.png", np.concatenate([rgb, rgb[..., :1]], -1))
    iio.imwrite(tmp_path / "photo.jpg", rgb)
    assert np.array_equal(media.read_image(tmp_path / "rgb.png"), rgb / np.float32(255))
    grey = media.read_image(tmp_path / "grey.png")
    assert grey.shape == (30, 20, 3) and np.array_equal(grey[..., 0], grey[..., 2])
    assert np.array_equal(media.read_image(tmp_path / "rgba.png"),
                          media.read_image(tmp_path / "rgb.png"))
    assert media.read_image(tmp_path / "photo.jpg", (64, 64)).shape == (64, 64, 3)
    (tmp_path / "notes.png").write_text("not a picture")
    for path, message in ((tmp_path / "notes.png", "not a readable image"),
                          (tmp_path / "missing.png", "no such file"),
                          (tmp_path, "is a directory")):
        with pytest.raises(media.MediaError, match=message) as info:
            media.read_image(path)
        assert "\n" not in str(info.value)


# ------------------------------------------------------------------------ animate

@pytest.mark.parametrize("name", ["tflite", "onnx", "torch", "tf"])
def test_animate_png_frames_equal_predict(bundle, files, tmp_path, name):
    """The streamed CLI and predict() on the same resized arrays, same backend: equal up to
    8-bit rounding (the animation is relative with adapt-scale, predict's gen_prediction)."""
    out = tmp_path / "frames"
    extra = ["--checkpoint", CKPT] if name in ("tf", "torch") else []
    ok(run("animate", "--bundle", bundle, "--source", files["source"], "--driving",
           files["driving"], "--out", out, "--backend", name, "--relative", "--adapt-scale",
           "--batch-size", 3, *extra))
    got = png_frames(out)
    source = media.read_image(files["source"], (64, 64))
    driving = np.stack(list(media.open_video(files["driving"]).frames((64, 64))))
    assert len(got) == len(driving) == files["frames"]
    expected = predict(backend(bundle, name), source[None], driving)["gen_prediction"]
    expected = u8(expected.transpose(0, 2, 3, 1)).astype(int)
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_absolute_mode_equals_predict(bundle, files, tmp_path):
    ok(run("animate", "--bundle", bundle, "--source", files["source"], "--driving",
           files["driving"], "--out", tmp_path / "abs", "--absolute", "--backend", "onnx"))
    source = media.read_image(files["source"], (64, 64))
    driving = np.stack(list(media.open_video(files["driving"]).frames((64, 64))))
    expected = predict(backend(bundle, "onnx"), source[None], driving)["gen_abs_prediction"]
    expected = u8(expected.transpose(0, 2, 3, 1)).astype(int)
    assert np.abs(png_frames(tmp_path / "abs").astype(int) - expected).max() <= 1


def test_synthetic_bundle_says_so(bundle, synthetic_bundle, files, tmp_path):
    # A bundle built from synthetic weights (its manifest's flag cannot be edited in: the
    # version digest covers it).
    result = ok(run("animate", "--bundle", synthetic_bundle.bundle, "--source", files["source"],
                    "--driving", files["driving"], "--out", tmp_path / "o.gif"))
    notice = [line for line in result.stderr.splitlines() if "synthetic" in line]
    assert len(notice) == 1 and "not a trained model" in notice[0]
    assert "synthetic" not in ok(run("animate", "--bundle", bundle, "--source",
                                      files["source"], "--driving", files["driving"], "--out",
                                      tmp_path / "p.gif")).stderr


def test_mp4_keeps_fps_and_frame_count(bundle, files, tmp_path):
    out = tmp_path / "result.mp4"
    result = ok(run("animate", "--bundle", bundle, "--source", files["source"], "--driving",
                    files["driving"], "--out", out))
    assert f"{files['frames']} frames at {FPS} fps" in result.stdout
    video = media.open_video(out)
    assert video.fps == FPS and video.size == (64, 64) and not video.has_audio
    assert sum(1 for _ in video) == files["frames"]
    assert [p.name for p in tmp_path.iterdir()] == ["result.mp4"]


def test_mp4_keeps_the_driving_audio(bundle, files, tmp_path):
    driving = tmp_path / "talk.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i",
                    str(files["driving"]), "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
                    "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest",
                    str(driving)], check=True)
    assert media.open_video(driving).has_audio
    out = tmp_path / "result.mp4"
    result = ok(run("animate", "--bundle", bundle, "--source", files["source"], "--driving",
                    driving, "--out", out))
    assert "with audio" in result.stdout
    video = media.open_video(out)
    assert video.has_audio and sum(1 for _ in video) == files["frames"]


def test_gif(bundle, files, tmp_path):
    ok(run("animate", "--bundle", bundle, "--source", files["source"], "--driving",
           files["driving"], "--out", tmp_path / "a.gif"))
    ok(run("animate", "--bundle", bundle, "--source", files["source"], "--driving",
           files["driving"], "--out", tmp_path / "frames"))
    gif = iio.imread(tmp_path / "a.gif", index=None)[..., :3]
    exact = png_frames(tmp_path / "frames")
    assert gif.shape == exact.shape
    # One adaptive palette per frame: close to the lossless frames, not equal.
    assert np.abs(gif.astype(int) - exact).mean() < 4
    meta = iio.immeta(tmp_path / "a.gif", index=0)
    assert meta["loop"] == 0 and meta["duration"] in (80, 90)  # 1/12 s in 1/100 s steps
    # ffmpeg reads it too.
    assert sum(1 for _ in media.open_video(tmp_path / "a.gif")) == files["frames"]


def test_png_directory_is_replaced_only_when_it_holds_frames(bundle, files, tmp_path):
    out = tmp_path / "frames"
    args = ("animate", "--bundle", bundle, "--source", files["source"], "--driving",
            files["driving"], "--out", out)
    ok(run(*args))
    first = png_frames(out)
    (out / f"frame_{99:06d}.png").write_bytes(b"stale")
    result = run(*args)
    assert result.exit_code == 1 and f"{out} exists; pass --force" in result.stderr
    ok(run(*args, "--force"))
    assert np.array_equal(png_frames(out), first)  # replaced, the stale frame is gone
    (out / "notes.txt").write_text("mine")
    result = run(*args, "--force")
    assert result.exit_code != 0 and "holds other files" in result.stderr
    assert (out / "notes.txt").read_text() == "mine"


def test_best_frame(bundle, files, oracle, tmp_path):
    """A video in which frame 5 is the source itself: picked, the output as long as the
    input, and equal to the demo's forward/backward join from that frame."""
    source = u8(oracle["source"][0].transpose(1, 2, 0))
    iio.imwrite(tmp_path / "source.png", source)
    driving = u8(oracle["driving"].transpose(0, 2, 3, 1))
    frames = np.concatenate([driving[:5], source[None], driving[5:]])
    write_video(tmp_path / "driving.mp4", frames, lossless=True)
    result = ok(run("animate", "--bundle", bundle, "--source", tmp_path / "source.png",
                    "--driving", tmp_path / "driving.mp4", "--out", tmp_path / "out",
                    "--best-frame", "--batch-size", 2))
    assert "motion from frame 5" in result.stdout
    got = png_frames(tmp_path / "out")
    assert len(got) == len(frames)

    # The original: make_animation forward from frame 5 and backward to frame 0, each
    # relative to frame 5; predictions_backward[::-1] + predictions_forward[1:].
    runner = backend(bundle)
    src = loop.Source.prepare(runner, source / np.float32(255))
    video = list(media.open_video(tmp_path / "driving.mp4").frames())

    def make_animation(part):
        initial = detect_frame(runner, part[0])
        out = []
        for frame in part:
            norm = runner.process_kp_driving(detect_frame(runner, frame), initial, src.kp,
                                             True, True, False)
            out.append(runner.generate(src.encoded, norm, src.kp)[0])
        return out
    forward, backward = make_animation(video[5:]), make_animation(video[:6][::-1])
    expected = u8(np.stack(backward[::-1] + forward[1:])).astype(int)
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_visualize(bundle, files, tmp_path):
    common = ("animate", "--bundle", bundle, "--source", files["source"], "--driving",
              files["driving"])
    ok(run(*common, "--out", tmp_path / "plain"))
    ok(run(*common, "--out", tmp_path / "vis", "--visualize"))
    plain, vis = png_frames(tmp_path / "plain"), png_frames(tmp_path / "vis")
    assert vis.shape == (files["frames"], 64, 192, 3)
    assert np.array_equal(vis[:, :, 128:], plain)
    source = u8(media.read_image(files["source"], (64, 64)))
    assert all(np.array_equal(v[:, :64], vis[0][:, :64]) for v in vis)  # the same source
    drawn = np.any(vis[0][:, :64] != source, axis=-1)
    assert 5 <= drawn.sum() <= 5 * 13  # five small discs
    palette = {tuple(c) for c in drawing.PALETTE[:5]}
    assert {tuple(c) for c in vis[0][:, :64][drawn]} <= palette


def test_reconstruct_visualize(bundle, files, tmp_path):
    ok(run("reconstruct", "--bundle", bundle, "--video", files["driving"], "--out",
           tmp_path / "vis", "--visualize", "--backend", "onnx"))
    vis = png_frames(tmp_path / "vis")
    assert vis.shape == (files["frames"], 64, 192, 3)


def test_draw_keypoints_places_discs():
    image = np.zeros((64, 64, 3), np.float32)
    out = drawing.draw_keypoints(image, np.array([[0.0, 0.0], [-1.0, -1.0], [0.5, -0.5]]))
    assert tuple(out[32, 32]) == tuple(drawing.PALETTE[0])
    assert tuple(out[0, 0]) == tuple(drawing.PALETTE[1])
    assert tuple(out[16, 48]) == tuple(drawing.PALETTE[2])
    assert out.dtype == np.uint8 and image.max() == 0  # a copy


# ------------------------------------------------------------------------ reconstruct

def test_reconstruct_equals_the_original_definition(bundle, files, tmp_path):
    """Mean over frames of the mean |prediction - frame|, with frame 0 as the source and
    absolute keypoints: predict's gen_abs_prediction for the same arrays."""
    report = tmp_path / "r.json"
    result = ok(run("reconstruct", "--bundle", bundle, "--video", files["driving"], "--json",
                    report, "--out", tmp_path / "rec.mp4"))
    data = json.loads(report.read_text())
    assert np.isfinite(data["l1"]) and 0 < data["l1"] < 1
    assert data["frames"] == files["frames"] == len(data["l1_per_frame"])
    assert f"{data['l1']:.6f}" in result.stdout
    driving = np.stack(list(media.open_video(files["driving"]).frames((64, 64))))
    pred = predict(backend(bundle), driving[:1], driving)["gen_abs_prediction"]
    per_frame = np.abs(pred.transpose(0, 2, 3, 1) - driving).mean(axis=(1, 2, 3))
    assert abs(data["l1"] - per_frame.mean()) <= 1e-5
    assert sum(1 for _ in media.open_video(tmp_path / "rec.mp4")) == files["frames"]


class IdentityBackend:
    """A generator that returns its source, keypoints from the mean colour: the perfect
    reconstruction of a static video, for checking what reconstruct compares."""
    num_kp, estimate_jacobian, frame_shape = 3, True, (16, 16, 3)

    def __init__(self):
        self.calls = []

    def kp_detector(self, image):
        mean = image.mean(axis=(1, 2))[:, :2]
        value = np.stack([mean, mean + [0.5, 0], mean + [0, 0.5]], 1).astype(np.float32)
        return {"value": value, "jacobian": np.tile(np.eye(2, dtype=np.float32),
                                                    (len(image), 3, 1, 1))}

    def process_kp_driving(self, kp_driving, kp_initial, kp_source, *flags, **named):
        return kp_driving

    def encode_source(self, source):
        return {"source": source}

    def generate(self, encoded, kp_driving, kp_source):
        self.calls.append(len(kp_driving["value"]))
        return np.repeat(encoded["source"], len(kp_driving["value"]), 0)


def test_reconstruct_of_a_static_video_is_exact_with_a_perfect_generator():
    rng = np.random.default_rng(2)
    frame = rng.random((16, 16, 3)).astype(np.float32)
    still = loop.reconstruct_frames(IdentityBackend(), [frame] * 7, mode=ABSOLUTE, batch_size=3)
    assert still.l1 == 0 and still.frames == 7
    other = loop.reconstruct_frames(IdentityBackend(), [frame] * 7, mode=ABSOLUTE, batch_size=3,
                                    source=rng.random((16, 16, 3)).astype(np.float32))
    assert other.l1 > 0.2


# ------------------------------------------------------------------------ memory

class Tracked:
    """Wraps a frame iterator and counts how many of its frames are still alive."""

    def __init__(self, frames):
        self.frames, self.alive, self.peak, self.made = frames, 0, 0, 0

    def _gone(self):
        self.alive -= 1

    def __iter__(self):
        for frame in self.frames:
            frame = np.array(frame)  # a fresh object per frame, owned by nobody else
            weakref.finalize(frame, self._gone)
            self.alive += 1
            self.made += 1
            self.peak = max(self.peak, self.alive)
            yield frame
            del frame


def synthetic_frames(n, shape=(16, 16, 3)):
    rng = np.random.default_rng(3)
    for _ in range(n):
        yield rng.random(shape).astype(np.float32)


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_the_loop_holds_at_most_one_batch_of_frames(batch_size):
    backend = IdentityBackend()
    source = loop.Source.prepare(backend, next(synthetic_frames(1)))
    frames = Tracked(synthetic_frames(50))
    count = 0
    for batch in loop.animate_frames(backend, source, frames, mode=Normalisation(True, True),
                                     batch_size=batch_size):
        count += len(batch.prediction)
    assert count == frames.made == 50
    assert frames.peak <= batch_size, frames.peak
    assert max(backend.calls) == batch_size

    scan = Tracked(synthetic_frames(20))
    index, keypoints = best_frame.find_best_frame(backend, source, scan)
    assert len(keypoints) == 20 and scan.peak == 1

    rec = Tracked(synthetic_frames(20))
    assert loop.reconstruct_frames(backend, rec, mode=ABSOLUTE, batch_size=batch_size).frames \
        == 20
    assert rec.peak <= batch_size


def test_the_animate_command_streams(bundle, files, tmp_path, monkeypatch):
    """Through run_animate, with the video reader's frames counted."""
    original = media.VideoReader.frames
    tracked = []

    def counted(self, shape=None, crop="none"):
        tracked.append(Tracked(original(self, shape, crop)))
        return iter(tracked[-1])
    monkeypatch.setattr(media.VideoReader, "frames", counted)
    opened = jobs.prepare(bundle, "tflite", None, None)
    summary = jobs.run_animate(opened, files["source"], files["driving"], tmp_path / "o.mp4",
                               mode=Normalisation(True, False), batch_size=4, best_frame=True)
    assert summary["frames"] == files["frames"] and len(tracked) == 2
    # Decoding runs ahead of inference: FRAMES_AHEAD waiting, one being decoded, and the
    # scan's one frame or the loop's batch of 4.
    assert tracked[0].peak <= jobs.FRAMES_AHEAD + 2
    assert tracked[1].peak <= jobs.FRAMES_AHEAD + 1 + 4


# ------------------------------------------------------------------------ errors

def error_cases(bundle, files, tmp):
    tampered = tmp / "tampered"
    subprocess.run(["cp", "-r", str(bundle), str(tampered)], check=True)
    with open(tampered / "tflite" / "generator.tflite", "ab") as f:
        f.write(b"\0")
    (tmp / "notes.txt").write_text("text")
    (tmp / "empty.mp4").write_bytes(b"")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=duration=1", str(tmp / "sound.m4a")], check=True)
    (tmp / "afile").write_text("")
    good = {"--bundle": bundle, "--source": files["source"], "--driving": files["driving"],
            "--out": tmp / "out.mp4"}
    return {
        "source missing": ({"--source": tmp / "nope.png"}, "no such file"),
        "source not an image": ({"--source": tmp / "notes.txt"}, "not a readable image"),
        "source is a video": ({"--source": files["driving"]}, "not a readable image"),
        "driving not a video": ({"--driving": tmp / "notes.txt"}, "not a readable video"),
        "driving empty": ({"--driving": tmp / "empty.mp4"}, "not a readable video"),
        "driving without video": ({"--driving": tmp / "sound.m4a"},
                                  "no video stream (only audio)"),
        "driving missing": ({"--driving": tmp / "nope.mp4"}, "no such file"),
        "bundle tampered": ({"--bundle": tampered}, "does not verify"),
        "not a bundle": ({"--bundle": tmp}, "not a bundle"),
        "format not in bundle": ({"--backend": "executorch"}, "has no executorch"),
        "output folder impossible": ({"--out": tmp / "afile" / "out.mp4"},
                                     "cannot create its folder"),
        "output unwritable mp4": ({"--out": "/proc/out.mp4"}, "cannot write there"),
        "output unwritable gif": ({"--out": "/proc/out.gif"}, "cannot write there"),
        "output unwritable pngs": ({"--out": "/proc/frames"}, "cannot write there"),
        "output type unknown": ({"--out": tmp / "out.avi"}, "unknown output type"),
        "output over the input": ({"--out": files["driving"]}, "is also an input"),
    }, good


def test_every_error_is_one_line_and_leaves_no_output(bundle, files, tmp_path):
    cases, good = error_cases(bundle, files, tmp_path)
    for name, (change, message) in cases.items():
        args = {**good, **change}
        before = sorted(p.name for p in tmp_path.iterdir())
        result = run("animate", *[x for kv in args.items() for x in kv])
        assert result.exit_code == 1, (name, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (name, result.stderr)
        assert message in lines[0], (name, lines[0])
        assert sorted(p.name for p in tmp_path.iterdir()) == before, name
    assert files["driving"].exists()
    # reconstruct shares the checks
    for extra, message in ((["--video", tmp_path / "empty.mp4", "--out", tmp_path / "r.mp4"],
                            "not a readable video"),
                           (["--video", files["driving"], "--json", "/proc/r.json"],
                            "cannot write there"),
                           (["--video", files["driving"], "--out", "/proc/r.mp4"],
                            "cannot write there")):
        result = run("reconstruct", "--bundle", bundle, *extra)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "r.mp4").exists()


def test_errors_come_before_the_runtime_says_anything(bundle, files, tmp_path):
    """In a real process (LiteRT logs to stderr when it first runs): a bad output is the
    only line on stderr."""
    result = subprocess.run([sys.executable, "-m", "fomm_convert.cli", "animate", "--bundle",
                             str(bundle), "--source", str(files["source"]), "--driving",
                             str(files["driving"]), "--out", "/proc/out.mp4"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: /proc/out.mp4: cannot write there (No such file or directory)"]


class FailingBackend:
    """Wraps a backend; generate fails on its third call (mid-video)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, *args):
        self.calls += 1
        if self.calls == 3:
            raise media.MediaError("disk full")
        return self.inner.generate(*args)


@pytest.mark.parametrize("name", ["out.mp4", "out.gif", "frames", "new/sub/out.mp4"])
def test_a_failure_midway_leaves_nothing(bundle, files, tmp_path, name):
    opened = jobs.prepare(bundle, "tflite", None, None)
    opened.backend = FailingBackend(opened.backend)
    with pytest.raises(media.MediaError, match="disk full"):
        jobs.run_animate(opened, files["source"], files["driving"], tmp_path / name,
                         mode=Normalisation(True, False), batch_size=2)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_run_leaves_only_a_hidden_partial_that_the_next_run_removes(bundle, files,
                                                                             tmp_path):
    stale = tmp_path / ".out.mp4.partial-999999999.mp4"
    stale.write_bytes(b"half")
    ok(run("animate", "--bundle", bundle, "--source", files["source"], "--driving",
           files["driving"], "--out", tmp_path / "out.mp4"))
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_signal_midway_stops_every_stage_and_leaves_nothing(bundle, files, tmp_path, signum):
    """SIGTERM exits with 128 + 15, Ctrl-C's SIGINT with 128 + 2 and 'interrupted'; either
    way the decoding and encoding threads stop with the process, the output is removed."""
    import signal
    import time
    signum = getattr(signal, signum)
    clip = tmp_path / "long.mp4"
    frames = u8(np.load(FIXTURES / "tiny.npz")["driving"].transpose(0, 2, 3, 1))
    write_video(clip, np.concatenate([frames, frames[::-1]] * 120))  # 1920 frames
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "fomm_convert.cli", "animate", "--bundle",
                             str(bundle), "--source", str(files["source"]), "--driving",
                             str(clip), "--out", str(out_dir / "frames")], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_at_a_terminal)
    deadline = time.monotonic() + 60
    partial = out_dir / f".frames.partial-{proc.pid}"
    while time.monotonic() < deadline and proc.poll() is None:
        if partial.is_dir() and len(list(partial.iterdir())) > 50:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "finished before it could be interrupted"
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    if signum == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM, stderr
    else:
        assert proc.returncode == 128 + signal.SIGINT, stderr
        assert stderr.endswith("interrupted\n") and "Aborted!" not in stderr, stderr
    assert list(out_dir.iterdir()) == []


def test_progress_bar_reports_frames_per_second():
    import io
    stream = io.StringIO()
    bar = progress.ProgressBar("animate", 10, True, stream)
    for _ in range(10):
        bar.update()
    bar.close()
    text = stream.getvalue()
    assert text.count("\n") == 1 and "10/~10 frames" in text and "frames/s" in text


# ------------------------------------------------------------------------ lite install

LITE = """
import sys
for name in ("torch", "tensorflow", "scipy", "skimage"):
    sys.modules[name] = None  # unimportable
from fomm_convert.cli import main
sys.argv = ["fomm-convert"] + sys.argv[1:]
try:
    main()
finally:
    loaded = sorted(m for m in ("torch", "tensorflow", "scipy", "skimage", "onnx")
                    if sys.modules.get(m) is not None)
    print("LOADED", loaded, file=sys.stderr)
"""


@pytest.mark.parametrize("name", ["tflite", "onnx"])
def test_lite_install_animates_without_torch_or_tensorflow(bundle, files, tmp_path, name):
    out = tmp_path / "out.mp4"
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(LITE), "animate", "--bundle",
                             str(bundle), "--source", str(files["source"]), "--driving",
                             str(files["driving"]), "--out", str(out), "--backend", name,
                             "--best-frame", "--visualize"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stderr
    assert sum(1 for _ in media.open_video(out)) == files["frames"]
