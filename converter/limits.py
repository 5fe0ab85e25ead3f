"""Bounds on what an input may make us do, checked before the work: each a stated number
with the reason for it (docs/security.md). Exceeding one is a one-line refusal."""
from __future__ import annotations


# ---------------------------------------------------------- specs, media, predict inputs
# Spec and config YAML files. Ours are ~1.5 KB and the upstream configs ~3 KB: 64 KiB is
# twenty times that and parses in well under a second in the pure-Python loader.
SPEC_MAX_BYTES = 64 * 1024
# YAML nesting: configs nest 5 levels; the loader's composer recurses once per level.
YAML_MAX_DEPTH = 32
# (YAML aliases are refused outright: no spec or upstream config uses them, and one line of
# them expands into gigabytes, the "billion laughs".)
# A value quoted in an error message is cut to this many characters (errors.shown): the
# longest key of a published checkpoint, quoted, is 79.
ERROR_VALUE_CHARS = 100

# Frame sides: the published configs use 256 and 512; 2048 is four times the largest, and
# its full-resolution feature map (64 channels, float32) already takes 1 GiB per frame.
MAX_FRAME_SIDE = 2048
# Channels: grey, grey+alpha, RGB or RGBA (every config uses 3).
MAX_CHANNELS = 4
# The largest activation a config may ask for, in values per frame: max of the generator's
# first layer (H x W x block_expansion), the dense-motion hourglass's input at its scale
# ((num_kp + 1) x (C + 1) + block_expansion channels) and the keypoint hourglass's. 2**28
# (1 GiB of float32) admits a 2048x2048 frame at the published width of 64; vox-512 uses
# 2**24.
MAX_ACTIVATION = 2 ** 28
# Per-field ranges of the model parameters (inclusive); published values in brackets.
MAX_NUM_KP = 64  # [10] every keypoint adds a heatmap, a jacobian and 4 dense-motion inputs
MAX_FEATURES = 2048  # [512, 1024] a 3x3 conv of 2048 -> 2048 channels holds 151 MB
MAX_BLOCK_EXPANSION = 512  # [32, 64] the full-resolution width (MAX_ACTIVATION bounds it too)
MAX_NUM_BLOCKS = 8  # [5] hourglass depth: the downsampled frame must divide by 2**num_blocks
MAX_DOWN_BLOCKS = 6  # [2] the generator's frame must divide by 2**num_down_blocks
MAX_BOTTLENECK_BLOCKS = 32  # [6] residual blocks at the bottleneck's width
MAX_KP_PAD = 3  # [0] 3 keeps the 7x7 heatmap conv 'same'; more only adds a border of zeros
MAX_DOWNSAMPLE = 32  # [4, 8] 1 / scale_factor: the anti-alias kernel is ~4x as wide
# TPSMM: [10] thin-plate splines of 5 keypoints each, so 5K stays within MAX_NUM_KP (the
# in-graph hull's exact sums are bounded for 64 points: exact.py).
MAX_NUM_TPS = MAX_NUM_KP // 5
MAX_BOTTLE_SIZE = 1024  # [128] the AVD network's identity and pose codes (its widths are fixed)
# temperature and kp_variance [0.1, 0.01]: float32 holds them and their reciprocals far
# from overflow and underflow.
MIN_POSITIVE_PARAM, MAX_POSITIVE_PARAM = 1e-6, 1e6

# Pixels of a source image or a video frame, read from the header before decoding: 2**26
# (67 Mpx, e.g. 8192x8192) admits 48-61 Mpx camera photos and 8K video (33 Mpx); a
# 12000x12000 PNG of 420 KB would otherwise decode to gigabytes. Pillow's own
# decompression-bomb warning starts at 89 Mpx.
MAX_PIXELS = 2 ** 26
# A predict inputs NPZ member, as its .npy header declares it (before anything is read):
# 2 GiB holds 4000 frames of 256x256x3 float32 or 500 of 512x512.
MAX_INPUT_BYTES = 2 ** 31
# Entries of one table vector in a .tflite (tensors, ops, buffers of a subgraph), read by
# inspect and verify without an interpreter: vox's generator has 4454 buffers and 2259
# tensors in one subgraph; a junk file's vector of millions would make as many objects.
TFLITE_MAX_ENTRIES = 1 << 16
# The batch of one call on a dynamic .tflite file: the shape proof (bundle/models_check)
# holds for every batch up to it, every dimension and shape value inside int32, as TFLite
# computes them. The largest call a valid input makes is predict's detector on every
# frame (MAX_INPUT_BYTES: 2730 frames of 256x256); vox-256's generator holds a dimension
# of 66564 x batch (its Winograd tiles), inside int32 up to a batch of 32261, and 4x
# that at 512x512, up to 8065.
TFLITE_MAX_CALL_BATCH = 4096


# ------------------------------------------------------------- bundles (bundle/, build)
# A bundle's manifest.json: ours are 5-15 KB (every format of vox: ~12 KB). 1 MiB leaves
# room to grow and bounds what json.loads may build from a hostile one (tens of MB).
MANIFEST_MAX_BYTES = 1 << 20
# Files in a bundle: build writes at most ~40 (every format); bounds the file table and
# the walk of the folder (a tree of a million entries is not ours).
BUNDLE_MAX_FILES = 1000
# Path depth inside a bundle: ours reach 4 (savedmodel/<model>/variables/<file>).
BUNDLE_MAX_DEPTH = 8
# A dataset name becomes a folder and part of fomm-<name>-<version>.tar.gz: 100 characters
# keep that far below the file systems' 255-byte name limit.
NAME_MAX_CHARS = 100
# A file name recorded in a manifest (its checkpoint's): the file systems' own limit.
FILE_NAME_MAX_BYTES = 255
# A version string in a manifest (toolchain packages, the bundle's): ours are < 30.
VERSION_MAX_CHARS = 64
# parity/report.json, which verify reads: ~40 KB per format (every format of vox: ~250 KB).
PARITY_REPORT_MAX_BYTES = 16 << 20
# A bench report that `bench --from-json` draws: ~3 KB a row with its samples (every
# backend at 2 thread counts: ~60 KB).
BENCH_REPORT_MAX_BYTES = 16 << 20
# Our metadata JSON inside one artifact (TFLite entry, ONNX metadata_props): ~5 KB.
ARTIFACT_METADATA_MAX_BYTES = 1 << 20
# A SavedModel's saved_model.pb (the graph and its functions; the weights are in
# variables/): vox-256's generator 4.5 MB, its detector 0.46 MB. 64 MiB is 14x the largest
# and bounds what the gate's parse (about 10x the bytes in memory) may cost.
SAVED_MODEL_MAX_BYTES = 64 << 20
# Values of one constant in a SavedModel graph: TensorFlow fills a constant's whole shape
# from a single value, so a few bytes can declare gigabytes. Ours hold at most 67280, in
# every spec and vox-512 alike (scripts/savedmodel_ops.py); 2**22 (16 MiB of float32) is
# 60x that.
SAVED_MODEL_MAX_CONSTANT = 1 << 22
# fingerprint.pb: five hashes and a version, 56-58 bytes in ours.
FINGERPRINT_MAX_BYTES = 4096
# variables/variables.index: one entry per variable, vox-256's generator 5.3 KB.
CHECKPOINT_INDEX_MAX_BYTES = 1 << 20
# The checkpoint's object graph (a string tensor in the data file): ~75 bytes an object,
# the tiny detector's 5.5 KB.
CHECKPOINT_OBJECT_GRAPH_MAX_BYTES = 4 << 20
# Message nesting in an .onnx file (graphs inside node attributes, If/Loop bodies): ours
# have none; 16 bounds the reader's recursion.
ONNX_MAX_NESTING = 16

# --- checkpoints (fomm_convert.checkpoint) -------------------------------------------------
# Measured: the two networks of every shipped config (specs/*.yaml and the 512 config)
# hold 271 tensors, 228 MiB in all; the largest is 36 MiB (dense motion's hourglass
# down_blocks.4 conv, 1024x1024x3x3 float32). A full training checkpoint (networks,
# discriminator, Adam moments) pickles its object in ~120 KiB.
CHECKPOINT_MAX_TENSOR_BYTES = 256 << 20  # 7x the largest weight: room for wider configs
CHECKPOINT_MAX_NETWORK_BYTES = 1 << 30  # 4.5x the 228 MiB we copy out of the two networks
# torch.load allocates every storage whole: one larger than all the networks may hold
# cannot be theirs (shared or flattened storages up to that size still pass).
CHECKPOINT_MAX_STORAGE_BYTES = CHECKPOINT_MAX_NETWORK_BYTES
CHECKPOINT_MAX_DIMS = 64  # numpy's NPY_MAXDIMS (numpy >= 2); FOMM's weights have at most 4
# 140x a full checkpoint's; unpickled objects cost up to ~10x the bytes that encode them.
CHECKPOINT_MAX_PICKLE_BYTES = 16 << 20
# A checkpoint's objects nest ~6 deep; CPython hashes a nested tuple by recursing in C
# (a 10^6-deep one, 1 MB of pickle, crashes it): 1000 is Python's own recursion limit.
CHECKPOINT_MAX_PICKLE_DEPTH = 1000
# torch writes zip members uncompressed (1:1) and float weights deflate to ~1.1:1, while
# a bomb of zeros reaches ~1000:1; 20:1 bounds what a small archive makes us inflate.
CHECKPOINT_MAX_ZIP_RATIO = 20
# A member (or archive) inflating to less than this costs too little to matter.
CHECKPOINT_ZIP_RATIO_FLOOR = 1 << 20

# --- animate-many (fomm_convert.many) -----------------------------------------------------
# A jobs file: a job's row is ~100 bytes (three paths and a few options); 64 MiB holds
# half a million of them, more than MAX_JOBS.
JOBS_MAX_BYTES = 64 << 20
# Jobs of one run: a data set of 100000 clips; each holds a few hundred bytes in the driver.
MAX_JOBS = 100_000
# The results file read back by a rerun: two records a job (started, then its end), ~300
# bytes each, plus a reconstruction's per-frame L1 (~20 bytes a frame).
RESULTS_MAX_BYTES = 1 << 30
