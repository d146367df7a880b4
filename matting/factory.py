"""Build the engine the user asked for: MODNet (PyTorch or ONNX Runtime) or the selfie segmenter."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from .engine import MattingEngine, pick_device
from .errors import WeightsError
from .weights import MODNET_PHOTO, MODNET_WEBCAM, ensure_weights

log = logging.getLogger(__name__)

#: What ``--model`` and ``--engine`` accept.
MODELS = ("modnet", "selfie", "auto")
RUNTIMES = ("auto", "torch", "onnx")
#: Default short side of the network input.
LIVE_SIZE_CPU = 288
LIVE_SIZE_GPU = 512
PHOTO_SIZE = 512  # upstream's ref_size for photos


def default_inference_size(device: str, photo: bool) -> int:
    if photo:
        return PHOTO_SIZE
    return LIVE_SIZE_CPU if device == "cpu" else LIVE_SIZE_GPU


def user_weights(weights: str | os.PathLike) -> Path:
    """A model file the user named: it must exist and be a file."""
    path = Path(weights).expanduser()
    if not path.exists():
        raise WeightsError(f"weights file not found: {path}")
    if not path.is_file():
        raise WeightsError(f"--weights needs a model file, {path} is a folder")
    return path


def modnet_weights(weights: str | None, weights_dir: str | None, offline: bool | None, photo: bool) -> Path:
    if weights:
        return user_weights(weights)
    return ensure_weights(MODNET_PHOTO if photo else MODNET_WEBCAM, weights_dir, offline=offline)


def create_engine(model: str = "modnet", runtime: str = "auto", weights: str | None = None,
                  weights_dir: str | None = None, offline: bool | None = None, device: str = "auto",
                  inference_size: int | None = None, threads: int | None = None, photo: bool = False,
                  source_fps: float = 30.0) -> MattingEngine:
    """Create a ready engine. ``model`` is modnet, selfie or auto (see :func:`choose_auto`)."""
    if model == "auto":
        return choose_auto(runtime, weights, weights_dir, offline, device, inference_size, threads, source_fps)
    if model == "selfie":
        from .selfie import SelfieEngine, ensure_selfie_weights

        path = user_weights(weights) if weights else ensure_selfie_weights(weights_dir, offline=offline)
        return SelfieEngine(path, threads=threads)
    if model != "modnet":
        raise ValueError(f"unknown model {model!r}: use {', '.join(MODELS)}")
    resolved_device = pick_device(device)
    size = inference_size or default_inference_size(resolved_device, photo)
    if runtime == "auto":
        runtime = auto_runtime(resolved_device, photo)
    if runtime == "onnx" or (weights and str(weights).lower().endswith(".onnx")):
        from .onnx_engine import OnnxModnetEngine

        path = modnet_weights(weights, weights_dir, offline, photo)
        return OnnxModnetEngine(path, inference_size=size, device=resolved_device, threads=threads,
                                cache_dir=weights_dir)
    from .torch_engine import TorchModnetEngine

    path = modnet_weights(weights, weights_dir, offline, photo)
    # CUDA graphs and the device resize are for live video: a photo is a one-off size (a graph
    # capture costs several eager runs) and may be very large (a 50-MP upload on the GPU in float)
    return TorchModnetEngine(path, inference_size=size, device=resolved_device, threads=threads,
                             cuda_graphs=False if photo else None, device_resize=False if photo else None)


def auto_runtime(device: str, photo: bool) -> str:
    """ONNX Runtime for live video on a CPU (about 1.9x eager PyTorch on MODNet here);
    PyTorch on GPUs (float16, cuDNN) and for photos (no one-off export delay)."""
    if photo or device != "cpu":
        return "torch"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    return "onnx"


def measure_fps(engine: MattingEngine, frame_hw=(720, 1280), frames: int = 3) -> float:
    frame = np.random.default_rng(0).integers(0, 255, (*frame_hw, 3), dtype=np.uint8)
    engine.infer(frame)  # warm-up: allocations, kernel selection
    start = time.perf_counter()
    for _ in range(frames):
        engine.infer(frame)
    return frames / (time.perf_counter() - start)


def choose_auto(runtime, weights, weights_dir, offline, device, inference_size, threads,
                source_fps: float) -> MattingEngine:
    """MODNet on a GPU; on a CPU whichever engine keeps up with the source's frame rate."""
    resolved = pick_device(device)
    if resolved != "cpu":
        log.info("--model auto: chose MODNet because a GPU (%s) is available", resolved)
        return create_engine("modnet", runtime, weights, weights_dir, offline, resolved, inference_size, threads)
    try:
        modnet = create_engine("modnet", runtime, weights, weights_dir, offline, resolved, inference_size, threads)
    except WeightsError as exc:
        log.info("--model auto: chose the selfie segmenter because MODNet's weights are unavailable (%s)", exc)
        return create_engine("selfie", weights_dir=weights_dir, offline=offline, threads=threads)
    fps = measure_fps(modnet)
    if fps >= source_fps:
        log.info("--model auto: chose MODNet: it runs at %.1f fps on this CPU, enough for the source's %.1f fps",
                 fps, source_fps)
        return modnet
    try:
        selfie = create_engine("selfie", weights_dir=weights_dir, offline=offline, threads=threads)
    except WeightsError as exc:
        log.info("--model auto: chose MODNet although it runs at %.1f fps, below the source's %.1f fps, because "
                 "the selfie model is unavailable (%s)", fps, source_fps, exc)
        return modnet
    log.info("--model auto: chose the selfie segmenter: MODNet runs at %.1f fps on this CPU, below the "
             "source's %.1f fps (use --model modnet to force it)", fps, source_fps)
    modnet.close()
    return selfie
