"""TPSMM's ONNX files measured: export time and file sizes per case, then per runtime
(onnxruntime, OpenVINO; one thread) the worst error against the original
(../shared/oracle-tpsmm) of each mode and of the keypoints, as a fraction of the policy's
tolerance (tests/test_tpsmm_family.py: tolerance), both end to end (tpsmm/predict.py,
our keypoints) and with the generator fed the original's keypoints.

    .venv/bin/python scripts/measure_tpsmm_onnx.py [--cases tiny,tiny-rect,vox-256]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tests' oracle helpers

from fomm_convert.checkpoint import load_checkpoint  # noqa: E402
from fomm_convert.tpsmm.onnx_export import export_onnx  # noqa: E402
from fomm_convert.tpsmm.predict import KP_NORM, predict, to_oracle  # noqa: E402
from fomm_convert.tpsmm.signatures import GENERATOR_OUTPUTS  # noqa: E402
from test_tpsmm_family import config, errors, nhwc, tolerance  # noqa: E402
from test_tpsmm_onnx import RUNTIMES, calls  # noqa: E402
from test_tpsmm_torch import CASES, ORACLE  # noqa: E402


def checkpoint(name: str, folder: Path):
    path = folder / f"{name}.pth.tar"
    if not path.exists():
        subprocess.run([sys.executable, str(ORACLE / "make_weights.py"), "--table",
                        str(ORACLE / "statedicts" / f"{name}.json"), "--seed", "7", "--out",
                        str(path)], check=True)
    return load_checkpoint(path, family="tpsmm")


def fed_the_originals_keypoints(backend, oracle) -> dict:
    positions = oracle["gen_frame_positions"]
    source, kp_source = nhwc(oracle["source"]), {"value": oracle["kp_source_fg_kp"]}
    out = {}
    for mode, name in KP_NORM.items():
        result = backend.generator(source, {"value": oracle[name][positions]}, kp_source)
        out.update({f"{mode}_{n}": to_oracle(n, result[n]) for n in GENERATOR_OUTPUTS
                    if f"{mode}_{n}" in oracle.files})
    return out


def worst(found: dict, oracle) -> dict:
    """{group: (array, error, error / tolerance)} of the worst array of each group (the
    keypoints, each mode)."""
    out = {}
    for name, error in found.items():
        group = ("keypoints" if "fg_kp" in name or name.startswith("adapt")
                 else name.split("_")[0] if name.split("_")[0] in KP_NORM else "source")
        ratio = error / tolerance(name, oracle[name])
        if group not in out or ratio > out[group][2]:
            out[group] = (name, error, ratio)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="tiny,tiny-rect")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for case in args.cases.split(","):
            spec, oracle = config(case), np.load(ORACLE / f"{case}.npz")
            bundle = folder / case
            start = time.perf_counter()
            export_onnx(spec, checkpoint(CASES[case], folder), {}, bundle / "onnx")
            print(f"\n{case}: export {time.perf_counter() - start:.1f} s; sizes: " + ", ".join(
                f"{p.name} {p.stat().st_size / 1e6:.2f} MB"
                for p in sorted((bundle / "onnx").iterdir())))
            print("| runtime | run | group | worst array | max abs | of tolerance |\n"
                  "|---|---|---|---|---:|---:|")
            for runtime in RUNTIMES:
                backend = calls(runtime, spec, bundle)
                runs = {"end to end": predict(backend, nhwc(oracle["source"]),
                                              nhwc(oracle["driving"]),
                                              positions=oracle["gen_frame_positions"]),
                        "fed the original's kp": fed_the_originals_keypoints(backend, oracle)}
                for run, ours in runs.items():
                    found = errors(ours, oracle)
                    for group, (name, error, ratio) in sorted(worst(found, oracle).items()):
                        print(f"| {runtime} | {run} | {group} | {name} | {error:.2e} | "
                              f"{ratio:.2f}{' **over**' if ratio > 1 else ''} |")


if __name__ == "__main__":
    main()
