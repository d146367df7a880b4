"""Command-line entry: parse settings, then run photo mode, the ONNX export or the live pipeline.

User errors (bad values, missing files, no weights, no virtual camera) print
one line and exit non-zero without a traceback. Exit codes: 0 ok, 1 a run
that failed or a batch with failed files, 2 bad usage or input, 130 Ctrl-C.
"""

from __future__ import annotations

import logging
import sys
from typing import Sequence

log = logging.getLogger("modnet-live")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s: %(message)s", stream=sys.stderr, force=True)


def main(argv: Sequence[str] | None = None) -> int:
    from matting.weights import WeightsError
    from realtime.compositor import MediaError
    from realtime.config import UsageError, settings_from_args

    setup_logging("-v" in (argv or sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:]))
    try:
        settings = settings_from_args(argv)
        setup_logging(settings.verbose)
        if settings.export_onnx:
            return export_onnx(settings)
        if settings.image:
            return run_photo_mode(settings)
        from realtime.app import run_live

        return run_live(settings)
    except (UsageError, MediaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UserFacingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


class UserFacingError(RuntimeError):
    """Any failure whose message is complete for the user (no traceback)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


def engine_from_settings(settings, photo: bool, source_fps: float = 30.0):
    from matting.factory import create_engine

    try:
        return create_engine(settings.model, settings.engine, settings.weights, settings.weights_dir,
                             settings.offline or None, settings.device, settings.inference_size,
                             settings.threads, photo=photo, source_fps=source_fps)
    except ValueError as exc:  # bad device, unknown model
        from realtime.config import UsageError

        raise UsageError(str(exc)) from None
    except ImportError as exc:
        raise UserFacingError(f"a required package is missing: {exc}. Run: pip install -r requirements.txt") from None


def run_photo_mode(settings) -> int:
    from realtime.compositor import Compositor, make_background
    from realtime.photo import PhotoError, run_photo

    background = make_background(settings.background or "transparent", fit=settings.fit,
                                 blur_strength=settings.blur_strength, search_dirs=[settings.backgrounds_dir])
    engine = engine_from_settings(settings, photo=True)
    refine = engine.default_refine if settings.refine is None else settings.refine
    decontaminate = True if settings.decontaminate is None else settings.decontaminate
    compositor = Compositor(refine=refine, decontaminate=decontaminate)
    try:
        report = run_photo(engine, settings.image, settings.output, background, compositor)
    except PhotoError as exc:
        raise UserFacingError(str(exc), EXIT_USAGE) from None
    for path in report.written:
        print(path)
    if report.failed:
        print(f"{len(report.failed)} of {len(report.failed) + len(report.written)} pictures failed: "
              + "; ".join(f"{p.name}: {why}" for p, why in report.failed), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def export_onnx(settings) -> int:
    from matting.factory import modnet_weights
    from matting.onnx_engine import export_modnet_onnx

    weights = modnet_weights(settings.weights, settings.weights_dir, settings.offline or None, photo=False)
    path = export_modnet_onnx(weights, settings.export_onnx)
    print(path)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
