"""The server's gate: request-body size limit (413 before the body is read) and the access token.

Both are plain ASGI middleware so they cover every route, Gradio's own
uploads included. The token is required only when the server listens beyond
loopback: it may come as ``Authorization: Bearer TOKEN``, ``X-Token``,
``?token=TOKEN`` (which also sets a cookie, so a browser opened on the printed
address keeps working), or that cookie.
"""

from __future__ import annotations

import hmac
import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

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
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await send_error(send, 413, too_large, [(b"connection", b"close")])


class _TooLarge(Exception):
    pass


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
