"""Live mode (``python live.py`` without --image): open the source, build the pipeline, run it."""

from __future__ import annotations

import logging

from realtime import SourceError, install_signal_handlers, make_source, say
from realtime.signals import ctrl_c_waits

from .build import build_library, build_pipeline, check_display
from .config import Settings

log = logging.getLogger(__name__)


def run_live(settings: Settings) -> int:
    """Run until the user stops it or the source ends; errors propagate to the CLI's exit-code table."""
    check_display(settings)
    library = build_library(settings)  # a bad --background is refused before the camera turns on
    source = make_source(settings.camera, settings.source, settings.loop, settings.size, settings.fps,
                         settings.fourcc, pace=not settings.every_frame)
    try:
        source.open()
        first = source.read()
        if first is None:
            raise SourceError(f"{source.name} has no frames")
        height, width = first.shape[:2]
        log.info("source: %s, %dx%d at %.2f fps", source.name, width, height, source.fps)
        pipeline = build_pipeline(settings, source, first, library=library)
    except BaseException:
        source.close()
        library.close()
        raise

    restore = install_signal_handlers(pipeline)
    try:
        stats = pipeline.run()  # (Ctrl-C stops it: a KeyboardInterrupt in its render loop)
    finally:
        restore()
    with ctrl_c_waits(quiet=True):  # a Ctrl-C after the run has stopped (a second one) has nothing left to stop
        if pipeline.stop_reason:
            log.info("stopped: %s", pipeline.stop_reason)
        if settings.stats:
            say(stats.summary(pipeline.capture.frames_read))
            say(stats.stage_line())
    return 0
