"""The TPSMM torch reference equals the original (../shared/oracle-tpsmm): the state_dict
layout of every upstream table, per-layer parity fed the oracle's own inputs, and end to
end as the original demo runs (make_animation, per-frame batch 1; and batch N beside a
source of batch 1), in every mode, with both TPS solves.

Tolerances (issue 21): keypoints 1e-5, the adapt scale 1e-5 relative, every other array
1e-4, relative to its largest magnitude where that exceeds 1 (avd's TPS parameters reach
~75). The checkpoints are regenerated with the oracle's make_weights.py and read with our
safe reader (conftest.tpsmm_checkpoint).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from fomm_convert.checkpoint import load_checkpoint
from fomm_convert.hull import movement_scale
from fomm_convert.tpsmm.architecture import (NETWORKS, UNUSED_NETWORKS, check_frame,
                                             dense_motion_size, occlusion_sizes)
from fomm_convert.tpsmm.torch_model import (MODES, TPS_SOLVES, build_models, load_networks,
                                            normalize_kp)
from fomm_convert.tpsmm.torch_model import tps

from conftest import TPSMM_ORACLE, fast_first, require_tpsmm_oracle

ORACLE = TPSMM_ORACLE
TABLES = ("vox-256", "taichi-256", "ted-384", "mgif-256", "tiny", "tiny-rect")
CASES = {"tiny": "tiny", "tiny-rect": "tiny", "vox-256": "vox-256"}  # case -> weights
INPUTS = ("source", "driving", "driving_frame_indices", "gen_frame_positions")
require = require_tpsmm_oracle


def table(name: str) -> dict:
    require(f"statedicts/{name}.json")
    return json.loads((ORACLE / "statedicts" / f"{name}.json").read_text())


def tolerance(name: str, expected: np.ndarray) -> float:
    if name.endswith("fg_kp"):
        return 1e-5
    return 1e-4 * max(1.0, float(np.abs(expected).max()))


def max_errors(ours: dict, oracle) -> dict:
    """{name: max abs error} of every array ours has, after checking shapes."""
    out = {}
    for name, got in ours.items():
        assert got.shape == oracle[name].shape, (name, got.shape, oracle[name].shape)
        out[name] = float(np.abs(got.astype(np.float64) - oracle[name]).max())
    return out


def assert_within(errors: dict, oracle):
    bad = {n: e for n, e in errors.items() if not e <= tolerance(n, oracle[n])}
    assert not bad, {n: f"{e:.2e} > {tolerance(n, oracle[n]):.1e}" for n, e in bad.items()}


@pytest.fixture(scope="session")
def weights(tpsmm_checkpoint):
    """{weights name: {network: state dict of numpy arrays}}: the oracle's seed-7
    checkpoints (conftest.tpsmm_checkpoint), read by our safe reader."""
    return lambda name: load_checkpoint(tpsmm_checkpoint(name), family="tpsmm").networks


def models(weights, name: str, solve: str = "inverse") -> dict:
    built = build_models(table(name)["config"], tps_solve=solve)
    return load_networks(built, weights(name), name)


@pytest.mark.parametrize("name", fast_first(*reversed(TABLES)))
def test_state_dicts_equal_the_original_tables(name):
    facts = table(name)
    built = build_models(facts["config"])
    assert tuple(built) == NETWORKS
    for net, module in built.items():
        ours = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")]
                for k, v in module.state_dict().items()]
        assert ours == facts[net], net
    # Every network of the table is built, but the bg configs' bg_predictor, which the
    # demo never runs.
    unused = set(UNUSED_NETWORKS) if facts["config"]["common_params"]["bg"] else set()
    assert set(facts) - {"config", "frame_shape"} == set(NETWORKS) | unused


@pytest.mark.parametrize("name", ["tiny", "tiny-rect"])
def test_constructor_arguments_are_the_config_model_params(name):
    require(f"configs/{name}.yaml")
    config = yaml.safe_load((ORACLE / "configs" / f"{name}.yaml").read_text())
    assert config["model_params"] == table(name)["config"]


@pytest.mark.parametrize("case", CASES)
def test_sizes_match_the_recorded_arrays(case):
    require(f"{case}.npz")
    oracle = np.load(ORACLE / f"{case}.npz")
    frame = oracle["source"].shape[2:]
    scale = table(CASES[case])["config"]["dense_motion_params"]["scale_factor"]
    check_frame(frame, scale, table(CASES[case])["config"]["dense_motion_params"]["num_blocks"])
    assert oracle["relative_deformation"].shape[1:3] == dense_motion_size(frame, scale)
    assert [oracle[f"relative_occlusion_map_{i}"].shape[2:] for i in range(4)] \
        == occlusion_sizes(frame)
    with pytest.raises(ValueError, match="multiples of 8"):
        check_frame((frame[0] + 4, frame[1]), scale, 3)


def hook_outputs(module, prefix: str, store: dict) -> list:
    """Forward hooks storing every submodule's output as the oracle's recorder names it:
    <prefix><path> ('<root>' for the module), list outputs <path>:<i>, dicts <path>:<key>."""
    def put(key, value):
        if torch.is_tensor(value):
            store[key] = value.detach().numpy().copy()
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                put(f"{key}:{i}", item)
        elif isinstance(value, dict):
            for k, item in value.items():
                put(f"{key}:{k}", item)
    return [sub.register_forward_hook(lambda m, i, o, key=prefix + (path or "<root>"):
                                      put(key, o)) for path, sub in module.named_modules()]


@torch.inference_mode()
def intermediates(nets: dict, oracle, inter) -> dict:
    """Our arrays under the intermediates' names; each network fed the oracle's inputs."""
    store, t = {}, torch.from_numpy
    source, kp_source = t(oracle["source"]), t(oracle["kp_source_fg_kp"])
    kp_driving = t(oracle["kp_driving_fg_kp"][7:8])
    kp_norm = t(oracle["kp_norm_relative_fg_kp"][7:8])
    for net, prefix, call in (
            ("kp_detector", "kp_driving7/", lambda m: m(t(oracle["driving"][7:8]))),
            ("avd_network", "avd7/", lambda m: m(kp_source, kp_driving)),
            ("dense_motion_network", "dense_motion/", lambda m: m(source, kp_norm, kp_source))):
        handles = hook_outputs(nets[net], prefix, store)
        call(nets[net])
        for handle in handles:
            handle.remove()
    for net in ("kp_driving7", "avd7"):
        store[f"{net}/<root>:fg_kp"] = store.pop(f"{net}/<root>")
    dm = nets["dense_motion_network"]
    points = tps.control_points(kp_norm)
    lhs = tps.system_matrix(points)
    theta, params = t(inter["dense_motion.internal/tps_theta"]), \
        t(inter["dense_motion.internal/tps_control_params"])
    size = oracle["relative_deformation"].shape[1:3]
    internal = {"source_down": store["dense_motion/down"],
                "create_heatmap_representations": dm.heatmap_representations(size, kp_norm,
                                                                              kp_source),
                "tps_L": lhs, "tps_L_inverse": torch.inverse(lhs),
                "tps_theta": store.pop("dense_motion/<root>:tps_theta"),
                "tps_control_points": points,
                "tps_control_params": store.pop("dense_motion/<root>:tps_control_params"),
                "create_transformations": dm.transformations(size, kp_norm, theta, params),
                "hourglass_input": store["dense_motion/hourglass.encoder:0"],
                "contribution_logits": store["dense_motion/maps"]}
    for key, value in internal.items():
        store[f"dense_motion.internal/{key}"] = np.asarray(value)
    inp = nets["inpainting_network"]
    motion = {"deformation": t(inter["dense_motion/<root>:deformation"]),
              "occlusion_map": [t(inter[f"dense_motion/<root>:occlusion_map:{i}"])
                                for i in range(4)]}
    handles = hook_outputs(inp, "inpainting/", store)
    inp(source, motion)
    for handle in handles:
        handle.remove()
    for i, warped in enumerate(inp.warped_features(inp.encode(source), motion["deformation"],
                                                   motion["occlusion_map"])):
        store[f"inpainting/<root>:warped_encoder_maps:{i}"] = warped.numpy()
    return {k: v for k, v in store.items() if k in inter.files}


def test_every_intermediate_matches(weights):
    require("tiny_intermediates.npz", "tiny.npz")
    inter = np.load(ORACLE / "tiny_intermediates.npz")
    ours = intermediates(models(weights, "tiny"), np.load(ORACLE / "tiny.npz"), inter)
    assert sorted(ours) == sorted(inter.files)  # all 134
    assert_within(max_errors(ours, inter), inter)


@torch.inference_mode()
def detect(nets: dict, oracle) -> dict:
    """The keypoint arrays of a case as the demo's make_animation computes them: each
    frame detected at batch 1, every mode's kp_norm, the adapt scales."""
    kp = nets["kp_detector"]
    kp_source = kp(torch.from_numpy(oracle["source"]))
    kp_driving = torch.cat([kp(torch.from_numpy(frame[None])) for frame in oracle["driving"]])
    ours = {"kp_source_fg_kp": kp_source, "kp_driving_fg_kp": kp_driving}
    for suffix, initial in (("", 0), ("_init3", 3)):
        ours[f"adapt_movement_scale{suffix}"] = np.float64(
            movement_scale(kp_source.numpy(), kp_driving[initial:initial + 1].numpy()))
        ours[f"kp_norm_relative{suffix}_fg_kp"] = torch.cat([normalize_kp(
            "relative", kp_source, kp_driving[i:i + 1], kp_driving[initial:initial + 1], None)
            for i in range(len(kp_driving))])
    ours["kp_norm_avd_fg_kp"] = torch.cat([normalize_kp(
        "avd", kp_source, kp_driving[i:i + 1], None, nets["avd_network"])
        for i in range(len(kp_driving))])
    return {k: np.asarray(v) for k, v in ours.items()}


# The keypoints each mode gives the generator, as named in the oracle.
KP_NORM = {"relative": "kp_norm_relative_fg_kp", "standard": "kp_driving_fg_kp",
           "avd": "kp_norm_avd_fg_kp"}


@torch.inference_mode()
def generate(nets: dict, oracle, solve: str, kp: dict) -> dict:
    """The generator's arrays of a case, per generator position and mode, from keypoint
    arrays named as the oracle's (ours, or the oracle's own)."""
    dm, inp = nets["dense_motion_network"], nets["inpainting_network"]
    dtype = next(dm.parameters()).dtype
    source = torch.from_numpy(oracle["source"]).to(dtype)
    kp_source = torch.from_numpy(kp["kp_source_fg_kp"]).to(dtype)
    ours = {"dm_source_down": dm.downsample(source)}
    logits = []
    handle = dm.maps.register_forward_hook(lambda m, i, o: logits.append(o))
    size = oracle["relative_deformation"].shape[1:3]
    for mode in MODES:
        rows = {}
        for p in oracle["gen_frame_positions"]:
            kp_norm = torch.from_numpy(kp[KP_NORM[mode]][p:p + 1]).to(dtype)
            motion = dm(source, kp_norm, kp_source)
            out = inp(source, motion)
            points = tps.control_points(kp_norm)
            lhs = tps.system_matrix(points) if solve == "inverse" else tps.system_matrix_4d(points)
            row = {"prediction": out["prediction"], "deformation": motion["deformation"],
                   "contribution_maps": motion["contribution_maps"],
                   "tps_theta": motion["tps_theta"], "tps_L": lhs,
                   "tps_control_params": motion["tps_control_params"],
                   **{f"occlusion_map_{i}": m for i, m in enumerate(motion["occlusion_map"])}}
            if solve == "inverse":
                row["tps_L_inverse"] = torch.inverse(lhs)
            if mode == "relative":
                row.update(deformed=out["deformed"], deformed_source=motion["deformed_source"],
                           transformations=dm.transformations(size, kp_norm, motion["tps_theta"],
                                                              motion["tps_control_params"]),
                           contribution_logits=logits[-1])
                if "relative_heatmap_representation" in oracle.files:
                    row["heatmap_representation"] = dm.heatmap_representations(
                        size, kp_norm, kp_source)
            for key, value in row.items():
                rows.setdefault(key, []).append(value)
        ours.update({f"{mode}_{k}": torch.cat(v) for k, v in rows.items()})
    handle.remove()
    return {k: np.asarray(v) for k, v in ours.items()}


def expected_names(oracle, solve: str) -> set:
    names = {n for n in oracle.files if n not in INPUTS}
    if solve != "inverse":  # no inverse is computed
        names -= {f"{m}_tps_L_inverse" for m in MODES}
    return names


def assert_keypoints_within(ours: dict, oracle):
    errors = max_errors(ours, oracle)
    for name in ("adapt_movement_scale", "adapt_movement_scale_init3"):
        assert errors.pop(name) <= 1e-5 * oracle[name], name
    assert_within(errors, oracle)


# Slow: the fast tier holds the generator fed the oracle's keypoints and every intermediate.
@pytest.mark.slow
@pytest.mark.parametrize("case, solve", [("tiny", "inverse"), ("tiny", "elimination"),
                                         ("tiny-rect", "inverse"), ("tiny-rect", "elimination")])
def test_end_to_end_matches_the_original(weights, case, solve):
    require(f"{case}.npz")
    oracle = np.load(ORACLE / f"{case}.npz")
    nets = models(weights, CASES[case], solve)
    kp = detect(nets, oracle)
    ours = {**kp, **generate(nets, oracle, solve, kp)}
    assert set(ours) == expected_names(oracle, solve)
    assert_keypoints_within(ours, oracle)


@pytest.mark.slow
def test_vox256_keypoints_end_to_end(weights):
    """vox-256's keypoint arrays end to end. Its frames from our keypoints are not within
    the policy (measured, reference solve: prediction 1.5e-4 relative, 2.5e-4 standard,
    3.2e-3 avd; deformed 2.6e-4): the detector's bias-free convs differ from the
    original's machine by up to 4e-6 on features, 5e-7 on keypoints (the generator given
    the same keypoints is bit-exact, below), which the warps amplify as the original's
    own float32 noise does (its prediction is 8e-5, 2.1e-4 and 1.9e-3 from float64)."""
    require("vox-256.npz")
    oracle = np.load(ORACLE / "vox-256.npz")
    ours = detect(models(weights, "vox-256"), oracle)
    assert set(ours) == {n for n in expected_names(oracle, "inverse") if "fg_kp" in n
                         or n.startswith("adapt_movement_scale")}
    assert_keypoints_within(ours, oracle)


@pytest.mark.parametrize("case, solve", [
    pytest.param(case, solve, marks=[] if (case, solve) == ("tiny", "elimination")
                 else [pytest.mark.slow])
    for case in CASES for solve in TPS_SOLVES if case != "vox-256" or solve == "inverse"])
def test_generator_fed_the_oracles_keypoints(weights, case, solve):
    """Bit-exact with the reference solve (measured: 0.0 on every array); vox-256 with the
    export solves is held to the original's own float32 accuracy instead (below)."""
    require(f"{case}.npz")
    oracle = np.load(ORACLE / f"{case}.npz")
    ours = generate(models(weights, CASES[case], solve), oracle, solve, oracle)
    assert set(ours) == {n for n in expected_names(oracle, solve) if "fg_kp" not in n
                         and not n.startswith("adapt_movement_scale")}
    assert_within(max_errors(ours, oracle), oracle)


@pytest.mark.slow
def test_export_solve_as_accurate_as_the_original_on_vox256(weights):
    """Given the oracle's keypoints, every generator array of the export solve meets the
    policy against the oracle or, where the original's own float32 error is already of
    that size, lies within twice that error of the float64 model (the reference in
    float64, which reproduces the original's recorded float64 check).

    Measured: prediction 9.9e-4 from the oracle in avd mode, 2.2e-4 in standard, deformed
    1.1e-4, where the original itself is 1.9e-3, 2.1e-4 and 1.2e-4 from float64 and the
    export solve 1.9e-3, 3.2e-5 and 2.5e-5; every other array meets the policy."""
    require("vox-256.npz", "vox-256.json")
    oracle = np.load(ORACLE / "vox-256.npz")
    ours = generate(models(weights, "vox-256", "elimination"), oracle, "elimination", oracle)
    assert set(ours) == {n for n in expected_names(oracle, "elimination") if "fg_kp" not in n
                         and not n.startswith("adapt_movement_scale")}
    assert_as_accurate_as_the_original(ours, oracle, float64_arrays(weights, oracle))


def float64_arrays(weights, oracle) -> dict:
    """vox-256's generator arrays of the reference in float64, fed the oracle's keypoints;
    checked to reproduce the original's recorded float64 check."""
    recorded = json.loads((ORACLE / "vox-256.json").read_text())["float64_vs_float32_maxabs"]
    exact = generate({k: v.double() for k, v in models(weights, "vox-256").items()}, oracle,
                     "inverse", {k: oracle[k].astype(np.float64)
                                 for k in ("kp_source_fg_kp", *KP_NORM.values())})
    row = list(oracle["gen_frame_positions"]).index(recorded["position"])
    for name in ("prediction", "deformation"):
        check = np.abs(oracle[f"relative_{name}"][row] - exact[f"relative_{name}"][row]).max()
        assert abs(check - recorded[f"{name}_given_f32_kp"]) <= 1e-9, name
    return exact


def assert_as_accurate_as_the_original(ours: dict, oracle, exact: dict):
    """Every array within the policy, or, where it misses, within twice the original's own
    float32 distance from the float64 model (`exact`)."""
    errors = max_errors(ours, oracle)
    for name in [n for n, e in errors.items() if not e <= tolerance(n, oracle[n])]:
        original = np.abs(oracle[name] - exact[name]).max()
        assert np.abs(ours[name] - exact[name]).max() <= 2 * original, name


@pytest.mark.parametrize("solve", TPS_SOLVES)
def test_batch_of_driving_frames_beside_one_source(weights, solve):
    """Driving batch N with source batch 1 in one call of each network equals the
    per-frame oracle (the original's own batch-8 noise is 5e-7 on keypoints, 5e-6 on
    frames)."""
    require("tiny.npz")
    oracle = np.load(ORACLE / "tiny.npz")
    nets = models(weights, "tiny", solve)
    t = torch.from_numpy
    source, kp_source = t(oracle["source"]), t(oracle["kp_source_fg_kp"])
    with torch.inference_mode():
        kp_driving = nets["kp_detector"](t(oracle["driving"]))
        kp_norm = normalize_kp("relative", kp_source, kp_driving, kp_driving[:1], None)
        motion = nets["dense_motion_network"](source, kp_norm, kp_source)
        out = nets["inpainting_network"](source, motion)
        ours = {"kp_driving_fg_kp": kp_driving, "kp_norm_relative_fg_kp": kp_norm,
                "kp_norm_avd_fg_kp": nets["avd_network"](kp_source, kp_driving),
                "relative_prediction": out["prediction"], "relative_deformed": out["deformed"],
                "relative_deformation": motion["deformation"],
                "relative_tps_theta": motion["tps_theta"],
                **{f"relative_occlusion_map_{i}": m
                   for i, m in enumerate(motion["occlusion_map"])}}
    ours = {k: np.asarray(v) for k, v in ours.items()}
    assert list(oracle["gen_frame_positions"]) == list(range(len(oracle["driving"])))
    assert_within(max_errors(ours, oracle), oracle)
