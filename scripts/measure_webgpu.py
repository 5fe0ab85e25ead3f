"""Measure again where LiteRT.js WebGPU runs each op of the static kp_detector and generator
files, and record it in converter/export/webgpu_placement.json (tflite/ops.md reports it;
tests/test_browser.py checks the tiny config's record against a live run).

For each config, a bundle of its static TFLite files is built from synthetic weights (the
graph, and so its structural digest, is the same for any checkpoint of the config), each
file is compiled in headless Chromium (runtime/browser/placement.py) and its graphs are
matched to the file's subgraphs in order. Needs chromium and web/node_modules (`make web`).

    .venv/bin/python scripts/measure_webgpu.py [CONFIG ...]    # default: every spec
                                                               # and test config
A CONFIG that is a file (an original-format config, e.g. ../shared/oracle-tpsmm/configs/
tiny.yaml) is recorded as FOLDER/STEM (oracle-tpsmm/tiny). `--bundle DIR` measures the
static files of a bundle already built for the one CONFIG named (a synthetic build of a
384x384 spec takes ~11 min and several GB: build it once, measure it as often as needed).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from fomm_convert.bundle.manifest import BundleError, read_manifest
from fomm_convert.export.tflite_ops import PLACEMENT_FILE, op_report
from fomm_convert.families import family_of
from fomm_convert.formats import tflite_filename
from fomm_convert.runtime.browser.placement import webgpu_placement
from fomm_convert.spec import available_specs, load_spec

ROOT = Path(__file__).resolve().parent.parent
TEST_CONFIGS = ROOT / "tests" / "fixtures" / "configs"
MODELS = ("kp_detector", "generator")  # process_kp_driving may stay on the CPU


def configs() -> dict[str, str]:
    """{name: what `build --config` takes}: the shipped specs that build has formats for,
    then the test configs."""
    return {**{name: name for name in available_specs()
               if family_of(load_spec(name)).formats},
            **{path.stem: str(path) for path in sorted(TEST_CONFIGS.glob("*.yaml"))}}


def build(config: str, out: Path) -> Path:
    """The bundle of one config's static files, from synthetic weights."""
    subprocess.run([sys.executable, "-m", "fomm_convert.cli", "build", "--config", config,
                    "--synthetic", "--formats", "tflite-static", "--out", str(out)],
                   check=True, cwd=out.parent)
    return out


def measure(name: str, out: Path) -> dict:
    """{graph digest: record} of the static files in the bundle `out` of config `name`."""
    records = {}
    for model in MODELS:
        path = out / "tflite" / tflite_filename(model, "fp32", static=True)
        rows = op_report(path)
        graphs = webgpu_placement(path)["graphs"]
        subgraphs = sorted({r["subgraph"] for r in rows})
        if len(graphs) != len(subgraphs):
            raise SystemExit(f"{path}: {len(graphs)} graphs compiled, {len(subgraphs)} in the file")
        for index, graph in zip(subgraphs, graphs):
            part = [r for r in rows if r["subgraph"] == index]
            ops = sum(r["count"] for r in part)
            records[part[0]["graph_digest"]] = {
                "configs": [name], "file": path.name, "signature": part[0]["signature"],
                "ops": ops, "gpu_ops": ops - graph["cpu"], "cpu": graph["refused"]}
            print(f"{name} {path.name} {part[0]['signature']}: {ops - graph['cpu']}/{ops} "
                  f"on the GPU", flush=True)
    return records


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", help="names (default: all)")
    parser.add_argument("--bundle", type=Path, help="a bundle already built for the one "
                        "CONFIG named: measure its static files instead of building them")
    args = parser.parse_args()
    wanted = args.configs
    if args.bundle and len(wanted) != 1:
        raise SystemExit("--bundle: name the one config it was built for")
    known = configs()
    files = {name: f"{Path(name).parent.parent.name}/{Path(name).stem}" for name in wanted
             if name not in known and Path(name).is_file()}
    known.update({tag: str(Path(path).resolve()) for path, tag in files.items()})
    wanted = [files.get(name, name) for name in wanted]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise SystemExit(f"unknown config {', '.join(unknown)} (known: {', '.join(known)})")
    if args.bundle:  # built for that spec (a config file's bundle names its own dataset)
        try:
            dataset = read_manifest(args.bundle).get("dataset")
        except BundleError as err:
            raise SystemExit(str(err)) from None
        if wanted[0] in available_specs() and dataset != wanted[0]:
            raise SystemExit(f"{args.bundle / 'manifest.json'}: dataset is {dataset!r}, "
                             f"not {wanted[0]}")
    recorded = json.loads(PLACEMENT_FILE.read_text())
    graphs = recorded["graphs"]
    with tempfile.TemporaryDirectory() as scratch:
        for name in wanted or known:
            out = args.bundle or build(known[name], Path(scratch) / name.replace("/", "-"))
            for digest, record in measure(name, out).items():
                if digest in graphs:  # the same graph in another config
                    record["configs"] = sorted(set(graphs[digest]["configs"]) | {name})
                graphs[digest] = record
    PLACEMENT_FILE.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PLACEMENT_FILE} ({len(graphs)} graphs)")


if __name__ == "__main__":
    main()
