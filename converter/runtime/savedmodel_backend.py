"""Reloaded SavedModels of a bundle (DIR/savedmodel/<model>/), through their signatures."""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from ..errors import one_line
from ..families import family_of
from .base import SpecBackend


def _load(path: Path):
    """A SavedModel; TensorFlow's refusal of a damaged one is a one-line RuntimeError."""
    try:
        return tf.saved_model.load(str(path))
    except (tf.errors.OpError, ValueError, OSError) as exc:
        raise RuntimeError(f"{path}: TensorFlow cannot load it ({one_line(exc)})") from None


class SavedModelBackend(SpecBackend):
    def __init__(self, spec, bundle, threads: int | None = None):
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        super().__init__(spec)
        root = Path(bundle) / "savedmodel"
        models = family_of(spec).models
        missing = [m for m in models if not (root / m / "saved_model.pb").exists()]
        if missing:
            raise FileNotFoundError(f"{root}: no SavedModel for {', '.join(missing)}")
        self.loaded = {m: _load(root / m) for m in models}

    def call(self, model, signature, inputs):
        out = self.loaded[model].signatures[signature](**inputs)
        return {k: v.numpy() for k, v in out.items()}
