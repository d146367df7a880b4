"""The server's gate: request-body size limit, the access token, and no requests from other websites.

All are plain ASGI middleware so they cover every route, Gradio's own
uploads included. The token is required only when the server listens beyond
loopback: it may come as ``Authorization: Bearer TOKEN``, ``X-Token``,
``?token=TOKEN`` (which also sets a cookie, so a browser opened on the printed
address keeps working), or that cookie. Without a token (loopback), other
websites open in the user's browser must not reach the camera either:
:class:`SameSite` accepts only loopback ``Host`` names (DNS rebinding) and
refuses state-changing requests that a browser marks as cross-site.
"""

from __future__ import annotations

import hmac
import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

COOKIE = "modnet_live_token"


def new_token() -> str:
    return secrets.token_urlsafe(18)


async def send_error(send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413: at once when Content-Length says so,
    else as soon as the streamed body passes the limit (the rest is never read)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, int(limit)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_large = f"upload too large: the limit is {self.limit / 1e6:.0f} MB"
        if length is not None:
            try:
                if int(length) > self.limit:
                    return await send_error(send, 413, too_large, [(b"connection", b"close")])
            except ValueError:
                return await send_error(send, 400, "bad Content-Length header")
        received = 0
        state = {"started": False, "refused": False}

        async def limited_receive():
            nonlocal received
            if state["refused"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # A streamed body (no Content-Length) passed the limit: answer 413 now, before
                    # the app can answer anything else, and tell it the client has gone.
                    state["refused"] = True
                    if not state["started"]:
                        state["started"] = True
                        await send_error(send, 413, too_large, [(b"connection", b"close")])
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if state["refused"]:
                return  # the app's own answer to the cut-off body: already answered 413
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["refused"]:
                raise


LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]"}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class SameSite:
    """Without a token: only loopback Host names, and no state-changing cross-site requests (an
    ``Origin`` other than the address the request was sent to, port included).

    ``allowed_hosts`` are the extra host names the server answers to (besides loopback)."""

    def __init__(self, app, allowed_hosts: set[str] | None = None):
        self.app = app
        self.allowed = LOOPBACK_NAMES | {h.lower() for h in (allowed_hosts or set())}

    def _host_ok(self, value: str) -> bool:
        host = value.strip().lower()
        if host.startswith("["):  # [::1]:7860
            host = host.split("]", 1)[0] + "]"
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        return host in self.allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        if "host" in headers and not self._host_ok(headers["host"]):
            return await _refuse(scope, send, 421, "this server answers to its own address only "
                                                        "(127.0.0.1 or localhost)")
        if changes_from_another_site(scope, headers):
            return await _refuse(scope, send, 403, CROSS_SITE)
        return await self.app(scope, receive, send)


CROSS_SITE = "requests from other websites are refused"


def changes_from_another_site(scope, headers: dict[str, str]) -> bool:
    """A state-changing request (or a websocket) sent by a page of another origin than the
    address it went to (scheme, host and port): another local server's page
    (http://localhost:8000) is another website too."""
    if not (scope["type"] == "websocket" or scope.get("method", "GET") in UNSAFE_METHODS):
        return False
    origin = headers.get("origin")
    if headers.get("sec-fetch-site") == "cross-site" or origin == "null":
        return True
    if not origin:
        return False
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
    parts = urlsplit(origin)
    return (parts.scheme.lower(), parts.netloc.lower()) != (scheme, headers.get("host", "").lower())


async def _refuse(scope, send, status: int, message: str):
    if scope["type"] == "websocket":
        return await send({"type": "websocket.close", "code": 1008})
    return await send_error(send, status, message)


class TokenGate:
    """Every request needs the token (constant-time compare); ``None`` turns the gate off."""

    def __init__(self, app, token: str | None):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or not self.token:
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = None
        from_query = False
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        given = given or headers.get("x-token")
        if not given and query.get("token"):
            given, from_query = query["token"][0], True
        if not given and "cookie" in headers:
            cookie = SimpleCookie()
            try:
                cookie.load(headers["cookie"])
            except Exception:
                cookie = SimpleCookie()
            if COOKIE in cookie:
                given = cookie[COOKIE].value
        if not given or not hmac.compare_digest(given.encode(), self.token.encode()):
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return await send_error(send, 401, "this server needs its access token: open the address it printed "
                                               "(…?token=…) or send Authorization: Bearer TOKEN")
        if not from_query:
            return await self.app(scope, receive, send)
        cookie_header = (f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict").encode()

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers") or []) + [(b"set-cookie", cookie_header)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)
