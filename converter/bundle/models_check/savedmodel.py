"""The SavedModels of a bundle (savedmodel/<model>/) against what our exporter writes.

A SavedModel is a program: TensorFlow runs its functions' ops, some of which read, write
and list files, and revives the objects of its object graph at load (a resource's
initialiser runs then, before any call). saved_model.pb is parsed here without loading it
(tf_proto: the protobuf runtime against our own message types, canonical form only) and
held to what export/savedmodel.py writes:

- outside the two checkpoint functions that saver_def names (the saver's save and
  restore, which hold TensorFlow's file ops), every op of the graph and of every library
  function is one our exporter emits (savedmodel_rules.MODEL_OPS); the checkpoint
  functions hold only save/restore ops and are called from nowhere but the saver's nodes;
- every function attribute anywhere names a library function (TensorFlow would take
  another name as an op to run), and a node's op is never a function's name;
- the object graph is there (TF1's loader, used without it, runs the graph's init op)
  and holds only the kinds of objects we write: no resource, asset, constant or captured
  tensor, nothing a registered class revives, no saveable object's restore function;
- the init op (`__saved_model_init_op`, the main-op collection) is a bare NoOp;
- no node is placed on another device than the local CPU, every call runs with our
  runtime configuration (a ConfigProto can name remote workers);
- the signatures are the contract's; no constant is a resource or a variant, nor declares
  more values than limits.SAVED_MODEL_MAX_CONSTANT (TensorFlow fills a shape from one).

The variables/ files are TensorFlow's checkpoint reader's to parse (tf_checkpoint checks
them), fingerprint.pb its metrics' (content hashes only); no other file may be there.
"""
from __future__ import annotations

import math
from pathlib import Path

from ...limits import FINGERPRINT_MAX_BYTES, SAVED_MODEL_MAX_BYTES, SAVED_MODEL_MAX_CONSTANT
from ...families import family_of
from . import ModelFileError, expect_files, folder_files, read_model_file
from .savedmodel_rules import (CALL_ATTRS, CHECKPOINT_OPS, COLLECTIONS, DEVICES, INIT_OP,
                               MODEL_OPS, OBJECT_KINDS, SERVING_METHOD, TAGS, TENSOR_DTYPES,
                               USER_OBJECTS)
from .tf_checkpoint import VARIABLE_FILES, check_variables
from .tf_proto import ProtoError, entries, read_canonical, refused, signed

GRAPH, FINGERPRINT = "saved_model.pb", "fingerprint.pb"
FILES = (GRAPH, FINGERPRINT, *VARIABLE_FILES)
FLOAT32 = 1  # tensorflow DataType DT_FLOAT
_NOT_OURS = "not an op our exporter writes outside the checkpoint functions"


def check_format(bundle: Path, spec, fmt) -> None:
    contract = family_of(spec).signatures(spec)
    for model in contract:
        rel = f"savedmodel/{model}"
        expect_files(bundle / rel, folder_files(bundle, rel), FILES)
        check_savedmodel(bundle / rel, contract[model])


def check_savedmodel(folder: Path, contract: dict) -> None:
    """One SavedModel folder (its listing checked) against our exporter's rules and the
    model's signatures (`contract`: {name: signatures.Signature})."""
    path = folder / GRAPH
    try:
        _fingerprint(folder / FINGERPRINT)
        saved = read_canonical(read_model_file(path, SAVED_MODEL_MAX_BYTES, "SavedModel graph"),
                               "SavedModel")
        meta = _Graph(saved, contract)
    except ProtoError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    check_variables(folder, meta.variables())


def _fingerprint(path: Path):
    """fingerprint.pb: content hashes and a version only (ours has no uuid)."""
    try:
        read_canonical(read_model_file(path, FINGERPRINT_MAX_BYTES, "SavedModel fingerprint"),
                       "FingerprintDef")
    except ProtoError as exc:
        raise ModelFileError(f"{path}: {exc}") from None


class _Graph:
    """The checks of one parsed saved_model.pb; each failure a ProtoError (one line)."""

    def __init__(self, saved, contract: dict):
        if saved.saved_model_schema_version != 1 or len(saved.meta_graphs) != 1:
            raise ProtoError(f"schema version {saved.saved_model_schema_version} with "
                             f"{len(saved.meta_graphs)} meta graphs (ours: version 1, one)")
        self.meta = meta = saved.meta_graphs[0]
        refused(meta, "the meta graph")
        if list(meta.meta_info_def.tags) != list(TAGS):
            raise ProtoError(f"tags {list(meta.meta_info_def.tags)} (ours: {list(TAGS)})")
        library = meta.graph_def.library
        refused(library, "the function library")
        self.functions = _unique(library.function, lambda f: f.signature.name, "function")
        shadowing = sorted(set(self.functions) & (MODEL_OPS | CHECKPOINT_OPS))
        if shadowing:  # a node of that op would call the function
            raise ProtoError(f"function {shadowing[0]!r} has the name of an op")
        self.nodes = _unique(meta.graph_def.node, lambda n: n.name, "graph node")
        self.checkpoint = self._checkpoint_functions()
        self._graph_nodes()
        for name, function in self.functions.items():
            self._function(name, function)
        for op in meta.meta_info_def.stripped_op_list.op:  # the ops' definitions
            if op.name not in MODEL_OPS | CHECKPOINT_OPS:
                raise ProtoError(f"the op list defines {op.name!r}, not an op our exporter "
                                 f"writes")
        self._init_op()
        self._signatures(contract)
        self._object_graph()

    # ------------------------------------------------------------------ functions and ops
    def _checkpoint_functions(self) -> dict[str, str]:
        """{graph node name: function} of the saver's save and restore calls."""
        saver = self.meta.saver_def
        filename = self.nodes.get(saver.filename_tensor_name.split(":")[0])
        if filename is None or filename.op != "Placeholder":
            raise ProtoError(f"saver_def: its file name {saver.filename_tensor_name!r} is "
                             f"not a placeholder of the graph")
        calls = {}
        for role, name in (("save", saver.save_tensor_name.split(":")[0]),
                           ("restore", saver.restore_op_name)):
            node = self.nodes.get(name)
            function = entries(node.attr, name).get("f") if node is not None else None
            if (node is None or node.op != "StatefulPartitionedCall" or function is None
                    or function.func.name not in self.functions):
                raise ProtoError(f"saver_def: its {role} op {name!r} is not a call of a "
                                 f"library function")
            calls[name] = function.func.name
        if len(set(calls.values())) != 2:
            raise ProtoError("saver_def: save and restore call the same function")
        return calls

    def _graph_nodes(self):
        for i, node in enumerate(self.meta.graph_def.node):
            def where():
                return f"graph node {i} {node.name!r} (op {node.op})"
            if node.name in self.checkpoint:  # its op checked with the saver
                self._node(node, where, {node.op}, "", allowed=self.checkpoint[node.name])
            else:
                self._node(node, where, MODEL_OPS, _NOT_OURS)

    def _function(self, name: str, function):
        checkpoint = name in self.checkpoint.values()
        kind = "checkpoint function" if checkpoint else "function"
        self._references(function.attr, lambda: f"function {name!r}")
        for arg in function.arg_attr:
            self._references(arg.value.attr, lambda: f"function {name!r} arg {arg.key}")
        for i, node in enumerate(function.node_def):
            def where():
                return f"{kind} {name!r} node {i} {node.name!r} (op {node.op})"
            if checkpoint:
                self._node(node, where, CHECKPOINT_OPS, "not a save/restore op", allowed=None)
            else:
                self._node(node, where, MODEL_OPS, _NOT_OURS)

    def _node(self, node, where, ops, rule: str, allowed: str | None = ""):
        """A node: its op one of `ops` (else `rule`), placed on no device but the local CPU
        (a device string can name a remote task), its attributes' references as
        _references holds them."""
        if node.op not in ops:
            raise ProtoError(f"{where()}: {rule}")
        if node.device not in DEVICES:
            raise ProtoError(f"{where()}: placed on {node.device!r} (ours: "
                             f"{', '.join(map(repr, sorted(DEVICES)))})")
        self._references(node.attr, where, allowed)

    def _references(self, attrs, where, allowed: str | None = ""):
        """Every function the attributes (AttrEntry, of a node or a function) name: a
        library function; a checkpoint function only where `allowed` names it (None: no
        function at all). Every value is looked at, a key written twice included: TensorFlow
        keeps the last, which is one of them. `where()`: the place, for a refusal."""
        for entry in attrs:
            value = entry.value
            kind = value.WhichOneof("value")
            if kind == "s" and entry.key in CALL_ATTRS and value.s != CALL_ATTRS[entry.key]:
                raise ProtoError(f"{where()} attr {entry.key!r}: not the runtime "
                                 f"configuration our exporter writes")
            if kind == "tensor":
                _tensor(value.tensor, where, entry.key)
            elif kind == "func":
                self._function_name(value.func, where, entry.key, allowed)
            elif kind == "list":
                for tensor in value.list.tensor:
                    _tensor(tensor, where, entry.key)
                for func in value.list.func:
                    self._function_name(func, where, entry.key, allowed)

    def _function_name(self, func, where, key: str, allowed):
        place = f"{where()} attr {key!r}"
        if allowed is None:
            raise ProtoError(f"{place}: names function {func.name!r} (a checkpoint function "
                             f"calls none)")
        if func.name not in self.functions:
            raise ProtoError(f"{place}: names {func.name!r}, which is no function of the "
                             f"library (TensorFlow would run it as an op)")
        if func.name in self.checkpoint.values() and func.name != allowed:
            raise ProtoError(f"{place}: calls the checkpoint function {func.name!r} (only "
                             f"the saver's own nodes may)")
        self._references(func.attr, lambda: place, allowed)

    # ------------------------------------------------------------------ load-time parts
    def _init_op(self):
        """The init op and the main-op collection: the one bare NoOp TF1's loader and
        TensorFlow Serving run at load."""
        init = _output_names(self.meta.signature_def, INIT_OP)
        collections = entries(self.meta.collection_def, "collection_def")
        if set(collections) - set(COLLECTIONS):
            raise ProtoError(f"collection {sorted(set(collections) - set(COLLECTIONS))[0]!r}:"
                             f" not one our exporter writes")
        names = set(init) | {n for c in collections.values() for n in c.node_list.value}
        for name in names:
            node = self.nodes.get(name.split(":")[0])
            if (node is None or node.op != "NoOp" or list(node.input) or len(node.attr)
                    or node.device):
                raise ProtoError(f"the init op {name!r} is not a bare NoOp (ours runs "
                                 f"nothing at load)")

    def _signatures(self, contract: dict):
        found = entries(self.meta.signature_def, "signature_def")
        if set(found) != {*contract, INIT_OP}:
            raise ProtoError(f"signatures {sorted(found)}, not the contract's "
                             f"{sorted({*contract, INIT_OP})}")
        for name, signature in contract.items():
            sig = found[name]
            inputs = entries(sig.inputs, f"signature {name} inputs")
            outputs = entries(sig.outputs, f"signature {name} outputs")
            if (sig.method_name != SERVING_METHOD or set(inputs) != set(signature.input_names)
                    or set(outputs) != set(signature.output_names)
                    or any(t.dtype != FLOAT32 for t in (*inputs.values(), *outputs.values()))):
                raise ProtoError(f"signature {name}: not the contract's inputs and outputs")

    def _object_graph(self):
        if not self.meta.HasField("object_graph_def") or not self.meta.object_graph_def.nodes:
            raise ProtoError("no object graph (ours has one; without it TF1's loader runs "
                             "the graph itself)")
        graph = self.meta.object_graph_def
        count = len(graph.nodes)
        for i, node in enumerate(graph.nodes):
            where = f"object {i}"
            refused(node, where)
            kinds = [f.name for f, _ in node.ListFields() if f.name in OBJECT_KINDS]
            if len(kinds) != 1 or (i == 0 and kinds[0] != "user_object"):
                raise ProtoError(f"{where}: {' and '.join(kinds) or 'no kind'} (ours: one "
                                 f"of {', '.join(sorted(OBJECT_KINDS))}; the root a user "
                                 f"object)")
            for ref in (*node.children, *node.dependencies):
                if ref.node_id >= count:
                    raise ProtoError(f"{where}: refers to object {ref.node_id} of {count}")
            self._object(node, kinds[0], where)
        for name, function in entries(graph.concrete_functions,
                                      "concrete_functions").items():
            self._saved_function(name, f"concrete function {name!r}")
            for node_id in function.bound_inputs:
                if node_id >= count or not graph.nodes[node_id].HasField("variable"):
                    raise ProtoError(f"concrete function {name!r}: captures object {node_id}, "
                                     f"not a variable")

    def _object(self, node, kind: str, where: str):
        if kind == "user_object":
            obj = node.user_object
            if obj.identifier not in USER_OBJECTS or obj.metadata:
                raise ProtoError(f"{where}: a user object {obj.identifier!r} (ours: "
                                 f"{', '.join(sorted(USER_OBJECTS))}, without metadata)")
        elif kind == "variable":
            variable = node.variable
            refused(variable, where)
            if variable.dtype != FLOAT32 or variable.device:
                raise ProtoError(f"{where}: a variable of dtype {variable.dtype} on device "
                                 f"{variable.device!r} (ours: float32, no device)")
        elif kind == "function":
            for name in node.function.concrete_functions:
                self._saved_function(name, where)
        else:
            self._saved_function(node.bare_concrete_function.concrete_function_name, where)

    def _saved_function(self, name: str, where: str):
        if name not in self.functions:
            raise ProtoError(f"{where}: names {name!r}, which is no function of the library")
        if name in self.checkpoint.values():
            raise ProtoError(f"{where}: exposes the checkpoint function {name!r} (only the "
                             f"saver's own nodes call it)")

    def variables(self) -> dict[str, tuple]:
        """{checkpoint key: shape} of the variables of the object graph (their paths of
        child names from the root, as TensorFlow's checkpoint names them)."""
        graph = self.meta.object_graph_def
        found, stack, seen = {}, [(0, "")], {0}
        while stack:
            node_id, path = stack.pop()
            node = graph.nodes[node_id]
            if node.HasField("variable"):
                shape = tuple(signed(d.size) for d in node.variable.shape.dim)
                found[f"{path}/.ATTRIBUTES/VARIABLE_VALUE"] = shape
            for ref in node.children:
                if ref.node_id not in seen:
                    seen.add(ref.node_id)
                    stack.append((ref.node_id, f"{path}/{ref.local_name}" if path
                                  else ref.local_name))
        return found


def _unique(items, name_of, what: str) -> dict:
    """{name: item}; a name given twice is not ours (which one would TensorFlow take?)."""
    out = {}
    for item in items:
        name = name_of(item)
        if name in out:
            raise ProtoError(f"{what} {name!r} is defined twice")
        out[name] = item
    return out


def _tensor(tensor, where, key: str):
    refused(tensor, lambda: f"{where()} attr {key!r}")
    if tensor.dtype not in TENSOR_DTYPES:
        raise ProtoError(f"{where()} attr {key!r}: a constant of dtype {tensor.dtype} (ours: "
                         f"{', '.join(map(str, sorted(TENSOR_DTYPES)))})")
    dims = [signed(d.size) for d in tensor.tensor_shape.dim]
    if min(dims, default=0) < 0 or math.prod(dims) > SAVED_MODEL_MAX_CONSTANT:
        raise ProtoError(f"{where()} attr {key!r}: a constant of shape {dims} (at most "
                         f"{SAVED_MODEL_MAX_CONSTANT} values; TensorFlow fills a shape from "
                         f"one value)")


def _output_names(signature_defs, key: str) -> list[str]:
    sig = entries(signature_defs, "signature_def").get(key)
    return [] if sig is None else [t.name for t in entries(sig.outputs, key).values()]
