"""Fixed inputs made in code: the demo's drawn face and the frames in which it turns and
talks, used by the demo, per-layer parity, the format parity gates and int8 quality."""
from __future__ import annotations

import numpy as np


def demo_inputs(frame_shape, frames: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A drawn face (1, H, W, 3) and `frames` driving frames in which it turns and talks."""
    h, w, _ = frame_shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = 2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1

    def face(dx, mouth):
        img = np.stack([0.25 + 0.2 * (y + 1), 0.3 + 0.1 * x, 0.45 - 0.1 * y], -1)
        head = ((x - dx) / 0.55) ** 2 + (y / 0.7) ** 2 < 1
        img[head] = (0.85, 0.65, 0.5)
        for ex in (-0.22, 0.22):
            img[((x - dx - ex) / 0.1) ** 2 + ((y + 0.2) / 0.07) ** 2 < 1] = (0.1, 0.1, 0.15)
        img[((x - dx) / 0.25) ** 2 + ((y - 0.35) / mouth) ** 2 < 1] = (0.6, 0.15, 0.2)
        return img
    source = face(0.0, 0.05)[None]
    driving = np.stack([face(0.15 * np.sin(t), 0.03 + 0.07 * abs(np.sin(2 * t)))
                        for t in np.linspace(0, np.pi, frames)])
    return source.astype(np.float32), driving.astype(np.float32)


def fixed_inputs(frame_shape) -> tuple[np.ndarray, np.ndarray]:
    """A source (1, H, W, C) and two driving frames: the demo's drawn face, at rest and
    turned with its mouth open."""
    source, driving = demo_inputs(frame_shape, frames=8)
    return source, driving[[0, 3]]
