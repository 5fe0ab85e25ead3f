"""TensorFlow's SavedModel protos as our exporter writes them, read without TensorFlow (the
gate runs on lite installs and costs no TensorFlow import): saved_model.pb and
fingerprint.pb parsed by the protobuf runtime against message types built here from the
rows below, which hold only the fields our files use.

A file passes only in its canonical form: parsed, stripped of the fields these types do not
know, and serialized again, it must give back its own bytes. So it holds no field we did
not declare, no field written twice (a parser merges or keeps the last), no other
encoding of a value; what the gate checks is then exactly what TensorFlow's parser reads.
TensorFlow's fields that make it act at load are declared with `!` and the reason (parsed
as opaque bytes), so that `refused` names them.

Field numbers are TensorFlow's (tensorflow/core/{framework,protobuf}/*.proto; checked
against its own descriptors by tests/test_hostile_models.py). Each message: "number name
kind[*]" rows, `*` repeated; kind: int (any varint: int32/64, uint, bool, enum), str, bytes,
fixed32, fixed64 or a message of the table; maps are their repeated entry messages (a key
written twice is then seen, not merged).
"""
from __future__ import annotations

from functools import cache

_ROWS = {
    "SavedModel": "1 saved_model_schema_version int; 2 meta_graphs MetaGraphDef*",
    "MetaGraphDef": "1 meta_info_def MetaInfoDef; 2 graph_def GraphDef; 3 saver_def SaverDef;"
                    " 4 collection_def CollectionEntry*; 5 signature_def SignatureEntry*;"
                    " 6 asset_file_def !an asset is a file TensorFlow hands to the graph;"
                    " 7 object_graph_def SavedObjectGraph",
    "MetaInfoDef": "1 meta_graph_version str; 2 stripped_op_list OpList; 4 tags str*;"
                   " 5 tensorflow_version str; 6 tensorflow_git_version str;"
                   " 7 stripped_default_attrs int",
    "OpList": "1 op OpDef*",
    "OpDef": "1 name str; 2 input_arg ArgDef*; 3 output_arg ArgDef*; 20 control_output str*;"
             " 4 attr AttrDef*; 5 summary str; 6 description str; 18 is_commutative int;"
             " 16 is_aggregate int; 17 is_stateful int; 19 allows_uninitialized_input int;"
             " 21 is_distributed_communication int",
    "ArgDef": "1 name str; 2 description str; 3 type int; 4 type_attr str; 5 number_attr str;"
              " 6 type_list_attr str; 7 handle_data DtypeAndShape*; 16 is_ref int;"
              " 17 experimental_full_type FullTypeDef",
    "DtypeAndShape": "1 dtype int; 2 shape TensorShapeProto",
    "FullTypeDef": "1 type_id int; 2 args FullTypeDef*; 3 s str; 4 i int",
    "AttrDef": "1 name str; 2 type str; 3 default_value AttrValue; 4 description str;"
               " 5 has_minimum int; 6 minimum int; 7 allowed_values AttrValue",
    "AttrValue": "1 list ListValue; 2 s bytes; 3 i int; 4 f fixed32; 5 b int; 6 type int;"
                 " 7 shape TensorShapeProto; 8 tensor TensorProto; 9 placeholder str;"
                 " 10 func NameAttrList",
    "ListValue": "2 s bytes*; 3 i int*; 4 f fixed32*; 5 b int*; 6 type int*;"
                 " 7 shape TensorShapeProto*; 8 tensor TensorProto*; 9 func NameAttrList*",
    "NameAttrList": "1 name str; 2 attr AttrEntry*",
    "AttrEntry": "1 key str; 2 value AttrValue",
    "TensorShapeProto": "2 dim Dim*; 3 unknown_rank int",
    "Dim": "1 size int; 2 name str",
    "TensorProto": "1 dtype int; 2 tensor_shape TensorShapeProto; 3 version_number int;"
                   " 4 tensor_content bytes; 13 half_val int*; 5 float_val fixed32*;"
                   " 6 double_val fixed64*; 7 int_val int*; 8 string_val bytes*;"
                   " 9 scomplex_val fixed32*; 10 int64_val int*; 11 bool_val int*;"
                   " 12 dcomplex_val fixed64*;"
                   " 14 resource_handle_val !a resource handle names a runtime resource;"
                   " 15 variant_val !a variant holds a serialized object TensorFlow decodes;"
                   " 16 uint32_val int*; 17 uint64_val int*; 18 float8_val bytes",
    "GraphDef": "1 node NodeDef*; 2 library FunctionDefLibrary; 4 versions VersionDef",
    "NodeDef": "1 name str; 2 op str; 3 input str*; 4 device str; 5 attr AttrEntry*;"
               " 7 experimental_type FullTypeDef",
    "VersionDef": "1 producer int; 2 min_consumer int; 3 bad_consumers int*",
    "FunctionDefLibrary": "1 function FunctionDef*;"
                          " 2 gradient !a gradient function is run by TensorFlow's autodiff;"
                          " 3 registered_gradients !a registered gradient is run by autodiff",
    "FunctionDef": "1 signature OpDef; 5 attr AttrEntry*; 7 arg_attr ArgAttrEntry*;"
                   " 8 resource_arg_unique_id IntEntry*; 3 node_def NodeDef*;"
                   " 4 ret StrEntry*; 6 control_ret StrEntry*",
    "ArgAttrEntry": "1 key int; 2 value ArgAttrs",
    "ArgAttrs": "1 attr AttrEntry*",
    "IntEntry": "1 key int; 2 value int",
    "StrEntry": "1 key str; 2 value str",
    "SaverDef": "1 filename_tensor_name str; 2 save_tensor_name str; 3 restore_op_name str;"
                " 4 max_to_keep int; 5 sharded int; 6 keep_checkpoint_every_n_hours fixed32;"
                " 7 version int",
    "CollectionEntry": "1 key str; 2 value CollectionDef",
    "CollectionDef": "1 node_list NodeList",
    "NodeList": "1 value str*",
    "SignatureEntry": "1 key str; 2 value SignatureDef",
    "SignatureDef": "1 inputs TensorInfoEntry*; 2 outputs TensorInfoEntry*; 3 method_name str",
    "TensorInfoEntry": "1 key str; 2 value TensorInfo",
    "TensorInfo": "1 name str; 2 dtype int; 3 tensor_shape TensorShapeProto",
    "SavedObjectGraph": "1 nodes SavedObject*; 2 concrete_functions ConcreteFunctionEntry*",
    "SavedObject": "1 children ObjectReference*; 15 dependencies ObjectReference*;"
                   " 3 slot_variables !slot variables belong to an optimizer;"
                   " 4 user_object SavedUserObject; 5 asset !an asset is a file TensorFlow"
                   " hands to the graph; 6 function SavedFunction; 7 variable SavedVariable;"
                   " 8 bare_concrete_function SavedBareConcreteFunction;"
                   " 9 constant !a constant object is an op TensorFlow runs at load;"
                   " 10 resource !a resource's initialiser runs at load;"
                   " 11 saveable_objects !a saveable object's restore function runs at load;"
                   " 12 captured_tensor !a captured tensor is made by a function at load;"
                   " 13 registered_name !a registered class is revived by its own code;"
                   " 14 serialized_user_proto !a registered class's proto;"
                   " 16 registered_saver !a registered saver runs its own code at load",
    "ObjectReference": "1 node_id int; 2 local_name str",
    "SavedUserObject": "1 identifier str; 2 version VersionDef; 3 metadata str",
    "SavedFunction": "1 concrete_functions str*; 2 function_spec FunctionSpec",
    "FunctionSpec": "1 fullargspec StructuredValue; 2 is_method int;"
                    " 5 input_signature StructuredValue; 6 jit_compile int",
    "SavedVariable": "1 dtype int; 2 shape TensorShapeProto; 3 trainable int;"
                     " 4 synchronization int; 5 aggregation int; 6 name str; 7 device str;"
                     " 8 experimental_distributed_variable_components !a distributed"
                     " variable's components",
    "SavedBareConcreteFunction": "1 concrete_function_name str; 2 argument_keywords str*;"
                                 " 3 allowed_positional_arguments int;"
                                 " 4 function_spec FunctionSpec",
    "ConcreteFunctionEntry": "1 key str; 2 value SavedConcreteFunction",
    "SavedConcreteFunction": "2 bound_inputs int*; 3 canonicalized_input_signature"
                             " StructuredValue; 4 output_signature StructuredValue",
    # The Python structures of the functions' arguments and results; TypeSpecs (34, 35)
    # are revived by the classes they name, tensors (55, 56) are not ours.
    "StructuredValue": "1 none_value NoneValue; 11 float64_value fixed64; 12 int64_value int;"
                       " 13 string_value str; 14 bool_value int;"
                       " 31 tensor_shape_value TensorShapeProto; 32 tensor_dtype_value int;"
                       " 33 tensor_spec_value TensorSpecProto; 51 list_value Values;"
                       " 52 tuple_value Values; 53 dict_value DictValue;"
                       " 54 named_tuple_value NamedTupleValue",
    "NoneValue": "",
    "TensorSpecProto": "1 name str; 2 shape TensorShapeProto; 3 dtype int",
    "Values": "1 values StructuredValue*",
    "DictValue": "1 fields PairValue*",
    "NamedTupleValue": "1 name str; 2 values PairValue*",
    "PairValue": "1 key str; 2 value StructuredValue",
    # variables/variables.index: the header and each tensor's entry (tf_checkpoint).
    "BundleHeaderProto": "1 num_shards int; 2 endianness int; 3 version VersionDef",
    "BundleEntryProto": "1 dtype int; 2 shape TensorShapeProto; 3 shard_id int; 4 offset int;"
                        " 5 size int; 6 crc32c fixed32;"
                        " 7 slices !a sliced tensor is assembled from parts of others",
    # The checkpoint's object graph, which TensorFlow's loader matches values to objects by.
    "TrackableObjectGraph": "1 nodes TrackableObject*",
    "TrackableObject": "1 children ObjectReference*; 2 attributes SerializedTensor*;"
                       " 3 slot_variables !slot variables belong to an optimizer;"
                       " 4 registered_saver !a registered saver runs its own code at restore;"
                       " 5 has_checkpoint_values BoolValue",
    "SerializedTensor": "1 name str; 2 full_name str; 3 checkpoint_key str",
    "BoolValue": "1 value int",
    # fingerprint.pb: content hashes (TensorFlow reads it at load, for its metrics).
    "FingerprintDef": "1 saved_model_checksum int; 2 graph_def_program_hash int;"
                      " 3 signature_def_hash int; 4 saved_object_graph_hash int;"
                      " 5 checkpoint_hash int; 6 version VersionDef",
}
_SCALARS = {"int": "TYPE_UINT64", "str": "TYPE_STRING", "bytes": "TYPE_BYTES",
            "fixed32": "TYPE_FIXED32", "fixed64": "TYPE_FIXED64"}
_PACKAGE = "fomm_convert_savedmodel_check"


class ProtoError(ValueError):
    """Not a message as our exporter writes it."""


def _rows(text: str):
    """(number, name, kind, repeated, reason) of each row of a message."""
    for row in filter(None, (r.strip() for r in text.split(";"))):
        number, name, kind = row.split(" ", 2)
        reason = kind[1:] if kind.startswith("!") else None
        yield int(number), name, "bytes" if reason else kind.rstrip("*"), \
            bool(reason) or kind.endswith("*"), reason


# Messages whose fields are one oneof in TensorFlow's protos (a parser keeps the last one
# written; canonical form: only one).
ONEOF = {"AttrValue": "value"}
# message -> [(field name, reason)] of the fields TensorFlow acts on at load.
REFUSED = {message: [(name, reason) for _, name, _, _, reason in _rows(text) if reason]
           for message, text in _ROWS.items()}


@cache
def _classes() -> dict:
    """The message types, proto3 as TensorFlow's (strings must be UTF-8, repeated numbers
    packed) with explicit presence on every singular field (`optional`), so that a value
    written at its default is kept and the canonical form compares byte for byte."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    field_type = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name=f"{_PACKAGE}.proto", package=_PACKAGE,
                                              syntax="proto3")
    for message, text in _ROWS.items():
        proto = file.message_type.add(name=message)
        if message in ONEOF:
            proto.oneof_decl.add(name=ONEOF[message])
        for number, name, kind, repeated, _ in _rows(text):
            field = proto.field.add(name=name, number=number, label=(
                field_type.LABEL_REPEATED if repeated else field_type.LABEL_OPTIONAL))
            if message in ONEOF:
                field.oneof_index = 0
            elif not repeated:  # proto3 `optional`: a synthetic oneof of its own
                field.proto3_optional, field.oneof_index = True, len(proto.oneof_decl)
                proto.oneof_decl.add(name=f"_{name}")
            if kind in _SCALARS:
                field.type = getattr(field_type, _SCALARS[kind])
            else:
                field.type, field.type_name = field_type.TYPE_MESSAGE, f".{_PACKAGE}.{kind}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {m: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{m}"))
            for m in _ROWS}


def read_canonical(data: bytes, message: str):
    """`data` as `message`, in its canonical form only (ProtoError naming what is not)."""
    from google.protobuf.message import DecodeError
    cls = _classes()[message]
    try:
        parsed = cls.FromString(data)
    except (DecodeError, RecursionError) as exc:
        raise ProtoError(f"not a {message} protobuf ({exc})") from None
    parsed.DiscardUnknownFields()
    again = parsed.SerializeToString(deterministic=True)
    if again != data:  # the slow walk only for a file that is not ours: name the field
        raise ProtoError(_first_unknown(cls.FromString(data), "") or
                         f"not in the canonical form TensorFlow writes (from byte "
                         f"{_first_difference(again, data)}: a field written twice or out "
                         f"of order, or a value encoded otherwise)")
    return parsed


def _first_difference(a: bytes, b: bytes) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def _first_unknown(message, path: str) -> str | None:
    """Where the first field our types do not declare is, or None."""
    from google.protobuf.unknown_fields import UnknownFieldSet
    unknown = UnknownFieldSet(message)
    if len(unknown):
        return (f"{path + ': ' if path else ''}field {unknown[0].field_number} of "
                f"{message.DESCRIPTOR.name}, which our exporter does not write")
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        items = value if field.is_repeated else [value]
        for i, item in enumerate(items):
            found = _first_unknown(item, f"{path}{'.' if path else ''}{field.name}"
                                         f"{f'[{i}]' if field.is_repeated else ''}")
            if found:
                return found
    return None


def refused(message, where):
    """ProtoError when `message` holds a field TensorFlow would act on at load (`where`: the
    place, or a function giving it)."""
    for name, reason in REFUSED.get(message.DESCRIPTOR.name, ()):
        if len(getattr(message, name)):
            raise ProtoError(f"{where() if callable(where) else where}: holds {name} "
                             f"({reason})")


def signed(value: int) -> int:
    """An int64 field's value (the types here read every varint as uint64)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def entries(pairs, where: str) -> dict:
    """A map field's entries as a dict; a key written twice is not ours (a parser keeps the
    last)."""
    out = {}
    for pair in pairs:
        if pair.key in out:
            raise ProtoError(f"{where}: key {pair.key!r} written twice")
        out[pair.key] = pair.value
    return out
