"""Build a live pipeline from :class:`Settings` and run it (``python live.py`` without --image)."""

from __future__ import annotations

import logging
import os
import sys

from matting.temporal import make_smoother
from realtime.backgrounds import BackgroundLibrary
from realtime.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UserFacingError, engine_from_settings
from realtime.compositor import BackgroundError, Compositor, MediaError, make_background
from realtime.config import Settings
from realtime.pipeline import Pipeline, PipelineError, has_display, install_signal_handlers
from realtime.sinks import NullSink, RecorderSink, SinkError, VirtualCameraSink, WindowSink
from realtime.sources import SourceError, make_source

log = logging.getLogger(__name__)


def choose_mode(settings: Settings, device: str) -> str:
    if settings.mode:
        return settings.mode
    # On a GPU inference outpaces the camera, so waiting for each frame's own
    # matte costs nothing and gives exact edges; on a CPU it would cap the output
    # at the inference rate, so keep the camera's rate with the newest matte.
    return "async" if device == "cpu" else "sync"


def choose_workers(settings: Settings) -> int:
    if settings.inference_workers:
        return settings.inference_workers
    # Offline (every frame) on a CPU, throughput is what counts: two single-threaded
    # ONNX Runtime runs side by side beat one two-threaded run by ~10% on 2 cores.
    cpu = settings.device in ("auto", "cpu") and not _has_gpu(settings.device)
    return 2 if settings.every_frame and cpu and (os.cpu_count() or 1) >= 2 else 1


def _has_gpu(device: str) -> bool:
    from matting.engine import pick_device

    try:
        return pick_device(device) != "cpu"
    except ValueError:
        return False


def run_live(settings: Settings) -> int:
    source = make_source(settings.camera, settings.source, settings.loop, settings.size, settings.fps,
                         settings.fourcc, pace=not settings.every_frame)
    try:
        source.open()
        first = source.read()
    except SourceError as exc:
        source.close()
        raise UserFacingError(str(exc), EXIT_USAGE) from None
    if first is None:
        source.close()
        raise UserFacingError(f"{source.name} has no frames", EXIT_USAGE)
    height, width = first.shape[:2]
    log.info("source: %s, %dx%d at %.2f fps", source.name, width, height, source.fps)

    sinks = []
    window = None
    library = None
    try:
        workers = choose_workers(settings)
        if workers > 1 and not settings.threads:
            # one thread per worker: concurrent single-threaded runs keep a small CPU busier
            settings.threads = max(1, (os.cpu_count() or 1) // workers)
        engine = engine_from_settings(settings, photo=False, source_fps=source.fps)
        if workers > 1 and not engine.thread_safe:
            log.info("%s runs one frame at a time; using one inference worker", engine.name)
            workers = 1
        mode = choose_mode(settings, engine.device)
        smoother = make_smoother(settings.smoothing or engine.default_smoothing, still_weight=engine.ema_still_weight)
        refine = engine.default_refine if settings.refine is None else settings.refine
        if engine.device.startswith("cuda"):
            from realtime.gpu_compositor import TorchCompositor

            # the GPU is there anyway: upsample and blend on it (CPU fallback for blur)
            compositor = TorchCompositor(engine.device, refine=refine, decontaminate=bool(settings.decontaminate))
        else:
            compositor = Compositor(refine=refine, decontaminate=bool(settings.decontaminate))
        log.info("engine: %s; %s mode; smoothing %s; edge refinement %s", engine.describe(), mode,
                 smoother.name, "on" if refine else "off")

        initial = None
        try:
            initial = make_background(settings.background or "blur", fit=settings.fit,
                                      blur_strength=settings.blur_strength, search_dirs=[settings.backgrounds_dir])
        except (BackgroundError, MediaError) as exc:
            log.warning("background %r skipped: %s; starting with blur", settings.background, exc)
        library = BackgroundLibrary(settings.backgrounds_dir, fit=settings.fit,
                                    blur_strength=settings.blur_strength, initial=initial)

        if settings.vcam:
            sinks.append(VirtualCameraSink((width, height), settings.vcam_fps or source.fps,
                                           device=settings.vcam_device, backend=settings.vcam_backend))
        if settings.record:
            sinks.append(RecorderSink(settings.record, (width, height), source.fps, realtime=not settings.every_frame))
        if settings.window:
            if not has_display():
                raise SinkError("no display to open a preview window on; use --no-window "
                                "(with --vcam or --record)")
            window = WindowSink()
        if not sinks and window is None:
            log.warning("no window, virtual camera or recording: frames are computed and discarded")
            sinks.append(NullSink())

        pipeline = Pipeline(source, engine, smoother, compositor, library, sinks, window=window, mode=mode,
                            mirror=settings.mirror, hud=settings.hud,
                            stats_every=settings.stats_interval if settings.stats else None,
                            max_frames=settings.max_frames, duration=settings.duration,
                            snapshot_dir=settings.snapshot_dir, reconnect=settings.reconnect, first_frame=first,
                            lossless=settings.every_frame, inference_workers=workers)
    except SinkError as exc:
        _close_all(source, sinks, window, library)
        raise UserFacingError(str(exc), EXIT_FAILED) from None
    except BaseException:
        _close_all(source, sinks, window, library)
        raise

    restore = install_signal_handlers(pipeline)
    try:
        stats = pipeline.run()
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        restore()
    if pipeline.stop_reason:
        log.info("stopped: %s", pipeline.stop_reason)
    if settings.stats:
        print(stats.summary(pipeline.capture.frames_read), file=sys.stderr)
    return EXIT_OK


def _close_all(source, sinks, window, library) -> None:
    source.close()
    for sink in [*sinks, *([window] if window else [])]:
        sink.close()
    if library is not None:
        library.close()
