"""Rates and latency percentiles for the HUD, --stats and the benchmarks."""

from __future__ import annotations

import math
import threading
import time
from collections import deque

import numpy as np


class RateMeter:
    """Events per second: over the last ``window`` seconds while events come often; over the
    last ``slow_window`` seconds when they are rare (a still scene refreshes its matte once
    every 2 s: a 2-s window alone would hold one event and read 0), never above one event
    per the time since the last one (so a rate that stops decays instead of freezing).
    Ticks come from the worker threads and reads from the HUD and the web panel: one lock."""

    def __init__(self, window: float = 2.0, slow_window: float = 10.0):
        self.window, self.slow_window = window, slow_window
        self._times: deque[float] = deque()
        self.count = 0
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            self.count += 1
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.slow_window:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            times = tuple(self._times)
        recent = 0
        for t in reversed(times):  # newest first: stops at the short window's edge
            if now - t > self.window:
                break
            recent += 1
        if recent >= 3:  # often enough for the short window: it follows changes quickly
            first = times[len(times) - recent]
        elif len(times) >= 2:
            first = times[0]
            recent = len(times)
        else:
            return 0.0
        span = times[-1] - first
        if span <= 0:
            return 0.0
        return min((recent - 1) / span, 1.0 / max(now - times[-1], 1e-9))


#: Outputs the summary's steady figures need (two frames a few milliseconds apart are no rate)
STEADY_MIN = 10


def figure(value: float, spec: str = ".0f") -> str:
    """``value`` formatted, or "-" while not measured yet (NaN: no output, no second of CPU time)."""
    return "-" if value != value else format(value, spec)


def json_figure(value: float, digits: int = 2) -> float | None:
    """A figure for JSON: rounded, ``None`` when not measured yet (NaN)."""
    return None if value != value else round(float(value), digits)


class RunStats:
    """Everything the pipeline measures. Bounded memory: keeps the last ``keep`` samples."""

    def __init__(self, keep: int = 20000):
        self.started = time.monotonic()
        self.output = RateMeter()
        self.captured = RateMeter()  # frames read from the source (ticked by the capture thread)
        self.mattes = RateMeter()
        self.latency_ms: deque[float] = deque(maxlen=keep)
        self.infer_ms: deque[float] = deque(maxlen=keep)
        self.composite_ms: deque[float] = deque(maxlen=keep)
        #: per-stage durations in ms: capture, flow, preprocess, inference, smoothing, motion, composite, sink
        self.stages: dict[str, deque[float]] = {}
        self._keep = keep
        self.outputs = 0
        self.first_output_at: float | None = None
        # (time.monotonic(), process CPU time) at the first and the latest output: the steady CPU
        # figure leaves out start-up and shutdown (the outputs' own clock may be a test's)
        self._first_output_cpu = self._last_output_cpu = (0.0, 0.0)
        self.last_output_at: float | None = None
        # process CPU time, in cores (1.0 = one core busy), over the last second or so
        self.cpu_cores = float("nan")
        self._cpu_started = time.process_time()
        self._cpu_mark = (self.started, self._cpu_started)

    def sample_cpu(self) -> float:
        """Update and return :attr:`cpu_cores` (cheap: recomputed at most once a second)."""
        now, cpu = time.monotonic(), time.process_time()
        if now - self._cpu_mark[0] >= 1.0:
            self.cpu_cores = (cpu - self._cpu_mark[1]) / (now - self._cpu_mark[0])
            self._cpu_mark = (now, cpu)
        return self.cpu_cores

    def stage(self, name: str, seconds: float) -> None:
        """Record one duration of a pipeline stage (thread-safe enough: deque appends are atomic)."""
        bucket = self.stages.get(name)
        if bucket is None:
            bucket = self.stages.setdefault(name, deque(maxlen=self._keep))
        bucket.append(seconds * 1000.0)

    def steady_fps(self) -> float:
        """Output rate between the first and last output (excludes start-up)."""
        if self.outputs < 2 or self.first_output_at is None or self.last_output_at == self.first_output_at:
            return float("nan")
        return (self.outputs - 1) / (self.last_output_at - self.first_output_at)

    def record_idle_output(self, now: float) -> None:
        """A frame sent again while nobody watches: counted in the output rate, not in the latency."""
        self.outputs += 1
        self.output.tick(now)

    def record_output(self, latency_s: float, composite_s: float, now: float) -> None:
        if self.first_output_at is None:
            self.first_output_at = now
            self._first_output_cpu = (time.monotonic(), time.process_time())
        self._last_output_cpu = (time.monotonic(), time.process_time())
        self.last_output_at = now
        self.outputs += 1
        self.output.tick(now)
        self.latency_ms.append(latency_s * 1000.0)
        self.composite_ms.append(composite_s * 1000.0)

    def record_matte(self, infer_s: float, now: float) -> None:
        self.mattes.tick(now)
        self.infer_ms.append(infer_s * 1000.0)

    @staticmethod
    def percentile(values, q: float) -> float:
        return float(np.percentile(np.fromiter(values, float), q)) if values else float("nan")

    def last_infer_ms(self) -> float:
        return self.infer_ms[-1] if self.infer_ms else float("nan")

    def line(self, capture_fps: float, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        recent = list(self.latency_ms)[-300:]
        return (f"output {self.output.rate(now):5.1f} fps | capture {capture_fps:5.1f} fps | "
                f"mattes {self.mattes.rate(now):5.1f}/s "
                f"({figure(self.percentile(list(self.infer_ms)[-50:], 50))} ms) | "
                f"latency p50 {figure(self.percentile(recent, 50))} ms p95 {figure(self.percentile(recent, 95))} ms | "
                f"cpu {figure(self.cpu_cores, '.2f')} cores")

    def summary(self, capture_frames: int) -> str:
        elapsed = max(1e-9, time.monotonic() - self.started)
        fps, cores = self.steady_fps(), self.steady_cpu_cores()
        steady = ("steady: too few frames to tell" if self.outputs < STEADY_MIN or math.isnan(fps + cores) else
                  f"steady (from the first output): {fps:.1f} fps, cpu {cores:.2f} cores")
        return (f"{self.outputs} frame{'' if self.outputs == 1 else 's'} in {elapsed:.1f} s: output "
                f"{self.outputs / elapsed:.1f} fps, "
                f"capture {capture_frames / elapsed:.1f} fps, mattes {self.mattes.count / elapsed:.1f}/s "
                f"(inference p50 {figure(self.percentile(self.infer_ms, 50))} ms), latency p50 "
                f"{figure(self.percentile(self.latency_ms, 50))} ms, "
                f"p95 {figure(self.percentile(self.latency_ms, 95))} ms, "
                f"p99 {figure(self.percentile(self.latency_ms, 99))} ms; cpu "
                f"{(time.process_time() - self._cpu_started) / elapsed:.2f} cores; {steady}")

    #: the stages in the order a frame meets them (others, if any, after these)
    STAGE_ORDER = ("capture", "flow", "preprocess", "inference", "smoothing", "motion", "composite", "sink")

    def stage_line(self) -> str:
        """Each stage's median, for the --stats summary: where a frame's time goes, by thread
        (capture and flow: the capture thread; preprocess to smoothing: inference; the rest: the
        render loop)."""
        names = [n for n in self.STAGE_ORDER if n in self.stages] + sorted(set(self.stages) - set(self.STAGE_ORDER))
        return "stages, median ms: " + ", ".join(f"{n} {self.percentile(list(self.stages[n]), 50):.2f}"
                                                  for n in names if self.stages[n])

    def steady_cpu_cores(self) -> float:
        """Process CPU use from the first output to the latest (start-up and shutdown excluded)."""
        if self.outputs < 2:
            return float("nan")
        (wall0, cpu0), (wall1, cpu1) = self._first_output_cpu, self._last_output_cpu
        return (cpu1 - cpu0) / max(1e-9, wall1 - wall0)
