"""The licence and attribution every artifact carries: official weights carry their
family's licence (FOMM's CC BY-NC 4.0, TPSMM's MIT) and its authors' attribution;
synthetic ones only credit the architecture."""
from __future__ import annotations


def licence(family, synthetic: bool) -> dict:
    """The licence entry of a bundle of `family` (a families.Family row)."""
    terms = family.licence
    attribution = f"{terms.paper} {terms.repository}"
    if synthetic:
        return {"weights": "synthetic (seeded random, made by fomm-convert synth); not the "
                           f"official {family.title} weights", "license": None,
                "architecture": attribution}
    return {"weights": f"converted from a {family.long_name} checkpoint",
            "license": terms.spdx, "license_url": terms.url, "attribution": attribution}
