"""What our SavedModel exporter writes (export/savedmodel.py through tf.saved_model.save,
TensorFlow 2.21), the one home of the SavedModel gate's allowlists (models_check/savedmodel).

Derived from real exports of every spec (specs/*.yaml) and test config
(tests/fixtures/configs/*.yaml, vox-512 included) by scripts/savedmodel_ops.py, which reads
them with TensorFlow's own protos and fails when a set below misses something; build runs
the gate on its own files, so an exporter or TensorFlow that writes anything new fails its
build until the set here is extended, with its reason.
"""
from __future__ import annotations

# The ops of the graph and of every function outside the checkpoint functions: arithmetic,
# shapes, convolutions, resampling and control of calls; none reads or writes a file, none
# runs Python or a dataset, none sends or receives. BatchMatMulV2 is absent from
# tiny-nojac's files (no jacobians) and Fill from tiny-512like's and tiny-nonsquare's;
# every other op is in the files of all 16 configs.
MODEL_OPS = frozenset({
    # the graph itself: inputs, variables and the calls of the signature functions
    "Placeholder", "VarHandleOp", "ReadVariableOp", "NoOp", "Const", "Identity",
    "PartitionedCall", "StatefulPartitionedCall",
    # arithmetic and logic
    "AddV2", "Sub", "Mul", "RealDiv", "FloorDiv", "Floor", "Round", "Neg", "Sqrt", "Exp",
    "Maximum", "Minimum", "Max", "Min", "Sum", "Equal", "Greater", "LessEqual", "LogicalAnd",
    "LogicalOr", "LogicalNot", "SelectV2", "Cast", "Relu", "Sigmoid", "Softmax",
    # linear algebra and convolution
    "BatchMatMulV2", "Conv2D", "DepthwiseConv2dNative", "BiasAdd", "AvgPool",
    # shapes and layouts
    "Shape", "Reshape", "Transpose", "ConcatV2", "Pack", "Unpack", "StridedSlice", "GatherV2",
    "Tile", "BroadcastTo", "Fill", "Range", "Pad", "DepthToSpace", "SpaceToDepth",
    "ResizeBilinear",
    # TPSMM's (families.py), in its files only: the TPS kernel r^2 log r^2 (Log); the
    # solve's partial pivoting, which picks the largest |candidate| (Abs, GreaterEqual) and
    # the first row holding it (Less); resnet18's stem (MaxPool) and the AVD network's
    # Linear layers (MatMul); the keypoints' 2 sigmoid - 1 as tanh(z / 2) (Tanh:
    # tpsmm/keypoint_head.py).
    "Log", "Abs", "GreaterEqual", "Less", "MaxPool", "MatMul", "Tanh",
})
# The saver's save and restore functions (saver_def): TensorFlow's own checkpoint file ops
# and the reads and assignments of the variables they save and restore.
CHECKPOINT_OPS = frozenset({
    "SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename", "StringJoin",
    "StaticRegexFullMatch", "Select", "Pack", "Const", "Identity", "NoOp",
    "ReadVariableOp", "DisableCopyOnRead", "AssignVariableOp",
})
# The object graph: the root and the modules holding variables (plain AutoTrackables),
# the lists of blocks, the signatures' map; the signature functions; the variables.
OBJECT_KINDS = frozenset({"user_object", "function", "bare_concrete_function", "variable"})
USER_OBJECTS = frozenset({"_generic_user_object", "trackable_list_wrapper", "signature_map"})
# The dtypes of constants anywhere (float32 values, int32 shapes and indices, the
# checkpoint functions' tensor names): no resource (20) or variant (21) handle.
TENSOR_DTYPES = frozenset({1, 3, 7})
# The string attributes of the call ops (PartitionedCall, StatefulPartitionedCall) that
# configure the runtime that runs the called function: a ConfigProto can name remote
# workers (cluster_def) and graph rewriters. Ours: one CPU, no GPU, and TensorFlow's
# defaults for the rest, the same bytes in every file; no config string, the default
# executor.
CALL_ATTRS = {"config_proto": b"\n\x07\n\x03CPU\x10\x01\n\x07\n\x03GPU\x10\x002\x02J\x008\x01"
                              b"\x82\x01\x00\x92\x01\x02J\x00",
              "config": b"", "executor_type": b""}
# Where nodes are placed: nowhere, or (the saver's constants and file ops) the local CPU;
# a device string can name a task of a remote job.
DEVICES = frozenset({"", "/device:CPU:0", "/device:CPU:*"})
TAGS = ("serve",)
SERVING_METHOD = "tensorflow/serving/predict"
# The init op's signature key and the collection TF1's loader runs as the main op.
INIT_OP = "__saved_model_init_op"
COLLECTIONS = ("saved_model_main_op",)
