"""The web server (``python live.py --web``): the Gradio ID-photo studio, its REST API and the live panel.

Imports :mod:`idphoto` and :mod:`realtime` (the live panel talks to a running
pipeline through :class:`realtime.remote.LiveHandle`); knows nothing of
settings or exit codes. The names below load on first use, so the command
line's other modes never import FastAPI or Gradio.
"""

from importlib import import_module

_EXPORTS = {"WebError": ".errors", "WebOptions": ".server", "WebServer": ".server", "create_app": ".server",
            "is_loopback": ".server", "UploadError": ".uploads", "UploadFolder": ".uploads"}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'web' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
