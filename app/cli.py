"""Command line: parse settings, run photo mode, the ONNX export or live mode; map errors to exit codes.

User errors (bad values, missing files, no weights, no virtual camera) print
one line and exit non-zero without a traceback; :data:`EXIT_CODES` is the one
table from exception type to exit code.
"""

from __future__ import annotations

import logging
import sys
from typing import Sequence

from compositing import MediaError
from idphoto import IdPhotoError
from matting import DownloadError, ModelUnavailable, WeightsError
from realtime import ConsoleHandler, PipelineError, SinkError, SourceError, say

from web.errors import WebError

from .errors import MissingPackage, PhotoError, UsageError, WriteError

log = logging.getLogger("modnet-live")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: Exception type -> exit code, first match wins (so subclasses come before their bases).
#: 2: bad input or option (the user can fix the command); 1: a run that failed.
EXIT_CODES: list[tuple[type[BaseException], int]] = [
    (UsageError, EXIT_USAGE),
    (MediaError, EXIT_USAGE),        # unreadable picture, video or background
    (WriteError, EXIT_FAILED),       # a photo the disk could not hold (a PhotoError: before it)
    (PhotoError, EXIT_USAGE),        # photo output that cannot be used or would replace an input
    (IdPhotoError, EXIT_USAGE),      # no face, several faces, a size limit that cannot be met
    (SourceError, EXIT_USAGE),       # camera or video that cannot be opened
    (ModelUnavailable, EXIT_FAILED),  # default model missing and not downloadable (network)
    (WeightsError, EXIT_USAGE),      # a model file that is missing, damaged or the wrong model
    (DownloadError, EXIT_FAILED),
    (SinkError, EXIT_FAILED),        # no virtual camera device, no display
    (PipelineError, EXIT_FAILED),    # a worker thread or the render loop failed mid-run
    (MissingPackage, EXIT_FAILED),
    (WebError, EXIT_FAILED),         # the web server cannot listen (port taken, bad --host)
    (KeyboardInterrupt, EXIT_INTERRUPTED),
]


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code of a user-facing error; ``None`` for anything else (a bug: let it show)."""
    return next((code for kind, code in EXIT_CODES if isinstance(exc, kind)), None)


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s: %(message)s",
                        handlers=[ConsoleHandler(sys.stderr)], force=True)
    # PyTorch's own INFO lines (its FakeTensor cache figures when the run stops early) are not ours
    logging.getLogger("torch").setLevel(logging.DEBUG if verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    setup_logging("-v" in args or "--verbose" in args)
    try:
        from .config import settings_from_args

        settings = settings_from_args(args)
        setup_logging(settings.verbose)  # verbose may come from a config file
        if settings.export_onnx:
            return export_onnx(settings)
        if settings.image and (settings.id_size or settings.sheet):
            from .id_mode import run_id_mode

            return run_id_mode(settings)
        if settings.image:
            from .photo_mode import run_photo_mode

            return run_photo_mode(settings)
        if settings.web:
            from .web_mode import run_web

            return run_web(settings)
        from .live_mode import run_live

        return run_live(settings)
    except BaseException as exc:
        code = exit_code_for(exc)
        if code is None:
            raise
        say("interrupted" if code == EXIT_INTERRUPTED else f"error: {exc}")
        return code


def export_onnx(settings) -> int:
    from matting import modnet_weights
    from matting.onnx_export import export_modnet_onnx

    weights = modnet_weights(settings.weights, settings.weights_dir, settings.offline or None, photo=False)
    try:
        say(str(export_modnet_onnx(weights, settings.export_onnx)), sys.stdout)
    except OSError as exc:  # a disk that filled up, a folder made read-only meanwhile
        say(f"error: cannot write {settings.export_onnx}: {exc.strerror or exc}")
        return EXIT_FAILED
    return EXIT_OK
