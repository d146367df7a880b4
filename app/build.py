"""Build the parts of a run from :class:`Settings`: engine, compositor, backgrounds, sinks, mode, workers.

Every default that depends on more than one setting is decided here, once;
the CLI's live and photo modes and the bench scripts all build through these
functions.
"""

from __future__ import annotations

import logging
import os

from compositing import BackgroundLibrary, Compositor, make_background
from compositing.backgrounds import Background
from matting import MattingEngine, Smoother, create_engine, make_smoother, pick_device
from realtime import (NullSink, Pipeline, PipelineOptions, RecorderSink, SinkError, VirtualCameraSink,
                      WindowSink, has_display)
from realtime.sources import FrameSource

from .config import Settings
from .errors import MissingPackage, UsageError

log = logging.getLogger(__name__)

#: Live MODNet on a CPU: the share of time spent inferring (chosen from bench/budget.py and bench/lag.py).
DEFAULT_CPU_SHARE = 0.35


def choose_mode(settings: Settings, device: str) -> str:
    if settings.mode:
        return settings.mode
    # On a GPU inference outpaces the camera, so waiting for each frame's own
    # matte costs nothing and gives exact edges; on a CPU it would cap the output
    # at the inference rate, so keep the camera's rate with the newest matte.
    return "async" if device == "cpu" else "sync"


def choose_workers(settings: Settings) -> int:
    """Concurrent inference threads (before asking the engine whether it can run several)."""
    if settings.inference_workers:
        return settings.inference_workers
    # Offline (every frame) on a CPU, throughput is what counts: two single-threaded
    # ONNX Runtime runs side by side beat one two-threaded run by ~10% on 2 cores.
    return 2 if settings.every_frame and not _has_gpu(settings.device) and (os.cpu_count() or 1) >= 2 else 1


def threads_per_worker(settings: Settings, workers: int) -> int | None:
    """CPU threads each inference run may use: the user's choice; else the cores shared among
    several workers; else, live on a CPU in async mode, all cores but one."""
    cores = os.cpu_count() or 1
    if settings.threads:
        return settings.threads
    if workers > 1:
        return max(1, cores // workers)  # concurrent single-threaded runs keep a small CPU busier
    if not settings.every_frame and settings.mode != "sync" and cores >= 2 and not _has_gpu(settings.device):
        # Leave a core to capture, compositing, motion compensation and the call app itself: on 2
        # cores, one inference thread gave 90% of the mattes/s of two, 0.3 core less CPU and a lower
        # latency p95 (26 vs 44-53 ms; 12-s live.py runs on the vlog clip, README).
        return cores - 1
    return None


def choose_inference_share(settings: Settings, engine: MattingEngine, mode: str) -> float | None:
    """The share of time inference may take: the user's; else, for MODNet live in async mode on a
    CPU, DEFAULT_CPU_SHARE: mattes at about a third of the model's speed, and motion compensation
    moves each one onto the frames between (see the CPU table in the README); without motion
    compensation (``--motion-comp off``) nothing would carry them, so no limit. The selfie model is
    cheap: no limit."""
    if settings.inference_share is not None:
        return settings.inference_share if settings.inference_share < 1 else None
    if (settings.every_frame or mode != "async" or engine.device != "cpu" or not engine.name.startswith("modnet")
            or not settings.motion_comp):
        return None
    return DEFAULT_CPU_SHARE


def _has_gpu(device: str) -> bool:
    try:
        return pick_device(device) != "cpu"
    except ValueError:
        return False


def build_engine(settings: Settings, photo: bool, source_fps: float = 30.0,
                 threads: int | None = None) -> MattingEngine:
    try:
        return create_engine(settings.model, settings.engine, settings.weights, settings.weights_dir,
                             settings.offline or None, settings.device, settings.inference_size,
                             threads if threads is not None else settings.threads, photo=photo,
                             source_fps=source_fps)
    except ValueError as exc:  # bad device, unknown model
        raise UsageError(str(exc)) from None
    except ImportError as exc:
        raise MissingPackage(f"a required package is missing: {exc}. Run: pip install -r requirements.txt") \
            from None


def build_smoother(settings: Settings, engine: MattingEngine, on_device: bool = False) -> Smoother:
    """``on_device``: smooth on the engine's device (torch), the device-resident path."""
    return make_smoother(settings.smoothing or engine.default_smoothing, still_weight=engine.ema_still_weight,
                         device=engine.device if on_device else None)


def choose_device_alpha(engine: MattingEngine, mode: str, compositor: Compositor) -> bool:
    """Keep the alpha on the GPU from the model through the smoother to the compositor: when the
    engine can hand out device tensors, the compositor runs on the device and nothing between needs
    numpy (sync mode: no render-loop motion warp)."""
    from compositing.gpu_compositor import TorchCompositor

    return (engine.device_resident and engine.device != "cpu" and mode == "sync"
            and isinstance(compositor, TorchCompositor))


def build_compositor(settings: Settings, engine: MattingEngine, photo: bool) -> Compositor:
    """Refinement: the engine's default unless set; decontamination: on for photos unless set.
    Live video blends with 8-bit weights (within 1 grey level, a third less CPU), photos in float.
    On CUDA the compositor runs on the GPU (the frame is there anyway; blur falls back to the CPU)."""
    refine = engine.default_refine if settings.refine is None else settings.refine
    decontaminate = photo if settings.decontaminate is None else settings.decontaminate
    if engine.device.startswith("cuda") and not photo:
        from compositing.gpu_compositor import TorchCompositor

        return TorchCompositor(engine.device, refine=refine, decontaminate=decontaminate, fast_blend=True)
    return Compositor(refine=refine, decontaminate=decontaminate, fast_blend=not photo)


def build_background(settings: Settings, photo: bool) -> Background:
    """The starting background: ``--background``, else blur live and transparent for photos.

    A bad value (a typo, a missing or unreadable file) is refused in both modes, before
    anything runs: a run would otherwise start on another background than the one asked for.
    (Pictures in ``backgrounds/`` that cannot be read are skipped by the library instead.)
    """
    value = settings.background or ("transparent" if photo else "blur")
    return make_background(value, fit=settings.fit, blur_strength=settings.blur_strength,
                           search_dirs=[settings.backgrounds_dir])


def build_library(settings: Settings) -> BackgroundLibrary:
    return BackgroundLibrary(settings.backgrounds_dir, fit=settings.fit, blur_strength=settings.blur_strength,
                             initial=build_background(settings, photo=False))


def check_display(settings: Settings) -> None:
    """SinkError when a preview window is asked for and there is no display (before a model loads)."""
    if settings.window and not has_display():
        raise SinkError("no display to open a preview window on; use --no-window (with --vcam or --record)")


def build_sinks(settings: Settings, size: tuple[int, int], fps: float) -> tuple[list, WindowSink | None]:
    """``(sinks, window)``; on failure everything opened so far is closed again."""
    sinks: list = []
    window = None
    try:  # the recording last: nothing that fails after it leaves an empty file (or replaces one)
        if settings.window:
            check_display(settings)
            window = WindowSink()
        if settings.vcam:
            sinks.append(VirtualCameraSink(size, settings.vcam_fps or fps, device=settings.vcam_device,
                                           backend=settings.vcam_backend, watch=settings.pause_unwatched))
        if settings.record:
            sinks.append(RecorderSink(settings.record, size, fps, realtime=not settings.every_frame))
    except BaseException:
        for sink in [*sinks, *([window] if window is not None else [])]:
            sink.close()
        raise
    if not sinks and window is None:
        if settings.web:
            log.info("no window, virtual camera or recording: the output is shown in the browser's Live tab")
        else:
            log.warning("no window, virtual camera or recording: frames are computed and discarded")
        sinks.append(NullSink())
    return sinks, window


def pipeline_options(settings: Settings, mode: str, workers: int, interactive: bool = True,
                     share: float | None = None, device_alpha: bool = False) -> PipelineOptions:
    return PipelineOptions(mode=mode, mirror=settings.mirror, hud=settings.hud,
                           stats_every=settings.stats_interval if settings.stats else None,
                           max_frames=settings.max_frames, duration=settings.duration,
                           snapshot_dir=settings.snapshot_dir, reconnect=settings.reconnect,
                           lossless=settings.every_frame, inference_workers=workers, terminal_keys=interactive,
                           motion_comp=settings.motion_comp, matte_every=settings.matte_every,
                           max_matte_rate=settings.max_matte_rate, inference_share=share,
                           skip_still=settings.skip_still and not settings.every_frame,
                           pause_unwatched=settings.pause_unwatched, device_alpha=device_alpha)


def build_pipeline(settings: Settings, source: FrameSource, first_frame, interactive: bool = True,
                   library: BackgroundLibrary | None = None) -> Pipeline:
    """Engine, smoother, compositor, background cycle and sinks for the open ``source``.

    ``first_frame`` (BGR uint8) is the frame already read from it; it sizes the
    sinks. The engine is built first, so a bad model never leaves an empty recording.
    ``interactive=False`` (benchmarks) reads no hotkeys from the terminal. ``library``: the
    background cycle if already built (closed here if the pipeline cannot be built).
    """
    workers = choose_workers(settings)
    library = library or build_library(settings)  # a bad --background ends the run before a model loads
    engine, sinks, window = None, [], None
    try:
        engine = build_engine(settings, photo=False, source_fps=source.fps,
                              threads=threads_per_worker(settings, workers))
        if workers > 1 and not engine.thread_safe:
            log.info("%s runs one frame at a time; using one inference worker", engine.name)
            workers = 1
        mode = choose_mode(settings, engine.device)
        compositor = build_compositor(settings, engine, photo=False)
        device_alpha = choose_device_alpha(engine, mode, compositor)
        smoother = build_smoother(settings, engine, on_device=device_alpha)
        log.info("engine: %s; %s mode; smoothing %s%s; edge refinement %s", engine.describe(), mode,
                 smoother.name, " on the device" if device_alpha else "", "on" if compositor.refine else "off")
        height, width = first_frame.shape[:2]
        sinks, window = build_sinks(settings, (width, height), source.fps)
        return Pipeline(source, engine, smoother, compositor, library, sinks, window=window,
                        options=pipeline_options(settings, mode, workers, interactive,
                                                 choose_inference_share(settings, engine, mode), device_alpha),
                        first_frame=first_frame)
    except BaseException:
        for part in [*sinks, *([window] if window else []), library, *([engine] if engine else [])]:
            part.close()
        raise


def build_id_maker(settings: Settings):
    """The ID-photo maker of photo mode and the web studio; models load on first use."""
    from idphoto import IdPhotoMaker
    from matting.face import create_face_detector

    return IdPhotoMaker(
        engine_factory=lambda: build_engine(settings, photo=True),
        face_factory=lambda: create_face_detector(settings.face_weights, settings.weights_dir,
                                                  settings.offline or None),
        compositor_factory=lambda engine: build_compositor(settings, engine, photo=True),
        jobs=settings.web_jobs, blur_strength=settings.blur_strength,
        face_required=settings.face_weights is not None)
