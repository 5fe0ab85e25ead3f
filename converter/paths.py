"""Where fomm-convert reads and writes by default: relative to the working directory, so an
installed tool works on the folder it is run in (a checkout's root, for `make`); and which
names may become part of a path."""
from __future__ import annotations

import re
from pathlib import Path

from .limits import FILE_NAME_MAX_BYTES, NAME_MAX_CHARS

ARTIFACTS = Path("artifacts")
CHECKPOINTS = Path("checkpoints")
# A plain name (a dataset's, a spec's): it becomes a folder under artifacts/ and part of
# file names, so one path component of letters, digits, '_', '.' and '-', starting with a
# letter or a digit (never '.', '..', a separator or an absolute path).
_PLAIN = rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{NAME_MAX_CHARS - 1}}}"
PLAIN_NAME = re.compile(rf"^{_PLAIN}$")
# A seeded synthetic checkpoint's file name (synth writes it, verify makes it again).
SYNTHETIC_NAME = re.compile(rf"^(?P<spec>{_PLAIN})-synthetic-seed(?P<seed>\d{{1,19}})"
                            r"\.pth\.tar$")
# A file name recorded in a manifest (its checkpoint's, whatever the user called it): one
# path component: no separator, no control character, not '.' or '..'.
_FILE_NAME = re.compile(r"^(?!\.\.?$)[^/\\\x00-\x1f\x7f]+$")
# One component of a path inside a bundle, as build names them (saved_model.pb,
# variables.data-00000-of-00001, generator.fp16.tflite, ...).
BUNDLE_PATH_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")


def is_plain_name(value) -> bool:
    return isinstance(value, str) and PLAIN_NAME.match(value) is not None


def is_file_name(value) -> bool:
    return (isinstance(value, str) and _FILE_NAME.match(value) is not None
            and len(value.encode("utf-8", "surrogatepass")) <= FILE_NAME_MAX_BYTES)


def synthetic_checkpoint_name(spec_name: str, seed: int) -> str:
    return f"{spec_name}-synthetic-seed{seed}.pth.tar"


def bundle_archive_name(dataset: str, version: str) -> str:
    return f"fomm-{dataset}-{version}.tar.gz"


def spec_file(name_or_path, specs_dir: Path, warn) -> Path:
    """The file a --config/--dataset value means. A bare name (no folder, no .yaml) is a
    dataset's, specs_dir/NAME.yaml, even beside a file or folder of that name (artifacts/vox/
    after a build; ./vox means the path), and `warn` says which it took beside a file; a
    bare name of no dataset is the file of that name if there is one, else the dataset's
    path (missing). Anything else is the path as written."""
    text, path = str(name_or_path), Path(name_or_path)
    if not is_plain_name(text) or path.suffix in (".yaml", ".yml"):
        return path
    dataset = Path(specs_dir) / f"{text}.yaml"
    if dataset.is_file():
        if path.is_file():
            warn(f"{text}: took the dataset spec {text} ({dataset}), not the file ./{text} "
                 f"(write ./{text} to mean the file)")
        return dataset
    return path if path.is_file() or path.suffix else dataset
