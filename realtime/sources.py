"""Frame sources behind one interface: a webcam, a video file or stream, a still picture.

A source yields BGR uint8 frames: a webcam (index or device path), a video file
or stream URL (files are paced at their own frame rate, like a camera), or a
still picture repeated at a fixed rate.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from compositing import IMAGE_EXTENSIONS, MediaError, read_image, to_bgr8
from compositing.media import opencv_path, sane_fps

from .errors import SourceError
from .pipes import is_pipe, pipe_capture

log = logging.getLogger(__name__)

STREAM_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")


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


class Pacer:
    """Delivers frame ``n`` at ``t0 + n / fps``: what makes a file or a picture behave like a camera."""

    def __init__(self, fps: float, clock: Callable[[], float] = time.monotonic):
        self.fps, self.clock = fps, clock
        self.count = 0      # frames delivered since the (re)start of pacing
        self._t0 = clock()

    def restart(self, fps: float | None = None) -> None:
        self.fps = fps or self.fps
        self._t0, self.count = self.clock(), 0

    def resync(self) -> None:
        """Keep the count, restart the clock from now (after a slow start such as loading the model)."""
        self._t0 = self.clock() - self.count / self.fps

    def delay(self) -> float:
        """Seconds until the next frame is due (negative when behind)."""
        return self._t0 + self.count / self.fps - self.clock()

    def wait(self, stop: threading.Event) -> None:
        delay = self.delay()
        if delay > 0:
            stop.wait(delay)


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
        self.problem = camera_problem(text)  # (raised by open: no camera has that name)
        self.device: int | str = int(text) if is_camera_index(text) and self.problem is None else text
        self.requested = (size, fps, fourcc)
        self.name = f"camera {text}"
        self.fps = fps or 30.0
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        if self.problem is not None:
            raise SourceError(f"cannot open {self.name}: {self.problem}")
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
        self.fps = sane_fps(cap.get(cv2.CAP_PROP_FPS), fps or 30.0)
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


#: Further reads tried past a frame that cannot be decoded, before a file that its header says
#: goes on counts as ending there (one damaged frame ended a conversion, the rest of it lost).
SKIP_DAMAGED = 48


class VideoSource(_OpenCVSource):
    """A video file, paced at its own frame rate (optionally looping), or a stream URL.

    A frame that cannot be decoded is skipped (said once in the log). A file that ends well
    before the length its header gives ends (or loops) there, with a warning; if it changed on
    disk since it was opened (cut short, being rewritten, copied over) it raises
    :class:`SourceError` first, so the capture thread opens it again and reads on from the same
    frame (and the run ends with an error if it cannot be opened for about 12 s)."""

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
        self.pacer = Pacer(self.fps, clock)
        self._position = 0       # frames taken from the file since it was opened or rewound
        self._resume_at = 0      # reopened after a failure: read on from this frame
        self._stat: tuple[int, int] | None = None  # (size, mtime) when the file was last opened
        self._short_told = False
        self._skips_told: set[int] = set()  # frames where damage was skipped, said in the log

    def _file_stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def open(self) -> None:
        if not self.live:
            file = Path(self.path)
            if not file.exists():
                raise SourceError(f"video not found: {self.path}")
            if file.is_dir():
                raise SourceError(f"{self.path} is a folder: --source takes a video file (or a picture)")
            if file.is_file() and file.stat().st_size == 0:  # (a pipe is read as it comes)
                raise SourceError(f"video file is empty: {self.path}")
        pipe = not self.live and is_pipe(self.path)
        if pipe and self.loop:
            raise SourceError(f"{self.path} is a pipe: it cannot be played again (--loop); leave --loop out")
        cap = pipe_capture(self.path) if pipe else cv2.VideoCapture(opencv_path(self.path, SourceError))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open video {self.path}: not a video OpenCV can decode, or unreachable")
        self.fps = sane_fps(cap.get(cv2.CAP_PROP_FPS))
        if self.path.lower().startswith(STREAM_PREFIXES) and cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0:
            # A URL with a known length is a file served over the network, not a live
            # stream: pace it at its own rate, let it end or loop like a local file.
            self.live, self.pace = False, self._want_pace
        self._cap = cap
        self.pacer.restart(self.fps)
        # (changed since: see _ended_early; a pipe's time changes with each write, and it is read once)
        self._stat = self._file_stat() if not self.live and not pipe else None
        self._position, resume, self._resume_at = 0, self._resume_at, 0
        if resume:  # a reopen after the file changed: on from the frame it had reached
            if cap.set(cv2.CAP_PROP_POS_FRAMES, resume) and int(cap.get(cv2.CAP_PROP_POS_FRAMES)) == resume:
                self._position = resume
            else:  # (a file that cannot seek: frame by frame from the start)
                cap.release()
                self._cap = cap = cv2.VideoCapture(opencv_path(self.path, SourceError))
                while self._position < resume and cap.grab():
                    self._position += 1

    def wait(self, stop: threading.Event) -> None:
        if not self.pace:
            return
        delay = self.pacer.delay()
        if delay > 0:
            stop.wait(delay)
        elif delay < -1.0 / self.fps and self._cap is not None:
            # Behind real time (slow decoding): drop frames like a camera would.
            behind = int(-delay * self.fps)
            for _ in range(behind):
                if not self._cap.grab():
                    break
                self.pacer.count += 1
                self._position += 1

    def resync(self) -> None:
        self.pacer.resync()

    def read(self):
        if self._cap is None:
            raise SourceError(f"{self.name} is not open")
        ok, frame = self._cap.read()
        if (not ok or frame is None) and not self.live:
            frame = self._past_damage()
            ok = frame is not None
        if not ok or frame is None:
            if self.live:
                raise SourceError(f"stream {self.name} stopped delivering frames")
            self._ended_early()
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
            self._position = 0
        self.pacer.count += 1
        self._position += 1
        return to_bgr8(frame)

    def _missing(self) -> int:
        """Frames the header promises beyond those taken (0 when the file is about done)."""
        expected = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if self._cap is not None else 0
        missing = expected - self._position
        return missing if missing > max(2, 0.02 * expected) else 0

    def _past_damage(self) -> np.ndarray | None:
        """After a frame that failed to decode, well before the end: the next one that decodes
        (the failed ones count as played: the clock stays the file's), or None."""
        for skipped in range(1, min(self._missing(), SKIP_DAMAGED) + 1):
            ok, frame = self._cap.read()
            if ok and frame is not None:
                if self._position not in self._skips_told:  # (once: a looping file meets it every time)
                    self._skips_told.add(self._position)
                    log.warning("%s: %d frame%s at frame %d could not be decoded (a damaged file?): skipped",
                                self.name, skipped, "s" if skipped > 1 else "", self._position)
                self.pacer.count += skipped
                self._position += skipped
                return frame
        return None

    def _ended_early(self) -> None:
        """The file gave no more frames: fine at its end. Well before it, a file changed on disk
        while it played raises SourceError (to be reopened at this frame: see the class); one
        damaged before is said once, and ends (or loops) here."""
        missing = self._missing()
        if not missing:
            return
        if self._stat is not None and self._file_stat() != self._stat:
            self._resume_at = self._position
            raise SourceError(f"{self.name} changed on disk while it played: no frame after {self._position} "
                              f"of {self._position + missing}")
        if not self._short_told:
            log.warning("%s ended after %d of its %d frames: the rest could not be decoded (a damaged or "
                        "cut-off file?)", self.name, self._position, self._position + missing)
            self._short_told = True


class ImageSource(FrameSource):
    """A still picture delivered at ``fps``, forever or ``frames`` times."""

    def __init__(self, path: str, fps: float = 30.0, frames: int | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.path, self.fps, self.frames, self.clock = path, fps, frames, clock
        self.name = Path(path).name
        self._image: np.ndarray | None = None
        self.pacer = Pacer(fps, clock)

    def open(self):
        try:
            self._image = read_image(self.path)
        except MediaError as exc:
            raise SourceError(str(exc)) from None
        self.pacer.restart()

    def wait(self, stop):
        self.pacer.wait(stop)

    def resync(self) -> None:
        self.pacer.resync()

    def read(self):
        if self.frames is not None and self.pacer.count >= self.frames:
            return None
        self.pacer.count += 1
        return self._image.copy()


def is_picture(source: str) -> bool:
    """True when ``--source`` names a still picture (shown like a camera that never moves)."""
    return Path(source).suffix.lower() in IMAGE_EXTENSIONS and not source.lower().startswith(STREAM_PREFIXES)


#: The largest webcam index taken (OpenCV's are small; a huge one overflowed inside OpenCV)
MAX_CAMERA_INDEX = 9999


def is_camera_index(text: str) -> bool:
    """``0``, ``12``: a webcam index (ASCII digits only: ``"²".isdigit()`` is true too, and int() refuses it)."""
    return text.isascii() and text.isdigit()


def camera_problem(camera: str) -> str | None:
    """Why ``camera`` (an index such as ``0``, or a device path) cannot name a webcam; None if it can."""
    text = camera.strip()
    if not text:
        return "empty camera name: use an index such as 0, or a device such as /dev/video2"
    if is_camera_index(text) and int(text) > MAX_CAMERA_INDEX:
        return f"no camera has index {text[:20]}{'...' if len(text) > 20 else ''} (they go up to {MAX_CAMERA_INDEX})"
    return None


def make_source(camera: str = "0", source: str | None = None, loop: bool = False,
                size=None, fps=None, fourcc=None, pace: bool = True) -> FrameSource:
    if source:
        if is_picture(source):
            return ImageSource(source, fps=fps or 30.0)
        return VideoSource(source, loop=loop, pace=pace)
    return CameraSource(camera, size=size, fps=fps, fourcc=fourcc)
