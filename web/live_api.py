"""The live panel's HTTP API (``/api/v1/live``): status, frames, the MJPEG preview, backgrounds, view, pause.

Requests change the run through :class:`realtime.remote.LiveHandle`: each
change is a command the render loop carries out between two frames (where
hotkeys are carried out), so a request never blocks it and hotkeys and the
panel always agree. Frames are encoded here, off the render loop, once for all
viewers and only while someone asks for them: the preview at most ``PREVIEW_WIDTH`` px wide
and ``PREVIEW_FPS`` frames a second, mirrored as the preview window is (``--no-mirror``, f).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout

import cv2
import numpy as np
from fastapi import APIRouter, Body, File, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from compositing import ColorBackground, parse_color
from compositing.backgrounds import MAX_BLUR, canonical_name
from compositing.media import IMAGE_EXTENSIONS, read_image
from realtime import SinkError
from realtime.remote import LiveHandle, LiveUnavailable
from realtime.sources import camera_problem, is_camera_index

from .errors import error
from .uploads import UploadError, UploadFolder, one_upload, save_background

log = logging.getLogger(__name__)

PREVIEW_WIDTH = 640
PREVIEW_FPS = 15.0
THUMB_SIZE = (160, 90)
VIEWS = ("composite", "matte", "original")
BOUNDARY = "frame"
#: Previews streamed at once at most (each holds a server thread for up to a second while it waits
#: for a frame: the server's threads are shared with every other route)
MAX_STREAMS = 8


class PreviewJpegs:
    """The preview JPEG of the newest frame, made once for all the streams that show it (each
    viewer used to encode every frame again)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._made: dict[bool, tuple[int, bytes]] = {}  # mirrored or not -> (frame number, JPEG)

    def get(self, seq: int, image: np.ndarray, mirror: bool) -> bytes:
        with self._lock:
            made = self._made.get(mirror)
            if made is None or made[0] != seq:
                made = self._made[mirror] = (seq, encode_jpeg(image, PREVIEW_WIDTH, mirror=mirror))
            return made[1]


#: The status's run figures while no run is going (starting, failed, ended): every key a running one
#: has (see ``Pipeline.status``), unknown.
NO_RUN = dict.fromkeys(("fps", "mattes_per_s", "latency_ms", "cpu_cores", "background", "view", "paused", "engine",
                        "mode", "idle", "source", "size", "capture_fps", "blur_strength", "background_color"))


def color_hex(pipeline) -> str | None:
    """``#rrggbb`` of the run's background while it is a colour (not a picture named like one),
    else None: the live panel starts its colour picker there."""
    library = getattr(pipeline, "library", None)
    background = library.shown() if library is not None else None
    return "#{2:02x}{1:02x}{0:02x}".format(*background.bgr) if isinstance(background, ColorBackground) else None


def _mirrored(live: LiveHandle) -> bool:
    """Is the run's preview mirrored now (the f key, ``--no-mirror``)? Mirrored when unknown."""
    state = getattr(live.pipeline, "state", None)
    return bool(getattr(state, "mirror", True))


def encode_jpeg(frame: np.ndarray, max_width: int | None = None, mirror: bool = False, quality: int = 80) -> bytes:
    if max_width and frame.shape[1] > max_width:
        height = max(1, round(frame.shape[0] * max_width / frame.shape[1]))
        frame = cv2.resize(frame, (max_width, height), interpolation=cv2.INTER_AREA)
    if mirror:
        frame = cv2.flip(frame, 1)
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return data.tobytes()


class Thumbnails:
    """Small pictures of the cycle's entries, made once per file version (never in the render loop)."""

    def __init__(self):
        self._cache: dict[tuple, bytes] = {}
        self._lock = threading.Lock()

    def get(self, entry: dict, frame: np.ndarray | None) -> bytes:
        key = (entry["name"], entry.get("path"), entry.get("mtime"))
        if entry["kind"] in ("file",):
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
        image = self._render(entry, frame)
        data = encode_jpeg(image, quality=75)
        if entry["kind"] == "file":
            with self._lock:
                self._cache[key] = data
        return data

    @staticmethod
    def _render(entry: dict, frame: np.ndarray | None) -> np.ndarray:
        w, h = THUMB_SIZE
        color = parse_color(entry["name"]) if entry["kind"] == "color" else None
        if color is not None:
            return np.full((h, w, 3), color, np.uint8)
        if entry["kind"] == "file" and entry.get("path"):
            path = entry["path"]
            try:
                if any(str(path).lower().endswith(ext) for ext in IMAGE_EXTENSIONS):
                    image = read_image(path, max_side=640, quiet=True)  # (a thumbnail)
                else:
                    capture = cv2.VideoCapture(str(path))
                    ok, image = capture.read()
                    capture.release()
                    if not ok:
                        raise ValueError("no frame")
                return _cover(image, w, h)
            except Exception:
                return np.full((h, w, 3), 64, np.uint8)
        if frame is not None:
            thumb = _cover(frame, w, h)
            return cv2.GaussianBlur(thumb, (0, 0), 4) if entry["name"] == "blur" else thumb
        return np.full((h, w, 3), 96, np.uint8)


def _cover(image: np.ndarray, w: int, h: int) -> np.ndarray:
    scale = max(w / image.shape[1], h / image.shape[0])
    resized = cv2.resize(image, (max(w, round(image.shape[1] * scale)), max(h, round(image.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
    y, x = (resized.shape[0] - h) // 2, (resized.shape[1] - w) // 2
    return resized[y:y + h, x:x + w]


def _entries(pipeline) -> list[dict]:
    """The background cycle as JSON-able dicts (runs on the render loop)."""
    out = []
    for i, entry in enumerate(pipeline.library.entries):
        path = entry.path
        kind = "file" if path is not None else ("color" if parse_color(entry.name) is not None else entry.name)
        if kind == entry.name and kind not in ("blur", "none", "transparent"):
            kind = "color"  # a colour picked in the panel (its name is its #RRGGBB)
        mtime = None
        if path is not None:
            try:
                mtime = path.stat().st_mtime
            except OSError:
                pass
        out.append({"index": i, "name": entry.name, "kind": kind, "path": str(path) if path else None,
                    "mtime": mtime, "current": i == pipeline.library.index})
    return out


def live_router(live: LiveHandle, uploads: UploadFolder, backgrounds_dir: str) -> APIRouter:
    router = APIRouter(prefix="/api/v1/live")
    thumbs = Thumbnails()
    jpegs = PreviewJpegs()

    def call(command, timeout: float = 3.0, shown: bool = False):
        try:
            return live.call(command, timeout, shown)
        except LiveUnavailable as exc:
            raise Refused(503, f"the live view is not running: {exc}") from None
        except (TimeoutError, FutureTimeout):
            raise Refused(503, "the live view did not answer in time") from None

    def public(entry: dict) -> dict:
        return {"index": entry["index"], "name": entry["name"], "kind": entry["kind"], "current": entry["current"],
                "thumbnail": f"/api/v1/live/backgrounds/{entry['index']}/thumbnail.jpg"}

    @router.get("/status")
    def status():
        body = {**live.outline(), "watchers": live.watchers,
                "max_watchers": MAX_STREAMS}
        if live.pipeline is None:
            return {**body, **NO_RUN}
        try:
            figures, color = call(lambda p: (p.status(), color_hex(p)))
            return {**body, **figures, "background_color": color}
        except Refused as exc:  # the run ended while it was asked (the state has changed), or is stuck
            ended = live.pipeline is None
            return {**body, **NO_RUN, "state": live.state, "error": (live.error or None) if ended else exc.message}

    @router.post("/camera")
    def camera(payload: dict = Body(...)):
        """Try (another) camera: ``{"camera": "1"}`` or a device path."""
        value = payload.get("camera", "")
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)  # {"camera": 1} as {"camera": "1"}
        value = value.strip() if isinstance(value, str) else ""
        # A webcam, never any file on the server: an index, a device under /dev, or the --source again
        if not (is_camera_index(value) or (value.startswith("/dev/") and ".." not in value) or
                (live.source is not None and value == live.source)) or len(value) > 200:
            return error(400, "camera must be a webcam index such as 0, or a device path such as /dev/video2"
                              + (" (or the --source file the server started with)" if live.source else ""))
        if camera_problem(value):
            return error(400, camera_problem(value))
        if live.pipeline is not None:
            return error(409, "the live view is running; stop it (q) before switching cameras")
        live.request_restart(value)
        return {"state": live.state, "camera": value}

    @router.get("/frame.jpg")
    def frame():
        _, image = live.latest_frame()
        if image is None:
            return error(503, f"no frame yet (the live view {_state_words(live.state)})")
        return Response(encode_jpeg(image, quality=90), media_type="image/jpeg",
                        headers={"Cache-Control": "no-store"})

    @router.get("/snapshot.png")
    def snapshot_png():
        _, image = live.latest_frame()
        if image is None:
            return error(503, f"no frame yet (the live view {_state_words(live.state)})")
        ok, data = cv2.imencode(".png", image)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return Response(data.tobytes(), media_type="image/png",
                        headers={"Content-Disposition": f'attachment; filename="snapshot-{stamp}.png"'})

    @router.post("/snapshot")
    def snapshot():
        """Save a snapshot into the snapshot folder, as the s key does."""
        try:
            path = call(lambda p: p.snapshot(quiet=False))
        except SinkError as exc:  # the folder cannot be made, the disk is full
            return error(507 if "space" in str(exc).lower() else 500, str(exc))
        if path is None:
            return error(503, "no frame yet")
        return {"saved": str(path)}

    @router.get("/stream.mjpg")
    def stream(mirror: bool | None = None, fps: float = PREVIEW_FPS):
        """The preview; mirrored as the preview window is (``--no-mirror``, the f key) unless
        ``mirror`` says otherwise. It ends when the run does (the page opens a new one)."""
        if live.closed:
            return error(503, "the server is shutting down")
        if not math.isfinite(fps) or not 1 <= fps <= 30:
            return error(400, "fps must be between 1 and 30")
        if live.state != "running":
            return error(503, f"no live view to stream (it is {live.state})")
        ticket = live.try_watch(MAX_STREAMS)  # counted now: streams opened at once all passed a plain check
        if ticket is None:
            return error(503, f"{MAX_STREAMS} previews are open already; close one")
        interval = 1.0 / fps
        released = threading.Event()

        def release():  # once, from the stream's end or, should it never start, after the response
            if not released.is_set():
                released.set()
                live.unwatch(ticket)

        async def frames():  # async: a viewer's leaving cancels it at once, and its finally runs then
            seq, next_at, part = 0, 0.0, b"\r\n"  # (before the first part: the preamble, ignored)
            try:
                while not live.closed:
                    got = await run_in_threadpool(live.wait_frame, seq, 1.0)
                    if got is None:
                        if live.state != "running":
                            return
                        # Paused, or between frames for long: the last part again (a stream that only
                        # waited never noticed its viewer had gone: some 40 of them hung the server)
                        yield part
                        live.watched(ticket)  # (resumed: the part was taken)
                        continue
                    seq, image = got
                    flip = mirror if mirror is not None else _mirrored(live)
                    data = await run_in_threadpool(jpegs.get, seq, image, flip)
                    part = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                            .encode() + data + b"\r\n")
                    yield part
                    live.watched(ticket)
                    next_at = max(next_at + interval, time.monotonic())
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            finally:
                release()

        return StreamingResponse(frames(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                 headers={"Cache-Control": "no-store"}, background=BackgroundTask(release))

    @router.get("/backgrounds")
    def backgrounds():
        return [public(e) for e in call(_entries)]

    @router.get("/backgrounds/{index}/thumbnail.jpg")
    def thumbnail(index: int):
        entries = call(_entries)
        if not 0 <= index < len(entries):
            return error(404, f"no background {index}")
        return Response(thumbs.get(entries[index], live.latest_camera_frame()), media_type="image/jpeg",
                        headers={"Cache-Control": "no-cache"})

    @router.post("/background")
    def background(payload: dict = Body(...)):
        value = payload.get("background")
        strength = payload.get("blur_strength")
        if not isinstance(value, str) or not value.strip():
            return error(400, 'send {"background": NAME}: a name from /api/v1/live/backgrounds, a colour '
                              '(#RRGGBB or a name), "blur" or "none"')
        value = value.strip()
        if canonical_name(value).startswith("blur:"):  # blur:SIGMA, as on the command line
            try:
                typed = float(value.split(":", 1)[1])
            except ValueError:
                return error(400, f"bad blur strength in {value!r}: use blur or blur:SIGMA")
            strength, value = (typed if strength is None else strength), "blur"
        if strength is not None and (isinstance(strength, bool) or not isinstance(strength, (int, float))
                                     or not 0 < strength <= MAX_BLUR):
            return error(400, f"blur_strength must be a number in (0, {MAX_BLUR:g}]")

        def switch(p):
            chosen = p.library.choose(value)
            if chosen is not None and strength is not None:  # (unknown: the blur strength stays too)
                p.library.set_blur_strength(float(strength))
            return chosen

        if any(ch in value for ch in "/\\") or ".." in value or "\x00" in value:
            return error(400, "backgrounds are chosen by name from /api/v1/live/backgrounds, not by path")
        chosen = call(switch, shown=True)
        if chosen is None:
            return error(404, f"unknown background {value!r}: use a name from /api/v1/live/backgrounds, "
                              "a colour (#RRGGBB or a name), blur or none")
        return {"background": chosen}

    @router.post("/backgrounds")
    def upload(file: list[UploadFile] = File(...)):
        try:
            file = one_upload(file, "file")
            saved = save_background(file.file.read(), file.filename or "", backgrounds_dir, uploads)
        except UploadError as exc:
            return error(exc.status, str(exc))
        except OSError as exc:
            return error(507, f"cannot save into the backgrounds folder: {exc.strerror or exc}")

        def rescan(p):
            p.library.rescan(force=True)
            return [public(e) for e in _entries(p)]

        try:
            listed = call(rescan)
        except Refused:
            listed = None
        return {"saved": saved.name, "backgrounds": listed}

    @router.post("/view")
    def view(payload: dict = Body(...)):
        value = payload.get("view")
        if value not in VIEWS:
            return error(400, f"view must be one of {', '.join(VIEWS)}")

        def set_view(p):
            if p.state.view != value:
                p.state.view = value
                log.info("view: %s (from the browser)", value)  # (as a hotkey's change is logged)
            return value

        return {"view": call(set_view, shown=True)}

    @router.post("/pause")
    def pause(payload: dict = Body(default={})):
        wanted = payload.get("paused") if isinstance(payload, dict) else None
        if wanted is not None and not isinstance(wanted, bool):
            return error(400, 'send {"paused": true|false}, or nothing to toggle')

        def set_pause(p):
            paused = (not p.state.paused) if wanted is None else wanted
            if paused != p.state.paused:
                p.state.paused = paused
                log.info("%s (from the browser)", "paused: the last frame keeps going out" if paused else "resumed")
            return p.state.paused

        return {"paused": call(set_pause, shown=True)}

    return router


def _state_words(state: str) -> str:
    """"the live view ..." + this: "failed", "has ended", "is starting" (not "is failed")."""
    return {"failed": "failed", "ended": "has ended", "stopped": "has stopped"}.get(state, f"is {state}")


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message
