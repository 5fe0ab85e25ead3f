"""Frame time of a TPSMM spec's float32 TFLite files (default tpsmm-vox) while no bundle of
it can be built (issue 21: a synthetic tpsmm-vox build fails its avd gate): the TF graph
of the seeded synthetic checkpoint exported as `build` exports the batch-1 (static)
files (tpsmm/convert.py), WITHOUT the build's parity gates, then timed on LiteRT with
XNNPACK at batch 1 per thread count: kp_detector, generator `generate` (source encoded
once) and the encode-once frame (kp_detector + process_kp_driving + generate). Files
left in OUT (the checkpoint, kp_detector.tflite, generator.tflite,
process_kp_driving.tflite).

    .venv/bin/python scripts/time_tpsmm_tflite.py OUT [--spec tpsmm-vox] [--threads 1,2]
        [--repeats 5]

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


def export(spec, out: Path):
    from fomm_convert.export.savedmodel import export_savedmodels
    from fomm_convert.export.tflite import convert_savedmodel
    from fomm_convert.tpsmm.tf_model import build_tf_models
    from fomm_convert.tpsmm.tf_model.functions import model_functions
    params = spec.model_params()
    checkpoint = write_checkpoint(spec, 7, out / f"{spec.name}-synthetic-seed7.pth.tar")
    models = build_tf_models(params, load_checkpoint(checkpoint, family="tpsmm").networks)
    functions = model_functions(models, params, spec.frame_shape, batch=1)
    with tempfile.TemporaryDirectory() as scratch:
        paths = export_savedmodels({m: functions[m] for m in MODELS}, Path(scratch))
        for model in MODELS:
            t0 = time.perf_counter()
            (out / f"{model}.tflite").write_bytes(convert_savedmodel(paths[model], "fp32"))
            print(f"{model}.tflite: {time.perf_counter() - t0:.0f} s")


def median_ms(call, repeats):
    call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def timings(spec, out: Path, threads: int, repeats: int) -> dict:
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
    kp_norm = normalised()
    return {
        "kp_detector": median_ms(lambda: kp(image=frame), repeats),
        "generate": median_ms(lambda: generate(**encoded, source_image=source,
                                               kp_driving=kp_norm, kp_source=kp_source),
                              repeats),
        "frame": median_ms(lambda: generate(**encoded, source_image=source,
                                            kp_driving=normalised(), kp_source=kp_source),
                           repeats)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--spec", default="tpsmm-vox")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    spec = load_spec(args.spec)
    args.out.mkdir(parents=True, exist_ok=True)
    if not all((args.out / f"{m}.tflite").is_file() for m in MODELS):
        export(spec, args.out)
    for threads in (int(t) for t in args.threads.split(",")):
        ms = timings(spec, args.out, threads, args.repeats)
        print(f"{spec.name} TFLite fp32 (static), {threads} thread(s), batch 1, median of "
              f"{args.repeats}: " + ", ".join(f"{k} {v:.0f} ms" for k, v in ms.items()))


if __name__ == "__main__":
    main()
