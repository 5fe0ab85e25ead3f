"""The pipelined `animate`: decoding, inference and encoding in stages of their own give the
frames a serial run of the backend's calls gives, hold a bounded number of items, and an
error or Ctrl-C in any stage stops them all, with its own one-line error and no output."""
from __future__ import annotations

import threading
import time

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest

from fomm_convert import media
from fomm_convert.animation import jobs
from fomm_convert.animation.stages import Stages
from fomm_convert.fomm.animation import Normalisation

from conftest import FIXTURES

STAGE_THREADS = ("decode", "encode")


def stage_threads():
    return [t.name for t in threading.enumerate() if t.name in STAGE_THREADS]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A 64x64 source PNG and a lossless 10-frame 64x64 video, from the oracle's frames."""
    tmp = tmp_path_factory.mktemp("inputs")
    with np.load(FIXTURES / "tiny.npz") as data:
        source, driving = data["source"], data["driving"]
    u8 = lambda x: np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)  # noqa: E731
    frames = u8(driving.transpose(0, 2, 3, 1))
    frames = np.concatenate([frames, frames[::-1]])[:10]
    iio.imwrite(tmp / "source.png", u8(source[0].transpose(1, 2, 0)))
    iio.imwrite(tmp / "driving.mp4", frames, fps=10, codec="libx264rgb",
                output_params=["-crf", "0"], macro_block_size=1)
    return {"source": tmp / "source.png", "driving": tmp / "driving.mp4", "frames": len(frames)}


def serial_reference(backend, source_path, driving_path, size, batch_size):
    """Today's definition, written out: the source's keypoints and encoding once, each
    batch's keypoints one frame at a time, motion relative to the first frame, uint8 by
    rint(255 x)."""
    source = media.read_image(source_path, size)[None].astype(np.float32)
    kp_source, encoded = backend.kp_detector(source), backend.encode_source(source)
    reader = imageio_ffmpeg.read_frames(str(driving_path))
    width, height = next(reader)["size"]
    frames = [media.resize_like_demo(np.frombuffer(raw, np.uint8).reshape(height, width, 3),
                                     size).astype(np.float32) for raw in reader]
    out, kp_initial = [], None
    for start in range(0, len(frames), batch_size):
        kps = [backend.kp_detector(f[None]) for f in frames[start:start + batch_size]]
        kp = {k: np.concatenate([p[k] for p in kps]) for k in kps[0]}
        kp_initial = kp_initial or {k: v[:1] for k, v in kp.items()}
        norm = backend.process_kp_driving(kp, kp_initial, kp_source, True, True, True)
        prediction = np.asarray(backend.generate(encoded, norm, kp_source), np.float64)
        out.extend(np.clip(np.rint(prediction * 255), 0, 255).astype(np.uint8))
    return np.stack(out)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_pipelined_frames_equal_the_serial_calls(tiny_bundle, inputs, tmp_path, batch_size):
    opened = jobs.prepare(tiny_bundle, "tflite")
    out = tmp_path / "frames"
    summary = jobs.run_animate(opened, inputs["source"], inputs["driving"], out,
                               mode=Normalisation(True, True), batch_size=batch_size)
    written = np.stack([iio.imread(p) for p in sorted(out.iterdir())])
    expected = serial_reference(opened.backend, inputs["source"], inputs["driving"],
                                jobs.frame_size(opened.spec), batch_size)
    assert summary["frames"] == len(expected) == inputs["frames"]
    np.testing.assert_array_equal(written, expected)
    assert summary["inference_frames_per_second"] >= summary["frames_per_second"] > 0
    assert stage_threads() == []


def test_a_producer_runs_at_most_its_bound_ahead():
    pulled = []

    def source():
        for i in range(40):
            pulled.append(i)
            yield i
    bound, seen = 3, []
    with Stages() as stages:
        for item in stages.ahead(source(), bound, "decode"):
            time.sleep(0.01)  # let the producer run as far ahead as it may
            # waiting: at most `bound` in the queue and one in the producer's hand
            assert len(pulled) - (item + 1) <= bound + 1, (item, len(pulled))
            seen.append(item)
    assert seen == list(range(40)) and stage_threads() == []


def test_a_consumer_holds_at_most_its_bound():
    consumed, gate = [], threading.Event()

    def consume(item):
        gate.wait()
        consumed.append(item)
    with Stages() as stages:
        feed = stages.behind(consume, 2, "encode")
        feed.put(0)  # taken, held in consume
        time.sleep(0.05)
        feed.put(1)
        feed.put(2)  # the queue is full now: a fourth put would wait
        filled = threading.Thread(target=feed.put, args=(3,))
        filled.start()
        filled.join(0.2)
        assert filled.is_alive()
        gate.set()
        filled.join()
        feed.close()
    assert consumed == [0, 1, 2, 3] and stage_threads() == []


class Failing:
    """A backend whose `name` call raises `error` on its third call."""

    def __init__(self, inner, name, error):
        self.inner, self.name, self.error, self.calls = inner, name, error, 0

    def __getattr__(self, attr):
        value = getattr(self.inner, attr)
        if attr != self.name:
            return value

        def call(*args):
            self.calls += 1
            if self.calls == 3:
                raise self.error
            return value(*args)
        return call


def failing_frames(monkeypatch, error):
    original = media.VideoReader.frames

    def frames(self, shape=None, crop="none"):
        for index, frame in enumerate(original(self, shape, crop)):
            if index == 5:
                raise error
            yield frame
    monkeypatch.setattr(media.VideoReader, "frames", frames)


def failing_writes(monkeypatch, error):
    original = media.PNGDirWriter._write

    def write(self, frame):
        if self.count == 4:
            raise error
        original(self, frame)
    monkeypatch.setattr(media.PNGDirWriter, "_write", write)


@pytest.mark.parametrize("stage", ["decode", "kp_detector", "generate", "encode"])
@pytest.mark.parametrize("error", [media.MediaError("disk full"), KeyboardInterrupt()])
def test_an_error_in_any_stage_stops_all_and_leaves_nothing(tiny_bundle, inputs, tmp_path,
                                                            monkeypatch, stage, error):
    opened = jobs.prepare(tiny_bundle, "tflite")
    if stage == "decode":
        failing_frames(monkeypatch, error)
    elif stage == "encode":
        failing_writes(monkeypatch, error)
    else:
        opened.backend = Failing(opened.backend, stage, error)
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(type(error)) as raised:
        jobs.run_animate(opened, inputs["source"], inputs["driving"], folder / "frames",
                         mode=Normalisation(True, True), batch_size=1)
    assert raised.value is error  # the stage's own exception, message unchanged
    assert list(folder.iterdir()) == []
    assert stage_threads() == []


@pytest.mark.parametrize("name", ["tflite", "tflite-fp16", "tflite-int8"])
def test_tflite_generates_the_same_frames_one_at_a_time(tiny_bundle, name):
    """Why animate defaults to batch 1 on TFLite (Prepared.batch_size): no other bytes."""
    opened = jobs.prepare(tiny_bundle, name)
    assert opened.batch_size == 1 and jobs.prepare(tiny_bundle, "onnx").batch_size == 4
    backend = opened.backend
    with np.load(FIXTURES / "tiny.npz") as data:
        source = data["source"].transpose(0, 2, 3, 1).astype(np.float32)
        driving = data["driving"].transpose(0, 2, 3, 1).astype(np.float32)[:4]
    kp_source, encoded = backend.kp_detector(source), backend.encode_source(source)
    kp = backend.kp_detector(driving)
    norm = backend.process_kp_driving(kp, {k: v[:1] for k, v in kp.items()}, kp_source,
                                      True, True, True)
    together = backend.generate(encoded, norm, kp_source)
    alone = [backend.generate(encoded, {k: v[i:i + 1] for k, v in norm.items()}, kp_source)
             for i in range(len(driving))]
    np.testing.assert_array_equal(together, np.concatenate(alone))


def test_video_frames_convert_as_the_demo_does():
    """Frames already at the model's size skip the resize (its identity) and are divided in
    float32: every uint8 value gives the demo's float64 conversion rounded to float32."""
    values = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    expected = (values.astype(np.float64) / 255).astype(np.float32)
    for got in (media.as_float32(values), media.resize_like_demo(values, (16, 16))):
        np.testing.assert_array_equal(got.astype(np.float32).view(np.uint32),
                                      expected.view(np.uint32))
    other = np.arange(0, 65536, 7, dtype=np.uint16)
    np.testing.assert_array_equal(media.as_float32(other),
                                  (other.astype(np.float64) / 65535).astype(np.float32))
