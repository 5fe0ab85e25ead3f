"""TPSMM's animation modes (the family interface's `animation`): the demo's --mode,
relative (the default: motion since the initial frame, always scale-adapted), standard
(the driving keypoints as they are) or avd; reconstruction uses standard."""
from __future__ import annotations

from dataclasses import dataclass

from ..animation.options import Option
from .architecture import MODES, POINTS_PER_TPS

OPTIONS = (Option("mode", "--mode", "relative: motion since the initial frame, scaled to "
                  "the source (the original demo's default); standard: the driving "
                  "keypoints as they are; avd: the AVD network's (default: the spec's)",
                  MODES),)
# The visualisation colours each thin-plate spline's control points alike.
KEYPOINT_GROUP = POINTS_PER_TPS


@dataclass(frozen=True)
class Mode:
    name: str  # one of MODES

    def normalise(self, backend, kp_driving, kp_initial, kp_source):
        """The generator's driving keypoints for a batch."""
        if self.name == "avd":
            return backend.avd_network(kp_source, kp_driving)
        return backend.process_kp_driving(kp_driving, kp_initial, kp_source,
                                          self.name == "relative")

    def frames_per_call(self, default: int) -> int:
        """The batch animate runs when none is asked for: 1 in avd, whose large warps
        amplify the order of the float32 sums: on the whole sample clip (tiny oracle
        config) torch's avd frames were 1.0e-4 to 1.1e-4 from the original's
        make_animation at batch 4 and its bits at batch 1; savedmodel's 1.3e-4 -> 1.0e-4,
        openvino's 1.5e-4 -> 1.4e-4. The backend's default in the other modes, where the
        batch changed nothing measurable (the original's own float32 noise dominates
        there: docs/performance.md, "TPSMM: animate's frames", against exact arithmetic)."""
        return 1 if self.name == "avd" else default

    def summary(self) -> dict:
        return {"mode": self.name}

    def describe(self) -> str:
        return f"mode {self.name}"


def defaults(spec) -> dict:
    return {"mode": spec.settings["mode"]}


def mode(spec, mode: str | None = None) -> Mode:
    """The mode asked for, the spec's when None (ValueError naming the known ones)."""
    name = spec.settings["mode"] if mode is None else mode
    if name not in MODES:
        raise ValueError(f"--mode: {name!r} is not one of {', '.join(MODES)}")
    return Mode(name)


def reconstruction_mode(spec) -> Mode:
    return Mode("standard")
