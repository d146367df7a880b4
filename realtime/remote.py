"""Remote control of a live run: commands handed to the render loop, and its output frames handed out.

Other threads (the web server's request handlers) never touch the pipeline's
state directly. They :meth:`LiveHandle.submit` a command, which the render
loop runs between two frames, the same place hotkeys are carried out, and
wait for its result with a timeout; the render loop never waits for them. Output frames go the other
way through :meth:`LiveHandle.publish`: the render loop only stores a
reference (no copy, no encoding); readers encode on their own thread, and only
while someone asks for frames.

The handle outlives pipelines: when the camera cannot be opened the handle
says why (``state == "failed"``, ``error``), and :meth:`request_restart`
asks the owner to try again with another camera.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)

#: What a live run can be doing.
STATES = ("starting", "running", "failed", "ended", "stopped")
STATE_WORDS = {"starting": "it is starting", "running": "it is running", "failed": "it could not start",
               "ended": "the source has ended", "stopped": "it has stopped"}
#: A preview stream that has taken no frame for this long (its viewer stopped reading, the
#: connection left open: a half-open socket, a laptop gone to sleep) no longer holds a place.
STALLED_VIEWER_S = 10.0
#: How long a control request waits for the first frame that shows its change.
SHOWN_TIMEOUT_S = 1.0


#: What a run's user chose (hotkeys, the live panel) that the next run of the same server keeps
CARRIED_VIEW = ("view", "paused", "mirror", "hud")


def _choices(pipeline) -> dict[str, Any] | None:
    state, library = getattr(pipeline, "state", None), getattr(pipeline, "library", None)
    if state is None or library is None or not library.entries:  # (a stand-in, or nothing to choose from)
        return None
    return {"view": {name: getattr(state, name) for name in CARRIED_VIEW},
            "background": library.current_name, "blur_strength": library.blur_strength}


def _restore(pipeline, chosen: dict[str, Any]) -> None:
    if _choices(pipeline) is None:
        return
    for name, value in chosen["view"].items():
        setattr(pipeline.state, name, value)
    library = pipeline.library
    if library.blur_strength != chosen["blur_strength"]:
        library.set_blur_strength(chosen["blur_strength"])
    if library.current_name != chosen["background"] and library.choose(chosen["background"]) is None:
        log.info("the background chosen before, %s, is gone: %s instead", chosen["background"], library.current_name)


class LiveUnavailable(RuntimeError):
    """No pipeline runs now (the camera failed, or the run ended)."""


class LiveHandle:
    """The thread-safe meeting point of a live pipeline and its remote controls."""

    COMMAND_TIMEOUT_S = 3.0

    def __init__(self, camera: str = "0", source: str | None = None):
        self.camera = camera
        self.source = source                     # the --source file the server started with (may run again)
        self.state = "starting"
        self.error = ""
        self.failed_part = ""                    # what could not be opened: "camera" (the source) or "output"
        self.pipeline: Any = None                # the running Pipeline, or None
        self._commands: queue.Queue[tuple[Callable[[Any], Any], Future]] = queue.Queue(maxsize=64)
        self._command_lock = threading.Lock()    # "is a pipeline there?" and "queue it" happen as one
        self._frame_lock = threading.Condition()
        self._frame: np.ndarray | None = None
        self._frame_seq = 0
        self._frame_at = 0.0
        self._raw: np.ndarray | None = None      # the camera frame behind the newest output
        self._restart = threading.Event()
        self._closed = threading.Event()
        self._viewers: dict[int, float] = {}     # open preview streams: ticket -> when it last took a frame
        self._tickets = itertools.count(1)
        self._watch_lock = threading.Lock()
        self._chosen: dict[str, Any] | None = None  # the last run's view and background: a retry keeps them

    # -- the owner (app) -------------------------------------------------
    def attach(self, pipeline) -> None:
        """``pipeline`` runs from now on (not yet started), with the view and background chosen
        in the run before it, if any (a camera retried, a file played again)."""
        if self._chosen is not None:
            _restore(pipeline, self._chosen)
        with self._command_lock:
            self.pipeline, self.state, self.error, self.failed_part = pipeline, "running", "", ""
        self._restart.clear()

    def detach(self, state: str, error: str = "", part: str = "camera") -> None:
        """The pipeline ended (``state`` ended/stopped) or never started (failed, with ``error``:
        its ``part`` "camera", or "output", a virtual camera or recording that could not open)."""
        assert state in STATES and part in ("camera", "output")
        with self._command_lock:
            if self.pipeline is not None:
                self._chosen = _choices(self.pipeline) or self._chosen
            self.pipeline, self.state, self.error = None, state, error
            self.failed_part = part if state == "failed" else ""
            self._fail_pending(LiveUnavailable(error or STATE_WORDS.get(state, state)))

    def wait_for_restart(self, timeout: float | None = None) -> bool:
        """Block until a restart is requested (True) or the handle is closed / time is up (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            if self._restart.wait(0.1 if remaining is None else min(0.1, remaining)):
                self._restart.clear()
                return True
        return False

    def close(self) -> None:
        with self._command_lock:
            self._closed.set()
            self.pipeline = None
            self._fail_pending(LiveUnavailable("the server is shutting down"))
        with self._frame_lock:
            self._frame_lock.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # -- remote controls (any thread) ------------------------------------
    def request_restart(self, camera: str | None = None) -> None:
        with self._command_lock:
            if camera is not None:
                self.camera = camera
            self.state, self.failed_part = "starting", ""
        self._restart.set()

    def outline(self) -> dict[str, Any]:
        """``state``, ``error``, ``failed`` and ``camera`` read together (for the status)."""
        with self._command_lock:
            return {"state": self.state, "error": self.error or None, "failed": self.failed_part or None,
                    "camera": self.camera}

    def submit(self, command: Callable[[Any], Any]) -> Future:
        """Run ``command(pipeline)`` on the render loop; the future holds its result or exception."""
        future: Future = Future()
        with self._command_lock:
            if self.pipeline is None:
                future.set_exception(LiveUnavailable(self.error or STATE_WORDS.get(self.state, self.state)))
                return future
            try:
                self._commands.put_nowait((command, future))
            except queue.Full:
                future.set_exception(LiveUnavailable("too many commands at once; try again"))
        return future

    def call(self, command: Callable[[Any], Any], timeout: float | None = None, shown: bool = False) -> Any:
        """:meth:`submit` and wait for the result (raises the command's exception, or TimeoutError;
        a command that timed out before it ran is cancelled, so it never runs late). ``shown``: also
        wait (at most :data:`SHOWN_TIMEOUT_S`) for the first output frame made after the command ran,
        so the next frame a caller reads shows the change (a background switched, a view changed)."""
        ran_after: list[int] = []

        def counted(pipeline):
            with self._frame_lock:
                ran_after.append(self._frame_seq)
            return command(pipeline)

        future = self.submit(counted if shown else command)
        try:
            result = future.result(timeout or self.COMMAND_TIMEOUT_S)
        except TimeoutError:
            future.cancel()
            raise
        if ran_after and result is not None:  # (None: nothing changed, such as an unknown name)
            self.wait_frame(ran_after[0], SHOWN_TIMEOUT_S)  # (none may come: a paused view; then go on)
        return result

    # -- the render loop -------------------------------------------------
    def run_pending(self, pipeline) -> None:
        """Carry out the queued commands (called by the render loop between frames)."""
        while True:
            try:
                command, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(command(pipeline))
            except Exception as exc:  # a bad request must not end the run
                future.set_exception(exc)

    def publish(self, frame: np.ndarray, raw: np.ndarray | None = None) -> None:
        """The newest output frame (BGR uint8, unmirrored, as the virtual camera gets it) and, when
        known, the camera frame it was made from."""
        with self._frame_lock:
            self._frame, self._frame_seq, self._frame_at = frame, self._frame_seq + 1, time.monotonic()
            if raw is not None:
                self._raw = raw
            self._frame_lock.notify_all()

    def latest_camera_frame(self) -> np.ndarray | None:
        """The newest camera frame behind the output (for thumbnails of blur and none)."""
        with self._frame_lock:
            return self._raw

    # -- frame readers (any thread) --------------------------------------
    def latest_frame(self) -> tuple[int, np.ndarray | None]:
        with self._frame_lock:
            return self._frame_seq, self._frame

    def wait_frame(self, after: int, timeout: float = 1.0) -> tuple[int, np.ndarray] | None:
        """The first frame newer than sequence number ``after``, or None after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._frame_lock:
            while self._frame_seq <= after or self._frame is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed.is_set():
                    return None
                self._frame_lock.wait(remaining)
            return self._frame_seq, self._frame

    @property
    def watchers(self) -> int:
        """Open preview streams whose viewers still read (for the figures)."""
        now = time.monotonic()
        return sum(now - at <= STALLED_VIEWER_S for at in list(self._viewers.values()))

    def try_watch(self, limit: int) -> int | None:
        """A ticket for one more viewer if fewer than ``limit`` watch (checked and counted at once),
        else None. A viewer that has taken nothing for :data:`STALLED_VIEWER_S` (it stopped reading
        but left its connection open) no longer counts: its place goes to a new one."""
        with self._watch_lock:
            now = time.monotonic()
            for ticket, at in list(self._viewers.items()):
                if now - at > STALLED_VIEWER_S:
                    del self._viewers[ticket]
                    log.info("a preview viewer has read nothing for %.0f s: its place is free", now - at)
            if len(self._viewers) >= limit:
                return None
            ticket = next(self._tickets)
            self._viewers[ticket] = now
            return ticket

    def watched(self, ticket: int) -> None:
        """The viewer with ``ticket`` took a frame (it still reads)."""
        with self._watch_lock:
            if ticket in self._viewers:
                self._viewers[ticket] = time.monotonic()

    def unwatch(self, ticket: int) -> None:
        with self._watch_lock:
            self._viewers.pop(ticket, None)

    def _fail_pending(self, exc: Exception) -> None:
        while True:
            try:
                _, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(exc)
