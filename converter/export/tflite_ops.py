"""Which ops a .tflite file holds, and which of them the GPU delegate takes (gpu_rules.py).

    rows = op_report(path)                  # one row per (subgraph, op), with a verdict
    op_report_markdown({model: rows})       # the bundle's tflite/ops.md

Two sources: the delegate's documented rules, evaluated on each op's tensors and options
(the verdicts), and placements measured in a browser (webgpu_placement.json beside this
file: what LiteRT.js WebGPU ran on the GPU for a graph, keyed by the graph's structural
digest - ops, shapes and types, not weights - so a bundle of any checkpoint of a measured
config finds its measurement, and a changed graph finds none).

Lite: reads the flatbuffer with tflite_file (no tensorflow); op names come from
ai_edge_litert's copy of the schema.
"""
from __future__ import annotations

import functools
import hashlib
import json
import struct
from collections import Counter
from pathlib import Path
from typing import Mapping

from .gpu_rules import GPU_MAX_RANK, GPU_SOURCE, INT32, gpu_verdict
from .tflite_file import I8, I32, U32, U64, Table, model_table, tensor_shape

CUSTOM = 32  # BuiltinOperator.CUSTOM
PLACEMENT_FILE = Path(__file__).with_name("webgpu_placement.json")


def _options(op: Table) -> Table | None:
    """An operator's builtin options table (Operator field 4), if it has one."""
    return op.table(4)


def _builtin_names() -> dict[int, str]:
    from ai_edge_litert.schema_py_generated import BuiltinOperator
    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def op_report(path) -> list[dict]:
    """Every op of every subgraph, counted, with its GPU-delegate verdict.

    One row per (subgraph, op): subgraph index, signature (or subgraph name), op name
    ("CUSTOM:<name>" for custom/Flex ops), builtin flag, count, gpu ("yes", "no",
    "conditional" - an unchecked condition applies - or "mixed" across instances), gpu_count
    (instances the delegate takes for sure), the reasons (notes) and the subgraph's
    structural digest (graph_digest), the key of measured placements.
    """
    names = _builtin_names()
    with model_table(path) as model:
        codes = []
        for code in model.tables(1):
            builtin = max(code.scalar(0, I8), code.scalar(3, I32))
            codes.append(f"CUSTOM:{code.string(1)}" if builtin == CUSTOM
                         else names.get(builtin, f"BUILTIN_{builtin}"))
        signatures = {sig.scalar(4, U32): sig.string(2) for sig in model.tables(7)}
        buffers = model.tables(4)
        constant = [b.length(0) > 0 or b.scalar(2, U64) > 0 for b in buffers]
        rows = []
        for index, subgraph in enumerate(model.tables(2)):
            tensors = [_tensor(t, buffers, constant) for t in subgraph.tables(0)]
            ops = subgraph.tables(3)
            # float16 weights: the delegate reads DEQUANTIZE(constant) as a constant.
            for op in ops:
                ins = op.ints(1) or []
                if codes[op.scalar(0, U32)] == "DEQUANTIZE" and ins and tensors[ins[0]]["const"]:
                    for i in op.ints(2) or []:
                        tensors[i]["const"] = True
            counts, verdicts, notes = Counter(), {}, {}
            digest = hashlib.sha256()
            for op in ops:
                name = codes[op.scalar(0, U32)]
                ins = [tensors[i] for i in (op.ints(1) or []) if i >= 0]
                outs = [tensors[i] for i in (op.ints(2) or []) if i >= 0]
                digest.update(f"{name}{_signature(ins)}->{_signature(outs)};".encode())
                verdict, note = gpu_verdict(name, ins, outs, _options(op))
                counts[name] += 1
                verdicts.setdefault(name, Counter())[verdict] += 1
                if note:
                    notes.setdefault(name, [])
                    if note not in notes[name]:
                        notes[name].append(note)
            for name in sorted(counts):
                kinds = verdicts[name]
                rows.append({
                    "subgraph": index,
                    "signature": signatures.get(index, subgraph.string(4)),
                    "op": name, "builtin": not name.startswith("CUSTOM"),
                    "count": counts[name],
                    "gpu": next(iter(kinds)) if len(kinds) == 1 else "mixed",
                    "gpu_count": kinds["yes"],
                    "notes": notes.get(name, []),
                    "graph_digest": digest.hexdigest()[:16]})
        return rows


def _tensor(table: Table, buffers, constant) -> dict:
    """Shape, type and const flag of a tensor; the values of small int32 constants (slice
    bounds), which some conditions read."""
    buffer = table.scalar(2, U32)
    out = {"shape": tensor_shape(table), "type": table.scalar(1, I8), "const": constant[buffer]}
    if out["type"] == INT32 and 0 < buffers[buffer].length(0) <= 4 * GPU_MAX_RANK:
        out["values"] = struct.unpack(f"<{buffers[buffer].length(0) // 4}i",
                                      buffers[buffer].bytes(0))
    return out


def _signature(tensors) -> str:
    return "".join(f"({t['type']}{'c' if t['const'] else ''}:{list(t['shape'])})"
                   for t in tensors)


@functools.lru_cache(maxsize=None)
def measured_placements() -> dict:
    """webgpu_placement.json: {"runtime": what measured, "how", "graphs": {graph_digest:
    {"configs", "file", "signature", "ops", "gpu_ops", "cpu": [op: the runtime's reason]}}}."""
    return json.loads(PLACEMENT_FILE.read_text())


def op_report_markdown(reports: Mapping[str, list[dict]], title: str = "TFLite ops") -> str:
    """A page for the bundle: per model and signature, every op with its count and whether
    the GPU delegate takes it, and what a browser measured for the same graph.
    `reports` maps a model (or file) name to op_report rows."""
    measured = measured_placements()
    lines = [f"# {title}", "",
             f"GPU delegate support per {GPU_SOURCE}, evaluated on each op's tensors and "
             "options: yes; no; conditional (a condition we do not evaluate); mixed (some "
             "instances only). `gpu ops` counts the instances the delegate takes for sure.",
             "", f"Measured: placements recorded for the same graph (ops, shapes and types) in "
             f"{measured['runtime']}.", ""]
    for model, rows in reports.items():
        lines += [f"## {model}", ""]
        for subgraph in sorted({r["subgraph"] for r in rows}):
            part = [r for r in rows if r["subgraph"] == subgraph]
            total, gpu = sum(r["count"] for r in part), sum(r["gpu_count"] for r in part)
            cpu = [f"{r['op']} ({r['count'] - r['gpu_count']})" for r in part
                   if r["gpu"] == "no" or r["gpu"] == "mixed"]
            record = measured["graphs"].get(part[0]["graph_digest"])
            seen = (f"measured: {record['gpu_ops']} of {record['ops']} ops on the GPU; on the "
                    f"CPU: {'; '.join(record['cpu']) or 'none'}." if record else
                    "no browser measurement of this graph.")
            lines += [f"### {part[0]['signature']}", "",
                      f"{total} ops, {gpu} GPU-delegable for sure; left to the CPU: "
                      f"{', '.join(cpu) or 'none'}; {seen}", "",
                      "| op | count | GPU delegate | gpu ops | note |",
                      "|---|---:|---|---:|---|"]
            lines += [f"| {r['op']} | {r['count']} | {r['gpu']} | {r['gpu_count']} | "
                      f"{'; '.join(r['notes'])} |" for r in part]
            lines.append("")
    return "\n".join(lines)
