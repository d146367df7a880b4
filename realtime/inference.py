"""Inference threads: take the newest frame, run the engine (at the chosen cadence), smooth, publish the matte."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from matting import MattingEngine, Smoother, alpha_to_numpy
from matting.motion import MotionCompensator, SceneChange, new_scene, scene_thumbnail

from .capture import FramePacket
from .slots import LatestSlot, SlotClosed
from .stats import RunStats


#: At most this much of frames waits for the next matte in a conversion (``lookahead``): 94 frames
#: of 720p, 10 of 4K.
HOLD_BYTES = 256 * 1024 * 1024


@dataclass
class MatteResult:
    packet: FramePacket     # the frame this alpha belongs to
    alpha: np.ndarray       # float32 h×w in [0, 1], inference size (a device tensor on the GPU path)
    infer_s: float


class MatteCadence:
    """Which frames get a new matte: every ``every``-th frame (by capture index, so an
    every-frame conversion is deterministic), at most ``max_rate`` mattes per second, at most
    ``share`` of the time spent inferring (0.5: a matte takes 200 ms, so the next starts 400 ms
    after it), and, with ``skip_still``, not while the scene has not changed (see :class:`SceneChange`).

    A frame of another scene than the newest matte's (a cut, a camera switch, the lights turned
    on: :func:`matting.motion.new_scene`) gets its own matte at once instead of waiting for its
    turn: no warp can carry a matte across a cut. With ``every`` > 1 the count starts again from
    it; with the time limits (``max_rate``, ``share``) it comes early at most once between two
    mattes in turn, and the next one in turn then waits until two intervals after the one before
    the early one: the rate over time stays within the limits (a strobe or a clip of one-frame
    shots gets exactly the limited rate), though two intervals may hold three mattes. (Holding
    any two intervals to two mattes would allow no early matte at all while mattes come at the
    limit, which is MODNet's default on a CPU.) By frame count too, at most one matte in ``every``
    frames comes early, so a strobe costs at most twice the mattes; and by count alone the
    cadence depends on the frames only, so it stays deterministic. Telling a new scene costs a
    64-px thumbnail of each frame waiting for its turn (0.9 ms of CPU at 720p, 1.7 at 1080p here,
    less where the blur or the still check already made its halvings).
    (``new_scenes=False``: strictly in turn, for ``bench/lag.py``'s comparison.)"""

    def __init__(self, every: int = 1, max_rate: float | None = None, skip_still: bool = False,
                 share: float | None = None, new_scenes: bool = True):
        self.every, self.max_rate = max(1, int(every)), max_rate
        self.share = share if share is not None and share < 1.0 else None
        self.still = SceneChange() if skip_still else None
        self.last_index: int | None = None   # the newest frame that got a matte
        self.last_at = float("-inf")
        self.last_infer_s = 0.0              # how long the newest matte took
        # a new scene gets its matte at once (needless when every frame may get one anyway)
        self.new_scenes = new_scenes and (self.every > 1 or self.max_rate is not None or self.share is not None)
        self.regular_at = float("-inf")      # when the newest matte in turn (not early) started
        self.last_thumb: np.ndarray | None = None  # the newest matte's frame's scene thumbnail
        self.last_early = False              # ... and whether that matte came early
        self.early = 0                       # mattes made early for a new scene

    @property
    def limited(self) -> bool:
        return self.every > 1 or self.max_rate is not None or self.still is not None or self.share is not None

    def interval(self) -> float:
        """The shortest time between the starts of two mattes."""
        gap = 1.0 / self.max_rate if self.max_rate is not None else 0.0
        if self.share is not None:
            gap = max(gap, self.last_infer_s / self.share)
        return gap

    def inferred(self, seconds: float) -> None:
        """How long the matte just made took (for ``share``)."""
        self.last_infer_s = seconds

    def _in_time(self, now: float) -> bool:
        """The time limits allow a matte in turn at ``now`` (after an early one: two intervals
        after the matte in turn before it)."""
        gap = self.interval()
        return now - self.last_at >= gap and (not self.last_early or now - self.regular_at >= 2 * gap)

    def due(self, packet: FramePacket, now: float) -> bool:
        """True (and remembered) when ``packet``'s frame, arriving at ``now``, should be inferred."""
        early = self.last_index is not None and (packet.index - self.last_index < self.every
                                                 or not self._in_time(now))
        # at most one early matte between two in turn: a strobe, a screen in view or a clip of
        # one-frame shots would otherwise get a matte on every frame
        if early and (not self.new_scenes or self.last_early):
            return False
        thumb = scene_thumbnail(packet.image) if self.new_scenes else None
        if early and not new_scene(thumb, self.last_thumb):
            return False
        if self.still is not None and self.last_index is not None and not self.still.changed(packet.image, now):
            return False
        if self.still is not None and self.last_index is None:
            self.still.reset(packet.image, now)
        self.last_index, self.last_at, self.last_thumb, self.last_early = packet.index, now, thumb, early
        if not early:
            self.regular_at = now
        self.early += early
        return True


class InferenceWorkers:
    """Inference threads: take the newest frame, run the engine, smooth, publish the matte.

    With one worker (the default) this is the classic inference thread. With
    several (thread-safe engines only, e.g. ONNX Runtime with one thread each),
    frames are inferred concurrently and released to the smoother in capture
    order, which keeps more of a small CPU busy than one multi-threaded run
    whose every operator waits for its slowest thread.

    With a ``cadence`` that skips frames: in sync mode (``reuse``) a skipped frame
    still gets a matte, the newest one moved onto it by ``motion`` (in capture
    order, so the result does not depend on timing); in async mode it is simply
    not inferred (the render loop moves the newest matte onto every frame).

    With ``lookahead`` (file conversions, where waiting costs no latency anyone sees) a skipped
    frame waits for the next matte too and gets both, each moved onto it, weighed by how near
    each is in frames: the matte after it gets the frames just before it right. Not across a new
    scene (the frames before a cut keep the earlier matte alone), nor at the end of the file;
    at most :data:`HOLD_BYTES` of frames wait (a long ``--matte-every`` on 4K frames), the
    oldest going on with the earlier matte alone beyond that.
    """

    name = "inference"

    def __init__(self, engine: MattingEngine, smoother: Smoother, frames: LatestSlot[FramePacket],
                 mattes: LatestSlot[MatteResult], stop: threading.Event, stats: RunStats, count: int = 1,
                 cadence: MatteCadence | None = None, reuse: bool = False, motion: MotionCompensator | None = None,
                 on_device: bool = False, lookahead: bool = False):
        self.engine, self.smoother = engine, smoother
        self.cadence = cadence if cadence is not None and cadence.limited else None
        self.reuse, self.motion = reuse, motion
        self.lookahead = lookahead and reuse and motion is not None
        self._held: list[FramePacket] = []  # skipped frames waiting for the next matte (lookahead)
        self.on_device = on_device  # the engine returns device tensors (the smoother takes them there)
        self.frames, self.mattes, self.stop_event, self.stats = frames, mattes, stop, stats
        self.error: BaseException | None = None
        self._threads = [threading.Thread(target=self._run, name=f"inference-{i}", daemon=True)
                         for i in range(max(1, count))]
        self._take_lock = threading.Lock()     # one worker claims a frame at a time
        self._release_lock = threading.Lock()  # one worker feeds the smoother at a time
        self._state = threading.Lock()         # guards the two collections below
        self._pending: set[int] = set()        # claimed frames not yet released
        self._done: dict[int, tuple[FramePacket, np.ndarray | None, float]] = {}
        self._last_inferred: tuple[FramePacket, np.ndarray] | None = None  # in release order
        self._last_host: tuple[object, np.ndarray] | None = None  # (that alpha, it as numpy) for warps
        self.paused = threading.Event()  # set while nobody watches: frames are taken and dropped
        self._running = len(self._threads)

    def seed(self, packet: FramePacket, alpha: np.ndarray) -> None:
        """The matte the pipeline computed itself for the first frame."""
        self._last_inferred = (packet, alpha)
        if self.cadence is not None:
            self.cadence.due(packet, time.monotonic())

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
                    if got is None or self.paused.is_set():
                        continue
                    seq, packet = got
                    due = self.cadence is None or self.cadence.due(packet, time.monotonic())
                    if not due and not self.reuse:
                        continue  # async: the render loop moves the newest matte onto this frame
                    with self._state:
                        self._pending.add(seq)
                alpha, infer_s = None, 0.0  # None: reuse the newest matte (released in order)
                if due:
                    alpha, pre_s, run_s = (self.engine.infer_timed(packet.image, on_device=True) if self.on_device
                                           else self.engine.infer_timed(packet.image))
                    infer_s = pre_s + run_s
                    self.stats.stage("preprocess", pre_s)
                    self.stats.stage("inference", run_s)
                    self.stats.record_matte(infer_s, time.monotonic())
                    if self.cadence is not None:
                        self.cadence.inferred(infer_s)
                with self._release_lock:
                    with self._state:
                        self._done[seq] = (packet, alpha, infer_s)
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
                        while self._held and not self.mattes.closed:  # the file ended: no later matte
                            self._push(self._held.pop(0), None, 0.0)
                        for packet, alpha, _ in self.smoother.flush():
                            self.mattes.put(MatteResult(packet, alpha, 0.0))
                except BaseException as exc:  # the run's error, as any other (not a file cut short in silence)
                    self.error = exc
                    self.stop_event.set()
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
            if alpha is None and self.lookahead:
                self._held.append(packet)
                if len(self._held) * packet.image.nbytes > HOLD_BYTES:
                    self._push(self._held.pop(0), None, 0.0)
                continue
            if alpha is not None:
                if self._held:
                    later = (packet, alpha_to_numpy(alpha), scene_thumbnail(packet.image))
                    while self._held and not self.stop_event.is_set():
                        self._push(self._held.pop(0), None, 0.0, later)
                    self._held.clear()  # (stopped: nobody takes them)
                    self._last_host = (alpha, later[1])  # the next frames warp it: no second copy from the device
                self._last_inferred = (packet, alpha)
            self._push(packet, alpha, infer_s)

    def _push(self, packet: FramePacket, alpha, infer_s: float, later=None) -> None:
        """Smooth ``packet``'s matte (None: the newest one reused, see :meth:`_reused`) and publish it."""
        if alpha is None:
            alpha = self._reused(packet, later)
        start = time.perf_counter()
        smoothed_items = self.smoother.push(packet, alpha, packet.image)
        self.stats.stage("smoothing", time.perf_counter() - start)
        for tagged, smoothed, _ in smoothed_items:
            self.mattes.put(MatteResult(tagged, smoothed, infer_s))

    def _reused(self, packet: FramePacket, later: tuple[FramePacket, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """The newest matte (earlier in capture order), moved onto ``packet``'s frame; with
        ``later`` (the next matte's frame, that matte on the host and the frame's scene thumbnail),
        that matte moved back onto it too, the two weighed by how near each is in frames."""
        last_packet, last_alpha = self._last_inferred  # the cadence infers the first frame it sees
        if self.motion is None:
            return last_alpha
        start = time.perf_counter()
        if self._last_host is None or self._last_host[0] is not last_alpha:  # a device tensor: one copy
            self._last_host = (last_alpha, alpha_to_numpy(last_alpha))
        alpha = self.motion.between(packet.image, packet.index, (last_packet.index, last_packet.image, self._last_host[1]),
                                    None if later is None else (later[0].index, later[0].image, *later[1:]))
        self.stats.stage("motion", time.perf_counter() - start)
        return alpha
