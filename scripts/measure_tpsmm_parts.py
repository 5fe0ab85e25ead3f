"""Where a TPSMM frame's time goes in PyTorch eager (the torch reference: the original's
modules' arithmetic), at batch 1 on a spec's graph (default tpsmm-vox, 256x256), per
thread count: each network and the main blocks (forward hooks, wall time), and the
operators that dominate (torch.profiler, self CPU time; the grid_samples by input shape).
Weights are the seeded synthetic checkpoint's (synth.py): the work does not depend on
their values, bar the avd mode's zero padding, which is not timed here (relative mode).

    .venv/bin/python scripts/measure_tpsmm_parts.py [--spec tpsmm-vox] [--threads 1,2]
        [--repeats 5]

Prints Markdown for docs/performance.md. Medians over the repeats after one warm-up."""
from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from fomm_convert.spec import load_spec
from fomm_convert.synth import make_checkpoint
from fomm_convert.tpsmm.torch_model import build_models, load_networks, normalize_kp

# The frame's calls, timed around them: (label, network).
CALLS = (("kp_detector (resnet18)", "kp_detector"),
         ("dense motion (whole)", "dense_motion_network"),
         ("inpainting decode (whole)", "inpainting_network"))
# Blocks inside them, timed by hooks: (label, network, submodule).
PARTS = (("dense motion: hourglass (64x64)", "dense_motion_network", "hourglass"),
         ("dense motion: up blocks", "dense_motion_network", "up"),
         ("dense motion: occlusion convs", "dense_motion_network", "occlusion"),
         ("inpainting: resblocks", "inpainting_network", "resblock"),
         ("inpainting: up blocks", "inpainting_network", "up_blocks"),
         ("inpainting: final conv", "inpainting_network", "final"))


def timed_modules(nets) -> tuple[dict, list]:
    """Wall time per PARTS label, accumulated by hooks over a call."""
    spent, handles = defaultdict(float), []
    for label, net, path in PARTS:
        module = getattr(nets[net], path)
        children = list(module) if isinstance(module, torch.nn.ModuleList) else [module]
        for child in children:
            starts = []
            handles.append(child.register_forward_pre_hook(
                lambda m, a, starts=starts: starts.append(time.perf_counter())))
            handles.append(child.register_forward_hook(
                lambda m, a, o, starts=starts, label=label:
                spent.__setitem__(label, spent[label] + time.perf_counter() - starts.pop())))
    return spent, handles


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", default="tpsmm-vox")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    spec = load_spec(args.spec)
    nets = load_networks(build_models(spec.model_params()),
                         make_checkpoint(spec, 7), f"{spec.name} synthetic")
    h, w, c = spec.frame_shape
    rng = np.random.default_rng(0)
    source, frame0, frame = (torch.from_numpy(rng.random((1, c, h, w), np.float32))
                             for _ in range(3))
    torch.set_num_interop_threads(1)
    with torch.inference_mode():
        kp_source, kp_initial = nets["kp_detector"](source), nets["kp_detector"](frame0)
        encoded = nets["inpainting_network"].encode(source)
        source_down = nets["dense_motion_network"].downsample(source)

        def one_frame(spent):
            t0 = time.perf_counter()
            kp = normalize_kp("relative", kp_source, nets["kp_detector"](frame), kp_initial,
                              None)
            t1 = time.perf_counter()
            motion = nets["dense_motion_network"].motion(source_down, kp, kp_source)
            t2 = time.perf_counter()
            nets["inpainting_network"].decode(encoded, source, motion)
            t3 = time.perf_counter()
            for (label, _), seconds in zip(CALLS, (t1 - t0, t2 - t1, t3 - t2)):
                spent[label] += seconds

        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            one_frame(defaultdict(float))
            frames, parts = [], defaultdict(list)
            for _ in range(args.repeats):
                spent, handles = timed_modules(nets)
                t0 = time.perf_counter()
                one_frame(spent)
                frames.append(time.perf_counter() - t0)
                for handle in handles:
                    handle.remove()
                for label, seconds in spent.items():
                    parts[label].append(seconds)
            with profile(activities=[ProfilerActivity.CPU], record_shapes=True,
                         with_flops=True) as prof:
                one_frame(defaultdict(float))
            report(spec, threads, frames, parts, prof)


def report(spec, threads, frames, parts, prof):
    frame = statistics.median(frames)
    print(f"\n### {spec.name} {'x'.join(map(str, spec.frame_shape))}, torch eager, "
          f"{threads} thread(s), batch 1: frame {1000 * frame:.0f} ms (median of "
          f"{len(frames)}; encode-once)\n")
    print("| part | ms | share |\n|---|---:|---:|")
    for label in [label for label, _ in CALLS] + [label for label, _, _ in PARTS]:
        ms = 1000 * statistics.median(parts[label])
        print(f"| {label} | {ms:.1f} | {ms / (1000 * frame):.0%} |")
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    print("\n| operator (input shapes) | calls | self ms | share |\n|---|---:|---:|---:|")
    rows = sorted(prof.key_averages(group_by_input_shape=True),
                  key=lambda e: -e.self_cpu_time_total)
    for e in rows[:14]:
        shapes = str(e.input_shapes[:2])
        print(f"| {e.key} {shapes} | {e.count} | {e.self_cpu_time_total / 1000:.1f} | "
              f"{e.self_cpu_time_total / total:.0%} |")
    grids = [e for e in prof.key_averages() if e.key == "aten::grid_sampler_2d"]
    convs = [e for e in prof.key_averages() if "conv" in e.key and "mkldnn" in e.key
             or e.key in ("aten::mkldnn_convolution", "aten::thnn_conv2d")]
    print(f"\ngrid_sample total: {sum(e.self_cpu_time_total for e in grids) / 1000:.1f} ms "
          f"({sum(e.count for e in grids)} calls); convolutions: "
          f"{sum(e.self_cpu_time_total for e in convs) / 1000:.1f} ms; profiled frame "
          f"{total / 1000:.1f} ms, {sum(e.flops for e in prof.key_averages()) / 1e9:.0f} "
          "GFLOP (the profiler's count: convolutions and matrix products)")


if __name__ == "__main__":
    main()
