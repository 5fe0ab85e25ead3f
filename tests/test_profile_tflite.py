"""scripts/profile_tflite.py (issue 23): the bench's frame calls timed for each TFLite variant
in turns, and LiteRT's op profiler per model."""
from __future__ import annotations

import textwrap

from conftest import ROOT
from test_hostile_bundle import python


def test_the_profiler_times_every_op_of_both_kinds(tiny_bundle):
    """On the session's tiny bundle: both kinds' frames bit-identical, every model profiled
    op by op (its ops in XNNPACK partitions, the summed op time positive), and a model made
    without profiling refuses to give a summary (one LiteRtError line)."""
    result = python(str(ROOT / "scripts" / "profile_tflite.py"), "--bundle", tiny_bundle,
                    "--threads", "1", "--rounds", "2", cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split(" | ") for line in result.stdout.splitlines() if line.startswith("| tflite")]
    frames = {r[0][2:]: r for r in rows if len(r) == 5}
    assert frames.keys() == {"tflite", "tflite-static"}
    assert all(r[4] == "none (bit-identical) |" for r in frames.values()), frames
    models = [r for r in rows if len(r) == 7]
    assert {(r[0][2:], r[1]) for r in models} == {
        (v, m) for v in frames for m in ("kp_detector", "process_kp_driving", "generator")}
    for variant, model, ops, partitions, op_ms, *_ in models:
        assert int(ops) > 10 and int(partitions) >= 1 and float(op_ms) > 0, (variant, model)
    timed = python(str(ROOT / "scripts" / "profile_tflite.py"), "--bundle", tiny_bundle,
                   "--threads", "2", "--rounds", "2", "--no-profile", cwd=ROOT)
    assert timed.returncode == 0, timed.stderr[-3000:]
    rows = [line.split(" | ") for line in timed.stdout.splitlines() if line.startswith("| tflite")]
    assert sorted(len(r) for r in rows) == [5, 5], rows  # the frames, no profile
    script = textwrap.dedent("""
        import sys
        from fomm_convert.runtime.litert_c import CompiledModel, LiteRtError
        try:
            CompiledModel(sys.argv[1], 1).profile_summary()
        except LiteRtError as exc:
            print(exc)
        """)
    refused = python("-c", script, tiny_bundle / "tflite" / "kp_detector.tflite", cwd=ROOT)
    assert refused.stdout.strip() == ("kp_detector.tflite: no profiler (compiled without "
                                      "profile=True)"), refused
