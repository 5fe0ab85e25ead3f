"""The licence and attribution every artifact carries: official FOMM weights are
CC BY-NC 4.0; synthetic ones only credit the architecture."""
from __future__ import annotations

PAPER = ("Aliaksandr Siarohin, Stéphane Lathuilière, Sergey Tulyakov, Elisa Ricci, Nicu Sebe. "
         "First Order Motion Model for Image Animation. NeurIPS 2019.")
REPOSITORY = "https://github.com/AliaksandrSiarohin/first-order-model"


def licence(synthetic: bool) -> dict:
    """Official weights carry CC BY-NC 4.0 and its attribution; synthetic ones only credit
    the architecture."""
    attribution = f"{PAPER} {REPOSITORY}"
    if synthetic:
        return {"weights": "synthetic (seeded random, made by fomm-convert synth); not the "
                           "official FOMM weights", "license": None,
                "architecture": attribution}
    return {"weights": "converted from a First Order Motion Model checkpoint",
            "license": "CC-BY-NC-4.0",
            "license_url": "https://creativecommons.org/licenses/by-nc/4.0/",
            "attribution": attribution}
