"""Frame sources behind one interface, and the capture thread.

A source yields BGR uint8 frames: a webcam (index or device path), a video file
or stream URL (files are paced at their own frame rate, like a camera), or a
still picture repeated at a fixed rate. The capture thread keeps only the
newest frame in a :class:`LatestSlot`; when a live source fails it reconnects
with backoff and reports its state, so the pipeline can keep the call alive.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from realtime.compositor import IMAGE_EXTENSIONS, MediaError, read_image, to_bgr8
from realtime.slots import LatestSlot

log = logging.getLogger(__name__)

STREAM_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class SourceError(RuntimeError):
    """A source could not be opened or read; the message is for the user."""


@dataclass
class FramePacket:
    index: int              # capture order, from 0
    image: np.ndarray       # BGR uint8, H×W×3
    captured_at: float      # time.monotonic() when the frame was read


class FrameSource(ABC):
    name = "source"
    fps: float = 30.0
    live = False            # a camera or stream: reconnect when it fails

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def read(self) -> np.ndarray | None:
        """Next frame (BGR uint8), or ``None`` at the end of a finite source."""

    def close(self) -> None:
        pass

    def wait(self, stop: threading.Event) -> None:
        """Pace the next read (files and pictures); cameras pace themselves."""

    def resync(self) -> None:
        """Restart pacing from now (after a slow start such as loading the model)."""


class _OpenCVSource(FrameSource):
    """A source read through ``cv2.VideoCapture`` (held in ``_cap`` while open)."""

    _cap: cv2.VideoCapture | None = None

    def close(self):
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class CameraSource(_OpenCVSource):
    """A webcam by index (``0``) or device path (``/dev/video2``)."""

    live = True

    def __init__(self, camera: str | int = 0, size: tuple[int, int] | None = None,
                 fps: float | None = None, fourcc: str | None = None):
        text = str(camera)
        self.device: int | str = int(text) if text.isdigit() else text
        self.requested = (size, fps, fourcc)
        self.name = f"camera {text}"
        self.fps = fps or 30.0
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        # On Linux ask for V4L2 directly: OpenCV's default probing also tries
        # other backends (e.g. Orbbec depth sensors) and prints their failures.
        if sys.platform.startswith("linux"):
            cap = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        else:
            cap = cv2.VideoCapture(self.device)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.name}: no such camera, or it is in use by another program")
        size, fps, fourcc = self.requested
        if fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
        if size:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        got_fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = got_fps if got_fps and 1 <= got_fps <= 240 else (fps or 30.0)
        code = int(cap.get(cv2.CAP_PROP_FOURCC))
        got_fourcc = "".join(chr((code >> 8 * i) & 0xFF) for i in range(4)) if code > 0 else "?"
        log.info("%s gives %dx%d at %.1f fps, format %s", self.name, cap.get(cv2.CAP_PROP_FRAME_WIDTH),
                 cap.get(cv2.CAP_PROP_FRAME_HEIGHT), self.fps, got_fourcc.strip() or "?")
        self._cap = cap

    def read(self):
        if self._cap is None:
            raise SourceError(f"{self.name} is not open")
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise SourceError(f"{self.name} stopped delivering frames")
        return to_bgr8(frame)


class VideoSource(_OpenCVSource):
    """A video file, paced at its own frame rate (optionally looping), or a stream URL."""

    def __init__(self, path: str, loop: bool = False, pace: bool = True,
                 clock: Callable[[], float] = time.monotonic):
        self.path = str(path)
        self.live = self.path.lower().startswith(STREAM_PREFIXES)
        self.loop = loop
        self._want_pace = pace
        self.pace = pace and not self.live
        self.clock = clock
        self.name = Path(self.path).name if not self.live else self.path
        self._cap: cv2.VideoCapture | None = None
        self._t0 = 0.0
        self._n = 0  # frames delivered since the (re)start of pacing

    def open(self) -> None:
        if not self.live:
            file = Path(self.path)
            if not file.exists():
                raise SourceError(f"video not found: {self.path}")
            if file.stat().st_size == 0:
                raise SourceError(f"video file is empty: {self.path}")
        cap = cv2.VideoCapture(self.path)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open video {self.path}: not a video OpenCV can decode, or unreachable")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 1 <= fps <= 240 else 30.0
        if self.path.lower().startswith(STREAM_PREFIXES) and cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0:
            # A URL with a known length is a file served over the network, not a live
            # stream: pace it at its own rate, let it end or loop like a local file.
            self.live, self.pace = False, self._want_pace
        self._cap = cap
        self._t0, self._n = self.clock(), 0

    def wait(self, stop: threading.Event) -> None:
        if not self.pace:
            return
        due = self._t0 + self._n / self.fps
        delay = due - self.clock()
        if delay > 0:
            stop.wait(delay)
        elif delay < -1.0 / self.fps and self._cap is not None:
            # Behind real time (slow decoding): drop frames like a camera would.
            behind = int(-delay * self.fps)
            for _ in range(behind):
                if not self._cap.grab():
                    break
                self._n += 1

    def resync(self) -> None:
        self._t0 = self.clock() - self._n / self.fps

    def read(self):
        if self._cap is None:
            raise SourceError(f"{self.name} is not open")
        ok, frame = self._cap.read()
        if not ok or frame is None:
            if self.live:
                raise SourceError(f"stream {self.name} stopped delivering frames")
            if not self.loop:
                return None
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
            if not ok or frame is None:
                self._cap.release()
                self._cap = cv2.VideoCapture(self.path)
                ok, frame = self._cap.read()
                if not ok or frame is None:
                    raise SourceError(f"cannot restart video {self.name} for looping")
        self._n += 1
        return to_bgr8(frame)


class ImageSource(FrameSource):
    """A still picture delivered at ``fps``, forever or ``frames`` times."""

    def __init__(self, path: str, fps: float = 30.0, frames: int | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.path, self.fps, self.frames, self.clock = path, fps, frames, clock
        self.name = Path(path).name
        self._image: np.ndarray | None = None
        self._n = 0
        self._t0 = 0.0

    def open(self):
        try:
            self._image = read_image(self.path)
        except MediaError as exc:
            raise SourceError(str(exc)) from None
        self._t0, self._n = self.clock(), 0

    def wait(self, stop):
        delay = self._t0 + self._n / self.fps - self.clock()
        if delay > 0:
            stop.wait(delay)

    def resync(self) -> None:
        self._t0 = self.clock() - self._n / self.fps

    def read(self):
        if self.frames is not None and self._n >= self.frames:
            return None
        self._n += 1
        return self._image.copy()


def make_source(camera: str = "0", source: str | None = None, loop: bool = False,
                size=None, fps=None, fourcc=None, pace: bool = True) -> FrameSource:
    if source:
        if Path(source).suffix.lower() in IMAGE_EXTENSIONS and not source.lower().startswith(STREAM_PREFIXES):
            return ImageSource(source, fps=fps or 30.0)
        return VideoSource(source, loop=loop, pace=pace)
    return CameraSource(camera, size=size, fps=fps, fourcc=fourcc)


class CaptureThread(threading.Thread):
    """Reads a source as fast as it delivers and keeps only the newest frame.

    On a failure of a live source (or any source when ``reconnect`` is set),
    ``lost`` is set and the source is reopened with exponential backoff; the
    frames resume under the same slot. The end of a finite source closes the
    slot. Any other error is kept in ``error`` and ends the run.
    """

    def __init__(self, source: FrameSource, slot: LatestSlot[FramePacket], stop: threading.Event,
                 reconnect: bool = True, backoff: tuple[float, float] = (0.5, 5.0),
                 clock: Callable[[], float] = time.monotonic, stats=None):
        super().__init__(name="capture", daemon=True)
        self.source, self.slot, self.stop_event = source, slot, stop
        self.reconnect = reconnect
        self.backoff = backoff
        self.clock = clock
        self.stats = stats
        self.error: BaseException | None = None
        self.lost = threading.Event()
        self.frames_read = 0
        self.reconnects = 0
        self._attempts = 0  # consecutive failed attempts: sets the backoff
        self.opened = True  # the pipeline opens the source before starting the thread

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
                    if self.lost.is_set():
                        log.info("%s is back", self.source.name)
                    self.lost.clear()
                    self._attempts = 0
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
            self.slot.put(FramePacket(self.frames_read, image, self.clock()))
            self.frames_read += 1

    def _recover(self, exc: BaseException) -> None:
        if not self.lost.is_set():
            log.warning("camera lost (%s); reconnecting", exc)
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
