"""The capture thread: reads a source as fast as it delivers, keeps only the newest frame, reconnects.

When a live source fails it reconnects with backoff and reports its state
(``lost``), so the pipeline can keep the call alive.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from .errors import SourceError
from .slots import LatestSlot
from .sources import FrameSource

log = logging.getLogger(__name__)


@dataclass
class FramePacket:
    index: int              # capture order, from 0
    image: np.ndarray       # BGR uint8, H×W×3
    captured_at: float      # time.monotonic() when the frame was read



#: Reopening attempts (with backoff: about 12 s in all) before a video file that fails to read
#: ends the run; a camera is retried for as long as the run goes on.
FILE_ATTEMPTS = 5
#: A source that has delivered nothing for this long (or three of its frame intervals, if longer)
#: without an error (a network stream that hangs, a camera driver that stops) is stalled: the
#: output says so instead of freezing.
STALL_S = 1.0
#: Checks of :meth:`CaptureThread.stalled` further apart than this mean the checking thread itself
#: did not run (the process stopped with Ctrl-Z, or starved): a gap it did not watch is not counted.
WATCHED_S = 0.5


class CaptureThread(threading.Thread):
    """Reads a source as fast as it delivers and keeps only the newest frame.

    On a failure of a live source (or any source when ``reconnect`` is set),
    ``lost`` is set and the source is reopened with exponential backoff; the
    frames resume under the same slot (``lost`` clears with the first frame read
    again). A video file that still fails after :data:`FILE_ATTEMPTS` reopenings
    ends the run (truncated or removed for good). The end of a finite source closes the
    slot. Any other error is kept in ``error`` and ends the run.
    """

    def __init__(self, source: FrameSource, slot: LatestSlot[FramePacket], stop: threading.Event,
                 reconnect: bool = True, backoff: tuple[float, float] = (0.5, 5.0),
                 clock: Callable[[], float] = time.monotonic, stats=None,
                 on_frame: Callable[[np.ndarray], None] | None = None):
        super().__init__(name="capture", daemon=True)
        self.source, self.slot, self.stop_event = source, slot, stop
        self.reconnect = reconnect
        self.backoff = backoff
        self.clock = clock
        self.stats = stats
        # work on each frame before it is handed on (the pipeline's flow ahead of the render loop);
        # its failures are its own business: it must not raise
        self.on_frame = on_frame
        self.error: BaseException | None = None
        self.lost = threading.Event()
        self.frames_read = 0
        self.reconnects = 0
        self._attempts = 0  # consecutive failed attempts: sets the backoff
        self.opened = True  # the pipeline opens the source before starting the thread
        self.last_frame_at: float | None = None  # (clock) when the newest frame was handed on
        self._stall_told = False
        self._checked_at: float | None = None  # the last stalled() check
        self._gap_from: float | None = None     # when the current gap without frames began to be watched

    def run(self) -> None:
        try:
            self.source.resync()
            self._loop()
        except BaseException as exc:  # reported to the main thread, which ends the run
            self.error = exc
            self.stop_event.set()
        finally:
            try:
                self.source.close()
            finally:
                self.slot.close()

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                if not self.opened:
                    self.source.open()
                    self.opened = True
                self.source.wait(self.stop_event)
                if self.stop_event.is_set():
                    return
                start = time.perf_counter()
                image = self.source.read()
                if self.stats is not None:
                    self.stats.stage("capture", time.perf_counter() - start)
            except (SourceError, cv2.error, OSError) as exc:
                if not (self.source.live or self.reconnect):
                    raise
                self._recover(exc)
                continue
            if image is None:
                log.info("%s ended", self.source.name)
                return
            if self.lost.is_set():  # back only once it delivers again (a file that opens but cannot be read is not)
                log.info("%s is back", self.source.name)
                self.lost.clear()
            self._attempts = 0
            packet = FramePacket(self.frames_read, image, self.clock())
            if self.on_frame is not None:
                try:
                    self.on_frame(image)
                except Exception:  # its own business: never a reason to end the capture
                    log.debug("work on a captured frame failed", exc_info=True)
            self.slot.put(packet)
            self.last_frame_at = packet.captured_at
            if self._stall_told:
                log.info("%s delivers frames again", self.source.name)
                self._stall_told = False
            self.frames_read += 1
            if self.stats is not None:
                self.stats.captured.tick(self.clock())  # handed on now (a lossless hand-off waits)

    def stalled(self, now: float) -> bool:
        """True while a source that delivered frames has sent none for :data:`STALL_S` seconds
        without failing (its read hangs: nothing to reconnect); said once in the log."""
        at, limit = self.last_frame_at, max(STALL_S, 3.0 / max(self.source.fps, 1e-3))  # (a time-lapse: 3 frames)
        watched = self._checked_at is not None and now - self._checked_at < WATCHED_S
        self._checked_at = now
        if at is None or self.lost.is_set():
            return False
        if self._gap_from is None or self._gap_from < at:  # a new gap: from its frame, or from now if
            self._gap_from = at if watched else now       # nobody was looking (after Ctrl-Z and fg, the
        stalled = now - self._gap_from > limit            # source's next frame is on its way)
        if stalled and not self._stall_told:
            log.warning("no frames from %s for %.0f s; waiting for it", self.source.name, now - at)
            self._stall_told = True
        return stalled

    def _recover(self, exc: BaseException) -> None:
        if not self.source.live and self._attempts >= FILE_ATTEMPTS:  # a file damaged or gone for good
            raise SourceError(f"{self.source.name} cannot be read any more ({exc})")
        if not self.lost.is_set():
            if self.source.live:
                log.warning("camera lost (%s); reconnecting", exc)
            else:
                log.warning("%s; trying to read it again", exc)
        self.lost.set()
        try:
            self.source.close()
        except Exception:  # closing a broken device may fail too; reopening is what matters
            pass
        self.opened = False
        delay = min(self.backoff[1], self.backoff[0] * (2 ** min(self._attempts, 8)))
        self._attempts += 1
        self.reconnects += 1
        self.stop_event.wait(delay)
