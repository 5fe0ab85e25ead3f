"""`animate` and `reconstruct` of TPSMM models (issue 22 items 1 and 5) on the checkpoint
backend they have today (torch, from `--config`/`--dataset` and `--checkpoint`): every
mode gives the frames of the original demo's make_animation, run here on the torch
reference's networks as ../shared/oracle-tpsmm/README.md spells it (per frame at batch 1,
the initial frame driving frame 0, the relative scale from the source's and frame 0's
hulls), which test_tpsmm_torch ties to the original; --best-frame, --visualize,
reconstruct, the family's options and errors, the API and the demo.

Frames are compared before 8-bit encoding (animate's floats, caught on their way to the
writer): frame by frame, bit for bit; in batches, within the policy of issue 21 (1e-4).
"""
from __future__ import annotations

import json

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

import fomm_convert
from fomm_convert import media
from fomm_convert.animation import drawing, jobs
from fomm_convert.checkpoint import load_checkpoint
from fomm_convert.cli import cli
from fomm_convert.tpsmm.architecture import MODES
from fomm_convert.tpsmm.torch_model import build_models, load_networks, normalize_kp

from conftest import FIXTURES, SHARED, TPSMM_ORACLE, require_shared, require_tpsmm_oracle

CONFIG = TPSMM_ORACLE / "configs" / "tiny.yaml"
MEDIA = SHARED / "media"
SIZE = (64, 64)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def ok(result):
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def checkpoint(tpsmm_checkpoint):
    require_tpsmm_oracle("configs/tiny.yaml")
    return tpsmm_checkpoint("tiny")


@pytest.fixture(scope="module")
def nets(checkpoint):
    """The torch reference's networks of the tiny config's own model params (its seed-7
    oracle weights)."""
    params = yaml.safe_load(CONFIG.read_text())["model_params"]
    return load_networks(build_models(params),
                         load_checkpoint(checkpoint, family="tpsmm").networks, "tiny")


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    """The sample clip's frames 100..123 at the tiny frame as a lossless video, and the
    sample source beside it (the demo's preparation is test_animate's to check)."""
    require_shared("media/source.png", "media/driving.mp4")
    root = tmp_path_factory.mktemp("clip")
    frames = list(media.open_video(MEDIA / "driving.mp4").frames(SIZE))[100:124]
    write_lossless(root / "driving.mp4", frames)
    return {"source": MEDIA / "source.png", "driving": root / "driving.mp4", "root": root}


def write_lossless(path, frames):
    """An .mp4 of float frames in 8 bits, lossless (H.264 RGB, crf 0), read back as
    written."""
    frames = [media.to_uint8(f) for f in frames]
    imageio_v2.mimwrite(path, frames, fps=25, macro_block_size=1, codec="libx264rgb",
                        pixelformat="rgb24", output_params=["-crf", "0"])
    assert np.array_equal(np.stack(list(media.open_video(path).frames(SIZE))),
                          np.stack(frames) / np.float32(255))


@torch.inference_mode()
def make_animation(nets, source: np.ndarray, driving, mode: str, initial: int = 0):
    """The original demo's loop on the reference: every frame at batch 1, motion measured
    from driving frame `initial` (find_best_frame's forward and backward parts, joined,
    are every frame measured from it); on one thread, as the original was recorded.

    Each picture becomes a tensor as the demo makes it: HWC float32 permuted to NCHW, a
    channels-last view (a contiguous NCHW copy takes other convolution kernels: keypoints
    6e-7 away, frames of the whole sample clip 2.8e-4)."""
    def t(image):
        return torch.tensor(np.asarray(image)[np.newaxis].astype(np.float32)).permute(0, 3, 1, 2)
    kp, dm, inp = nets["kp_detector"], nets["dense_motion_network"], nets["inpainting_network"]
    out, threads = [], torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        src = t(source)
        kp_source, kp_initial = kp(src), kp(t(driving[initial]))
        for frame in driving:
            kp_norm = normalize_kp(mode, kp_source, kp(t(frame)), kp_initial,
                                   nets["avd_network"])
            prediction = inp(src, dm(src, kp_norm, kp_source))["prediction"]
            out.append(prediction[0].numpy().transpose(1, 2, 0))
    finally:
        torch.set_num_threads(threads)
    return np.stack(out)


def inputs_as_animate_reads_them(source, driving):
    return (media.read_image(source, SIZE),
            np.stack(list(media.open_video(driving).frames(SIZE))))


@pytest.fixture
def caught(monkeypatch):
    """animate's frames as floats, caught on their way to the writer."""
    frames = []
    real = jobs.output_frames

    def catch(batch, *args):
        frames.extend(np.array(batch.prediction))
        yield from real(batch, *args)
    monkeypatch.setattr(jobs, "output_frames", catch)
    return frames


def errors(ours, expected) -> tuple[float, float]:
    diff = np.abs(np.asarray(ours, np.float64) - expected)
    return float(diff.mean()), float(diff.max())


@pytest.mark.slow  # the sample clip through every network, per mode
@pytest.mark.parametrize("mode", MODES)
def test_sample_clip_frames_are_the_demos_make_animation(checkpoint, nets, caught, tmp_path,
                                                         mode):
    """The whole sample clip (265 frames) into an mp4 in each mode, frame by frame as the
    demo runs: make_animation's bits. (At the torch backend's default batch of 4 the
    generator's float32 sums come in another order: measured mean / max abs from
    make_animation, relative 1.2e-7 / 9.2e-6, standard 9.2e-8 / 4.4e-6, avd 1.1e-6 /
    1.1e-4, avd's large warps amplifying it as in predict.)"""
    require_shared("media/source.png", "media/driving.mp4")
    out = tmp_path / f"{mode}.mp4"
    result = ok(run("animate", "--config", CONFIG, "--checkpoint", checkpoint, "--source",
                    MEDIA / "source.png", "--driving", MEDIA / "driving.mp4", "--out", out,
                    "--mode", mode, "--batch-size", 1))
    assert f"265 frames at 30 fps; backend torch, mode {mode};" in result.stdout
    assert len(list(media.open_video(out).frames(SIZE))) == 265
    expected = make_animation(nets, *inputs_as_animate_reads_them(MEDIA / "source.png",
                                                                  MEDIA / "driving.mp4"), mode)
    assert np.array_equal(np.stack(caught), expected)


def test_png_frames_hold_animates_floats_in_8_bits(nets, checkpoint, short_clip, caught,
                                                  tmp_path):
    """No --mode: the spec's, relative (the original demo's default); at the default batch
    within the policy of make_animation's frames (measured: mean 8.7e-8, max 4.2e-6); a
    PNG folder holds exactly those floats in 8 bits."""
    result = ok(run("animate", "--config", CONFIG, "--checkpoint", checkpoint, "--source",
                    short_clip["source"], "--driving", short_clip["driving"], "--out",
                    tmp_path / "png"))
    assert "24 frames at 25 fps; backend torch, mode relative;" in result.stdout
    expected = make_animation(nets, *inputs_as_animate_reads_them(short_clip["source"],
                                                                  short_clip["driving"]),
                              "relative")
    mean, worst = errors(caught, expected)
    print(f"relative, short clip, batch 4: mean {mean:.1e} max {worst:.1e}")
    assert len(caught) == 24 and worst <= 1e-4
    frames = np.stack([iio.imread(p) for p in sorted((tmp_path / "png").iterdir())])
    assert np.array_equal(frames, np.stack([media.to_uint8(f) for f in caught]))


def test_best_frame(nets, checkpoint, short_clip, caught, tmp_path):
    """A clip whose frame 5 is the source itself: picked, and every frame is the demo's
    make_animation measured from it (its forward and backward parts joined)."""
    source = media.to_uint8(media.read_image(short_clip["source"], SIZE))
    iio.imwrite(tmp_path / "source.png", source)
    clip = np.stack(list(media.open_video(short_clip["driving"]).frames(SIZE)))[:12]
    frames = np.concatenate([clip[:5], source[None] / np.float32(255), clip[5:]])
    write_lossless(tmp_path / "driving.mp4", frames)
    result = ok(run("animate", "--config", CONFIG, "--checkpoint", checkpoint, "--source",
                    tmp_path / "source.png", "--driving", tmp_path / "driving.mp4", "--out",
                    tmp_path / "out", "--best-frame"))
    assert "motion from frame 5; backend torch, mode relative;" in result.stdout
    expected = make_animation(nets, *inputs_as_animate_reads_them(
        tmp_path / "source.png", tmp_path / "driving.mp4"), "relative", initial=5)
    mean, worst = errors(caught, expected)
    assert len(caught) == 13 and worst <= 1e-4, (mean, worst)


def test_draw_keypoints_colours_each_spline_alike():
    """TPSMM's KEYPOINT_GROUP: the 5 control points of a spline in one colour."""
    from fomm_convert.tpsmm.animation import KEYPOINT_GROUP
    points = np.array([[x, y] for y in (-0.5, 0.5) for x in (-0.8, -0.4, 0.0, 0.4, 0.8)])
    image = drawing.draw_keypoints(np.zeros((64, 64, 3), np.float32), points, radius=2,
                                   group=KEYPOINT_GROUP)
    centres = [image[round(64 * (y + 1) / 2), round(64 * (x + 1) / 2)] for x, y in points]
    assert [tuple(c) for c in centres] == [tuple(drawing.PALETTE[i // 5]) for i in range(10)]


def test_visualize(checkpoint, short_clip, caught, tmp_path):
    """source | driving | result, the keypoints of the tiny config's 3 splines in 3
    colours; the result panel is the frame."""
    ok(run("animate", "--config", CONFIG, "--checkpoint", checkpoint, "--source",
           short_clip["source"], "--driving", short_clip["driving"], "--out", tmp_path / "v",
           "--visualize", "--mode", "standard"))
    frames = np.stack([iio.imread(p) for p in sorted((tmp_path / "v").iterdir())])
    assert frames.shape == (24, 64, 192, 3)
    assert np.array_equal(frames[:, :, 128:], np.stack([media.to_uint8(f) for f in caught]))
    for panel in (frames[0, :, :64], frames[0, :, 64:128]):
        colours = {tuple(c) for c in panel.reshape(-1, 3)}
        assert [tuple(c) in colours for c in drawing.PALETTE[:4]] == [True] * 3 + [False]


def test_reconstruct(nets, checkpoint, short_clip, tmp_path):
    """The original's reconstruction: frame 0 animated by every frame in standard mode,
    the mean of the frames' mean absolute errors."""
    result = ok(run("reconstruct", "--config", CONFIG, "--checkpoint", checkpoint,
                    "--video", short_clip["driving"], "--json", tmp_path / "l1.json"))
    report = json.loads((tmp_path / "l1.json").read_text())
    video = np.stack(list(media.open_video(short_clip["driving"]).frames(SIZE)))
    expected = make_animation(nets, video[0], video, "standard")
    per_frame = np.abs(expected.astype(np.float64) - video).mean(axis=(1, 2, 3))
    assert report["frames"] == 24 and report["checkpoint"] == str(checkpoint)
    assert np.allclose(report["l1_per_frame"], per_frame, rtol=1e-5, atol=0)
    assert f"reconstruction L1: {report['l1']:.6f} over 24 frames (backend torch)" \
        in result.stdout


def test_a_synthetic_checkpoint_says_so(checkpoint, short_clip, tmp_path):
    """As a bundle of synthetic weights does; the oracle's checkpoint (not ours) does not."""
    ok(run("synth", "--config", CONFIG, "--seed", 3, "--out", tmp_path / "s.pth.tar"))
    common = ["--source", short_clip["source"], "--driving", short_clip["driving"],
              "--config", CONFIG]
    result = ok(run("animate", *common, "--checkpoint", tmp_path / "s.pth.tar", "--out",
                    tmp_path / "s.gif"))
    assert [line for line in result.stderr.splitlines() if "synthetic" in line] == [
        "note: s.pth.tar holds synthetic weights (seeded random), not a trained model: the "
        "output is not meant to look like anything"]
    assert "synthetic" not in ok(run("animate", *common, "--checkpoint", checkpoint, "--out",
                                     tmp_path / "o.gif")).stderr


def test_an_option_of_the_other_family_is_one_line(checkpoint, short_clip, tmp_path):
    """Each family refuses the other's options, naming itself and what it takes, before
    any work; nothing is written."""
    common = ["--source", short_clip["source"], "--driving", short_clip["driving"], "--out",
              tmp_path / "out.mp4"]
    tpsmm = ["--config", CONFIG, "--checkpoint", checkpoint]
    fomm = ["--config", FIXTURES / "configs" / "tiny.yaml", "--checkpoint",
            FIXTURES / "tiny-seed7.pth.tar"]
    for args, line in (
            ([*tpsmm, "--adapt-scale"], "--adapt-scale/--no-adapt-scale: TPSMM models have "
             "no such option (they take --mode relative|standard|avd)"),
            ([*tpsmm, "--absolute"], "--relative/--absolute: TPSMM models have no such "
             "option (they take --mode relative|standard|avd)"),
            ([*fomm, "--mode", "avd"], "--mode: FOMM models have no such option (they take "
             "--relative/--absolute and --adapt-scale/--no-adapt-scale)"),
            ([*tpsmm, "--backend", "tflite"], "backend tflite runs a bundle's files: give "
             "--bundle, or a checkpoint backend (tf, torch) with --checkpoint"),
            (["--config", CONFIG], "backend torch without a bundle needs --checkpoint"),
            (["--dataset", "tpsmm-vox", "--checkpoint", tmp_path / "none.pth.tar",
              "--driving", MEDIA / "driving.mp4"],  # the clip at vox's 256x256
             f"{tmp_path / 'none.pth.tar'}: no such file")):
        result = run("animate", *common, *args)
        assert result.exit_code == 1, result.output
        assert result.output.splitlines() == [f"Error: {line}"]
    result = run("animate", *tpsmm, "--bundle", tmp_path, *common)
    assert result.exit_code == 2
    assert "give exactly one of --bundle, --dataset and --config" in result.output
    with pytest.raises(fomm_convert.errors.FommError,
                       match=r"^TPSMM models: --mode: 'sideways' is not one of relative, "
                             r"standard, avd$"):
        fomm_convert.animate(short_clip["source"], short_clip["driving"], tmp_path / "a.mp4",
                             config=str(CONFIG), checkpoint=checkpoint, mode="sideways")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_api_animates_a_checkpoint(checkpoint, short_clip, caught, tmp_path):
    summary = fomm_convert.animate(short_clip["source"], short_clip["driving"],
                                   tmp_path / "a.gif", config=str(CONFIG),
                                   checkpoint=checkpoint, mode="avd", notify=lambda text: None)
    assert (summary["frames"], summary["mode"], summary["motion"]) == (24, "avd", "mode avd")
    assert len(caught) == 24
    result = fomm_convert.reconstruct(short_clip["driving"], config=str(CONFIG),
                                      checkpoint=checkpoint, notify=lambda text: None)
    assert result.frames == 24 and 0 < result.l1 < 1


def test_a_demo_without_the_browser_page_says_so_first(tmp_path, monkeypatch):
    """A family whose bundles the page does not run (families.py: web; TPSMM's did not
    before issue 22) stops the demo in one line, before it makes (a 351 MB) checkpoint or
    anything else."""
    import dataclasses
    from fomm_convert import families
    from fomm_convert.pipeline import demo
    monkeypatch.setattr(demo, "CHECKPOINTS", tmp_path / "checkpoints")
    monkeypatch.setattr(demo, "ARTIFACTS", tmp_path / "artifacts")
    monkeypatch.setitem(families.FAMILIES, "tpsmm",
                        dataclasses.replace(families.FAMILIES["tpsmm"], web=False))
    result = run("demo", "--dataset", "tpsmm-vox")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: tpsmm-vox: the TPSMM demo needs its TFLite bundle and the browser page, "
        "which TPSMM models do not have yet"]
    assert not list(tmp_path.iterdir())
