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
    # --delay: as live mode shows them; "both sides" (conversions) does not apply, lag_ratio is last
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "lag.py"), "--frames", "40", "--every", "5",
                             "--delay", "4"], capture_output=True, text=True, timeout=300, cwd=ROOT,
                            env={**os.environ, "MODNET_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    row = lines[-2].split()
    # ready before the end: 0, 5, ..., 30, then the cut's (34, started as 30's was ready); not 39's
    assert row[:2] == ["5", "8"] and row[4] == "nan" and "lag_ratio_both_sides" not in result.stdout, lines
    assert 0 < float(row[3]) < float(row[2]), lines
    assert abs(float(lines[-1].removeprefix("lag_ratio=")) - float(row[3]) / float(row[2])) < 0.01, lines


def test_lag_benchmark_delay_shows_each_frame_with_the_newest_ready_matte():
    """``--delay D`` (live mode, where a matte is ready D frames after its frame): a textured disc
    moving 2 px a frame, its own mask the reference. Every frame from the first ready matte on is
    cut with the newest matte made D or more frames before it (the inferred frames too), and
    moving that matte onto the frame follows the disc: well below the stale matte's error (not
    all the way: the strip the disc uncovers keeps the old matte, where the flow is unreliable)."""
    import cv2
    import numpy as np

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from lag import Reuse, errors
    finally:
        sys.path.remove(str(ROOT / "bench"))
    rng = np.random.default_rng(0)
    room, skin = (cv2.normalize(cv2.GaussianBlur(rng.integers(0, 256, (144, 256, 3), dtype=np.uint8), (0, 0), 2),
                                None, 0, 255, cv2.NORM_MINMAX) for _ in range(2))
    run, used = Reuse(4, delay=3), []
    for t in range(16):
        mask = np.zeros((144, 256), np.uint8)
        cv2.circle(mask, (70 + 2 * t, 72), 40, 1, -1)
        frame = np.where(mask[..., None] > 0, np.roll(skin, 2 * t, axis=1), room)
        run.push(t, frame, mask.astype(np.float32))
        used.append(None if run.key is None else run.key[0])
    assert used == [None] * 3 + [0] * 4 + [4] * 4 + [8] * 4 + [12], used  # ready 3 frames after its frame
    result = run.result()
    assert len(run.rows["without"]) == 13 and result["mattes"] == 4 and not run.rows["both"]
    assert result["with"][0] < 0.7 * result["without"][0], result
    # the newest ready matte as is: exactly the reference of its own frame, D to D + 3 frames back
    disc = np.zeros((144, 256), np.float32)
    cv2.circle(disc, (70, 72), 40, 1, -1)
    later = np.zeros((144, 256), np.float32)
    cv2.circle(later, (70 + 6, 72), 40, 1, -1)
    assert errors(disc, later) == run.rows["without"][0]
    # one inference thread: a cut (frame 5) while frame 4's matte is being made waits for it, and
    # its own matte is made from the first frame after (7), ready 3 frames later
    run, used = Reuse(4, delay=3), []
    for t in range(16):
        frame = (room // 4 if t < 5 else 200 + room // 5).astype(np.uint8)  # a dark room, then a bright one
        run.push(t, frame, np.zeros((144, 256), np.float32))
        used.append(None if run.key is None else run.key[0])
    assert used == [None] * 3 + [0] * 4 + [4] * 3 + [7] * 4 + [11] * 2, used
    assert run.mattes == 4


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
        (["lag.py", "--delay", "-1"], "must be at least 0, got -1"),
        (["lag.py", "--delay", "2.5"], "expected a whole number of frames, got '2.5'"),
        (["lag.py", "--delay", "8", "--every", "12", "--every", "6"], "one inference thread makes a matte every 8"),
        (["gpu_check.py", "--device", "bogus", "--quick"], "runs on cpu, cuda or cuda:N"),
        (["budget.py", "--seconds", "0"], "--seconds must be between 1 and 3600"),
        (["budget.py", "--rates", "2,abc"], "'abc' is not a positive number"),
        (["budget.py", "--rates", "1e9"], "'1e9' is outside what --max-matte-rate takes (0.01 to 1000"),
    ]
    for args, message in cases:
        result = subprocess.run([sys.executable, str(ROOT / "bench" / args[0]), *args[1:]], capture_output=True,
                                text=True, timeout=300, cwd=ROOT, env={**os.environ, "MODNET_OFFLINE": "1"})
        assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr, \
            (args, result.stderr[-1500:])


def test_benchmarks_without_a_checkpoint_say_how_to_give_one(tmp_path):
    """No MODNet checkpoint anywhere: the benchmarks that take ``--weights`` say so; the GPU check,
    which takes none (its reference vectors are the shared checkpoint's), does not offer it."""
    if (ROOT / "weights" / "modnet_webcam_portrait_matting.ckpt").exists():
        import pytest

        pytest.skip("a downloaded webcam checkpoint is found first")
    env = {**os.environ, "MODNET_OFFLINE": "1", "MODNET_SHARED": str(tmp_path / "nothing")}
    for args, offers_flag in ((["gpu_check.py", "--device", "cpu", "--quick"], False), (["engines.py"], True)):
        result = subprocess.run([sys.executable, str(ROOT / "bench" / args[0]), *args[1:]], capture_output=True,
                                text=True, timeout=300, cwd=ROOT, env=env)
        assert result.returncode == 1 and "no MODNet checkpoint" in result.stderr, (args, result.stderr[-1500:])
        assert ("--weights PATH" in result.stderr) == offers_flag, (args, result.stderr[-1500:])


def test_sway_clip_moves_the_person_over_a_still_background(tmp_path):
    """``bench/sway.py``: the clip has the frames and size asked for; the person (the selfie
    segmenter's matte of each frame) is where the sway puts them, a quarter period later
    ``amplitude`` pixels to the side; the background's corner stays put; an existing clip is
    never replaced, and bad values (a picture with nobody in it too) are one line each."""
    import cv2
    import numpy as np

    need(SHARED / "models" / "selfie_segmentation_landscape.tflite")
    need(SHARED / "media" / "portrait_720p.jpg")
    clip = tmp_path / "sway.mp4"
    cmd = [sys.executable, str(ROOT / "bench" / "sway.py"), str(SHARED / "media" / "portrait_720p.jpg"), str(clip),
           "--size", "320x180", "--frames", "9", "--period", "16", "--amplitude", "40"]
    env = {**os.environ, "MODNET_OFFLINE": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sway.mp4"]  # no part file left
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while (ok_frame := cap.read())[0]:
        frames.append(ok_frame[1])
    assert len(frames) == 9 and frames[0].shape == (180, 320, 3)
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from common import SELFIE_TFLITE, engine_for

        engine = engine_for("selfie", SELFIE_TFLITE)
    finally:
        sys.path.remove(str(ROOT / "bench"))

    def centre_x(frame):
        alpha = cv2.resize(engine.infer(frame), (320, 180), interpolation=cv2.INTER_LINEAR)
        return float((alpha.sum(axis=0) * np.arange(320)).sum() / alpha.sum())

    moved = centre_x(frames[4]) - centre_x(frames[0])  # t = 4 is a quarter of the period: +40 px
    assert 30 < moved < 50, moved
    assert np.abs(frames[0][:20, :20].astype(int) - frames[8][:20, :20]).mean() < 6  # the background at rest
    before = clip.read_bytes()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert again.returncode == 2 and "exists; give a new name" in again.stderr and clip.read_bytes() == before
    portrait, nobody = cmd[2], str(SHARED / "media" / "background_night_sky.jpg")
    cases = ((portrait, ["--size", "321x180"], "must be even"),
             (portrait, ["--period", "1"], "--period must be between 2 and"),
             (portrait, ["--frames", "0"], "must be at least 1"),
             (portrait, ["--amplitude", "nan"], "--amplitude must be between 0"),
             (portrait, ["--background", str(tmp_path / "none.jpg")], "does not exist"),
             (nobody, ["--size", "320x180", "--frames", "2"], "no person found"))
    for picture, args, message in cases:
        bad = subprocess.run([*cmd[:2], picture, str(tmp_path / "new.mp4"), *args], capture_output=True, text=True,
                             timeout=300, cwd=ROOT, env=env)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, (args, bad.stderr)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["sway.mp4"]  # nothing written, nothing left
