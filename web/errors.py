"""The web server's errors: one line each, for the command line and for every refused request."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # fastapi is imported only when a request is answered: the CLI loads this module
    from fastapi.responses import JSONResponse

#: The longest message a refused request gets back (a request's own value is quoted in some).
MAX_MESSAGE = 300


class WebError(RuntimeError):
    """The server cannot start (port taken, an address this machine does not have)."""


def one_line(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message`` on one line (whitespace runs folded) and at most ``limit`` characters."""
    text = re.sub(r"\s+", " ", str(message)).strip()
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The answer to a refused request: ``{"error": "<one line>"}`` with ``status``."""
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": one_line(message)}, status_code=status, headers=headers)
