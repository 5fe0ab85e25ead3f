"""Frame time of a TPSMM spec's float32 TFLite files (default tpsmm-vox), quicker than a
build: the TF graph of the seeded synthetic checkpoint exported as `build` exports the
batch-1 (static) files (tpsmm/convert.py: the fast graph, tpsmm/tf_model/fast.py; with
--reference the reference-structured one), WITHOUT the build's parity gates, then timed
on LiteRT with XNNPACK at batch 1 per thread count: kp_detector, generator `generate`
(source encoded once) and the encode-once frame (kp_detector + process_kp_driving +
generate). Files left in OUT (the checkpoint, kp_detector.tflite, generator.tflite,
process_kp_driving.tflite); files already there are timed as they are. Several OUTs are
timed in turns, call by call, so that a load on the machine weighs on them alike.
--profile DIR keeps LiteRT's per-op summary of `generate` per OUT and thread count
(runtime/litert_c.py's profiler; its tables: run order, top ops, by node type).

    .venv/bin/python scripts/time_tpsmm_tflite.py OUT [OUT ...] [--spec tpsmm-vox]
        [--threads 1,2] [--repeats 5] [--reference] [--profile DIR]

For the figures of docs/performance.md only: files from here are not a bundle."""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from fomm_convert.checkpoint import load_checkpoint
from fomm_convert.spec import load_spec
from fomm_convert.synth import write_checkpoint
from fomm_convert.tpsmm.signatures import RELATIVE_FLAG

MODELS = ("kp_detector", "process_kp_driving", "generator")


def export(spec, out: Path, reference: bool):
    from fomm_convert.export.savedmodel import export_savedmodels
    from fomm_convert.export.tflite import convert_savedmodel
    from fomm_convert.tpsmm.tf_model import build_tf_models
    from fomm_convert.tpsmm.tf_model.fast import fast_models
    from fomm_convert.tpsmm.tf_model.functions import model_functions
    params = spec.model_params()
    checkpoint = write_checkpoint(spec, 7, out / f"{spec.name}-synthetic-seed7.pth.tar")
    models = build_tf_models(params, load_checkpoint(checkpoint, family="tpsmm").networks)
    if not reference:
        models = fast_models(models, spec.frame_shape)
    functions = model_functions(models, params, spec.frame_shape, batch=1)
    with tempfile.TemporaryDirectory() as scratch:
        paths = export_savedmodels({m: functions[m] for m in MODELS}, Path(scratch))
        for model in MODELS:
            t0 = time.perf_counter()
            (out / f"{model}.tflite").write_bytes(convert_savedmodel(paths[model], "fp32"))
            print(f"{model}.tflite: {time.perf_counter() - t0:.0f} s")


def calls(spec, out: Path, threads: int) -> dict:
    """{item: a call of it} on OUT's files: kp_detector, generate and the frame."""
    from ai_edge_litert.interpreter import Interpreter
    runners = {m: Interpreter(model_path=str(out / f"{m}.tflite"), num_threads=threads)
               for m in MODELS}
    h, w, c = spec.frame_shape
    rng = np.random.default_rng(0)
    source, initial, frame = (rng.random((1, h, w, c), np.float32) for _ in range(3))
    kp = runners["kp_detector"].get_signature_runner("serving_default")
    process = runners["process_kp_driving"].get_signature_runner("serving_default")
    encode = runners["generator"].get_signature_runner("encode_source")
    generate = runners["generator"].get_signature_runner("generate")
    kp_source, kp_initial = kp(image=source)["value"], kp(image=initial)["value"]
    encoded = encode(source_image=source)

    def normalised():
        return process(kp_driving=kp(image=frame)["value"], kp_driving_initial=kp_initial,
                       kp_source=kp_source, **{RELATIVE_FLAG: np.float32(1)})["value"]
    generate_inputs = dict(**encoded, source_image=source, kp_driving=normalised(),
                           kp_source=kp_source)
    return {"kp_detector": lambda: kp(image=frame),
            "generate": lambda: generate(**generate_inputs),
            "frame": lambda: generate(**{**generate_inputs, "kp_driving": normalised()}),
            "_generate_inputs": generate_inputs}


def timings(items: list[dict], repeats: int) -> list[dict]:
    """{item: median ms} per OUT's calls, the OUTs taking turns call by call."""
    names = [k for k in items[0] if not k.startswith("_")]
    for calls_ in items:
        calls_["frame"]()  # warm-up
    times = [{k: [] for k in names} for _ in items]
    for r in range(repeats):
        for name in names:
            order = list(enumerate(items))
            for i, calls_ in order if r % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                calls_[name]()
                times[i][name].append(time.perf_counter() - t0)
    return [{k: 1000 * statistics.median(v) for k, v in t.items()} for t in times]


def profile(out: Path, threads: int, inputs: dict, repeats: int) -> str:
    """LiteRT's per-op summary of `repeats` calls of generate on OUT's generator."""
    from fomm_convert.runtime.litert_c import CompiledModel
    model = CompiledModel(out / "generator.tflite", threads, profile=True)
    shapes = {"prediction": inputs["source_image"].shape}
    model.run("generate", inputs, shapes)
    model.start_profile()
    for _ in range(repeats):
        model.run("generate", inputs, shapes)
    summary = model.profile_summary()
    model.close()
    return summary


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path, nargs="+")
    parser.add_argument("--spec", default="tpsmm-vox")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference", action="store_true",
                        help="export the reference-structured graph (no rewrite)")
    parser.add_argument("--profile", type=Path, help="keep generate's per-op summaries here")
    args = parser.parse_args()
    spec = load_spec(args.spec)
    for out in args.out:
        out.mkdir(parents=True, exist_ok=True)
        if not all((out / f"{m}.tflite").is_file() for m in MODELS):
            export(spec, out, args.reference)
    print(f"load average at start: {open('/proc/loadavg').read().strip()}")
    for threads in (int(t) for t in args.threads.split(",")):
        items = [calls(spec, out, threads) for out in args.out]
        for out, ms in zip(args.out, timings(items, args.repeats)):
            print(f"{spec.name} TFLite fp32 (static) {out}, {threads} thread(s), batch 1, "
                  f"median of {args.repeats}: " + ", ".join(f"{k} {v:.0f} ms"
                                                            for k, v in ms.items()))
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            for out, calls_ in zip(args.out, items):
                (args.profile / f"{out.name}-{threads}t.txt").write_text(
                    profile(out, threads, calls_["_generate_inputs"], args.repeats))
    print(f"load average at the end: {open('/proc/loadavg').read().strip()}")


if __name__ == "__main__":
    main()
