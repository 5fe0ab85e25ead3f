"""`fomm-convert web` (issue 10): the static site and its page, driven in headless Chromium
over the DevTools protocol (tests/devtools.py) on a tiny bundle.

With a lossless RGB VP9 clip made from ../shared/media/driving.mp4 as the driving video
(every decoder gives its exact pixels: yuv420p would not, Chromium's YUV to RGB differs
from ffmpeg's by up to 3 levels), the frames in <canvas id="result"> are `fomm-convert
animate`'s up to 8-bit rounding, on LiteRT.js (wasm) against tflite-static and on
onnxruntime-web against onnx. A fake camera fed a y4m of the clip renders continuously
and "reset initial frame" moves the motion origin; the page's errors are a person's.
A screenshot after a run goes to artifacts/web-test/page.png.

Needs chromium, web/node_modules (`make web`) and ../shared/media: without them the browser
tests fail when CI=true and skip elsewhere, naming what to install.
"""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from click.testing import CliRunner

from fomm_convert.cli import cli
from fomm_convert.pipeline.web import SITE_JSON, write_site
from fomm_convert.pipeline.web_server import site_server, url_of
from fomm_convert.runtime.browser.chromium import WEBGPU_FLAGS

from conftest import (ROOT, SHARED, build_in_process_of_its_own, builds, missing_tool,
                      require_browser, require_module, require_shared)
from devtools import Browser

MEDIA = SHARED / "media"
CLIP_FRAMES = 12
SCREENSHOT = ROOT / "artifacts" / "web-test" / "page.png"
# Each rendered frame copied out of the result canvas as it is drawn (its 'frame' event).
COLLECT_FRAMES = """
window.__frames = [];
document.addEventListener('frame', (e) => {
  const c = e.target, d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let s = '';
  for (let i = 0; i < d.length; i++) s += String.fromCharCode(d[i]);
  window.__frames.push(btoa(s));
}, true);
"""
STATE = """(() => { const r = document.getElementById('result');
  return r && JSON.stringify({...r.dataset, error: document.getElementById('error').textContent,
                              notice: document.getElementById('notice').textContent}); })()"""


# Every site carries the runtimes' files from web/node_modules; the page runs in chromium.
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def web_tools():
    require_browser()


@pytest.fixture(scope="module")
def browser_tools():
    require_shared("media/source.png", "media/driving.mp4")


@pytest.fixture(scope="module")
@builds
def bundle(tmp_path_factory):
    """The tiny bundle with the ONNX and static TFLite files only (without the static
    float16 files: a site of those is refused), built as a user builds it."""
    out = tmp_path_factory.mktemp("web") / "tiny"
    build_in_process_of_its_own(out, "--formats", "onnx,tflite-static")
    return out


def ffmpeg(*args):
    import imageio_ffmpeg
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *map(str, args)],
                   check=True, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def clips(tmp_path_factory, browser_tools):
    """(lossless RGB VP9 WebM of the first frames, a y4m of 2 s of the clip for the camera)."""
    folder = tmp_path_factory.mktemp("clips")
    webm, y4m = folder / "clip.webm", folder / "camera.y4m"
    ffmpeg("-i", MEDIA / "driving.mp4", "-frames:v", CLIP_FRAMES, "-pix_fmt", "gbrp",
           "-c:v", "libvpx-vp9", "-lossless", "1", webm)
    ffmpeg("-i", MEDIA / "driving.mp4", "-frames:v", 60, "-pix_fmt", "yuv420p", y4m)
    return webm, y4m


def write_with_inputs(bundle, out, fmt, clips):
    """The site as the CLI writes it, the source picture and the clip beside index.html."""
    result = CliRunner().invoke(cli, ["web", "--bundle", str(bundle), "--out", str(out),
                                      "--format", fmt])
    assert result.exit_code == 0, result.output
    shutil.copyfile(MEDIA / "source.png", out / "source.png")
    shutil.copyfile(clips[0], out / "clip.webm")
    return out


class Served:
    """A site served as `fomm-convert web --serve` serves it, for the test's length."""

    def __init__(self, site):
        self.server = site_server(site)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = url_of(self.server)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def open_page():
    """open_page(site, query, flags=()) -> Page; browsers and servers closed afterwards."""
    opened = []

    def open_(site, query, flags=(), before_load=""):
        served = Served(site)
        opened.append(served)
        browser = Browser(flags)
        opened.append(browser)
        return browser.page(f"{served.url}index.html?{query}", before_load)
    yield open_
    for thing in reversed(opened):
        thing.close()


def state_of(page) -> dict:
    """The result canvas's data attributes, the error and the notice shown."""
    return json.loads(page.eval(STATE) or "{}")


def finished(page, timeout=240) -> dict:
    """state_of(page) once the run is done (or failed)."""
    deadline = time.monotonic() + timeout
    while (state := state_of(page)).get("state") not in ("done", "error"):
        assert time.monotonic() < deadline, f"the run did not finish in {timeout} s: {state}"
        time.sleep(0.2)
    return state


def animate_frames(bundle, backend, clip, out, options=("--relative", "--adapt-scale")):
    import imageio.v3 as iio
    result = CliRunner().invoke(cli, ["animate", "--bundle", str(bundle), "--backend", backend,
                                      "--source", str(MEDIA / "source.png"), "--driving",
                                      str(clip), "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    return np.stack([iio.imread(p) for p in sorted(out.glob("*.png"))])


def run_on_clip(open_page, site, runtime, query=""):
    """(page, its RGBA frames): the page run on the source and the clip to the end."""
    page = open_page(site, f"source=source.png&driving=clip.webm&backend={runtime}{query}",
                     before_load=COLLECT_FRAMES)
    state = finished(page)
    assert state["state"] == "done", state
    assert state["runtime"] == runtime and state["framesRendered"] == str(CLIP_FRAMES)
    height, width = json.loads((site / SITE_JSON).read_text())["frame_shape"][:2]
    ours = np.stack([np.frombuffer(base64.b64decode(f), np.uint8).reshape(height, width, 4)
                     for f in page.eval("window.__frames")])
    assert ours.shape == (CLIP_FRAMES, height, width, 4) and (ours[..., 3] == 255).all()
    return page, ours


def assert_within_8_bit_rounding(ours, expected, what: str):
    """The page's RGBA frames are animate's RGB ones up to 1/255."""
    assert ours.shape[:3] == expected.shape[:3]
    diff = np.abs(ours[..., :3].astype(int) - expected)
    print(f"{what}: {float((diff == 0).mean()):.4%} of values equal to animate's, "
          f"max {diff.max()}/255")
    assert diff.max() <= 1, f"{int((diff > 1).sum())} values off by up to {diff.max()}/255"


@pytest.mark.parametrize("runtime,fmt,backend", [("litert-js", "tflite-static", "tflite-static"),
                                                 ("onnx-web", "onnx", "onnx")])
def test_file_driving_frames_equal_animate(browser_tools, bundle, clips, tmp_path, open_page,
                                           runtime, fmt, backend):
    site = write_with_inputs(bundle, tmp_path / "site", fmt, clips)
    page, ours = run_on_clip(open_page, site, runtime)
    expected = animate_frames(bundle, backend, clips[0], tmp_path / "animate")
    assert_within_8_bit_rounding(ours, expected, runtime)
    page.wait_for("(() => { const a = document.getElementById('download');"
                  " return !a.hidden && a.href.startsWith('blob:'); })()", 30,
                  "the recorded WebM's download link")
    if runtime == "litert-js":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(SCREENSHOT)
        assert SCREENSHOT.stat().st_size > 0


def test_fake_camera_renders_continuously_and_resets_the_origin(browser_tools, bundle, clips,
                                                                tmp_path, open_page):
    site = write_with_inputs(bundle, tmp_path / "site", "tflite-static", clips)
    page = open_page(site, "source=source.png&driving=camera&backend=litert-js",
                     flags=("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                            f"--use-file-for-fake-video-capture={clips[1]}"))
    count = "Number(document.getElementById('result')?.dataset.framesRendered)"
    page.wait_for(f"{count} >= 5", 120, "5 camera frames")
    first = page.eval("document.getElementById('result').dataset.initialKp")
    seen = page.eval(count)
    page.wait_for(f"{count} >= {seen + 5}", 60, "5 more camera frames")
    assert page.eval("document.getElementById('result').dataset.initialKp") == first
    # Reset until the origin moves: the looping clip may be back at its first frame.
    page.wait_for(f"""(() => {{
      if (document.getElementById('result').dataset.initialKp !== {json.dumps(first)}) return true;
      document.getElementById('reset').click();
    }})()""", 60, "a new initial frame")
    moved = json.loads(page.eval("document.getElementById('result').dataset.initialKp"))
    assert len(moved) == len(json.loads(first)) == 2 * 5
    assert np.abs(np.subtract(moved, json.loads(first))).max() > 1e-4
    state = state_of(page)
    assert state["state"] == "running" and not state["error"], state


def test_a_model_file_failing_its_sha256_stops_the_page(browser_tools, bundle, clips, tmp_path,
                                                        open_page):
    site = write_with_inputs(bundle, tmp_path / "site", "tflite-static", clips)
    damaged = site / "model" / "tflite" / "kp_detector.static.tflite"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 1
    damaged.write_bytes(bytes(data))
    state = finished(open_page(site, "source=source.png&driving=clip.webm&backend=litert-js"))
    assert state["state"] == "error"
    assert "model/tflite/kp_detector.static.tflite fails its sha256 check" in state["error"]
    assert state["framesRendered"] == "0"


def test_undecodable_picture_refused_camera_and_no_webgpu(browser_tools, bundle, clips,
                                                          tmp_path, open_page):
    site = write_with_inputs(bundle, tmp_path / "site", "tflite-static", clips)
    (site / "broken.png").write_bytes(b"not a picture")
    state = finished(open_page(site, "source=broken.png&driving=clip.webm&backend=litert-js"))
    assert state["state"] == "error" and "broken.png: cannot be decoded as a picture" in \
        state["error"], state
    # No fake camera UI: headless Chromium refuses the camera, as a person can.
    state = finished(open_page(site, "source=source.png&driving=camera&backend=litert-js",
                               flags=("--use-fake-device-for-media-stream",
                                      "--deny-permission-prompts")))
    assert state["state"] == "error" and "The camera was refused" in state["error"], state
    # WebGPU asked for where the browser has none (no WebGPU flags): wasm, and it says so.
    page = open_page(site, "backend=litert-js-webgpu", flags=("--disable-gpu",))
    page.wait_for("document.getElementById('result')?.dataset.state === 'ready'", 120,
                  "the models to load")
    state = state_of(page)
    assert state["runtime"] == "litert-js" and "WebGPU" in state["notice"], state


def test_onnx_site_runs_on_webgpu_and_falls_back_without_it(browser_tools, bundle, clips,
                                                            tmp_path, open_page):
    """An ONNX site's first choice is onnxruntime-web's WebGPU provider (SwiftShader here);
    a browser without WebGPU gets the wasm provider, and the page says so."""
    site = write_with_inputs(bundle, tmp_path / "site", "onnx", clips)
    state = finished(open_page(site, "source=source.png&driving=clip.webm", flags=WEBGPU_FLAGS))
    assert state["state"] == "done" and state["runtime"] == "onnx-webgpu", state
    assert state["framesRendered"] == str(CLIP_FRAMES) and not state["notice"], state
    page = open_page(site, "backend=onnx-webgpu", flags=("--disable-gpu",))
    page.wait_for("document.getElementById('result')?.dataset.state === 'ready'", 120,
                  "the models to load")
    state = state_of(page)
    assert state["runtime"] == "onnx-web" and "WebGPU" in state["notice"], state


# ------------------------------------------------------------------ the site, no browser
def test_site_holds_the_format_files_and_the_manifest_hashes(bundle, tmp_path):
    site = write_site(bundle, tmp_path / "site", "onnx")
    config = json.loads((site / SITE_JSON).read_text())
    manifest = json.loads((bundle / "manifest.json").read_text())
    listed = {f["path"]: f for f in manifest["files"]}
    assert config["format"] == "onnx" and config["runtimes"] == ["onnx-webgpu", "onnx-web"]
    assert (config["family"], config["keypoint_group"]) == ("fomm", 1)
    assert config["frame_shape"] == [64, 64, 3] and config["num_kp"] == 5 and config["jacobian"]
    assert config["licence"] == manifest["licence"] and config["synthetic"] is False
    assert sorted(config["sha256"]) == sorted(f"model/{p}" for p in listed if p.startswith("onnx/"))
    for path, entry in config["sha256"].items():
        assert entry == {k: listed[path.removeprefix("model/")][k] for k in ("sha256", "size")}
        assert (site / path).read_bytes() == (bundle / path.removeprefix("model/")).read_bytes()
    for name in ("ort-wasm-simd-threaded.wasm", "ort.webgpu.min.mjs",
                 "ort-wasm-simd-threaded.asyncify.wasm"):
        assert (site / "runtime/onnxruntime-web/dist" / name).is_file(), name
    assert not (site / "runtime/@litertjs").exists()


def test_cli_errors_are_one_line(bundle, tmp_path):
    def error(*args):
        result = CliRunner().invoke(cli, ["web", *map(str, args)])
        assert result.exit_code != 0
        return result.output.strip().splitlines()[-1]
    assert "--format" in error("--bundle", bundle, "--out", tmp_path / "a", "--format", "tflite")
    assert "has no tflite-static-fp16 files" in error("--bundle", bundle, "--out", tmp_path / "b",
                                                      "--format", "tflite-static-fp16")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    assert "is not a site written by `fomm-convert web`" in error("--bundle", bundle, "--out",
                                                                  tmp_path / "taken")
    write_site(bundle, tmp_path / "site")
    assert "pass --force" in error("--bundle", bundle, "--out", tmp_path / "site")
    killed = tmp_path / ".site.staging-999999999"  # a killed run's, its process gone
    (killed / "model").mkdir(parents=True)
    write_site(bundle, tmp_path / "site", force=True)
    assert not list(tmp_path.glob(".site.*")) and (tmp_path / "site" / SITE_JSON).is_file()
    assert "--bundle is needed" in error("--out", tmp_path / "c")


def test_served_with_isolation_headers_and_nothing_outside_the_site(bundle, tmp_path):
    site = write_site(bundle, tmp_path / "site", "onnx")
    (tmp_path / "secret.txt").write_text("not served")
    served = Served(site)
    try:
        with urllib.request.urlopen(served.url) as response:
            assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
            assert b'<canvas id="result"' in response.read()
        for path in ("../secret.txt", "%2e%2e/secret.txt", "missing.html"):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(served.url + path)
            assert caught.value.code == 404
    finally:
        served.close()


# ------------------------------------------------------------------ the page's pixel code
RESIZE_IN_NODE = """
import {readFileSync, writeFileSync} from 'fs';
import {resizeImage, toRgba} from %s;
const jobs = JSON.parse(readFileSync(process.argv[2], 'utf8'));
for (const {input, width, height, size, output, frame} of jobs) {
  const data = new Uint8ClampedArray(readFileSync(input));
  const resized = resizeImage({data, width, height}, size[0], size[1]);
  writeFileSync(output, Buffer.from(resized.buffer));
  const f = new Float32Array(readFileSync(frame).buffer.slice(0));
  writeFileSync(frame + '.rgba', Buffer.from(toRgba(f, size[0], size[1]).buffer));
}
"""


def test_page_resize_and_8_bit_conversion_match_skimage(tmp_path):
    """web/site/resize.mjs (in node) against scikit-image itself: resize with its
    defaults (shrinking, growing, non-square, grey-like, translucent RGBA) within the 1e-6
    animate's numpy port is held to; 8-bit conversion exactly animate's rule (media/pixels.py:
    rint(x * 255) in float64, halves to even)."""
    resize = require_module("skimage.transform").resize
    node = shutil.which("node")
    if node is None:
        missing_tool("needs node (apt-get install nodejs) to run the page's resize")
    rng = np.random.default_rng(10)
    cases = [((402, 402), (64, 64), True), ((256, 256), (64, 64), False),
             ((90, 160), (256, 200), False), ((37, 300), (64, 48), True),
             ((64, 64), (64, 64), False)]
    jobs, expected = [], []
    for i, ((h, w), size, translucent) in enumerate(cases):
        rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        if not translucent:
            rgba[..., 3] = 255
        if i == 1:  # grey: the browser decodes it as R = G = B
            rgba[..., 1] = rgba[..., 2] = rgba[..., 0]
        image = rgba if translucent else rgba[..., :3]
        want = np.asarray(resize(image, size)[..., :3], np.float32)
        frame = rng.random((*size, 3), dtype=np.float32)
        frame.flat[:4] = [0.5, 1.5, 2.5, 255.0]  # halves round to even
        frame.flat[:4] /= np.float64(255)
        paths = {k: tmp_path / f"{i}.{k}" for k in ("in", "out", "frame")}
        rgba.tofile(paths["in"])
        frame.tofile(paths["frame"])
        jobs.append({"input": str(paths["in"]), "width": w, "height": h, "size": list(size),
                     "output": str(paths["out"]), "frame": str(paths["frame"])})
        expected.append((want, np.clip(np.rint(frame.astype(np.float64) * 255), 0, 255), paths))
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    script = tmp_path / "resize.mjs"
    script.write_text(RESIZE_IN_NODE % json.dumps((web_site() / "resize.mjs").as_uri()))
    subprocess.run([node, str(script), str(tmp_path / "jobs.json")], check=True)
    for want, ubyte, paths in expected:
        got = np.fromfile(paths["out"], np.float32).reshape(want.shape)
        assert np.abs(got.astype(np.float64) - want).max() <= 1e-6
        rgba = np.fromfile(str(paths["frame"]) + ".rgba", np.uint8).reshape(*ubyte.shape[:2], 4)
        assert (rgba[..., :3] == ubyte).all() and (rgba[..., 3] == 255).all()


def web_site():
    return ROOT / "web" / "site"


def test_demo_writes_the_site_with_its_inputs_and_says_how_to_serve_it(bundle, tmp_path,
                                                                       monkeypatch):
    from fomm_convert.pipeline import demo
    monkeypatch.setattr(demo, "ARTIFACTS", tmp_path / "artifacts")
    source, driving = tmp_path / "source.png", tmp_path / "driving.mp4"
    source.write_bytes(b"png")
    driving.write_bytes(b"mp4")
    said, warned = [], []
    for _ in range(2):  # the second run replaces the first's site
        demo.write_demo_site(bundle, source, driving, said.append, warned.append)
    site = tmp_path / "artifacts" / "demo-site"
    assert warned == [] and (site / "source.png").read_bytes() == b"png"
    assert (site / "driving.mp4").is_file() and (site / SITE_JSON).is_file()
    assert f"fomm-convert web --out {site} --serve" in said[-1]
    assert "index.html?source=source.png&driving=driving.mp4" in said[-1]
