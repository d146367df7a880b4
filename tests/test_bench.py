"""The benchmarks users and CI run still run: the GPU-readiness check as its CPU smoke test."""

import os
import subprocess
import sys

from conftest import ROOT, SHARED, need


def test_gpu_check_runs_on_a_cpu_as_a_smoke_test():
    """``bench/gpu_check.py --device cpu --quick``: every section on a CPU, and its verdict."""
    need(SHARED / "reference")
    need(SHARED / "media" / "vlog_720p.mp4")
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device", "cpu", "--quick"],
                            capture_output=True, text=True, timeout=600, cwd=ROOT,
                            env={**os.environ, "MODNET_OFFLINE": "1"})
    out = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    for section in ("1. reference vectors", "2. MODNet alone", "2b. the engine on a 1080p frame", "3. full pipeline",
                    "against the same stages run serially", "4. device compositor", "5. device temporal smoother"):
        assert section in out, out
    assert out.strip().splitlines()[-1] == "gpu_check=ok", out


def test_lag_benchmark_runs_and_compensation_beats_the_stale_matte():
    """``bench/lag.py`` on the first 40 frames of the vlog clip (its cut at frame 34 included):
    the table, the matte count of ``--matte-every 5`` (the cut gets its own matte: 0, 5, ..., 30,
    34, 39; ``--strict``: 0, 5, ..., 35) and the ratio lines; compensation beats the stale matte
    on real footage, weighing in the next matte too (conversions) beats it further, and the
    matte the cut gets lowers the error."""
    need(SHARED / "models" / "selfie_segmentation_landscape.tflite")
    need(SHARED / "media" / "vlog_720p.mp4")
    rows = {}
    for strict in ([], ["--strict"]):
        result = subprocess.run([sys.executable, str(ROOT / "bench" / "lag.py"), "--frames", "40", "--every", "5",
                                 *strict], capture_output=True, text=True, timeout=300, cwd=ROOT,
                                env={**os.environ, "MODNET_OFFLINE": "1"})
        assert result.returncode == 0, result.stderr[-2000:]
        lines = result.stdout.strip().splitlines()
        row = lines[-3].split()
        without, with_, both = float(row[2]), float(row[3]), float(row[4])
        ratio = float(lines[-1].removeprefix("lag_ratio="))
        both_ratio = float(lines[-2].removeprefix("lag_ratio_both_sides="))
        assert 0 < with_ < without and abs(ratio - with_ / without) < 0.01, lines
        assert 0 < both < with_ and abs(both_ratio - both / without) < 0.01, lines  # the next matte helps
        rows[bool(strict)] = row
    assert rows[False][:2] == ["5", "9"] and rows[True][:2] == ["5", "8"], rows
    assert float(rows[False][3]) < float(rows[True][3]), rows


def test_lag_benchmark_flow_options_reach_the_compensator(tmp_path):
    """``--flow-preset``, ``--flow-size`` and ``--finest-scale`` (how far a better flow goes) are the
    flow the warps use, named in the output: a square clip keeps the pixel count asked for."""
    import cv2
    import numpy as np

    clip = tmp_path / "square.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 160))
    for shift in range(8):
        frame = np.full((160, 160, 3), 40, np.uint8)
        cv2.circle(frame, (60 + 4 * shift, 80), 30, (200, 180, 160), -1)
        writer.write(frame)
    writer.release()
    selfie = SHARED / "models" / "selfie_segmentation.onnx"
    need(selfie)
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "lag.py"), "--clip", str(clip), "--every", "4",
                             "--model", "selfie", "--weights", str(selfie), "--flow-preset", "medium",
                             "--flow-size", "96x54", "--finest-scale", "0"], capture_output=True, text=True,
                            timeout=300, cwd=ROOT, env={**os.environ, "MODNET_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "flow: DIS medium, 72x72, finest scale 0" in result.stdout, result.stdout


def test_lag_and_flicker_benchmarks_refuse_bad_inputs_with_a_message(tmp_path):
    """A missing clip, a file with no video frames, a still image (one frame), N = 1, a model file
    that is not one: a message saying what is wrong and a non-zero exit, never a traceback."""
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    image = tmp_path / "one.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(image), np.full((72, 128, 3), 90, np.uint8))
    clip = tmp_path / "three.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 72))
    for level in (60, 90, 120):
        writer.write(np.full((72, 128, 3), level, np.uint8))
    writer.release()
    cases = [
        (["lag.py", "--clip", str(tmp_path / "missing.mp4")], "video not found"),
        (["lag.py", "--clip", str(text)], "reads no video frames"),
        (["lag.py", "--clip", str(image)], "needs at least two"),
        (["lag.py", "--every", "1"], "N must be at least 2"),
        (["lag.py", "--frames", "0"], "must be at least 1"),
        (["flicker.py", "--video", str(tmp_path / "missing.mp4")], "video not found"),
        (["flicker.py", "--frames", "-3"], "must be at least 1"),
        (["flicker.py", "--video", str(image)], "needs at least two"),
        (["lag.py", "--clip", str(clip), "--weights", str(text)], "unsupported model format"),
        (["lag.py", "--every", "abc"], "N must be a whole number, got 'abc'"),
        (["lag.py", "--frames", "x"], "expected a whole number"),
        (["lag.py", "--flow-size", "256"], "the flow size is WIDTHxHEIGHT"),
        (["lag.py", "--flow-size", "8x8"], "at least 16x16"),
        (["lag.py", "--finest-scale", "-1"], "0 (the flow frame itself) to 4"),
        (["lag.py", "--flow-preset", "slow"], "invalid choice"),
        (["gpu_check.py", "--device", "bogus", "--quick"], "runs on cpu, cuda or cuda:N"),
        (["budget.py", "--seconds", "0"], "--seconds must be between 1 and 3600"),
        (["budget.py", "--rates", "2,abc"], "'abc' is not a positive number"),
    ]
    for args, message in cases:
        result = subprocess.run([sys.executable, str(ROOT / "bench" / args[0]), *args[1:]], capture_output=True,
                                text=True, timeout=300, cwd=ROOT, env={**os.environ, "MODNET_OFFLINE": "1"})
        assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr, \
            (args, result.stderr[-1500:])
