"""Specs, media and predict inputs as hostile input (issue 12): each generator makes a
file an attacker or a careless user could hand us, and each test asserts the exact
one-line refusal, that no marker file appears, that memory stays far below what the
attack used to cost (in a subprocess), that nothing beside the target is touched and that
an existing output is intact. Tiny and fast: no model is built."""
from __future__ import annotations

import copy
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import types
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from conftest import FIXTURES, as_a_user
from fomm_convert import limits, media
from fomm_convert.animation import jobs
from fomm_convert.cli import cli
from peak_memory import measured
import test_animate
from fomm_convert.errors import FommError, shown
from fomm_convert.fomm.animation import Normalisation
from fomm_convert.pipeline.predict import InputsError, read_inputs
from fomm_convert.spec import SpecError, load_spec, spec_from_data

TINY = FIXTURES / "configs" / "tiny.yaml"
# Peak RSS of a refused attack's process: the lite CLI and numpy take ~60-100 MB; each
# attack used to cost gigabytes (5.4 GB billion laughs, 3.8 GB 12000x12000 PNG, a 120 GB
# NPZ header, MemoryError for a 100000x100000 frame).
MEMORY_BOUND_MB = 300
def cli_run(*args, cwd=None):
    return measured(sys.executable, "-m", "fomm_convert.cli", *args, cwd=cwd)


def media_call(function: str, argument: str, cwd):
    """(exit code, lines of stderr, peak RSS MB) of fomm_convert.media.<function>(argument)
    in a fresh process; a MediaError exits 1 with its one line, as the CLI prints it."""
    return measured(sys.executable, "-c",
                    f"from fomm_convert.media import {function}, MediaError\n"
                    f"try:\n    {function}({argument})\n"
                    "except MediaError as e:\n    raise SystemExit(f'Error: {e}')", cwd=cwd)


def one_line(lines, pattern):
    """The command's stderr is exactly one 'Error: ' line matching `pattern`."""
    assert len(lines) == 1, lines
    assert re.fullmatch(r"Error: " + pattern, lines[0]), lines[0]


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def runner():
    return CliRunner(mix_stderr=False) if "mix_stderr" in \
        CliRunner.__init__.__code__.co_varnames else CliRunner()


# ------------------------------------------------------------------------------- YAML

def billion_laughs() -> str:
    """1 KB of YAML whose aliases expand into 9**9 strings."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    return "\n".join(lines) + "\n"


YAML_CASES = {
    "billion laughs": (billion_laughs(), r"line 2: YAML aliases \(\*name\) are not accepted"),
    "one alias": ("name: &n x\ndescription: *n\n", r"line 2: YAML aliases .*"),
    "flow nested 30000 deep": ("a: " + "[" * 30000 + "]" * 30000 + "\n",
                               rf"line 1: nested more than {limits.YAML_MAX_DEPTH} levels deep"),
    "block nested 100 deep": ("".join(" " * i + f"k{i}:\n" for i in range(100)),
                              r"line \d+: nested more than \d+ levels deep"),
    "mappings nested 10000 deep": ("a: " + "{b: " * 10000 + "1" + "}" * 10000,
                                   r"line 1: nested more than \d+ levels deep"),
    "100000 deep, too large": ("a: " + "[" * 100000 + "]" * 100000 + "\n",
                               rf"larger than {limits.SPEC_MAX_BYTES} bytes: not a spec"),
    "binary": (bytes(range(256)) * 4, r"not UTF-8 text \(byte 128\)"),
    "a 5000-digit integer": ("name: " + "9" * 5000 + "\n", r"not valid YAML: .*4300 digits.*"),
    "python tag": ("!!python/object/apply:os.system ['touch MARKER']\n",
                   r"not valid YAML: could not determine a constructor for the tag "
                   r"'tag:yaml.org,2002:python/object/apply:os.system' \(line 1\)"),
    "a list": ("- 1\n- 2\n", r"expected a mapping at the top level"),
    "syntax": ("a: [1, 2\n", r"not valid YAML: .*"),
}


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_hostile_yaml_is_one_line(tmp_path, case):
    text, message = YAML_CASES[case]
    path = tmp_path / "spec.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert re.fullmatch(re.escape(str(path)) + ": " + message, str(err.value)), str(err.value)
    assert len(str(err.value)) < 400
    assert listing(tmp_path) == ["spec.yaml"]  # no MARKER


def test_billion_laughs_in_a_process_is_refused_within_memory(tmp_path):
    (tmp_path / "laughs.yaml").write_text(billion_laughs())
    np.savez(tmp_path / "in.npz", source=np.zeros((1, 3, 64, 64), np.float32))
    code, lines, rss = cli_run("predict", "--config", "laughs.yaml", "--inputs", "in.npz",
                               "--out", "out.npz", "--backend", "tflite", cwd=tmp_path)
    assert code == 1
    one_line(lines, r"laughs.yaml: line 2: YAML aliases \(\*name\) are not accepted")
    assert rss < MEMORY_BOUND_MB, rss
    assert listing(tmp_path) == ["in.npz", "laughs.yaml"]


# -------------------------------------------------------------------------- spec values

def vox() -> dict:
    return yaml.safe_load(load_spec("vox").path.read_text())


def tiny() -> dict:
    return yaml.safe_load(TINY.read_text())


def _kp(d):
    return d["model_params"]["kp_detector_params"]


def _gen(d):
    return d["model_params"]["generator_params"]


def _dense(d):
    return d["model_params"]["generator_params"]["dense_motion_params"]


def _frame(d, shape):
    (d["dataset_params"] if "dataset_params" in d else d)["frame_shape"] = shape


KP = r"model_params\.kp_detector_params"
GEN = r"model_params\.generator_params"
SPEC_CASES = {
    "temperature .nan": (vox, lambda d: _kp(d).update(temperature=float("nan")),
                         KP + r"\.temperature: expected a positive finite number, got nan"),
    "temperature .inf": (vox, lambda d: _kp(d).update(temperature=float("inf")),
                         KP + r"\.temperature: expected a positive finite number, got inf"),
    "temperature 1e-300": (vox, lambda d: _kp(d).update(temperature=1e-300),
                           KP + r"\.temperature: 1e-300 is outside 1e-06\.\.1000000\.0"),
    "kp_variance -1": (vox, lambda d: _dense(d).update(kp_variance=-1),
                       GEN + r"\.dense_motion_params\.kp_variance: expected a positive finite "
                             r"number, got -1"),
    "scale_factor .nan": (vox, lambda d: _kp(d).update(scale_factor=float("nan")),
                          KP + r"\.scale_factor: expected a positive finite number, got nan"),
    "scale_factor 1/64": (vox, lambda d: _kp(d).update(scale_factor=1 / 64),
                          KP + r"\.scale_factor: 0\.015625 is below 1/32"),
    "frame_shape [true, 64, 3]": (vox, lambda d: d.update(frame_shape=[True, 64, 3]),
                                  r"frame_shape: expected \[H, W, C\] positive integers, got "
                                  r"\[True, 64, 3\]"),
    "frame_shape 100000x100000": (vox, lambda d: d.update(frame_shape=[100000, 100000, 3]),
                                  r"frame_shape: \[100000, 100000, 3\] has more than 2048 "
                                  r"pixels on a side or 4 channels"),
    "frame_shape a long string": (vox, lambda d: d.update(frame_shape="x" * 50000),
                                  r"frame_shape: expected \[H, W, C\] positive integers, got "
                                  r"'x{47}\.\.\.x{48}'"),
    "frame_shape 250x256": (vox, lambda d: d.update(frame_shape=[250, 256, 3]),
                            r"frame_shape: 250x256 does not suit " + KP + r": downsampled by "
                            r"scale_factor 0\.25 it is 63x64, which its num_blocks 5 needs to "
                            r"be a multiple of 32 \(frames of a multiple of 128 suit\)"),
    "dense hourglass too deep": (tiny, lambda d: (_dense(d).update(num_blocks=6)),
                                 r"frame_shape: 64x64 does not suit " + GEN +
                                 r"\.dense_motion_params: .* a multiple of 64 .*"),
    "generator frame 62x62": (tiny, lambda d: (_frame(d, [62, 62, 3]),
                                               _kp(d).update(scale_factor=0.25),
                                               _dense(d).update(scale_factor=0.25)),
                              r"frame_shape: 62x62 does not suit " + GEN + r": its "
                              r"num_down_blocks 2 needs a multiple of 4 \(the original would "
                              r"output a smaller frame\)"),
    "heatmap conv leaves no pixel": (tiny, lambda d: (_frame(d, [32, 32, 3]),
                                                      _kp(d).update(scale_factor=0.125,
                                                                    num_blocks=2)),
                                     r"frame_shape: 32x32 leaves the keypoint detector's 7x7 "
                                     r"heatmap conv \(pad 0\) no pixel of its input"),
    "largest activation": (vox, lambda d: (d.update(frame_shape=[2048, 2048, 3]),
                                           _gen(d).update(block_expansion=128)),
                           r"model_params: the frame 2048x2048 and these widths need an "
                           r"activation of 536870912 values per frame, more than 268435456"),
    "num_kp 10**9": (vox, lambda d: d["model_params"]["common_params"].update(num_kp=10 ** 9),
                     r"model_params\.common_params\.num_kp: 1000000000 is outside 1\.\.64"),
    "num_kp 10**400": (vox, lambda d: d["model_params"]["common_params"].update(num_kp=10 ** 400),
                       r"model_params\.common_params\.num_kp: expected a non-negative integer, "
                       r"got .*"),
    "max_features 10**12": (vox, lambda d: _kp(d).update(max_features=10 ** 12),
                            KP + r"\.max_features: 1000000000000 is outside 1\.\.2048"),
    "block_expansion 4096": (vox, lambda d: _gen(d).update(block_expansion=4096),
                             GEN + r"\.block_expansion: 4096 is outside 1\.\.512"),
    "num_blocks 0": (vox, lambda d: _kp(d).update(num_blocks=0),
                     KP + r"\.num_blocks: 0 is outside 1\.\.8"),
    "num_down_blocks 40": (vox, lambda d: _gen(d).update(num_down_blocks=40),
                           GEN + r"\.num_down_blocks: 40 is outside 0\.\.6"),
    "num_bottleneck_blocks 10**6": (vox, lambda d: _gen(d).update(num_bottleneck_blocks=10 ** 6),
                                    GEN + r"\.num_bottleneck_blocks: 1000000 is outside "
                                          r"0\.\.32"),
    "pad 1000": (vox, lambda d: _kp(d).update(pad=1000), KP + r"\.pad: 1000 is outside 0\.\.3"),
    "num_channels true": (vox, lambda d: d["model_params"]["common_params"].update(
        num_channels=True), r"model_params\.common_params\.num_channels: expected a number, "
                            r"got True"),
    "name ../../x": (vox, lambda d: d.update(name="../../x"),
                     r"name: expected a plain name \(letters, digits, '_', '\.' and '-'\), "
                     r"no folder, got '\.\./\.\./x'"),
    "name absolute": (vox, lambda d: d.update(name="/tmp/x/ABS"), r"name: expected a plain .*"),
    "checkpoint path": (vox, lambda d: d.update(checkpoint="../../etc/passwd"),
                        r"checkpoint: expected a file name, no folder, got "
                        r"'\.\./\.\./etc/passwd'"),
    "unknown keys of many types": (vox, lambda d: d["model_params"]["common_params"].update(
        {1: 2, "z" * 5000: 3}), r"model_params\.common_params\.1: unknown field \(also: "
                                r"z{77}\.\.\.\)"),
    "dataset_params a list": (tiny, lambda d: d.update(dataset_params=[1, 2]),
                              r"dataset_params: expected a mapping, got \[1, 2\]"),
    "animate_params a string": (tiny, lambda d: d.update(animate_params="x"),
                                r"animate_params: expected a mapping, got 'x'"),
}


@pytest.mark.parametrize("case", sorted(SPEC_CASES))
def test_spec_values_are_checked_at_load(tmp_path, case):
    make, mutate, message = SPEC_CASES[case]
    data = copy.deepcopy(make())
    mutate(data)
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    text = str(err.value)
    assert "\n" not in text and len(text) < 400
    assert re.fullmatch(re.escape(str(path)) + ": " + message, text), text


def test_a_bundle_manifest_spec_takes_the_same_checks():
    """spec_from_data is what a bundle's manifest goes through (JSON allows NaN too)."""
    where = Path("bundle/manifest.json")
    good = load_spec("vox").to_dict()
    assert spec_from_data(where, json.loads(json.dumps(good))).to_dict() == good
    for change, message in (
            ({"frame_shape": [20000, 20000, 3]}, r"frame_shape: .* more than 2048 pixels .*"),
            ({"name": "../../../x"}, r"name: expected a plain name .*"),
            ({"frame_shape": [96, 96, 3]}, r"frame_shape: 96x96 does not suit .*")):
        with pytest.raises(SpecError, match=r"^bundle/manifest\.json: " + message + "$"):
            spec_from_data(where, {**good, **change})
    nan = json.loads(json.dumps(good).replace('"temperature": 0.1', '"temperature": NaN'))
    with pytest.raises(SpecError, match=r"temperature: expected a positive finite number"):
        spec_from_data(where, nan)


def test_every_spec_and_config_we_ship_or_test_stays_valid():
    from fomm_convert.spec import available_specs
    for name in available_specs():
        load_spec(name)
    for path in sorted((FIXTURES / "configs").glob("*.yaml")):
        load_spec(path)


def test_a_huge_frame_is_refused_before_any_model_work(tmp_path):
    """build used to do the model work and then fail with a MemoryError."""
    data = vox()
    data["frame_shape"] = [100000, 100000, 3]
    (tmp_path / "huge.yaml").write_text(yaml.safe_dump(data))
    code, lines, rss = cli_run("build", "--config", "huge.yaml", "--synthetic", "--out",
                               "bundle", cwd=tmp_path)
    assert code == 1
    one_line(lines, r"huge.yaml: frame_shape: \[100000, 100000, 3\] has more than 2048 pixels "
                    r"on a side or 4 channels")
    assert rss < MEMORY_BOUND_MB, rss
    assert listing(tmp_path) == ["huge.yaml"]


# ------------------------------------------------------------------------------- images

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of_size(width: int, height: int, rows: int | None = None) -> bytes:
    """A grey PNG of width x height whose first `rows` rows (all by default) are zeros:
    12000x12000 is 140 KB and decodes to 144 MB (1.3 GB as floats)."""
    compress = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    data = b"".join(compress.compress(row) for _ in range(height if rows is None else rows))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                                0, 0, 0))
            + _chunk(b"IDAT", data + compress.flush()) + _chunk(b"IEND", b""))


def float_tiff(path: Path, values: np.ndarray):
    from PIL import Image
    Image.fromarray(values.astype(np.float32), mode="F").save(path)


IMAGE_CASES = {
    "12000x12000 PNG": (lambda p: p.write_bytes(png_of_size(12000, 12000, rows=10)),
                        r"12000x12000 is 144000000 pixels, more than the 67108864 an image "
                        r"may have"),
    "60000x60000 PNG": (lambda p: p.write_bytes(png_of_size(60000, 60000, rows=1)),
                        r"more than 67108864 pixels, the most an image may have"),
    "NaN TIFF": (lambda p: float_tiff(p, np.where(np.eye(16) > 0, np.nan, 0.5)),
                 r"holds 16 values that are not finite \(NaN or infinite\)"),
    "Inf TIFF": (lambda p: float_tiff(p, np.full((8, 8), np.inf)),
                 r"holds 64 values that are not finite \(NaN or infinite\)"),
    "TIFF of 0..255 floats": (lambda p: float_tiff(p, np.full((8, 8), 200.0)),
                              r"a float image must hold values in \[0, 1\], this one spans "
                              r"\[200, 200\]"),
    "truncated PNG": (lambda p: p.write_bytes(png_of_size(64, 64)[:60]),
                      r"not a readable image \(.+\)"),
    "text": (lambda p: p.write_text("not a picture"), r"not a readable image \(.+\)"),
    "empty": (lambda p: p.write_bytes(b""), r"not a readable image \(.+\)"),
}


@pytest.mark.parametrize("case", sorted(IMAGE_CASES))
def test_hostile_images_are_one_line(tmp_path, case):
    make, message = IMAGE_CASES[case]
    path = tmp_path / ("source.tiff" if "TIFF" in case else "source.png")
    make(path)
    with pytest.raises(media.MediaError) as err:
        media.read_image(path, (64, 64))
    assert re.fullmatch(re.escape(str(path)) + ": " + message, str(err.value)), str(err.value)
    assert listing(tmp_path) == [path.name]


def test_a_12000x12000_png_is_refused_from_its_header_within_memory(tmp_path):
    """The whole image, validly compressed (140 KB): it used to decode to 1.3 GB."""
    (tmp_path / "big.png").write_bytes(png_of_size(12000, 12000))
    code, lines, rss = media_call("read_image", "'big.png', (64, 64)", tmp_path)
    assert code == 1
    one_line(lines, r"big.png: 12000x12000 is 144000000 pixels, more than .*")
    assert rss < MEMORY_BOUND_MB, rss


def test_valid_images_still_read(tmp_path):
    float_tiff(tmp_path / "ok.tiff", np.linspace(0, 1, 64).reshape(8, 8))
    image = media.read_image(tmp_path / "ok.tiff", (4, 4))
    assert image.shape == (4, 4, 3) and np.isfinite(image).all()
    (tmp_path / "ok.png").write_bytes(png_of_size(100, 80))
    assert media.read_image(tmp_path / "ok.png").shape == (80, 100, 3)


# -------------------------------------------------------------------------------- video

def encode(path: Path, frames: int = 40, size: int = 64, *options):
    """A small H.264 (or the container's default codec) video of moving gradients."""
    import imageio_ffmpeg
    y, x = np.mgrid[:size, :size]
    raw = b"".join(np.stack([(x + 3 * t) % 256, (y + 2 * t) % 256, np.full_like(x, 128)],
                            -1).astype(np.uint8).tobytes() for t in range(frames))
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error",
                    "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}", "-r", "25",
                    "-i", "-", *options, str(path)], input=raw, check=True)
    return path


def truncate(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    out = path.with_name("cut-" + path.name)
    out.write_bytes(data[:int(len(data) * fraction)])
    return out


VIDEOS = {"faststart.mp4": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart"],
          "video.mp4": ["-c:v", "libx264", "-pix_fmt", "yuv420p"],
          "video.mkv": ["-c:v", "libx264", "-pix_fmt", "yuv420p"],
          "video.avi": ["-c:v", "mpeg4"],
          "video.gif": []}
FRAMES = 100


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return {name: encode(folder / name, FRAMES, 64, *options)
            for name, options in VIDEOS.items()}


@pytest.mark.parametrize("name", sorted(VIDEOS))
def test_a_truncated_video_is_refused(videos, tmp_path, name):
    """ffmpeg decodes a cut MP4 without a word: its boxes say it is cut, before any work;
    the other containers are refused when ffmpeg's errors show at the end."""
    assert sum(1 for _ in media.open_video(videos[name])) == FRAMES  # whole: no error
    cut = tmp_path / name
    cut.write_bytes(videos[name].read_bytes()[:int(videos[name].stat().st_size * 0.8)])
    with pytest.raises(media.MediaError) as err:
        for _ in media.open_video(cut):
            pass
    if name.endswith(".mp4"):
        message = r"truncated: its '(mdat|moov)' box ends at byte \d+, the file at \d+"
    else:
        message = r"damaged or truncated: ffmpeg stopped after \d+ frames \(.+\)"
    assert re.fullmatch(re.escape(str(cut)) + ": " + message, str(err.value)), str(err.value)
    assert listing(tmp_path) == [name]


class IdentityBackend(test_animate.IdentityBackend):
    """test_animate's stand-in model (the generator returns its source) at 64x64."""
    frame_shape = (64, 64, 3)


def animate(tmp_path, driving, out, force=False):
    media_source = tmp_path / "source.png"
    if not media_source.exists():
        media_source.write_bytes(png_of_size(64, 64))
    prepared = types.SimpleNamespace(spec=load_spec(TINY), backend=IdentityBackend())
    return jobs.run_animate(prepared, media_source, driving, out,
                            mode=Normalisation(relative=True, adapt_scale=False),
                            batch_size=4, stream=io.StringIO(), force=force)


@pytest.mark.parametrize("out", ["out.gif", "frames", "out.mp4"])
def test_animate_with_a_truncated_video_writes_nothing(videos, tmp_path, out):
    """The Matroska file is refused after its frames went to the writer: the output and
    its partial are gone, an existing output is intact."""
    assert animate(tmp_path, videos["video.mkv"], tmp_path / "whole" / out)["frames"] == FRAMES
    data = videos["video.mkv"].read_bytes()
    (tmp_path / "driving.mkv").write_bytes(data[:int(len(data) * 0.8)])
    existing = tmp_path / "existing" / out
    shutil.copytree(tmp_path / "whole", tmp_path / "existing")
    for target in (tmp_path / out, existing):
        before = {str(p): p.read_bytes() if p.is_file() else None for p in tmp_path.rglob("*")}
        with pytest.raises(media.MediaError, match=r"driving.mkv: damaged or truncated: "
                                                   r"ffmpeg stopped after \d+ frames"):
            animate(tmp_path, tmp_path / "driving.mkv", target, force=True)
        assert {str(p): p.read_bytes() if p.is_file() else None
                for p in tmp_path.rglob("*")} == before


def huge_gif(width: int, height: int) -> bytes:
    """A 37-byte GIF: one 1x1 image on a logical screen of width x height."""
    from PIL import Image
    buf = io.BytesIO()
    Image.new("P", (1, 1)).save(buf, "GIF")
    data = bytearray(buf.getvalue())
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def test_a_video_of_huge_frames_is_refused_before_decoding(tmp_path):
    """ffmpeg's header declares 9000x8000 frames (216 MB each as RGB) of a 37-byte file."""
    path = tmp_path / "huge.gif"
    path.write_bytes(huge_gif(9000, 8000))
    code, lines, rss = media_call("open_video", "'huge.gif'", tmp_path)
    assert code == 1
    one_line(lines, r"huge.gif: frames of 9000x8000 are 72000000 pixels, more than the "
                    r"67108864 a frame may have")
    assert rss < MEMORY_BOUND_MB, rss


# ------------------------------------------------------------------------------ writers

WRITE_FRAMES = """
import errno, os, pathlib, resource, sys
import numpy as np
from fomm_convert.media import MediaError, open_writer
out, mode = sys.argv[1], sys.argv[2]
if mode == "fsize":  # the kernel refuses writes past 4 KB: EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
else:  # a disk that fills up after 3 writes: ENOSPC
    import builtins
    real_open, real_write_bytes, calls = builtins.open, pathlib.Path.write_bytes, [0]
    def full(*args):
        calls[0] += 1
        if calls[0] > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    class Full:
        def __init__(self, f): self.f = f
        def write(self, data): full(); return self.f.write(data)
        def __getattr__(self, name): return getattr(self.f, name)
        def __enter__(self): return self
        def __exit__(self, *exc): self.f.close()
    builtins.open = lambda file, mode="r", *a, **k: (
        Full(real_open(file, mode, *a, **k)) if "w" in mode and ".partial-" in str(file)
        else real_open(file, mode, *a, **k))
    def write_bytes(self, data):
        full()
        return real_write_bytes(self, data)
    pathlib.Path.write_bytes = write_bytes
rng = np.random.default_rng(0)
try:
    with open_writer(out, 25, force=True) as writer:  # replacing the old output
        for _ in range(12):
            writer.write(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
except MediaError as exc:
    raise SystemExit(f"Error: {exc}")
"""


@pytest.mark.parametrize("mode, reason", [("fsize", "File too large"),
                                          ("enospc", "No space left on device")])
@pytest.mark.parametrize("out", ["out.gif", "frames"])
def test_a_full_disk_while_writing_frames_is_one_line_and_leaves_the_old_output(
        tmp_path, out, mode, reason):
    old = tmp_path / out
    if out == "frames":
        old.mkdir()
        (old / "frame_000000.png").write_bytes(b"old frame")
    else:
        old.write_bytes(b"old gif")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code, lines, _ = measured(sys.executable, "-c", WRITE_FRAMES, out, mode, cwd=tmp_path)
    assert code == 1
    one_line(lines, re.escape(out) + rf": cannot write it \({reason}\)")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_file_size_limit_while_writing_mp4_is_one_line(tmp_path):
    (tmp_path / "out.mp4").write_bytes(b"old mp4")
    code, lines, _ = measured(sys.executable, "-c", WRITE_FRAMES, "out.mp4", "fsize",
                              cwd=tmp_path)
    assert code == 1
    one_line(lines, r"out.mp4: ffmpeg (failed|stopped) \(killed by signal 25\)")  # SIGXFSZ
    assert listing(tmp_path) == ["out.mp4"] and (tmp_path / "out.mp4").read_bytes() == b"old mp4"


# ------------------------------------------------------------------------ predict inputs

SOURCE = np.full((1, 3, 64, 64), 0.5, np.float32)
DRIVING = np.full((2, 3, 64, 64), 0.25, np.float32)


def npy_member(header: dict, payload: bytes = b"") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


def npz_with(path: Path, driving: bytes, source: np.ndarray = SOURCE):
    with zipfile.ZipFile(path, "w") as archive:
        buf = io.BytesIO()
        np.save(buf, source)
        archive.writestr("source.npy", buf.getvalue())
        archive.writestr("driving.npy", driving)


class Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


INPUT_CASES = {
    ".npy instead of .npz": (lambda p: np.save(p, SOURCE) or shutil.move(f"{p}.npy", p),
                             r"a \.npy array, not an \.npz: save both with numpy\.savez\(path, "
                             r"source=\.\.\., driving=\.\.\.\)"),
    "0-byte file": (lambda p: p.write_bytes(b""), r"is empty \(0 bytes\), not an \.npz"),
    "text": (lambda p: p.write_text("source, driving"), r"not an \.npz \(a zip of \.npy arrays\)"),
    "truncated zip": (lambda p: (np.savez(p, source=SOURCE, driving=DRIVING),
                                 p.write_bytes(p.read_bytes()[:40000])),
                      r"not an \.npz \(a zip of \.npy arrays\)"),
    "string array": (lambda p: np.savez(p, source=np.array([["a"]]), driving=DRIVING),
                     r"'source' is <U1; inputs are float32"),
    "object array with a payload": (
        lambda p: np.savez(p, source=np.array([Payload(p.parent / "MARKER")], dtype=object),
                           driving=DRIVING),
        r"'source' is an object \(pickled\) array; inputs are float32"),
    "complex": (lambda p: np.savez(p, source=SOURCE.astype(np.complex64), driving=DRIVING),
                r"'source' is complex64; inputs are float32"),
    "bool": (lambda p: np.savez(p, source=SOURCE > 0, driving=DRIVING),
             r"'source' is bool; inputs are float32"),
    "uint8 0..255": (lambda p: np.savez(p, source=(SOURCE * 255).astype(np.uint8),
                                        driving=DRIVING), r"'source' is uint8; inputs are float32"),
    "float64": (lambda p: np.savez(p, source=SOURCE.astype(np.float64), driving=DRIVING),
                r"'source' is float64; inputs are float32"),
    "NaN": (lambda p: np.savez(p, source=SOURCE, driving=np.where(DRIVING > 0, np.nan, 0)
                               .astype(np.float32)),
            r"'driving': holds 24576 values that are not finite \(NaN or infinite\)"),
    "Inf": (lambda p: np.savez(p, source=SOURCE * np.float32(np.inf), driving=DRIVING),
            r"'source': holds 12288 values that are not finite \(NaN or infinite\)"),
    "values above 1": (lambda p: np.savez(p, source=SOURCE * 255, driving=DRIVING),
                       r"'source': a float image must hold values in \[0, 1\], this one "
                       r"spans \[127\.5, 127\.5\]"),
    "negative values": (lambda p: np.savez(p, source=SOURCE, driving=-DRIVING),
                        r"'driving': a float image must hold values in \[0, 1\], this one "
                        r"spans \[-0\.25, -0\.25\]"),
    "a header declaring 120 GB": (
        lambda p: npz_with(p, npy_member({"descr": "<f4", "fortran_order": False,
                                          "shape": (10000, 3, 1000, 1000)}, b"\0" * 64)),
        r"'driving' declares 120000000000 bytes, more than the 2147483648 an inputs file "
        r"may hold"),
    "a header larger than its data": (
        lambda p: npz_with(p, npy_member({"descr": "<f4", "fortran_order": False,
                                          "shape": (50, 3, 64, 64)}, b"\0" * 64)),
        r"'driving' declares 2457600 bytes, the file holds 64"),
    "not a .npy member": (lambda p: npz_with(p, b"hello"),
                          r"'driving': not a \.npy array \(.+\)"),
    "a flipped byte": (lambda p: (np.savez(p, source=SOURCE, driving=DRIVING),
                                  p.write_bytes(_flip(p.read_bytes(), 3000))),
                       r"not a readable \.npz \(Bad CRC-32 for file 'source\.npy'\)"),
    "no driving": (lambda p: np.savez(p, source=SOURCE), r"no 'driving' array"),
    "wrong frame": (lambda p: np.savez(p, source=SOURCE, driving=DRIVING[:, :, :32]),
                    r"'driving' has shape \(2, 3, 32, 64\), expected \(N, 3, 64, 64\)"),
}


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]


@pytest.mark.parametrize("case", sorted(INPUT_CASES))
def test_hostile_predict_inputs_are_one_line(tmp_path, case):
    make, message = INPUT_CASES[case]
    path = tmp_path / "inputs.npz"
    make(path)
    with pytest.raises(InputsError) as err:
        read_inputs(path, (64, 64, 3))
    assert re.fullmatch(re.escape(str(path)) + ": " + message, str(err.value)), str(err.value)
    assert listing(tmp_path) == ["inputs.npz"]  # no MARKER


def test_valid_predict_inputs_still_read(tmp_path):
    for save in (np.savez, np.savez_compressed):
        save(tmp_path / "in.npz", source=SOURCE, driving=DRIVING.astype(">f4"))
        source, driving = read_inputs(tmp_path / "in.npz", (64, 64, 3))
        assert source.shape == (1, 64, 64, 3) and driving.dtype == np.float32
        assert np.array_equal(driving, DRIVING.transpose(0, 2, 3, 1))


def test_predict_cli_on_a_0_byte_npz_and_a_120_gb_header(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    npz_with(tmp_path / "huge.npz", npy_member({"descr": "<f4", "fortran_order": False,
                                                "shape": (10000, 3, 1000, 1000)}, b"\0" * 64))
    for name, message in (("empty.npz", r"empty.npz: is empty \(0 bytes\), not an \.npz"),
                          ("huge.npz", r"huge.npz: 'driving' declares 120000000000 bytes, .*")):
        code, lines, rss = cli_run("predict", "--config", TINY, "--inputs", name, "--out",
                                   "out.npz", "--backend", "tflite", cwd=tmp_path)
        assert code == 1 and "Aborted!" not in lines
        one_line(lines, message)
        assert rss < MEMORY_BOUND_MB, rss
    assert listing(tmp_path) == ["empty.npz", "huge.npz"]


# ------------------------------------------------------------------------------ inspect

def _tflite_junk():
    header = struct.pack("<I", 16) + b"TFL3"
    return {"junk.tflite": b"hello, not a model",
            "empty.tflite": b"",
            "offsets past the end.tflite": header + b"\xff" * 100,
            "a vector of 2**30 tables.tflite": header + b"\0" * 8
            + struct.pack("<hhhh", 8, 8, 4, 0) + struct.pack("<I", 2 ** 30) * 8,
            "junk.onnx": b"junk", "empty.onnx": b""}


@pytest.mark.parametrize("name", sorted(_tflite_junk()))
def test_inspect_on_junk_is_one_line(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(_tflite_junk()[name])
    result = runner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 1, result.output
    error = (result.stderr if hasattr(result, "stderr") else result.output).strip()
    kind = "ONNX model" if name.endswith(".onnx") else "TFLite flatbuffer"
    assert re.fullmatch(rf"Error: {re.escape(str(path))}: not a (readable )?{kind} \(.+\)",
                        error), error
    assert listing(tmp_path) == [name]


# -------------------------------------------------------------------------------- synth

def test_synth_into_a_read_only_folder_is_one_line_before_the_work(tmp_path):
    """A 0o555 folder (root runs the command without the capability that overrides it)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        for out, message in (("ro/x.pth.tar", r"cannot write there \(Permission denied\)"),):
            run = subprocess.run(as_a_user([sys.executable, "-m", "fomm_convert.cli", "synth",
                                            "--config", str(TINY), "--out", out]),
                                 cwd=tmp_path, capture_output=True, text=True, timeout=120)
            assert run.returncode == 1
            one_line(run.stderr.strip().splitlines(), re.escape(out) + ": " + message)
        assert listing(tmp_path) == ["ro"]
    finally:
        folder.chmod(0o755)


def test_synth_on_a_full_disk_is_one_line(tmp_path):
    code, lines, _ = measured(sys.executable, "-c",
                              "import resource, sys\n"
                              "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
                              "from fomm_convert.cli import main\n"
                              "sys.argv = ['fomm-convert', 'synth', '--config', sys.argv[1], "
                              "'--out', 'x.pth.tar']\n"
                              "main()", TINY, cwd=tmp_path)
    assert code == 1
    one_line(lines, r"x.pth.tar: cannot write it \(File too large\)")
    assert listing(tmp_path) == []


def test_errors_are_fomm_errors():
    for error in (SpecError, InputsError, media.MediaError):
        assert issubclass(error, FommError)
    from fomm_convert.export.tflite_file import TFLiteFileError
    from fomm_convert.synth import SynthError
    assert issubclass(TFLiteFileError, FommError) and issubclass(SynthError, FommError)


def test_a_quoted_value_is_one_bounded_line():
    """errors.shown, the one way an error message quotes a value from an input."""
    assert limits.ERROR_VALUE_CHARS == 100
    key = "dense_motion_network.hourglass.encoder.down_blocks.0.norm.num_batches_tracked"
    assert shown(key) == repr(key)  # a published checkpoint's longest key, whole
    assert shown("x" * 10 ** 7) == "'" + "x" * 47 + "..." + "x" * 48 + "'"
    assert shown([[[["deep"]]]]) == "[[[[...]]]]"
    assert shown(("a\nb",) * 50) == "(" + r"'a\nb', " * 6 + "...)"  # 6 items, one line
    assert shown(10 ** 5000) == "int"  # its repr fails (over 4300 digits)
    # The string is cut in its middle to 20 characters, then the whole: 17 and "...".
    assert shown({"k": "v" * 500}, limit=20) == "{'k': 'vvvvvvv" + "..." + "..."
