"""Inference threads: take the newest frame, run the engine, smooth, publish the matte."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from matting import MattingEngine, Smoother

from .capture import FramePacket
from .slots import LatestSlot, SlotClosed
from .stats import RunStats


@dataclass
class MatteResult:
    packet: FramePacket     # the frame this alpha belongs to
    alpha: np.ndarray       # float32 h×w in [0, 1], inference size
    infer_s: float


class InferenceWorkers:
    """Inference threads: take the newest frame, run the engine, smooth, publish the matte.

    With one worker (the default) this is the classic inference thread. With
    several (thread-safe engines only, e.g. ONNX Runtime with one thread each),
    frames are inferred concurrently and released to the smoother in capture
    order, which keeps more of a small CPU busy than one multi-threaded run
    whose every operator waits for its slowest thread.
    """

    name = "inference"

    def __init__(self, engine: MattingEngine, smoother: Smoother, frames: LatestSlot[FramePacket],
                 mattes: LatestSlot[MatteResult], stop: threading.Event, stats: RunStats, count: int = 1):
        self.engine, self.smoother = engine, smoother
        self.frames, self.mattes, self.stop_event, self.stats = frames, mattes, stop, stats
        self.error: BaseException | None = None
        self._threads = [threading.Thread(target=self._run, name=f"inference-{i}", daemon=True)
                         for i in range(max(1, count))]
        self._take_lock = threading.Lock()     # one worker claims a frame at a time
        self._release_lock = threading.Lock()  # one worker feeds the smoother at a time
        self._state = threading.Lock()         # guards the two collections below
        self._pending: set[int] = set()        # claimed frames not yet released
        self._done: dict[int, tuple[FramePacket, np.ndarray, float]] = {}
        self._running = len(self._threads)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def is_alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _run(self) -> None:
        try:
            while not self.stop_event.is_set():
                with self._take_lock:
                    try:
                        got = self.frames.take(timeout=0.1)
                    except SlotClosed:
                        return
                    if got is None:
                        continue
                    seq, packet = got
                    with self._state:
                        self._pending.add(seq)
                alpha, pre_s, run_s = self.engine.infer_timed(packet.image)
                self.stats.stage("preprocess", pre_s)
                self.stats.stage("inference", run_s)
                self.stats.record_matte(pre_s + run_s, time.monotonic())
                with self._release_lock:
                    with self._state:
                        self._done[seq] = (packet, alpha, pre_s + run_s)
                    self._release_in_order()
        except BaseException as exc:
            self.error = exc
            self.stop_event.set()
        finally:
            with self._state:
                self._running -= 1
                last = self._running == 0
            if last:
                try:
                    if self.error is None:
                        for packet, alpha, _ in self.smoother.flush():
                            self.mattes.put(MatteResult(packet, alpha, 0.0))
                finally:
                    self.mattes.close()

    def _release_in_order(self) -> None:
        while True:
            with self._state:
                if not self._pending:
                    return
                first = min(self._pending)
                if first not in self._done:
                    return  # an earlier frame is still being inferred
                self._pending.remove(first)
                packet, alpha, infer_s = self._done.pop(first)
            start = time.perf_counter()
            smoothed_items = self.smoother.push(packet, alpha, packet.image)
            self.stats.stage("smoothing", time.perf_counter() - start)
            for tagged, smoothed, _ in smoothed_items:
                self.mattes.put(MatteResult(tagged, smoothed, infer_s))
