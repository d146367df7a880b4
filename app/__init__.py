"""The application: settings, the command line, building the parts, live and photo mode.

The only package that knows :class:`Settings` and exit codes; imports
:mod:`matting`, :mod:`compositing` and :mod:`realtime`.
"""

from .cli import EXIT_CODES, main
from .config import Settings, settings_from_args

__all__ = ["EXIT_CODES", "main", "Settings", "settings_from_args"]
