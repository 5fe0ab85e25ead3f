"""Where fomm-convert reads and writes by default: relative to the working directory, so an
installed tool works on the folder it is run in (a checkout's root, for `make`)."""
from __future__ import annotations

import re
from pathlib import Path

ARTIFACTS = Path("artifacts")
CHECKPOINTS = Path("checkpoints")
# A seeded synthetic checkpoint's file name (synth writes it, verify finds it).
SYNTHETIC_NAME = re.compile(r"^(?P<spec>[A-Za-z0-9][A-Za-z0-9_.-]*)-synthetic-seed(?P<seed>\d+)"
                            r"\.pth\.tar$")


def synthetic_checkpoint_name(spec_name: str, seed: int) -> str:
    return f"{spec_name}-synthetic-seed{seed}.pth.tar"


def bundle_archive_name(dataset: str, version: str) -> str:
    return f"fomm-{dataset}-{version}.tar.gz"
