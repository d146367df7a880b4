"""The live pipeline: wiring, the render loop on the main thread, and shutdown.

Threads and hand-offs::

    capture thread --(latest frame)--> inference thread(s) --(latest matte)--> render loop (main thread)
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
           video on a CPU that infers slower than the camera; the matte is moved
           onto each frame along the optical flow (``--motion-comp``), the flow made
           on the capture thread before it hands the frame on and applied by the
           render loop. Default on a CPU.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from compositing import BackgroundLibrary, Compositor
from matting import MattingEngine, Smoother, alpha_to_numpy, upsample_alpha
from matting.motion import MotionCompensator

from .capture import CaptureThread, FramePacket
from .console import say
from .controls import Controls, TerminalKeys, ViewState, action_for_key, key_for_keycode
from .errors import PipelineError, SinkError
from .flow_ahead import FlowAhead
from .inference import InferenceWorkers, MatteCadence, MatteResult
from .overlay import draw_notice, draw_panel, help_lines, hud_lines, keys_banner
from .readers import PauseGate
from .signals import ctrl_c_waits
from .sinks import Sink, WindowSink, save_snapshot
from .slots import LatestSlot, SlotClosed
from .sources import FrameSource
from .stats import RunStats, json_figure

log = logging.getLogger(__name__)

LOST_NOTICE, FILE_NOTICE = "camera lost - reconnecting", "the file could not be read - trying again"
STALL_NOTICE = "no frames from the camera - waiting"
STOP_TIMEOUT_S = 1.5
MODES = ("sync", "async")


@dataclass
class PipelineOptions:
    """How a pipeline runs (the parts it runs are the constructor's other arguments)."""

    mode: str = "async"                 # sync | async (see the module docstring)
    mirror: bool = True                 # mirror the preview window (never the other sinks)
    hud: bool = True
    stats_every: float | None = None    # seconds between --stats lines; None: no lines
    max_frames: int | None = None       # stop after this many output frames
    duration: float | None = None       # stop after this many seconds
    snapshot_dir: str = "."
    reconnect: bool = True              # keep retrying a lost source
    terminal_keys: bool = True          # read hotkeys from the terminal when there is no window
    lossless: bool = False              # every frame, in order (offline conversion of a file)
    inference_workers: int = 1
    motion_comp: bool = True            # move a matte onto the shown frame when it belongs to an older one
    matte_every: int = 1                # infer every N-th frame (the others reuse the newest matte)
    max_matte_rate: float | None = None  # at most this many mattes per second
    inference_share: float | None = None  # at most this share of the time inferring (None: no limit)
    skip_still: bool = False            # no new matte while the scene has not changed (refreshed every 2 s)
    pause_unwatched: bool = False       # only a virtual camera, nobody reading: no inference, a frame a second
    device_alpha: bool = False          # alphas stay torch tensors on the engine's device (GPU path)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be sync or async, got {self.mode!r}")
        if self.lossless and self.mode != "sync":
            raise ValueError("lossless (every frame) processing needs sync mode")


class Pipeline:
    """Wires one source, one engine, one smoother, one compositor and any sinks; ``run()`` runs them."""

    def __init__(self, source: FrameSource, engine: MattingEngine, smoother: Smoother, compositor: Compositor,
                 library: BackgroundLibrary, sinks: list[Sink], window: WindowSink | None = None,
                 options: PipelineOptions | None = None, first_frame: np.ndarray | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.options = options = options or PipelineOptions()
        if options.inference_workers > 1 and not getattr(engine, "thread_safe", False):
            raise ValueError(f"{engine.name} cannot run several inference workers at once")
        self.source, self.engine, self.smoother, self.compositor = source, engine, smoother, compositor
        self.library, self.sinks, self.window = library, sinks, window
        self.mode = options.mode
        self.clock = clock
        self.stop_event = threading.Event()
        self.stop_reason = ""
        self.stats = RunStats()
        # Live: latest-value slots (stale frames dropped). Lossless (files): one-deep, every frame in order.
        self.frames: LatestSlot[FramePacket] = LatestSlot(lossless=options.lossless)
        self.mattes: LatestSlot[MatteResult] = LatestSlot(lossless=options.lossless)
        motion = MotionCompensator() if options.motion_comp else None
        self.motion = motion if options.mode == "async" else None  # the render loop's
        self.capture = CaptureThread(source, self.frames, self.stop_event, reconnect=options.reconnect,
                                     clock=clock, stats=self.stats,
                                     on_frame=None if self.motion is None else
                                     FlowAhead(self.motion, self.mattes, self.stats, self.inference_rests))
        self.inference = InferenceWorkers(engine, smoother, self.frames, self.mattes, self.stop_event, self.stats,
                                          count=options.inference_workers,
                                          cadence=MatteCadence(options.matte_every, options.max_matte_rate,
                                                               options.skip_still, options.inference_share),
                                          reuse=options.mode == "sync", motion=motion if options.mode == "sync" else None,
                                          on_device=options.device_alpha, lookahead=options.lossless)
        self.terminal = TerminalKeys(self.stop_event, banner=keys_banner()) \
            if (options.terminal_keys and window is None) else None
        only = sinks[0] if len(sinks) == 1 and window is None else None
        self._watched = only if options.pause_unwatched and hasattr(only, "watchers") else None
        self.idle = False                # nobody reads the only sink: inference paused
        self._gate = PauseGate()         # ... for a while (not at each app's probe)
        self.state = ViewState(mirror=options.mirror, hud=options.hud)
        self.controls = Controls(library, self.state, on_quit=lambda: self.stop("quit"), on_snapshot=self.snapshot,
                                 on_help=None if window is not None else lambda shown: say(keys_banner()))
        self._first_frame = first_frame  # read by the caller to size the sinks: do not lose it
        if first_frame is not None:
            self.capture.frames_read = 1
        self.remote = None               # a LiveHandle (web panel): commands in, output frames out
        self._seen = 0                   # sequence number of the last item the render loop took
        self._last_output: np.ndarray | None = None
        self._last_output_at = 0.0
        self.render_error: BaseException | None = None
        self.close_error: BaseException | None = None  # the first sink that failed to close (a recording)

    # ------------------------------------------------------------------
    def stop(self, reason: str = "stopped") -> None:
        if not self.stop_event.is_set():
            self.stop_reason = reason
        self.stop_event.set()

    def apply(self, action: str, arg: int = 0) -> None:
        """Carry out one hotkey action (keys, tests and remote controls alike)."""
        self.controls.apply(action, arg)

    def run(self) -> RunStats:
        """Run until the source ends, a stop is requested or a worker fails (PipelineError)."""
        options = self.options
        try:
            if self._first_frame is not None:
                self._first_matte(self._first_frame)
            self.capture.start()  # from here on the capture thread closes the source
            self.inference.start()
            if self.terminal is not None:
                self.terminal.start()
            next_stats = self.clock() + (options.stats_every or 0)
            while not self.stop_event.is_set():
                self._handle_keys()
                if self.window is not None and self.window.closed:
                    self.stop("window closed")
                    break
                if not self._step():
                    break
                now = self.clock()
                self.stats.sample_cpu()
                if options.stats_every and now >= next_stats:  # --stats: the CLI's own output
                    say(self.stats.line(self.capture_rate(now), now))
                    next_stats = now + options.stats_every
                if options.max_frames and self.stats.outputs >= options.max_frames:
                    self.stop("frame limit reached")
                if options.duration and self._played(now) >= options.duration:
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

    def status(self) -> dict:
        """The live figures and state, for the web panel (call it on the render loop)."""
        now = self.clock()
        recent = list(self.stats.latency_ms)[-60:]
        frame = self._last_output
        figure = json_figure
        return {"fps": figure(self.stats.output.rate(now)), "mattes_per_s": figure(self.stats.mattes.rate(now)),
                "latency_ms": figure(self.stats.percentile(recent, 50)), "cpu_cores": figure(self.stats.cpu_cores),
                "background": self.library.current_name, "view": self.state.view, "paused": self.state.paused,
                "engine": self.engine.name, "mode": self.mode, "idle": self.idle, "source": self.source.name,
                "size": None if frame is None else [int(frame.shape[1]), int(frame.shape[0])],
                "capture_fps": figure(self.capture_rate(now)), "blur_strength": self.library.blur_strength}

    def inference_rests(self) -> bool:
        """Nobody watches, or the user paused an async run: no mattes and no flows are made."""
        return self.inference.paused.is_set()

    def capture_rate(self, now: float) -> float:
        """Frames read per second lately (the same window as the output rate beside it)."""
        return self.stats.captured.rate(now)

    def snapshot(self, quiet: bool = True) -> Path | None:
        """Save the newest output (as the virtual camera got it) as a PNG in the snapshot folder;
        None before the first output. A failure is logged (the s key), or raised (SinkError) when
        not ``quiet`` (the Live API, which answers with it)."""
        if self._last_output is None:
            return None
        try:
            return save_snapshot(self._last_output, self.options.snapshot_dir)
        except SinkError as exc:
            if not quiet:
                raise
            log.warning("%s", exc)
            return None

    # ------------------------------------------------------------------
    def _first_matte(self, image: np.ndarray) -> None:
        """The first matte doubles as the engine's warm-up, so output starts with the first
        frame instead of skipping frames until inference catches up."""
        packet = FramePacket(0, image, self.clock())
        start = time.perf_counter()
        alpha = self.engine.infer(packet.image)
        self.stats.record_matte(time.perf_counter() - start, time.monotonic())
        self.inference.seed(packet, alpha)
        for tagged, smoothed, _ in self.smoother.push(packet, alpha, packet.image):
            self.mattes.put(MatteResult(tagged, smoothed, 0.0))
        packet.captured_at = self.clock()
        if self.mode == "async":
            # the render loop needs the frame; inference already has its matte
            self.frames.put(packet)
            self.frames.mark_taken(1)

    def _check_idle(self) -> bool:
        """True while nobody reads the only sink (and there is a frame to repeat). Inference (and the
        flow) also rest while the user pauses an async run: its output is the frozen frame anyway."""
        idle = False
        readers = self._watched.watchers() if self._watched is not None and self._last_output is not None else None
        if readers is not None:  # (None: nobody can tell, e.g. OBS's camera on Windows or macOS: never paused)
            viewers = readers + (self.remote.watchers if self.remote is not None else 0)
            idle = self._gate.idle(viewers, self.clock())
        if idle != self.idle:
            self.idle = idle
            log.info("nobody is watching the %s: inference paused (the last frame, once a second)"
                     if idle else "the %s has a viewer again: resumed", self._watched.name)
        rest = idle or (self.state.paused and self.mode == "async" and self._last_output is not None)
        if rest != self.inference.paused.is_set():
            (self.inference.paused.set if rest else self.inference.paused.clear)()
        return idle

    def _step(self) -> bool:
        """Produce at most one output frame. False when the stream has ended."""
        if self._check_idle():
            now = self.clock()
            if now - self._last_output_at >= 1.0:
                self._send(self._last_output, now)
                self.stats.record_idle_output(now)  # (the rate sent: once a second)
            self.stop_event.wait(0.05)
            return not self.frames.closed
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
            elif self.motion is not None and result.packet is not packet:
                # the matte belongs to an older frame: move its edges along with the person
                start = time.perf_counter()
                alpha = self.motion.warp(alpha_to_numpy(alpha), result.packet.image, packet.image)
                self.stats.stage("motion", time.perf_counter() - start)
        self._emit(packet, alpha)
        return True

    def _emit(self, packet: FramePacket, alpha: np.ndarray) -> None:
        start = time.perf_counter()
        if self.state.paused and self._last_output is not None:
            output = self._last_output
        else:
            at = packet.index / max(self.source.fps, 1e-3) if self.options.lossless else self.clock()  # file time
            output = self._render(packet.image, alpha, at)
        composite_s = time.perf_counter() - start
        self.stats.stage("composite", composite_s)
        start = time.perf_counter()
        self._send(output, packet.captured_at, raw=packet.image)
        self.stats.stage("sink", time.perf_counter() - start)
        now = self.clock()
        self.stats.record_output(now - packet.captured_at, composite_s, now)

    def _render(self, frame: np.ndarray, alpha: np.ndarray, at: float) -> np.ndarray:
        if self.state.view == "original":
            return frame
        if self.state.view == "matte":
            return cv2.cvtColor((upsample_alpha(alpha_to_numpy(alpha), frame.shape[:2]) * 255 + 0.5).astype(np.uint8),
                                cv2.COLOR_GRAY2BGR)
        self.library.rescan()
        return self.compositor.composite(frame, alpha, self.library.current(), now=at)

    def _send(self, output: np.ndarray, captured_at: float, notice: str | None = None,
              raw: np.ndarray | None = None) -> None:
        self._last_output, self._last_output_at = output, self.clock()
        shown = draw_notice(output, notice) if notice else output
        if self.remote is not None:
            self.remote.publish(shown, raw)
        for sink in self.sinks:
            sink.send(shown, captured_at)
        if self.window is not None:
            preview = cv2.flip(shown, 1) if self.state.mirror else shown.copy()
            below = 0
            if self.state.hud:
                below = draw_panel(preview, hud_lines(self.stats, self.library.current_name, self.state, self.clock()))
            if self.state.show_help:
                draw_panel(preview, ["Hotkeys:"] + help_lines(), origin=(10, preview.shape[0] // 3), top=below + 6)
            self.window.send(preview, captured_at)

    def _keep_alive(self) -> None:
        """While the camera is lost or stalled, feed sinks the last frame with a notice (a conversion: no)."""
        now, lost = self.clock(), self.capture.lost.is_set()
        if self._last_output is None or self.options.lossless or not (
                lost or self.mode == "async" and self.capture.stalled(now)):  # (its output: the file's frames)
            return
        if now - self._last_output_at >= 1.0 / max(1.0, self.source.fps):
            last = self._last_output
            self._send(last, now, notice=(LOST_NOTICE if self.source.live else FILE_NOTICE) if lost else STALL_NOTICE)
            self._last_output = last

    def _handle_keys(self) -> None:
        if self.remote is not None:
            self.remote.run_pending(self)  # the web panel's commands, between frames like hotkeys
        keys = []
        if self.window is not None:
            keys.append(key_for_keycode(self.window.poll_key()))
        if self.terminal is not None:
            keys.extend(self.terminal.drain())
        for key in keys:
            action = action_for_key(key)
            if action:
                self.apply(*action)

    def _shutdown(self) -> None:
        with ctrl_c_waits():  # a second Ctrl-C must not cut this short
            self._stop_all()

    def _stop_all(self) -> None:
        self.stop_event.set()
        self.frames.close()  # releases a producer blocked on a lossless slot
        self.mattes.close()
        if self.capture.ident is None:  # failed before the capture thread started: it cannot close the source
            self.source.close()
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
            except SinkError as exc:  # a recording that did not finish whole: the run fails
                self.close_error = self.close_error or exc
            except Exception as exc:  # closing one sink must not keep the others open
                log.warning("closing %s failed: %s", sink.name, exc)
        self.library.close()

    def _played(self, now: float) -> float:
        """Seconds run: of the file's own time when converting every frame, else of the clock."""
        if self.options.lossless:
            return self.stats.outputs / max(self.source.fps, 1e-3)
        return now - self.stats.started

    def _raise_worker_error(self) -> None:
        for name, exc in (("capture thread", self.capture.error), ("inference thread", self.inference.error),
                          ("render loop", self.render_error)):
            if exc is not None:
                raise PipelineError(f"{name} failed: {type(exc).__name__}: {exc}") from exc
        if self.close_error is not None:  # a recording that did not finish whole
            raise PipelineError(str(self.close_error)) from self.close_error
