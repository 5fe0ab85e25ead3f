"""TPSMM's TF graph measured: per-layer errors against the torch reference on tiny, every
array's error against the original (../shared/oracle-tpsmm) per case and mode, and TF's
time per frame at one thread.

Per layer: tpsmm/parity.py (layer_parity) on the fixed inputs, the worst layer of each
stage. End to end: the arrays of tests/test_tpsmm_tf.py (keypoints per frame at batch 1,
the generator on the generator positions at once beside a source of batch 1), from our
own keypoints on tiny and tiny-rect, from the oracle's on vox-256 (its frames from our
keypoints are not held to the policy: tests/test_tpsmm_torch.py); each array's max abs
error and the policy's tolerance. Speed: the graph functions at batch 1, one thread, the
median of `--runs` calls after a warm-up (rough: the machine is shared).

    .venv/bin/python scripts/measure_tpsmm_tf.py [--cases tiny,tiny-rect,vox-256] [--runs 5]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tests' oracle helpers

import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from fomm_convert.fixtures import fixed_inputs  # noqa: E402
from fomm_convert.tpsmm.parity import layer_parity  # noqa: E402
from fomm_convert.tpsmm.tf_model import build_tf_models  # noqa: E402
from fomm_convert.tpsmm.tf_model.functions import model_functions  # noqa: E402
from test_tpsmm_torch import CASES, ORACLE, max_errors, tolerance  # noqa: E402
from test_tpsmm_tf import generator_arrays, keypoint_arrays, nhwc  # noqa: E402


def load_weights(name: str, folder: Path) -> tuple[dict, dict]:
    """(config, {network: state dict}) of the oracle's seed-7 weights, regenerated."""
    table = json.loads((ORACLE / "statedicts" / f"{name}.json").read_text())
    path = folder / f"{name}.pth.tar"
    subprocess.run([sys.executable, str(ORACLE / "make_weights.py"), "--table",
                    str(ORACLE / "statedicts" / f"{name}.json"), "--seed", "7", "--out",
                    str(path)], check=True)
    checkpoint = torch.load(path, weights_only=True)
    nets = ("kp_detector", "dense_motion_network", "inpainting_network", "avd_network")
    return table["config"], {n: {k: v.numpy() for k, v in checkpoint[n].items()} for n in nets}


def per_layer(config, state, models):
    report = layer_parity(config, state, models, *fixed_inputs((64, 64, 3)))
    print(f"\nper layer, tiny, fixed inputs: {len(report.layers)} layers, "
          f"passed={report.passed}")
    worst = {}
    for layer in report.layers:
        stage = layer.name.split("/")[0]
        if stage not in worst or layer.max_abs > worst[stage].max_abs:
            worst[stage] = layer
    print("| stage | layers | worst layer | max abs | tolerance |\n|---|---:|---|---:|---:|")
    for stage, layer in worst.items():
        count = sum(r.name.startswith(stage + "/") for r in report.layers)
        print(f"| {stage} | {count} | `{layer.name.split('/', 1)[1]}` | {layer.max_abs:.2e} "
              f"| {layer.tolerance:g} |")


def end_to_end(case, config, models, oracle):
    functions = model_functions(models, config, oracle["source"].shape[2:])
    own = case != "vox-256"
    kp = keypoint_arrays(functions, oracle)
    ours = {**kp, **generator_arrays(models, functions, oracle, kp if own else oracle)}
    errors = max_errors(ours, oracle)
    print(f"\n{case} (generator from {'our' if own else 'the oracle`s'} keypoints)")
    print("| array | max abs | tolerance |\n|---|---:|---:|")
    for name in sorted(errors):
        tol = (1e-5 * oracle[name] if name.startswith("adapt_movement_scale")
               else tolerance(name, oracle[name]))
        mark = "" if errors[name] <= tol else " **over**"
        print(f"| {name} | {errors[name]:.2e} | {float(tol):.1e}{mark} |")
    return functions


def speed(case, functions, oracle, runs):
    source = nhwc(oracle["source"])
    kp = oracle["kp_source_fg_kp"]
    signatures = functions["generator"][1]
    encoded = signatures["encode_source"](source_image=source)
    calls = {"kp_detector": lambda: functions["kp_detector"][1]["serving_default"](
                 image=nhwc(oracle["driving"][:1])),
             "generator (full)": lambda: signatures["serving_default"](
                 source_image=source, kp_driving=kp, kp_source=kp),
             "generate (encoded once)": lambda: signatures["generate"](
                 source_image=source, **encoded, kp_driving=kp, kp_source=kp)}
    for name, call in calls.items():
        call()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        print(f"speed {case} {name}: {1e3 * np.median(times):.1f} ms per frame "
              f"(min {1e3 * min(times):.1f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="tiny,tiny-rect,vox-256")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        weights = {}
        for case in args.cases.split(","):
            name = CASES[case]
            if name not in weights:
                weights[name] = load_weights(name, Path(folder))
            config, state = weights[name]
            models = build_tf_models(config, state)
            if case == "tiny":
                per_layer(config, state, models)
            oracle = np.load(ORACLE / f"{case}.npz")
            functions = end_to_end(case, config, models, oracle)
            speed(case, functions, oracle, args.runs)


if __name__ == "__main__":
    main()
