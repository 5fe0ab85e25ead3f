"""Which ops of a .tflite file LiteRT.js puts on WebGPU (SwiftShader, headless Chromium).

LiteRT.js itself reports only isFullyAccelerated; the per-op story is in its console log.
For each graph (subgraph, in file order) its GPU delegate first prints, when it refuses
any op, "Following operations are not supported by GPU delegate:", one "OP: reason" line
per op kind, and "N operations will run on the GPU, and the remaining M operations will
run on the CPU."; then it builds the GPU kernel ("Initializing WebGPU-based API from
graph."). A graph that prints only the latter is wholly on the GPU. Measured on the tiny
generator: 3 graphs, 7 (encode_source, all GPU), 361 + 284, 368 + 344 ops: the files'
subgraphs 0, 1 (generate, 645 ops) and 2 (serving_default, 712 ops).
"""
from __future__ import annotations

import re
from pathlib import Path

from .session import BrowserSession

_HEADER = "Following operations are not supported by GPU delegate:"
_COUNTS = re.compile(r"(\d+) operations will run on the GPU, and the remaining (\d+) "
                     r"operations will run on the CPU")
_KERNEL = "Initializing WebGPU-based API from graph."
_REFUSAL = re.compile(r"^([A-Z][A-Z0-9_]*): (.*)$")


def parse_placement(lines) -> dict:
    """{graphs: [{gpu, cpu, refused: ["OP: reason [tensor]", ...]}], cpu_ops, refused_ops:
    {OP: lines}} from LiteRT.js console lines, graphs in subgraph order; a graph wholly on
    the GPU has cpu 0 and gpu None (the log does not count its ops)."""
    graphs, graph, listing = [], {"gpu": None, "cpu": 0, "refused": []}, False
    for line in lines:
        text = line.strip()
        found = _COUNTS.search(text)
        if text.endswith(_HEADER):
            listing = True
        elif found:
            graph.update(gpu=int(found.group(1)), cpu=int(found.group(2)))
            listing = False
            if graph["gpu"] == 0:  # no GPU kernel follows
                graphs.append(graph)
                graph = {"gpu": None, "cpu": 0, "refused": []}
        elif listing and _REFUSAL.match(text):
            graph["refused"].append(text)
        elif text.endswith(_KERNEL):
            graphs.append(graph)
            graph = {"gpu": None, "cpu": 0, "refused": []}
    ops = {}
    for text in (t for g in graphs for t in g["refused"]):
        op = text.split(":", 1)[0]
        ops[op] = ops.get(op, 0) + 1
    return {"graphs": graphs, "cpu_ops": sum(g["cpu"] for g in graphs), "refused_ops": ops}


def webgpu_placement(path) -> dict:
    """Compile one .tflite file with LiteRT.js on WebGPU and say where its ops run:
    {file, fully_accelerated, graphs, cpu_ops, refused_ops}. Static shapes only
    (a batch -1 file does not compile there). Needs chromium and web/node_modules."""
    path = Path(path).resolve()
    session = BrowserSession("litert-js-webgpu", path.parent,
                             {path.stem: {"serving_default": path.name}})
    try:
        ready = session.ready["accelerator"]["models"][path.stem]
        lines = [text for _, text in session.logs]
    finally:
        session.close()
    return {"file": str(path), "fully_accelerated": ready["isFullyAccelerated"],
            **parse_placement(lines)}
