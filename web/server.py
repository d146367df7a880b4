"""The web server: one FastAPI app with the REST API, the live panel and the Gradio studio, run in a thread.

``create_app`` wires the parts; :class:`WebServer` runs uvicorn on a
background thread (the main thread keeps the live render loop, which GUI
toolkits need) and stops it within ``STOP_TIMEOUT_S``, open preview streams
included. Its temporary upload folder is removed on stop.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, RedirectResponse
from starlette.routing import Match
from starlette.exceptions import HTTPException as StarletteHTTPException

from idphoto import IdPhotoMaker
from realtime.remote import LiveHandle

from .errors import WebError, error
from .guard import BodyLimit, SameSite, TokenGate
from .live_api import Refused, live_router
from .studio_api import studio_router
from .uploads import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_MB, UploadFolder

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
STOP_TIMEOUT_S = 2.0


@dataclass
class WebOptions:
    host: str = "127.0.0.1"
    port: int = 7860
    token: str | None = None             # required on every request when set
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    max_pixels: int = DEFAULT_MAX_PIXELS
    backgrounds_dir: str = "backgrounds"
    gradio: bool = True                  # the browser UI (the REST API works without it)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def create_app(maker: IdPhotoMaker, live: LiveHandle | None, options: WebOptions,
               uploads: UploadFolder) -> FastAPI:
    app = FastAPI(title="modnet-live", docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        return error(400, validation_message(exc.errors(), request.url.path))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def server_fault(request: Request, exc: Exception):
        log.exception("request %s %s failed", request.method, request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); see the server's log")

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused):
        return error(exc.status, exc.message)

    app.include_router(studio_router(maker, uploads))
    if live is not None:
        app.include_router(live_router(live, uploads, options.backgrounds_dir))

        @app.get("/live", include_in_schema=False)
        def live_page():
            return FileResponse(STATIC / "live.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/v1/health", include_in_schema=False)
    def health():
        return {"ok": True, "live": live is not None, "queue": maker.waiting}

    api_routes = list(app.router.routes)  # the API's own, before the catch-all and the web page's mount

    def methods_for(scope) -> list[str]:
        return [method for method in ("GET", "POST", "PUT", "PATCH", "DELETE") if any(
            route.matches({**scope, "method": method})[0] == Match.FULL for route in api_routes)]

    any_method = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    @app.api_route("/api", methods=any_method, include_in_schema=False)
    @app.api_route("/api/{rest:path}", methods=any_method, include_in_schema=False)  # /api/v1/..., /api/v2/...
    def not_a_route(request: Request, rest: str = ""):
        """The API's own 404 and 405 (not the web page's), as ``{"error": ...}`` like every refusal."""
        path = request.url.path
        if path.endswith("/") and methods_for({**request.scope, "path": path.rstrip("/")}):
            return RedirectResponse(path.rstrip("/"), status_code=307)
        allowed = methods_for(request.scope)
        if allowed:
            return error(405, f"{request.method} is not allowed on {path}: use {' or '.join(allowed)}",
                         headers={"Allow": ", ".join(allowed)})
        return error(404, f"no such API route: {path} (the routes: /api/docs)")

    if options.gradio:
        import gradio as gr

        from .studio_ui import build_studio

        blocks = build_studio(maker, uploads, live_panel=live is not None)
        app = gr.mount_gradio_app(app, blocks, path="/", max_file_size=int(options.max_upload_mb * 1e6),
                                  footer_links=["api"], show_error=False, ssr_mode=False)
        # Gradio checks that file inputs come from its upload folder only once it counts as launched,
        # which mounting alone never sets: without this a client could name any file on the server.
        blocks.has_launched = True
    else:
        @app.get("/", include_in_schema=False)
        def root():
            return RedirectResponse("/api/docs")

    app = HeadAsGet(app)
    gated = TokenGate(app, options.token) if options.token else SameSite(app, _own_names(options.host))
    return BodyLimit(gated, int(options.max_upload_mb * 1e6))


class HeadAsGet:
    """HEAD on the API's and the live page's GET routes (``curl -I``, uptime monitors) answered as
    GET, whose body uvicorn then leaves out; the endless preview stream keeps its 405."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "HEAD":
            path = scope["path"]
            if (path.startswith("/api/") or path == "/live") and not path.endswith("/stream.mjpg"):
                scope = {**scope, "method": "GET"}
        await self.app(scope, receive, send)


#: A JSON body each live route takes, for the message when one is not a JSON object.
BODY_EXAMPLES = {"view": '{"view": "matte"}', "pause": '{"paused": true}', "camera": '{"camera": "1"}'}


def validation_message(errors: list, path: str = "") -> str:
    """FastAPI's first validation error as a user reads it: which field, and what it needs."""
    first = errors[0] if errors else {}
    kind, loc = first.get("type", ""), tuple(first.get("loc", ()))
    where = ".".join(str(part) for part in loc[1:] if not isinstance(part, int))  # ("image", 0): image
    if kind == "json_invalid":
        return "the request body is not valid JSON"
    if loc == ("body",):
        return ("the request has no body" if kind == "missing"
                else "the request body must be a JSON object, e.g. "
                     + BODY_EXAMPLES.get(path.rstrip("/").rsplit("/", 1)[-1], '{"background": "blur"}'))
    if kind == "missing":
        return f"{where}: missing" + (" (send it as a multipart/form-data file)" if where in ("image", "file") else "")
    if "UploadFile" in str(first.get("msg", "")):
        return f"{where}: expected a file (send multipart/form-data with the picture as a file)"
    return f"{where or 'request'}: {first.get('msg', 'invalid value')}"


def _own_names(host: str) -> set[str]:
    """Host names a tokenless (loopback) server answers to besides the loopback ones."""
    return {host.strip("[]").lower(), f"[{host.strip('[]').lower()}]"} if host else set()


class WebServer:
    """uvicorn on a daemon thread; ``start`` returns once the port is bound (or raises WebError)."""

    def __init__(self, maker: IdPhotoMaker, live: LiveHandle | None, options: WebOptions):
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        self.options, self.live, self.maker = options, live, maker
        self.uploads = UploadFolder(options.max_pixels)
        os.environ["GRADIO_TEMP_DIR"] = str(self.uploads.path / "gradio")  # Gradio's uploads live there too
        self._server = None
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        host = self.options.host
        if host in ("0.0.0.0", "::", ""):  # every address: name this machine, as others reach it
            host = socket.gethostname()
        shown = "[" + host + "]" if ":" in host else host
        url = f"http://{shown}:{self.options.port}/"
        return url + (f"?token={self.options.token}" if self.options.token else "")

    def start(self) -> None:
        import uvicorn

        _check_port(self.options.host, self.options.port)
        app = create_app(self.maker, self.live, self.options, self.uploads)
        config = uvicorn.Config(app, host=self.options.host, port=self.options.port, log_level="warning",
                                access_log=False, timeout_graceful_shutdown=0.5, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="web-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            self.stop()
            raise WebError(f"the web server could not start on {self.options.host}:{self.options.port}"
                           + (f": {self.error}" if self.error else ""))

    def _run(self) -> None:
        try:
            self._server.run()
        except BaseException as exc:  # reported by start() / the owner
            self.error = exc

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        if self.live is not None:
            self.live.close()  # ends the preview streams, fails waiting commands
        if self._server is not None:
            # an open studio page keeps a connection that is cut at shutdown: that is expected,
            # not an error worth a traceback
            logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
            self._server.should_exit = True
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT_S * 0.6)
            if self._thread.is_alive():  # a connection that does not close: cut it
                self._server.force_exit = True
                self._thread.join(STOP_TIMEOUT_S * 0.3)
        self.maker.close()
        self.uploads.cleanup()


def _check_port(host: str, port: int) -> None:
    """A clear message for a taken port or an address this machine does not have."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise WebError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise WebError(f"cannot listen on {host}:{port}: {exc.strerror} "
                           f"(another server there? use --port)") from None
