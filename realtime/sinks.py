"""Where composited frames go: a preview window, a virtual camera, a recording, nowhere.

Every sink takes BGR uint8 frames through ``send(frame, captured_at)`` and is
closed with ``close()``; sinks with a fixed size (virtual camera, recording)
resize frames that arrive at another size (a camera that changed resolution).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path

import cv2
import numpy as np

from compositing.media import opencv_path

from .errors import SinkError
from .slots import LatestSlot, SlotClosed
from .readers import DeviceReaders

log = logging.getLogger(__name__)


class Sink(ABC):
    name = "sink"

    @abstractmethod
    def send(self, frame: np.ndarray, captured_at: float) -> None: ...

    def close(self) -> None:
        pass


def _fit(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    if frame.shape[1] == w and frame.shape[0] == h:
        return frame
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)


class NullSink(Sink):
    """Counts frames and discards them (benchmarks, tests)."""

    name = "null"

    def __init__(self):
        self.frames = 0
        self.last: np.ndarray | None = None

    def send(self, frame, captured_at):
        self.frames += 1
        self.last = frame


#: Recording containers and the codec each is written with.
RECORD_FORMATS = {".mp4": "mp4v", ".mov": "mp4v", ".m4v": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


class RecorderSink(Sink):
    """Records to a video file at a constant frame rate.

    Frames are placed by their capture time, so the file plays in real time
    whatever the output rate: when output is slower than ``fps`` the previous
    frame is repeated to fill the gap. Live, the encoding runs on its own thread
    (a frame takes ~8 ms to encode at 720p here: in the render loop that was
    latency, and a loop already behind fell further behind encoding the repeats);
    it takes the newest frame each time, so a slow encoder drops frames from the
    file, never delays the output. Converting a file (``realtime=False``) writes
    every frame once, in order, here. ``close`` (also reached on Ctrl-C and
    SIGTERM) writes what is pending and finalises the container so the file
    stays playable. Video codecs need even sizes: an odd side loses its last pixel.
    """

    name = "recording"
    MAX_GAP_S = 2.0
    CLOSE_TIMEOUT_S = 10.0  # the most close waits for the encoder to finish

    def __init__(self, path: str, size: tuple[int, int], fps: float, realtime: bool = True):
        self.path = Path(path)
        if self.path.is_dir():
            raise SinkError(f"--record needs a file name, {self.path} is a folder")
        if not self.path.parent.exists():
            raise SinkError(f"cannot record to {self.path}: folder {self.path.parent} does not exist")
        if not os.access(self.path.parent, os.W_OK):
            raise SinkError(f"cannot record to {self.path}: folder {self.path.parent} is not writable")
        self.source_size = size
        self.size, self.fps = (max(2, size[0] - size[0] % 2), max(2, size[1] - size[1] % 2)), float(fps)
        if self.size != tuple(size):
            if min(size) < 2:  # a 1-px side cannot lose a pixel: the frames are stretched to 2
                log.warning("recording at %dx%d: video codecs need even sizes of at least 2 px, so the %dx%d "
                            "frames are stretched to that", *self.size, *size)
            else:
                log.warning("recording at %dx%d: video codecs need even sizes, so the %dx%d frames lose their "
                            "last %s", *self.size, *size, "column and row" if size[0] % 2 and size[1] % 2
                            else "column" if size[0] % 2 else "row")
        self.realtime = realtime  # False: write each frame once (offline, every-frame processing)
        opencv_path(self.path, SinkError)
        suffix = self.path.suffix.lower()
        if suffix not in RECORD_FORMATS:
            raise SinkError(f"cannot record to {self.path}: use a file name ending in "
                            f"{' or '.join(RECORD_FORMATS)}")
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*RECORD_FORMATS[suffix]), self.fps,
                                       self.size)
        if not self._writer.isOpened():
            raise SinkError(f"cannot record to {self.path}: the file cannot be created there")
        self.frames_written = 0
        self._t0: float | None = None
        self._pending: LatestSlot[tuple[np.ndarray, float]] = LatestSlot()  # live: the newest frame to encode
        self._failure: BaseException | None = None  # the encoder thread's, raised by the next send
        self._encoder = threading.Thread(target=self._encode, name="recorder", daemon=True) if realtime else None
        if self._encoder is not None:
            self._encoder.start()

    def send(self, frame, captured_at):
        if self._failure is not None:
            raise SinkError(f"recording to {self.path} failed: {self._failure}")
        fitted = _fit(_fit(frame, self.source_size)[:self.size[1], :self.size[0]], self.size)  # (a 1-px side: stretched)
        if not self.realtime:
            self._write(np.ascontiguousarray(fitted), captured_at)
        else:  # the render loop reuses its buffers: the encoder gets its own copy
            if self._t0 is None:
                self._t0 = captured_at  # the file's time starts with the first frame sent, encoded or not
            self._pending.put((fitted.copy(), captured_at))

    def _write(self, frame: np.ndarray, captured_at: float) -> None:
        if not self.realtime:
            try:
                self._writer.write(frame)
            except KeyboardInterrupt:  # Ctrl-C, raised as OpenCV's write returned: the frame is in the file
                self.frames_written += 1
                raise
            self.frames_written += 1
            return
        due = int(round((captured_at - self._t0) * self.fps)) + 1  # frames that should exist now
        repeats = max(1, min(due - self.frames_written, int(self.MAX_GAP_S * self.fps)))
        for _ in range(repeats):
            self._writer.write(frame)
        self.frames_written += repeats

    def _encode(self) -> None:
        """The encoder thread: the newest frame each time, until the slot closes; then it
        finalises the file itself, so a close interrupted by a second Ctrl-C still leaves it playable."""
        seen = 0
        try:
            while True:
                seen, (frame, captured_at) = self._pending.get_newer(seen)
                self._write(frame, captured_at)
        except SlotClosed:
            pass
        except BaseException as exc:  # reaches the render loop through the next send, or close
            log.debug("recording failed", exc_info=True)
            self._failure = exc
        finally:
            self._finish()

    def _finish(self) -> None:
        if self._writer is not None:
            opencv = isinstance(self._writer, cv2.VideoWriter)  # (tests stand their own writer in)
            self._writer.release()
            self._writer = None
            if self._failure is None and opencv:
                self._failure = self._unplayable()
            if self._failure is not None:  # (close() raises it: the run's one error line)
                log.debug("recording %s failed after %d frames: %s", self.path, self.frames_written, self._failure)
            elif not self.frames_written:  # stopped before the first frame: an empty, unplayable file
                self.path.unlink(missing_ok=True)
                log.info("nothing was recorded (stopped before the first frame): %s not kept", self.path)
            else:
                log.info("recording saved: %s (%d frames)", self.path, self.frames_written)

    def _unplayable(self) -> SinkError | None:
        """Why the finished file does not hold what was written (OpenCV's writer reports no write
        errors: on a full disk it drops data silently and leaves a file without its index), or None.
        A file of which nothing plays is removed."""
        if not self.frames_written:
            return None
        cap = cv2.VideoCapture(str(self.path))
        try:  # (a damaged .mkv reports a huge negative count)
            readable = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))) if cap.isOpened() else 0
        finally:
            cap.release()
        if readable >= self.frames_written:
            return None
        free = shutil.disk_usage(self.path.parent).free if self.path.parent.exists() else 0
        hint = " (the disk is full)" if free < 16 * 2**20 else ""
        if not readable:  # nothing in it plays: not kept, as a run stopped before its first frame
            try:
                self.path.unlink(missing_ok=True)
                hint += f"; {self.path.name} is not kept"
            except OSError:
                pass
        return SinkError(f"the file is incomplete{hint}: {readable} of {self.frames_written} frames can be played back")

    def close(self):
        if self._encoder is None:
            self._finish()
        else:
            self._pending.close()  # the encoder writes what is pending, finalises the file and ends
            self._encoder.join(self.CLOSE_TIMEOUT_S)
            if self._encoder.is_alive():  # a stalled disk: never hang the exit on it
                raise SinkError(f"recording {self.path} left unfinished: still being written after "
                                f"{self.CLOSE_TIMEOUT_S:.0f} s")
        if self._failure is not None:
            raise SinkError(f"recording {self.path} failed: {self._failure}")


VCAM_HELP_LINUX = (
    "No virtual camera device was found. On Linux install v4l2loopback and load it once per boot:\n"
    "  sudo apt install v4l2loopback-dkms\n"
    "  sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=\"Virtual Background\" exclusive_caps=1\n"
    "then run again (or pass --vcam-device /dev/video10). exclusive_caps=1 is needed for Chrome, Zoom and Teams."
)
VCAM_HELP_OTHER = (
    "No virtual camera is available. Install OBS Studio (28 or newer), open it once and click "
    "\"Start Virtual Camera\", then \"Stop Virtual Camera\" and close OBS; run again. "
    "On Windows, Unity Capture also works (--vcam-backend unitycapture)."
)


def vcam_help(platform: str | None = None) -> str:
    return VCAM_HELP_LINUX if (platform or sys.platform).startswith("linux") else VCAM_HELP_OTHER


#: pyvirtualcam's backends by name (each platform registers its own)
VCAM_BACKENDS = ("v4l2loopback", "obs", "unitycapture")


def vcam_backends() -> list[str] | None:
    """The virtual-camera backends pyvirtualcam has on this system (None without pyvirtualcam)."""
    try:
        from pyvirtualcam.camera import BACKENDS
    except ImportError:
        return None
    return sorted(BACKENDS)


class VirtualCameraSink(Sink):
    """pyvirtualcam adapter: BGR frames straight through (PixelFormat.BGR), never mirrored.

    ``camera_factory`` is ``pyvirtualcam.Camera``; tests pass a fake with the
    same contract (``Camera(width, height, fps, fmt=, device=, backend=)``,
    ``send``, ``close``, ``device``).
    """

    name = "virtual camera"

    def __init__(self, size: tuple[int, int], fps: float, device: str | None = None,
                 backend: str | None = None, camera_factory=None, watch: bool = False):
        try:
            import pyvirtualcam
        except ImportError:
            raise SinkError("the virtual camera needs pyvirtualcam: pip install -r requirements.txt") from None
        factory = camera_factory or pyvirtualcam.Camera
        available = vcam_backends() if camera_factory is None else None
        if backend and available is not None and backend not in available:  # (pyvirtualcam: a KeyError)
            raise SinkError(f"no {backend} virtual camera on this system (it has {', '.join(available) or 'none'})")
        self.size = size
        kwargs = {"fmt": pyvirtualcam.PixelFormat.BGR}
        if device:
            kwargs["device"] = device
        if backend:
            kwargs["backend"] = backend
        try:
            self._cam = factory(size[0], size[1], fps, **kwargs)
        except Exception as exc:  # pyvirtualcam raises RuntimeError / ValueError with a terse reason
            reason = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
            if device:
                raise SinkError(f"cannot open virtual camera {device}: {reason}. {vcam_help()}") from None
            raise SinkError(f"{vcam_help()}\n(pyvirtualcam said: {reason})") from None
        log.info("virtual camera started: %s (%dx%d @ %.0f fps)", getattr(self._cam, "device", "?"),
                 size[0], size[1], fps)
        self._readers = DeviceReaders(self.device) if watch and self.device else None

    def watchers(self) -> int | None:
        """Other processes reading the device now (v4l2loopback on Linux); ``None`` when unknown."""
        return self._readers.count() if self._readers is not None else None

    @property
    def device(self) -> str:
        return str(getattr(self._cam, "device", ""))

    def send(self, frame, captured_at):
        self._cam.send(np.ascontiguousarray(_fit(frame, self.size)))

    def close(self):
        if self._readers is not None:
            self._readers.close()
            self._readers = None
        if self._cam is not None:
            self._cam.close()
            self._cam = None


class WindowSink(Sink):
    """OpenCV preview window; reports keys and closing.

    ``send`` shows the frame as given (the pipeline mirrors the self-view and
    draws the HUD before, so text is never mirrored); ``poll_key`` returns the last key pressed (as an
    OpenCV key code) or -1; ``closed`` is True once the user closed the window.
    """

    name = "window"

    def __init__(self, title: str = "MODNet Live"):
        self.title = title
        try:
            # GUI_NORMAL: no Qt toolbar (it would take key focus and space)
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as exc:
            raise SinkError(f"cannot open a preview window ({str(exc).strip().splitlines()[-1]}); "
                            f"use --no-window, e.g. with --vcam or --record") from None
        self._shown = False
        self._key = -1

    MAX_INITIAL_SIZE = (1280, 720)

    def send(self, frame, captured_at):
        if not self._shown:
            # Open at the frame's size (shrunk to fit 1280x720); users can resize it.
            h, w = frame.shape[:2]
            scale = min(1.0, self.MAX_INITIAL_SIZE[0] / w, self.MAX_INITIAL_SIZE[1] / h)
            cv2.resizeWindow(self.title, int(w * scale), int(h * scale))
        cv2.imshow(self.title, frame)
        self._shown = True
        self._key = cv2.waitKeyEx(1)

    def poll_key(self) -> int:
        key, self._key = self._key, -1
        if key == -1 and self._shown:
            key = cv2.waitKeyEx(1)
        return key

    @property
    def closed(self) -> bool:
        if not self._shown:
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def close(self):
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass


def save_snapshot(image: np.ndarray, folder: str | os.PathLike) -> Path:
    """Save a BGR frame as ``snapshot_<time>.png`` in ``folder`` (never over an existing file);
    SinkError saying why it could not be saved (the folder, a full disk)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SinkError(f"could not create snapshot folder {folder}: {exc.strerror}") from None
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise SinkError("could not encode the snapshot")
    stem = time.strftime("snapshot_%Y%m%d_%H%M%S")
    path, n = folder / f"{stem}.png", 1
    while True:
        try:
            with open(path, "xb") as file:
                file.write(data.tobytes())
            break
        except FileExistsError:
            path, n = folder / f"{stem}-{n}.png", n + 1
        except OSError as exc:
            path.unlink(missing_ok=True)  # no half-written picture left behind
            raise SinkError(f"could not save snapshot {path}: {exc.strerror or exc}") from None
    log.info("snapshot saved: %s", path)
    return path
