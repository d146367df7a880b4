"""The web server (``python live.py --web``): the Gradio ID-photo studio, its REST API and the live panel.

Imports :mod:`idphoto` and :mod:`realtime` (the live panel talks to a running
pipeline through :class:`realtime.remote.LiveHandle`); knows nothing of
settings or exit codes.
"""

from .server import WebError, WebOptions, WebServer, create_app, is_loopback
from .uploads import UploadError, UploadFolder

__all__ = ["WebError", "WebOptions", "WebServer", "create_app", "is_loopback", "UploadError", "UploadFolder"]
