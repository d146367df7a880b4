"""The live pipeline, headless: modes, latency, recording, hotkeys, lifecycle, failures."""

import os
import random
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import ROOT
from fakes import CollectSink, IndexEngine, SlowEngine, SyntheticSource, make_pipeline, wait_until
from compositing import BackgroundLibrary, ColorBackground, Compositor
from compositing.backgrounds import BlurBackground
from matting import make_smoother
from realtime import Pipeline, PipelineError, PipelineOptions
from realtime.errors import SinkError
from realtime.sinks import NullSink, RecorderSink
from realtime.sources import VideoSource


class Spy(NullSink):
    """Keeps each output's frame index (B channel) and its matte's index (alpha)."""

    def __init__(self):
        super().__init__()
        self.pairs = []


def spy_emit(pipeline):
    pairs = []
    original = pipeline._emit

    def emit(packet, alpha):
        pairs.append((int(packet.image[0, 0, 0]), int(round(float(alpha[0, 0]) * 1000)) - 1))
        original(packet, alpha)

    pipeline._emit = emit
    return pairs


def test_sync_every_output_frame_has_its_own_matte():
    pipeline = make_pipeline(SyntheticSource(frames=40, fps=60), IndexEngine(delay=0.03), mode="sync")
    pairs = spy_emit(pipeline)
    pipeline.run()
    assert len(pairs) >= 10
    assert all(frame == matte for frame, matte in pairs)
    # inference (~30 fps) is slower than the source (60 fps): stale frames were dropped, not queued
    assert len(pairs) < 40


def test_async_outputs_at_source_rate_with_slower_inference():
    source = SyntheticSource(fps=30)
    engine = IndexEngine(delay=0.15)  # ~6 mattes per second
    pipeline = make_pipeline(source, engine, mode="async", duration=3.0)
    pairs = spy_emit(pipeline)
    stats = pipeline.run()
    rate = stats.outputs / 3.0
    assert rate >= 0.9 * 30, f"output {rate:.1f} fps for a 30 fps source"
    assert engine.calls <= 25
    assert any(frame != matte for frame, matte in pairs)  # newest matte, not the frame's own


def test_latency_stays_bounded_in_sync_mode():
    engine = IndexEngine(delay=0.05)
    pipeline = make_pipeline(SyntheticSource(fps=60), engine, mode="sync", duration=3.0)
    stats = pipeline.run()
    latencies = list(stats.latency_ms)
    assert len(latencies) > 30
    first, last = np.median(latencies[5:15]), np.median(latencies[-10:])
    # one inference plus at most a frame interval and scheduling noise, and no growth
    assert last < 50 + 2 * 17 + 60, f"latency {last:.0f} ms"
    assert last < first + 40


def test_recording_of_vlog_has_every_frame_and_size(small_engine, vlog_path, tmp_path):
    out = tmp_path / "out.mp4"
    source = VideoSource(str(vlog_path))
    source.open()
    first = source.read()
    recorder = RecorderSink(str(out), (1280, 720), source.fps)
    pipeline = make_pipeline(source, SlowEngine(small_engine, 0.0), mode="async", sinks=[recorder],
                             first_frame=first)
    pipeline.run()
    cap = cv2.VideoCapture(str(out))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (1280, 720)
    assert abs(count - 122) <= 3, count
    ok, frame = cap.read()
    assert ok and frame.shape == (720, 1280, 3)


def test_async_with_real_model_keeps_near_source_rate(small_engine, vlog_path):
    """vlog at 24 fps, MODNet made slower than the clip (>= 120 ms per matte)."""
    source = VideoSource(str(vlog_path))
    source.open()
    first = source.read()
    engine = SlowEngine(small_engine, 0.12)
    pipeline = make_pipeline(source, engine, mode="async", first_frame=first, duration=4.0)
    stats = pipeline.run()
    elapsed = time.monotonic() - stats.started
    # the output rate from the first frame out (the model's warm-up before it is not the loop's)
    assert stats.steady_fps() >= 0.85 * source.fps, (stats.steady_fps(), stats.outputs, elapsed)
    assert stats.mattes.count / elapsed < source.fps / 2


def test_hotkey_actions(tmp_path):
    pipeline = make_pipeline(SyntheticSource(frames=5), IndexEngine(), snapshot_dir=str(tmp_path))
    library = pipeline.library
    names = library.names
    start = library.index
    pipeline.apply("next")
    assert library.index == (start + 1) % len(names)
    pipeline.apply("previous")
    assert library.index == start
    pipeline.apply("pick", 2)
    assert library.index == 2
    pipeline.apply("blur")
    assert library.current_name == "blur"
    pipeline.apply("blur")
    assert library.index == 2
    pipeline.apply("matte")
    assert pipeline.state.view == "matte"
    pipeline.apply("original")
    assert pipeline.state.view == "original"
    pipeline.apply("original")
    assert pipeline.state.view == "composite"
    mirror = pipeline.state.mirror
    pipeline.apply("mirror")
    assert pipeline.state.mirror != mirror
    pipeline.apply("pause")
    assert pipeline.state.paused
    pipeline.apply("help")
    assert pipeline.state.show_help
    pipeline._last_output = np.zeros((8, 8, 3), np.uint8)
    pipeline.apply("snapshot")
    assert len(list(tmp_path.glob("snapshot_*.png"))) == 1
    pipeline.apply("quit")
    assert pipeline.stop_event.is_set()


def test_a_snapshot_that_cannot_be_saved_says_why(tmp_path, caplog):
    """The s key logs why (the run goes on); the Live API got "no frame yet" for a full disk."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    pipeline = make_pipeline(SyntheticSource(frames=5), IndexEngine(), snapshot_dir=str(blocker / "shots"))
    pipeline._last_output = np.zeros((8, 8, 3), np.uint8)
    with caplog.at_level("WARNING"):
        pipeline.apply("snapshot")
    assert "could not create snapshot folder" in caplog.text
    with pytest.raises(SinkError, match="could not create snapshot folder"):
        pipeline.snapshot(quiet=False)
    assert not list(tmp_path.rglob("snapshot_*"))


@pytest.mark.parametrize("view", ["matte", "original", "composite"])
def test_matte_and_original_views_are_what_sinks_get(view):
    """Over a white background: the composite is white, the matte near black, the original the frame."""
    sink = NullSink()
    pipeline = make_pipeline(SyntheticSource(frames=3), IndexEngine(), sinks=[sink], mode="sync",
                             background=ColorBackground((255, 255, 255), name="white"))
    if view != "composite":
        pipeline.apply(view)
    pipeline.run()
    assert sink.last.shape == (64, 96, 3)
    if view == "matte":  # gray image of the alpha ((index+1)/1000 -> 0..1 grey levels)
        assert sink.last.max() <= 2
    elif view == "original":  # the source's frame: B = index, G = 128, R = 0
        assert (sink.last[:, :, 1] == 128).all() and (sink.last[:, :, 2] == 0).all()
    else:
        assert sink.last.min() >= 250


def test_stop_joins_everything_quickly():
    pipeline = make_pipeline(SyntheticSource(fps=30), IndexEngine(delay=0.3), mode="sync")
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    wait_until(lambda: pipeline.stats.outputs >= 2, what="the pipeline to run")
    start = time.monotonic()
    pipeline.stop("test")
    runner.join(5)
    assert not runner.is_alive()
    assert time.monotonic() - start < 2.0
    assert not pipeline.capture.is_alive() and not pipeline.inference.is_alive()
    assert pipeline.source.closed


def test_worker_exception_ends_run_with_clear_error_and_finalised_recording(tmp_path):
    out = tmp_path / "crash.mp4"
    recorder = RecorderSink(str(out), (96, 64), 30)
    source = SyntheticSource(fps=30)
    pipeline = make_pipeline(source, IndexEngine(fail_at=10), mode="sync", sinks=[recorder])
    with pytest.raises(PipelineError, match="inference thread failed: RuntimeError: simulated inference crash"):
        pipeline.run()
    assert source.closed
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened() and cap.read()[0]


def test_capture_exception_is_reported():
    class Broken(SyntheticSource):
        def read(self):
            if self.reads > 3:
                raise ValueError("driver bug")
            return super().read()

    pipeline = make_pipeline(Broken(fps=30, live=False), IndexEngine(), mode="sync", reconnect=False)
    with pytest.raises(PipelineError, match="capture thread failed: ValueError: driver bug"):
        pipeline.run()


def _run_cli(*args, **kw):
    return subprocess.Popen([sys.executable, str(ROOT / "live.py"), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "MODNET_OFFLINE": "1"}, **kw)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_signal_mid_run_stops_quickly_and_leaves_playable_recording(reference_ckpt, vlog_path, tmp_path, sig):
    out = tmp_path / "rec.mp4"
    # Ctrl-C reaches live.py as from a terminal even when these tests run as a background job, whose
    # processes start with SIGINT ignored (and pass that on): a handler here is default in the child.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = _run_cli("--source", vlog_path, "--loop", "--weights", reference_ckpt, "--no-window",
                        "--record", out, "--inference-size", "64")
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 50_000):
        time.sleep(0.2)
    time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=10)
    assert time.monotonic() - sent < 2.0
    stderr = proc.stderr.read()
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) > 10
    ok, frame = cap.read()
    assert ok and frame.shape == (720, 1280, 3)


def test_ctrl_c_again_while_the_run_ends_still_exits_0(reference_ckpt, vlog_path, tmp_path):
    """A second Ctrl-C soon after the first (as people press it) landed after the run had stopped,
    while the program finished: it was killed (exit 130 in a shell) instead of exiting 0."""
    out = tmp_path / "rec.mp4"
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # (see the test above)
    log = (tmp_path / "stderr.txt").open("w+")  # (a pipe nobody reads could fill up and stall it)
    try:
        proc = subprocess.Popen([sys.executable, str(ROOT / "live.py"), "--source", str(vlog_path), "--loop",
                                 "--weights", str(reference_ckpt), "--no-window", "--record", str(out),
                                 "--inference-size", "64", "--stats"], stdout=subprocess.DEVNULL, stderr=log,
                                text=True, env={**os.environ, "MODNET_OFFLINE": "1"})
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 50_000):
        time.sleep(0.2)
    try:
        proc.send_signal(signal.SIGINT)
        end = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < end:  # Ctrl-C pressed again and again until it ends
            time.sleep(0.03)
            try:
                proc.send_signal(signal.SIGINT)
            except ProcessLookupError:
                break
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log.seek(0)
    stderr = log.read()
    log.close()
    assert proc.returncode == 0 and "Traceback" not in stderr, (proc.returncode, stderr)
    assert stderr.count("stopping: finishing the recording") <= 1, stderr
    assert "latency p50" in stderr  # the summary was not cut short either
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) > 10


def test_cli_done_when_command(reference_ckpt, vlog_path, tmp_path):
    out = tmp_path / "out.mp4"
    proc = _run_cli("--source", vlog_path, "--weights", reference_ckpt, "--no-window", "--record", out,
                    "--stats", "--inference-size", "128")
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "latency p50" in stderr and "p95" in stderr
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (1280, 720)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) >= 115


def test_lossless_with_two_workers_keeps_order_and_every_frame():
    """Several inference workers finish out of order; the render loop still gets frames in capture order."""
    import random

    class JitteryEngine(IndexEngine):
        thread_safe = True

        def infer(self, frame):
            time.sleep(random.uniform(0.0, 0.03))  # later frames often finish first
            return super().infer(frame)

    for smoothing in ("none", "ofd+ema"):
        source = SyntheticSource(frames=60, fps=1000)
        pipeline = make_pipeline(source, JitteryEngine(), mode="sync", lossless=True, inference_workers=3,
                                 smoothing=smoothing)
        pairs = spy_emit(pipeline)
        pipeline.run()
        assert [f for f, _ in pairs] == list(range(60))  # every frame, in order
        if smoothing == "none":
            assert all(frame == matte for frame, matte in pairs)  # each with its own matte


def test_several_workers_need_a_thread_safe_engine():
    with pytest.raises(ValueError, match="cannot run several inference workers"):
        make_pipeline(SyntheticSource(frames=3), IndexEngine(), mode="sync", inference_workers=2)


class JitteryEngine(IndexEngine):
    """Thread-safe, and finishes after a random short while: later frames often finish first."""

    thread_safe = True

    def infer(self, frame):
        time.sleep(random.uniform(0.0, 0.02))
        return super().infer(frame)


@pytest.mark.parametrize("workers", [1, 3])
def test_matte_every_n_in_every_frame_mode_is_deterministic(workers):
    """--every-frame --matte-every 3: frames 0, 3, 6, ... are inferred; every other frame gets the
    newest earlier matte, in capture order, whatever the workers' timing."""
    engine = JitteryEngine()
    pipeline = make_pipeline(SyntheticSource(frames=31, fps=1000), engine, mode="sync", lossless=True,
                             inference_workers=workers, matte_every=3, motion_comp=False)
    pairs = spy_emit(pipeline)
    pipeline.run()
    assert pairs == [(t, 3 * (t // 3)) for t in range(31)]
    assert engine.calls == 11 and pipeline.stats.mattes.count == 11


@pytest.mark.parametrize("workers", [1, 3])
def test_matte_every_n_infers_a_cut_at_once_in_every_frame_mode(workers):
    """--every-frame --matte-every 3 on a clip cut before frame 7: frame 7 gets its own matte
    (not frame 6's, of the other scene), and the count restarts from it, whatever the workers."""

    class Cut(SyntheticSource):
        def read(self):
            frame = super().read()
            if frame is not None and frame[0, 0, 0] >= 7:
                frame[:, :, 1:] = 250  # another scene: the picture changes everywhere
            return frame

    class Safe(IndexEngine):
        thread_safe = True

    engine = Safe()
    pipeline = make_pipeline(Cut(frames=20, fps=1000), engine, mode="sync", lossless=True,
                             inference_workers=workers, matte_every=3, motion_comp=False)
    pairs = spy_emit(pipeline)
    pipeline.run()
    keys = [0, 0, 0, 3, 3, 3, 6, 7, 7, 7, 10, 10, 10, 13, 13, 13, 16, 16, 16, 19]
    assert pairs == list(enumerate(keys)) and engine.calls == 8


@pytest.mark.parametrize("workers", [1, 3])
def test_a_conversion_weighs_the_mattes_on_both_sides_of_a_skipped_frame(workers):
    """--every-frame --matte-every 3 with motion compensation: a frame between two mattes gets
    both, weighed by nearness (the frames here do not move, so the warps leave the mattes as they
    are, and the weighed value names the frame itself); the frames after the last matte keep it
    alone. In capture order, whatever the workers' timing."""
    engine = JitteryEngine()
    pipeline = make_pipeline(SyntheticSource(frames=32, fps=1000), engine, mode="sync", lossless=True,
                             inference_workers=workers, matte_every=3)
    pairs = spy_emit(pipeline)
    pipeline.run()
    assert pairs == [(t, t) for t in range(31)] + [(31, 30)]
    assert engine.calls == 11


def test_a_conversion_does_not_weigh_in_the_matte_of_a_new_scene():
    """A cut before frame 8 (--matte-every 3): frame 8 gets its own matte at once, and frame 7,
    before the cut, keeps frame 6's alone: a matte of another scene is no use on it."""

    class Cut(SyntheticSource):
        def read(self):
            frame = super().read()
            if frame is not None and frame[0, 0, 0] >= 8:
                frame[:, :, 1:] = 250
            return frame

    pipeline = make_pipeline(Cut(frames=15, fps=1000), IndexEngine(), mode="sync", lossless=True, matte_every=3)
    pairs = spy_emit(pipeline)
    pipeline.run()
    assert pairs == [(t, t) for t in range(7)] + [(7, 6)] + [(t, t) for t in range(8, 15)]


def test_a_conversion_holds_a_bounded_number_of_frames_for_the_next_matte(monkeypatch):
    """At most HOLD_BYTES of frames wait for the next matte: beyond that the oldest goes on with
    the earlier matte alone (a long --matte-every on big frames must not fill the memory)."""
    import realtime.inference as inference

    monkeypatch.setattr(inference, "HOLD_BYTES", 2 * 64 * 96 * 3)  # two of these frames
    pipeline = make_pipeline(SyntheticSource(frames=13, fps=1000), IndexEngine(), mode="sync", lossless=True,
                             matte_every=6)
    pairs = spy_emit(pipeline)
    pipeline.run()
    assert pairs == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 4), (5, 5), (6, 6), (7, 6), (8, 6), (9, 6),
                     (10, 10), (11, 11), (12, 12)]


def test_a_live_sync_run_never_waits_for_a_later_matte():
    """Live (not a conversion), sync mode with --matte-every: a skipped frame goes out with the
    earlier matte at once; waiting for the next one would add latency. (The workers are driven
    through one-deep lossless hand-offs here, so no frame is dropped and the check is exact.)"""
    from matting.motion import MotionCompensator
    from realtime.capture import FramePacket
    from realtime.inference import InferenceWorkers, MatteCadence
    from realtime.slots import LatestSlot, SlotClosed
    from realtime.stats import RunStats

    live = make_pipeline(SyntheticSource(frames=5), IndexEngine(), mode="sync", matte_every=4)
    conversion = make_pipeline(SyntheticSource(frames=5), IndexEngine(), mode="sync", lossless=True, matte_every=4)
    assert live.inference.lookahead is False and conversion.inference.lookahead is True
    frames, mattes, stop = LatestSlot(lossless=True), LatestSlot(lossless=True), threading.Event()
    workers = InferenceWorkers(IndexEngine(), make_smoother("none"), frames, mattes, stop, RunStats(),
                               cadence=MatteCadence(4), reuse=True, motion=MotionCompensator(), lookahead=False)
    workers.start()
    source, got = SyntheticSource(frames=10), []
    for index in range(10):
        frames.put(FramePacket(index, source.read(), float(index)))
        _, result = mattes.get_newer(len(got), timeout=10)  # each matte before the next frame is sent
        got.append((result.packet.index, int(round(float(result.alpha[0, 0]) * 1000)) - 1))
    frames.close()
    with pytest.raises(SlotClosed):
        mattes.get_newer(len(got))
    workers.join(5)
    assert got == [(t, 4 * (t // 4)) for t in range(10)]


def test_an_error_while_the_last_frames_are_released_fails_the_run(monkeypatch):
    """The frames held for a later matte are released at the end of the file; an error there
    ended the inference thread with a traceback, and the run exited 0 with those frames missing."""
    from matting.motion import MotionCompensator

    real = MotionCompensator.between

    def failing(self, frame, index, earlier, later=None):
        if later is None:
            raise RuntimeError("simulated failure at the end of the file")
        return real(self, frame, index, earlier, later)

    monkeypatch.setattr(MotionCompensator, "between", failing)
    pipeline = make_pipeline(SyntheticSource(frames=13, fps=1000), IndexEngine(), mode="sync", lossless=True,
                             matte_every=5)
    with pytest.raises(PipelineError, match="simulated failure at the end of the file"):
        pipeline.run()


def test_the_status_lines_capture_rate_is_recent_like_the_output_rate_beside_it():
    """The --stats line and the web panel show capture fps beside the output's 2-s rate: both
    recent, so a slow start (here a 1-s first matte) does not make capture look slower than output."""
    import time as _time

    class SlowFirst(IndexEngine):
        def infer(self, frame):
            if self.calls == 0:
                _time.sleep(1.0)
            return super().infer(frame)

    source = SyntheticSource(fps=40)
    pipeline = make_pipeline(source, SlowFirst(), mode="async", duration=4.0, first_frame=source.read())
    pipeline.run()
    now = _time.monotonic()
    overall = pipeline.capture.frames_read / (now - pipeline.stats.started)
    assert overall < 36  # what the line showed: frames over the time since start, start-up included
    assert 36 < pipeline.capture_rate(now) < 44
    assert abs(pipeline.capture_rate(now) - pipeline.stats.output.rate(now)) < 4


def test_max_matte_rate_caps_inference_not_output():
    source = SyntheticSource(fps=60)
    engine = IndexEngine()
    pipeline = make_pipeline(source, engine, mode="async", duration=3.0, max_matte_rate=4.0)
    stats = pipeline.run()
    elapsed = time.monotonic() - stats.started
    assert engine.calls <= 4.0 * elapsed + 2
    assert stats.outputs >= 0.5 * 60 * elapsed  # the output keeps (near) the camera's rate


def test_failure_of_the_first_matte_still_cleans_up(tmp_path):
    """The first matte is computed before the threads start: its failure must close everything too."""
    out = tmp_path / "first.mp4"
    recorder = RecorderSink(str(out), (96, 64), 30)
    source = SyntheticSource(fps=30)
    first = source.read()
    pipeline = make_pipeline(source, IndexEngine(fail_at=1), mode="async", sinks=[recorder], first_frame=first)
    with pytest.raises(PipelineError, match="simulated inference crash"):
        pipeline.run()
    assert source.closed and recorder._writer is None


def test_device_resident_alpha_path_matches_the_host_path(small_engine, vlog_path):
    """The GPU path (model -> device smoother -> device compositor, the alpha a tensor throughout)
    run on a CPU device: the compositor only ever gets tensors, and every output frame equals the
    host path's (numpy alpha, host smoother, CPU compositor) to within a grey level."""
    torch = pytest.importorskip("torch")
    from compositing.gpu_compositor import TorchCompositor

    class Watched(TorchCompositor):
        kinds: set = set()

        def composite(self, frame, alpha, background, now=None, rgba=False):
            Watched.kinds.add(type(alpha).__name__)
            return super().composite(frame, alpha, background, now=now, rgba=rgba)

    outputs = []
    for device_alpha in (False, True):
        source = VideoSource(str(vlog_path), pace=False)  # unpaced: both runs see the same frames
        source.open()
        first = source.read()
        sink = CollectSink()
        compositor = Watched("cpu") if device_alpha else Compositor()
        # blur: the device compositor hands it to the CPU one, which takes the tensor to the host
        library = BackgroundLibrary(None, initial=BlurBackground(12))
        pipeline = Pipeline(source, small_engine, make_smoother("ofd+ema", device="cpu" if device_alpha else None),
                            compositor, library, [sink],
                            options=PipelineOptions(mode="sync", lossless=True, terminal_keys=False, max_frames=8,
                                                    device_alpha=device_alpha), first_frame=first)
        pipeline.run()
        outputs.append(sink.frames)
    host, device = outputs
    assert len(device) == len(host) >= 7
    assert Watched.kinds == {"Tensor"}
    for a, b in zip(host, device):
        assert np.abs(a.astype(int) - b).max() <= 1
    alpha = small_engine.infer_timed(first, on_device=True)[0]
    assert torch.is_tensor(alpha)
    pipeline.state.view = "matte"  # the matte view (hotkey m) draws a device alpha too
    assert pipeline._render(first, alpha, 0.0).shape == first.shape


def test_stats_summary_gives_steady_fps_and_cpu_from_the_first_output():
    """The --stats summary's steady figures leave out start-up: a 30-fps source gives about 30."""
    pipeline = make_pipeline(SyntheticSource(fps=30.0), IndexEngine(), mode="async", duration=1.5)
    stats = pipeline.run()
    line = stats.summary(pipeline.capture.frames_read)
    steady = line.split("steady (from the first output): ")[1]
    fps, cpu = float(steady.split(" fps")[0]), float(steady.split("cpu ")[1].split(" cores")[0])
    assert 25 <= fps <= 32 and 0 < cpu < 2.5, line
    stages = stats.stage_line()  # printed after it: each stage's median, in the order a frame meets them
    names = [part.split()[0] for part in stages.removeprefix("stages, median ms: ").split(", ")]
    order = ["capture", "flow", "preprocess", "inference", "smoothing", "motion", "composite", "sink"]
    assert {"capture", "flow", "inference", "composite", "sink"} <= set(names)
    assert names == [n for n in order if n in names]
    from realtime.stats import RunStats

    made = RunStats()
    for ms in (1.0, 2.0, 90.0):
        made.stage("composite", ms / 1000)
    assert made.stage_line() == "stages, median ms: composite 2.00"  # the median, not the mean
    assert all(float(part.split()[1]) >= 0 for part in stages.split(": ")[1].split(", ")), stages
    # a run of a frame or two has no steady rate: it says so instead of printing nan (or 229 fps)
    short = make_pipeline(SyntheticSource(fps=30.0), IndexEngine(), mode="sync", max_frames=1)
    line = short.run().summary(short.capture.frames_read)
    assert line.startswith("1 frame in ") and "nan" not in line and line.endswith("steady: too few frames to tell")


def test_figures_not_measured_yet_read_as_a_dash_not_nan():
    """In the first second (--stats-interval 0.5) the line read "cpu nan cores", the HUD "cpu nan"."""
    from realtime.controls import ViewState
    from realtime.overlay import hud_lines
    from realtime.stats import RunStats

    fresh = RunStats()
    line = fresh.line(0.0, time.monotonic())
    assert "nan" not in line and "cpu - cores" in line and "latency p50 - ms" in line, line
    hud = hud_lines(fresh, "blur", ViewState(), time.monotonic())[0]
    assert "nan" not in hud and hud.endswith("cpu - cores"), hud
    summary = fresh.summary(0)  # a run that ended before any matte or output
    assert "nan" not in summary and "inference p50 - ms" in summary and "latency p50 - ms" in summary, summary


def test_rate_meter_reads_slow_rates_and_decays_when_events_stop():
    """The HUD's mattes/s: a still scene refreshes its matte once every 2 s, which a 2-s window
    alone read as 0.0 ("is the model dead?"); fast rates still follow changes within the window,
    and a rate that stops falls instead of freezing at its last value."""
    from realtime.stats import RateMeter
    slow = RateMeter()
    for i in range(10):
        slow.tick(i * 2.0)
    assert all(abs(slow.rate(18.0 + d) - 0.5) < 1e-9 for d in (0.0, 1.0, 1.99))
    assert slow.rate(23.0) < 0.25 and slow.rate(28.5) == 0.0  # stopped: decays, then nothing
    fast = RateMeter()
    for i in range(300):
        fast.tick(i / 30)
    assert abs(fast.rate(299 / 30) - 30.0) < 0.01
    for i in range(30):
        fast.tick(10 + i / 10)  # from 30/s down to 10/s: after 2 s the window holds only the new rate
    assert abs(fast.rate(12.9) - 10.0) < 0.01
    assert abs(RateMeter().rate(1.0)) == 0.0


def test_rate_meter_is_read_while_another_thread_ticks():
    """Mattes tick in the inference thread while the HUD (render loop) and the web panel read the
    rate: a read must never trip over a tick ("deque mutated during iteration")."""
    from realtime.stats import RateMeter
    meter, stop, errors = RateMeter(), threading.Event(), []

    def ticker():
        while not stop.is_set():
            meter.tick()

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                assert meter.rate() >= 0.0
            except Exception as error:  # noqa: BLE001  (what the HUD would have died of)
                errors.append(error)
                break
    finally:
        stop.set()
        thread.join()
    assert not errors, errors


def test_a_background_video_follows_the_files_time_when_converting(tmp_path):
    """--every-frame: output frame i shows the background video at i / source fps, however long
    each frame took (the wall clock would make every conversion different)."""
    from compositing.backgrounds import VideoBackground

    colours = [(20 + 50 * k, 100, 200 - 40 * k) for k in range(5)]
    clip = tmp_path / "bg.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for colour in colours:
        writer.write(np.full((64, 96, 3), colour, np.uint8))
    writer.release()
    sink = CollectSink()
    pipeline = make_pipeline(SyntheticSource(frames=20, fps=20.0, live=False), IndexEngine(delay=0.1), mode="sync",
                             sinks=[sink], background=VideoBackground(clip), lossless=True)
    pipeline.run()
    assert len(sink.frames) == 20
    shown = [int(np.argmin([np.abs(frame.reshape(-1, 3).mean(0) - c).sum() for c in colours])) for frame in sink.frames]
    assert shown == [(i // 2) % 5 for i in range(20)], shown


class SlowWriter:
    """Stands in for cv2.VideoWriter: each frame takes ``seconds`` to encode."""

    def __init__(self, seconds, fail_after=None):
        self.seconds, self.fail_after, self.frames, self.threads = seconds, fail_after, [], set()

    def write(self, frame):
        self.threads.add(threading.current_thread().name)
        if self.fail_after is not None and len(self.frames) >= self.fail_after:
            raise OSError("disk full")
        time.sleep(self.seconds)
        self.frames.append(int(frame[0, 0, 0]))

    def release(self):
        pass


def test_live_recording_encodes_off_the_render_loop_and_keeps_real_time(tmp_path):
    """An encoder slower than the camera neither delays the caller nor stretches the file: it
    takes the newest frame each time and repeats it for the time that passed."""
    recorder = RecorderSink(str(tmp_path / "r.mp4"), (96, 64), 30)
    recorder._writer.release()
    recorder._writer = slow = SlowWriter(0.05)  # 20 frames a second for a 30-fps recording
    start, longest = time.monotonic(), 0.0
    for i in range(45):  # 1.5 s of a 30-fps camera
        frame = np.full((64, 96, 3), i, np.uint8)
        t = time.monotonic()
        recorder.send(frame, start + i / 30)
        longest = max(longest, time.monotonic() - t)
        frame[:] = 255  # the render loop reuses its buffer: the recording must not change
        time.sleep(max(0.0, start + (i + 1) / 30 - time.monotonic()))
    recorder.close()
    assert longest < 0.04, longest  # (encoding in the caller took 50 ms a frame)
    assert slow.threads == {"recorder"} and 255 not in slow.frames
    assert 44 <= len(slow.frames) <= 46 and slow.frames == sorted(slow.frames)  # 1.5 s at 30 fps, in order
    assert slow.frames[-1] == 44  # the last frame is written at close


def test_a_ctrl_c_as_a_conversion_frame_is_written_still_counts_it(tmp_path):
    """The summary said 194 frames for a conversion's file of 195: Ctrl-C, raised as OpenCV's
    write returned, skipped the count."""
    class InterruptedWriter(SlowWriter):
        def write(self, frame):
            super().write(frame)
            if len(self.frames) == 3:
                raise KeyboardInterrupt  # Ctrl-C, taken as the write returns (as after OpenCV's C call)

    recorder = RecorderSink(str(tmp_path / "r.mp4"), (96, 64), 30, realtime=False)
    recorder._writer.release()
    recorder._writer = writer = InterruptedWriter(0.0)
    with pytest.raises(KeyboardInterrupt):
        for i in range(5):
            recorder.send(np.full((64, 96, 3), i, np.uint8), i / 30)
    assert writer.frames == [0, 1, 2] and recorder.frames_written == 3


def test_a_failing_encoder_ends_the_run_through_the_next_send(tmp_path, caplog):
    recorder = RecorderSink(str(tmp_path / "r.mp4"), (96, 64), 30)
    recorder._writer.release()
    recorder._writer = SlowWriter(0.0, fail_after=3)
    frame = np.zeros((64, 96, 3), np.uint8)
    for i in range(5):
        recorder.send(frame, i / 30)
    wait_until(lambda: recorder._failure is not None, 5, "the encoder's failure")
    with pytest.raises(SinkError, match="disk full"):
        recorder.send(frame, 5 / 30)
    with pytest.raises(SinkError, match="disk full"):
        recorder.close()
    # ... and one after the last send is not lost either: close says so instead of "saved"
    caplog.clear()
    last = RecorderSink(str(tmp_path / "s.mp4"), (96, 64), 30)
    last._writer.release()
    last._writer = SlowWriter(0.0, fail_after=0)
    with caplog.at_level("DEBUG"), pytest.raises(SinkError, match="disk full"):  # (the error is the run's one line)
        last.send(frame, 0.0)
        last.close()
    assert "failed after 0 frames: disk full" in caplog.text and "saved" not in caplog.text


def test_odd_frame_sizes_are_recorded_one_pixel_smaller_with_a_warning(tmp_path, caplog):
    out = tmp_path / "odd.avi"
    with caplog.at_level("WARNING"):
        recorder = RecorderSink(str(out), (97, 65), 10, realtime=False)
    assert "96x64" in caplog.text
    frame = np.zeros((65, 97, 3), np.uint8)
    frame[:, :96] = 200
    for _ in range(3):
        recorder.send(frame, 0.0)
    recorder.close()
    cap = cv2.VideoCapture(str(out))
    ok, first = cap.read()
    assert ok and first.shape == (64, 96, 3) and first.mean() > 190  # the dropped column was the dark one


def test_a_file_cut_off_halfway_ends_with_a_warning_saying_so(tmp_path, caplog):
    rng = np.random.default_rng(0)
    full, half = tmp_path / "full.avi", tmp_path / "half.avi"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(48):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    half.write_bytes(full.read_bytes()[:full.stat().st_size // 2])
    for path, warned in ((full, False), (half, True)):
        caplog.clear()
        source = VideoSource(str(path), pace=False)
        source.open()
        with caplog.at_level("WARNING"):
            read = 0
            while source.read() is not None:
                read += 1
        source.close()
        assert ("could not be decoded" in caplog.text) == warned, (path, caplog.text)
        if warned:
            assert read < 48 and f"after {read} of its 48 frames" in caplog.text
        else:
            assert read == 48


def test_capture_rate_keeps_up_with_output_when_converting_a_file():
    """Converting a file, the capture thread waits for each frame to be taken: its rate is the
    rate frames are handed on (was: ticked with each frame's read time, a wait earlier, so the
    rate read about half of the frames that came out)."""
    arrivals, rates = [], []

    class Sampler(CollectSink):
        def send(self, frame, captured_at):
            arrivals.append(time.monotonic())
            if len(arrivals) > 40:
                rates.append(pipeline.capture_rate(arrivals[-1]))
            super().send(frame, captured_at)

    class Parallel(IndexEngine):
        thread_safe = True  # two frames inferred at once, as --every-frame does on a CPU

    pipeline = make_pipeline(SyntheticSource(frames=90, fps=1000.0, live=False), Parallel(delay=0.03),
                             mode="sync", sinks=[Sampler()], lossless=True, inference_workers=2)
    pipeline.run()
    output = (len(arrivals) - 41) / (arrivals[-1] - arrivals[40])
    assert 0.8 < np.median(rates) / output < 1.25, (np.median(rates), output)


def test_a_stalled_encoder_never_hangs_the_exit(tmp_path):
    recorder = RecorderSink(str(tmp_path / "r.mp4"), (96, 64), 30)
    recorder._writer.release()
    recorder._writer = SlowWriter(5.0)  # a disk that stalls for seconds
    recorder.CLOSE_TIMEOUT_S = 0.3
    recorder.send(np.zeros((64, 96, 3), np.uint8), 0.0)
    start = time.monotonic()
    with pytest.raises(SinkError, match="left unfinished"):  # (the run then fails: exit 1, not "saved")
        recorder.close()
    assert time.monotonic() - start < 1.5


def test_pausing_an_async_run_rests_inference_and_the_flow_while_frames_go_on():
    """Paused, the model ran on at full rate on frames nobody saw (23 mattes/s, 0.9 cores)."""
    from fakes import wait_until

    engine = IndexEngine()
    pipeline = make_pipeline(SyntheticSource(fps=30), engine, mode="async", duration=20)
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        wait_until(lambda: engine.calls > 5, what="mattes")
        pipeline.apply("pause")
        wait_until(pipeline.inference_rests, timeout=5, what="inference to rest")
        time.sleep(0.3)  # (a matte already under way may land)
        calls, flows, shown = engine.calls, len(pipeline.stats.stages.get("flow", ())), pipeline.stats.outputs
        time.sleep(1.0)
        assert engine.calls == calls and len(pipeline.stats.stages.get("flow", ())) == flows
        assert pipeline.stats.outputs - shown >= 15  # the frozen frame still goes out at the camera's rate
        pipeline.apply("pause")  # resumed
        wait_until(lambda: engine.calls > calls + 3, timeout=10, what="inference again")
    finally:
        pipeline.stop()
        runner.join(10)
    assert not runner.is_alive()


def test_pausing_a_sync_run_keeps_its_frames_coming():
    """In sync mode the output is driven by mattes: resting inference would stop the virtual camera."""
    engine = IndexEngine()
    pipeline = make_pipeline(SyntheticSource(fps=30), engine, mode="sync", duration=1.5)
    pipeline.state.paused = True
    stats = pipeline.run()
    assert stats.outputs >= 20 and not pipeline.inference_rests()
