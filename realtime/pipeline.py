"""The live pipeline: source -> matting engine -> temporal filter -> compositor -> sinks.

Threads and hand-offs::

    capture thread --(latest frame)--> inference thread --(latest matte)--> render loop (main thread)
                  \\-------------------(latest frame, async mode)-----------/

Every hand-off is a :class:`LatestSlot`, so stale frames are dropped and
latency cannot grow. The render loop runs on the main thread because GUI
toolkits require it; it composites, drives the sinks, reads hotkeys, and
re-raises any worker's exception as :class:`PipelineError`.

Timing modes
    sync   every output frame waits for its own matte: exact edges; output
           rate = inference rate. Default on a GPU, where inference is faster
           than the camera anyway.
    async  output at the camera's rate with the newest matte available: smooth
           video on a CPU that infers slower than the camera; edges may trail
           fast motion by the inference time. Default on a CPU.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from matting.engine import MattingEngine, upsample_alpha
from matting.temporal import Smoother
from realtime.backgrounds import BackgroundLibrary
from realtime.compositor import Compositor
from realtime.hotkeys import TerminalKeys, action_for_char, action_for_keycode, draw_notice, draw_panel, help_lines
from realtime.slots import LatestSlot, SlotClosed
from realtime.sources import CaptureThread, FramePacket, FrameSource
from realtime.sinks import Sink, WindowSink
from realtime.stats import RunStats

log = logging.getLogger(__name__)

LOST_NOTICE = "camera lost - reconnecting"
STOP_TIMEOUT_S = 1.5


class PipelineError(RuntimeError):
    """A worker thread failed; the message names which and why."""


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


class Pipeline:
    """Wires one source, one engine, one smoother, one compositor and any sinks."""

    def __init__(self, source: FrameSource, engine: MattingEngine, smoother: Smoother, compositor: Compositor,
                 library: BackgroundLibrary, sinks: list[Sink], window: WindowSink | None = None,
                 mode: str = "async", mirror: bool = True, hud: bool = True, stats_every: float | None = None,
                 max_frames: int | None = None, duration: float | None = None, snapshot_dir: str = ".",
                 reconnect: bool = True, terminal_keys: bool = True, first_frame: np.ndarray | None = None,
                 lossless: bool = False, inference_workers: int = 1,
                 clock: Callable[[], float] = time.monotonic):
        if mode not in ("sync", "async"):
            raise ValueError(f"mode must be sync or async, got {mode!r}")
        if lossless and mode != "sync":
            raise ValueError("lossless (every frame) processing needs sync mode")
        self.source, self.engine, self.smoother, self.compositor = source, engine, smoother, compositor
        self.library, self.sinks, self.window = library, sinks, window
        self.mode, self.mirror, self.hud = mode, mirror, hud
        self.stats_every, self.max_frames, self.duration = stats_every, max_frames, duration
        self.snapshot_dir = Path(snapshot_dir)
        self.clock = clock
        self.stop_event = threading.Event()
        self.stats = RunStats()
        # Live: latest-value slots (stale frames dropped). Lossless (files only):
        # one-deep bounded hand-offs, so every frame is processed, in order.
        self.frames: LatestSlot[FramePacket] = LatestSlot(lossless=lossless)
        self.mattes: LatestSlot[MatteResult] = LatestSlot(lossless=lossless)
        self.capture = CaptureThread(source, self.frames, self.stop_event, reconnect=reconnect, clock=clock,
                                     stats=self.stats)
        if inference_workers > 1 and not getattr(engine, "thread_safe", False):
            raise ValueError(f"{engine.name} cannot run several inference workers at once")
        self.inference = InferenceWorkers(engine, smoother, self.frames, self.mattes, self.stop_event, self.stats,
                                          count=inference_workers)
        self.terminal = TerminalKeys(self.stop_event) if (terminal_keys and window is None) else None
        self._first_frame = first_frame  # read by the caller to size the sinks: do not lose it
        if first_frame is not None:
            self.capture.frames_read = 1
        # view state, changed by hotkeys
        self.view = "composite"
        self.paused = False
        self.show_help = False
        self._blur_return: int | None = None
        self._last_output: np.ndarray | None = None
        self._last_output_at = 0.0
        self.stop_reason = ""

    # ------------------------------------------------------------------
    def stop(self, reason: str = "stopped") -> None:
        if not self.stop_event.is_set():
            self.stop_reason = reason
        self.stop_event.set()

    def run(self) -> RunStats:
        """Run until the source ends, a stop is requested or a worker fails (PipelineError)."""
        if self._first_frame is not None:
            # The first matte doubles as the engine's warm-up, so output starts with
            # the first frame instead of skipping frames until inference catches up.
            packet = FramePacket(0, self._first_frame, self.clock())
            start = time.perf_counter()
            alpha = self.engine.infer(packet.image)
            self.stats.record_matte(time.perf_counter() - start, time.monotonic())
            for tagged, smoothed, _ in self.smoother.push(packet, alpha, packet.image):
                self.mattes.put(MatteResult(tagged, smoothed, 0.0))
            packet.captured_at = self.clock()
            if self.mode == "async":
                # the render loop needs the frame; inference already has its matte
                self.frames.put(packet)
                self.frames.mark_taken(1)  # inference already has its matte
                self._seen = 0
        self.capture.start()
        self.inference.start()
        if self.terminal is not None:
            self.terminal.start()
        next_stats = self.clock() + (self.stats_every or 0)
        try:
            while not self.stop_event.is_set():
                self._handle_keys()
                if self.window is not None and self.window.closed:
                    self.stop("window closed")
                    break
                if not self._step():
                    break
                now = self.clock()
                if self.stats_every and now >= next_stats:
                    print(self.stats.line(self.capture_rate(now), now), file=sys.stderr, flush=True)
                    next_stats = now + self.stats_every
                if self.max_frames and self.stats.outputs >= self.max_frames:
                    self.stop("frame limit reached")
                if self.duration and now - self.stats.started >= self.duration:
                    self.stop("time limit reached")
        except KeyboardInterrupt:
            self.stop("interrupted (Ctrl-C)")
        except Exception as exc:  # the render loop itself (compositing, a sink) failed
            self.render_error = exc
            self.stop("render loop failed")
        finally:
            self._shutdown()
        self._raise_worker_error()
        return self.stats

    def capture_rate(self, now: float) -> float:
        return self.capture.frames_read / max(1e-9, now - self.stats.started)

    # ------------------------------------------------------------------
    def _step(self) -> bool:
        """Produce at most one output frame. False when the stream has ended."""
        # sync: driven by new mattes (each with its own frame); async: by new frames
        slot = self.mattes if self.mode == "sync" else self.frames
        try:
            got = slot.get_newer(self._seen, timeout=0.05)
        except SlotClosed:
            return False
        if got is None:
            self._keep_alive()
            return True
        self._seen, item = got
        if self.mode == "sync":
            packet, alpha = item.packet, item.alpha
        else:
            packet = item
            _, result = self.mattes.latest()
            if result is None:
                return True  # no matte yet: never show the unmasked room
            alpha = result.alpha
            if result.packet.image.shape != packet.image.shape:
                packet = result.packet  # resolution just changed: use the matte's own frame
        self._emit(packet, alpha)
        return True

    _seen = 0  # sequence number of the last item the render loop took

    def _emit(self, packet: FramePacket, alpha: np.ndarray) -> None:
        start = time.perf_counter()
        if self.paused and self._last_output is not None:
            output = self._last_output
        else:
            output = self._render(packet.image, alpha)
        composite_s = time.perf_counter() - start
        self.stats.stage("composite", composite_s)
        start = time.perf_counter()
        self._send(output, packet.captured_at)
        self.stats.stage("sink", time.perf_counter() - start)
        now = self.clock()
        self.stats.record_output(now - packet.captured_at, composite_s, now)

    def _render(self, frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        if self.view == "original":
            return frame
        if self.view == "matte":
            return cv2.cvtColor((upsample_alpha(alpha, frame.shape[:2]) * 255 + 0.5).astype(np.uint8),
                                cv2.COLOR_GRAY2BGR)
        self.library.rescan()
        return self.compositor.composite(frame, alpha, self.library.current(), now=self.clock())

    def _send(self, output: np.ndarray, captured_at: float, notice: str | None = None) -> None:
        self._last_output, self._last_output_at = output, self.clock()
        shown = draw_notice(output, notice) if notice else output
        for sink in self.sinks:
            sink.send(shown, captured_at)
        if self.window is not None:
            preview = cv2.flip(shown, 1) if self.mirror else shown.copy()
            if self.hud:
                draw_panel(preview, self._hud_lines())
            if self.show_help:
                draw_panel(preview, ["Hotkeys:"] + help_lines(), origin=(10, preview.shape[0] // 3))
            self.window.send(preview, captured_at)

    def _keep_alive(self) -> None:
        """While the camera is lost, keep feeding sinks the last frame with a notice."""
        if not self.capture.lost.is_set() or self._last_output is None:
            return
        now = self.clock()
        if now - self._last_output_at >= 1.0 / max(1.0, self.source.fps):
            last = self._last_output
            self._send(last, now, notice=LOST_NOTICE)
            self._last_output = last

    def _hud_lines(self) -> list[str]:
        now = self.clock()
        latency = list(itertools.islice(reversed(self.stats.latency_ms), 30))  # newest 30, no full copy
        lines = [
            f"{self.stats.output.rate(now):4.1f} fps  infer {self.stats.last_infer_ms():.0f} ms  "
            f"latency {np.median(latency) if latency else float('nan'):.0f} ms",
            f"bg: {self.library.current_name}" + (f"  [{self.view}]" if self.view != "composite" else "")
            + ("  [paused]" if self.paused else ""),
        ]
        return lines

    # ------------------------------------------------------------------
    def _handle_keys(self) -> None:
        actions = []
        if self.window is not None:
            action = action_for_keycode(self.window.poll_key())
            if action:
                actions.append(action)
        if self.terminal is not None:
            actions.extend(a for a in (action_for_char(ch) for ch in self.terminal.drain()) if a)
        for action, arg in actions:
            self.apply(action, arg)

    def apply(self, action: str, arg: int = 0) -> None:
        """Carry out one hotkey action (also used by tests)."""
        log.debug("hotkey: %s %s", action, arg)
        if action == "quit":
            self.stop("quit")
        elif action == "next":
            self.library.step(1)
        elif action == "previous":
            self.library.step(-1)
        elif action == "pick":
            if self.library.select(arg) is None:
                log.info("no background %d (there are %d)", arg + 1, len(self.library.entries))
        elif action == "blur":
            if self.library.current_name == "blur" and self._blur_return is not None:
                self.library.select(self._blur_return)
                self._blur_return = None
            else:
                self._blur_return = self.library.index
                self.library.select_name("blur")
                self.library.step(0)
        elif action in ("matte", "original"):
            self.view = "composite" if self.view == action else action
        elif action == "mirror":
            self.mirror = not self.mirror
        elif action == "hud":
            self.hud = not self.hud
        elif action == "help":
            self.show_help = not self.show_help
        elif action == "pause":
            self.paused = not self.paused
        elif action == "snapshot":
            self.snapshot()

    def snapshot(self) -> Path | None:
        if self._last_output is None:
            return None
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        path = self.snapshot_dir / time.strftime("snapshot_%Y%m%d_%H%M%S.png")
        n = 1
        while path.exists():
            path = path.with_name(f"{path.stem.split('-')[0]}-{n}.png")
            n += 1
        if cv2.imwrite(str(path), self._last_output):
            log.info("snapshot saved: %s", path)
            return path
        log.warning("could not save snapshot to %s", path)
        return None

    # ------------------------------------------------------------------
    def _shutdown(self) -> None:
        self.stop_event.set()
        self.frames.close()  # releases a producer blocked on a lossless slot
        self.mattes.close()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for thread in (self.capture, self.inference, self.terminal):
            if thread is not None and thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    log.warning("%s thread did not stop in time; leaving it (daemon)", thread.name)
        if self.terminal is not None:
            self.terminal.restore()
        for sink in [*self.sinks, *([self.window] if self.window else [])]:
            try:
                sink.close()
            except Exception as exc:  # closing one sink must not keep the others open
                log.warning("closing %s failed: %s", sink.name, exc)
        self.library.close()

    render_error: BaseException | None = None

    def _raise_worker_error(self) -> None:
        for name, exc in (("capture thread", self.capture.error), ("inference thread", self.inference.error),
                          ("render loop", self.render_error)):
            if exc is not None:
                raise PipelineError(f"{name} failed: {type(exc).__name__}: {exc}") from exc


def install_signal_handlers(pipeline: Pipeline) -> Callable[[], None]:
    """SIGTERM (and SIGHUP) stop the pipeline cleanly; returns a function that restores them."""
    previous = {}

    def handler(signum, frame):
        pipeline.stop(f"signal {signal.Signals(signum).name}")

    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and threading.current_thread() is threading.main_thread():
            previous[sig] = signal.signal(sig, handler)

    def restore():
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True
