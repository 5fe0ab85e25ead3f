"""TPSMM as the second model family (families.py): its specs and original configs, the safe
reader of its checkpoints, its synthetic checkpoints, its signatures, its place in the
format registry and the bundle schema, and `predict --backend torch`, the oracle contract,
against the original's recorded arrays (../shared/oracle-tpsmm).

Tolerances (issue 21): keypoints 1e-5, the adapt scale 1e-5 relative, every other array
1e-4, relative to its largest magnitude where that exceeds 1.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from fomm_convert.bundle.manifest import BundleError
from fomm_convert.bundle.schema import validate_manifest
from fomm_convert.checkpoint import CheckpointError, load_checkpoint, weights_sha256
from fomm_convert.cli import cli
from fomm_convert.families import FAMILIES
from fomm_convert.formats import FORMATS, onnx_files
from fomm_convert.keypoints import detect_frames
from fomm_convert.runtime import load_backend
from fomm_convert.spec import SpecError, load_spec
from fomm_convert.synth import make_checkpoint, write_checkpoint
from fomm_convert.tpsmm.animation import Mode
from fomm_convert.tpsmm.architecture import MODES
from fomm_convert.tpsmm.predict import KP_NORM, predict
from fomm_convert.tpsmm.signatures import GENERATOR_OUTPUTS, MODELS

from conftest import (FIXTURES, ROOT, TINY_CHECKPOINT, TPSMM_ORACLE, TPSMM_SPEC_TABLES,
                      fast_first, require_tpsmm_oracle)

TPSMM = FAMILIES["tpsmm"]
CONFIGS = {"tiny": "tiny", "tiny-rect": "tiny"}  # oracle config -> its weights
BOOKKEEPING = ["optimizer_avd", "epoch"]  # what a checkpoint of a bg: False config ignores


def oracle(case: str):
    require_tpsmm_oracle(f"{case}.npz")
    return np.load(TPSMM_ORACLE / f"{case}.npz")


def config(case: str):
    """The oracle's original-format config of a case (vox-256: our spec of it)."""
    if case == "vox-256":
        return load_spec("tpsmm-vox")
    require_tpsmm_oracle(f"configs/{case}.yaml")
    return load_spec(TPSMM_ORACLE / "configs" / f"{case}.yaml")


def nhwc(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array.transpose(0, 2, 3, 1))


def tolerance(name: str, expected, other: float = 1e-4) -> float:
    """other: every array's but the keypoints' (issue 21: 1e-2 for float16 files)."""
    if name.endswith("fg_kp"):
        return 1e-5
    if name == "adapt_movement_scale":
        return 1e-5 * abs(float(expected))
    return other * max(1.0, float(np.abs(expected).max()))


def errors(ours: dict, expected) -> dict:
    """{name: max abs error} of every array both hold, shapes checked."""
    out = {}
    for name, got in ours.items():
        if name in ("gen_frame_positions",):
            continue
        assert np.shape(got) == expected[name].shape, (name, np.shape(got),
                                                       expected[name].shape)
        out[name] = float(np.abs(np.asarray(got, np.float64) - expected[name]).max())
    return out


def assert_within(found: dict, expected, other: float = 1e-4):
    bad = {n: f"{e:.2e} > {tolerance(n, expected[n], other):.1e}" for n, e in found.items()
           if not e <= tolerance(n, expected[n], other)}
    assert not bad, bad


# ------------------------------------------------------------------------------ specs

@pytest.mark.parametrize("name", sorted(TPSMM_SPEC_TABLES))
def test_spec_model_params_equal_upstream(name):
    """Each TPSMM spec's model params are its upstream config's (the oracle's fact table
    of it), every default filled in; the demo's frame and the published checkpoint name."""
    require_tpsmm_oracle(f"statedicts/{TPSMM_SPEC_TABLES[name]}.json")
    table = json.loads((TPSMM_ORACLE / "statedicts"
                        / f"{TPSMM_SPEC_TABLES[name]}.json").read_text())
    spec = load_spec(name)
    upstream = table["config"]
    resolved = spec.model_params()
    for section, params in upstream.items():
        assert {k: resolved[section][k] for k in params} == params, section
    assert resolved["dense_motion_params"]["kp_variance"] == 0.01  # the original's default
    side = 384 if name == "tpsmm-ted" else 256
    assert spec.frame_shape == (side, side, 3)
    assert spec.checkpoint == f"{name.removeprefix('tpsmm-')}.pth.tar"
    assert spec.family == "tpsmm" and spec.num_kp == 50 and spec.align_corners is True
    assert spec.to_dict()["family"] == "tpsmm" and spec.to_dict()["mode"] == "relative"


@pytest.mark.parametrize("case", ["tiny", "tiny-rect"])
def test_an_original_config_is_recognised(case):
    """The upstream YAML (the oracle's configs) is a TPSMM model by its num_tps; its frame
    is dataset_params.frame_shape, its mode the demo's default."""
    spec = config(case)
    raw = yaml.safe_load((TPSMM_ORACLE / "configs" / f"{case}.yaml").read_text())
    assert spec.family == "tpsmm" and spec.name == case and spec.checkpoint is None
    assert spec.frame_shape == tuple(raw["dataset_params"]["frame_shape"])
    assert {s: {k: spec.model_params()[s][k] for k in v}
            for s, v in raw["model_params"].items()} == raw["model_params"]
    assert spec.settings == {"mode": "relative"} and spec.num_kp == 15


def test_an_upstream_config_without_frame_shape_takes_the_demos(tmp_path):
    """The published configs name no frame: the demo's --img_shape default, 256x256."""
    raw = yaml.safe_load((TPSMM_ORACLE / "configs" / "tiny.yaml").read_text())
    del raw["dataset_params"]["frame_shape"]
    path = tmp_path / "vox-like.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_spec(path).frame_shape == (256, 256, 3)


def _tpsmm_spec(**change):
    data = yaml.safe_load(load_spec("tpsmm-vox").path.read_text())
    for where, value in change.items():
        *parents, leaf = where.split("__")
        node = data
        for key in parents:
            node = node[key]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return data


@pytest.mark.parametrize("change, message", [
    ({"family": "coreml"}, r"family: unknown model family 'coreml' \(known: fomm, tpsmm\)$"),
    ({"grid_sample_align_corners": True}, r": grid_sample_align_corners: unknown field$"),
    ({"normalization": {"relative": True}}, r": normalization: unknown field$"),
    ({"mode": "absolute"}, r": mode: 'absolute' is not one of relative, standard, avd$"),
    ({"model_params__common_params__num_tps": 13},
     r"model_params\.common_params\.num_tps: 13 is outside 1\.\.12$"),
    ({"model_params__common_params__num_tps": None},
     r"model_params\.common_params\.num_tps: missing$"),
    ({"model_params__common_params__multi_mask": False},
     r"model_params\.common_params\.multi_mask: false is not supported"),
    ({"model_params__common_params__num_kp": 10},
     r"model_params\.common_params\.num_kp: unknown field$"),
    ({"model_params__kp_detector_params": {"temperature": 0.1}},
     r"model_params\.kp_detector_params: unknown field$"),
    ({"model_params__generator_params__num_down_blocks": 2},
     r"model_params\.generator_params\.num_down_blocks: 2 is outside 3\.\.3$"),
    ({"model_params__dense_motion_params__scale_factor": 0.3},
     r"model_params\.dense_motion_params\.scale_factor: 0\.3 must be 1 or 1/n"),
    ({"model_params__dense_motion_params__scale_factor": 1 / 3},
     r"model_params\.dense_motion_params\.scale_factor: 0\.333.* is not 1/2\*\*k"),
    ({"model_params__dense_motion_params__num_blocks": 1},
     r"model_params\.dense_motion_params\.num_blocks: .*needs 2$"),
    ({"model_params__avd_network_params__id_bottle_size": 0},
     r"model_params\.avd_network_params\.id_bottle_size: 0 is outside 1\.\.1024$"),
    ({"frame_shape": [260, 256, 3]}, r"frame_shape: frame 260x256: height and width must be "
                                     r"multiples of 8$"),
    ({"frame_shape": [264, 264, 3]}, r"frame_shape: frame 264x264: the dense motion size "
                                     r"66x66 must be a multiple of 2\*\*num_blocks = 32$"),
    ({"frame_shape": [2048, 2048, 3]}, r"model_params: the frame 2048x2048 and these widths "
                                       r"need an activation of \d+ values per frame"),
    ({"model_params__common_params__num_channels": 1},
     r"model_params\.common_params\.num_channels: 1 is outside 3\.\.3$"),
])
def test_every_field_is_checked(tmp_path, change, message):
    """One line naming the file and the field, for each thing a TPSMM spec can get wrong."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_tpsmm_spec(**change)))
    with pytest.raises(SpecError, match=message) as raised:
        load_spec(path)
    assert str(raised.value).startswith(f"{path}: ") and "\n" not in str(raised.value)


def test_a_fomm_spec_naming_its_family_resolves_as_before(tmp_path):
    """`family: fomm` is the default: written or not, the same spec (and so the same bundle
    version, to_dict leaving the default family out)."""
    data = yaml.safe_load(load_spec("vox").path.read_text())
    path = tmp_path / "vox.yaml"
    path.write_text(yaml.safe_dump({**data, "family": "fomm"}))
    assert load_spec(path).to_dict() == load_spec("vox").to_dict()
    assert "family" not in load_spec("vox").to_dict()
    with pytest.raises(SpecError, match=r"--align-corners does not apply"):
        load_spec("tpsmm-vox").with_align_corners(False)


# ------------------------------------------------------------------------ checkpoints

@pytest.mark.parametrize("zip_", [False, True])
@pytest.mark.parametrize("use_torch", [True, False])
def test_the_safe_reader_reads_the_original_layout(tpsmm_checkpoint, zip_, use_torch):
    """Both serialisations, with and without torch: the four networks with the recorded
    weights_sha256; the optimizer state and the epoch reported, not read."""
    path = tpsmm_checkpoint("tiny", zip=zip_)
    ckpt = load_checkpoint(path, use_torch=use_torch, family="tpsmm")
    expected = json.loads((TPSMM_ORACLE / "tiny.json").read_text())["weights_sha256"]
    assert weights_sha256(ckpt) == expected
    assert list(ckpt.networks) == list(TPSMM.networks) and ckpt.ignored == BOOKKEEPING
    assert not ckpt.synthetic and ckpt.kp_detector is ckpt.networks["kp_detector"]


def test_a_checkpoint_of_the_other_family_is_refused(tpsmm_checkpoint):
    tpsmm = tpsmm_checkpoint("tiny")
    with pytest.raises(CheckpointError, match=rf"^{tpsmm}: wrong model: no 'generator' entry "
                                              r"\(entries: 'inpainting_network', "):
        load_checkpoint(tpsmm)
    with pytest.raises(CheckpointError, match=r"wrong model: no 'dense_motion_network' or "
                                              r"'inpainting_network' or 'avd_network' entry"):
        load_checkpoint(TINY_CHECKPOINT, family="tpsmm")


# ------------------------------------------------------------------------------ synth

def test_synth_writes_the_original_layout(tmp_path):
    """Every network's keys, shapes and dtypes are the oracle's table of the config (its
    bg_predictor for bg configs too), seeded: the same seed the same weights, another seed
    others; the reader recognises it as synthetic."""
    spec = config("tiny")
    table = json.loads((TPSMM_ORACLE / "statedicts" / "tiny.json").read_text())
    result = CliRunner().invoke(cli, ["synth", "--config", str(spec.path), "--seed", "3",
                                      "--out", str(tmp_path / "a.pth.tar")])
    assert result.exit_code == 0, result.output
    raw = torch.load(tmp_path / "a.pth.tar", weights_only=True)
    assert list(raw) == ["inpainting_network", "dense_motion_network", "kp_detector",
                         "avd_network", "optimizer_avd", "epoch", "synthetic"]
    for net in TPSMM.networks:
        assert [[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
                for k, v in raw[net].items()] == table[net], net
    ckpt = load_checkpoint(tmp_path / "a.pth.tar", family="tpsmm")
    assert ckpt.synthetic and ckpt.ignored == BOOKKEEPING
    again = load_checkpoint(write_checkpoint(spec, 3, tmp_path / "b.pth.tar", zip=True),
                            family="tpsmm", use_torch=False)
    other = load_checkpoint(write_checkpoint(spec, 4, tmp_path / "c.pth.tar"), family="tpsmm")
    assert weights_sha256(again) == weights_sha256(ckpt)
    assert all(a != b for a, b in zip(weights_sha256(other).values(),
                                      weights_sha256(ckpt).values()))


@pytest.mark.slow
def test_synth_of_a_bg_config_holds_its_bg_predictor():
    """vox-256's table: the four networks and the bg_predictor the demo never runs."""
    require_tpsmm_oracle("statedicts/vox-256.json")
    table = json.loads((TPSMM_ORACLE / "statedicts" / "vox-256.json").read_text())
    raw = make_checkpoint(load_spec("tpsmm-vox"), 7)
    for net in (*TPSMM.networks, "bg_predictor"):
        assert [[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
                for k, v in raw[net].items()] == table[net], net


def test_synthetic_weights_make_a_healthy_model(tmp_path):
    """On the oracle's tiny inputs, synthetic weights give keypoints spread over the frame,
    well-conditioned TPS systems, contribution maps far from uniform and frames and
    occlusions away from saturation, as the oracle's own weights do (README: keypoints in
    [-0.998, 0.980], condition numbers 4-342, no saturated pixel)."""
    spec = config("tiny")
    backend = load_backend("torch", spec=spec, checkpoint=load_checkpoint(
        write_checkpoint(spec, 7, tmp_path / "s.pth.tar"), family="tpsmm"))
    case = oracle("tiny")
    out = predict(backend, nhwc(case["source"]), nhwc(case["driving"]))
    kp = out["kp_source_fg_kp"][0]
    assert np.ptp(kp, axis=0).min() > 0.5 and np.abs(kp).max() < 0.999
    from fomm_convert.tpsmm.conditioning import system64
    for mode in MODES:
        points = out[KP_NORM[mode]].reshape(-1, 5, 2)
        assert np.linalg.cond(system64(points)).max() < 1e3, mode
        maps = out[f"{mode}_contribution_maps"]
        entropy = -(maps * np.log(maps)).sum(axis=1).mean() / np.log(maps.shape[1])
        assert entropy < 0.9, (mode, entropy)
        for name in ("prediction", "occlusion_map_3"):
            value = out[f"{mode}_{name}"]
            assert ((value < 0.01) | (value > 0.99)).mean() < 0.01, (mode, name)


# ------------------------------------------------------------------- signatures, formats

@pytest.mark.parametrize("case", ["tiny", "tiny-rect"])
def test_signature_shapes_are_the_oracles(case):
    """Every generator output of the contract has the oracle's array's shape (NHWC), and
    the models and signatures are the registry row's."""
    spec, expected = config(case), oracle(case)
    sigs = TPSMM.signatures(spec)
    assert tuple(sigs) == MODELS == TPSMM.models
    assert {m: tuple(s) for m, s in sigs.items()} == TPSMM.signature_names
    outputs = {t.name: t.shape for t in sigs["generator"]["serving_default"].outputs}
    assert tuple(outputs) == GENERATOR_OUTPUTS
    for name, shape in outputs.items():
        array = expected[f"relative_{name}"]
        want = array.shape[1:] if name.startswith("tps_") or name == "deformation" \
            else nhwc(array).shape[1:]
        assert shape == want, name
    assert sigs["kp_detector"]["serving_default"].outputs[0].shape \
        == expected["kp_source_fg_kp"].shape[1:]


def test_formats_and_onnx_files_follow_the_family():
    assert FORMATS["tflite"].files(TPSMM) == tuple(
        f"tflite/{m}.tflite" for m in ("kp_detector", "process_kp_driving", "avd_network",
                                       "generator"))
    assert "onnx/avd_network.onnx" in FORMATS["onnx"].files(TPSMM)
    assert onnx_files(TPSMM)["generator", "encode_source"] == "generator.encode_source.onnx"
    assert FORMATS["savedmodel"].files(FAMILIES["fomm"]) == (
        "savedmodel/kp_detector", "savedmodel/process_kp_driving", "savedmodel/generator")


def test_build_says_which_formats_a_family_has_not_yet(tmp_path, monkeypatch):
    """TPSMM has no ExecuTorch export (families.py): build refuses it in one line, before
    any model work (--synthetic: before it writes a 351 MB checkpoint), naming the
    formats it has; by default it builds those but the opt-in int8 TFLite, as FOMM's."""
    monkeypatch.chdir(tmp_path)  # where --synthetic would write checkpoints/
    for source in (["--checkpoint", str(tmp_path / "none.pth.tar")], ["--synthetic"]):
        result = CliRunner().invoke(cli, ["build", "--dataset", "tpsmm-vox", *source,
                                          "--formats", "tflite,executorch", "--out",
                                          str(tmp_path / "b")])
        assert result.exit_code == 1
        assert result.output.strip().splitlines() == [
            f"Error: {load_spec('tpsmm-vox').path}: executorch: not yet available for TPSMM "
            f"models (available: savedmodel, tflite, tflite-fp16, tflite-int8, onnx, "
            f"tflite-static, tflite-static-fp16)"]
        assert not list(tmp_path.iterdir())
    assert TPSMM.default_formats == ("savedmodel", "tflite", "tflite-fp16", "onnx",
                                     "tflite-static", "tflite-static-fp16")
    assert "tflite-int8" not in FAMILIES["fomm"].default_formats


def test_a_manifest_of_an_unknown_family_is_refused(tmp_path):
    manifest = {"version": "0.1.0-0123456789", "dataset": "x", "synthetic": False,
                "spec": {"name": "x", "family": "coreml"}}
    with pytest.raises(BundleError, match=r"manifest\.json: spec\.family: unknown model "
                                          r"family 'coreml' \(known: fomm, tpsmm\)$"):
        validate_manifest(tmp_path, {**manifest, **{k: None for k in (
            "checkpoint", "files", "formats", "licence", "parity", "quality", "toolchain")}})


# ------------------------------------------------------------ torch backend and predict

def run_predict(tmp_path, case, checkpoint, *extra) -> dict:
    """`fomm-convert predict --backend torch` on the oracle's inputs of a case."""
    expected = oracle(case)
    inputs = tmp_path / "in.npz"
    np.savez(inputs, source=expected["source"], driving=expected["driving"])
    out = tmp_path / "out.npz"
    result = CliRunner().invoke(cli, ["predict", "--config", str(config(case).path),
                                      "--checkpoint", str(checkpoint), "--backend", "torch",
                                      "--inputs", str(inputs), "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return dict(np.load(out))


CONTRACT = {"kp_source_fg_kp", "kp_driving_fg_kp", "kp_norm_relative_fg_kp",
            "kp_norm_avd_fg_kp", "adapt_movement_scale", "relative_deformed", "dm_source_down",
            "gen_frame_positions",
            *(f"{m}_{n}" for m in MODES for n in GENERATOR_OUTPUTS
              if n != "deformed" or m == "relative")}


@pytest.mark.parametrize("case", fast_first("tiny", "tiny-rect"))
def test_predict_meets_the_oracle(tpsmm_checkpoint, tmp_path, case):
    """Every array of the contract, every mode: as the original computes them (one thread,
    frame by frame), the original's own bits (measured: 0.0 on every array); batched by 4,
    within the policy (measured: 1.0e-5 at most, tiny's avd prediction; tiny-rect 7.9e-6)."""
    expected = oracle(case)
    ours = run_predict(tmp_path, case, tpsmm_checkpoint(CONFIGS[case]))
    assert set(ours) == CONTRACT
    assert list(ours["gen_frame_positions"]) == list(expected["gen_frame_positions"])
    assert max(errors(ours, expected).values()) == 0.0
    batched = run_predict(tmp_path, case, tpsmm_checkpoint(CONFIGS[case]), "--force",
                          "--batch-size", "4")
    assert_within(errors(batched, expected), expected)


def test_predict_gen_frames(tpsmm_checkpoint, tmp_path):
    expected = oracle("tiny")
    ours = run_predict(tmp_path, "tiny", tpsmm_checkpoint("tiny"), "--gen-frames", "7,2")
    assert list(ours["gen_frame_positions"]) == [7, 2]
    assert ours["standard_prediction"].shape[0] == 2
    assert_within(errors({k: v for k, v in ours.items() if k.startswith("avd_")},
                         {k: expected[k][[7, 2]] for k in expected.files
                          if k.startswith("avd_")}), expected)


@pytest.mark.slow
def test_vox256_predict(tpsmm_checkpoint):
    """vox-256 end to end, every array of the contract within the policy (measured: the
    original's bits, 0.0 on every array, one thread and frame by frame as the original was
    recorded; the generator in batches of 2 moved avd's prediction by 1.5e-4)."""
    expected = oracle("vox-256")
    backend = load_backend("torch", spec=config("vox-256"), checkpoint=load_checkpoint(
        tpsmm_checkpoint("vox-256"), family="tpsmm"))
    ours = predict(backend, nhwc(expected["source"]), nhwc(expected["driving"]),
                   positions=expected["gen_frame_positions"])
    assert set(ours) == CONTRACT
    assert_within(errors(ours, expected), expected)


# ------------------------------------------------------- signature calls and animation

def test_encoded_once_equals_the_full_generator(tpsmm_checkpoint):
    """encode_source once, then generate for a driving batch of 8 beside a source of
    batch 1: the frames of serving_default, bit for bit."""
    spec, expected = config("tiny"), oracle("tiny")
    backend = load_backend("torch", spec=spec, checkpoint=load_checkpoint(
        tpsmm_checkpoint("tiny"), family="tpsmm"))
    source = nhwc(expected["source"])
    kp_source = {"value": expected["kp_source_fg_kp"]}
    kp = {"value": expected["kp_norm_relative_fg_kp"]}
    frames = backend.generate(backend.encode_source(source), kp, kp_source)
    assert frames.shape == (8, *spec.frame_shape)
    assert np.array_equal(frames, backend.generator(source, kp, kp_source)["prediction"])
    with pytest.raises(ValueError, match=r"generator generate: missing inputs \['source_"):
        backend.call("generator", "generate", {"kp_driving": kp["value"]})


@pytest.mark.parametrize("mode", MODES)
def test_the_animate_loop_runs_a_tpsmm_mode(tpsmm_checkpoint, mode):
    """The loop asks the family's mode for the generator's keypoints: TPSMM's three modes
    through animate_frames (encode once, batches of 3, the initial frame the first) give
    the oracle's frames."""
    from fomm_convert.animation.loop import Source, animate_frames
    spec, expected = config("tiny"), oracle("tiny")
    backend = load_backend("torch", spec=spec, checkpoint=load_checkpoint(
        tpsmm_checkpoint("tiny"), family="tpsmm"))
    source = Source.prepare(backend, nhwc(expected["source"])[0])
    frames = list(nhwc(expected["driving"]))
    batches = list(animate_frames(backend, source, frames, mode=Mode(mode), batch_size=3))
    ours = np.concatenate([b.prediction for b in batches]).transpose(0, 3, 1, 2)
    assert_within({f"{mode}_prediction": float(np.abs(ours - expected[f"{mode}_prediction"])
                                               .max())}, expected)
    assert np.array_equal(np.concatenate([b.kp_driving["value"] for b in batches]),
                          detect_frames(backend, nhwc(expected["driving"]))["value"])


def test_fixture_configs_stay_fomm():
    """Every FOMM fixture config is FOMM's still (no family field, nothing recognised as
    TPSMM)."""
    for path in sorted((FIXTURES / "configs").glob("*.yaml")):
        assert load_spec(path).family == "fomm", path


def test_the_readme_table_is_the_contract():
    """README's TPSMM table names every input and output of every signature, and no other
    (names written X_0 .. X_3 stand for the four)."""
    text = (ROOT / "README.md").read_text().split("TPSMM's models", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0] in MODELS:
            rows[cells[0], cells[1]] = cells[2:]

    def names(cell):
        cell = re.sub(r"(\w+)_0 \.\. \1_3", lambda m: ", ".join(f"{m[1]}_{i}" for i in range(4)),
                      re.sub(r"\([^()]*\)", "", cell))
        return [n.strip() for n in cell.split(",")]
    sigs = TPSMM.signatures(config("tiny"))
    assert set(rows) == {(m, n) for m, by_name in sigs.items() for n in by_name}
    for (model, name), (inputs, outputs) in rows.items():
        sig = sigs[model][name]
        assert (names(inputs), names(outputs)) == (list(sig.input_names),
                                                   list(sig.output_names)), (model, name)
