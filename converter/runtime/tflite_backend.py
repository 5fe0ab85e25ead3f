"""TFLite files of a bundle (DIR/tflite/<model>[.static][.fp16|.int8].tflite) on LiteRT.

Imports neither torch nor tensorflow. Each model file is one compiled model on the CPU
(XNNPACK, `threads` threads) through LiteRT's C API (litert_c.py: the GIL is released
while it runs, and XNNPACK's weight cache packs a weight the generator's signatures share
once). XNNPACK prepares a signature's subgraph at its first call, after which the file's
pages are handed back (file_pages.py: they are not read again). Inputs are resized to
each call's shapes, so any batch works, including a source batch of 1 beside a driving
batch of N; the outputs take the contract's shapes (signatures.py) for that batch, and a
file must declare the contract's signatures, tensors and shapes to be loaded at all. A
call's inputs must be of the contract's shapes (batching.check_shapes): the calls whose
output shapes bundle/models_check proves before a file is loaded. The static files
(batch 1) are called once per example (runtime.batching).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import one_line
from ..formats import tflite_filename
from ..limits import TFLITE_MAX_CALL_BATCH
from ..families import family_of
from ..signatures import Signature
from .base import SpecBackend, check_inputs
from .batching import call_batch, call_per_example, check_shapes
from .file_pages import release_file_pages
from .litert_c import CompiledModel, LiteRtError


def _compiled(path: Path, threads, contract: dict[str, Signature], static: bool,
              profile: bool = False):
    """A compiled model whose signatures declare the contract's; anything else is a
    one-line ValueError naming the file."""
    try:
        compiled = CompiledModel(path, threads, profile)
    except LiteRtError as exc:
        raise ValueError(f"{path}: LiteRT cannot load it ({one_line(exc)})") from None
    batch = 1 if static else -1
    for name, want in contract.items():
        found = compiled.signatures.get(name)
        if found is None:
            raise ValueError(f"{path}: no signature {name!r}")
        for side, tensors, declared in (("input", want.inputs, found.inputs),
                                        ("output", want.outputs, found.outputs)):
            expected = {t.name: tuple(t.full_shape(batch)) for t in tensors}
            if declared != expected:
                raise ValueError(f"{path}: signature {name}'s {side}s are {_show(declared)}, "
                                 f"not {_show(expected)}")
    return compiled


def _show(shapes: dict) -> str:
    return ", ".join(f"{name} {list(shape)}" for name, shape in sorted(shapes.items()))


class TFLiteBackend(SpecBackend):
    def __init__(self, spec, bundle, precision: str = "fp32", static: bool = False,
                 threads: int | None = None, profile: bool = False):
        super().__init__(spec)
        self.precision, self.static = precision, static
        self.signatures = family_of(spec).signatures(spec)
        root = Path(bundle) / "tflite"
        self.paths = {m: root / tflite_filename(m, precision, static) for m in self.signatures}
        missing = [p.name for p in self.paths.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{root}: no {', '.join(missing)}")
        # profile: LiteRT times every op (scripts/profile_tflite.py reads it)
        self.models = {m: _compiled(p, threads, self.signatures[m], static, profile)
                       for m, p in self.paths.items()}
        self._prepared = set()  # (model, signature) run at least once

    def call(self, model, signature, inputs):
        contract = self.signatures[model][signature]
        check_inputs(f"{self.paths[model].name} {signature}", contract.input_names, inputs)
        check_shapes(contract, inputs, TFLITE_MAX_CALL_BATCH)

        def run(args):
            batch = call_batch(contract, args)
            return self.models[model].run(signature, args, {
                t.name: t.full_shape(batch) for t in contract.outputs})
        outputs = call_per_example(run, contract, inputs) if self.static else run(inputs)
        if (model, signature) not in self._prepared:
            self._prepared.add((model, signature))
            release_file_pages(self.paths[model])
        return outputs
