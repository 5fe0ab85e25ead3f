"""`fomm-convert inspect FILE` as a few lines a person reads (the whole record, hundreds of
lines of JSON, is `--json`), and `inspect DIR` for a bundle."""
from __future__ import annotations

from collections import Counter


def artifact_summary(described: dict) -> str:
    """The lines of pipeline.inspect.describe_artifact's record: what the file is, its
    signatures (inputs -> outputs with shapes) and, for TFLite, its op counts."""
    meta = described.get("metadata") or {}
    facts = [f"{meta.get('model')} of {meta.get('dataset')} {meta.get('bundle_version')}",
             *(meta[k] for k in ("precision", "layout") if meta.get(k))]
    lines = [f"{described['file']}: " + (f"{meta.get('name')} ({', '.join(facts)})" if meta
                                         else "not written by fomm-convert (no metadata)")]
    if "signatures" in described:
        for name, sig in described["signatures"].items():
            lines.append(f"  {name}: {_tensors(sig['inputs'])} -> {_tensors(sig['outputs'])}")
    else:
        lines.append(f"  {_tensors(described['inputs'])} -> {_tensors(described['outputs'])}")
    ops = described.get("ops")
    if ops:
        counts = Counter()
        for row in ops:
            counts[row["op"]] += row["count"]
        top = ", ".join(f"{op} {n}" for op, n in counts.most_common(6))
        lines.append(f"  ops: {sum(counts.values())} of {len(counts)} kinds ({top}"
                     f"{', ...' if len(counts) > 6 else ''})")
    lines.append("  (--json: the whole record)")
    return "\n".join(lines)


def _tensors(pairs) -> str:
    return ", ".join(f"{name} {_shape(shape)}" for name, shape in pairs)


def _shape(shape) -> str:
    return "[" + ", ".join("B" if d in (-1, None) or isinstance(d, str) else str(d)
                           for d in shape) + "]"


def bundle_summary(opened) -> str:
    """A bundle's identity, formats and parity verdicts, from its checked manifest."""
    m = opened.manifest
    parity = ", ".join(f"{name} {'pass' if p.get('passed') else 'FAIL'}"
                       for name, p in m["parity"].items())
    return "\n".join([
        f"{opened.path}: {m['dataset']} {m['version']}"
        f"{' (SYNTHETIC weights)' if m['synthetic'] else ''}, from {m['checkpoint']['file']}",
        f"  formats: {', '.join(m['formats'])}",
        f"  parity: {parity}",
        f"  {len(m['files'])} files; fomm-convert verify {opened.path} rechecks them"])
