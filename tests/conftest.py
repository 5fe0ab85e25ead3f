"""Shared test fixtures: the oracle's recorded cases and where they live."""
from __future__ import annotations

import fcntl
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import fomm_convert  # noqa: F401  (first: it sets TensorFlow's numerics before TF loads)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# ../shared beside the checkout (CI lays it there); large oracle files are read from it.
SHARED = ROOT.parent / "shared"
ORACLE = SHARED / "oracle"

# Dataset specs and the oracle fact table each must reproduce.
SPEC_TABLES = {"vox": "vox-256", "vox-adv": "vox-adv-256", "taichi": "taichi-256",
               "taichi-adv": "taichi-adv-256", "fashion": "fashion-256", "mgif": "mgif-256",
               "bair": "bair-256", "nemo": "nemo-256"}
# TPSMM's dataset specs and the TPSMM oracle's fact table (../shared/oracle-tpsmm/statedicts)
# each must reproduce.
TPSMM_SPEC_TABLES = {"tpsmm-vox": "vox-256", "tpsmm-taichi": "taichi-256",
                     "tpsmm-ted": "ted-384", "tpsmm-mgif": "mgif-256"}
EXTRA_CONFIGS = ["tiny", "tiny-pad", "tiny-single-jac", "tiny-nojac", "tiny-noocc", "vox-512"]


def builds(fixture):
    """Marks a fixture that builds a bundle, exports model files or makes a full-size model
    (minutes of CPU): every test that uses it, directly or through another fixture, is
    `slow` (pytest_collection_modifyitems)."""
    fixture.builds = True
    return fixture


# The files whose vox-256 builds take 4-10 minutes each (docs/performance.md, "The test
# tiers"): collected first, so two workers start them early instead of one worker running
# the last of them alone at the end.
LONGEST_FILES = ("test_readme.py", "test_tflite.py", "test_tpsmm_torch.py", "test_tpsmm_onnx.py")


@pytest.hookimpl(tryfirst=True)  # before -m selects on the marks
def pytest_collection_modifyitems(items):
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        defs = [d for ds in info.name2fixturedefs.values() for d in ds] if info else []
        if any(getattr(d.func, "builds", False) for d in defs):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.path.name not in LONGEST_FILES)  # stable: files keep order


def fast_first(first, *rest) -> list:
    """Parametrize cases: `first` runs in every tier, the rest are `slow` (a matrix whose one
    case catches what the fast tier is for)."""
    return [first, *(pytest.param(*(case if isinstance(case, tuple) else (case,)),
                                  marks=pytest.mark.slow) for case in rest)]


def sigint_as_at_a_terminal() -> None:
    """Popen's preexec_fn for a child a test sends Ctrl-C: SIGINT back to its default. A
    run started in the background without job control (`.ci/run &` in a script) inherits
    SIGINT ignored, and Python then installs no KeyboardInterrupt handler at all."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def missing_tool(message: str):
    """A test's tool (a browser, a runtime) is missing: fail in CI (CI=true), skip elsewhere
    with the message, which names what to install."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_module(name: str, extra: str = "dev"):
    """An optional module (a dev or convert dependency), imported, else missing_tool naming
    the extra that installs it."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError:
        missing_tool(f"needs {name.split('.')[0]}: pip install 'fomm-convert[{extra}]'")


def require_browser():
    """Debian's chromium and the pinned JS runtimes (web/node_modules), else missing_tool."""
    from fomm_convert.runtime.browser import BrowserError
    from fomm_convert.runtime.browser.chromium import find_chromium
    from fomm_convert.runtime.browser.session import web_dir
    try:
        find_chromium()
        web_dir()
    except BrowserError as exc:
        missing_tool(str(exc))


def as_a_user(argv: list) -> list:
    """argv such that file modes bind it: as root, through util-linux's setpriv without the
    capabilities that override them (root writes into a 0o555 folder otherwise)."""
    if os.geteuid() != 0:
        return list(argv)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        missing_tool("needs setpriv (util-linux) to run a command as root with file modes "
                     "binding it")
    return [setpriv, "--inh-caps=-all",
            "--bounding-set=-dac_override,-dac_read_search,-fowner", "--", *argv]


def config_path(name: str) -> str:
    """A spec name, or the fixture path of one of the oracle's extra configs."""
    return str(FIXTURES / "configs" / f"{name}.yaml") if name in EXTRA_CONFIGS else name


def require_shared(*names):
    """Files of ../shared (the oracle data, the sample media), else missing_tool: an oracle
    test never passes by skipping in CI."""
    missing = [n for n in names if not (SHARED / n).exists()]
    if missing:
        missing_tool(f"needs {', '.join(f'../shared/{n}' for n in missing)} (the project's "
                     "shared data, laid beside the checkout)")


def require_oracle(*names):
    require_shared(*(f"oracle/{n}" for n in names))


@pytest.fixture(scope="session")
@builds
def vox256_checkpoint(tmp_path_factory) -> Path:
    """The oracle's vox-256 seed-7 weights, regenerated with its own script and checked."""
    require_oracle("make_weights.py", "vox-256.json", "statedicts/vox-256.json")

    def make(folder: Path) -> Path:
        out = folder / "vox-256-seed7.pth.tar"
        subprocess.run([sys.executable, str(ORACLE / "make_weights.py"), "--table",
                        str(ORACLE / "statedicts" / "vox-256.json"), "--seed", "7", "--out",
                        str(out)], check=True)
        expected = json.loads((ORACLE / "vox-256.json").read_text())["weights_sha256"]
        from fomm_convert.checkpoint import load_checkpoint, state_dict_sha256
        ckpt = load_checkpoint(out)
        assert state_dict_sha256(ckpt.kp_detector) == expected["kp_detector"]
        assert state_dict_sha256(ckpt.generator) == expected["generator"]
        return out
    return once_per_run(tmp_path_factory, "vox256", make)


TPSMM_ORACLE = SHARED / "oracle-tpsmm"


def require_tpsmm_oracle(*names):
    require_shared(*(f"oracle-tpsmm/{n}" for n in names))


@pytest.fixture(scope="session")
def tpsmm_checkpoint(tmp_path_factory):
    """get(name, zip=False) -> the path of the TPSMM oracle's seed-7 checkpoint of that
    weights name (tiny, vox-256: the case of that name records its weights_sha256), made on
    first use by the oracle's make_weights.py (55 MB for tiny, 351 MB for vox-256: too big
    to commit) and checked against the recorded weights_sha256 through our reader."""
    made = {}

    def get(name: str, zip: bool = False) -> Path:
        if (name, zip) not in made:
            require_tpsmm_oracle("make_weights.py", f"{name}.json", f"statedicts/{name}.json")

            def make(folder: Path) -> Path:
                path = folder / f"{name}-seed7.pth.tar"
                subprocess.run([sys.executable, str(TPSMM_ORACLE / "make_weights.py"),
                                "--table", str(TPSMM_ORACLE / "statedicts" / f"{name}.json"),
                                "--seed", "7", "--out", str(path),
                                *(["--zip"] if zip else [])], check=True)
                from fomm_convert.checkpoint import load_checkpoint, weights_sha256
                expected = json.loads(
                    (TPSMM_ORACLE / f"{name}.json").read_text())["weights_sha256"]
                ours = weights_sha256(load_checkpoint(path, family="tpsmm"))
                # the recorded hashes include the bg_predictor of bg configs, never read
                assert ours == {net: expected[net] for net in ours}
                return path
            made[name, zip] = once_per_run(tmp_path_factory,
                                           f"tpsmm-{name}{'-zip' if zip else ''}", make)
        return made[name, zip]
    return get


TINY_CHECKPOINT = FIXTURES / "tiny-seed7.pth.tar"


@pytest.fixture(scope="session")
@builds
def tpsmm_bundle(tmp_path_factory, tpsmm_checkpoint):
    """get(case) -> a bundle of every format TPSMM's row lists, of the TPSMM oracle's
    config of a case (tiny, tiny-rect; vox-256: our tpsmm-vox spec) and its seed-7
    weights, built once per session as a user runs the CLI, in a process of its own
    (tiny's: minutes of CPU, so the slow tier, as FOMM's builds)."""
    made = {}

    def get(case: str) -> Path:
        if case not in made:
            from fomm_convert.families import FAMILIES
            from fomm_convert.spec import load_spec
            if case == "vox-256":
                config, weights = load_spec("tpsmm-vox").path, "vox-256"
            else:
                require_tpsmm_oracle(f"configs/{case}.yaml")
                config, weights = TPSMM_ORACLE / "configs" / f"{case}.yaml", "tiny"
            made[case] = once_per_run(
                tmp_path_factory, f"tpsmm-bundle-{case}",
                lambda folder: build_in_process_of_its_own(
                    folder / f"tpsmm-{case}", "--formats", ",".join(FAMILIES["tpsmm"].formats),
                    config=config, checkpoint=tpsmm_checkpoint(weights)))
        return made[case]
    return get


@pytest.fixture(scope="session")
@builds
def tiny_bundle(tmp_path_factory) -> Path:
    """A bundle of every format of the convert extra (ExecuTorch's: test_executorch.py) of
    the tiny oracle config, built as a user runs the CLI: in a process of its own (TF names
    traced functions by a per-process counter, so two builds in one process would differ in
    saved_model.pb; two runs of the CLI do not)."""
    from fomm_convert.formats import CONVERT_FORMATS
    return once_per_run(tmp_path_factory, "tiny", lambda folder: build_in_process_of_its_own(
        folder / "tiny-a", "--formats", ",".join(CONVERT_FORMATS)))


@pytest.fixture(scope="session")
@builds
def synthetic_bundle(tmp_path_factory) -> SimpleNamespace:
    """A tiny bundle (tflite, onnx) of seed-7 synthetic weights (build_synthetic)."""
    return once_per_run(tmp_path_factory, "synthetic",
                        lambda folder: build_synthetic(folder, "tflite,onnx"))


def once_per_run(tmp_path_factory, name: str, make):
    """make(an empty folder) -> what it made, once per test run. In one process, once (the
    session fixtures calling this cache it); in pytest-xdist's workers (make test), by the
    first to ask while the others wait on its lock and read what it made (xdist's
    documented pattern: the workers share getbasetemp().parent), so a session build costs
    minutes of CPU once, not once per worker. A make that failed is failed again by the
    others with its message, without making it again (one that skipped, skipped again)."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return make(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent / "made-once"
    root.mkdir(exist_ok=True)
    made, failed, skipped = (root / f"{name}.{end}" for end in ("pickle", "failed", "skipped"))
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if skipped.exists():
            pytest.skip(skipped.read_text())
        if failed.exists():
            pytest.fail(f"{name}, made by another worker, failed: {failed.read_text()}")
        if not made.exists():
            folder = root / name
            folder.mkdir()
            try:
                result = make(folder)
            except pytest.skip.Exception as exc:  # a missing tool outside CI (missing_tool)
                skipped.write_text(exc.msg)
                raise
            except BaseException as exc:
                failed.write_text(f"{type(exc).__name__}: {exc}")
                raise
            made.write_bytes(pickle.dumps(result))
        return pickle.loads(made.read_bytes())


def build_synthetic(work: Path, formats: str) -> SimpleNamespace:
    """A tiny bundle of `formats` from seed-7 synthetic weights, built from `work`/build as a
    user builds one: its checkpoint stays in that folder's checkpoints/ (verify run from
    there finds it)."""
    (work / "build").mkdir()
    out = work / "bundles" / "tiny"
    result = subprocess.run([sys.executable, "-m", "fomm_convert.cli", "build", "--config",
                             config_path("tiny"), "--synthetic", "--seed", "7", "--formats",
                             formats, "--out", str(out)], cwd=work / "build",
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    archive, = out.parent.glob("fomm-tiny-*.tar.gz")
    return SimpleNamespace(bundle=out, archive=archive, cwd=work / "build",
                           checkpoint=work / "build" / "checkpoints"
                           / "tiny-synthetic-seed7.pth.tar")


def build_in_process_of_its_own(out: Path, *extra, config=None, checkpoint=TINY_CHECKPOINT):
    """`fomm-convert build` of `config` (default: the tiny oracle config) into `out`."""
    result = subprocess.run([sys.executable, "-m", "fomm_convert.cli", "build", "--config",
                             config or config_path("tiny"), "--checkpoint", str(checkpoint),
                             "--out", str(out), *extra], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def demo_media(folder: Path, frames: int) -> Path:
    """The demo's drawn face at the tiny frame (fixtures.demo_inputs) as a user's files in
    `folder`: face.png, `frames` frames of talk.mp4 and predict's in.npz (NCHW)."""
    import imageio.v3 as iio
    from fomm_convert.fixtures import demo_inputs
    from fomm_convert.media import open_writer, to_uint8
    folder.mkdir(parents=True, exist_ok=True)
    source, driving = demo_inputs((64, 64, 3), frames)
    iio.imwrite(folder / "face.png", to_uint8(source[0]))
    with open_writer(folder / "talk.mp4", 25.0) as writer:
        for frame in driving:
            writer.write(to_uint8(frame))
    np.savez(folder / "in.npz", source=source.transpose(0, 3, 1, 2),
             driving=driving.transpose(0, 3, 1, 2))
    return folder
