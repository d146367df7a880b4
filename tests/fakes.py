"""Test doubles that follow the real interfaces (sources, engines, cameras)."""

from __future__ import annotations

import threading
import time

import numpy as np

from compositing import BackgroundLibrary, ColorBackground, Compositor
from matting import MattingEngine, make_smoother
from realtime import NullSink, Pipeline, PipelineOptions, SourceError
from realtime.sinks import Sink
from realtime.sources import FrameSource, Pacer


class SyntheticSource(FrameSource):
    """Frames whose pixels encode their index (B = index % 256), paced at ``fps``.

    ``fail_between=(a, b)``: reads number a..b-1 raise SourceError (a camera that
    vanishes and comes back); ``sizes`` maps a read number to a new (h, w).
    """

    def __init__(self, frames=None, fps=30.0, size=(64, 96), fail_between=None, sizes=None, live=True):
        self.frames, self.fps, self.size = frames, fps, size
        self.fail_between, self.sizes = fail_between, sizes or {}
        self.live = live
        self.name = "synthetic"
        self.reads = 0
        self.opens = 0
        self.pacer = Pacer(fps)
        self.closed = False

    def open(self):
        self.opens += 1
        if self.fail_between and self.fail_between[0] <= self.reads < self.fail_between[1]:
            self.reads += 1
            raise SourceError("device unplugged")

    def wait(self, stop: threading.Event):
        self.pacer.wait(stop)

    def resync(self):
        self.pacer.resync()

    def read(self):
        n = self.reads
        self.reads += 1
        if self.fail_between and self.fail_between[0] <= n < self.fail_between[1]:
            raise SourceError("device unplugged")
        index = self.pacer.count
        if self.frames is not None and index >= self.frames:
            return None
        self.size = self.sizes.get(n, self.size)
        frame = np.zeros((*self.size, 3), np.uint8)
        frame[:, :, 0] = index % 256
        frame[:, :, 1] = 128
        self.pacer.count += 1
        return frame

    def close(self):
        self.closed = True


class IndexEngine(MattingEngine):
    """Alpha encodes the frame it was computed from: value = (B channel + 1) / 1000."""

    name = "index"

    def __init__(self, delay=0.0, fail_at=None):
        self.delay, self.fail_at, self.calls = delay, fail_at, 0

    def output_shape(self, frame_hw):
        return (32, 48)

    def infer(self, frame):
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError("simulated inference crash")
        if self.delay:
            time.sleep(self.delay)
        return np.full((32, 48), (float(frame[0, 0, 0]) + 1) / 1000, np.float32)


class SlowEngine(MattingEngine):
    """Wraps a real engine and adds a fixed delay (a slower machine)."""

    def __init__(self, inner, delay):
        self.inner, self.delay = inner, delay
        self.name, self.device = inner.name, inner.device

    def output_shape(self, frame_hw):
        return self.inner.output_shape(frame_hw)

    def infer(self, frame):
        time.sleep(self.delay)
        return self.inner.infer(frame)


class CollectSink(Sink):
    """Keeps a copy of every frame it is sent."""

    def __init__(self):
        self.frames = []

    def send(self, frame, captured_at):
        self.frames.append(frame.copy())


class FakeVirtualCamera:
    """Records what pyvirtualcam.Camera would receive."""

    instances: list["FakeVirtualCamera"] = []

    def __init__(self, width, height, fps, fmt=None, device=None, backend=None):
        self.args = dict(width=width, height=height, fps=fps, fmt=fmt, device=device, backend=backend)
        self.device = device or "/dev/video10"
        self.frames: list[np.ndarray] = []
        self.closed = False
        FakeVirtualCamera.instances.append(self)

    def send(self, frame):
        assert frame.shape == (self.args["height"], self.args["width"], 3) and frame.dtype == np.uint8
        self.frames.append(frame.copy())

    def close(self):
        self.closed = True


def make_pipeline(source, engine, mode="async", sinks=None, smoothing="none", background=None, window=None,
                  first_frame=None, **options):
    """A pipeline over a black background (or ``background``), no terminal keys; ``options`` are
    :class:`PipelineOptions` fields."""
    library = BackgroundLibrary(None, initial=background or ColorBackground((0, 0, 0), name="black"))
    return Pipeline(source, engine, make_smoother(smoothing), Compositor(), library,
                    sinks if sinks is not None else [NullSink()], window=window,
                    options=PipelineOptions(mode=mode, terminal_keys=False, **options), first_frame=first_frame)


def wait_until(predicate, timeout=30.0, what="the condition"):
    """Poll ``predicate`` until true: waits for an event instead of guessing a sleep on a loaded machine."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)
