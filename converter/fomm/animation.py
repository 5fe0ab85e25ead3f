"""FOMM's animation modes (the family interface's `animation`): the demo's flags, relative
motion (with the relative jacobian) and the adapted movement scale, defaulting to the
spec's `normalization`; reconstruction uses absolute keypoints."""
from __future__ import annotations

from dataclasses import dataclass

from ..animation.options import Option

OPTIONS = (
    Option("relative", "--relative/--absolute",
           "relative keypoint motion (default: the spec's normalization)"),
    Option("adapt_scale", "--adapt-scale/--no-adapt-scale",
           "adapt motion to the source's keypoint spread (default: the spec's)"),
)
# The visualisation's keypoints of one colour: each its own.
KEYPOINT_GROUP = 1


@dataclass(frozen=True)
class Normalisation:
    relative: bool
    adapt_scale: bool

    def normalise(self, backend, kp_driving, kp_initial, kp_source):
        """The generator's driving keypoints for a batch (process_kp_driving's flags)."""
        return backend.process_kp_driving(kp_driving, kp_initial, kp_source,
                                          use_relative_movement=self.relative,
                                          use_relative_jacobian=self.relative,
                                          adapt_movement_scale=self.adapt_scale)

    def frames_per_call(self, default: int) -> int:
        """The batch animate runs when none is asked for: the backend's default."""
        return default

    def summary(self) -> dict:
        return {"relative": self.relative, "adapt_scale": self.adapt_scale}

    def describe(self) -> str:
        return f"{'relative' if self.relative else 'absolute'}" \
               f"{', adapt-scale' if self.adapt_scale else ''}"


def defaults(spec) -> dict:
    """The spec's animation defaults, as a page or a report shows them."""
    return dict(spec.settings["normalization"])


def mode(spec, relative: bool | None = None, adapt_scale: bool | None = None) -> Normalisation:
    """The options asked for (animate's --relative/--absolute, --adapt-scale), the spec's
    where None."""
    default = defaults(spec)
    return Normalisation(default["relative"] if relative is None else bool(relative),
                         default["adapt_scale"] if adapt_scale is None else bool(adapt_scale))


def reconstruction_mode(spec) -> Normalisation:
    """The original's reconstruction: absolute keypoints, no scale adaptation."""
    return Normalisation(relative=False, adapt_scale=False)
