"""The animation options of the model families (each family's `animation` module lists
its own as OPTIONS): what animate, reconstruct and the API take, and the one-line
refusal of an option the spec's family does not have."""
from __future__ import annotations

from dataclasses import dataclass

from ..families import FAMILIES, family_of


@dataclass(frozen=True)
class Option:
    name: str  # the keyword of animate() and of the family's mode()
    flag: str  # the command line's: "--mode", or an on/off pair "--relative/--absolute"
    help: str
    choices: tuple[str, ...] = ()  # a choice's values; none: an on/off pair


def every_option() -> dict[str, tuple[Option, list]]:
    """{name: (option, the titles of the families that take it)}, in registry order: the
    command line offers them all, each family refuses the others'."""
    out: dict[str, tuple[Option, list]] = {}
    for family in FAMILIES.values():
        for option in family.facet("animation").OPTIONS:
            out.setdefault(option.name, (option, []))[1].append(family.title)
    return out


def shown(option: Option) -> str:
    """How an option is named in messages: its flag, with a choice's values."""
    return f"{option.flag} {'|'.join(option.choices)}" if option.choices else option.flag


def family_options(spec, options: dict) -> dict:
    """The options given (not None) to animate the spec's family: a ValueError naming the
    family and what it takes for one it does not have."""
    family = family_of(spec)
    own = {o.name for o in family.facet("animation").OPTIONS}
    known = every_option()
    for name, value in options.items():
        if value is None or name in own:
            continue
        theirs = " and ".join(shown(o) for o in family.facet("animation").OPTIONS)
        flag = known[name][0].flag if name in known else name
        raise ValueError(f"{flag}: {family.title} models have no such option (they take "
                         f"{theirs})")
    return {name: value for name, value in options.items() if value is not None}
