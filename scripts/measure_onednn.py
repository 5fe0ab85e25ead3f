"""How far TensorFlow puts the vox-256 keypoints from a float64 run, with its oneDNN
convolutions and with its Eigen ones, beside how far the original's recorded keypoints are
(converter/__init__.py turns oneDNN off; docs/design.md states the figures).

The oracle's vox-256 seed-7 weights and frames (../shared/oracle): the float64 run is our
torch reference in double precision; TF runs the detector's graph function (the one the
artifacts are made from) per frame at batch 1, as the oracle did, once in a process of its
own per setting (TensorFlow reads TF_ENABLE_ONEDNN_OPTS when it loads).

    .venv/bin/python scripts/measure_onednn.py [--checkpoint vox-256-seed7.pth.tar]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ORACLE = Path(__file__).resolve().parent.parent.parent / "shared" / "oracle"
FRAMES = ("source", "driving")


def tf_keypoints(checkpoint: str, out: str):
    """(in a process whose TF_ENABLE_ONEDNN_OPTS is set) the TF detector's values."""
    from fomm_convert.checkpoint import load_checkpoint
    from fomm_convert.signatures import signatures
    from fomm_convert.spec import load_spec
    from fomm_convert.tf_model.functions import kp_detector_function
    from fomm_convert.tf_model.weights import build_tf_models
    spec = load_spec("vox")
    kp_detector, _ = build_tf_models(spec, load_checkpoint(checkpoint))
    detect = kp_detector_function(kp_detector, signatures(spec)["kp_detector"]["serving_default"])
    case = np.load(ORACLE / "vox-256.npz")
    values = {}
    for name in FRAMES:
        images = case[name].transpose(0, 2, 3, 1)
        values[name] = np.concatenate([detect(images[i:i + 1])["value"].numpy()
                                       for i in range(len(images))])
    np.savez(out, **values)


def float64_keypoints(checkpoint: str) -> dict:
    import torch
    from fomm_convert.checkpoint import load_checkpoint
    from fomm_convert.spec import load_spec
    from fomm_convert.torch_model import build_models, load_weights
    kp_detector, _ = build_models(load_spec("vox"))
    load_weights(kp_detector, load_checkpoint(checkpoint).kp_detector, "kp_detector")
    kp_detector = kp_detector.double()
    case = np.load(ORACLE / "vox-256.npz")
    with torch.inference_mode():
        return {name: kp_detector(torch.from_numpy(case[name].astype(np.float64)))["value"]
                .numpy() for name in FRAMES}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="the oracle's vox-256 seed-7 weights "
                        "(made with ../shared/oracle/make_weights.py when not given)")
    parser.add_argument("--tf-worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tf_worker:
        tf_keypoints(args.checkpoint, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:
            checkpoint = str(Path(tmp) / "vox-256-seed7.pth.tar")
            subprocess.run([sys.executable, str(ORACLE / "make_weights.py"), "--table",
                            str(ORACLE / "statedicts" / "vox-256.json"), "--seed", "7",
                            "--out", checkpoint], check=True)
        reference = float64_keypoints(checkpoint)
        case = np.load(ORACLE / "vox-256.npz")
        rows = {"original (recorded)": {n: case[f"kp_{n}_value"] for n in FRAMES}}
        for setting in ("0", "1"):
            out = str(Path(tmp) / f"onednn{setting}.npz")
            subprocess.run([sys.executable, __file__, "--tf-worker", setting, "--checkpoint",
                            checkpoint, "--out", out], check=True,
                           env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting})
            label = f"TF, TF_ENABLE_ONEDNN_OPTS={setting}"
            rows[label] = dict(np.load(out))
    print("vox-256 keypoint values (seed-7 oracle frames), off a float64 run:")
    for label, values in rows.items():
        diff = np.concatenate([np.abs(values[n] - reference[n]).ravel() for n in FRAMES])
        print(f"  {label:32s} max {diff.max():.2e}  rms {np.sqrt((diff ** 2).mean()):.2e}")


if __name__ == "__main__":
    main()
